package provider

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ToolCall is one tool call a model asked for, whatever the provider.
type ToolCall struct {
	// ID is the call's id, to be echoed with its result: OpenAI Chat and
	// Mistral tool_calls[].id, the Responses item's call_id (not its id),
	// Anthropic's tool_use id, Gemini's functionCall.id, an MCP request id.
	ID   string
	Name string
	// Arguments is a compact JSON object ({} when the model sent none), keys
	// in the model's order. It is nil when Err is set.
	Arguments json.RawMessage
	// GeneratedID is set when the model sent no id and ID was made up: 9
	// letters and digits (what Mistral accepts), derived from the provider,
	// position, name and arguments so that the same input gives the same id.
	// Gemini results leave such ids out, since Gemini matches by name and
	// order.
	GeneratedID bool
	// Err, an *ArgumentsError, is set for a call whose id and name could be
	// read but whose arguments could not (malformed JSON, not an object).
	// Such a call must not be run: its result is Err's message, flagged as an
	// error, so the model can send the call again (FormatToolResults does
	// that for a ToolResult that carries nothing else).
	Err error
}

// ArgumentsError is ToolCall.Err: why a call's arguments could not be read.
// Its message is written for the model, worded like the params problems the
// server reports: "arguments: not valid JSON: unexpected end of input at
// offset 13", "arguments: expected a JSON object, got array".
type ArgumentsError struct {
	// Problem is what is wrong, without the "arguments: " prefix.
	Problem string
	// Err is the JSON syntax error behind Problem, when there is one.
	Err error
}

func (e *ArgumentsError) Error() string { return "arguments: " + e.Problem }
func (e *ArgumentsError) Unwrap() error { return e.Err }

// ParseToolCalls extracts the tool calls from what a model returned, in
// order, skipping whatever is not a tool call (text, reasoning, messages).
// It accepts, per provider:
//
//   - openai, openai-chat, mistral: Chat Completions tool_calls entries
//     ({id, type:"function", function:{name, arguments}}), Responses
//     function_call items ({type:"function_call", call_id, name,
//     arguments}), an array of either, a Responses output array or whole
//     response ({"output": [...]}), an assistant message ({"tool_calls":
//     [...]}) or a whole chat completion ({"choices": [...]}, first choice).
//     arguments may be a JSON string (the norm) or an object (Mistral).
//   - anthropic: tool_use blocks, a content array, or a whole message
//     ({"content": [...]}).
//   - gemini: parts with functionCall (or function_call), bare FunctionCall
//     objects ({name, args, id?}), a Content ({"parts": [...]}), a candidate
//     ({"content": ...}) or a whole response ({"candidates": [...]}, first
//     candidate).
//   - mcp: tools/call params ({name, arguments}) or whole JSON-RPC requests.
//
// A call whose arguments are not a JSON object (a malformed arguments
// string included) does not fail the list: it comes back in its place with
// its id and name and Err set, for its caller to answer with an error
// result. The error is for input that cannot be read as a list of calls:
// not JSON, the wrong shape, an item that is not a tool call, a call
// without a name or with an id that is not a string; it names the call.
// null gives no calls.
func ParseToolCalls(provider string, raw json.RawMessage) ([]ToolCall, error) {
	p, err := Normalize(provider)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, fmt.Errorf("provider: %s: no tool calls given (empty input)", p)
	}
	v, err := parseTree(raw)
	if err != nil {
		return nil, fmt.Errorf("provider: %s: tool calls are not valid JSON: %w", p, err)
	}
	var items []any
	switch p {
	case OpenAI, OpenAIChat, Mistral:
		items, err = openAIItems(v)
	case Anthropic:
		items, err = unwrapList(v, "content")
	case Gemini:
		items, err = geminiParts(v)
	case MCP:
		items, err = unwrapList(v, "")
	}
	if err != nil {
		return nil, fmt.Errorf("provider: %s: %w", p, err)
	}
	calls := []ToolCall{}
	for i, it := range items {
		o, ok := it.(*object)
		if !ok {
			return nil, fmt.Errorf("provider: %s: tool call %d: expected a JSON object, got %s", p, i, kindOf(it))
		}
		var f callFields
		switch p {
		case OpenAI, OpenAIChat, Mistral:
			f, ok, err = openAIFields(o)
		case Anthropic:
			f, ok, err = anthropicFields(o)
		case Gemini:
			f, ok, err = geminiFields(o)
		case MCP:
			f, ok, err = mcpFields(o)
		}
		if err == nil && !ok {
			continue
		}
		call, cerr := f.toolCall(p, len(calls))
		if err == nil {
			err = cerr
		}
		if err != nil {
			return nil, fmt.Errorf("provider: %s: tool call %d%s: %w", p, i, f.describe(), err)
		}
		calls = append(calls, call)
	}
	return calls, nil
}

