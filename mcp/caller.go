package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/atpgo/atp/provider"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// Definition is one tool as MCP announces it in tools/list, whatever the
// MCP library that serves it.
type Definition struct {
	Name        string
	Description string
	// InputSchema is the generated schema of the params, as MCP takes it.
	InputSchema json.RawMessage
	// OutputSchema is the schema of the result when the result is a JSON
	// object, nil otherwise: MCP requires an object there.
	OutputSchema json.RawMessage
	// Hints are announced as annotations, each set explicitly, false
	// included (see the package doc).
	Hints runtime.Hints
}

// Define converts a toolkit tool for MCP once, so that serving it costs no
// schema work per call. Schemas MCP takes as written (what atpgen
// generates: an object root with properties and no root $ref) are only
// checked; others go through provider.FormatTool("mcp", ...), the rules of
// package provider.
func Define(tool *runtime.Tool) (Definition, error) {
	in, out := rootShape(tool.InputSchema), rootShape(tool.OutputSchema)
	if in == shapeAsWritten && (out == shapeAsWritten || out == shapeNotObject || len(tool.OutputSchema) == 0) {
		d := Definition{Name: tool.Name, Description: tool.Description, InputSchema: tool.InputSchema, Hints: tool.Hints}
		if out == shapeAsWritten {
			d.OutputSchema = tool.OutputSchema
		}
		return d, nil
	}
	def, _, err := provider.FormatTool(provider.MCP, provider.Tool{
		Name:         tool.Name,
		Description:  tool.Description,
		InputSchema:  tool.InputSchema,
		OutputSchema: tool.OutputSchema,
	})
	if err != nil {
		return Definition{}, fmt.Errorf("tool %s: %w", tool.Name, err)
	}
	var schemas struct {
		InputSchema  json.RawMessage `json:"inputSchema"`
		OutputSchema json.RawMessage `json:"outputSchema"`
	}
	if err := json.Unmarshal(def, &schemas); err != nil {
		return Definition{}, fmt.Errorf("tool %s: read converted definition: %w", tool.Name, err)
	}
	return Definition{
		Name:         tool.Name,
		Description:  tool.Description,
		InputSchema:  schemas.InputSchema,
		OutputSchema: schemas.OutputSchema,
		Hints:        tool.Hints,
	}, nil
}

type shape int

const (
	shapeOther     shape = iota // for provider.FormatTool to judge
	shapeAsWritten              // an object schema MCP takes as it is
	shapeNotObject              // a plain schema of another type: no outputSchema
)

// rootShape looks at the root of a schema without building it.
func rootShape(schema []byte) shape {
	if len(schema) == 0 || !json.Valid(schema) {
		return shapeOther
	}
	var d atpimpl.Decoder
	d.Reset(schema)
	var typ []byte
	props, other := false, false
	if !d.Object() {
		return shapeOther
	}
	for d.Next() {
		switch string(d.Key()) {
		case "type":
			typ = d.Raw()
		case "properties":
			props = firstByte(d.Raw()) == '{'
		case "$ref", "anyOf", "oneOf", "allOf", "not", "if", "then", "else":
			other = true
			d.Skip()
		default:
			d.Skip()
		}
	}
	switch {
	case d.Failed() || other:
		return shapeOther
	case string(typ) == `"object"` && props:
		return shapeAsWritten
	case len(typ) > 2 && typ[0] == '"' && string(typ) != `"object"`:
		return shapeNotObject
	}
	return shapeOther
}

// CallRequest is one tools/call as an MCP library hands it over.
type CallRequest struct {
	// Name is the tool.
	Name string
	// Arguments is the raw JSON of params.arguments (empty or null for none).
	Arguments json.RawMessage
	// AuthToken is the end user's token the request carried (e.g. from the
	// header named by WithAuthTokenHeader), "" for none: the Caller then
	// uses WithAuthToken's.
	AuthToken string
	// Progress, when the host asked for progress (a progressToken), sends
	// one notifications/progress; nil otherwise. It is not called after Call
	// returned.
	Progress runtime.ProgressFunc
}

// Result is the answer to a tools/call: a text content block, and
// structuredContent when the result is a JSON object.
type Result struct {
	// Text is the text content: a string result itself, any other result
	// as JSON, or the message of a failure.
	Text string
	// StructuredContent is the result when it is a JSON object, else nil.
	StructuredContent json.RawMessage
	// IsError marks a failed call: Text says why, for the model.
	IsError bool
}

