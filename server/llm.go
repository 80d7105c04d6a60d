package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/provider"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/server/store"
)

// llmReply answers an LLM client's message other than task_request (and
// auth): get_toolkit_context, or an error frame for anything else. status
// is the HTTP status for process/.
func (s *Server) llmReply(key store.Key, m *llmMessage) (reply any, status int) {
	switch m.Type {
	case "get_toolkit_context":
		return s.toolkitContext(key, m)
	case "":
		return errorFrame{Type: "error", RequestID: m.RequestID, Error: `type: missing: expected "get_toolkit_context" or "task_request"`}, http.StatusBadRequest
	}
	return errorFrame{Type: "error", RequestID: m.RequestID,
		Error: fmt.Sprintf(`unknown message type %q: want "get_toolkit_context" or "task_request"`, peerText(m.Type))}, http.StatusBadRequest
}

// toolkitContext answers get_toolkit_context with CONTEXT (docs/protocol.md §2.3).
func (s *Server) toolkitContext(key store.Key, m *llmMessage) (toolkitContextMessage, int) {
	fail := func(status int, msg string) (toolkitContextMessage, int) {
		return toolkitContextMessage{Type: "toolkit_context", RequestID: m.RequestID, Status: "error", Error: msg,
			Payload: map[string]string{"error": msg}}, status
	}
	if m.ToolkitID == "" {
		return fail(http.StatusBadRequest, "toolkit_id: missing: name the toolkit whose tools you want")
	}
	k := s.registry.get(toolkitRef{key.Owner, m.ToolkitID})
	if k == nil {
		return fail(http.StatusNotFound, fmt.Sprintf("toolkit %q not found", m.ToolkitID))
	}
	requested := strings.ToLower(strings.TrimSpace(m.Provider))
	if requested == "" {
		requested = provider.OpenAI // the Python client's default
	}
	name, err := provider.Normalize(requested)
	if err != nil {
		return fail(http.StatusBadRequest, err.Error())
	}
	tools, err := k.format(name)
	if err != nil {
		s.log.Error("formatting tools failed", "toolkit", k.ref.Name, "owner", k.ref.Owner, "provider", name, "err", err)
		return fail(http.StatusInternalServerError, err.Error())
	}
	return toolkitContextMessage{Type: "toolkit_context", RequestID: m.RequestID, Status: "success",
		Payload: toolkitContext{
			ToolkitID: k.ref.Name, ToolkitName: k.ref.Name, Provider: requested, Tools: tools, UserPrompt: m.UserPrompt,
		}}, http.StatusOK
}

// task is one task_request being answered. It holds its call: one
// allocation for both.
type task struct {
	s          *Server
	owner      string
	requestID  json.RawMessage
	toolkit    string
	tool       string
	toolCallID string
	language   string
	waiter     taskWaiter

	call call
	// deadline is when the call times out (since the deadlines' base),
	// and slot its place among the server's deadlines (taskDeadlines), -1
	// when it is not there; both guarded by their mutex. capped says the timeout is the server's
	// maximum, not the one timeout_ms asked for.
	deadline time.Duration
	slot     int
	capped   bool
	ended    atomic.Bool
	// routed is set once the call is in the hub with its deadline set:
	// cancel takes it back only then.
	routed atomic.Bool

	// onConn links the calls of its LLM connection (llmConn.calls),
	// under the connection's mutex.
	onConn links[task]

	// budget holds the call against its LLM key's limits from dispatch to
	// its end; given makes the release happen once.
	budget *keyBudget
	size   int
	given  atomic.Bool
}

// taskWaiter receives a task's encoded TASK_RESPONSE (docs/protocol.md
// §2.4), exactly once; via is the flusher of the read loop running it, or
// nil. An interface rather than a func: the LLM connection and runTask's
// channel are waiters as they are, with no closure per call.
type taskWaiter interface {
	taskDone(t *task, resp []byte, via *flusher)
}

// answer is runTask's waiter.
type answer chan []byte

func (a answer) taskDone(_ *task, resp []byte, _ *flusher) { a <- resp }

// giveBack releases the call's hold on its key's budget.
func (t *task) giveBack() {
	if t.budget != nil && t.given.CompareAndSwap(false, true) {
		t.budget.give(t.size)
	}
}

// newTask makes the task of a task_request for w. Its request id is m's
// until startTask keeps a copy.
func (s *Server) newTask(key store.Key, m *llmMessage, w taskWaiter) *task {
	return &task{s: s, owner: key.Owner, requestID: m.RequestID, toolkit: m.ToolkitID, tool: m.Payload.Function,
		toolCallID: m.Payload.ToolCallID, waiter: w, slot: -1}
}

