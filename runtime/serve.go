package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Transport is how Serve reaches the ATP server: ServeConfig.Transport.
//
// The default is TransportWS, the hosted platform's toolkit protocol: one
// connection on which the server pushes calls as they come. (The agent
// side, package llmclient, has a Transport of its own whose default is
// HTTP: an agent sends a request when it has one, which one POST does.)
type Transport string

const (
	// TransportWS is the ATP v1 WebSocket session (the default).
	TransportWS Transport = "ws"
	// TransportHTTP polls the server's HTTP inbox, for networks that block
	// WebSockets. See docs/extensions.md for the long-poll it uses when the
	// server offers one.
	TransportHTTP Transport = "http"
	// TransportPlatools speaks the Platools SDK wire to a Platos platform
	// (docs/protocol.md §4): URL is the platform's base URL (PLATOS_URL) and
	// APIKey its service secret (PLATOS_SECRET). There is no HTTP
	// registration: the tools are declared on the connection.
	TransportPlatools Transport = "platools"
)

// ServeConfig configures Toolkit.Serve. URL and APIKey are required; every
// other field has a default used when it is zero.
type ServeConfig struct {
	// URL is the ATP server's base URL, e.g. "https://api.chat-atp.com" or
	// "http://127.0.0.1:7777/atp". The scheme is http, https, ws or wss;
	// the WebSocket uses ws/wss and registration and the inbox http/https,
	// whichever form is given. A path prefix and a query are kept. Over
	// TransportPlatools it is the Platos platform's URL (PLATOS_URL, with
	// ?entity= and ?env= when the platform wants them), rewritten to the
	// session URL as the Platools SDKs do (docs/protocol.md §4.1).
	URL string
	// APIKey is the toolkit's ATP API key. It is sent as the protocol wants
	// (in the WebSocket and inbox paths, in registration bodies, and as
	// "Authorization: Bearer" on the WebSocket handshake) and never appears
	// in a log line or a returned error. Over TransportPlatools it is the
	// platform's service secret (PLATOS_SECRET), sent only in that header.
	APIKey string
	// Transport is TransportWS (default), TransportHTTP or
	// TransportPlatools.
	Transport Transport

	// Logger receives Serve's logs (default: the toolkit's logger).
	Logger *slog.Logger
	// OnState is called on each change of connection state, one call at a
	// time and in order, from Serve's goroutines: it must not block.
	OnState func(State)
	// Status, when set, is kept up to date for health checks.
	Status *Status

	// MaxInFlight bounds the calls running at once (default 64). Requests
	// past the bound wait for a free slot; none is dropped.
	MaxInFlight int
	// CallTimeout bounds calls to tools that declare no timeout= of their
	// own. Zero means the default, DefaultCallTimeout (60s); negative means
	// no bound.
	CallTimeout time.Duration
	// ReadLimit is the largest frame (or inbox reply) accepted, in bytes
	// (default 4 MiB). A larger request is refused with an error response
	// when its request_id can be read; the session goes on.
	ReadLimit int64
	// PingInterval is the WebSocket keepalive period (default 30s). Over
	// TransportPlatools it is also the period of the heartbeat frame, which
	// reports each tool's health.
	PingInterval time.Duration
	// PongTimeout is how long after a ping the server may take to show it
	// is alive (default 20s): the connection is dropped as dead when
	// nothing, neither a frame nor a pong, arrives for PingInterval +
	// PongTimeout. It also bounds each write (give or take a second).
	PongTimeout time.Duration
	// DrainTimeout bounds the graceful shutdown (default 10s): when ctx is
	// cancelled, calls already running get this long to finish and be
	// answered before the connection is closed.
	DrainTimeout time.Duration

	// Backoff is the reconnect policy.
	Backoff Backoff
	// MaxAttempts is how many connection attempts in a row may fail before
	// Serve gives up and returns the last cause; 0 means never give up.
	// The count restarts after a healthy session (see Backoff.ResetAfter).
	MaxAttempts int

	// PollInterval is the pause between two empty inbox polls when the
	// server does not hold polls open (TransportHTTP only; default 1s).
	PollInterval time.Duration
	// InboxWait is how long the toolkit asks the server to hold an inbox
	// poll open while no call is pending (TransportHTTP only; default 25s,
	// whole seconds; negative turns the long-poll request off).
	InboxWait time.Duration

	// HTTPClient makes the registration and inbox requests (default: a
	// client on http.DefaultTransport; every request has its own timeout).
	HTTPClient *http.Client
	// Dialer opens the WebSocket (default: proxy from the environment, 15s
	// handshake timeout).
	Dialer *websocket.Dialer

	// clock and rnd are swapped by tests.
	clock clock
	rnd   func() float64
}

