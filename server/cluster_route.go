package server

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// Calls across replicas. The hub of the replica an LLM call arrives at
// (the origin) routes it to the connection with the fewest calls in
// flight among its own connections and the other replicas' (a remote
// route); a call for another replica is published on that replica's call
// subject with a reply subject of the origin's that names the call. The
// holder routes it to one of its connections as its own call, and
// publishes the toolkit's answer, or the failure, to that reply subject.
// The origin's hub then ends the call as it ends any other: exactly once,
// whichever of the answer, the timeout, the caller leaving, or the loss of
// the holder (prober, presence expiry, NATS lost) comes first.

// dispatchCluster is dispatch on a replica: the call goes to the connection
// with the fewest calls in flight, among this replica's and the other
// replicas' (their counts as they last announced them, or this replica's
// own calls there when that is more), ties taken in turn; else, when no
// replica holds a connection, to the cluster's inbox queue. A call another
// replica forwarded here goes to a connection of this one or nowhere.
// h.mu is held; it releases it.
func (h *hub) dispatchCluster(c *call, via *flusher) error {
	cl := h.cluster
	r := h.routes[c.ref]
	online := cl.connected.Load()
	var holders []holder
	if c.origin == "" && online {
		holders = cl.holders(c.ref)
	}
	local := 0
	if r != nil {
		local = len(r.conns)
	}
	inbox := c.origin == "" && local == 0 && len(holders) == 0 && h.inboxOnlineRef(c.ref, r)
	if local == 0 && len(holders) == 0 && !inbox {
		draining := r != nil && r.draining > 0
		h.mu.Unlock()
		switch {
		case c.origin == "" && !online:
			return &routeError{reasonOffline, fmt.Sprintf("toolkit %q has no connection to this replica, and this replica has lost its connection to NATS, "+
				"through which it reaches the toolkits connected to other replicas: retry (the load balancer may send you to another replica)", c.ref.Name)}
		case draining:
			return errDraining
		}
		return errOffline
	}
	if inbox && !online {
		h.mu.Unlock()
		return &routeError{reasonOffline, fmt.Sprintf("toolkit %q takes its calls from an inbox that the replicas share through NATS, "+
			"and this replica has lost its connection to NATS: retry", c.ref.Name)}
	}
	if r == nil {
		r = h.route(c.ref)
	}
	if h.maxPending > 0 && r.pending >= h.maxPending {
		h.tidy(c.ref, r)
		h.mu.Unlock()
		return errTooManyCalls
	}
	c.started = h.now()
	if n := local + len(holders); n > 0 {
		// The least busy connection of this replica, and the least busy
		// replica (calls in flight per connection), ties taken in turn
		// (by the call counter: a route with no connection here is dropped
		// between calls, its own counter with it). This replica's wins a
		// tie with another's: it saves a trip through NATS.
		turn := int(h.seq.Load())
		best, bestNum := -1, 0
		for i := range local {
			j := (turn + i) % local
			if num := r.conns[j].calls.n; best < 0 || num < bestNum {
				best, bestNum = j, num
			}
		}
		remote, remoteNum, remoteDen := -1, 0, 1
		for i := range holders {
			j := (turn + i) % len(holders)
			hd := &holders[j]
			num, den := max(hd.inFlight, r.remote[hd.replica]), max(hd.conns, 1)
			if remote < 0 || num*remoteDen < remoteNum*den {
				remote, remoteNum, remoteDen = j, num, den
			}
		}
		if best < 0 || remote >= 0 && remoteNum < bestNum*remoteDen {
			best = local + remote
		}
		if best < local {
			conn := r.conns[best]
			c.conn = conn
			conn.calls.add(c)
			h.pending[c.id] = c
			r.pending++
			h.mu.Unlock()
			if c.origin == "" {
				cl.stats.routedLocal.Add(1)
			}
			conn.sendRequest(c, via)
			return nil
		}
		hd := &holders[best-local]
		c.replica = hd.replica
		h.pending[c.id] = c
		r.pending++
		if r.remote == nil {
			r.remote = map[string]int{}
		}
		r.remote[hd.replica]++
		h.forwarded[hd.replica]++
		h.mu.Unlock()
		cl.stats.routedReplica.Add(1)
		cl.forward(c, hd.callSubj)
		return nil
	}
	h.pending[c.id] = c
	r.pending++
	r.queue = append(r.queue, c)
	h.armLease(c.ref, r)
	h.mu.Unlock()
	cl.stats.routedInbox.Add(1)
	cl.publishInbox(c)
	return nil
}

