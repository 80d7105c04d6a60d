package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"

	"github.com/atpgo/atp/internal/schemavalidate"
	"github.com/atpgo/atp/server/store"
)

// Config configures a Server. Every zero field has the default its comment
// names.
type Config struct {
	// Addr is where ListenAndServe listens (default "127.0.0.1:7777").
	Addr string
	// DBPath is the database (store.Open): a SQLite file, "" or
	// store.Memory to keep everything in memory, or a postgres:// URL that
	// any number of servers share. Ignored when Store is set. A server on a
	// SQLite file holds an exclusive lock on DBPath + ".lock" (LockPath)
	// while it runs: a second server on the same file fails in New with
	// ErrDatabaseInUse. `atp keys` and other plain store users need no
	// lock, nor do servers on PostgreSQL.
	DBPath string
	// Store is an open store to use instead of opening DBPath. The Server
	// does not close it, but takes the lock of its SQLite file as for
	// DBPath.
	Store *store.Store
	// Dev: on an empty store, New creates one toolkit key and one LLM key
	// (see DevKeys).
	Dev bool

	// CallTimeout bounds a routed call when the task_request names no
	// timeout of its own. As everywhere in this module, zero means the
	// default: 120s here, what the Python client waits. A negative value,
	// which in package runtime means no bound, is refused: a routed call
	// must end, since an LLM client is waiting for it.
	CallTimeout time.Duration
	// MaxCallTimeout caps a task_request's own timeout_ms (default 10m).
	MaxCallTimeout time.Duration
	// BodyLimit is the largest HTTP request body (default 4 MiB): larger
	// ones get 413.
	BodyLimit int64
	// FrameLimit is the largest WebSocket message (default 4 MiB): a larger
	// one closes the connection with status 1009.
	FrameLimit int64
	// AllowedOrigins are the Origin values (scheme://host[:port]) accepted
	// on the LLM WebSocket besides none at all and the server's own host.
	// "*" accepts any.
	AllowedOrigins []string
	// InboxOnlineWindow is how long after its last inbox poll a toolkit
	// without a WebSocket counts as online (default 90s: the Python SDK polls
	// every 30s, one call at a time).
	InboxOnlineWindow time.Duration
	// InboxMaxWait caps the long-poll an inbox poll may ask for with ?wait=
	// (default 60s).
	InboxMaxWait time.Duration
	// PingInterval is the WebSocket keepalive period (default 30s). A
	// connection that shows no sign of life (frame, ping or pong) for two
	// periods plus 10s is closed.
	PingInterval time.Duration
	// ShutdownTimeout bounds the graceful shutdown of Serve (default 10s).
	ShutdownTimeout time.Duration

	// Schema limits: register_tool refuses a tool whose input or output
	// schema is over one of them with a 400 that names the limit and what
	// the schema has. They bound what a schema costs the server: checking
	// and compiling one takes time linear in its size, but each schema is
	// kept in memory, turned into every provider's format, and checked on
	// every call. A schema stored before a limit was lowered is not
	// refused at start-up: it is logged, and calls to its tool are then
	// only checked to be a JSON object of UTF-8 text.

	// MaxSchemaBytes bounds a schema's size, compacted (default 256 KiB).
	MaxSchemaBytes int
	// MaxSchemaDepth bounds the nesting of objects and arrays in a
	// schema's JSON (default 64; a nested object property takes two
	// levels: "properties", then the property).
	MaxSchemaDepth int
	// MaxSchemaEnum bounds the values of one enum (default 1000).
	MaxSchemaEnum int
	// MaxSchemaProperties bounds the properties of one object, and the
	// names of one required list (default 1000).
	MaxSchemaProperties int

	// Logger receives the server's logs (default slog.Default()). API keys
	// are scrubbed from every record before it gets there.
	Logger *slog.Logger

	// OAuth broker (oauth.go) and webhooks (webhook.go).

	// PublicURL is the base URL browsers and OAuth providers reach the
	// server at, e.g. "https://atp.example.com". Each platform's redirect
	// URI is PublicURL + "/api/v1/oauth/callback/<platform_id>/". Default:
	// http:// and the listen address.
	PublicURL string
	// SecretKey is the 32-byte AES-256 key that seals OAuth tokens, client
	// secrets and webhook secrets in the store. Without it: an in-memory
	// store uses a random key; Dev keeps a generated key beside the
	// database file (DevSecretKeyPath); otherwise the OAuth and webhook
	// endpoints answer 503 and New fails if Platforms is set.
	SecretKey []byte
	// Platforms are OAuth platforms configured outside the store (atp serve
	// --platforms FILE); each shadows a stored platform of the same id.
	Platforms []store.Platform
	// OAuthStateTTL is how long an authorization_url can be used (default
	// 10m); its state works once.
	OAuthStateTTL time.Duration
	// TokenRefreshMargin: an access token with less than this left is
	// refreshed before it is handed out (default 60s).
	TokenRefreshMargin time.Duration
	// OAuthHTTPClient talks to the providers' token and userinfo endpoints
	// (default: a client with a 30s timeout).
	OAuthHTTPClient *http.Client
	// WebhookMaxAttempts bounds the attempts to deliver one event to one
	// webhook (default 8).
	WebhookMaxAttempts int
	// WebhookBackoff is the wait before the second attempt; each later one
	// waits twice as long, up to 5 minutes (default 2s).
	WebhookBackoff time.Duration
	// WebhookRetention is how long the record of a delivery that succeeded
	// or was given up is kept in the store (default 7 days); pending
	// deliveries are kept until they end. Past it, records are deleted
	// within the hour.
	WebhookRetention time.Duration
	// AllowPrivateWebhooks lets webhooks go to loopback, private,
	// link-local and other non-public addresses, for development (atp serve
	// --allow-private-webhooks). Off, such a URL given as a literal address
	// is refused at registration with 400, and every delivery is checked
	// on the address it dials, so that a name resolving to one (DNS
	// rebinding included) is refused too: a webhook cannot make the server
	// reach its own network.
	AllowPrivateWebhooks bool

	// Limits. Each bounds what a peer (with a key or without one) can make
	// the server hold; the README's "Limits" table lists them with their
	// atp serve flags. Every one answers with an error naming it when hit.

	// MaxConnections caps the open TCP connections, WebSockets included
	// (default 10000). A connection past it gets 503 with Retry-After and
	// is closed at once. Applies to Serve, not to Handler.
	MaxConnections int
	// MaxHeaderBytes caps a request's header block, request line included
	// (default 64 KiB): a larger one gets 431.
	MaxHeaderBytes int
	// ReadHeaderTimeout bounds the time to read a request's headers
	// (default 10s); the connection is then closed.
	ReadHeaderTimeout time.Duration
	// BodyReadTimeout bounds the time to read a request body once the key
	// is known (default 30s): a slower body gets 408 and the connection
	// is closed. It also bounds the rest of a WebSocket message once it
	// is past 64 KiB.
	BodyReadTimeout time.Duration
	// WriteTimeout bounds the time to write one HTTP response, counted
	// from its first byte, so long polls and long calls are not cut by it
	// (default 30s).
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long between
	// requests (default 2m).
	IdleTimeout time.Duration
	// UnauthBodyLimit caps what the server reads of a body before it knows
	// the key (default 64 KiB). Requests that send the key in the
	// Authorization header (or the path) are authenticated before any of
	// the body is read; toolkits registering (the Python SDK, our runtime)
	// and old LLM clients put it in the JSON body instead: the server
	// reads the body up to its api_key member, which must come within this
	// many bytes, else 413. An LLM WebSocket whose key is not valid yet
	// has the same cap on its messages until it authenticates.
	UnauthBodyLimit int64
	// UnauthReadTimeout bounds the time to read a body up to its key
	// (default 5s): a slower one gets 408.
	UnauthReadTimeout time.Duration
	// MaxUnauthRequests caps the requests being read before their key is
	// known, and the LLM WebSockets not yet authenticated (default 64).
	// One more gets 503 with Retry-After at once.
	MaxUnauthRequests int
	// MaxConnsPerKey caps the open WebSocket connections of one key
	// (default 64); one more is refused with 429 before the upgrade.
	MaxConnsPerKey int
	// MaxRequestsPerKey caps the HTTP requests of one key in progress at
	// once, inbox long-polls and process/ calls included (default 64); one
	// more gets 429 with Retry-After.
	MaxRequestsPerKey int
	// MaxPendingPerToolkit caps the calls routed to one toolkit and not yet
	// answered (default 1024); one more fails at once with a
	// TASK_RESPONSE error naming the limit.
	MaxPendingPerToolkit int
	// MaxPendingPerLLMKey caps the calls one LLM key has waiting for their
	// answers, over all its connections and requests (default 1024); one
	// more fails at once.
	MaxPendingPerLLMKey int
	// MaxPendingBytesPerLLMKey caps the params bytes of those calls
	// (default 64 MiB); a call that would pass it fails at once.
	MaxPendingBytesPerLLMKey int64
	// MaxWriteQueueBytes caps the bytes waiting to be written to one
	// WebSocket peer (default 8 MiB): what the server has for an LLM client
	// or a toolkit that does not read, or reads slower than it is sent.
	// Past it the connection is closed (1008) and logged, and counted in
	// atp_write_queue_overflows_total; the calls in flight on a toolkit's
	// connection fail, saying why, and an LLM client's calls are taken
	// back. A message finding nothing waiting is sent whatever its size: a
	// peer that takes none of it for 10 seconds is dropped all the same.
	MaxWriteQueueBytes int64
	// MaxToolsPerToolkit caps the tools of one toolkit (default 1000):
	// registering one more new tool gets 409; updating a tool it has is
	// always allowed.
	MaxToolsPerToolkit int
	// PongTimeout is how long a WebSocket peer has to show a sign of life
	// (pong, frame or ping) after each keepalive ping (default 10s): then
	// the connection is closed and the calls in flight on it fail, saying
	// so. This holds for Go toolkits (our runtime answers pings while its
	// tools run). A peer that cannot answer while it works (the Python SDK
	// runs tools on its reading thread) is dropped when nothing at all,
	// its own pings included, has come for PingInterval + PongTimeout.
	PongTimeout time.Duration
	// RevocationCheckInterval is how often the server looks in the store
	// for keys revoked by another process, such as atp keys revoke
	// (default 1s); their WebSockets and inbox polls then end. Server.RevokeKey
	// ends them at once.
	RevocationCheckInterval time.Duration
	// MaxPeerWarnings caps the warnings logged about one connection's bad
	// frames per minute (default 10, burst as many); past it they are
	// counted and reported as one "similar warnings suppressed" line.
	MaxPeerWarnings int
	// PlatoolsRegistersPerMinute caps the tool_register frames of one
	// Platools toolkit (owner, entity and environment) in any 60 seconds
	// (default 6, as the reference platform): one more is answered with
	// register_throttled and its retry_after_ms, and changes nothing.
	PlatoolsRegistersPerMinute int
	// PlatoolsMaxResultBytes bounds a Platools toolkit's tool_result that
	// is passed on whole (default 256 KiB, as the reference platform): a
	// larger result reaches the LLM client as {"truncated": true,
	// "preview": <its first 4096 characters>, "original_bytes": N}, and a
	// larger tool_error message is cut.
	PlatoolsMaxResultBytes int

	// Replicas (cluster.go). With NATSURL set, the server is one replica
	// of a cluster: every replica runs on the same PostgreSQL database
	// (DBPath) and the same NATS, and any replica takes any request. A
	// call that arrives on one replica for a toolkit whose WebSocket
	// another holds goes there over NATS; HTTP-inbox calls wait in a
	// JetStream work queue that the replica the toolkit polls next takes
	// them from; revocations and registrations reach every replica. NATS
	// carries calls with their params and users' tokens: keep it private
	// to the replicas (TLS and credentials go in the URL or the NATS
	// server's configuration). Without NATSURL nothing of this runs.

	// NATSURL is the NATS server (nats://host:4222; a comma-separated list
	// for a NATS cluster; user:password@ in it when NATS asks for them).
	// It needs JetStream (nats-server -js). New fails when it does not
	// answer; later losses are reconnected to, without end.
	NATSURL string
	// ClusterPrefix starts every NATS subject and stream name the
	// replicas use (default "atp"): clusters with different prefixes
	// share one NATS without seeing each other. Letters, digits, '_' and
	// '-', at most 32.
	ClusterPrefix string
	// PresenceTTL is how long a replica that has stopped announcing which
	// toolkits it holds still counts as holding them (default 3s); each
	// replica announces every PresenceTTL/3, and at once on a change.
	PresenceTTL time.Duration
	// ReplicaProbeInterval is how often a replica that has calls in
	// flight on another replica checks that this one is still on NATS
	// (default 250ms): a replica gone (a crash, a lost machine) fails
	// those calls within about this long, rather than at their timeout.
	ReplicaProbeInterval time.Duration

	// clock is the broker's and webhooks' time; tests replace it.
	clock clock
	// webhookPoll is how often the webhook worker looks in the outbox
	// unasked (0: webhookPoll).
	webhookPoll time.Duration
	// webhookResolver resolves webhook host names (nil: the system's);
	// tests replace it to answer as a rebinding DNS server does.
	webhookResolver *net.Resolver
}

