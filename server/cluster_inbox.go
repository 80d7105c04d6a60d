package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HTTP-inbox calls across replicas. The replica a call arrives at (its
// origin) keeps it in its hub's queue for the toolkit, as on one server,
// and publishes it to the cluster's JetStream work queue (stream
// P_inbox, a subject per toolkit, a durable pull consumer per toolkit
// that every replica shares). A poll, on whichever replica the toolkit
// reaches, waits on that consumer; a call it receives is claimed from its
// origin (request-reply) before it is handed out: the origin takes it out
// of its queue then, so it is delivered once, however often the stream
// delivers it. A poller that cannot hand the call on releases it: the
// origin queues it again. The toolkit's answer may reach any replica: the
// request id names the origin, to which it is passed on.
//
// The inbox lease is the origin's, as on one server, over the polls of
// every replica (their announcements): queued calls fail when no replica
// has seen a poll of the toolkit for the lease.

// inboxMsg is a call in the work queue.
type inboxMsg struct {
	ID        string          `json:"id"`
	Origin    string          `json:"origin"`
	Owner     string          `json:"owner"`
	Toolkit   string          `json:"toolkit"`
	Tool      string          `json:"tool"`
	Params    json.RawMessage `json:"params"`
	AuthToken string          `json:"auth_token,omitempty"`
}

// claimMsg asks a call's origin for it ("claim"), or gives it back
// ("release").
type claimMsg struct {
	Op      string `json:"op"`
	ID      string `json:"id"`
	Owner   string `json:"owner"`
	Toolkit string `json:"toolkit"`
	KeyID   string `json:"key_id"`
}

// respondMsg is an inbox answer passed on to the call's origin.
type respondMsg struct {
	ID      string          `json:"id"`
	Owner   string          `json:"owner"`
	Toolkit string          `json:"toolkit"`
	Result  json.RawMessage `json:"result"`
	IsError *bool           `json:"is_error,omitempty"`
}

// inboxAckWait is the inbox consumer's AckWait: a call delivered to a poll
// that went away unanswered is delivered again this much later (a claim
// takes one round trip).
const inboxAckWait = 5 * time.Second

// refToken names a toolkit in subjects and consumer names: toolkit names
// may hold any character but '/'.
func refToken(ref toolkitRef) string {
	sum := sha256.Sum256([]byte(ref.Owner + "\x00" + ref.Name))
	return hex.EncodeToString(sum[:12])
}

func (cl *cluster) inboxSubject(ref toolkitRef) string { return cl.prefix + ".inbox." + refToken(ref) }

// publishInbox puts a call the hub has queued into the work queue. When
// that fails, the call fails.
func (cl *cluster) publishInbox(c *call) {
	data, _ := json.Marshal(inboxMsg{ID: c.id, Origin: cl.id, Owner: c.ref.Owner, Toolkit: c.ref.Name, Tool: c.tool, Params: c.params, AuthToken: c.authToken})
	if int64(len(data)) > cl.maxPayload.Load() {
		if cl.h.abandon(c) {
			c.deliver(reply{failure: fmt.Sprintf("the call is %d bytes, over what NATS carries (its max_payload, %d bytes), and toolkit %q takes its calls from the replicas' shared inbox queue: "+
				"raise max_payload in the NATS server's configuration", len(data), cl.maxPayload.Load(), c.ref.Name), reason: reasonLimit})
		}
		return
	}
	// Not on the caller's goroutine: JetStream acknowledges a publish
	// after a round trip, and the caller may be an LLM connection's read
	// loop. Nothing can claim the call before it is in the stream.
	cl.spawn(func() {
		ctx, cancel := context.WithTimeout(cl.ctx, 10*time.Second)
		defer cancel()
		_, err := cl.js.Publish(ctx, cl.inboxSubject(c.ref), data)
		if errors.Is(err, nats.ErrNoResponders) && cl.ensureStream(ctx) == nil {
			// The stream was lost (NATS restarted: it lives in memory).
			_, err = cl.js.Publish(ctx, cl.inboxSubject(c.ref), data)
		}
		if err != nil && cl.h.abandon(c) {
			c.deliver(reply{failure: fmt.Sprintf("could not queue the call for toolkit %q's inbox in NATS: %v", c.ref.Name, err), reason: reasonDisconnected})
		}
	})
}

// consumer returns the toolkit's durable pull consumer, creating it when
// needed. Every replica creates the same one: creating it again is a no-op.
func (cl *cluster) consumer(ref toolkitRef) (jetstream.Consumer, error) {
	cl.cmu.Lock()
	c := cl.consumers[ref]
	cl.cmu.Unlock()
	if c != nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := cl.js.CreateOrUpdateConsumer(ctx, cl.stream, jetstream.ConsumerConfig{
		Durable:       "tk_" + refToken(ref),
		Description:   "atp serve: the inbox of one toolkit",
		FilterSubject: cl.inboxSubject(ref),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       inboxAckWait,
		// Every poll of the toolkit on every replica is one waiting pull
		// request.
		MaxWaiting: 4096,
		// Deleted by NATS once no poll has come for this long; a poll
		// makes it again.
		InactiveThreshold: time.Hour,
	})
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		// NATS lost the stream (a restart: it lives in memory).
		if err = cl.ensureStream(context.Background()); err == nil {
			return cl.consumer(ref)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("the inbox queue in NATS: %w", err)
	}
	cl.cmu.Lock()
	cl.consumers[ref] = c
	cl.cmu.Unlock()
	return c, nil
}

func (cl *cluster) dropConsumer(ref toolkitRef) {
	cl.cmu.Lock()
	delete(cl.consumers, ref)
	cl.cmu.Unlock()
}

// poll is hub.poll on a replica: it waits up to wait for a call from the
// toolkit's work queue, and claims it from its origin. The poll counts in
// this replica's hub (and so in its announcements) while it waits; it
// ends with no call when the key is revoked, the server closes or the
// poller goes away.
func (cl *cluster) poll(done <-chan struct{}, ref toolkitRef, keyID string, wait time.Duration) (*call, error) {
	w, first, noHold := cl.h.pollStart(ref, keyID)
	if w == nil {
		return nil, nil
	}
	if noHold {
		wait = 0 // its toolkit is shutting down: answer at once
	}
	defer cl.h.pollEnd(ref, w)
	if first {
		cl.kickPresence()
	}
	if !cl.connected.Load() {
		return nil, errNoNATS
	}
	deadline := time.Now().Add(wait)
	failures, empties := 0, 0
	for {
		cons, err := cl.consumer(ref)
		if err != nil {
			return nil, err
		}
		var batch jetstream.MessageBatch
		stop := func() {}
		if left := time.Until(deadline); left < 10*time.Millisecond {
			batch, err = cons.FetchNoWait(1)
		} else {
			// The fetch ends at the poll's deadline, when the replica
			// closes, or once it is done with (stop).
			var fctx context.Context
			fctx, stop = context.WithDeadline(cl.ctx, deadline)
			batch, err = cons.Fetch(1, jetstream.FetchContext(fctx))
		}
		if err != nil {
			stop()
			cl.dropConsumer(ref)
			if failures++; failures > 1 {
				return nil, fmt.Errorf("reading the inbox queue in NATS: %w", err)
			}
			continue
		}
		select {
		case m, ok := <-batch.Messages():
			stop()
			if !ok {
				if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
					cl.dropConsumer(ref)
					if failures++; failures > 1 {
						return nil, fmt.Errorf("reading the inbox queue in NATS: %w", err)
					}
					continue
				}
				// Expired. A batch that ends early and empty more than
				// twice is NATS answering something this loop does not
				// expect: the poll ends rather than spin.
				if empties++; time.Until(deadline) < 10*time.Millisecond || empties > 2 || cl.ctx.Err() != nil {
					return nil, nil
				}
				continue
			}
			if c := cl.take(ref, keyID, m); c != nil {
				return c, nil
			}
			if time.Until(deadline) < 10*time.Millisecond {
				return nil, nil
			}
		case <-w.ch: // closed: the key was revoked, its polls released, or the hub closed
			cl.abandonBatch(batch, stop)
			return nil, nil
		case <-done:
			cl.abandonBatch(batch, stop)
			return nil, nil
		}
	}
}

