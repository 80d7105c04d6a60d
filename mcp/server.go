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
	"sync/atomic"
	"time"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpserver "github.com/mark3labs/mcp-go/server"

	"github.com/atpgo/atp/runtime"
)

// Server serves the tools of one runtime.Toolkit over MCP. Create it with
// NewServer; serve it with ServeStdio or HTTPHandler, as many times and as
// concurrently as needed. It is safe for concurrent use.
type Server struct {
	caller *Caller
	mcp    *mcpserver.MCPServer
	cfg    config
	stop   func()
	// stdioSessions numbers this server's stdio sessions: mcp-go keys its
	// sessions by id.
	stdioSessions atomic.Uint64
}

// Option configures a Server (or a Caller, or AddTools).
type Option func(*config)

type config struct {
	name, version, instructions string
	logger                      *slog.Logger
	authToken                   string
	authTokenHeader             string
	bearerToken                 string
	bearerSet                   bool
	callTimeout                 time.Duration
	maxBodyBytes                int64
}

// DefaultMaxBodyBytes bounds an HTTP request's body (WithMaxBodyBytes).
const DefaultMaxBodyBytes = 4 << 20

func newConfig(tk *runtime.Toolkit, opts []Option) config {
	cfg := config{name: tk.Name(), logger: tk.Logger(), maxBodyBytes: DefaultMaxBodyBytes}
	for _, o := range opts {
		o(&cfg)
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
	return cfg
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
// logged at Debug level with their message; the MCP library's own messages
// are passed on from Warn level up. Auth tokens are never logged.
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

// WithCallTimeout bounds each call of a tool that declares no timeout= of
// its own. As everywhere in this module, zero means the default and a
// negative duration no bound; the default here is no bound, unlike
// runtime.DefaultCallTimeout for Serve and Handler, because MCP hosts apply
// their own timeout and may extend it for a call that keeps reporting
// progress. A call that runs out of time gets an isError result and the
// tool's context is cancelled.
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callTimeout = d } }

// WithMaxBodyBytes bounds the body of one HTTP request (default
// DefaultMaxBodyBytes, 4 MiB); a larger one is answered 413 Request Entity
// Too Large without being read. It bounds a stdio message too: a longer
// line ends the session with an error.
func WithMaxBodyBytes(n int64) Option { return func(c *config) { c.maxBodyBytes = n } }

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
	if c.maxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("WithMaxBodyBytes: expected a size > 0, got %d", c.maxBodyBytes))
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

// buildVersion reads the binary's build information once: it does not
// change while the process runs, and reading it costs more than the rest
// of NewServer.
var buildVersion = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
})

// NewServer returns a server for the tools of tk. The tool list follows the
// toolkit: tools added to or removed from tk later are announced and served
// from then on, and hosts connected over stdio get
// notifications/tools/list_changed (Close stops following). Each tool's
// schemas are converted once with provider.FormatTool("mcp", ...) and
// registered as they are (no reflection). It returns an error for a nil
// toolkit, a tool whose schemas MCP cannot take, or conflicting options; a
// tool that MCP cannot take and is added later is logged and left out.
func NewServer(tk *runtime.Toolkit, opts ...Option) (*Server, error) {
	if tk == nil {
		return nil, errors.New("mcp: NewServer: toolkit is nil")
	}
	cfg := newConfig(tk, opts)
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("mcp: NewServer: %w", err)
	}
	serverOpts := []mcpserver.ServerOption{mcpserver.WithToolCapabilities(true)}
	if cfg.instructions != "" {
		serverOpts = append(serverOpts, mcpserver.WithInstructions(cfg.instructions))
	}
	s := &Server{
		caller: newCaller(tk, cfg),
		mcp:    mcpserver.NewMCPServer(cfg.name, cfg.version, serverOpts...),
		cfg:    cfg,
	}
	stop, err := addTools(s.mcp, s.caller)
	if err != nil {
		return nil, fmt.Errorf("mcp: NewServer: %w", err)
	}
	s.stop = stop
	return s, nil
}

