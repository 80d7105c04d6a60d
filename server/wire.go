package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// ---- toolkit side (docs/protocol.md §1) ----

// appendToolRequest appends the atp_tool_request frame of docs/protocol.md §1.2. The id
// is the hub's (safe characters), the tool name was checked against the tool
// name pattern at registration, and params were checked to be JSON.
func appendToolRequest(b []byte, c *call) []byte {
	b = append(b, `{"message_type":"atp_tool_request","payload":`...)
	b = appendFlatRequest(b, c)
	return append(b, '}')
}

// appendFlatRequest appends {"request_id","tool_name","params","auth_token"},
// the request as the inbox hands it out (docs/protocol.md §1.3) and the payload of the
// WebSocket frame.
func appendFlatRequest(b []byte, c *call) []byte {
	b = append(b, `{"request_id":"`...)
	b = append(b, c.id...)
	b = append(b, `","tool_name":"`...)
	b = append(b, c.tool...)
	b = append(b, `","params":`...)
	b = append(b, c.params...)
	if c.authToken != "" {
		b = append(b, `,"auth_token":`...)
		b = appendJSONString(b, c.authToken)
	}
	return append(b, '}')
}

// appendJSONString appends s as a JSON string. Plain text (printable ASCII
// without quote, backslash or the characters encoding/json escapes for
// HTML) is copied as is; anything else goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			enc, _ := json.Marshal(s) // a string always encodes
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// toolReply is a toolkit's answer: the WebSocket tool_response (keyed by
// type) or the body of inbox/respond (result under "response").
type toolReply struct {
	Type      string          `json:"type"`
	RequestID json.RawMessage `json:"request_id"`
	Result    json.RawMessage `json:"result"`
	Response  json.RawMessage `json:"response"`
	IsError   *bool           `json:"is_error"`   // extension
	LatencyMs *int64          `json:"latency_ms"` // extension
}

