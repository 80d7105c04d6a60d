package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// toolkitRef names a toolkit: toolkits are per owner, so two owners may each
// have a toolkit called "crm".
type toolkitRef struct{ Owner, Name string }

// call is one tool call routed to a toolkit, from dispatch to its reply.
type call struct {
	id        string // the request_id the toolkit sees: the server's own, unique
	ref       toolkitRef
	tool      string
	params    json.RawMessage
	authToken string
	// agent and user say who asked for the call: the LLM key's id and the
	// external_user_id it named, if any (the Platools envelope carries them).
	agent, user string
	started     time.Time
	// to receives the call's one reply (deliver). It is called exactly
	// once unless abandon takes the call back first, never with hub.mu
	// held, from whichever goroutine ends the call.
	to replyTaker

	// Guarded by hub.mu.
	conn *tkConn // the WebSocket it was sent on; nil while in an inbox
	// onConn links the calls in flight on conn (tkConn.calls).
	onConn links[call]
	// inboxKey is the key of the inbox poll that took the call, "" while
	// it waits in the queue or is on a WebSocket.
	inboxKey string

	// On a replica of a cluster (cluster_route.go). timeout is the
	// caller's, for the replica it is forwarded to. replica is the replica
	// it was forwarded to ("" : it is here); origin is, for a call another
	// replica forwarded here, that replica; hops counts its reroutes.
	// replica and hops are guarded by hub.mu.
	timeout time.Duration
	replica string
	origin  string
	hops    int
}

// callList is the calls in flight on one toolkit connection. Guarded by
// hub.mu.
type callList = linkedList[call, *call]

func (c *call) listLinks() *links[call] { return &c.onConn }

// replyTaker waits for a call's reply: the task of an LLM client's
// request, or a call another replica forwarded here. An interface rather
// than a func, so that the call needs no closure.
type replyTaker interface{ takeReply(reply) }

// deliver hands the call's reply to what waits for it.
func (c *call) deliver(rep reply) { c.to.takeReply(rep) }

// reply is how a call ended: the toolkit's result, or a failure of the
// server's (failure != "").
type reply struct {
	// result may be a view of the frame it came in (decodeToolReply):
	// deliver uses it before returning, or copies it.
	result  json.RawMessage
	isError *bool // the toolkit's is_error extension, nil when absent
	failure string
	reason  string // metrics reason of a failure
	// via is the flusher of the read loop that delivers the reply, for
	// writing the answer with sendVia; nil outside a read loop.
	via *flusher
}

var (
	errOffline      = errors.New("offline")
	errDraining     = errors.New("offline: its connections are draining")
	errShutdown     = errors.New("the server is shutting down")
	errTooManyCalls = errors.New("too many calls pending")
	errConnClosed   = errors.New("the connection closed")
)

// hub routes calls to toolkit connections and inboxes and matches replies
// to calls. One mutex guards all of it: every operation under it is a few
// map and slice updates, never I/O.
type hub struct {
	onlineWindow time.Duration
	now          func() time.Time
	// until is the clock's timer (clock.Until), for inbox leases.
	until    func(time.Time) (<-chan time.Time, func())
	idPrefix string
	// maxPending caps the calls pending per toolkit
	// (Config.MaxPendingPerToolkit); 0 is no cap.
	maxPending int
	done       chan struct{} // closed by close

	mu       sync.Mutex
	routes   map[toolkitRef]*route
	unbound  map[string]map[*tkConn]bool // by key id: connections of keys not bound to a toolkit yet
	bound    map[string]toolkitRef       // by key id: keys bound by a registration since start
	revoked  map[string]bool             // key ids revokeKey ran for: their polls end at once
	released map[string]time.Time        // key id -> when release ended its polls (releaseHold)
	pending  map[string]*call
	seq      atomic.Uint64
	llmConns int
	closed   bool

	// cluster routes calls to the connections and inboxes of other
	// replicas (cluster.go); nil on a single server. forwarded counts, by
	// replica, the calls forwarded there and not ended.
	cluster   *cluster
	forwarded map[string]int
}