func (c *Config) setDefaults() {
	setDefault(&c.Addr, "127.0.0.1:7777")
	setDefault(&c.CallTimeout, 120*time.Second)
	setDefault(&c.MaxCallTimeout, 10*time.Minute)
	setDefault(&c.BodyLimit, 4<<20)
	setDefault(&c.FrameLimit, 4<<20)
	setDefault(&c.InboxOnlineWindow, 90*time.Second)
	setDefault(&c.InboxMaxWait, 60*time.Second)
	setDefault(&c.PingInterval, 30*time.Second)
	setDefault(&c.ShutdownTimeout, 10*time.Second)
	setDefault(&c.MaxSchemaBytes, 256<<10)
	setDefault(&c.MaxSchemaDepth, 64)
	setDefault(&c.MaxSchemaEnum, 1000)
	setDefault(&c.MaxSchemaProperties, 1000)
	setDefault(&c.OAuthStateTTL, 10*time.Minute)
	setDefault(&c.TokenRefreshMargin, 60*time.Second)
	setDefault(&c.WebhookMaxAttempts, 8)
	setDefault(&c.WebhookBackoff, 2*time.Second)
	setDefault(&c.WebhookRetention, 7*24*time.Hour)
	setDefault(&c.MaxConnections, 10000)
	setDefault(&c.MaxHeaderBytes, 64<<10)
	setDefault(&c.ReadHeaderTimeout, 10*time.Second)
	setDefault(&c.BodyReadTimeout, 30*time.Second)
	setDefault(&c.WriteTimeout, 30*time.Second)
	setDefault(&c.IdleTimeout, 2*time.Minute)
	setDefault(&c.UnauthBodyLimit, 64<<10)
	setDefault(&c.UnauthReadTimeout, 5*time.Second)
	setDefault(&c.MaxUnauthRequests, 64)
	setDefault(&c.MaxConnsPerKey, 64)
	setDefault(&c.MaxRequestsPerKey, 64)
	setDefault(&c.MaxPendingPerToolkit, 1024)
	setDefault(&c.MaxPendingPerLLMKey, 1024)
	setDefault(&c.MaxPendingBytesPerLLMKey, 64<<20)
	setDefault(&c.MaxWriteQueueBytes, 8<<20)
	setDefault(&c.MaxToolsPerToolkit, 1000)
	setDefault(&c.PongTimeout, 10*time.Second)
	setDefault(&c.RevocationCheckInterval, time.Second)
	setDefault(&c.MaxPeerWarnings, 10)
	setDefault(&c.PlatoolsRegistersPerMinute, 6)
	setDefault(&c.PlatoolsMaxResultBytes, 256<<10)
	setDefault(&c.ClusterPrefix, "atp")
	setDefault(&c.PresenceTTL, 3*time.Second)
	setDefault(&c.ReplicaProbeInterval, 250*time.Millisecond)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// schemaLimits are the Max* schema fields.
func (c *Config) schemaLimits() schemavalidate.Limits {
	return schemavalidate.Limits{
		MaxBytes:      c.MaxSchemaBytes,
		MaxDepth:      c.MaxSchemaDepth,
		MaxEnum:       c.MaxSchemaEnum,
		MaxProperties: c.MaxSchemaProperties,
	}
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Server is an ATP server. Create it with New; it is safe for concurrent
// use.
type Server struct {
	cfg       Config
	log       *slog.Logger
	store     *store.Store
	ownsStore bool
	dbLock    *flock.Flock // held while the server runs on a database file (lock.go)
	registry  *registry
	hub       *hub
	deadlines taskDeadlines // of the calls of LLM clients' tasks
	metrics   *metrics
	oauth     *broker
	handler   http.Handler
	devKeys   []DevKey
	now       func() time.Time

	mu       sync.Mutex
	addr     net.Addr
	live     map[liveConn]bool // open WebSockets, closed on shutdown
	closed   bool
	handlers sync.WaitGroup // WebSocket sessions still running
	// poll parks idle toolkit connections (wspoll_linux.go): started on
	// first use, nil until then or where the platform has none.
	poll       *poller
	pollFailed bool

	// Limits (limits.go).
	unauth      *gate      // requests and LLM WebSockets not authenticated yet
	keyConns    *keyCounts // WebSockets per key
	keyRequests *keyCounts // HTTP requests in progress per key
	budgets     sync.Map   // LLM key id -> *keyBudget
	conns       atomic.Pointer[limitListener]

	revocations *revocations // revoke.go
	cluster     *cluster     // cluster.go: nil unless Config.NATSURL
	health      healthCheck
	// anonWarns rate-limits the warnings that requests without a key can
	// cause, as peerWarnings does for one connection's.
	anonWarns *peerWarnings
	// platools is the Platools SDK side's shared state (platools.go).
	platools platoolsState
}

// healthCheck is /healthz's check of the store: a write, not a ping, as a
// read-only or full disk still answers reads while every registration
// fails. The health endpoint needs no key, so the write runs at most once
// a second, whatever the request rate; requests meanwhile get its result.
type healthCheck struct {
	mu  sync.Mutex
	at  time.Time
	err error
}

func (h *healthCheck) check(st *store.Store) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.at.IsZero() && time.Since(h.at) < time.Second {
		return h.err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	h.err, h.at = st.CheckWritable(ctx), time.Now()
	return h.err
}

// liveConn is an open WebSocket session the server must end on shutdown,
// or when its key is revoked.
type liveConn interface {
	shutdown()
	sessionKeyID() string
	revoke()
}

// DevKey is a key created by dev mode, shown once.
type DevKey struct {
	Key    store.Key
	APIKey string
}

// New opens the store (migrating it), loads the registered toolkits and
// returns a server ready to serve. ctx bounds that work (a migration of a
// large database, a store that does not answer); New keeps no reference
// to it: Serve's ctx decides how long the server runs.
func New(ctx context.Context, cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.FrameLimit < 1024 || cfg.BodyLimit < 1024 {
		return nil, fmt.Errorf("server: BodyLimit %d and FrameLimit %d must be at least 1024 bytes", cfg.BodyLimit, cfg.FrameLimit)
	}
	if err := cfg.checkLimits(); err != nil {
		return nil, err
	}
	for _, l := range []struct {
		name string
		v    int
	}{{"MaxSchemaBytes", cfg.MaxSchemaBytes}, {"MaxSchemaDepth", cfg.MaxSchemaDepth},
		{"MaxSchemaEnum", cfg.MaxSchemaEnum}, {"MaxSchemaProperties", cfg.MaxSchemaProperties}} {
		if l.v < 0 {
			return nil, fmt.Errorf("server: %s: expected a positive limit, or 0 for the default, got %d", l.name, l.v)
		}
	}
	log := slog.New(newRedactingHandler(cfg.Logger.Handler()))
	s := &Server{
		cfg:      cfg,
		log:      log,
		store:    cfg.Store,
		registry: newRegistry(),
		metrics:  newMetrics(),
		now:      time.Now,
		live:     map[liveConn]bool{},

		unauth:      newGate(cfg.MaxUnauthRequests),
		keyConns:    newKeyCounts(),
		keyRequests: newKeyCounts(),
	}
	if s.store == nil {
		if cfg.DBPath != "" && cfg.DBPath != store.Memory && !store.IsPostgres(cfg.DBPath) {
			// Before opening: a second server must not even migrate the
			// file under the first.
			lock, err := lockDatabase(cfg.DBPath)
			if err != nil {
				return nil, err
			}
			s.dbLock = lock
		}
		st, err := store.Open(ctx, cfg.DBPath)
		if err != nil {
			s.closeStore()
			return nil, err
		}
		s.store, s.ownsStore = st, true
	} else if path, err := s.store.Path(ctx); err != nil {
		return nil, err
	} else if path != "" {
		if s.dbLock, err = lockDatabase(path); err != nil {
			return nil, err
		}
	}
	var err error
	if cfg.NATSURL == "" {
		// A replica loads them once subscribed to the others' registrations
		// (newCluster).
		kits, err := s.store.Toolkits(ctx)
		if err != nil {
			s.closeStore()
			return nil, err
		}
		s.registry.load(kits, log, cfg.schemaLimits())
	}
	if s.oauth, err = newBroker(ctx, s); err != nil {
		s.closeStore()
		return nil, err
	}
	s.hub = newHub(cfg.InboxOnlineWindow, func() time.Time { return s.now() })
	if cfg.clock != nil {
		s.now, s.hub.until = cfg.clock.Now, cfg.clock.Until
	}
	s.hub.maxPending = cfg.MaxPendingPerToolkit
	if cfg.Dev {
		if err := s.createDevKeys(ctx); err != nil {
			s.oauth.close()
			s.closeStore()
			return nil, err
		}
	}
	s.handler = s.routes()
	s.anonWarns = s.newPeerWarnings(log)
	if s.revocations, err = s.watchRevocations(ctx); err != nil {
		s.oauth.close()
		s.closeStore()
		return nil, err
	}
	if cfg.NATSURL != "" {
		if s.cluster, err = newCluster(ctx, s); err != nil {
			s.revocations.stop()
			s.oauth.close()
			s.closeStore()
			return nil, err
		}
	}
	return s, nil
}

func (s *Server) createDevKeys(ctx context.Context) error {
	n, err := s.store.CountKeys(ctx)
	if err != nil || n > 0 {
		return err
	}
	for _, nk := range []store.NewKey{
		{Kind: store.KindToolkit, Name: "dev toolkit key"},
		{Kind: store.KindLLM, Name: "dev LLM key"},
	} {
		k, apiKey, err := s.store.CreateKey(ctx, nk)
		if err != nil {
			return fmt.Errorf("dev mode: %w", err)
		}
		s.devKeys = append(s.devKeys, DevKey{Key: k, APIKey: apiKey})
	}
	return nil
}

// DevKeys returns the keys dev mode created in New (none when the store
// already had keys). They are not stored in clear anywhere: show them now.
func (s *Server) DevKeys() []DevKey { return s.devKeys }

// Store returns the server's store.
func (s *Server) Store() *store.Store { return s.store }

// CreateKey creates an API key and returns it with the full key, shown
// once.
func (s *Server) CreateKey(ctx context.Context, nk store.NewKey) (store.Key, string, error) {
	return s.store.CreateKey(ctx, nk)
}

// Handler returns the server's HTTP handler (every ATP endpoint, /healthz
// and /metrics), for use with any http.Server or httptest. It applies the
// body, response and per-key limits itself; the connection-level ones
// (MaxConnections, MaxHeaderBytes, ReadHeaderTimeout, IdleTimeout) are
// Serve's, so an http.Server of your own should set its equivalents.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	// Toolkit side (docs/protocol.md §1).
	mux.HandleFunc("POST /api/v1/toolkit/verify_hash", s.handleVerifyHash)
	mux.HandleFunc("POST /api/v1/toolkit/verify_tool_hash", s.handleVerifyToolHash)
	mux.HandleFunc("POST /api/v1/register_tool", s.handleRegisterTool)
	mux.HandleFunc("GET /ws/v1/atp/toolkit-client/{key}/{$}", s.handleToolkitWS)
	mux.HandleFunc("GET /ws/v1/atp/toolkit-client/{key}", s.handleToolkitWS)
	mux.HandleFunc("GET /api/v1/toolkit/{key}/inbox", s.handleInbox)
	mux.HandleFunc("POST /api/v1/toolkit/{key}/inbox/respond", s.handleInboxRespond)
	// The Platools SDK wire (docs/protocol.md §4), on the reference
	// platform's three paths.
	for _, p := range []string{"/ws/sdk", "/tools/sync", "/tools/sync/ws/sdk"} {
		mux.HandleFunc("GET "+p, s.handlePlatools)
	}
	mux.HandleFunc("POST /api/v1/toolkit/{key}/inbox/release", s.handleInboxRelease)
	// LLM side (docs/protocol.md §2).
	mux.HandleFunc("GET /ws/v1/atp/llm-client/{key}/{$}", s.handleLLMWS)
	mux.HandleFunc("GET /ws/v1/atp/llm-client/{key}", s.handleLLMWS)
	mux.HandleFunc("POST /api/v1/atp/llm-client/process/{$}", s.handleProcess)
	s.oauthRoutes(mux) // OAuth broker and webhooks (docs/protocol.md §2.2, §3)
	// Operations.
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.HandleFunc("GET /metrics", s.handleMetrics)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.Method+" "+redactPath(r.URL.Path))
	})
	return s.logRequests(mux)
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	g := s.hub.gauges()
	body := map[string]any{
		"status":             "ok",
		"database":           "ok",
		"store":              s.store.Engine(),
		"toolkits_connected": g.toolkitsConnected,
		"calls_in_flight":    g.inFlight,
	}
	status := http.StatusOK
	if err := s.health.check(s.store); err != nil {
		body["status"], body["database"] = "unavailable", err.Error()
		status = http.StatusServiceUnavailable
	}
	if cl := s.cluster; cl != nil {
		// A replica without NATS cannot reach the toolkits of the others:
		// a load balancer should send their calls elsewhere.
		body["replica"], body["replicas"], body["nats"] = cl.id, cl.replicas(), "ok"
		if err := cl.health(); err != nil {
			body["status"], body["nats"] = "unavailable", err.Error()
			status = http.StatusServiceUnavailable
		}
	}
	writeJSON(w, status, body)
}

