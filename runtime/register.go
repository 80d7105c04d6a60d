package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// registerTimeout bounds each registration request, as the Python SDK's
// verify calls do.
const registerTimeout = 15 * time.Second

// maxReplyBytes bounds what is read of a registration or respond reply.
const maxReplyBytes = 64 << 10

// registrar registers a toolkit's tools (docs/protocol.md §1.1) for one Serve.
type registrar struct {
	s *server
	// acked maps a tool name to the code_hash the server accepted with a
	// 2xx register_tool reply during this Serve. It stands in for
	// verify_tool_hash on servers that do not have that endpoint, so that
	// an unchanged tool is not re-sent after every reconnect.
	acked map[string]string
}

// errNoEndpoint is a verify call answered 404 or 405: an older server
// without it. The tool is then treated as not up to date (or as acked).
var errNoEndpoint = errors.New("endpoint not found")

// register runs the registration of docs/protocol.md §1.1: verify_hash with the
// toolkit hash and, when the server is not up to date, verify_tool_hash for
// each tool and register_tool for those that are not.
func (r *registrar) register(ctx context.Context, tools []*Tool) error {
	hashes := make([]string, len(tools))
	for i, t := range tools {
		hashes[i] = toolHash(t)
	}
	kitHash := toolkitHash(hashes)
	upToDate, err := r.verify(ctx, "verify_hash", "/api/v1/toolkit/verify_hash", verifyHashBody{
		APIKey: r.s.cfg.APIKey, AppName: r.s.tk.name, ToolkitHash: kitHash,
	})
	switch {
	case errors.Is(err, errNoEndpoint):
		upToDate = false
	case err != nil:
		return err
	}
	if upToDate {
		r.s.log.Debug("atp: registration up to date", "toolkit_hash", kitHash)
		return nil
	}
	sent := 0
	for i, tool := range tools {
		upToDate, err := r.verify(ctx, "verify_tool_hash "+tool.Name, "/api/v1/toolkit/verify_tool_hash", verifyToolBody{
			APIKey: r.s.cfg.APIKey, ToolName: tool.Name, ToolHash: hashes[i],
		})
		switch {
		case errors.Is(err, errNoEndpoint):
			upToDate = r.acked[tool.Name] == hashes[i]
		case err != nil:
			return err
		}
		if upToDate {
			continue
		}
		if err := r.registerTool(ctx, tool, hashes[i], kitHash); err != nil {
			return err
		}
		r.acked[tool.Name] = hashes[i]
		sent++
	}
	r.s.log.Info("atp: registered tools", "sent", sent, "unchanged", len(tools)-sent, "toolkit_hash", kitHash)
	return nil
}

type verifyHashBody struct {
	APIKey      string `json:"api_key"`
	AppName     string `json:"app_name"`
	ToolkitHash string `json:"toolkit_hash"`
}

type verifyToolBody struct {
	APIKey   string `json:"api_key"`
	ToolName string `json:"tool_name"`
	ToolHash string `json:"tool_hash"`
}

type registerBody struct {
	FunctionID          string           `json:"function_id"`
	APIKey              string           `json:"api_key"`
	AppName             string           `json:"app_name"`
	ProgrammingLanguage string           `json:"programming_language"`
	CodeHash            string           `json:"code_hash"`
	ToolkitHash         string           `json:"toolkit_hash"`
	Metadata            registerMetadata `json:"metadata"`
}

type registerMetadata struct {
	Params         []string `json:"params"`
	RequiredParams []string `json:"required_params"`
	Description    string   `json:"description"`
	// Null, not "", when the tool has no auth: that is what the Python SDK
	// sends for None, and what servers test for.
	AuthProvider   *string         `json:"auth_provider"`
	AuthType       *string         `json:"auth_type"`
	AuthWith       *string         `json:"auth_with"`
	SampleResponse string          `json:"sample_response"`
	SourceCode     string          `json:"source_code"`
	InputSchema    json.RawMessage `json:"input_schema"`
	OutputSchema   json.RawMessage `json:"output_schema,omitempty"`
	// NeedsAuthToken is sent only when true (docs/extensions.md §4), so
	// that the server can refuse a call without a token before routing it,
	// also for a tool with no auth_provider. Omitted otherwise, so that an
	// old server sees the body it always did.
	NeedsAuthToken bool `json:"needs_auth_token,omitempty"`
}

// verify asks a verify endpoint whether the server is up to date. Like the
// Python SDK, a 200 reply that is not {"up_to_date": true} means no.
func (r *registrar) verify(ctx context.Context, op, path string, body any) (bool, error) {
	status, reply, err := r.post(ctx, op, path, body)
	if err != nil {
		return false, err
	}
	switch {
	case status == http.StatusNotFound || status == http.StatusMethodNotAllowed:
		r.s.log.Debug("atp: server has no "+path+"; registering without it", "status", status)
		return false, errNoEndpoint
	case status/100 != 2:
		return false, refusal(op, status, reply)
	}
	var v struct {
		UpToDate bool `json:"up_to_date"`
	}
	if err := json.Unmarshal(reply, &v); err != nil {
		r.s.log.Warn("atp: unreadable "+op+" reply; assuming not up to date", "err", err)
		return false, nil
	}
	return v.UpToDate, nil
}