// StateKind names a connection state.
type StateKind uint8

const (
	// StateConnected: registration is done and calls can reach the
	// toolkit. Over WebSocket that is when the server greets the session
	// (atp_client_connected, which a server sends once it routes calls to
	// the connection), when a first tool request arrives, or, with a
	// server that never greets, a second after the handshake. Over the
	// inbox transport it is when the last poll succeeded.
	StateConnected StateKind = iota + 1
	// StateDisconnected: the session ended; State.Reason says why.
	StateDisconnected
	// StateReconnecting: the next attempt starts after State.In.
	StateReconnecting
)

func (k StateKind) String() string {
	switch k {
	case StateConnected:
		return "connected"
	case StateDisconnected:
		return "disconnected"
	case StateReconnecting:
		return "reconnecting"
	}
	return "offline"
}

// State is one connection state change reported by Serve.
type State struct {
	Kind StateKind
	// Reason is why the session ended or the attempt failed
	// (StateDisconnected, StateReconnecting). On shutdown it is ctx's
	// cause. It never holds the API key.
	Reason error
	// In is the delay before the next attempt, and Attempt its number in
	// the current run of failures, from 2 (StateReconnecting).
	In      time.Duration
	Attempt int
}

func (s State) String() string {
	switch s.Kind {
	case StateDisconnected:
		return fmt.Sprintf("disconnected: %v", s.Reason)
	case StateReconnecting:
		return fmt.Sprintf("reconnecting in %s (attempt %d): %v", s.In, s.Attempt, s.Reason)
	}
	return s.Kind.String()
}

// Status holds the latest State of one Serve, for a health check:
//
//	var status runtime.Status
//	go tk.Serve(ctx, runtime.ServeConfig{URL: u, APIKey: k, Status: &status})
//	http.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
//		if !status.Online() {
//			http.Error(w, status.State().String(), http.StatusServiceUnavailable)
//		}
//	})
//
// The zero value is offline. It is safe for concurrent use.
type Status struct {
	mu    sync.Mutex
	state State
}

// Online reports whether the toolkit is connected to the ATP server.
func (s *Status) Online() bool { return s.State().Kind == StateConnected }

// State returns the latest state.
func (s *Status) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state
}

func (s *Status) set(st State) {
	s.mu.Lock()
	s.state = st
	s.mu.Unlock()
}

// Serve registers the toolkit with the ATP server at cfg.URL and answers the
// server's tool calls until ctx is done, reconnecting with backoff when the
// connection drops. The configuration is checked before anything is sent.
//
// When ctx is cancelled Serve takes no new requests (any that arrive are
// answered with an error saying the toolkit is shutting down; over
// WebSocket it first tells the server, which then routes new calls to the
// toolkit's other connections), lets running calls finish and answers them
// for up to cfg.DrainTimeout, closes the WebSocket with status 1000 and
// returns nil.
//
// Registration (docs/protocol.md §1.1) runs before every connection, so tools added to
// the toolkit while Serve runs are announced at the next reconnect. Over
// TransportPlatools the tools are declared on each connection instead
// (docs/protocol.md §4).
//
// Serve returns an error when the configuration is invalid, when the server
// refuses the registration or the API key (these are not retried), or after
// cfg.MaxAttempts failed attempts in a row. Over TransportPlatools it also
// returns when the platform refuses the secret or the entity (an error frame
// and close 1008), closes the connection because the secret was rotated
// (close 4001), or hands the entity to a newer connection (an error wrapping
// ErrSuperseded); none of these is retried. The API key appears in no error
// and no log line.
func (t *Toolkit) Serve(ctx context.Context, cfg ServeConfig) error {
	s, err := newServer(t, cfg)
	if err != nil {
		return err
	}
	return s.run(ctx)
}