// requestIDString returns a request_id as the hub keys it: a JSON string
// unquoted, any other value as its JSON text.
func requestIDString(raw json.RawMessage) string {
	if id, ok := plainString(raw); ok {
		return string(id)
	}
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// requestIDKey is requestIDString as a view of raw when it can be one (a
// string without escapes, as the hub's own ids are): a map lookup with
// string(key) then costs no copy.
func requestIDKey(raw json.RawMessage) []byte {
	if id, ok := plainString(raw); ok {
		return id
	}
	return []byte(requestIDString(raw))
}

// plainString returns the text of a JSON string that holds no escape nor
// control character: its bytes between the quotes.
func plainString(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	s := raw[1 : len(raw)-1]
	for _, c := range s {
		if c == '\\' || c == '"' || c < 0x20 {
			return nil, false
		}
	}
	return s, true
}

// rawView takes a value's bytes as Decoder.Unmarshal hands them over: a
// view of the message, not a copy. What keeps it past the message's
// buffer (reused by the read loops) must copy it.
type rawView json.RawMessage

func (v *rawView) UnmarshalJSON(b []byte) error {
	*v = b
	return nil
}

// view reads the next value as a view into the message (see rawView).
func view(d *atpimpl.Decoder, dst *json.RawMessage) {
	d.Unmarshal((*rawView)(dst), "JSON")
}

// ---- LLM side (docs/protocol.md §2) ----

// llmMessage is any message an LLM client sends, over the WebSocket or in a
// process/ body.
type llmMessage struct {
	Type       string          `json:"type"`
	RequestID  json.RawMessage `json:"request_id"`
	APIKey     string          `json:"api_key"`
	ToolkitID  string          `json:"toolkit_id"`
	Provider   string          `json:"provider"`
	UserPrompt string          `json:"user_prompt"`
	AuthToken  string          `json:"auth_token"`
	// TimeoutMs bounds this call (extension); 0 means the server's default.
	TimeoutMs int64 `json:"timeout_ms"`
	// ExternalUserID names the end user whose stored OAuth token the call
	// needs (extension, docs/protocol.md §3 step 4).
	ExternalUserID string      `json:"external_user_id"`
	Payload        taskPayload `json:"payload"`

	texts stringFields // decodeLLMMessage's
}

// stringFields makes the string fields of a decoded message of one
// allocation rather than one each: their text is gathered as they are
// read, and set once the message is read whole.
type stringFields struct {
	buf    []byte
	cur    *string // the field being read (UnmarshalText)
	fields []stringField
}

type stringField struct {
	dst      *string
	from, to int
}

// read reads a string or null ("") into dst, once set runs.
func (f *stringFields) read(d *atpimpl.Decoder, dst *string) {
	if d.Null() {
		f.fields = append(f.fields, stringField{dst: dst, from: len(f.buf), to: len(f.buf)})
		return
	}
	f.cur = dst
	d.UnmarshalText(f, "string")
}

func (f *stringFields) UnmarshalText(b []byte) error {
	from := len(f.buf)
	f.buf = append(f.buf, b...)
	f.fields = append(f.fields, stringField{dst: f.cur, from: from, to: len(f.buf)})
	return nil
}

// set sets the fields read, in the order read (a repeated key's last
// value wins, as with encoding/json), and empties f for the next message.
func (f *stringFields) set() {
	all := string(f.buf)
	for _, x := range f.fields {
		*x.dst = all[x.from:x.to]
	}
	clear(f.fields)
	f.buf, f.cur, f.fields = f.buf[:0], nil, f.fields[:0]
	if cap(f.buf) > 4<<10 { // a pooled message keeps no large buffer
		f.buf = nil
	}
}

type taskPayload struct {
	Function       string          `json:"function"`
	Parameters     json.RawMessage `json:"parameters"`
	AuthToken      string          `json:"auth_token"`
	ToolCallID     string          `json:"tool_call_id"`
	ExternalUserID string          `json:"external_user_id"`
	TimeoutMs      int64           `json:"timeout_ms"`
}

// toolkitContextMessage answers get_toolkit_context (docs/protocol.md §2.1, §2.3). On a
// failure status is "error" and error says why: the Python client returns
// the payload, so the payload carries the error too rather than leaving the
// client to time out.
type toolkitContextMessage struct {
	Type      string          `json:"type"`
	RequestID json.RawMessage `json:"request_id,omitempty"`
	Status    string          `json:"status"`
	Error     string          `json:"error,omitempty"`
	Payload   any             `json:"payload"`
}

// toolkitContext is CONTEXT (docs/protocol.md §2.3).
type toolkitContext struct {
	ToolkitID   string          `json:"toolkit_id"`
	ToolkitName string          `json:"toolkit_name"`
	Caption     string          `json:"caption"`
	Provider    string          `json:"provider"`
	Tools       json.RawMessage `json:"tools"`
	UserPrompt  string          `json:"user_prompt"`
}

// errorFrame answers a message the server cannot take.
type errorFrame struct {
	Type      string          `json:"type"`
	RequestID json.RawMessage `json:"request_id,omitempty"`
	Error     string          `json:"error"`
}

// ---- JSON in, errors out ----

// decodeJSON reads one JSON object into v, strictly: one value, nothing
// after it. Its errors name the field, what was expected and what was got,
// in JSON words, never Go type names.
func decodeJSON(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return errors.New("empty body: expected a JSON object")
	}
	if data[0] != '{' {
		return fmt.Errorf("expected a JSON object, got %s", describeJSONStart(data))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return jsonError(err)
	}
	return nil
}