// abandonBatch gives back what a fetch nobody waits for any more still
// receives: NATS delivers it at once to another poll. The fetch is read
// to its end (the poll's deadline), for at most inboxAckWait: a call NATS
// delivers to the fetch after that, to no one, is delivered again
// inboxAckWait later.
func (cl *cluster) abandonBatch(batch jetstream.MessageBatch, stop func()) {
	cl.spawn(func() {
		defer stop()
		limit := time.NewTimer(inboxAckWait)
		defer limit.Stop()
		msgs := batch.Messages()
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					return
				}
				m.Nak()
			case <-limit.C:
				return
			}
		}
	})
}

// take claims a call the work queue delivered, and acknowledges it to the
// stream; it returns nil when the call is not to be handed out (it ended,
// was taken, or its origin is gone).
func (cl *cluster) take(ref toolkitRef, keyID string, m jetstream.Msg) *call {
	var im inboxMsg
	if err := json.Unmarshal(m.Data(), &im); err != nil || im.ID == "" || im.Origin == "" || !validToolName(im.Tool) || len(im.Params) == 0 {
		cl.log.Warn("dropped a malformed call from the inbox queue", "err", err)
		m.Term()
		return nil
	}
	if im.Owner != ref.Owner || im.Toolkit != ref.Name {
		m.Term()
		return nil
	}
	ok, err := cl.claim(im.Origin, "claim", im.ID, ref, keyID)
	switch {
	case err == nil && ok:
		m.Ack() // a lost ack makes a redelivery, whose claim fails
		return &call{id: im.ID, ref: ref, tool: im.Tool, params: im.Params, authToken: im.AuthToken, origin: im.Origin}
	case err == nil, errors.Is(err, nats.ErrNoResponders):
		// Ended, taken, or its origin (and so its caller) is gone.
		m.Term()
	default:
		cl.log.Warn("could not claim an inbox call from its replica; it will be delivered again", "peer", im.Origin, "err", err)
		m.NakWithDelay(time.Second)
	}
	return nil
}