// server is the state of one Serve call. Nothing in it is shared with
// another Serve, of the same toolkit or another.
type server struct {
	tk    *Toolkit
	cfg   ServeConfig
	ep    endpoints
	red   redactor
	log   *slog.Logger
	clock clock
	rnd   func() float64
	http  *http.Client

	// calls bounds the WebSocket sessions' calls running at once.
	calls callSlots
	// slots are taken by the inbox poller before each poll, so that it
	// only takes requests it can start at once.
	slots chan struct{}
	reg   *registrar
	inbox *inboxPoller // nil for the WebSocket transport
	bufs  sync.Pool    // *[]byte response buffers

	// platools is the session URL of TransportPlatools ("" otherwise), and
	// health what its heartbeats report.
	platools string
	health   *toolHealth

	stateMu sync.Mutex // serialises state reports
	online  bool       // the last state reported was StateConnected
}

func newServer(t *Toolkit, cfg ServeConfig) (*server, error) {
	fail := func(format string, args ...any) (*server, error) {
		return nil, fmt.Errorf("serve toolkit %s: "+format, append([]any{t.name}, args...)...)
	}
	var ptURL string
	if cfg.Transport == TransportPlatools {
		// The Platools SDKs read these from the environment: say which
		// variable was left empty.
		if cfg.URL == "" {
			return fail("ServeConfig.URL is empty: set it to the Platos platform's URL (PLATOS_URL)")
		}
		if cfg.APIKey == "" {
			return fail("ServeConfig.APIKey is empty: set it to the Platos service secret (PLATOS_SECRET)")
		}
		u, err := platoolsURL(cfg.URL)
		if err != nil {
			return nil, newRedactor(cfg.APIKey).err(fmt.Errorf("serve toolkit %s: %w", t.name, err))
		}
		ptURL = u
	}
	if cfg.APIKey == "" {
		return fail("ServeConfig.APIKey is empty")
	}
	red := newRedactor(cfg.APIKey)
	var ep endpoints
	if ptURL == "" {
		var err error
		if ep, err = parseServeURL(cfg.URL, cfg.APIKey); err != nil {
			return nil, red.err(fmt.Errorf("serve toolkit %s: %w", t.name, err))
		}
	}
	switch cfg.Transport {
	case "":
		cfg.Transport = TransportWS
	case TransportWS, TransportHTTP, TransportPlatools:
	default:
		return fail("ServeConfig.Transport: expected %q, %q or %q, got %q", TransportWS, TransportHTTP, TransportPlatools, cfg.Transport)
	}
	tools := t.Tools()
	if len(tools) == 0 {
		return fail("the toolkit has no tools; Add them before Serve")
	}
	for _, tool := range tools {
		if len(tool.InputSchema) > 0 && !json.Valid(tool.InputSchema) {
			return fail("tool %s: InputSchema is not valid JSON", tool.Name)
		}
		if len(tool.OutputSchema) > 0 && !json.Valid(tool.OutputSchema) {
			return fail("tool %s: OutputSchema is not valid JSON", tool.Name)
		}
	}
	type check struct {
		name string
		bad  bool
		got  any
	}
	for _, c := range []check{
		{"MaxInFlight", cfg.MaxInFlight < 0, cfg.MaxInFlight},
		{"ReadLimit", cfg.ReadLimit < 0, cfg.ReadLimit},
		{"PingInterval", cfg.PingInterval < 0, cfg.PingInterval},
		{"PongTimeout", cfg.PongTimeout < 0, cfg.PongTimeout},
		{"DrainTimeout", cfg.DrainTimeout < 0, cfg.DrainTimeout},
		{"MaxAttempts", cfg.MaxAttempts < 0, cfg.MaxAttempts},
		{"PollInterval", cfg.PollInterval < 0, cfg.PollInterval},
	} {
		if c.bad {
			return fail("ServeConfig.%s: expected a positive value or 0 for the default, got %v", c.name, c.got)
		}
	}
	if cfg.InboxWait > 0 && cfg.InboxWait%time.Second != 0 {
		return fail("ServeConfig.InboxWait: expected whole seconds, got %s", cfg.InboxWait)
	}
	var err error
	if cfg.Backoff, err = cfg.Backoff.withDefaults(); err != nil {
		return fail("%v", err)
	}
	setDefault(&cfg.MaxInFlight, 64)
	setDefault(&cfg.CallTimeout, DefaultCallTimeout)
	cfg.CallTimeout = max(cfg.CallTimeout, 0)
	setDefault(&cfg.ReadLimit, 4<<20)
	setDefault(&cfg.PingInterval, 30*time.Second)
	setDefault(&cfg.PongTimeout, 20*time.Second)
	setDefault(&cfg.DrainTimeout, 10*time.Second)
	setDefault(&cfg.PollInterval, time.Second)
	setDefault(&cfg.InboxWait, 25*time.Second)
	cfg.InboxWait = max(cfg.InboxWait, 0)

	s := &server{
		tk:    t,
		cfg:   cfg,
		ep:    ep,
		red:   red,
		clock: cfg.clock,
		rnd:   cfg.rnd,
		http:  cfg.HTTPClient,
		slots: make(chan struct{}, cfg.MaxInFlight),
		calls: callSlots{max: cfg.MaxInFlight},

		platools: ptURL,
	}
	logger := cfg.Logger
	if logger == nil {
		logger = t.logger
	}
	s.log = redactedLogger(logger, red).With("toolkit", t.name, "transport", cfg.Transport)
	if s.clock == nil {
		s.clock = realClock{}
	}
	if s.rnd == nil {
		s.rnd = rand.Float64
	}
	if s.http == nil {
		s.http = &http.Client{}
	}
	s.bufs.New = func() any { b := make([]byte, 0, 512); return &b }
	s.reg = &registrar{s: s, acked: map[string]string{}}
	switch cfg.Transport {
	case TransportHTTP:
		s.inbox = newInboxPoller(s)
	case TransportPlatools:
		s.health = newToolHealth()
	}
	return s, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// run is the reconnect loop.
func (s *server) run(ctx context.Context) error {
	defer s.calls.stop()
	s.log.Info("atp: serving toolkit", "url", s.red.str(s.displayURL()), "tools", len(s.tk.Tools()))
	failures := 0
	for {
		connectedAt, err := s.connect(ctx)
		if ctx.Err() != nil {
			s.stop(context.Cause(ctx))
			return nil
		}
		permanent := isPermanent(err)
		err = s.red.err(err)
		if s.isOnline() {
			s.log.Warn("atp: disconnected", "reason", err)
			s.setState(State{Kind: StateDisconnected, Reason: err})
		}
		if permanent {
			if errors.Is(err, ErrSuperseded) {
				s.log.Warn("atp: a newer connection took over; not reconnecting", "err", err)
			} else {
				s.log.Error("atp: the server refused the toolkit; not retrying", "err", err)
			}
			s.stop(err)
			return fmt.Errorf("serve toolkit %s: %w", s.tk.name, err)
		}
		if !connectedAt.IsZero() && s.clock.Now().Sub(connectedAt) >= s.cfg.Backoff.ResetAfter {
			failures = 0
		}
		failures++
		if s.cfg.MaxAttempts > 0 && failures >= s.cfg.MaxAttempts {
			s.log.Error("atp: giving up", "attempts", failures, "err", err)
			s.stop(err)
			return fmt.Errorf("serve toolkit %s: gave up after %d failed attempts in a row: %w", s.tk.name, failures, err)
		}
		delay := s.cfg.Backoff.delay(failures, s.rnd)
		s.log.Warn("atp: reconnecting", "attempt", failures+1, "in", delay, "reason", err)
		s.setState(State{Kind: StateReconnecting, Reason: err, In: delay, Attempt: failures + 1})
		if s.clock.Sleep(ctx, delay) != nil {
			s.stop(context.Cause(ctx))
			return nil
		}
	}
}

// connect registers the tools and runs one session until it ends. It
// returns when the session went up (zero if it never did) and why it ended.
func (s *server) connect(ctx context.Context) (connectedAt time.Time, err error) {
	if s.platools != "" {
		return s.platoolsSession(ctx) // tools are declared on the connection
	}
	if err := s.reg.register(ctx, s.tk.Tools()); err != nil {
		return time.Time{}, err
	}
	if s.inbox != nil {
		return s.inbox.session(ctx)
	}
	return s.wsSession(ctx)
}

// connected reports the session up, saying what showed it (for the log),
// and returns the time it went up.
func (s *server) connected(evidence string) time.Time {
	now := s.clock.Now()
	s.log.Info("atp: connected", "url", s.red.str(s.displayURL()), "on", evidence)
	s.setState(State{Kind: StateConnected})
	return now
}

// stop finishes Serve: the inbox transport drains the calls still running
// (a WebSocket session drains itself, as it needs its connection), then
// the state goes offline.
func (s *server) stop(reason error) {
	if s.inbox != nil {
		s.inbox.drain()
	}
	if s.isOnline() {
		s.setState(State{Kind: StateDisconnected, Reason: reason})
	}
	s.log.Info("atp: stopped")
}

// setState reports a state. Reports come from Serve's goroutine and, for
// StateConnected, from the session's reader or its grace timer; the lock
// keeps them one at a time, and a session reports StateConnected only while
// it is up (see wsSession.routable), so the order is always that of the
// events.
func (s *server) setState(st State) {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	s.online = st.Kind == StateConnected
	if s.cfg.Status != nil {
		s.cfg.Status.set(st)
	}
	if s.cfg.OnState != nil {
		s.cfg.OnState(st)
	}
}

func (s *server) isOnline() bool {
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	return s.online
}

func (s *server) displayURL() string {
	if s.platools != "" {
		return s.platools
	}
	if s.inbox != nil {
		return s.ep.inbox(0)
	}
	return s.ep.ws()
}

// callSlots bounds the tool calls running at once, across the sessions of
// one Serve: MaxInFlight. A call that outlives its session's connection
// keeps its slot until it returns. A call that finds every slot taken
// waits in a queue, without a goroutine of its own; the goroutine that
// frees a slot runs the next waiting call itself, so a slot changes hands
// without a wake-up.
type callSlots struct {
	mu      sync.Mutex
	max     int
	running int
	waiting []func() // FIFO; bounded by each session's backlog
	stopped bool
}

// start takes a slot and returns true when one is free: the caller then
// runs job (and, through finish, what queues behind it). Otherwise job waits
// for a slot and start returns false. After stop, a job runs at once on a
// goroutine of its own: it only answers its request (the session is gone).
func (c *callSlots) start(job func()) bool {
	c.mu.Lock()
	switch {
	case c.running < c.max:
		c.running++
		c.mu.Unlock()
		return true
	case c.stopped:
		c.mu.Unlock()
		go job()
		return false
	}
	c.waiting = append(c.waiting, job)
	c.mu.Unlock()
	return false
}

// finish ends the caller's call. It returns the next waiting job, which the
// caller runs on the same slot, or nil once the slot is free.
func (c *callSlots) finish() func() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiting) > 0 && !c.stopped {
		job := c.waiting[0]
		c.waiting[0] = nil
		c.waiting = c.waiting[1:]
		if len(c.waiting) == 0 {
			c.waiting = nil // let the backing array go
		}
		return job
	}
	c.running--
	return nil
}