// ListenAndServe listens on Config.Addr and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := s.Listen()
	if err != nil {
		return err
	}
	return s.Serve(ctx, ln)
}

// Listen listens on Config.Addr ("127.0.0.1:0" picks a free port) for a
// later Serve; Addr and URL report the address as soon as it returns.
func (s *Server) Listen() (net.Listener, error) {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.setAddr(ln.Addr())
	return ln, nil
}

func (s *Server) setAddr(a net.Addr) {
	s.mu.Lock()
	s.addr = a
	s.mu.Unlock()
}

// Serve serves on ln until ctx is done, then shuts down gracefully: it stops
// accepting, closes every WebSocket with status 1001, fails the calls still
// waiting, and waits (up to Config.ShutdownTimeout) for requests to finish.
// It returns nil after a shutdown that ctx asked for.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.setAddr(ln.Addr())
	limited := newLimitListener(ln, s.cfg.MaxConnections)
	s.conns.Store(limited)
	ln = limited
	// No ReadTimeout or WriteTimeout: they would cut long polls, long calls
	// and WebSockets. Bodies get a read deadline once the handler knows
	// whose they are (body.go), responses a write deadline from their
	// first byte (statusRecorder).
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("atp server listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		s.shutdownSessions()
		return fmt.Errorf("server: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.shutdownSessions()
	err := hs.Shutdown(sctx)
	<-errc
	s.waitHandlers(sctx)
	s.stopPoller()
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("server: shutdown: %w", err)
	}
	s.log.Info("atp server stopped")
	return nil
}