// startTask checks and routes the task_request m of t (newTask). t's
// waiter receives the TASK_RESPONSE exactly once: at once when the request
// fails before routing, else from whichever goroutine ends the call (the
// toolkit's reply, the loss of its connection, the timeout). Every failure
// is a TASK_RESPONSE with status "error" and a message saying what went
// wrong. t.cancel abandons the call for a caller that went away.
//
// No goroutine waits for the call: the call's end runs the waiter. m's
// request id and params may be views of a read loop's buffer: what
// outlives this call is copied.
func (s *Server) startTask(ctx context.Context, key store.Key, m *llmMessage, via *flusher, t *task) {
	switch {
	case t.toolkit == "":
		t.fail(reasonBadRequest, "toolkit_id: missing: name the toolkit to call", nil, nil, via)
		return
	case t.tool == "":
		t.fail(reasonBadRequest, "payload.function: missing: name the tool to call", nil, nil, via)
		return
	}
	k := s.registry.get(toolkitRef{key.Owner, t.toolkit})
	if k == nil {
		t.fail(reasonNotFound, fmt.Sprintf("toolkit %q not found", t.toolkit), nil, nil, via)
		return
	}
	t.language = k.language
	tool := k.tool(t.tool)
	if tool == nil {
		t.fail(reasonNotFound, fmt.Sprintf("toolkit %q has no tool %q (its tools: %s)", t.toolkit, t.tool, k.toolList()), nil, nil, via)
		return
	}
	params, err := normalizeParams(m.Payload.Parameters)
	if err != nil {
		t.fail(reasonInvalidParams, fmt.Sprintf("invalid params for %s: %v", t.tool, err), nil, nil, via)
		return
	}
	if bytes.Contains(params, []byte("null")) {
		// A model in OpenAI's strict mode sends null for the optional
		// properties it leaves out (the strict schema makes every property
		// required and nullable); the canonical schema wants them absent.
		if dropped, err := provider.DropNullOptionals(tool.InputSchema, params); err == nil {
			params = dropped
		}
	}
	if tool.validator != nil {
		if problems := tool.validator.Validate(params); problems != nil {
			verr := &runtime.ValidationError{Tool: t.tool, Problems: problems}
			list, _ := json.Marshal(problems)
			result, _ := json.Marshal(map[string]any{"error": verr.Error(), "problems": problems})
			t.fail(reasonInvalidParams, verr.Error(), result, list, via)
			return
		}
	}
	timeout, capped, err := s.callTimeout(m)
	if err != nil {
		t.fail(reasonBadRequest, err.Error(), nil, nil, via)
		return
	}
	authToken, err := s.authTokenFor(ctx, key, k, tool, m)
	if err != nil {
		t.fail(reasonBadRequest, err.Error(), nil, nil, via)
		return
	}

	b := s.budget(key.ID)
	if err := s.take(b, len(params)); err != nil {
		t.fail(reasonLimit, err.Error(), nil, nil, via)
		return
	}
	t.budget, t.size = b, len(params)
	// The request id and the params outlive the message: one copy of both.
	kept := make([]byte, 0, len(t.requestID)+len(params))
	kept = append(append(kept, t.requestID...), params...)
	t.requestID, params = kept[:len(t.requestID):len(t.requestID)], kept[len(t.requestID):]
	c := &t.call
	s.hub.initCall(c, k.ref, t.tool, params, authToken, t)
	c.timeout = timeout
	c.agent, c.user = key.ID, m.Payload.ExternalUserID
	if c.user == "" {
		c.user = m.ExternalUserID
	}
	if err := s.hub.dispatch(c, via); err != nil {
		t.giveBack()
		reason, msg := s.routeFailure(t, err)
		t.fail(reason, msg, nil, nil, via)
		return
	}
	t.capped = capped
	s.deadlines.add(t, timeout)
	if t.ended.Load() { // the answer came before the deadline was set
		s.deadlines.remove(t)
	}
	t.routed.Store(true)
}

// routeFailure is how a call that dispatch refused fails.
func (s *Server) routeFailure(t *task, err error) (reason, msg string) {
	var routeErr *routeError
	switch {
	case errors.As(err, &routeErr):
		return routeErr.reason, routeErr.msg
	case errors.Is(err, errDraining):
		return reasonOffline, fmt.Sprintf("toolkit %q is offline: its connections are shutting down (finishing the calls they have) and it has no other; the call was not sent", t.toolkit)
	case errors.Is(err, errOffline):
		return reasonOffline, fmt.Sprintf("toolkit %q is offline: it has no WebSocket connection and has not polled its inbox in the last %s", t.toolkit, s.cfg.InboxOnlineWindow)
	case errors.Is(err, errTooManyCalls):
		return reasonLimit, fmt.Sprintf("toolkit %q has %d calls waiting for their answers, its limit (--max-pending-per-toolkit): the call was not sent; retry when some have ended", t.toolkit, s.cfg.MaxPendingPerToolkit)
	}
	return reasonShutdown, err.Error()
}