// run runs job on a slot start granted, then the jobs that waited for one.
func (c *callSlots) run(job func()) {
	for job != nil {
		job()
		job = c.finish()
	}
}

// stop runs every waiting job at once, each on its own goroutine: Serve is
// over, and they only answer their requests with an error.
func (c *callSlots) stop() {
	c.mu.Lock()
	waiting := c.waiting
	c.waiting, c.stopped = nil, true
	c.mu.Unlock()
	for _, job := range waiting {
		go job()
	}
}

// permanentError marks a failure that retrying cannot fix: the server
// refused the registration or the API key. Serve returns it at once.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// endpoints are the URLs of one ATP server for one API key.
type endpoints struct {
	httpBase string // http(s)://host/prefix, no trailing slash
	wsBase   string // ws(s)://host/prefix
	query    string // the base URL's raw query, "" when none
	key      string // the API key, path-escaped
}

func parseServeURL(raw, key string) (endpoints, error) {
	if raw == "" {
		return endpoints{}, errors.New("ServeConfig.URL is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return endpoints{}, fmt.Errorf("ServeConfig.URL: %w", err)
	}
	var httpScheme, wsScheme string
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		httpScheme, wsScheme = "http", "ws"
	case "https", "wss":
		httpScheme, wsScheme = "https", "wss"
	case "":
		return endpoints{}, fmt.Errorf("ServeConfig.URL %q has no scheme: expected http://, https://, ws:// or wss://", raw)
	default:
		return endpoints{}, fmt.Errorf("ServeConfig.URL: scheme %q not supported: expected http, https, ws or wss", u.Scheme)
	}
	if u.Host == "" {
		return endpoints{}, fmt.Errorf("ServeConfig.URL %q has no host", raw)
	}
	if u.User != nil {
		return endpoints{}, errors.New("ServeConfig.URL must not hold a user name or password; the API key authenticates")
	}
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	ep := endpoints{
		httpBase: httpScheme + "://" + u.Host + prefix,
		wsBase:   wsScheme + "://" + u.Host + prefix,
		key:      url.PathEscape(key),
	}
	if u.RawQuery != "" {
		ep.query = "?" + u.RawQuery
	}
	return ep, nil
}

