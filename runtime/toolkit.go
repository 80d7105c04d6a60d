package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/atpgo/atp/runtime/atpimpl"
)

// toolNamePattern is the tool names every ATP peer and LLM provider accepts.
var toolNamePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$`)

// Toolkit is a named set of tools, served by the transports. It is safe for
// concurrent use.
type Toolkit struct {
	name   string
	logger *slog.Logger

	mu    sync.RWMutex
	tools map[string]entry

	watchers watchers // OnChange
}

// entry is a tool and its logger, made once at Add so that a call does not
// allocate one.
type entry struct {
	tool   *Tool
	logger *slog.Logger
}

// ToolkitOption configures a Toolkit.
type ToolkitOption func(*Toolkit)

// WithLogger sets the toolkit's logger (default: slog.Default()).
func WithLogger(l *slog.Logger) ToolkitOption {
	return func(t *Toolkit) {
		if l != nil {
			t.logger = l
		}
	}
}

// NewToolkit returns an empty toolkit. name is the ATP app_name under which
// the toolkit registers (the toolkit_id LLM clients ask for).
func NewToolkit(name string, opts ...ToolkitOption) *Toolkit {
	t := &Toolkit{name: name, logger: slog.Default(), tools: map[string]entry{}}
	for _, o := range opts {
		o(t)
	}
	return t
}

// Name returns the toolkit's name.
func (t *Toolkit) Name() string { return t.name }

// Logger returns the toolkit's logger.
func (t *Toolkit) Logger() *slog.Logger { return t.logger }

// Add adds tools. It adds none of them and returns an error when a tool is
// nil, has no Run function or an invalid name, or when a name is taken.
func (t *Toolkit) Add(tools ...*Tool) error {
	added := false
	defer func() {
		if added {
			t.changed() // after the Unlock below, deferred later, has run
		}
	}()
	t.mu.Lock()
	defer t.mu.Unlock()
	seen := map[string]bool{}
	var errs []error
	for i, tool := range tools {
		switch {
		case tool == nil:
			errs = append(errs, fmt.Errorf("toolkit %s: tool #%d is nil", t.name, i))
		case !toolNamePattern.MatchString(tool.Name):
			errs = append(errs, fmt.Errorf("toolkit %s: invalid tool name %q: expected a letter or _ then up to 63 letters, digits, _ or -", t.name, tool.Name))
		case tool.Run == nil:
			errs = append(errs, fmt.Errorf("toolkit %s: tool %s has no Run function", t.name, tool.Name))
		case t.tools[tool.Name].tool != nil || seen[tool.Name]:
			errs = append(errs, fmt.Errorf("toolkit %s: duplicate tool name %q", t.name, tool.Name))
		default:
			seen[tool.Name] = true
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	for _, tool := range tools {
		t.tools[tool.Name] = entry{tool: tool, logger: t.logger.With("toolkit", t.name, "tool", tool.Name)}
	}
	added = len(tools) > 0
	return nil
}

// Tools returns the toolkit's tools sorted by name.
func (t *Toolkit) Tools() []*Tool {
	t.mu.RLock()
	defer t.mu.RUnlock()
	out := make([]*Tool, 0, len(t.tools))
	for _, e := range t.tools {
		out = append(out, e.tool)
	}
	slices.SortFunc(out, func(a, b *Tool) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Tool returns the named tool.
func (t *Toolkit) Tool(name string) (*Tool, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	e, ok := t.tools[name]
	return e.tool, ok
}

// InvokeOption configures one Invoke call.
type InvokeOption interface{ applyInvoke(*invokeConfig) }

type invokeOption func(*invokeConfig)

func (f invokeOption) applyInvoke(c *invokeConfig) { f(c) }

type invokeConfig struct {
	call    Call
	coerce  bool
	timeout time.Duration
}

// WithAuthToken passes the end user's token to a tool that needs one. Tools
// that do not declare one never see it.
func WithAuthToken(token string) InvokeOption {
	return invokeOption(func(c *invokeConfig) { c.call.AuthToken = AuthToken(token) })
}

// WithRequestID sets the call's request id, reported in Call and in logs.
func WithRequestID(id string) InvokeOption {
	return invokeOption(func(c *invokeConfig) { c.call.RequestID = id })
}

// WithTransport names the transport in Call.Transport (default "invoke").
func WithTransport(name string) InvokeOption {
	return invokeOption(func(c *invokeConfig) { c.call.Transport = name })
}

// WithPlatos passes a Platos platform's envelope to the call (Call.Platos),
// as TransportPlatools does; tests of tools that read it use it too.
func WithPlatos(p *Platos) InvokeOption {
	return invokeOption(func(c *invokeConfig) { c.call.Platos = p })
}

// WithStringCoercion makes the decoder accept numbers and booleans given as
// strings ("3", "true"), as HTML form posts send them.
func WithStringCoercion() InvokeOption {
	return invokeOption(func(c *invokeConfig) { c.coerce = true })
}

var decoderPool = sync.Pool{New: func() any { return new(atpimpl.Decoder) }}

// Invoke calls the named tool with a JSON params object and returns its
// result as JSON. Empty params or null count as {}.
//
// The error, when there is one, is one of: an error wrapping ErrUnknownTool;
// an error wrapping ErrMissingAuthToken; a *ValidationError listing every
// problem in params; a *ToolError wrapping what the tool returned; a
// *PanicError; a *TimeoutError; or ctx's error. In every case but the last
// two the tool function has not been called or has returned.
func (t *Toolkit) Invoke(ctx context.Context, name string, params []byte, opts ...InvokeOption) (json.RawMessage, error) {
	e, ok := t.lookup(name)
	if !ok {
		return nil, t.unknownTool(name)
	}
	cfg := invokeConfig{call: Call{Toolkit: t.name, Tool: name, Transport: "invoke"}}
	for _, o := range opts {
		if o != nil {
			o.applyInvoke(&cfg)
		}
	}
	return t.invokeEntry(ctx, e, params, &cfg)
}

// lookup returns the named tool's entry.
func (t *Toolkit) lookup(name string) (entry, bool) {
	t.mu.RLock()
	e, ok := t.tools[name]
	t.mu.RUnlock()
	return e, ok
}

// invokeEntry is Invoke once the tool is found and the options applied.
// cfg is not kept: the transports pass one from their stack.
func (t *Toolkit) invokeEntry(ctx context.Context, e entry, params []byte, cfg *invokeConfig) (json.RawMessage, error) {
	tool := e.tool
	name := tool.Name
	if tool.NeedsAuthToken && cfg.call.AuthToken == "" {
		return nil, fmt.Errorf("tool %s needs the end user's auth token and the call has none: %w", name, ErrMissingAuthToken)
	}
	if !tool.NeedsAuthToken {
		cfg.call.AuthToken = ""
	}
	timeout := tool.Timeout
	if timeout == 0 {
		timeout = cfg.timeout
	}
	if timeout <= 0 {
		return t.run(ctx, e, cfg, params)
	}

	// The tool runs in its own goroutine so that the caller gets its answer
	// at the deadline even from a tool that ignores its context.
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type outcome struct {
		res json.RawMessage
		err error
	}
	done := make(chan outcome, 1)
	own := *cfg // the goroutine may outlive this call
	go func() {
		res, err := t.run(ctx, e, &own, params)
		done <- outcome{res, err}
	}()
	select {
	case o := <-done:
		if o.err != nil && errors.Is(o.err, context.DeadlineExceeded) && ctx.Err() != nil {
			return nil, &TimeoutError{Tool: name, Timeout: timeout}
		}
		return o.res, o.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &TimeoutError{Tool: name, Timeout: timeout}
		}
		return nil, ctx.Err()
	}
}

func (t *Toolkit) unknownTool(name string) error {
	t.mu.RLock()
	names := make([]string, 0, len(t.tools))
	for n := range t.tools {
		names = append(names, n)
	}
	t.mu.RUnlock()
	slices.Sort(names)
	return fmt.Errorf("%w %q (available: %s)", ErrUnknownTool, name, strings.Join(names, ", "))
}

// run decodes and calls the tool, recovering a panic.
func (t *Toolkit) run(ctx context.Context, e entry, cfg *invokeConfig, params []byte) (res json.RawMessage, err error) {
	tool := e.tool
	d := decoderPool.Get().(*atpimpl.Decoder)
	d.Reset(params)
	d.SetCoercion(cfg.coerce)
	call := cfg.call
	call.Logger = e.logger
	defer func() {
		if v := recover(); v != nil {
			stack := debug.Stack()
			call.Logger.Error("tool panicked", "request_id", call.RequestID, "panic", fmt.Sprint(v), "stack", string(stack))
			res, err = nil, &PanicError{Tool: tool.Name, Value: v, Stack: stack}
		}
		// A decoder that saw a panic mid-decode may hold a half-built state;
		// Reset clears all of it before reuse.
		d.Reset(nil)
		decoderPool.Put(d)
	}()
	out, err := tool.Run(ctx, &call, d)
	if d.Failed() {
		return nil, &ValidationError{Tool: tool.Name, Problems: problemsOf(d.Problems())}
	}
	if err != nil {
		return nil, &ToolError{Tool: tool.Name, Err: err}
	}
	return encodeResult(tool.Name, out)
}

func encodeResult(tool string, v any) (json.RawMessage, error) {
	switch r := v.(type) {
	case nil:
		return json.RawMessage("null"), nil
	case json.RawMessage:
		if len(r) == 0 {
			return json.RawMessage("null"), nil
		}
		if !json.Valid(r) {
			return nil, &ToolError{Tool: tool, Err: errors.New("tool returned a json.RawMessage that is not valid JSON")}
		}
		return validUTF8(r), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, &ToolError{Tool: tool, Err: fmt.Errorf("encode result as JSON: %w", err)}
	}
	return validUTF8(b), nil
}

// validUTF8 replaces each invalid UTF-8 sequence of a result with U+FFFD.
// json.Marshal does so for strings, but not inside a json.RawMessage or a
// MarshalJSON's output; a result must be UTF-8 on every wire (a WebSocket
// text frame must be, and strict JSON decoders refuse other bytes). In
// valid JSON such bytes can only be inside strings, where U+FFFD is valid.
func validUTF8(b []byte) []byte {
	if utf8.Valid(b) {
		return b
	}
	return bytes.ToValidUTF8(b, []byte("\uFFFD"))
}