// Addr returns the address the server listens on (set by Listen or
// Serve), nil before.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL returns the base URL for toolkits and LLM clients
// ("http://127.0.0.1:7777"), "" before Listen or Serve.
func (s *Server) URL() string {
	a := s.Addr()
	if a == nil {
		return ""
	}
	return "http://" + a.String()
}

// shutdownSessions stops routing, fails waiting calls and closes every
// WebSocket with 1001 (going away).
func (s *Server) shutdownSessions() {
	s.mu.Lock()
	s.closed = true
	live := make([]liveConn, 0, len(s.live))
	for c := range s.live {
		live = append(live, c)
	}
	s.mu.Unlock()
	if s.cluster != nil {
		s.cluster.leave() // the others stop routing here before the calls here fail
	}
	s.hub.close()
	s.deadlines.stop()
	for _, c := range live {
		c.shutdown()
	}
}

func (s *Server) waitHandlers(ctx context.Context) {
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("shutdown deadline passed with WebSocket handlers still running")
	}
}

// Close ends every session (as Serve's shutdown does) and closes the store
// when the server opened it. Use it when serving through Handler.
func (s *Server) Close() error {
	s.revocations.stop()
	s.shutdownSessions()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.waitHandlers(ctx)
	s.stopPoller()
	if s.cluster != nil {
		s.cluster.close()
	}
	s.oauth.close()
	return s.closeStore()
}