// route is the live state of one toolkit: its WebSocket connections and its
// HTTP inbox.
type route struct {
	conns []*tkConn
	// draining counts the connections taken out of conns by drainConn and
	// still open: they get no new call.
	draining int
	next     int       // where the least-in-flight search starts, for fairness among equals
	queue    []*call   // calls waiting for an inbox poll
	waiters  []*waiter // inbox long-polls waiting for a call
	lastPoll time.Time
	pending  int  // calls routed here and not ended: queued, taken by a poll, or on a connection
	leased   bool // a lease check is due (checkLease)
	// remote counts, by replica, the calls of this toolkit forwarded
	// there (cluster only).
	remote map[string]int
}

// waiter is an inbox long-poll. Its channel is buffered and receives at
// most one call; it is closed (no call) when the hub closes or the poll's
// key is revoked.
type waiter struct {
	ch    chan *call
	keyID string
}

func newHub(onlineWindow time.Duration, now func() time.Time) *hub {
	return &hub{
		onlineWindow: onlineWindow,
		now:          now,
		until:        realClock{}.Until,
		idPrefix:     randomID(6) + "-",
		done:         make(chan struct{}),
		routes:       map[toolkitRef]*route{},
		unbound:      map[string]map[*tkConn]bool{},
		bound:        map[string]toolkitRef{},
		revoked:      map[string]bool{},
		released:     map[string]time.Time{},
		pending:      map[string]*call{},
	}
}

func (h *hub) route(ref toolkitRef) *route {
	r := h.routes[ref]
	if r == nil {
		r = &route{}
		h.routes[ref] = r
	}
	return r
}

// tidy drops a route that holds nothing worth keeping.
func (h *hub) tidy(ref toolkitRef, r *route) {
	if len(r.conns) == 0 && r.draining == 0 && len(r.queue) == 0 && len(r.waiters) == 0 && r.lastPoll.IsZero() && r.pending == 0 {
		delete(h.routes, ref)
	}
}

// newCall makes a call with a fresh request id.
func (h *hub) newCall(ref toolkitRef, tool string, params json.RawMessage, authToken string, to replyTaker) *call {
	c := new(call)
	h.initCall(c, ref, tool, params, authToken, to)
	return c
}

// initCall is newCall for a call allocated with what it belongs to.
func (h *hub) initCall(c *call, ref toolkitRef, tool string, params json.RawMessage, authToken string, to replyTaker) {
	var buf [40]byte
	id := strconv.AppendUint(append(buf[:0], h.idPrefix...), h.seq.Add(1), 36)
	*c = call{id: string(id), ref: ref, tool: tool, params: params, authToken: authToken, to: to}
}

// dispatch sends c to one of its toolkit's WebSocket connections (the one
// with the fewest calls in flight), or else to its inbox when a poll came
// within the online window. It returns errOffline when neither is there
// (errDraining when its only connections are draining), and errShutdown
// after close. Once dispatch returns nil, c.deliver gets
// exactly one reply unless abandon takes the call back first. via is the
// calling read loop's flusher (see sendVia), or nil. It returns
// errTooManyCalls when the toolkit has maxPending calls pending already.
func (h *hub) dispatch(c *call, via *flusher) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return errShutdown
	}
	if h.cluster != nil {
		return h.dispatchCluster(c, via) // cluster_route.go
	}
	r := h.routes[c.ref]
	if r == nil {
		h.mu.Unlock()
		return errOffline
	}
	if h.maxPending > 0 && r.pending >= h.maxPending && (len(r.conns) > 0 || h.inboxOnline(r)) {
		h.mu.Unlock()
		return errTooManyCalls
	}
	c.started = h.now()
	if n := len(r.conns); n > 0 {
		best := r.conns[r.next%n]
		for i := 1; i < n; i++ {
			if cn := r.conns[(r.next+i)%n]; cn.calls.n < best.calls.n {
				best = cn
			}
		}
		r.next++
		c.conn = best
		best.calls.add(c)
		h.pending[c.id] = c
		r.pending++
		h.mu.Unlock()
		// A failed write closes the connection, which fails its calls, this
		// one included, at once.
		best.sendRequest(c, via)
		return nil
	}
	if h.inboxOnline(r) {
		h.pending[c.id] = c
		r.pending++
		h.enqueue(c.ref, r, c)
		h.mu.Unlock()
		return nil
	}
	draining := r.draining > 0
	h.mu.Unlock()
	if draining {
		return errDraining
	}
	return errOffline
}