// api returns the URL of a registration endpoint, path as in docs/protocol.md §1.1.
func (e endpoints) api(path string) string { return e.httpBase + path + e.query }

// ws returns the WebSocket URL (docs/protocol.md §1.2).
func (e endpoints) ws() string {
	return e.wsBase + "/ws/v1/atp/toolkit-client/" + e.key + "/" + e.query
}

// inbox returns the inbox poll URL (docs/protocol.md §1.3), asking the server to hold
// the poll for wait when wait > 0 (docs/extensions.md).
func (e endpoints) inbox(wait time.Duration) string {
	u := e.httpBase + "/api/v1/toolkit/" + e.key + "/inbox" + e.query
	if wait > 0 {
		if e.query == "" {
			u += "?"
		} else {
			u += "&"
		}
		u += "wait=" + strconv.FormatInt(int64(wait/time.Second), 10)
	}
	return u
}

// inboxRespond returns the inbox answer URL (docs/protocol.md §1.3).
func (e endpoints) inboxRespond() string {
	return e.httpBase + "/api/v1/toolkit/" + e.key + "/inbox/respond" + e.query
}

// inboxRelease returns the URL that ends the key's held polls
// (docs/extensions.md).
func (e endpoints) inboxRelease() string {
	return e.httpBase + "/api/v1/toolkit/" + e.key + "/inbox/release" + e.query
}

