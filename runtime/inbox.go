package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// transportInbox names the inbox transport in Call.Transport.
const transportInbox = "http-inbox"

// inboxWaitHeader is the reply header of the long-poll extension
// (docs/extensions.md): a server that holds inbox polls open sets it to the
// wait it applied, in seconds.
const inboxWaitHeader = "ATP-Inbox-Wait"

// minHeldPoll guards against a server that sets inboxWaitHeader but answers
// at once: an empty reply faster than this is treated as not held, so the
// poller pauses PollInterval instead of spinning.
const minHeldPoll = 10 * time.Millisecond

// respondAttempts bounds the tries to post one answer to the inbox.
const respondAttempts = 3

// inboxPoller is the HTTP inbox transport (docs/protocol.md §1.3). Unlike a WebSocket
// session, a call's answer does not depend on the poll that brought it, so
// calls outlive failed polls: they belong to the poller, one per Serve.
type inboxPoller struct {
	s *server

	calls      sync.WaitGroup  // Add only from Serve's goroutine
	group      *callGroup      // the calls, cancelled together
	sendCtx    context.Context // for posting answers; ends after the drain
	cancelSend context.CancelFunc
}

func newInboxPoller(s *server) *inboxPoller { return &inboxPoller{s: s} }

// inboxRequest is the flat request object of an inbox reply.
type inboxRequest struct {
	RequestID json.RawMessage `json:"request_id"`
	ToolName  string          `json:"tool_name"`
	Params    json.RawMessage `json:"params"`
	AuthToken string          `json:"auth_token"`
}

// session polls until a poll fails or ctx is done.
func (p *inboxPoller) session(ctx context.Context) (connectedAt time.Time, err error) {
	if p.group == nil {
		// Calls and their answers outlive ctx, for the drain.
		p.group = newCallGroup(ctx, p.s.cfg.CallTimeout)
		p.sendCtx, p.cancelSend = context.WithCancel(context.WithoutCancel(ctx))
	}
	for {
		// Take a slot before polling: while every slot is busy the server
		// keeps its requests, rather than the toolkit queueing them.
		select {
		case p.s.slots <- struct{}{}:
		case <-ctx.Done():
			return connectedAt, ctx.Err()
		}
		req, held, err := p.poll(ctx)
		if err != nil {
			<-p.s.slots
			return connectedAt, err
		}
		if connectedAt.IsZero() {
			connectedAt = p.s.connected("a successful poll")
		}
		if req == nil {
			<-p.s.slots
			if !held {
				if err := p.s.clock.Sleep(ctx, p.s.cfg.PollInterval); err != nil {
					return connectedAt, err
				}
			}
			continue
		}
		p.calls.Add(1)
		// The slot bounds the calls; the HTTP round trips dwarf a
		// goroutine's start.
		go p.runCall(req)
	}
}

// releaseWait bounds the wait for the last poll to come back once the
// server has released it.
const releaseWait = 2 * time.Second

// poll asks the inbox for one request. It returns nil when there is none,
// and whether the server held the poll open (so the next can go at once).
//
// The poll does not end with ctx: cut mid-reply, it would lose a request
// the server had just written into it, which would then wait for its
// timeout. When ctx ends, the poller asks the server to release its polls
// (docs/extensions.md) and reads this one to its end, request included. It
// cuts the poll only when the release fails (an old server), or when the
// poll is not back within releaseWait.
func (p *inboxPoller) poll(ctx context.Context) (*request, bool, error) {
	cfg := &p.s.cfg
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.InboxWait+registerTimeout)
	released := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(released)
		if !p.release(pctx) {
			cancel()
			return
		}
		t := time.NewTimer(releaseWait)
		defer t.Stop()
		select {
		case <-t.C:
			cancel()
		case <-pctx.Done(): // the poll is back
		}
	})
	defer func() {
		cancel()
		if !stop() {
			<-released
		}
	}()
	ctx = pctx
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.s.ep.inbox(cfg.InboxWait), nil)
	if err != nil {
		return nil, false, &permanentError{fmt.Errorf("inbox poll: %w", err)}
	}
	req.Header.Set("Accept", "application/json")
	start := time.Now()
	resp, err := p.s.http.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("inbox poll: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, cfg.ReadLimit+1))
	if err != nil {
		return nil, false, fmt.Errorf("inbox poll: read reply: %w", err)
	}
	received := time.Now()
	if resp.StatusCode != http.StatusOK {
		if resp.StatusCode == http.StatusNotFound {
			return nil, false, &permanentError{fmt.Errorf("inbox poll: the server answered 404 Not Found (%s): it has no inbox for this key; try Transport %q", quoteBody(body), TransportWS)}
		}
		return nil, false, refusal("inbox poll", resp.StatusCode, body)
	}
	applied, _ := strconv.Atoi(resp.Header.Get(inboxWaitHeader))
	held := applied > 0 && received.Sub(start) >= minHeldPoll

	if int64(len(body)) > cfg.ReadLimit {
		id := requestIDInPrefix(body, true)
		p.s.log.Warn("atp: refused an inbox request larger than ReadLimit", "limit", cfg.ReadLimit, "request_id_found", validID(id))
		if validID(id) {
			r := &request{id: id, received: received}
			p.answer(r, p.s.errorResult(fmt.Errorf("request refused: it is larger than the toolkit's read limit of %d bytes", cfg.ReadLimit)), true)
		}
		return nil, held, nil
	}
	switch string(bytes.TrimSpace(body)) {
	case "", "{}", "null", "[]", `""`:
		return nil, held, nil
	}
	var in inboxRequest
	if err := json.Unmarshal(body, &in); err != nil {
		var probe struct {
			RequestID json.RawMessage `json:"request_id"`
		}
		if json.Unmarshal(body, &probe) == nil && validID(probe.RequestID) {
			r := &request{id: probe.RequestID, received: received}
			p.s.log.Warn("atp: malformed inbox request", "request_id", r.idString(), "err", describeJSONError(err))
			p.answer(r, p.s.errorResult(fmt.Errorf("malformed inbox request: %s", describeJSONError(err))), true)
			return nil, held, nil
		}
		p.s.log.Warn("atp: ignoring malformed inbox reply", "bytes", len(body), "err", describeJSONError(err))
		return nil, held, nil
	}
	if !validID(in.RequestID) {
		p.s.log.Warn("atp: ignoring inbox reply without request_id", "bytes", len(body))
		return nil, held, nil
	}
	return &request{id: in.RequestID, tool: in.ToolName, params: in.Params, authToken: in.AuthToken, received: received}, held, nil
}