// Close stops following the toolkit's changes; the server keeps serving
// the tools it has.
func (s *Server) Close() error {
	s.stop()
	return nil
}

// MCPServer returns the mcp-go server underneath, to add what this package
// does not (prompts, resources, hooks). Tools added to it directly are
// served too; tools of the toolkit replace any of the same name.
func (s *Server) MCPServer() *mcpserver.MCPServer { return s.mcp }

// AddTools adds the tools of tk to srv, an mcp-go server that a program
// already runs, and keeps them in step with tk (stop ends that): the same
// schemas, annotations, results and errors as NewServer's, over whatever
// transports srv is served on. The end user's token comes from
// WithAuthTokenHeader's header when srv is served over streamable HTTP, else
// from WithAuthToken. Announcing list changes to hosts
// needs srv to have been made with server.WithToolCapabilities(true).
func AddTools(srv *mcpserver.MCPServer, tk *runtime.Toolkit, opts ...Option) (stop func(), err error) {
	if srv == nil {
		return nil, errors.New("mcp: AddTools: server is nil")
	}
	c, err := NewCaller(tk, opts...)
	if err != nil {
		return nil, fmt.Errorf("mcp: AddTools: %w", err)
	}
	stop, err = addTools(srv, c)
	if err != nil {
		return nil, fmt.Errorf("mcp: AddTools: %w", err)
	}
	return stop, nil
}

func addTools(srv *mcpserver.MCPServer, c *Caller) (stop func(), err error) {
	b := &mcpgoBinding{c: c, srv: srv}
	return Follow(c,
		func(defs []Definition) (err error) {
			tools := make([]mcpserver.ServerTool, len(defs))
			for i, d := range defs {
				tools[i] = mcpserver.ServerTool{Tool: mcpgoTool(d), Handler: b.handle}
			}
			// mcp-go panics on a tool it cannot take; that must not take
			// the process down.
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("mcp-go refused the tools: %v", v)
				}
			}()
			srv.AddTools(tools...)
			return nil
		},
		func(names []string) { srv.DeleteTools(names...) })
}

// Follow registers the tools of c's toolkit with an MCP library through add
// and keeps them in step: after each change of the toolkit it calls remove
// with the names of the tools gone and add with the definitions of the new
// or replaced ones (the library announces the list change). It returns the
// error of the first registration (every tool MCP cannot take, joined) and
// stop, which ends the following. A later tool that cannot be converted is
// logged and left out. Module github.com/atpgo/atp/mcp/gosdk uses it to
// serve a toolkit on the official go-sdk.
func Follow(c *Caller, add func([]Definition) error, remove func(names []string)) (stop func(), err error) {
	f := &follower{c: c, add: add, remove: remove, registered: map[string]*runtime.Tool{}}
	stopWatch := c.tk.OnChange(func() {
		if err := f.sync(); err != nil {
			c.log.Error("mcp: a tool added to the toolkit cannot be served over MCP", "err", err)
		}
	})
	if err := f.sync(); err != nil {
		stopWatch()
		return nil, err
	}
	var once sync.Once
	return func() { once.Do(stopWatch) }, nil
}

type follower struct {
	c      *Caller
	add    func([]Definition) error
	remove func([]string)

	mu         sync.Mutex
	registered map[string]*runtime.Tool
}

// sync makes the library's tools those of the toolkit.
func (f *follower) sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tools := f.c.tk.Tools()
	current := make(map[string]bool, len(tools))
	var defs []Definition
	var added []*runtime.Tool
	var errs []error
	for _, t := range tools {
		current[t.Name] = true
		if f.registered[t.Name] == t {
			continue
		}
		d, err := f.c.Define(t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		defs = append(defs, d)
		added = append(added, t)
	}
	var gone []string
	for name := range f.registered {
		if !current[name] {
			gone = append(gone, name)
			delete(f.registered, name)
		}
	}
	if len(gone) > 0 {
		f.remove(gone)
	}
	if len(defs) > 0 {
		if err := f.add(defs); err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, t := range added {
			f.registered[t.Name] = t
		}
	}
	return errors.Join(errs...)
}