// request is one tool call received from the server, on any transport.
type request struct {
	id        json.RawMessage // the request_id exactly as sent: echoed back
	tool      string
	params    json.RawMessage
	authToken string
	received  time.Time
	// platos is what a Platos platform sent with the call (TransportPlatools).
	platos *Platos
	// err is the failure outcome answered, for transports that word a
	// failure themselves rather than send errorResult (Platools).
	err error
	// detached: the tool may still run, and read params, after call
	// returns (Invoke enforces a tool's own timeout without waiting).
	detached bool
}

// idString is the request id for Call.RequestID and logs: a string id
// unquoted, any other value as its JSON text.
func (r *request) idString() string {
	if len(r.id) > 0 && r.id[0] == '"' {
		return jsonString(r.id)
	}
	return string(r.id)
}

// jsonString unquotes a JSON string literal; it returns the literal as is
// when it is not one.
func jsonString(lit []byte) string {
	if len(lit) < 2 || lit[0] != '"' {
		return string(lit)
	}
	if bytes.IndexByte(lit, '\\') < 0 {
		return string(lit[1 : len(lit)-1])
	}
	var s string
	if json.Unmarshal(lit, &s) != nil {
		return string(lit)
	}
	return s
}

// validID reports whether a request_id can be echoed: present, not null.
func validID(id json.RawMessage) bool {
	return len(id) > 0 && string(id) != "null"
}