// release asks the server to end the key's held polls at once. It reports
// whether the server did.
func (p *inboxPoller) release(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, releaseWait)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.s.ep.inboxRelease(), nil)
	if err != nil {
		return false
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.s.http.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, maxReplyBytes))
	return resp.StatusCode/100 == 2
}

func (p *inboxPoller) runCall(req *request) {
	defer p.calls.Done()
	defer func() { <-p.s.slots }()
	p.s.call(p.group, req, transportInbox, answerFunc(func(res []byte, isErr bool) { p.answer(req, res, isErr) }))
}

// answer posts a request's result to the inbox, retrying failures that may
// pass (transport errors, 408, 429, 5xx) with the reconnect backoff.
func (p *inboxPoller) answer(req *request, result []byte, isErr bool) {
	bp := p.s.getBuf()
	defer p.s.putBuf(bp)
	b := (*bp)[:0]
	b = append(b, `{"request_id":`...)
	b = append(b, req.id...)
	b = append(b, `,"response":`...)
	b = append(b, result...)
	if isErr {
		b = append(b, `,"is_error":true`...)
	}
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, time.Since(req.received).Milliseconds(), 10)
	b = append(b, '}')
	*bp = b

	var err error
	for attempt := 1; attempt <= respondAttempts; attempt++ {
		if attempt > 1 {
			if p.s.clock.Sleep(p.sendCtx, p.s.cfg.Backoff.delay(attempt-1, p.s.rnd)) != nil {
				break
			}
		}
		if err = p.post(b); err == nil || isPermanent(err) {
			break
		}
	}
	if err != nil {
		p.s.log.Warn("atp: could not post the answer to the inbox", "request_id", req.idString(), "tool", req.tool, "err", p.s.red.err(err))
	}
}

func (p *inboxPoller) post(body []byte) error {
	ctx, cancel := context.WithTimeout(p.sendCtx, registerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.s.ep.inboxRespond(), bytes.NewReader(body))
	if err != nil {
		return &permanentError{fmt.Errorf("inbox respond: %w", err)}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := p.s.http.Do(req)
	if err != nil {
		return fmt.Errorf("inbox respond: %w", err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if resp.StatusCode/100 != 2 {
		return refusal("inbox respond", resp.StatusCode, reply)
	}
	return nil
}

// drain lets running calls finish and post their answers, up to
// DrainTimeout. Serve's goroutine calls it once polling has stopped.
func (p *inboxPoller) drain() {
	if p.group == nil {
		return
	}
	log := p.s.log
	drained := make(chan struct{})
	go func() {
		p.calls.Wait()
		close(drained)
	}()
	deadline := time.NewTimer(p.s.cfg.DrainTimeout)
	defer deadline.Stop()
	select {
	case <-drained:
	case <-deadline.C:
		log.Warn("atp: drain deadline passed; cancelling the calls still running")
		p.group.cancel(errDrainTimeout)
		grace := time.NewTimer(min(time.Second, p.s.cfg.PongTimeout))
		select {
		case <-drained:
		case <-grace.C:
		}
		grace.Stop()
	}
	p.group.cancel(errShuttingDown)
	p.cancelSend()
}
