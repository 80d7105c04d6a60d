package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ToolResult is the outcome of one tool call, to be handed back to the model.
type ToolResult struct {
	Call ToolCall
	// Result is the tool's result, any JSON value (nil is null).
	Result json.RawMessage
	// IsError marks a failed call; Error is its message. A non-empty Error
	// alone also marks a failure, and so does a Call with Err set (its
	// arguments could not be read, so it cannot have run). A failure without
	// a message uses Call.Err's, else Result's text, so the model always
	// reads why.
	IsError bool
	Error   string
}

func (r ToolResult) failed() bool { return r.IsError || r.Error != "" || r.Call.Err != nil }

// FormatToolResults returns the messages (or input items) to append to the
// conversation, as a JSON array, in the order of results, each echoing its
// call's id:
//
//   - openai: one {"type":"function_call_output","call_id","output"} item per result
//   - openai-chat: one {"role":"tool","tool_call_id","content"} message per result
//   - mistral: the same with "name"
//   - anthropic: ONE {"role":"user","content":[tool_result blocks]} message,
//     with "is_error": true on failures
//   - gemini: ONE {"role":"user","parts":[{"functionResponse":{"name","id"?,
//     "response"}}]} content; response is {"output": result} or
//     {"error": message}; a generated id is left out
//   - mcp: one CallToolResult ({"content":[text], "structuredContent"?,
//     "isError"?}) per result
//
// A string result is sent as its text, anything else as compact JSON text.
// A call whose arguments could not be read (Call.Err) needs no Result: its
// result is Err's message, flagged as an error.
// Where the provider has no error flag (openai, openai-chat, mistral), a
// failure is sent as {"error": message}: never an empty object.
func FormatToolResults(provider string, results []ToolResult) (json.RawMessage, error) {
	p, err := Normalize(provider)
	if err != nil {
		return nil, err
	}
	for i, r := range results {
		if err := checkResult(p, r); err != nil {
			return nil, fmt.Errorf("provider: %s: results[%d]%s: %w", p, i, callFields{id: r.Call.ID, name: r.Call.Name}.describe(), err)
		}
	}
	var out []any
	switch p {
	case OpenAI:
		for _, r := range results {
			item := newObject("")
			item.set("type", "function_call_output")
			item.set("call_id", r.Call.ID)
			item.set("output", flagless(r))
			out = append(out, item)
		}
	case OpenAIChat, Mistral:
		for _, r := range results {
			msg := newObject("")
			msg.set("role", "tool")
			msg.set("tool_call_id", r.Call.ID)
			if p == Mistral && r.Call.Name != "" {
				msg.set("name", r.Call.Name)
			}
			msg.set("content", flagless(r))
			out = append(out, msg)
		}
	case Anthropic:
		if len(results) > 0 {
			blocks := make([]any, 0, len(results))
			for _, r := range results {
				b := newObject("")
				b.set("type", "tool_result")
				b.set("tool_use_id", r.Call.ID)
				text, failed := resultText(r)
				b.set("content", text)
				if failed {
					b.set("is_error", true)
				}
				blocks = append(blocks, b)
			}
			msg := newObject("")
			msg.set("role", "user")
			msg.set("content", blocks)
			out = append(out, msg)
		}
	case Gemini:
		if len(results) > 0 {
			parts := make([]any, 0, len(results))
			for _, r := range results {
				fr := newObject("")
				fr.set("name", r.Call.Name)
				if r.Call.ID != "" && !r.Call.GeneratedID {
					fr.set("id", r.Call.ID)
				}
				resp := newObject("")
				if r.failed() {
					text, _ := resultText(r)
					resp.set("error", text)
				} else {
					resp.set("output", rawOrNull(r.Result))
				}
				fr.set("response", resp)
				part := newObject("")
				part.set("functionResponse", fr)
				parts = append(parts, part)
			}
			msg := newObject("")
			msg.set("role", "user")
			msg.set("parts", parts)
			out = append(out, msg)
		}
	case MCP:
		for _, r := range results {
			text, failed := resultText(r)
			block := newObject("")
			block.set("type", "text")
			block.set("text", text)
			res := newObject("")
			res.set("content", []any{block})
			if !failed && bytes.HasPrefix(bytes.TrimSpace(r.Result), []byte("{")) {
				res.set("structuredContent", rawOrNull(r.Result))
			}
			if failed {
				res.set("isError", true)
			}
			out = append(out, res)
		}
	}
	if out == nil {
		out = []any{}
	}
	return encodeTree(out), nil
}

func checkResult(p string, r ToolResult) error {
	if r.Call.ID == "" && p != Gemini && p != MCP {
		return fmt.Errorf("the call's id is empty: %s matches results to calls by id", p)
	}
	if r.Call.Name == "" && p == Gemini {
		return fmt.Errorf("the call's name is empty: Gemini matches results to calls by name")
	}
	if len(bytes.TrimSpace(r.Result)) > 0 && !json.Valid(r.Result) {
		return fmt.Errorf("result is not valid JSON")
	}
	return nil
}

// resultText is what the model reads: the error message for a failure,
// else the result (a JSON string as its text).
func resultText(r ToolResult) (string, bool) {
	if r.failed() {
		if r.Error != "" {
			return r.Error, true
		}
		if r.Call.Err != nil {
			return r.Call.Err.Error(), true
		}
		if t := valueText(r.Result); t != "" && t != "null" {
			return t, true
		}
		return "the tool call failed without a message", true
	}
	return valueText(r.Result), false
}

// flagless is the text for providers without an error flag: failures become
// {"error": message} so the model cannot mistake them for a result.
func flagless(r ToolResult) string {
	text, failed := resultText(r)
	if !failed {
		return text
	}
	e := newObject("")
	e.set("error", text)
	return string(encodeTree(e))
}

func valueText(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "null"
	}
	if raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err == nil {
			return s
		}
	}
	if v, err := parseTree(raw); err == nil {
		return string(encodeTree(v))
	}
	c, err := compactJSON(raw)
	if err != nil {
		return string(raw) // checked valid before; unreachable
	}
	return string(c)
}

func rawOrNull(raw json.RawMessage) any {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	return json.RawMessage(raw)
}