// call runs one request of group g and hands its answer to ans, exactly
// once. It never fails: every outcome is an answer.
//
// The call's context ends at the call timeout, or when the group cancels
// its calls (connection lost, drain deadline passed). Either way the
// answer goes out at that moment, even when the tool ignores its context
// and keeps running: the late result is then dropped, and the tool keeps
// its MaxInFlight worker until it returns. Keeping the default timeout
// here rather than in Invoke also spares a goroutine per call: Invoke
// would run the tool in one of its own to return at the deadline. A
// tool's own timeout= is enforced by Invoke, which returns on
// cancellation too.
func (s *server) call(g *callGroup, req *request, transport string, ans answerer) {
	e, ok := s.tk.lookup(req.tool)
	if !ok {
		_, err := s.invoke(g.ctx, req, transport) // Invoke words the error
		ans.answer(s.outcome(g.ctx, req, nil, err))
		return
	}
	req.detached = e.tool.Timeout != 0
	c := g.start(e.tool.Timeout == 0, s, req, ans)
	res, err := s.invokeEntry(c, e, req, transport)
	if err != nil && c.timedOut() {
		err = &TimeoutError{Tool: req.tool, Timeout: g.timeout}
	}
	if c.claim() {
		ans.answer(s.outcome(g.ctx, req, res, err))
	}
	// The call is over only once an early answer has been sent: the drain
	// waits for calls, then closes the connection.
	c.finish()
}

func (s *server) invoke(ctx context.Context, req *request, transport string) (json.RawMessage, error) {
	e, ok := s.tk.lookup(req.tool)
	if !ok {
		return nil, s.tk.unknownTool(req.tool)
	}
	return s.invokeEntry(ctx, e, req, transport)
}

// invokeEntry is Invoke without options to build: the hot path.
func (s *server) invokeEntry(ctx context.Context, e entry, req *request, transport string) (json.RawMessage, error) {
	cfg := invokeConfig{call: Call{
		Toolkit:   s.tk.name,
		Tool:      e.tool.Name,
		RequestID: req.idString(),
		Transport: transport,
		AuthToken: AuthToken(req.authToken),
		Platos:    req.platos,
	}}
	return s.tk.invokeEntry(ctx, e, req.params, &cfg)
}

// outcome turns Invoke's return into the result to send.
func (s *server) outcome(ctx context.Context, req *request, res json.RawMessage, err error) ([]byte, bool) {
	if err == nil {
		if s.log.Enabled(ctx, slog.LevelDebug) {
			s.log.Debug("atp: call", "tool", req.tool, "request_id", req.idString(), "latency", time.Since(req.received))
		}
		return res, false
	}
	var timeout *TimeoutError
	if ctx.Err() != nil && !errors.As(err, &timeout) {
		// The call was cut short by the toolkit, not by the tool: say why.
		err = fmt.Errorf("call to %s cancelled: %w", req.tool, context.Cause(ctx))
	}
	s.log.Debug("atp: call failed", "tool", req.tool, "request_id", req.idString(), "latency", time.Since(req.received), "err", err)
	req.err = err
	return s.errorResult(err), true
}

// errorResult is the in-band failure result of docs/protocol.md §1.2, {"error": msg},
// with the problem list of a *ValidationError so that the caller (often an
// LLM) can fix every field at once.
func (s *server) errorResult(err error) []byte {
	body := struct {
		Error    string    `json:"error"`
		Problems []Problem `json:"problems,omitempty"`
	}{Error: s.red.str(err.Error())}
	var verr *ValidationError
	if errors.As(err, &verr) {
		body.Problems = verr.Problems
	}
	b, merr := json.Marshal(body)
	if merr != nil {
		// Only a Problem with invalid UTF-8 could get here, and
		// json.Marshal replaces those; keep an answer regardless.
		return []byte(`{"error":"internal error encoding the error"}`)
	}
	return b
}

// errShuttingDown answers requests that arrive or wait for a slot after
// shutdown began.
var errShuttingDown = errors.New("the toolkit is shutting down; the call was not run")

// errConnectionLost cancels calls whose connection is gone: their answer
// could not be delivered.
var errConnectionLost = errors.New("the connection to the ATP server was lost")

// errDrainTimeout cancels calls still running when the drain deadline
// passes.
var errDrainTimeout = errors.New("the toolkit's shutdown deadline passed")

func (s *server) getBuf() *[]byte { return s.bufs.Get().(*[]byte) }
func (s *server) putBuf(b *[]byte) {
	if cap(*b) <= 64<<10 { // a huge result's buffer is not kept around
		*b = (*b)[:0]
		s.bufs.Put(b)
	}
}
