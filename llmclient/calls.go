package llmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/atpgo/atp/provider"
)

// localTimeoutGrace is how long past a call's timeout the client waits
// before giving up itself: the server, which enforces the same timeout, has
// that long to say so in its own words.
const localTimeoutGrace = 500 * time.Millisecond

// maxParallel bounds the calls of one CallTools in flight at once.
const maxParallel = 32

// Problem is one invalid parameter, as the server lists them for a call
// with invalid params (the "problems" extension).
type Problem struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Result is the outcome of one tool call. A failure the model should read
// (the tool's error, invalid params, arguments that are not a JSON object,
// an unknown tool, an offline toolkit, a timeout) is a Result with Error
// set, not a Go error.
type Result struct {
	Tool       string
	ToolCallID string
	// Value is the tool's result, any JSON value. On failure it is what the
	// server sent as the result, e.g. {"error": "...", "problems": [...]}.
	Value json.RawMessage
	// Error is the failure's message; "" on success.
	Error string
	// Problems lists the invalid params, field by field, when that was the
	// failure.
	Problems []Problem
}

// Failed reports whether the call failed.
func (r *Result) Failed() bool { return r.Error != "" }

// CallOption configures Call, RunCalls and CallTools.
type CallOption func(*callOptions)

type callOptions struct {
	authToken      string
	externalUserID string
	userPrompt     string
	timeout        time.Duration
	sequential     bool
}

// WithAuthToken passes the end user's token to the tools (auth_token,
// docs/protocol.md §3 step 4). It travels in the request only and is never logged.
func WithAuthToken(token string) CallOption { return func(o *callOptions) { o.authToken = token } }

// WithExternalUserID names the end user whose stored OAuth token the server
// injects as auth_token (extension, docs/protocol.md §3 step 4): the token never
// passes through the agent. A token given with WithAuthToken wins.
func WithExternalUserID(id string) CallOption {
	return func(o *callOptions) { o.externalUserID = id }
}

// WithUserPrompt passes the user's prompt along with the calls, as the
// Python SDK does.
func WithUserPrompt(prompt string) CallOption { return func(o *callOptions) { o.userPrompt = prompt } }

// WithCallTimeout bounds each call: the server is told (extension
// timeout_ms; `atp serve` caps it at its MaxCallTimeout) and the client
// also stops waiting a moment later, for servers that ignore it. A call
// that times out is a Result whose Error says so. As everywhere in this
// module, zero means the default: the server's (120 s on `atp serve` and
// the hosted platform), with the context bounding the wait. A negative
// duration, which in package runtime means no bound, is refused: the
// server bounds every routed call, and cannot be asked not to.
func WithCallTimeout(d time.Duration) CallOption { return func(o *callOptions) { o.timeout = d } }

// Sequential makes RunCalls and CallTools run the calls one after another,
// in order, for calls that depend on each other's effects. By default they
// run concurrently.
func Sequential() CallOption { return func(o *callOptions) { o.sequential = true } }

func callOpts(opts []CallOption) (*callOptions, error) {
	o := &callOptions{}
	for _, f := range opts {
		f(o)
	}
	if o.timeout < 0 {
		return nil, fmt.Errorf("WithCallTimeout: expected a positive duration or 0 for the server's default, got %s", o.timeout)
	}
	return o, nil
}

// taskRequest is task_request (docs/protocol.md §2.1 step 3) with the extensions
// external_user_id and timeout_ms.
type taskRequest struct {
	Type           string      `json:"type"`
	RequestID      string      `json:"request_id"`
	ToolkitID      string      `json:"toolkit_id"`
	AuthToken      *string     `json:"auth_token"`
	UserPrompt     *string     `json:"user_prompt"`
	APIKey         string      `json:"api_key"`
	ExternalUserID string      `json:"external_user_id,omitempty"`
	TimeoutMs      int64       `json:"timeout_ms,omitempty"`
	Payload        taskPayload `json:"payload"`
}

type taskPayload struct {
	Function   string          `json:"function"`
	Parameters json.RawMessage `json:"parameters"`
	AuthToken  *string         `json:"auth_token"`
	ToolCallID string          `json:"tool_call_id,omitempty"`
}

// Call calls one tool of the toolkit with params (a JSON object; nil means
// {}) and returns its Result. The error is for failures to get an answer
// at all: transport, context, a closed client, a message the server
// refused.
func (c *Client) Call(ctx context.Context, toolkitID, tool string, params json.RawMessage, opts ...CallOption) (*Result, error) {
	op := fmt.Sprintf("call %s of toolkit %q", tool, toolkitID)
	o, err := callOpts(opts)
	if err == nil {
		err = checkTarget(toolkitID, tool)
	}
	if err != nil {
		return nil, opError(op, err)
	}
	r, err := c.call(ctx, toolkitID, tool, "", params, o)
	if err != nil {
		return nil, opError(op, err)
	}
	return r, nil
}

func checkTarget(toolkitID, tool string) error {
	switch {
	case toolkitID == "":
		return errors.New("toolkitID is empty: name the toolkit to call")
	case tool == "":
		return errors.New("tool is empty: name the tool to call")
	}
	return nil
}