// Caller runs tools/call requests against a toolkit for any MCP library:
// Server uses it on mcp-go, and module github.com/atpgo/atp/mcp/gosdk on the
// official go-sdk. It is safe for concurrent use.
type Caller struct {
	tk  *runtime.Toolkit
	cfg config
	log *slog.Logger
	// invokeOpts are the options every call shares; a call that carries its
	// own auth token or progress appends more.
	invokeOpts []runtime.InvokeOption

	mu sync.RWMutex
	// objectResult records, per tool, whether its outputSchema announces an
	// object (so a null result is a broken promise).
	objectResult map[string]bool
}

// NewCaller returns a Caller for tk configured by opts (the HTTP-only
// options, WithBearerToken and WithAuthTokenHeader, are the library's
// transport's concern; the header's name is still used in the message that
// says how to send a missing token).
func NewCaller(tk *runtime.Toolkit, opts ...Option) (*Caller, error) {
	if tk == nil {
		return nil, errors.New("mcp: toolkit is nil")
	}
	cfg := newConfig(tk, opts)
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("mcp: %w", err)
	}
	return newCaller(tk, cfg), nil
}

func newCaller(tk *runtime.Toolkit, cfg config) *Caller {
	c := &Caller{
		tk:           tk,
		cfg:          cfg,
		log:          cfg.logger.With("toolkit", tk.Name(), "transport", "mcp"),
		objectResult: map[string]bool{},
	}
	c.invokeOpts = []runtime.InvokeOption{runtime.WithTransport("mcp")}
	if cfg.callTimeout != 0 {
		c.invokeOpts = append(c.invokeOpts, runtime.WithCallTimeout(cfg.callTimeout))
	}
	if cfg.authToken != "" {
		c.invokeOpts = append(c.invokeOpts, runtime.WithAuthToken(cfg.authToken))
	}
	c.invokeOpts = c.invokeOpts[:len(c.invokeOpts):len(c.invokeOpts)]
	return c
}

// Define converts a tool of the Caller's toolkit (see the function Define)
// and remembers whether its result is announced as an object.
func (c *Caller) Define(tool *runtime.Tool) (Definition, error) {
	d, err := Define(tool)
	if err != nil {
		return d, err
	}
	c.mu.Lock()
	c.objectResult[tool.Name] = len(d.OutputSchema) > 0
	c.mu.Unlock()
	return d, nil
}