// unforward takes a forwarded call out of the counts. h.mu is held.
func (h *hub) unforward(c *call, r *route) {
	if n := h.forwarded[c.replica] - 1; n > 0 {
		h.forwarded[c.replica] = n
	} else {
		delete(h.forwarded, c.replica)
	}
	if r != nil {
		if n := r.remote[c.replica] - 1; n > 0 {
			r.remote[c.replica] = n
		} else {
			delete(r.remote, c.replica)
		}
	}
}

// forwardTargets are the replicas with calls of this one in flight.
func (h *hub) forwardTargets() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.forwarded))
	for id := range h.forwarded {
		ids = append(ids, id)
	}
	return ids
}

// takeForwarded ends the forwarded call with request id id, if it is
// still waiting, and returns it for its answer.
func (h *hub) takeForwarded(id string) *call {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.pending[id]
	if c == nil || c.replica == "" {
		return nil
	}
	h.forget(c)
	return c
}

// forwardedTo is the replica the waiting call id was forwarded to, "" when
// there is no such call.
func (h *hub) forwardedTo(id string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.pending[id]; c != nil {
		return c.replica
	}
	return ""
}

// reroute routes again a call that the replica it was forwarded to never
// took: NATS found no one on that replica's subject, or the replica no
// longer holds the toolkit. It was not delivered, so sending it elsewhere
// cannot run it twice.
func (h *hub) reroute(id, from string) {
	h.mu.Lock()
	c := h.pending[id]
	if c == nil || c.replica != from {
		h.mu.Unlock()
		return
	}
	h.forget(c)
	c.replica = ""
	c.hops++
	if c.hops > 3 || h.closed {
		h.mu.Unlock()
		c.deliver(reply{failure: fmt.Sprintf("toolkit %q: the replicas that announced its connection no longer hold it; retry", c.ref.Name), reason: reasonOffline})
		return
	}
	h.cluster.stats.rerouted.Add(1)
	err := h.dispatchCluster(c, nil)
	var re *routeError
	switch {
	case err == nil:
	case errors.As(err, &re):
		c.deliver(reply{failure: re.msg, reason: re.reason})
	case errors.Is(err, errTooManyCalls):
		c.deliver(reply{failure: fmt.Sprintf("toolkit %q has %d calls waiting for their answers, its limit (--max-pending-per-toolkit): the call was not sent; retry when some have ended", c.ref.Name, h.maxPending), reason: reasonLimit})
	default:
		c.deliver(reply{failure: fmt.Sprintf("toolkit %q is offline: replica %s, which held its connection, no longer does, and no other replica holds one", c.ref.Name, from), reason: reasonOffline})
	}
}

// failForwarded fails the calls forwarded to a replica that is gone.
func (h *hub) failForwarded(replica string, msg func(*call) string) int {
	h.mu.Lock()
	var calls []*call
	for _, c := range h.pending {
		if c.replica == replica {
			calls = append(calls, c)
		}
	}
	for _, c := range calls {
		h.forget(c)
	}
	h.mu.Unlock()
	for _, c := range calls {
		c.deliver(reply{failure: msg(c), reason: reasonDisconnected})
	}
	return len(calls)
}

// failClusterCalls fails every call that waits on NATS: those forwarded
// to other replicas and those in the cluster's inbox queue.
func (h *hub) failClusterCalls(msg func(*call) string) int {
	h.mu.Lock()
	var calls []*call
	for _, c := range h.pending {
		if c.conn == nil {
			calls = append(calls, c)
		}
	}
	for _, c := range calls {
		h.forget(c)
	}
	h.mu.Unlock()
	for _, c := range calls {
		c.deliver(reply{failure: msg(c), reason: reasonDisconnected})
	}
	return len(calls)
}