// inboxOnline reports whether a poll is waiting or one ended within the
// online window (the inbox lease). h.mu is held.
func (h *hub) inboxOnline(r *route) bool {
	return len(r.waiters) > 0 || (!r.lastPoll.IsZero() && h.now().Sub(r.lastPoll) < h.onlineWindow)
}

// enqueue hands c to a waiting inbox poll, or queues it until a poll or
// the end of the inbox lease. h.mu is held.
func (h *hub) enqueue(ref toolkitRef, r *route, c *call) {
	if len(r.waiters) > 0 {
		w := r.waiters[0]
		r.waiters = r.waiters[1:]
		c.inboxKey = w.keyID
		w.ch <- c
		return
	}
	r.queue = append(r.queue, c)
	h.armLease(ref, r)
}

// armLease makes sure the queue of ref is checked when its inbox lease
// (the online window after the last poll) runs out. h.mu is held.
func (h *hub) armLease(ref toolkitRef, r *route) {
	if r.leased {
		return
	}
	r.leased = true
	fired, stop := h.until(h.leaseEnd(ref, r))
	go func() {
		defer stop()
		select {
		case <-fired:
			h.checkLease(ref)
		case <-h.done:
		}
	}()
}

// checkLease fails the queued calls of a toolkit that stopped polling: no
// poll is waiting and none ended within the online window. When one did,
// the check moves to the end of the renewed lease.
func (h *hub) checkLease(ref toolkitRef) {
	h.mu.Lock()
	r := h.routes[ref]
	if r == nil || h.closed {
		h.mu.Unlock()
		return
	}
	r.leased = false
	if len(r.queue) == 0 {
		h.mu.Unlock()
		return
	}
	if h.inboxOnlineRef(ref, r) {
		h.armLease(ref, r)
		h.mu.Unlock()
		return
	}
	calls := r.queue
	r.queue = nil
	for _, c := range calls {
		delete(h.pending, c.id)
		r.pending--
	}
	since := h.now().Sub(h.lastPollRef(ref, r)).Round(time.Millisecond)
	h.tidy(ref, r)
	h.mu.Unlock()
	fail(calls, fmt.Sprintf("toolkit %q stopped polling its inbox: its last poll ended %s ago, past its %s lease (--inbox-lease); the call was never delivered",
		ref.Name, since, h.onlineWindow), reasonOffline)
}

// complete delivers a toolkit's reply to the call with that request id, if
// it is still waiting and was routed to ref. It reports whether it was:
// false for a late reply (the call timed out) or a foreign one.
func (h *hub) complete(ref toolkitRef, id string, rep reply) bool {
	h.mu.Lock()
	c := h.pending[id]
	return h.settleLocked(c, c != nil && c.ref == ref, rep)
}

// completeFrom is complete for a reply on a toolkit WebSocket: the
// connection's toolkit is the one that must have been called. id may be a
// view of the frame: it is only looked up.
func (h *hub) completeFrom(conn *tkConn, id []byte, rep reply) bool {
	rep.via = conn.readFlusher()
	h.mu.Lock()
	c := h.pending[string(id)]
	return h.settleLocked(c, c != nil && c.ref == conn.ref, rep)
}

// settleLocked delivers rep to c, taken off the pending calls, when the
// reply may answer it (ok). It is called with h.mu held, and releases it.
func (h *hub) settleLocked(c *call, ok bool, rep reply) bool {
	if !ok {
		h.mu.Unlock()
		return false
	}
	h.forget(c)
	h.mu.Unlock()
	c.deliver(rep)
	return true
}

// forget removes c from every index. h.mu is held.
func (h *hub) forget(c *call) {
	delete(h.pending, c.id)
	r := h.routes[c.ref]
	if r != nil {
		r.pending--
	}
	if c.conn != nil {
		c.conn.calls.remove(c)
	} else if c.replica != "" {
		h.unforward(c, r)
	} else if r != nil && c.inboxKey == "" {
		for i, q := range r.queue {
			if q == c {
				r.queue = append(r.queue[:i], r.queue[i+1:]...)
				break
			}
		}
	}
	if r != nil {
		h.tidy(c.ref, r)
	}
}

// abandon takes back a call whose caller stopped waiting (timeout, caller
// gone). It reports false when a reply got there first: it is then
// delivered, or being delivered.
func (h *hub) abandon(c *call) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[c.id] != c {
		return false
	}
	h.forget(c)
	return true
}