// claim asks a call's origin for it, or gives it back (op "release").
func (cl *cluster) claim(origin, op, id string, ref toolkitRef, keyID string) (bool, error) {
	if origin == cl.id {
		return cl.claimHere(op, id, ref, keyID), nil
	}
	data, _ := json.Marshal(claimMsg{Op: op, ID: id, Owner: ref.Owner, Toolkit: ref.Name, KeyID: keyID})
	m, err := cl.nc.Request(cl.prefix+".claim."+origin, data, cl.claimTimeout)
	if err != nil {
		return false, err
	}
	return string(m.Data) == "ok", nil
}

func (cl *cluster) claimHere(op, id string, ref toolkitRef, keyID string) bool {
	switch op {
	case "claim":
		return cl.h.claimInbox(id, ref, keyID)
	case "release":
		c := cl.h.releaseInbox(id, ref, keyID)
		if c != nil {
			cl.publishInbox(c)
		}
		return c != nil
	}
	return false
}

func (cl *cluster) handleClaim(m *nats.Msg) {
	var cm claimMsg
	ok := false
	if json.Unmarshal(m.Data, &cm) == nil {
		ok = cl.claimHere(cm.Op, cm.ID, toolkitRef{cm.Owner, cm.Toolkit}, cm.KeyID)
	}
	answer := "gone"
	if ok {
		answer = "ok"
	}
	m.Respond([]byte(answer))
}

// release gives back a call a poll took but could not hand on.
func (cl *cluster) release(c *call, keyID string) {
	if _, err := cl.claim(c.origin, "release", c.id, c.ref, keyID); err != nil {
		cl.log.Warn("could not give an undelivered inbox call back to its replica; it will time out there", "peer", c.origin, "err", err)
	}
}

// respondElsewhere passes an inbox answer for a call of another replica on
// to it, and answers the toolkit. It returns false, having done nothing,
// for a call of this replica.
func (cl *cluster) respondElsewhere(w http.ResponseWriter, ref toolkitRef, id string, rep reply) bool {
	origin, _, ok := strings.Cut(id, "-")
	if !ok || origin == cl.id || len(origin) != len(cl.id) {
		return false
	}
	data, _ := json.Marshal(respondMsg{ID: id, Owner: ref.Owner, Toolkit: ref.Name, Result: rep.result, IsError: rep.isError})
	m, err := cl.nc.Request(cl.prefix+".respond."+origin, data, 10*time.Second)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		cl.s.metrics.lateReplies.Add(1)
		writeJSON(w, http.StatusGone, map[string]any{"ok": false, "error": fmt.Sprintf("request %q is not waiting for a reply: replica %s, where the call was made, is gone", id, origin)})
	case errors.Is(err, nats.ErrMaxPayload):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the reply is over what NATS carries between replicas (its max_payload, %d bytes): raise max_payload in the NATS server's configuration", cl.maxPayload.Load()))
	case err != nil:
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, fmt.Sprintf("could not pass the reply on to replica %s, where the call waits: %v; retry", origin, err))
	case string(m.Data) == "ok":
		writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
	default:
		cl.s.metrics.lateReplies.Add(1)
		writeJSON(w, http.StatusGone, map[string]any{"ok": false, "error": fmt.Sprintf("request %q is not waiting for a reply from this toolkit: it timed out, was answered already, or is unknown", id)})
	}
	return true
}