// callFields are a call's raw parts, before checking.
type callFields struct {
	id   any // string, json.Number (MCP) or nil
	name any
	args any
}

func (f callFields) describe() string {
	var parts []string
	if s, ok := f.id.(string); ok && s != "" {
		parts = append(parts, fmt.Sprintf("id %q", s))
	}
	if s, ok := f.name.(string); ok && s != "" {
		parts = append(parts, fmt.Sprintf("name %q", s))
	}
	if len(parts) == 0 {
		return ""
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// toolCall checks a call's fields. The error is for a call that cannot be
// answered (no name, an id of the wrong type); arguments that cannot be
// read go into the call's Err.
func (f callFields) toolCall(p string, index int) (ToolCall, error) {
	var c ToolCall
	switch n := f.name.(type) {
	case string:
		c.Name = n
	case nil:
	default:
		return c, fmt.Errorf("name: expected a string, got %s", kindOf(n))
	}
	if c.Name == "" {
		return c, fmt.Errorf("name is missing")
	}
	switch id := f.id.(type) {
	case string:
		c.ID = id
	case json.Number:
		if p != MCP { // only JSON-RPC ids may be numbers
			return c, fmt.Errorf("id: expected a string, got number")
		}
		c.ID = string(id)
	case nil:
	default:
		return c, fmt.Errorf("id: expected a string, got %s", kindOf(id))
	}
	args, err := parseArguments(f.args)
	if err != nil {
		c.Err = err
	} else {
		c.Arguments = args
	}
	if c.ID == "" {
		c.ID = generatedID(p, index, c.Name, argumentsText(f.args, args))
		c.GeneratedID = true
	}
	return c, nil
}

// parseArguments accepts an object, a JSON string holding one, or nothing;
// its error is an *ArgumentsError.
func parseArguments(v any) (json.RawMessage, error) {
	switch t := v.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case *object:
		return encodeTree(t), nil
	case string:
		if strings.TrimSpace(t) == "" {
			return json.RawMessage("{}"), nil
		}
		tree, err := parseTree([]byte(t))
		if err != nil {
			return nil, argumentsSyntaxError([]byte(t), err)
		}
		if _, ok := tree.(*object); !ok {
			return nil, &ArgumentsError{Problem: "expected a JSON object, got " + kindOf(tree)}
		}
		return encodeTree(tree), nil
	default:
		return nil, &ArgumentsError{Problem: "expected a JSON object (or a string holding one), got " + kindOf(v)}
	}
}

// argumentsSyntaxError words a parse error of an arguments string as the
// runtime words params' syntax errors: the offset is the index of the
// offending byte (encoding/json counts the bytes read, that one included),
// or the length at the end of input.
func argumentsSyntaxError(data []byte, err error) *ArgumentsError {
	var syn *json.SyntaxError
	var dup *duplicateKeyError
	switch {
	case errors.As(err, &syn):
		msg := strings.TrimPrefix(syn.Error(), "json: ")
		offset := syn.Offset - 1
		if strings.HasPrefix(msg, "unexpected end of JSON input") {
			msg, offset = "unexpected end of input", int64(len(data))
		}
		offset = max(0, min(offset, int64(len(data))))
		return &ArgumentsError{Problem: fmt.Sprintf("not valid JSON: %s at offset %d", msg, offset), Err: err}
	case errors.As(err, &dup):
		if dup.ptr == "" {
			return &ArgumentsError{Problem: fmt.Sprintf("duplicate key %q", dup.key), Err: err}
		}
		return &ArgumentsError{Problem: fmt.Sprintf("duplicate key %q in %s", dup.key, dup.ptr), Err: err}
	}
	return &ArgumentsError{Problem: "not valid JSON: " + strings.TrimPrefix(err.Error(), "json: "), Err: err}
}

// argumentsText is what a generated id is derived from: the arguments as
// read, or the model's own text when they could not be.
func argumentsText(raw any, parsed json.RawMessage) []byte {
	if parsed != nil {
		return parsed
	}
	if s, ok := raw.(string); ok {
		return []byte(s)
	}
	return encodeTree(raw)
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func generatedID(p string, index int, name string, args []byte) string {
	h := sha256.New()
	h.Write([]byte(p + "\x00" + strconv.Itoa(index) + "\x00" + name + "\x00"))
	h.Write(args)
	sum := h.Sum(nil)
	id := make([]byte, 9)
	for i := range id {
		id[i] = idAlphabet[int(sum[i])%len(idAlphabet)]
	}
	return string(id)
}

// unwrapList returns v's elements: an array as is, an object's field (when
// field is set and present) or the object itself; null gives none.
func unwrapList(v any, field string) ([]any, error) {
	switch t := v.(type) {
	case nil:
		return nil, nil
	case []any:
		return t, nil
	case *object:
		if field != "" {
			if inner, ok := t.get(field); ok {
				switch inner.(type) {
				case []any, nil:
					return unwrapList(inner, "")
				case string:
					return nil, nil // a message whose content is plain text
				}
			}
		}
		return []any{t}, nil
	default:
		return nil, fmt.Errorf("expected tool calls as a JSON array or object, got %s", kindOf(v))
	}
}

func openAIItems(v any) ([]any, error) {
	o, ok := v.(*object)
	if !ok {
		return unwrapList(v, "")
	}
	if out, ok := o.get("output"); ok {
		return unwrapList(out, "")
	}
	if tc, ok := o.get("tool_calls"); ok {
		return unwrapList(tc, "")
	}
	if ch, ok := o.vals["choices"].([]any); ok {
		if len(ch) == 0 {
			return nil, nil
		}
		choice, ok := ch[0].(*object)
		if !ok {
			return nil, fmt.Errorf("choices[0]: expected an object, got %s", kindOf(ch[0]))
		}
		msg, ok := choice.vals["message"].(*object)
		if !ok {
			return nil, fmt.Errorf("choices[0].message: expected an object")
		}
		return openAIItems(msg)
	}
	if _, ok := o.get("role"); ok && !o.has("name") && !o.has("function") {
		return nil, nil // a message without tool calls
	}
	return []any{o}, nil
}

// openAIFields reads a Chat tool_calls entry or a Responses function_call
// item; ok=false skips an item that is not a function call.
func openAIFields(o *object) (callFields, bool, error) {
	typ, _ := o.str("type")
	if fnv, hasFn := o.get("function"); typ == "function" || (typ == "" && hasFn) {
		fn, ok := fnv.(*object)
		if !ok {
			return callFields{id: o.vals["id"]}, true, fmt.Errorf("function: expected an object, got %s", kindOf(fnv))
		}
		return callFields{id: o.vals["id"], name: fn.vals["name"], args: fn.vals["arguments"]}, true, nil
	}
	if typ == "function_call" || (typ == "" && o.has("name")) {
		id := o.vals["call_id"]
		if id == nil && typ == "" {
			id = o.vals["id"] // Mistral-style dicts and hand-built calls
		}
		return callFields{id: id, name: o.vals["name"], args: o.vals["arguments"]}, true, nil
	}
	if typ == "" {
		return callFields{id: o.vals["id"]}, true, fmt.Errorf(
			`not a tool call: expected {"type":"function_call","call_id","name","arguments"} or {"id","type":"function","function":{"name","arguments"}}`)
	}
	return callFields{}, false, nil
}

func anthropicFields(o *object) (callFields, bool, error) {
	typ, _ := o.str("type")
	if typ == "tool_use" || (typ == "" && o.has("name")) {
		return callFields{id: o.vals["id"], name: o.vals["name"], args: o.vals["input"]}, true, nil
	}
	if typ == "" {
		return callFields{id: o.vals["id"]}, true, fmt.Errorf(`not a tool call: expected {"type":"tool_use","id","name","input"}`)
	}
	return callFields{}, false, nil // text, thinking, server tools
}

func geminiParts(v any) ([]any, error) {
	o, ok := v.(*object)
	if !ok {
		return unwrapList(v, "")
	}
	if cands, ok := o.vals["candidates"].([]any); ok {
		if len(cands) == 0 {
			return nil, nil
		}
		return geminiParts(cands[0])
	}
	if content, ok := o.vals["content"].(*object); ok {
		return geminiParts(content)
	}
	if parts, ok := o.get("parts"); ok {
		return unwrapList(parts, "")
	}
	return []any{o}, nil
}

func geminiFields(o *object) (callFields, bool, error) {
	fcv, ok := o.get("functionCall")
	if !ok {
		fcv, ok = o.get("function_call")
	}
	if !ok {
		if !o.has("name") {
			return callFields{}, false, nil // text, thought, inline data
		}
		fcv = o // a bare FunctionCall
	}
	fc, isObj := fcv.(*object)
	if !isObj {
		return callFields{}, true, fmt.Errorf("functionCall: expected an object, got %s", kindOf(fcv))
	}
	return callFields{id: fc.vals["id"], name: fc.vals["name"], args: fc.vals["args"]}, true, nil
}

func mcpFields(o *object) (callFields, bool, error) {
	if m, ok := o.str("method"); ok {
		if m != "tools/call" {
			return callFields{}, false, nil
		}
		params, ok := o.vals["params"].(*object)
		if !ok {
			return callFields{id: o.vals["id"]}, true, fmt.Errorf("params: expected an object")
		}
		return callFields{id: o.vals["id"], name: params.vals["name"], args: params.vals["arguments"]}, true, nil
	}
	return callFields{id: o.vals["id"], name: o.vals["name"], args: o.vals["arguments"]}, true, nil
}