// fail ends calls with a failure of the server's.
func fail(calls []*call, failure, reason string) {
	for _, c := range calls {
		c.deliver(reply{failure: failure, reason: reason})
	}
}

// poll takes the next call from ref's inbox, waiting up to wait for one.
// It returns nil when there is none. Every poll, waiting or not, marks the
// toolkit online for the online window.
// keyID is the polling key's: a call it takes is failed when that key is
// revoked (revokeKey), and so is the poll itself.
func (h *hub) poll(done <-chan struct{}, ref toolkitRef, keyID string, wait time.Duration) *call {
	h.mu.Lock()
	if h.revoked[keyID] {
		h.mu.Unlock()
		return nil
	}
	r := h.route(ref)
	r.lastPoll = h.now()
	if len(r.queue) > 0 {
		c := r.queue[0]
		r.queue = r.queue[1:]
		c.inboxKey = keyID
		h.mu.Unlock()
		return c
	}
	if at, ok := h.released[keyID]; ok {
		if h.now().Sub(at) < releaseHold {
			wait = 0 // its toolkit is shutting down: answer at once
		} else {
			delete(h.released, keyID)
		}
	}
	if wait <= 0 || h.closed || h.revoked[keyID] {
		h.mu.Unlock()
		return nil
	}
	w := &waiter{ch: make(chan *call, 1), keyID: keyID}
	r.waiters = append(r.waiters, w)
	h.mu.Unlock()

	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case c := <-w.ch:
		return c
	case <-timer.C:
	case <-done:
	}
	h.mu.Lock()
	if r := h.routes[ref]; r != nil {
		for i, x := range r.waiters {
			if x == w {
				r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
				break
			}
		}
		r.lastPoll = h.now() // a poll that just ended is as fresh as one that starts
	}
	h.mu.Unlock()
	select {
	case c := <-w.ch: // handed over while we gave up
		return c
	default:
		return nil
	}
}

// releaseHold is how long after a release the polls of its key are not
// held: one that was on its way when the release came is answered at once.
const releaseHold = time.Second

// release ends the inbox polls of keyID waiting on ref at once, with no
// call, and keeps the key's polls from being held for releaseHold: its
// toolkit is shutting down and waits for its last poll to come back,
// rather than cut it and lose a call handed over at that moment. It
// returns how many polls it ended.
func (h *hub) release(ref toolkitRef, keyID string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := h.now()
	for id, at := range h.released {
		if now.Sub(at) >= releaseHold {
			delete(h.released, id)
		}
	}
	h.released[keyID] = now
	r := h.routes[ref]
	if r == nil {
		return 0
	}
	kept := r.waiters[:0]
	for _, w := range r.waiters {
		if w.keyID == keyID {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	n := len(r.waiters) - len(kept)
	clear(r.waiters[len(kept):])
	r.waiters = kept
	return n
}

// requeue puts back a call an inbox poll took but could not deliver.
func (h *hub) requeue(c *call) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[c.id] != c || h.closed {
		return
	}
	c.inboxKey = ""
	r := h.route(c.ref)
	if len(r.waiters) > 0 {
		h.enqueue(c.ref, r, c)
		return
	}
	r.queue = append([]*call{c}, r.queue...)
	h.armLease(c.ref, r)
}

// addConn adds a toolkit WebSocket connection: to its toolkit's route when
// its key is bound, else aside until bind.
func (h *hub) addConn(c *tkConn) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return errShutdown
	}
	select {
	case <-c.closed:
		// Closed meanwhile (its key revoked): its removeConn may have run
		// already, and a closed connection must not be routed to.
		return errConnClosed
	default:
	}
	if h.revoked[c.key.ID] {
		return errRevoked
	}
	if c.ref.Name == "" {
		// A registration may have bound the key since the handshake read it.
		c.ref = h.bound[c.key.ID]
	}
	if c.ref.Name == "" {
		set := h.unbound[c.key.ID]
		if set == nil {
			set = map[*tkConn]bool{}
			h.unbound[c.key.ID] = set
		}
		set[c] = true
		return nil
	}
	r := h.route(c.ref)
	r.conns = append(r.conns, c)
	h.changed()
	return nil
}