func (cl *cluster) handleRespond(m *nats.Msg) {
	var rm respondMsg
	ok := false
	if json.Unmarshal(m.Data, &rm) == nil && len(rm.Result) > 0 {
		ok = cl.h.complete(toolkitRef{rm.Owner, rm.Toolkit}, rm.ID, reply{result: rm.Result, isError: rm.IsError})
	}
	answer := "gone"
	if ok {
		answer = "ok"
	}
	m.Respond([]byte(answer))
}

// ---- the hub's side ----

// pollStart counts a poll of ref as waiting (for the inbox lease, the
// announcements, revocation and release). It returns nil when the key is
// revoked or the hub closed, whether no other poll of ref was waiting
// here, and whether the poll must not be held (the key's polls were
// released within releaseHold: see release).
func (h *hub) pollStart(ref toolkitRef, keyID string) (w *waiter, first, noHold bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || h.revoked[keyID] {
		return nil, false, false
	}
	if at, ok := h.released[keyID]; ok {
		if h.now().Sub(at) < releaseHold {
			noHold = true
		} else {
			delete(h.released, keyID)
		}
	}
	r := h.route(ref)
	first = len(r.waiters) == 0
	r.lastPoll = h.now()
	w = &waiter{ch: make(chan *call, 1), keyID: keyID}
	r.waiters = append(r.waiters, w)
	return w, first, noHold
}

// pollEnd counts the poll out; it is as fresh as one that starts.
func (h *hub) pollEnd(ref toolkitRef, w *waiter) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.routes[ref]; r != nil {
		for i, x := range r.waiters {
			if x == w {
				r.waiters = append(r.waiters[:i], r.waiters[i+1:]...)
				break
			}
		}
		r.lastPoll = h.now()
	}
}

// claimInbox takes a queued call of ref for a poll of keyID.
func (h *hub) claimInbox(id string, ref toolkitRef, keyID string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.pending[id]
	if c == nil || c.ref != ref || c.conn != nil || c.replica != "" || c.inboxKey != "" || h.revoked[keyID] || h.closed {
		return false
	}
	r := h.routes[ref]
	if r == nil {
		return false
	}
	for i, q := range r.queue {
		if q == c {
			r.queue = append(r.queue[:i], r.queue[i+1:]...)
			c.inboxKey = keyID
			return true
		}
	}
	return false
}

// releaseInbox queues again, first, a call a poll of keyID took, and
// returns it for the work queue.
func (h *hub) releaseInbox(id string, ref toolkitRef, keyID string) *call {
	h.mu.Lock()
	defer h.mu.Unlock()
	c := h.pending[id]
	if c == nil || c.ref != ref || c.inboxKey == "" || c.inboxKey != keyID || h.closed {
		return nil
	}
	c.inboxKey = ""
	r := h.route(ref)
	r.queue = append([]*call{c}, r.queue...)
	h.armLease(ref, r)
	return c
}

// inboxOnlineRef is inboxOnline over every replica's polls. r may be nil.
// h.mu is held.
func (h *hub) inboxOnlineRef(ref toolkitRef, r *route) bool {
	if r != nil && h.inboxOnline(r) {
		return true
	}
	if h.cluster == nil {
		return false
	}
	online, _ := h.cluster.remoteInbox(ref, h.onlineWindow, h.now())
	return online
}

// lastPollRef is the last poll of ref on any replica. h.mu is held.
func (h *hub) lastPollRef(ref toolkitRef, r *route) time.Time {
	if h.cluster == nil {
		return r.lastPoll
	}
	if _, last := h.cluster.remoteInbox(ref, h.onlineWindow, h.now()); last.After(r.lastPoll) {
		return last
	}
	return r.lastPoll
}

// leaseEnd is when the inbox lease of ref runs out, as far as this
// replica knows. h.mu is held.
func (h *hub) leaseEnd(ref toolkitRef, r *route) time.Time {
	end := r.lastPoll.Add(h.onlineWindow)
	if h.cluster == nil {
		return end
	}
	end = h.lastPollRef(ref, r).Add(h.onlineWindow)
	// A poll that waits keeps the inbox online however long ago it
	// started: look again a beat later.
	if soonest := h.now().Add(h.cluster.beat); end.Before(soonest) {
		end = soonest
	}
	return end
}