var errLocalTimeout = errors.New("the call's timeout passed")

func (c *Client) call(ctx context.Context, toolkitID, tool, toolCallID string, params json.RawMessage, o *callOptions) (*Result, error) {
	if len(bytes.TrimSpace(params)) == 0 {
		params = json.RawMessage("{}")
	}
	if !json.Valid(params) {
		return nil, fmt.Errorf("params are not valid JSON: %.100s", params)
	}
	id := c.nextID("task")
	req := taskRequest{Type: "task_request", RequestID: id, ToolkitID: toolkitID, APIKey: c.apiKey,
		ExternalUserID: o.externalUserID,
		Payload:        taskPayload{Function: tool, Parameters: params, ToolCallID: toolCallID}}
	if o.authToken != "" {
		req.AuthToken, req.Payload.AuthToken = &o.authToken, &o.authToken
	}
	if o.userPrompt != "" {
		req.UserPrompt = &o.userPrompt
	}
	wait := ctx
	if o.timeout > 0 {
		req.TimeoutMs = max(1, int64((o.timeout+time.Millisecond-1)/time.Millisecond))
		var cancel context.CancelFunc
		wait, cancel = context.WithTimeoutCause(ctx, o.timeout+localTimeoutGrace, errLocalTimeout)
		defer cancel()
	}
	msg, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	data, err := c.roundTrip(wait, id, msg, false)
	if err != nil {
		if o.timeout > 0 && ctx.Err() == nil && errors.Is(context.Cause(wait), errLocalTimeout) {
			text := fmt.Sprintf("the call to %s got no answer within %s", tool, o.timeout)
			value, _ := json.Marshal(map[string]string{"error": text})
			return &Result{Tool: tool, ToolCallID: toolCallID, Value: value, Error: text}, nil
		}
		return nil, err
	}
	return c.taskResult(data, tool, toolCallID)
}