// drainConn takes a connection whose toolkit is shutting down out of
// routing: no new call goes to it, while the calls in flight on it still
// get its replies, or fail when it closes (removeConn).
func (h *hub) drainConn(c *tkConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.draining {
		return
	}
	c.draining = true
	if set := h.unbound[c.key.ID]; set[c] {
		// Unbound: bind would move it into a route.
		delete(set, c)
		if len(set) == 0 {
			delete(h.unbound, c.key.ID)
		}
		return
	}
	if r := h.routes[c.ref]; r != nil {
		if i := slices.Index(r.conns, c); i >= 0 {
			r.conns = slices.Delete(r.conns, i, i+1)
			r.draining++
			h.changed()
		}
	}
}

// bind moves the connections of a key that has just been bound to ref.
func (h *hub) bind(keyID string, ref toolkitRef) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.bound[keyID] = ref
	set := h.unbound[keyID]
	if len(set) == 0 {
		return
	}
	delete(h.unbound, keyID)
	r := h.route(ref)
	for c := range set {
		c.ref = ref
		r.conns = append(r.conns, c)
	}
	h.changed()
}

// removeConn takes a closed connection out of routing and returns the
// calls that were in flight on it, for the caller to fail.
func (h *hub) removeConn(c *tkConn) []*call {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.unbound[c.key.ID]; set != nil {
		delete(set, c)
		if len(set) == 0 {
			delete(h.unbound, c.key.ID)
		}
	}
	calls := c.calls.takeAll()
	for _, call := range calls {
		delete(h.pending, call.id)
	}
	if r := h.routes[c.ref]; r != nil {
		if i := slices.Index(r.conns, c); i >= 0 {
			r.conns = slices.Delete(r.conns, i, i+1)
		} else if c.draining && c.ref.Name != "" {
			r.draining--
		}
		r.pending -= len(calls)
		h.tidy(c.ref, r)
		h.changed()
	}
	return calls
}

// refOf is the toolkit c serves, zero while its key is unbound.
func (h *hub) refOf(c *tkConn) toolkitRef {
	h.mu.Lock()
	defer h.mu.Unlock()
	return c.ref
}

// revokeKey ends what a revoked toolkit key holds in the hub: its waiting
// inbox polls are released (they find no call) and the calls its polls took
// are returned, for the caller to fail. Its WebSockets are closed by their
// sessions (Server.endKey).
func (h *hub) revokeKey(keyID string) []*call {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.bound, keyID)
	h.revoked[keyID] = true
	for _, r := range h.routes {
		kept := r.waiters[:0]
		for _, w := range r.waiters {
			if w.keyID == keyID {
				close(w.ch)
			} else {
				kept = append(kept, w)
			}
		}
		clear(r.waiters[len(kept):])
		r.waiters = kept
	}
	var calls []*call
	for _, c := range h.pending {
		if c.inboxKey == keyID {
			calls = append(calls, c)
		}
	}
	for _, c := range calls {
		h.forget(c)
	}
	return calls
}

// online reports whether ref has a WebSocket connection or a recent inbox
// poll.
func (h *hub) online(ref toolkitRef) (ws int, inbox bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.routes[ref]
	if r == nil {
		return 0, false
	}
	return len(r.conns), h.inboxOnline(r)
}

func (h *hub) addLLM(delta int) {
	h.mu.Lock()
	h.llmConns += delta
	h.mu.Unlock()
}

func (h *hub) gauges() gauges {
	h.mu.Lock()
	defer h.mu.Unlock()
	g := gauges{llmConnections: h.llmConns, inFlight: len(h.pending)}
	for _, r := range h.routes {
		if len(r.conns) > 0 {
			g.toolkitsConnected++
		}
		g.connections += len(r.conns) + r.draining
	}
	for _, set := range h.unbound {
		g.connections += len(set)
	}
	return g
}

// close stops routing and fails every pending call.
func (h *hub) close() {
	h.mu.Lock()
	if !h.closed {
		close(h.done)
	}
	h.closed = true
	calls := make([]*call, 0, len(h.pending))
	for _, c := range h.pending {
		h.forget(c)
		calls = append(calls, c)
	}
	for _, r := range h.routes {
		for _, w := range r.waiters {
			close(w.ch)
		}
		r.waiters = nil
	}
	h.mu.Unlock()
	fail(calls, errShutdown.Error(), reasonShutdown)
}
