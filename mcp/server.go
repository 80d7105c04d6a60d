package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/provider"
	"github.com/atpgo/atp/runtime"
)

// Server serves the tools of one runtime.Toolkit over MCP. Create it with
// NewServer; serve it with ServeStdio or HTTPHandler, as many times and as
// concurrently as needed. It is safe for concurrent use.
type Server struct {
	tk  *runtime.Toolkit
	sdk *mcpsdk.Server
	log *slog.Logger
	// sdkLog gets the SDK's own messages: it logs every stateless HTTP
	// request's session at Info, so only its warnings and errors pass.
	sdkLog *slog.Logger
	cfg    config
	// invokeOpts are the options every call shares; calls that carry their
	// own auth token append one more.
	invokeOpts []runtime.InvokeOption
}

// Option configures a Server.
type Option func(*config)

type config struct {
	name, version, instructions string
	logger                      *slog.Logger
	authToken                   string
	authTokenHeader             string
	bearerToken                 string
	bearerSet                   bool
	defaultTimeout              time.Duration
}

// WithName sets the server name announced to MCP hosts (serverInfo.name).
// Default: the toolkit's name, or "atp" when that is empty.
func WithName(name string) Option { return func(c *config) { c.name = name } }

// WithVersion sets the server version announced to MCP hosts
// (serverInfo.version). Default: the main module's version from the
// binary's build information, "(devel)" for a source build.
func WithVersion(version string) Option { return func(c *config) { c.version = version } }

// WithInstructions sets the instructions MCP hosts may add to the model's
// prompt: how the tools fit together, what to call first.
func WithInstructions(text string) Option { return func(c *config) { c.instructions = text } }

// WithLogger sets the logger (default: the toolkit's). Failed calls are
// logged at Debug level with their message; the MCP SDK's own messages are
// passed on from Warn level up. Auth tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithAuthToken sets the end user's token (OAuth access token or API key)
// passed to tools that need one (a runtime.AuthToken parameter or auth=).
// It serves every call on every transport, unless an HTTP request carries
// its own token (WithAuthTokenHeader). For stdio this is the only source:
// `atp mcp` reads it from the ATP_AUTH_TOKEN environment variable. Without
// any token, such tools answer with an isError result that says how to
// provide one; tools without auth never see the token.
func WithAuthToken(token string) Option { return func(c *config) { c.authToken = token } }

// WithAuthTokenHeader makes the HTTP handler take the end user's token for
// each call from this request header (e.g. "X-ATP-Auth-Token"); a request
// without the header falls back to WithAuthToken. With "Authorization" the
// value's "Bearer " prefix is removed; that header cannot be combined with
// WithBearerToken, which already uses it.
func WithAuthTokenHeader(name string) Option { return func(c *config) { c.authTokenHeader = name } }

// WithBearerToken makes the HTTP handler refuse, with 401 Unauthorized, every
// request that does not carry "Authorization: Bearer <token>". Use it
// whenever the server listens on more than loopback. The token must not be
// empty. It guards the MCP endpoint and is never passed to tools.
func WithBearerToken(token string) Option {
	return func(c *config) { c.bearerToken, c.bearerSet = token, true }
}

// WithDefaultTimeout bounds each call of a tool that declares no timeout of
// its own (default: no bound; MCP hosts usually apply their own). A call that
// runs out of time gets an isError result and the tool's context is
// cancelled.
func WithDefaultTimeout(d time.Duration) Option { return func(c *config) { c.defaultTimeout = d } }

// NewServer returns a server for the tools tk has now: tools added to tk
// later are not announced. Each tool's schemas are converted once with
// provider.FormatTool("mcp", ...) and registered as they are (no reflection).
// It returns an error for a nil toolkit, a tool whose schemas MCP cannot
// take, or conflicting options.
func NewServer(tk *runtime.Toolkit, opts ...Option) (*Server, error) {
	if tk == nil {
		return nil, errors.New("mcp: NewServer: toolkit is nil")
	}
	cfg := config{name: tk.Name(), logger: tk.Logger()}
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("mcp: NewServer: %w", err)
	}
	if cfg.name == "" {
		cfg.name = "atp" // MCP requires a name; a toolkit may have none
	}
	if cfg.version == "" {
		cfg.version = buildVersion()
	}
	if cfg.logger == nil {
		cfg.logger = slog.Default()
	}
	s := &Server{
		tk:     tk,
		cfg:    cfg,
		log:    cfg.logger.With("toolkit", tk.Name(), "transport", "mcp"),
		sdkLog: slog.New(minLevelHandler{cfg.logger.Handler(), slog.LevelWarn}).With("toolkit", tk.Name(), "transport", "mcp"),
	}
	s.invokeOpts = []runtime.InvokeOption{runtime.WithTransport("mcp")}
	if cfg.defaultTimeout > 0 {
		s.invokeOpts = append(s.invokeOpts, runtime.WithDefaultTimeout(cfg.defaultTimeout))
	}
	if cfg.authToken != "" {
		s.invokeOpts = append(s.invokeOpts, runtime.WithAuthToken(cfg.authToken))
	}
	s.invokeOpts = s.invokeOpts[:len(s.invokeOpts):len(s.invokeOpts)]

	s.sdk = mcpsdk.NewServer(
		&mcpsdk.Implementation{Name: cfg.name, Version: cfg.version},
		&mcpsdk.ServerOptions{
			Instructions: cfg.instructions,
			Logger:       s.sdkLog,
			// Tools, even for an empty toolkit, and nothing else: the list
			// never changes after NewServer, and the server sends no logs.
			Capabilities: &mcpsdk.ServerCapabilities{Tools: &mcpsdk.ToolCapabilities{}},
		})
	var errs []error
	for _, tool := range tk.Tools() {
		if err := s.register(tool); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("mcp: NewServer: %w", errors.Join(errs...))
	}
	return s, nil
}

