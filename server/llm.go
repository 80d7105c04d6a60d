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

// task is one task_request being answered.
type task struct {
	s          *Server
	owner      string
	requestID  json.RawMessage
	toolkit    string
	tool       string
	toolCallID string
	language   string
	done       func(resp []byte, via *flusher)

	call  *call
	timer atomic.Pointer[time.Timer]
	ended atomic.Bool

	// budget holds the call against its LLM key's limits from dispatch to
	// its end; given makes the release happen once.
	budget *keyBudget
	size   int
	given  atomic.Bool
}

// giveBack releases the call's hold on its key's budget.
func (t *task) giveBack() {
	if t.budget != nil && t.given.CompareAndSwap(false, true) {
		t.budget.give(t.size)
	}
}

// startTask checks and routes one task_request. done receives the encoded
// TASK_RESPONSE (docs/protocol.md §2.4) exactly once: at once when the request fails
// before routing, else from whichever goroutine ends the call (the
// toolkit's reply, the loss of its connection, the timeout). Every failure
// is a TASK_RESPONSE with status "error" and a message saying what went
// wrong. cancel abandons the call for a caller that went away; it returns
// false when the answer was already on its way to done.
//
// No goroutine waits for the call: the call's end runs done.
func (s *Server) startTask(ctx context.Context, key store.Key, m *llmMessage, via *flusher, done func(resp []byte, via *flusher)) (cancel func() bool) {
	t := &task{s: s, owner: key.Owner, requestID: m.RequestID, toolkit: m.ToolkitID, tool: m.Payload.Function,
		toolCallID: m.Payload.ToolCallID, done: done}
	noCall := func() bool { return false }
	switch {
	case t.toolkit == "":
		t.fail(reasonBadRequest, "toolkit_id: missing: name the toolkit to call", nil, nil, via)
		return noCall
	case t.tool == "":
		t.fail(reasonBadRequest, "payload.function: missing: name the tool to call", nil, nil, via)
		return noCall
	}
	k := s.registry.get(toolkitRef{key.Owner, t.toolkit})
	if k == nil {
		t.fail(reasonNotFound, fmt.Sprintf("toolkit %q not found", t.toolkit), nil, nil, via)
		return noCall
	}
	t.language = k.language
	tool := k.tool(t.tool)
	if tool == nil {
		t.fail(reasonNotFound, fmt.Sprintf("toolkit %q has no tool %q (its tools: %s)", t.toolkit, t.tool, k.toolList()), nil, nil, via)
		return noCall
	}
	params, err := normalizeParams(m.Payload.Parameters)
	if err != nil {
		t.fail(reasonInvalidParams, fmt.Sprintf("invalid params for %s: %v", t.tool, err), nil, nil, via)
		return noCall
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
			return noCall
		}
	}
	timeout, capped, err := s.callTimeout(m)
	if err != nil {
		t.fail(reasonBadRequest, err.Error(), nil, nil, via)
		return noCall
	}
	authToken, err := s.authTokenFor(ctx, key, k, tool, m)
	if err != nil {
		t.fail(reasonBadRequest, err.Error(), nil, nil, via)
		return noCall
	}

	b := s.budget(key.ID)
	if err := s.take(b, len(params)); err != nil {
		t.fail(reasonLimit, err.Error(), nil, nil, via)
		return noCall
	}
	t.budget, t.size = b, len(params)
	c := s.hub.newCall(k.ref, t.tool, params, authToken, t.deliver)
	c.timeout = timeout
	c.agent, c.user = key.ID, m.Payload.ExternalUserID
	if c.user == "" {
		c.user = m.ExternalUserID
	}
	t.call = c
	var routeErr *routeError
	switch err := s.hub.dispatch(c, via); {
	case err != nil && errors.As(err, &routeErr):
		t.giveBack()
		t.fail(routeErr.reason, routeErr.msg, nil, nil, via)
		return noCall
	case errors.Is(err, errDraining):
		t.giveBack()
		t.fail(reasonOffline, fmt.Sprintf("toolkit %q is offline: its connections are shutting down (finishing the calls they have) and it has no other; the call was not sent", t.toolkit), nil, nil, via)
		return noCall
	case errors.Is(err, errOffline):
		t.giveBack()
		t.fail(reasonOffline, fmt.Sprintf("toolkit %q is offline: it has no WebSocket connection and has not polled its inbox in the last %s", t.toolkit, s.cfg.InboxOnlineWindow), nil, nil, via)
		return noCall
	case errors.Is(err, errTooManyCalls):
		t.giveBack()
		t.fail(reasonLimit, fmt.Sprintf("toolkit %q has %d calls waiting for their answers, its limit (--max-pending-per-toolkit): the call was not sent; retry when some have ended", t.toolkit, s.cfg.MaxPendingPerToolkit), nil, nil, via)
		return noCall
	case err != nil:
		t.giveBack()
		t.fail(reasonShutdown, err.Error(), nil, nil, via)
		return noCall
	}
	timer := time.AfterFunc(timeout, func() {
		if s.hub.abandon(c) {
			t.giveBack()
			msg := fmt.Sprintf("toolkit %q did not answer the call to %s within %s; a late reply will be dropped", t.toolkit, t.tool, timeout)
			if capped {
				msg += fmt.Sprintf(" (timeout_ms asked for more: %s is this server's maximum)", timeout)
			}
			t.fail(reasonTimeout, msg, nil, nil, nil)
		}
	})
	t.timer.Store(timer)
	if t.ended.Load() { // the answer came before the timer was stored
		timer.Stop()
	}
	return func() bool {
		if !s.hub.abandon(c) {
			return false
		}
		timer.Stop()
		t.giveBack()
		s.metrics.callDone(reasonCanceled)
		return true
	}
}

// deliver is the call's reply: it ends the task.
func (t *task) deliver(rep reply) {
	t.ended.Store(true)
	if timer := t.timer.Load(); timer != nil {
		timer.Stop()
	}
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
	t.done(t.appendResponse(make([]byte, 0, 256+2*len(rep.result)), "success", "", rep.result, nil), rep.via)
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
	t.done(t.appendResponse(make([]byte, 0, 256+len(msg)+2*len(result)), "error", msg, result, problems), via)
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
	answer := make(chan []byte, 1)
	cancel := s.startTask(ctx, key, m, nil, func(b []byte, _ *flusher) { answer <- b })
	select {
	case b := <-answer:
		return b
	case <-ctx.Done():
		if cancel() {
			return nil
		}
		return <-answer
	}
}

// toolFailure reports whether a toolkit's reply is a failure, and its
// message. A toolkit that sends the is_error extension is taken at its
// word. Without it, a Go toolkit's reply is a result, and a Python
// toolkit's reply of exactly {"error": "<text>"} is its in-band failure
// (the SDK has no other way to say it).
func toolFailure(language string, rep reply) (string, bool) {
	var body struct {
		Error *string `json:"error"`
	}
	errorText := func() string {
		if json.Unmarshal(rep.result, &body) == nil && body.Error != nil {
			return *body.Error
		}
		return "the tool failed without saying why"
	}
	if rep.isError != nil {
		if *rep.isError {
			return errorText(), true
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
	return errorText(), true
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