func describeJSONStart(data []byte) string {
	switch data[0] {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	if data[0] == '-' || (data[0] >= '0' && data[0] <= '9') {
		return "a number"
	}
	r, _ := utf8.DecodeRune(data)
	return fmt.Sprintf("%q, which is not JSON", r)
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Errorf("invalid JSON: %s at offset %d", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return fmt.Errorf("%s: expected %s, got %s", field, jsontree.KindOfGo(typ.Type.Kind()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return errors.New("invalid JSON: unexpected end of input")
	}
	return fmt.Errorf("invalid JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// writeJSON writes v with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error encoding the reply"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes {"error": msg} with status.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// ---- the hot-path decoders ----
//
// Every routed call decodes an LLM message and a toolkit reply. They are
// read with the single-pass Decoder of runtime/atpimpl (the one generated
// code uses; the server is one of the first-party users its package doc
// names, released with it) instead of encoding/json's reflection: it is
// several times faster on these small messages, and its problems already
// name the field, what was expected and what was got.

var decoders = sync.Pool{New: func() any { return new(atpimpl.Decoder) }}

// decodeMessage reads a JSON object member by member, calling member for
// each key (which must consume the value), and returns the problems found.
// The key is the decoder's view, valid during the call.
func decodeMessage(data []byte, member func(d *atpimpl.Decoder, key []byte)) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return errors.New("empty message: expected a JSON object")
	}
	if data[0] != '{' {
		return fmt.Errorf("expected a JSON object, got %s", describeJSONStart(data))
	}
	d := decoders.Get().(*atpimpl.Decoder)
	defer func() { d.Reset(nil); decoders.Put(d) }()
	d.Reset(data)
	if d.Object() {
		for d.Next() {
			member(d, d.Key()) // a view: switch string(key) compares without a copy
		}
	}
	problems := d.Problems()
	if len(problems) == 0 {
		return nil
	}
	msgs := make([]string, len(problems))
	for i, p := range problems {
		msgs[i] = p.String()
	}
	return errors.New(strings.Join(msgs, "; "))
}

// optString reads a string or null ("").
func optString(d *atpimpl.Decoder) string {
	if d.Null() {
		return ""
	}
	return d.String()
}

// optWord reads a string or null ("") into dst, without a copy when it is
// one of the protocol's message types: they are compared, not kept.
func optWord(d *atpimpl.Decoder, dst *string) {
	if d.Null() {
		*dst = ""
		return
	}
	d.UnmarshalText((*word)(dst), "string")
}

// word is a string read by optWord.
type word string

func (w *word) UnmarshalText(b []byte) error {
	switch string(b) {
	case "task_request":
		*w = "task_request"
	case "tool_response":
		*w = "tool_response"
	case "auth":
		*w = "auth"
	case "get_toolkit_context":
		*w = "get_toolkit_context"
	default:
		*w = word(b)
	}
	return nil
}

func optInt(d *atpimpl.Decoder) int64 {
	if d.Null() {
		return 0
	}
	return d.Int(64)
}

// decodeLLMMessage reads any message of an LLM client. RequestID and
// Payload.Parameters are views into data.
func decodeLLMMessage(data []byte, m *llmMessage) error {
	// The strings a task keeps are made of one allocation (stringFields);
	// the prompt and the provider, which it does not keep, are apart.
	texts := &m.texts
	defer texts.set()
	return decodeMessage(data, func(d *atpimpl.Decoder, key []byte) {
		switch string(key) {
		case "type":
			optWord(d, &m.Type)
		case "request_id":
			view(d, &m.RequestID) // startTask copies what it keeps
		case "api_key":
			texts.read(d, &m.APIKey)
		case "toolkit_id":
			texts.read(d, &m.ToolkitID)
		case "provider":
			m.Provider = optString(d)
		case "user_prompt":
			m.UserPrompt = optString(d)
		case "auth_token":
			texts.read(d, &m.AuthToken)
		case "timeout_ms":
			m.TimeoutMs = optInt(d)
		case "external_user_id":
			texts.read(d, &m.ExternalUserID)
		case "payload":
			if d.Null() || !d.Object() {
				return
			}
			p := &m.Payload
			for d.Next() {
				switch string(d.Key()) {
				case "function":
					texts.read(d, &p.Function)
				case "parameters":
					view(d, &p.Parameters)
				case "auth_token":
					texts.read(d, &p.AuthToken)
				case "tool_call_id":
					texts.read(d, &p.ToolCallID)
				case "external_user_id":
					texts.read(d, &p.ExternalUserID)
				case "timeout_ms":
					p.TimeoutMs = optInt(d)
				default:
					d.Skip()
				}
			}
		default:
			d.Skip()
		}
	})
}

// decodeToolReply reads a toolkit's tool_response frame or inbox answer.
// Bytes that are not UTF-8 become U+FFFD first: the Decoder would refuse
// them (it does for params), and a reply is better delivered with them
// replaced than lost, while it must reach the LLM as UTF-8 (a WebSocket
// text frame, and strict JSON decoders, require it). RequestID, Result and
// Response are views into data (or into its repaired copy): a reply's
// result is used only while the call's deliver runs.
func decodeToolReply(data []byte, r *toolReply) error {
	return decodeValidToolReply(validUTF8(data), r)
}

// decodeValidToolReply is decodeToolReply for data known to be UTF-8.
func decodeValidToolReply(data []byte, r *toolReply) error {
	return decodeMessage(data, func(d *atpimpl.Decoder, key []byte) {
		switch string(key) {
		case "type":
			optWord(d, &r.Type)
		case "request_id":
			view(d, &r.RequestID)
		case "result":
			view(d, &r.Result)
		case "response":
			view(d, &r.Response)
		case "is_error":
			if !d.Null() {
				b := d.Bool()
				r.IsError = &b
			}
		case "latency_ms":
			if !d.Null() {
				n := d.Int(64)
				r.LatencyMs = &n
			}
		default:
			d.Skip()
		}
	})
}

// validUTF8 returns b with every invalid UTF-8 sequence replaced by U+FFFD
// (b itself when it is valid, the common case): what a toolkit sends goes
// out in WebSocket text frames and JSON replies, which must be UTF-8.
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte("\uFFFD"))
}