// Call runs one tools/call. Every failure of the call itself is a Result
// with IsError, whose text the model can act on; the error is non-nil only
// for a tool the toolkit does not have (it wraps runtime.ErrUnknownTool),
// which MCP answers with a JSON-RPC error.
func (c *Caller) Call(ctx context.Context, req CallRequest) (res Result, err error) {
	start := time.Now()
	token := req.AuthToken
	if token == "" {
		token = c.cfg.authToken
	}
	defer func() {
		// Toolkit.Invoke recovers a tool's panic; this catches one in the
		// code around it, which must not end the process either.
		if v := recover(); v != nil {
			c.log.Error("mcp: internal panic", "tool", req.Name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res, err = Result{Text: fmt.Sprintf("tool %s failed: internal error", req.Name), IsError: true}, nil
		}
	}()
	opts := c.invokeOpts
	if token != "" && token != c.cfg.authToken {
		opts = append(opts, runtime.WithAuthToken(token))
	}
	if req.Progress != nil {
		p := &progress{send: req.Progress}
		defer p.stop()
		opts = append(opts, runtime.WithProgress(p.report))
	}
	out, err := c.tk.Invoke(ctx, req.Name, req.Arguments, opts...)
	if err != nil {
		if errors.Is(err, runtime.ErrUnknownTool) {
			return Result{}, err
		}
		msg := redact(c.failureText(ctx, req.Name, err), token)
		if c.log.Enabled(ctx, slog.LevelDebug) {
			c.log.Debug("mcp: call failed", "tool", req.Name, "latency", time.Since(start), "err", msg)
		}
		return Result{Text: msg, IsError: true}, nil
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.Debug("mcp: call", "tool", req.Name, "latency", time.Since(start))
	}
	return c.successResult(req.Name, out), nil
}

// progress passes a call's reports on until the call returns: a report
// from a goroutine the tool left running must not reach the host after the
// call's answer.
type progress struct {
	mu   sync.Mutex
	send runtime.ProgressFunc
}

func (p *progress) report(done, total float64, msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.send != nil {
		p.send(done, total, msg)
	}
}

func (p *progress) stop() {
	p.mu.Lock()
	p.send = nil
	p.mu.Unlock()
}

// successResult makes the text content and, for an object, the
// structuredContent. A string result is its text, unquoted, as a host shows
// it to the model; other values are their JSON. Values other than objects
// stay text-only (SEP-2106 allows any JSON value as structuredContent, but
// hosts built before it reject one that is not an object, and tools/list
// cannot vary the outputSchema by the host's protocol version).
func (c *Caller) successResult(name string, out json.RawMessage) Result {
	if isObject(out) {
		return Result{Text: string(out), StructuredContent: out}
	}
	c.mu.RLock()
	object := c.objectResult[name]
	c.mu.RUnlock()
	if object {
		// The tool announced an object result and returned something else
		// (a nil pointer gives null). Hosts refuse a success without the
		// structuredContent an outputSchema promises, so say what happened.
		return Result{Text: fmt.Sprintf("tool %s returned %s, not the object its output schema describes", name, abbreviate(out)), IsError: true}
	}
	if isString(out) {
		var s string
		if err := json.Unmarshal(out, &s); err == nil {
			return Result{Text: s}
		}
	}
	return Result{Text: string(out)}
}

// failureText is the message of an isError result: what the model reads.
func (c *Caller) failureText(ctx context.Context, name string, err error) string {
	var verr *runtime.ValidationError
	var timeout *runtime.TimeoutError
	switch {
	case errors.As(err, &verr):
		// One problem per line, so a model (or a person) can fix every
		// field in one go.
		var b strings.Builder
		fmt.Fprintf(&b, "invalid params for %s:", name)
		for _, p := range verr.Problems {
			b.WriteString("\n")
			b.WriteString(p.String())
		}
		return b.String()
	case errors.Is(err, runtime.ErrMissingAuthToken):
		how := "this server has no token for the end user (atp mcp reads it from ATP_AUTH_TOKEN)"
		if c.cfg.authTokenHeader != "" {
			how = "send it in the " + c.cfg.authTokenHeader + " request header"
		}
		return err.Error() + "; " + how
	case errors.As(err, &timeout):
		return err.Error()
	case ctx.Err() != nil:
		return fmt.Sprintf("call to %s cancelled: %v", name, context.Cause(ctx))
	}
	return err.Error()
}

// AuthTokenFromHeader is the end user's token in an HTTP request's header
// value (WithAuthTokenHeader), "" when there is none. With the
// Authorization header a "Bearer " prefix is removed.
func (c *Caller) AuthTokenFromHeader(value string) string {
	v := strings.TrimSpace(value)
	if v != "" && strings.EqualFold(c.cfg.authTokenHeader, "Authorization") {
		if scheme, rest, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
			v = strings.TrimSpace(rest)
		}
	}
	return v
}

// AuthTokenHeader is the header WithAuthTokenHeader named, "" for none.
func (c *Caller) AuthTokenHeader() string { return c.cfg.authTokenHeader }

// Toolkit returns the Caller's toolkit.
func (c *Caller) Toolkit() *runtime.Toolkit { return c.tk }

// Logger returns the Caller's logger (WithLogger, else the toolkit's), with
// the toolkit's name and the transport attached.
func (c *Caller) Logger() *slog.Logger { return c.log }

// redact removes the end user's token from text bound for the host: a tool
// error may quote it (an echoed request, a URL), and the host forwards the
// text to the model.
func redact(text, token string) string {
	if token == "" || !strings.Contains(text, token) {
		return text
	}
	return strings.ReplaceAll(text, token, "[REDACTED]")
}

func firstByte(b []byte) byte {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c
	}
	return 0
}

func isObject(b []byte) bool { return firstByte(b) == '{' }

func isString(b []byte) bool { return firstByte(b) == '"' }

func abbreviate(b []byte) string {
	const max = 80
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}