func (c *config) check() error {
	var errs []error
	if c.bearerSet && c.bearerToken == "" {
		errs = append(errs, errors.New("WithBearerToken: token is empty"))
	}
	if c.authTokenHeader != "" {
		if !validHeaderName(c.authTokenHeader) {
			errs = append(errs, fmt.Errorf("WithAuthTokenHeader: %q is not a valid HTTP header name", c.authTokenHeader))
		} else if c.bearerToken != "" && strings.EqualFold(c.authTokenHeader, "Authorization") {
			errs = append(errs, errors.New(`WithAuthTokenHeader("Authorization") conflicts with WithBearerToken, which uses that header: pick another header for the end user's token`))
		}
	}
	if c.defaultTimeout < 0 {
		errs = append(errs, fmt.Errorf("WithDefaultTimeout: want a duration >= 0, got %s", c.defaultTimeout))
	}
	return errors.Join(errs...)
}

// validHeaderName reports whether name is an RFC 9110 field name (a token).
func validHeaderName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// register adds one tool to the SDK server with its converted schemas.
func (s *Server) register(tool *runtime.Tool) (err error) {
	def, _, err := provider.FormatTool(provider.MCP, provider.Tool{
		Name:         tool.Name,
		Description:  tool.Description,
		InputSchema:  tool.InputSchema,
		OutputSchema: tool.OutputSchema,
	})
	if err != nil {
		return fmt.Errorf("tool %s: %w", tool.Name, err)
	}
	var schemas struct {
		InputSchema  json.RawMessage `json:"inputSchema"`
		OutputSchema json.RawMessage `json:"outputSchema"`
	}
	if err := json.Unmarshal(def, &schemas); err != nil {
		return fmt.Errorf("tool %s: read converted definition: %w", tool.Name, err)
	}
	t := &mcpsdk.Tool{
		Name:        tool.Name,
		Description: tool.Description,
		InputSchema: schemas.InputSchema,
		Annotations: annotations(tool.Hints),
	}
	hasOutputSchema := len(schemas.OutputSchema) > 0
	if hasOutputSchema {
		t.OutputSchema = schemas.OutputSchema
	}
	// The SDK panics on a schema it cannot take; the conversion above should
	// make that impossible, but a bad tool must not take the process down.
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("tool %s: MCP SDK refused the tool: %v", tool.Name, v)
		}
	}()
	s.sdk.AddTool(t, s.handler(tool.Name, hasOutputSchema))
	return nil
}

// annotations sets every hint the directive decides, false ones included:
// the MCP defaults (destructiveHint true) would otherwise make hosts treat a
// tool that merely adds data as destructive. openWorldHint is left unset
// (its spec default is true): no directive says whether a Go function
// reaches beyond its process, and claiming a closed world we cannot check
// would be the unsafe mistake.
func annotations(h runtime.Hints) *mcpsdk.ToolAnnotations {
	destructive := h.Destructive
	return &mcpsdk.ToolAnnotations{
		ReadOnlyHint:    h.ReadOnly,
		DestructiveHint: &destructive,
		IdempotentHint:  h.Idempotent,
	}
}