// closeStore closes the store when the server opened it, then lets the
// database's lock go.
func (s *Server) closeStore() error {
	var err error
	if s.ownsStore {
		err = s.store.Close()
	}
	if s.dbLock != nil {
		s.dbLock.Close()
	}
	return err
}

// readPoller returns the poller idle toolkit connections park on, started
// on first use; nil where the platform has none, or once the server is
// shutting down.
func (s *Server) readPoller() *poller {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.poll == nil && !s.pollFailed && !s.closed {
		p, err := newPoller()
		if err != nil {
			s.pollFailed = true
			if !errors.Is(err, errors.ErrUnsupported) {
				s.log.Warn("idle toolkit connections keep a goroutine each: the poller did not start", "err", err)
			}
			return nil
		}
		s.poll = p
	}
	return s.poll
}

// stopPoller stops the poller once the sessions have ended.
func (s *Server) stopPoller() {
	s.mu.Lock()
	p := s.poll
	s.mu.Unlock()
	if p != nil {
		p.stop()
	}
}

// track registers a live WebSocket session; it returns false when the
// server is shutting down and the session must not start.
func (s *Server) track(c liveConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.live[c] = true
	s.handlers.Add(1)
	return true
}

func (s *Server) untrack(c liveConn) {
	s.mu.Lock()
	delete(s.live, c)
	s.mu.Unlock()
	s.handlers.Done()
}

func randomID(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}

// bearer returns the token of an "Authorization: <scheme> <token>" header
// for one of schemes (case-insensitive), or "".
func bearer(r *http.Request, schemes ...string) string {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok {
		return ""
	}
	for _, s := range schemes {
		if strings.EqualFold(scheme, s) {
			return strings.TrimSpace(token)
		}
	}
	return ""
}