// presence lists what this replica holds, for its announcement.
func (h *hub) presence(now time.Time) []presenceEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]presenceEntry, 0, len(h.routes))
	for ref, r := range h.routes {
		e := presenceEntry{Owner: ref.Owner, Name: ref.Name, Conns: len(r.conns), Polls: len(r.waiters)}
		for _, cn := range r.conns {
			e.InFlight += cn.calls.n
		}
		if !r.lastPoll.IsZero() {
			if age := now.Sub(r.lastPoll); age < h.onlineWindow {
				e.PollAge = 1 + age.Milliseconds()
			}
		}
		if e.Conns > 0 || e.Polls > 0 || e.PollAge > 0 {
			out = append(out, e)
		}
	}
	return out
}

// changed tells the cluster that the connections or polls this replica
// holds changed. h.mu may be held: it never blocks.
func (h *hub) changed() {
	if h.cluster != nil {
		h.cluster.kickPresence()
	}
}

// ---- the wire between replicas ----

// A forwarded call: a version byte, then owner, toolkit, tool, auth
// token, agent (the LLM key's id) and user (external_user_id), each as a
// uvarint length and its bytes, the timeout in milliseconds as a uvarint,
// and the params, to the end.
const forwardVersion = 1

func appendForward(b []byte, c *call) []byte {
	b = append(b, forwardVersion)
	for _, s := range [...]string{c.ref.Owner, c.ref.Name, c.tool, c.authToken, c.agent, c.user} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = binary.AppendUvarint(b, uint64(c.timeout.Milliseconds()))
	return append(b, c.params...)
}

type forwarded struct {
	ref             toolkitRef
	tool, authToken string
	agent, user     string
	timeout         time.Duration
	params          json.RawMessage
}

// validToolName is toolNamePattern without a regular expression: it runs
// on every forwarded call.
func validToolName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '_':
		case i > 0 && (c >= '0' && c <= '9' || c == '-'):
		default:
			return false
		}
	}
	return true
}