// expire ends a call its toolkit did not answer in time.
func (t *task) expire() {
	if !t.s.hub.abandon(&t.call) {
		return
	}
	t.giveBack()
	timeout := t.call.timeout
	msg := fmt.Sprintf("toolkit %q did not answer the call to %s within %s; a late reply will be dropped", t.toolkit, t.tool, timeout)
	if t.capped {
		msg += fmt.Sprintf(" (timeout_ms asked for more: %s is this server's maximum)", timeout)
	}
	t.fail(reasonTimeout, msg, nil, nil, nil)
}

// cancel abandons the call of a caller that went away. It returns false
// when the answer was already on its way to the waiter, or the call was
// not routed (it has ended, or startTask is still routing it: its answer
// will find nobody).
func (t *task) cancel() bool {
	if !t.routed.Load() || !t.s.hub.abandon(&t.call) {
		return false
	}
	t.s.deadlines.remove(t)
	t.giveBack()
	t.s.metrics.callDone(reasonCanceled)
	return true
}

// takeReply is the call's reply: it ends the task.
func (t *task) takeReply(rep reply) {
	t.ended.Store(true)
	t.s.deadlines.remove(t)
	t.giveBack()
	if rep.failure != "" {
		t.fail(rep.reason, rep.failure, nil, nil, rep.via)
		return
	}
	took := t.s.now().Sub(t.call.started)
	t.s.metrics.latency.observe(took)
	if msg, failed := toolFailure(t.language, rep); failed {
		t.fail(reasonToolError, msg, rep.result, nil, rep.via)
		return
	}
	t.s.metrics.callDone("")
	if t.s.log.Enabled(context.Background(), slog.LevelDebug) {
		// atp serve --verbose: which tool ran and how long it took; never
		// its params, result or token.
		t.s.log.Debug("call done", "owner", t.owner, "toolkit", peerText(t.toolkit), "tool", peerText(t.tool), "duration", took)
	}
	t.waiter.taskDone(t, t.appendResponse(newFrame(256+2*len(rep.result)), "success", "", rep.result, nil), rep.via)
}

// fail ends the task with an error; result defaults to {"error": msg}.
// via is the flusher of the read loop running it, or nil.
func (t *task) fail(reason, msg string, result, problems json.RawMessage, via *flusher) {
	t.s.metrics.callDone(reason)
	if t.s.log.Enabled(context.Background(), slog.LevelDebug) {
		t.s.log.Debug("call failed", "owner", t.owner, "toolkit", peerText(t.toolkit), "tool", peerText(t.tool), "reason", reason, "err", peerText(msg))
	}
	if result == nil {
		result = appendJSONString(append(make([]byte, 0, len(msg)+16), `{"error":`...), msg)
		result = append(result, '}')
	}
	t.waiter.taskDone(t, t.appendResponse(newFrame(256+len(msg)+2*len(result)), "error", msg, result, problems), via)
}

// appendResponse encodes TASK_RESPONSE by hand: it is on every call's path.
// request_id, result and problems are JSON already (parsed from the
// client's and the toolkit's messages, or marshalled here).
func (t *task) appendResponse(b []byte, status, message string, result, problems json.RawMessage) []byte {
	b = append(b, `{"type":"task_response"`...)
	if len(t.requestID) > 0 {
		b = append(b, `,"request_id":`...)
		b = append(b, validUTF8(t.requestID)...)
	}
	b = append(b, `,"status":"`...)
	b = append(b, status...)
	b = append(b, `","message":`...)
	b = appendJSONString(b, message)
	b = append(b, `,"result":{"tool":{"name":`...)
	b = appendJSONString(b, t.tool)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	b = append(b, `}},"payload":{"result":`...)
	b = append(b, result...)
	b = append(b, '}')
	if t.toolCallID != "" {
		b = append(b, `,"tool_call_id":`...)
		b = appendJSONString(b, t.toolCallID)
	}
	if len(problems) > 0 {
		b = append(b, `,"problems":`...)
		b = append(b, problems...)
	}
	return append(b, '}')
}