// taskResult reads TASK_RESPONSE (docs/protocol.md §2.4).
func (c *Client) taskResult(data []byte, tool, toolCallID string) (*Result, error) {
	var m struct {
		Type     string          `json:"type"`
		Status   string          `json:"status"`
		Message  string          `json:"message"`
		Error    string          `json:"error"`
		Result   json.RawMessage `json:"result"`
		Payload  json.RawMessage `json:"payload"`
		Problems []Problem       `json:"problems"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("the server's answer is not a JSON object: %v", err)
	}
	if m.Type == "error" {
		return nil, &APIError{Endpoint: "task_request", Message: c.redactString(m.Error)}
	}
	r := &Result{Tool: tool, ToolCallID: toolCallID, Problems: m.Problems}
	// The Python client reads result.tool.result; payload.result carries
	// the same value.
	var wrapped struct {
		Tool *struct {
			Result json.RawMessage `json:"result"`
		} `json:"tool"`
	}
	var payload struct {
		Result json.RawMessage `json:"result"`
	}
	switch {
	case json.Unmarshal(m.Result, &wrapped) == nil && wrapped.Tool != nil:
		r.Value = wrapped.Tool.Result
	case json.Unmarshal(m.Payload, &payload) == nil && payload.Result != nil:
		r.Value = payload.Result
	default:
		r.Value = m.Result
	}
	if len(r.Value) == 0 {
		r.Value = json.RawMessage("null")
	}
	if m.Status == "error" {
		r.Error = m.Message
		if r.Error == "" {
			var e struct {
				Error string `json:"error"`
			}
			json.Unmarshal(r.Value, &e)
			r.Error = e.Error
		}
		if r.Error == "" {
			r.Error = "the call to " + tool + " failed without a message"
		}
	}
	return r, nil
}

// RunCalls runs parsed tool calls (from provider.ParseToolCalls) and
// returns their Results in the same order. Calls run concurrently unless
// Sequential is given. A call whose arguments could not be read (Err set)
// is not sent: its Result is that error, for the model to read, and the
// other calls run. The error is for a call that got no answer (transport,
// context): the other calls are then abandoned and no Results are
// returned, though some tools may have run.
func (c *Client) RunCalls(ctx context.Context, toolkitID string, calls []provider.ToolCall, opts ...CallOption) ([]*Result, error) {
	op := fmt.Sprintf("run tool calls of toolkit %q", toolkitID)
	o, err := callOpts(opts)
	if err == nil && toolkitID == "" {
		err = errors.New("toolkitID is empty: name the toolkit to call")
	}
	if err != nil {
		return nil, opError(op, err)
	}
	for i, call := range calls {
		if call.Name == "" {
			return nil, opError(op, fmt.Errorf("calls[%d]: name is empty", i))
		}
	}
	results := make([]*Result, len(calls))
	send := make([]int, 0, len(calls)) // indexes of the calls to send
	for i, call := range calls {
		if call.Err != nil {
			results[i] = unreadableCall(call)
			continue
		}
		send = append(send, i)
	}
	if o.sequential || len(send) <= 1 {
		for _, i := range send {
			call := calls[i]
			r, err := c.call(ctx, toolkitID, call.Name, call.ID, call.Arguments, o)
			if err != nil {
				return nil, opError(op, fmt.Errorf("calls[%d] (%s, id %q): %w", i, call.Name, call.ID, err))
			}
			results[i] = r
		}
		return results, nil
	}
	inner, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make([]error, len(calls))
	slots := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for _, i := range send {
		call := calls[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
			case <-inner.Done():
				errs[i] = inner.Err()
				return
			}
			defer func() { <-slots }()
			r, err := c.call(inner, toolkitID, call.Name, call.ID, call.Arguments, o)
			if err != nil {
				errs[i] = fmt.Errorf("calls[%d] (%s, id %q): %w", i, call.Name, call.ID, err)
				cancel() // the batch has failed: stop waiting for the rest
				return
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if err := firstCause(ctx, errs); err != nil {
		return nil, opError(op, err)
	}
	return results, nil
}

// unreadableCall is the Result of a call whose arguments could not be read,
// shaped like a failure the server reports ({"error": message}) so that
// callers need not tell the two apart.
func unreadableCall(call provider.ToolCall) *Result {
	text := call.Err.Error()
	value, _ := json.Marshal(map[string]string{"error": text})
	return &Result{Tool: call.Name, ToolCallID: call.ID, Value: value, Error: text}
}

// firstCause picks the error that failed the batch, not the cancellations
// it caused in the other calls.
func firstCause(ctx context.Context, errs []error) error {
	var canceled error
	for _, err := range errs {
		switch {
		case err == nil:
		case ctx.Err() == nil && errors.Is(err, context.Canceled):
			if canceled == nil {
				canceled = err
			}
		default:
			return err
		}
	}
	return canceled
}

// CallTools runs the tool calls a model returned and gives back the
// messages to append to the conversation, as provider.FormatToolResults
// writes them: in the order of the calls, each echoing its call's id.
//
// calls is what the model returned, as the provider's API gives it (see
// provider.ParseToolCalls for every accepted shape):
//
//	openai       Responses output items ({"type":"function_call","call_id",...}) or the
//	             whole response; Chat Completions tool_calls, the assistant message or
//	             the whole completion
//	openai-chat  Chat Completions tool_calls, message or completion
//	anthropic    tool_use blocks, the content array or the whole message
//	mistral      tool_calls (arguments as a string or an object), message or response
//	gemini       functionCall parts, the content, a candidate or the whole response
//
// The reply follows the provider: function_call_output items (openai),
// role "tool" messages (openai-chat, mistral with "name"), one user message
// of tool_result blocks (anthropic), one user content of functionResponse
// parts (gemini). Given provider "openai" and Chat Completions calls, the
// reply is Chat's role "tool" messages.
//
// A failed call stays readable by the model: its message (the tool's
// error, the invalid params field by field, a timeout, an offline toolkit)
// is the result, flagged is_error for Anthropic, {"error": message} where
// the provider has no flag, {"error": ...} in Gemini's response. So is a
// call whose arguments are not a JSON object (malformed JSON included): it
// is not sent, its result under its own id says what is wrong ("arguments:
// not valid JSON: unexpected end of input at offset 17") so the model can
// send it again, and the other calls run. The Go error is for input that
// cannot be read as tool calls at all (see provider.ParseToolCalls) and for
// calls that got no answer (see RunCalls). No calls give an empty list.
func (c *Client) CallTools(ctx context.Context, toolkitID, providerName string, calls json.RawMessage, opts ...CallOption) (json.RawMessage, error) {
	op := fmt.Sprintf("call tools of toolkit %q", toolkitID)
	p, err := provider.Normalize(providerName)
	if err != nil {
		return nil, opError(op, err)
	}
	parsed, err := provider.ParseToolCalls(p, calls)
	if err != nil {
		return nil, opError(op, err)
	}
	results, err := c.RunCalls(ctx, toolkitID, parsed, opts...)
	if err != nil {
		return nil, err
	}
	out := make([]provider.ToolResult, len(parsed))
	for i, r := range results {
		out[i] = provider.ToolResult{Call: parsed[i], Result: r.Value, IsError: r.Failed(), Error: r.Error}
	}
	format := p
	if p == provider.OpenAI && chatShaped(calls) {
		format = provider.OpenAIChat
	}
	msgs, err := provider.FormatToolResults(format, out)
	if err != nil {
		return nil, opError(op, err)
	}
	return msgs, nil
}

// chatShaped reports whether OpenAI tool calls came from Chat Completions
// (a completion, an assistant message or tool_calls entries with a nested
// function) rather than the Responses API.
func chatShaped(raw json.RawMessage) bool {
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return false
	}
	switch t := v.(type) {
	case map[string]any:
		if _, ok := t["choices"]; ok {
			return true
		}
		if _, ok := t["tool_calls"]; ok {
			return true
		}
		_, nested := t["function"].(map[string]any)
		return nested
	case []any:
		for _, it := range t {
			if o, ok := it.(map[string]any); ok {
				_, nested := o["function"].(map[string]any)
				return nested
			}
		}
	}
	return false
}