func decodeForward(b []byte) (forwarded, error) {
	var f forwarded
	if len(b) == 0 || b[0] != forwardVersion {
		return f, errors.New("unknown version")
	}
	b = b[1:]
	var fields [6]string
	for i := range fields {
		n, k := binary.Uvarint(b)
		if k <= 0 || n > uint64(len(b)-k) {
			return f, errors.New("truncated")
		}
		fields[i] = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	ms, k := binary.Uvarint(b)
	if k <= 0 || ms > uint64(365*24*time.Hour/time.Millisecond) {
		return f, errors.New("bad timeout")
	}
	f.ref = toolkitRef{fields[0], fields[1]}
	f.tool, f.authToken, f.agent, f.user = fields[2], fields[3], fields[4], fields[5]
	f.timeout = time.Duration(ms) * time.Millisecond
	f.params = b[k:]
	// What goes into the toolkit's frame as is must be what the origin
	// checked: a tool name of safe characters and JSON params.
	if !validToolName(f.tool) {
		return f, fmt.Errorf("bad tool name %q", peerText(f.tool))
	}
	if !json.Valid(f.params) {
		return f, errors.New("params are not JSON")
	}
	return f, nil
}

// An answer: 'R', then the is_error extension ('-' absent, 't', 'f'),
// then the result; or 'F', the reason's length (one byte), the reason,
// then the message; or 'N': the toolkit has no connection here (any
// more), the call was not sent.
func appendAnswer(b []byte, rep reply) []byte {
	if rep.failure != "" {
		b = append(b, 'F', byte(len(rep.reason)))
		b = append(b, rep.reason...)
		return append(b, rep.failure...)
	}
	flag := byte('-')
	if rep.isError != nil {
		flag = 'f'
		if *rep.isError {
			flag = 't'
		}
	}
	b = append(b, 'R', flag)
	return append(b, rep.result...)
}

var (
	isErrorTrue  = true
	isErrorFalse = false
)

// decodeAnswer reads an answer; notHeld is 'N'.
func decodeAnswer(b []byte) (rep reply, notHeld bool, err error) {
	if len(b) == 0 {
		return rep, false, errors.New("empty answer")
	}
	switch b[0] {
	case 'N':
		return rep, true, nil
	case 'R':
		if len(b) < 2 {
			return rep, false, errors.New("truncated answer")
		}
		switch b[1] {
		case 't':
			rep.isError = &isErrorTrue
		case 'f':
			rep.isError = &isErrorFalse
		case '-':
		default:
			return rep, false, errors.New("bad is_error flag")
		}
		rep.result = json.RawMessage(b[2:])
		if len(rep.result) == 0 {
			rep.result = json.RawMessage("null")
		}
		return rep, false, nil
	case 'F':
		if len(b) < 2 || int(b[1]) > len(b)-2 {
			return rep, false, errors.New("truncated failure")
		}
		reason := string(b[2 : 2+int(b[1])])
		if _, known := reasonSet[reason]; !known {
			reason = reasonDisconnected
		}
		rep.reason, rep.failure = reason, string(b[2+int(b[1]):])
		if rep.failure == "" {
			rep.failure = "the replica holding the toolkit's connection failed the call without saying why"
		}
		return rep, false, nil
	}
	return rep, false, fmt.Errorf("unknown answer kind %q", b[0])
}

var reasonSet = func() map[string]struct{} {
	m := make(map[string]struct{}, len(reasons))
	for _, r := range reasons {
		m[r] = struct{}{}
	}
	return m
}()

// ---- the origin's side ----

// forward publishes a call to the replica holding its toolkit's
// connection. A call NATS cannot take now fails now.
func (cl *cluster) forward(c *call, subj string) {
	data := appendForward(make([]byte, 0, 64+len(c.ref.Owner)+len(c.ref.Name)+len(c.authToken)+len(c.agent)+len(c.user)+len(c.params)), c)
	err := cl.nc.PublishRequest(subj, cl.replyPrefix+c.id, data)
	if err == nil {
		return
	}
	var msg string
	switch {
	case errors.Is(err, nats.ErrMaxPayload):
		msg = fmt.Sprintf("the call is %d bytes, over what NATS carries (its max_payload, %d bytes), and toolkit %q's connection is on replica %s: "+
			"raise max_payload in the NATS server's configuration", len(data), cl.maxPayload.Load(), c.ref.Name, c.replica)
	default:
		msg = fmt.Sprintf("could not send the call to replica %s, which holds toolkit %q's connection: %v", c.replica, c.ref.Name, err)
	}
	if cl.h.abandon(c) {
		c.deliver(reply{failure: msg, reason: reasonDisconnected})
	}
}

// handleReply takes an answer from a holder, or NATS's word that no one
// took the call.
func (cl *cluster) handleReply(m *nats.Msg) {
	defer cl.flushReplies(m.Sub)
	id := strings.TrimPrefix(m.Subject, cl.replyPrefix)
	if len(m.Data) == 0 && m.Header.Get("Status") == "503" {
		cl.noResponders(id)
		return
	}
	rep, notHeld, err := decodeAnswer(m.Data)
	if notHeld {
		if from := cl.h.forwardedTo(id); from != "" {
			cl.h.reroute(id, from)
		}
		return
	}
	if err != nil {
		rep = reply{failure: "the replica holding the toolkit's connection sent an answer that could not be read: " + err.Error(), reason: reasonDisconnected}
	}
	c := cl.h.takeForwarded(id)
	if c == nil {
		cl.s.metrics.lateReplies.Add(1)
		return
	}
	cl.forwardLatency.observe(cl.h.now().Sub(c.started))
	rep.via = &cl.replyFlush
	c.deliver(rep)
}

// noResponders handles a call that reached no one: its replica has left
// NATS. The call goes elsewhere; the others in flight there fail.
func (cl *cluster) noResponders(id string) {
	from := cl.h.forwardedTo(id)
	if from == "" {
		return
	}
	cl.forget(from)
	cl.h.reroute(id, from)
	cl.replicaGone(from, "left NATS (no responders on its subject)", false)
}

// flushReplies writes what the answers handled so far queued on LLM
// WebSockets, once the subscription has no more answers waiting (or every
// 32 answers): a burst of answers to one connection costs one write.
func (cl *cluster) flushReplies(sub *nats.Subscription) {
	cl.replyBatch++
	if n, _, _ := sub.Pending(); n <= 1 || cl.replyBatch >= 32 {
		cl.replyBatch = 0
		cl.replyFlush.flush()
	}
}

// ---- the holder's side ----

// servedCall is a call another replica forwarded here.
type servedCall struct {
	cl    *cluster
	reply string
	timer atomic.Pointer[time.Timer]
	ended atomic.Bool
}

func (sc *servedCall) takeReply(rep reply) {
	sc.ended.Store(true)
	if t := sc.timer.Load(); t != nil {
		t.Stop()
	}
	sc.cl.sendAnswer(sc.reply, rep)
}

// handleCall routes a call another replica forwarded here to a connection
// of this one, and answers it when it ends.
func (cl *cluster) handleCall(m *nats.Msg) {
	defer cl.flushCalls(m.Sub)
	if m.Reply == "" {
		return
	}
	f, err := decodeForward(m.Data)
	if err != nil {
		cl.sendAnswer(m.Reply, reply{failure: "a replica forwarded a call that could not be read: " + err.Error(), reason: reasonBadRequest})
		return
	}
	sc := &servedCall{cl: cl, reply: m.Reply}
	c := cl.h.newCall(f.ref, f.tool, f.params, f.authToken, sc)
	c.agent, c.user = f.agent, f.user
	c.origin, _, _ = strings.Cut(strings.TrimPrefix(m.Reply, cl.prefix+".reply."), ".")
	if c.origin == "" {
		c.origin = "?"
	}
	switch err := cl.h.dispatch(c, &cl.callFlush); {
	case err == nil:
		cl.stats.served.Add(1)
		// The origin times the call out; this only frees its place here
		// when the toolkit never answers.
		t := time.AfterFunc(f.timeout+time.Second, func() { cl.h.abandon(c) })
		sc.timer.Store(t)
		if sc.ended.Load() {
			t.Stop()
		}
	case errors.Is(err, errOffline), errors.Is(err, errDraining):
		cl.nc.Publish(m.Reply, []byte{'N'})
	case errors.Is(err, errTooManyCalls):
		cl.sendAnswer(m.Reply, reply{failure: fmt.Sprintf("toolkit %q has %d calls waiting for their answers on replica %s, its limit (--max-pending-per-toolkit): the call was not sent; retry when some have ended",
			f.ref.Name, cl.s.cfg.MaxPendingPerToolkit, cl.id), reason: reasonLimit})
	default:
		cl.sendAnswer(m.Reply, reply{failure: err.Error(), reason: reasonShutdown})
	}
}

// flushCalls writes the requests the calls handled so far queued on
// toolkit WebSockets (see flushReplies).
func (cl *cluster) flushCalls(sub *nats.Subscription) {
	cl.callBatch++
	if n, _, _ := sub.Pending(); n <= 1 || cl.callBatch >= 32 {
		cl.callBatch = 0
		cl.callFlush.flush()
	}
}

// sendAnswer publishes how a served call ended to the replica waiting.
func (cl *cluster) sendAnswer(subj string, rep reply) {
	if rep.reason == reasonShutdown {
		rep.failure = fmt.Sprintf("replica %s, which holds the toolkit's connection, is shutting down: retry", cl.id)
	}
	data := appendAnswer(make([]byte, 0, 2+len(rep.result)+len(rep.failure)+16), rep)
	err := cl.nc.Publish(subj, data)
	if errors.Is(err, nats.ErrMaxPayload) {
		rep = reply{failure: fmt.Sprintf("the tool's result is %d bytes, over what NATS carries between replicas (its max_payload, %d bytes): "+
			"raise max_payload in the NATS server's configuration", len(rep.result), cl.maxPayload.Load()), reason: reasonLimit}
		err = cl.nc.Publish(subj, appendAnswer(nil, rep))
	}
	if err != nil && !errors.Is(err, nats.ErrReconnectBufExceeded) && !errors.Is(err, nats.ErrConnectionClosed) {
		cl.log.Warn("could not send a call's answer to its replica", "err", err)
	}
}