// handler answers tools/call for one tool. Every failure of the call itself
// becomes an isError result the model can read and act on; only a request
// the protocol cannot serve (an unknown tool) is a JSON-RPC error.
func (s *Server) handler(name string, hasOutputSchema bool) mcpsdk.ToolHandler {
	return func(ctx context.Context, req *mcpsdk.CallToolRequest) (res *mcpsdk.CallToolResult, err error) {
		start := time.Now()
		token := s.requestAuthToken(req)
		defer func() {
			// Toolkit.Invoke recovers a tool's panic; this catches one in
			// the code around it, which must not end the process either.
			if v := recover(); v != nil {
				s.log.Error("mcp: internal panic", "tool", name, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
				res, err = errorResult(fmt.Sprintf("tool %s failed: internal error", name)), nil
			}
		}()
		ctx, release := bindLifetime(ctx)
		defer release()

		opts := s.invokeOpts
		if token != "" && token != s.cfg.authToken {
			opts = append(opts, runtime.WithAuthToken(token))
		}
		var args []byte
		if req.Params != nil {
			args = req.Params.Arguments
		}
		out, err := s.tk.Invoke(ctx, name, args, opts...)
		if err != nil {
			if errors.Is(err, runtime.ErrUnknownTool) {
				return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: err.Error()}
			}
			msg := redact(s.failureText(ctx, name, err), token)
			if s.log.Enabled(ctx, slog.LevelDebug) {
				s.log.Debug("mcp: call failed", "tool", name, "latency", time.Since(start), "err", msg)
			}
			return errorResult(msg), nil
		}
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.Debug("mcp: call", "tool", name, "latency", time.Since(start))
		}
		return s.successResult(name, out, hasOutputSchema), nil
	}
}

// successResult carries the result as JSON text, and as structuredContent
// when it is an object. Other JSON values (SEP-2106 allows any, and the SDK
// would send them) stay text-only: hosts built before SEP-2106 reject a
// structuredContent that is not an object, and tools/list cannot vary its
// outputSchema by the host's protocol version.
func (s *Server) successResult(name string, out json.RawMessage, hasOutputSchema bool) *mcpsdk.CallToolResult {
	text := &mcpsdk.TextContent{Text: string(out)}
	if isObject(out) {
		return &mcpsdk.CallToolResult{Content: []mcpsdk.Content{text}, StructuredContent: out}
	}
	if hasOutputSchema {
		// The tool announced an object result and returned something else
		// (a nil pointer gives null). Hosts refuse a success without the
		// structuredContent an outputSchema promises, so say what happened.
		return errorResult(fmt.Sprintf("tool %s returned %s, not the object its output schema describes", name, abbreviate(out)))
	}
	return &mcpsdk.CallToolResult{Content: []mcpsdk.Content{text}}
}

// failureText is the message of an isError result: what the model reads.
func (s *Server) failureText(ctx context.Context, name string, err error) string {
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
		if s.cfg.authTokenHeader != "" {
			how = "send it in the " + s.cfg.authTokenHeader + " request header"
		}
		return err.Error() + "; " + how
	case errors.As(err, &timeout):
		return err.Error()
	case ctx.Err() != nil:
		return fmt.Sprintf("call to %s cancelled: %v", name, context.Cause(ctx))
	}
	return err.Error()
}

func errorResult(msg string) *mcpsdk.CallToolResult {
	return &mcpsdk.CallToolResult{IsError: true, Content: []mcpsdk.Content{&mcpsdk.TextContent{Text: msg}}}
}

// requestAuthToken is the end user's token for one call: from the HTTP
// header when configured and present, else the server's own.
func (s *Server) requestAuthToken(req *mcpsdk.CallToolRequest) string {
	if s.cfg.authTokenHeader != "" && req.Extra != nil && req.Extra.Header != nil {
		if v := strings.TrimSpace(req.Extra.Header.Get(s.cfg.authTokenHeader)); v != "" {
			if strings.EqualFold(s.cfg.authTokenHeader, "Authorization") {
				if scheme, rest, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "Bearer") {
					v = strings.TrimSpace(rest)
				}
			}
			if v != "" {
				return v
			}
		}
	}
	return s.cfg.authToken
}

// redact removes the end user's token from text bound for the host: a tool
// error may quote it (an echoed request, a URL), and the host forwards the
// text to the model.
func redact(text, token string) string {
	if token == "" || !strings.Contains(text, token) {
		return text
	}
	return strings.ReplaceAll(text, token, "[REDACTED]")
}

func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		}
		return c == '{'
	}
	return false
}

func abbreviate(b []byte) string {
	const max = 80
	s := strings.TrimSpace(string(b))
	if len(s) > max {
		return s[:max] + "…"
	}
	return s
}

// lifetimeKey marks, in the context a session is connected with, the context
// whose end must cancel the session's running calls. The SDK detaches
// handler contexts from the connection's cancellation (so that a stateful
// session outlives the request that opened it); for stdio and for stateless
// HTTP that context is the serve call or the HTTP request, and once it ends
// no result can be delivered.
type lifetimeKey struct{}

func withLifetime(ctx context.Context) context.Context {
	return context.WithValue(ctx, lifetimeKey{}, ctx)
}

// bindLifetime returns ctx, cancelled also when the lifetime context found in
// it ends.
func bindLifetime(ctx context.Context) (context.Context, func()) {
	life, _ := ctx.Value(lifetimeKey{}).(context.Context)
	if life == nil || life.Done() == nil {
		return ctx, func() {}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(life, func() { cancel(context.Cause(life)) })
	return ctx, func() {
		stop()
		cancel(nil)
	}
}

// minLevelHandler drops records below min.
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{h.Handler.WithGroup(name), h.min}
}