// runTask runs a task_request and waits for its TASK_RESPONSE, or for ctx
// to end (then it returns nil: nobody is left to answer).
func (s *Server) runTask(ctx context.Context, key store.Key, m *llmMessage) []byte {
	a := make(answer, 1)
	t := s.newTask(key, m, a)
	s.startTask(ctx, key, m, nil, t)
	select {
	case b := <-a:
		return b
	case <-ctx.Done():
		if t.cancel() {
			return nil
		}
		return <-a
	}
}

// toolFailure reports whether a toolkit's reply is a failure, and its
// message. A toolkit that sends the is_error extension is taken at its
// word. Without it, a Go toolkit's reply is a result, and a Python
// toolkit's reply of exactly {"error": "<text>"} is its in-band failure
// (the SDK has no other way to say it).
func toolFailure(language string, rep reply) (string, bool) {
	if rep.isError != nil {
		if *rep.isError {
			return errorText(rep.result), true
		}
		return "", false
	}
	if strings.EqualFold(language, "Go") || jsontree.KindOfText(rep.result) != "object" {
		return "", false
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(rep.result, &fields) != nil || len(fields) != 1 || jsontree.KindOfText(fields["error"]) != "string" {
		return "", false
	}
	return errorText(rep.result), true
}

// errorText is the message of a failed tool's result: its "error" string.
func errorText(result json.RawMessage) string {
	var body struct {
		Error *string `json:"error"`
	}
	if json.Unmarshal(result, &body) == nil && body.Error != nil {
		return *body.Error
	}
	return "the tool failed without saying why"
}

// normalizeParams returns the params object of a call: null or absent is
// {}, and a JSON string holding an object (the form OpenAI gives tool-call
// arguments in) is unwrapped.
func normalizeParams(raw json.RawMessage) (json.RawMessage, error) {
	switch jsontree.KindOfText(raw) {
	case "nothing", "null":
		return json.RawMessage("{}"), nil
	case "string":
		var inner string
		if err := json.Unmarshal(raw, &inner); err != nil {
			return nil, err
		}
		if jsontree.KindOfText(json.RawMessage(inner)) != "object" || !json.Valid([]byte(inner)) {
			return nil, errors.New("params: expected object, got a string that is not a JSON object")
		}
		return json.RawMessage(inner), nil
	}
	return raw, nil
}

// callTimeout is the call's own timeout_ms (extension; top level or in the
// payload), or the server's default. A timeout_ms past
// Config.MaxCallTimeout is capped at it (capped says so, for the timeout's
// message); it is compared in milliseconds, before any conversion, since
// an int64 of milliseconds can overflow a Duration.
func (s *Server) callTimeout(m *llmMessage) (timeout time.Duration, capped bool, err error) {
	ms := m.TimeoutMs
	if m.Payload.TimeoutMs != 0 {
		ms = m.Payload.TimeoutMs
	}
	switch {
	case ms == 0:
		return s.cfg.CallTimeout, false, nil
	case ms < 0:
		return 0, false, fmt.Errorf("timeout_ms: expected a positive number of milliseconds, got %d", ms)
	case ms > s.cfg.MaxCallTimeout.Milliseconds():
		return s.cfg.MaxCallTimeout, true, nil
	}
	return time.Duration(ms) * time.Millisecond, false, nil
}

// authTokenFor returns the auth_token to pass to the tool: the call's own
// (payload.auth_token, else the top-level auth_token), as the Python client
// sends it. Without one, a task_request may name the end user with
// external_user_id (extension; payload, else top level): the OAuth broker
// then gives that user's access token for tool.AuthProvider, refreshed when
// near expiry. A tool registered with an auth_provider, or with
// needs_auth_token, that gets no token either way fails here, before it is
// routed: the toolkit would only refuse the call later, and less clearly.
func (s *Server) authTokenFor(ctx context.Context, key store.Key, k *kit, tool *toolEntry, m *llmMessage) (string, error) {
	if m.Payload.AuthToken != "" {
		return m.Payload.AuthToken, nil
	}
	if m.AuthToken != "" {
		return m.AuthToken, nil
	}
	user := m.Payload.ExternalUserID
	if user == "" {
		user = m.ExternalUserID
	}
	if tool.NeedsAuthToken && tool.AuthProvider == "" {
		// No OAuth platform to take a stored token from: only the call
		// itself can bring one, with or without external_user_id.
		return "", fmt.Errorf("tool %s needs the end user's auth token: send auth_token (the tool names no auth_provider, so the server has no stored token to inject for an external_user_id)", tool.Name)
	}
	return s.oauth.injectedToken(ctx, key.Owner, tool, user)
}
