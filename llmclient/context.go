package llmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/atpgo/atp/provider"
)

// ToolkitContext is a toolkit's description for one provider (docs/protocol.md §2.3).
type ToolkitContext struct {
	ToolkitID   string `json:"toolkit_id"`
	ToolkitName string `json:"toolkit_name"`
	Caption     string `json:"caption"`
	// Provider is the provider the tools are formatted for, as the server
	// names it.
	Provider   string `json:"provider"`
	UserPrompt string `json:"user_prompt"`
	// Tools is the provider's own tool list, a JSON array ready to be the
	// request's tools (for Gemini: its functionDeclarations; see
	// RequestTools).
	Tools json.RawMessage `json:"tools"`
}

// RequestTools returns what goes in the model request's "tools" field:
// Tools itself, except for Gemini, whose declarations are wrapped as
// [{"functionDeclarations": Tools}].
func (tc *ToolkitContext) RequestTools() json.RawMessage {
	if p, _ := provider.Normalize(tc.Provider); p != provider.Gemini {
		return tc.Tools
	}
	var b bytes.Buffer
	b.WriteString(`[{"functionDeclarations":`)
	b.Write(tc.Tools)
	b.WriteString(`}]`)
	return b.Bytes()
}

// contextRequest is get_toolkit_context (docs/protocol.md §2.1 step 2).
type contextRequest struct {
	Type       string `json:"type"`
	ToolkitID  string `json:"toolkit_id"`
	RequestID  string `json:"request_id"`
	Provider   string `json:"provider"`
	UserPrompt string `json:"user_prompt"`
	APIKey     string `json:"api_key"`
}

// GetToolkitContext returns the toolkit's tools in the provider's format
// (openai, openai-chat, anthropic, mistral, gemini or mcp; aliases such as
// "mistralai" and "claude" are accepted). userPrompt is passed along as
// the Python SDK does; it may be empty.
//
// A toolkit the key cannot see, or an unknown provider, is an error; so is
// a transport failure. Over the WebSocket the request is sent again on a
// new connection if the first one drops before the answer.
func (c *Client) GetToolkitContext(ctx context.Context, toolkitID, providerName, userPrompt string) (*ToolkitContext, error) {
	op := fmt.Sprintf("get the context of toolkit %q", toolkitID)
	if toolkitID == "" {
		return nil, opError("get toolkit context", errors.New("toolkitID is empty: name the toolkit whose tools you want"))
	}
	p, err := provider.Normalize(providerName)
	if err != nil {
		return nil, opError(op, err)
	}
	id := c.nextID("context")
	msg, err := json.Marshal(contextRequest{Type: "get_toolkit_context", ToolkitID: toolkitID, RequestID: id,
		Provider: p, UserPrompt: userPrompt, APIKey: c.apiKey})
	if err != nil {
		return nil, opError(op, err)
	}
	data, err := c.roundTrip(ctx, id, msg, true)
	if err != nil {
		return nil, opError(op, err)
	}
	var m struct {
		Type    string          `json:"type"`
		Status  string          `json:"status"`
		Error   string          `json:"error"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, opError(op, fmt.Errorf("the server's answer is not a JSON object: %v", err))
	}
	if m.Type == "error" || m.Status == "error" {
		msg := m.Error
		if msg == "" {
			msg = errorMessage(m.Payload)
		}
		return nil, opError(op, &APIError{Endpoint: "get_toolkit_context", Message: c.redactString(msg)})
	}
	var tc ToolkitContext
	if err := json.Unmarshal(m.Payload, &tc); err != nil || len(m.Payload) == 0 || m.Payload[0] != '{' {
		return nil, opError(op, fmt.Errorf("payload: expected the toolkit context object, got %.200s", m.Payload))
	}
	switch t := bytes.TrimSpace(tc.Tools); {
	case len(t) == 0 || string(t) == "null":
		tc.Tools = json.RawMessage("[]")
	case t[0] != '[':
		return nil, opError(op, fmt.Errorf("payload.tools: expected an array, got %.200s", t))
	}
	return &tc, nil
}