// mcpgoTool is d as mcp-go announces it: the schemas as raw JSON (no
// reflection, compacted on the wire), every hint explicit.
func mcpgoTool(d Definition) mcpgo.Tool {
	readOnly, destructive, idempotent := d.Hints.ReadOnly, d.Hints.Destructive, d.Hints.Idempotent
	t := mcpgo.Tool{
		Name:           d.Name,
		Description:    d.Description,
		RawInputSchema: d.InputSchema,
		Annotations: mcpgo.ToolAnnotation{
			ReadOnlyHint:    &readOnly,
			DestructiveHint: &destructive,
			IdempotentHint:  &idempotent,
		},
	}
	if len(d.OutputSchema) > 0 {
		t.RawOutputSchema = d.OutputSchema
	}
	return t
}

// mcpgoBinding answers mcp-go's tools/call with the Caller.
type mcpgoBinding struct {
	c   *Caller
	srv *mcpserver.MCPServer
}

func (b *mcpgoBinding) handle(ctx context.Context, req mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
	creq := CallRequest{Name: req.Params.Name, Arguments: req.Params.RawArguments}
	if len(creq.Arguments) == 0 && req.Params.Arguments != nil {
		// A caller in the same process (mcp-go's in-process client) hands
		// the arguments over decoded.
		raw, err := json.Marshal(req.Params.Arguments)
		if err != nil {
			return toolError(fmt.Sprintf("invalid params for %s:\nparams: %v", req.Params.Name, err)), nil
		}
		creq.Arguments = raw
	}
	if h := b.c.cfg.authTokenHeader; h != "" && req.Header != nil {
		creq.AuthToken = b.c.AuthTokenFromHeader(req.Header.Get(h))
	}
	if m := req.Params.Meta; m != nil && m.ProgressToken != nil {
		creq.Progress = b.progress(ctx, m.ProgressToken)
		if fw, ok := ctx.Value(flushWatcherKey{}).(*flushWatcher); ok {
			defer fw.wait(ctx)
		}
	}
	res, err := b.c.Call(ctx, creq)
	if err != nil {
		// The tool left the toolkit after mcp-go looked it up.
		return nil, err
	}
	out := &mcpgo.CallToolResult{Content: []mcpgo.Content{mcpgo.TextContent{Type: mcpgo.ContentTypeText, Text: res.Text}}, IsError: res.IsError}
	if res.StructuredContent != nil {
		out.StructuredContent = res.StructuredContent
	}
	return out, nil
}

func toolError(msg string) *mcpgo.CallToolResult {
	return &mcpgo.CallToolResult{Content: []mcpgo.Content{mcpgo.TextContent{Type: mcpgo.ContentTypeText, Text: msg}}, IsError: true}
}

// progress sends the call's reports as notifications/progress: written
// directly over stdio (so that each goes out before the answer), through
// mcp-go's session otherwise (its HTTP transport switches the answer to an
// event stream and sends them first).
func (b *mcpgoBinding) progress(ctx context.Context, token mcpgo.ProgressToken) runtime.ProgressFunc {
	return func(done, total float64, msg string) {
		params := map[string]any{"progressToken": token, "progress": done}
		if total > 0 {
			params["total"] = total
		}
		if msg != "" {
			params["message"] = msg
		}
		if s, ok := mcpserver.ClientSessionFromContext(ctx).(*stdioSession); ok {
			s.notify(mcpgo.MethodNotificationProgress, params)
			return
		}
		err := b.srv.SendNotificationToClient(ctx, string(mcpgo.MethodNotificationProgress), params)
		if err != nil {
			if b.c.log.Enabled(ctx, slog.LevelDebug) {
				b.c.log.Debug("mcp: progress not sent", "err", err)
			}
			return
		}
		if fw, ok := ctx.Value(flushWatcherKey{}).(*flushWatcher); ok {
			fw.expect()
		}
	}
}