func (r *registrar) registerTool(ctx context.Context, t *Tool, hash, kitHash string) error {
	body := registerBody{
		FunctionID:          t.Name,
		APIKey:              r.s.cfg.APIKey,
		AppName:             r.s.tk.name,
		ProgrammingLanguage: "Go",
		CodeHash:            hash,
		ToolkitHash:         kitHash,
		Metadata: registerMetadata{
			Params:         nonNil(t.Params),
			RequiredParams: nonNil(t.RequiredParams),
			Description:    t.Description,
			AuthProvider:   nullIfEmpty(t.AuthProvider),
			AuthType:       nullIfEmpty(t.AuthType),
			AuthWith:       nullIfEmpty(t.AuthWith),
			InputSchema:    inputSchema(t),
			OutputSchema:   t.OutputSchema,
			NeedsAuthToken: t.NeedsAuthToken,
		},
	}
	op := "register_tool " + t.Name
	status, reply, err := r.post(ctx, op, "/api/v1/register_tool", body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return refusal(op, status, reply)
	}
	return nil
}

// post sends one registration request. A transport failure is an error;
// any HTTP status is returned for the caller to judge.
func (r *registrar) post(ctx context.Context, op, path string, body any) (int, []byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, &permanentError{fmt.Errorf("%s: encode request: %w", op, err)}
	}
	ctx, cancel := context.WithTimeout(ctx, registerTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.s.ep.api(path), bytes.NewReader(b))
	if err != nil {
		return 0, nil, &permanentError{fmt.Errorf("%s: %w", op, err)}
	}
	// No Authorization header: the key is in the body, as the Python SDK
	// sends it, and an unexpected token header can make a server's auth
	// layer reject a request it would otherwise accept.
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.s.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s: %w", op, err)
	}
	defer resp.Body.Close()
	reply, err := io.ReadAll(io.LimitReader(resp.Body, maxReplyBytes))
	if err != nil {
		return 0, nil, fmt.Errorf("%s: read reply: %w", op, err)
	}
	return resp.StatusCode, reply, nil
}

// refusal describes a non-2xx reply, quoting the server's reason. 408, 429
// and 5xx are worth retrying; any other status is permanent.
func refusal(op string, status int, body []byte) error {
	err := fmt.Errorf("%s: the server answered %d %s: %s", op, status, http.StatusText(status), quoteBody(body))
	if status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500 {
		return err
	}
	return &permanentError{err}
}

// quoteBody returns a reply body fit for one log line or error: on one
// line, cut at 512 bytes.
func quoteBody(b []byte) string {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "(empty body)"
	}
	const max = 512
	if len(s) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Join(strings.Fields(s), " ")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// inputSchema is the tool's params schema, or the schema of any object for
// a hand-written tool without one.
func inputSchema(t *Tool) json.RawMessage {
	if len(t.InputSchema) == 0 {
		return json.RawMessage(`{"type":"object"}`)
	}
	return t.InputSchema
}

// toolContract is what a tool's code_hash covers: everything a caller of
// the tool relies on. A change to any of it re-registers the tool; a change
// to the Go code behind an unchanged contract does not need to.
type toolContract struct {
	// Version is that of this encoding and of what register_tool sends
	// with it: 2 since metadata.needs_auth_token, so that a tool registered
	// without the flag is registered again, with it.
	Version        int      `json:"v"`
	Name           string   `json:"name"`
	Description    string   `json:"description"`
	Params         []string `json:"params"`
	RequiredParams []string `json:"required_params"`
	InputSchema    any      `json:"input_schema"`
	OutputSchema   any      `json:"output_schema"`
	AuthProvider   string   `json:"auth_provider"`
	AuthType       string   `json:"auth_type"`
	AuthWith       string   `json:"auth_with"`
	NeedsAuthToken bool     `json:"needs_auth_token"`
	Hints          Hints    `json:"hints"`
	TimeoutMillis  int64    `json:"timeout_ms"`
}

// toolHash is the hex sha256 of the canonical JSON encoding of the tool's
// contract: struct fields in a fixed order, schemas with their object keys
// sorted and insignificant whitespace dropped, so that equal contracts hash
// equal however their schemas were written.
func toolHash(t *Tool) string {
	c := toolContract{
		Version:        2,
		Name:           t.Name,
		Description:    t.Description,
		Params:         nonNil(t.Params),
		RequiredParams: nonNil(t.RequiredParams),
		InputSchema:    canonicalJSON(inputSchema(t)),
		OutputSchema:   canonicalJSON(t.OutputSchema),
		AuthProvider:   t.AuthProvider,
		AuthType:       t.AuthType,
		AuthWith:       t.AuthWith,
		NeedsAuthToken: t.NeedsAuthToken,
		Hints:          t.Hints,
		TimeoutMillis:  t.Timeout.Milliseconds(),
	}
	b, err := json.Marshal(c)
	if err != nil {
		// Unreachable: every field is plain data and the schemas were
		// checked to be valid JSON before Serve started.
		panic("atp: encode tool contract: " + err.Error())
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// canonicalJSON decodes raw for re-encoding with sorted keys, keeping
// numbers as written. Invalid or empty JSON hashes as its text.
func canonicalJSON(raw json.RawMessage) any {
	if len(raw) == 0 {
		return nil
	}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return string(raw)
	}
	return v
}

// toolkitHash is the hex sha256 over the tool hashes in tool name order
// (the order Toolkit.Tools returns), one per line.
func toolkitHash(toolHashes []string) string {
	h := sha256.New()
	for _, th := range toolHashes {
		h.Write([]byte(th))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil))
}
