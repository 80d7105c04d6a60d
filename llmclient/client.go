package llmclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/atpgo/atp/internal/backoff"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Transport is how a Client sends get_toolkit_context and task_request:
// WithTransport.
//
// The default is TransportHTTP, as in the Python SDK: an agent sends a
// request when it has one, which one POST does, through any proxy, with
// nothing to keep alive between a model's turns. TransportWS pays off for
// an agent that calls often. (A toolkit's runtime.Transport defaults to
// WebSocket instead: the server pushes calls to it at any moment.)
type Transport string

const (
	// TransportHTTP sends each request as its own POST to the server's
	// process/ endpoint (the default).
	TransportHTTP Transport = "http"
	// TransportWS keeps one WebSocket open and multiplexes every request
	// over it.
	TransportWS Transport = "ws"
)

// DefaultBaseURL is where `atp serve` listens by default.
const DefaultBaseURL = "http://127.0.0.1:7777"

// maxReplySize bounds a reply body or frame: a toolkit context with many
// tools is the largest thing a server sends.
const maxReplySize = 32 << 20

var (
	// ErrClosed is returned by calls on a Client after Close.
	ErrClosed = errors.New("client is closed")
	// ErrConnectionLost is returned when the WebSocket closed after a
	// task_request was sent and before its answer came. The tool may have
	// run: the call is not sent again.
	ErrConnectionLost = errors.New("connection to the ATP server lost")
	// ErrNotConnected is returned (wrapped, with the server's *APIError) by
	// GetUserTokens while the end user has not connected the platform: the
	// server answers 404 until the OAuth flow completes.
	ErrNotConnected = errors.New("the user has not connected this platform yet")
)

// APIError is an error the ATP server answered with: an HTTP status other
// than 2xx, a refused WebSocket handshake or authentication, or an error
// message for one request.
type APIError struct {
	// StatusCode is the HTTP status; 0 for an answer on the WebSocket.
	StatusCode int
	// Endpoint says what was asked, e.g. "POST process/" or
	// "get_toolkit_context".
	Endpoint string
	// Message is the server's explanation.
	Message string
	// Status is the "status" field of a JSON error body, when it has one
	// (oauth/tokens answers 404 with "pending" until the user connects).
	Status string
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString(e.Endpoint)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, ": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Client talks to an ATP server as an LLM client (docs/protocol.md §2 and §3). It is safe
// for concurrent use; create it with New and Close it when done.
type Client struct {
	apiKey    string
	transport Transport
	apiBase   string // {base}/api/v1/atp/llm-client/
	hc        *http.Client
	ownHC     bool
	log       *slog.Logger
	ws        *wsTransport // nil for TransportHTTP

	idPrefix string
	seq      atomic.Uint64

	closeOnce sync.Once
	closed    atomic.Bool
	closeCtx  context.Context // ended by Close: stops HTTP requests in flight
	stop      context.CancelFunc
}

// Option configures New.
type Option func(*config)

type config struct {
	baseURL   string
	transport Transport
	hc        *http.Client
	log       *slog.Logger
	dialer    *websocket.Dialer
	backoff   Backoff
}

// WithBaseURL sets the server's base URL (default DefaultBaseURL). The
// scheme is http or https (ws and wss are taken as their http forms); a path
// prefix is kept, so "https://example.com/atp" reaches
// https://example.com/atp/api/v1/atp/llm-client/process/.
func WithBaseURL(u string) Option { return func(c *config) { c.baseURL = u } }

// WithTransport picks the transport of GetToolkitContext and the tool
// calls: TransportHTTP (default; "https" is the same) or TransportWS ("wss"
// is the same). The base URL's scheme decides TLS. OAuth and webhook calls
// are HTTP requests in both cases.
func WithTransport(t Transport) Option { return func(c *config) { c.transport = t } }

// WithHTTPClient sets the client for HTTP requests (default: one on
// http.DefaultTransport). Requests are bounded by their context only.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.hc = hc } }

// WithLogger sets where the client logs connection events (default
// slog.Default()). The API key never appears in a log line.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithDialer sets the WebSocket dialer (default: proxy from the
// environment, 15 s handshake timeout).
func WithDialer(d *websocket.Dialer) Option { return func(c *config) { c.dialer = d } }

// WithBackoff sets the WebSocket reconnect policy.
func WithBackoff(b Backoff) Option { return func(c *config) { c.backoff = b } }

// New returns a client that authenticates with the LLM API key apiKey. It
// checks the options but opens no connection: the WebSocket is dialled on
// first use.
func New(apiKey string, opts ...Option) (*Client, error) {
	cfg := config{baseURL: DefaultBaseURL, transport: TransportHTTP}
	for _, o := range opts {
		o(&cfg)
	}
	if strings.TrimSpace(apiKey) == "" {
		return nil, errors.New("llmclient: API key is empty: pass the LLM client key the ATP server gave you")
	}
	if strings.ContainsAny(apiKey, " \t\r\n/") {
		return nil, errors.New("llmclient: API key contains whitespace or '/': check that it was copied whole and alone")
	}
	base, err := parseBaseURL(cfg.baseURL)
	if err != nil {
		return nil, err
	}
	var transport Transport
	switch strings.ToLower(strings.TrimSpace(string(cfg.transport))) {
	case "http", "https", "":
		transport = TransportHTTP
	case "ws", "wss":
		transport = TransportWS
	default:
		return nil, fmt.Errorf("llmclient: transport: expected \"http\" or \"ws\", got %q", cfg.transport)
	}
	backoff, err := cfg.backoff.withDefaults()
	if err != nil {
		return nil, err
	}
	c := &Client{
		apiKey:    apiKey,
		transport: transport,
		apiBase:   base.String() + "/api/v1/atp/llm-client/",
		hc:        cfg.hc,
		log:       cfg.log,
		idPrefix:  randomHex(8),
	}
	c.closeCtx, c.stop = context.WithCancel(context.Background())
	if c.hc == nil {
		// A transport of its own, so that Close can drop its idle
		// connections without touching the rest of the program's.
		var rt http.RoundTripper = http.DefaultTransport
		if t, ok := rt.(*http.Transport); ok {
			rt = t.Clone()
		}
		c.hc, c.ownHC = &http.Client{Transport: rt}, true
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if transport == TransportWS {
		c.ws = newWSTransport(c, base, cfg.dialer, backoff)
	}
	return c, nil
}

// parseBaseURL checks the base URL and returns it as http(s), without a
// trailing slash.
func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, fmt.Errorf("llmclient: base URL %q: %v", raw, err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "ws":
		u.Scheme = "http"
	case "https", "wss":
		u.Scheme = "https"
	default:
		return nil, fmt.Errorf("llmclient: base URL %q: expected an http or https URL, e.g. %s", raw, DefaultBaseURL)
	}
	switch {
	case u.Host == "":
		return nil, fmt.Errorf("llmclient: base URL %q: no host", raw)
	case u.User != nil:
		return nil, fmt.Errorf("llmclient: base URL: must not carry credentials; the API key is passed to New")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("llmclient: base URL %q: expected no query or fragment", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Transport returns the transport in use: TransportHTTP or TransportWS.
func (c *Client) Transport() Transport { return c.transport }

// Close closes the WebSocket and ends the HTTP requests in flight, failing
// the requests still waiting with ErrClosed, and waits for the client's
// goroutines to end. Later calls return ErrClosed. Close is idempotent.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.stop()
		if c.ws != nil {
			c.ws.close()
		}
		if c.ownHC {
			c.hc.CloseIdleConnections()
		}
	})
	return nil
}

// opError puts the operation in front of an error from below.
func opError(op string, err error) error { return fmt.Errorf("llmclient: %s: %w", op, err) }

// nextID returns a request id unique to this client.
func (c *Client) nextID(kind string) string {
	return fmt.Sprintf("%s_%s_%d", kind, c.idPrefix, c.seq.Add(1))
}

func randomHex(n int) string {
	b := make([]byte, n/2)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// roundTrip sends one LLM message (get_toolkit_context or task_request) and
// returns the server's answer to it. idempotent messages may be sent again
// on a new WebSocket when the first one dropped before the answer.
func (c *Client) roundTrip(ctx context.Context, requestID string, msg []byte, idempotent bool) ([]byte, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if c.ws != nil {
		return c.ws.roundTrip(ctx, requestID, msg, idempotent)
	}
	return c.post(ctx, "process/", msg)
}

// post sends a process/-style JSON body and returns the 2xx reply body.
func (c *Client) post(ctx context.Context, endpoint string, body []byte) ([]byte, error) {
	return c.doHTTP(ctx, http.MethodPost, endpoint, body)
}

// doHTTP sends one request to {base}/api/v1/atp/llm-client/<endpoint> with
// the headers the Python SDK sends, and returns the body of a 2xx reply.
// Any other status is an *APIError.
func (c *Client) doHTTP(ctx context.Context, method, endpoint string, body []byte) ([]byte, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	// Close ends the request too.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	defer context.AfterFunc(c.closeCtx, func() { cancel(ErrClosed) })()
	req, err := http.NewRequestWithContext(ctx, method, c.apiBase+endpoint, rd)
	if err != nil {
		return nil, c.redact(fmt.Errorf("%s %s: %w", method, endpoint, err))
	}
	req.Header.Set("Authorization", "ApiKey "+c.apiKey)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrClosed) {
			return nil, ErrClosed
		}
		return nil, c.redact(fmt.Errorf("%s %s: %w", method, endpoint, err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReplySize+1))
	switch {
	case err != nil && errors.Is(context.Cause(ctx), ErrClosed):
		return nil, ErrClosed
	case err != nil:
		return nil, c.redact(fmt.Errorf("%s %s: reading the reply: %w", method, endpoint, err))
	case len(data) > maxReplySize:
		return nil, fmt.Errorf("%s %s: reply larger than %d bytes", method, endpoint, maxReplySize)
	case resp.StatusCode/100 != 2:
		var body struct {
			Status string `json:"status"`
		}
		json.Unmarshal(data, &body)
		return nil, &APIError{StatusCode: resp.StatusCode, Endpoint: method + " " + endpoint,
			Message: c.redactString(errorMessage(data)), Status: body.Status}
	}
	return data, nil
}

// errorMessage extracts the explanation from an error body: the "error",
// "detail" or "message" field of a JSON object, else the start of the text.
func errorMessage(body []byte) string {
	var fields map[string]json.RawMessage
	if json.Unmarshal(body, &fields) == nil {
		for _, k := range []string{"error", "detail", "message"} {
			var s string
			if json.Unmarshal(fields[k], &s) == nil && s != "" {
				return s
			}
		}
	}
	text := strings.TrimSpace(string(body))
	if len(text) > 300 {
		text = text[:300] + "..."
	}
	return text
}

// redactString replaces the API key (raw or path-escaped) with a
// placeholder.
func (c *Client) redactString(s string) string {
	s = strings.ReplaceAll(s, c.apiKey, "[REDACTED]")
	if esc := url.PathEscape(c.apiKey); esc != c.apiKey {
		s = strings.ReplaceAll(s, esc, "[REDACTED]")
	}
	return s
}

// redact returns err with the API key taken out of its text. errors.Is and
// errors.As still see the cause.
func (c *Client) redact(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if red := c.redactString(msg); red != msg {
		return &redactedError{msg: red, cause: err}
	}
	return err
}

type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// Backoff is the WebSocket reconnect policy. When dialling or
// authenticating fails, the n-th failure in a row delays the next attempt
// by Base·2^(n-1), capped at Max, partly randomised so that clients dropped
// by one server restart do not return in step. Concurrent requests share
// one attempt at a time: a down server sees one dial per delay, never the
// tight loop the Python client falls into. The zero value means the
// defaults.
type Backoff struct {
	// Base is the first delay (default 250ms).
	Base time.Duration
	// Max caps every delay (default 10s).
	Max time.Duration
	// Jitter is the random fraction of each delay: d becomes
	// d·(1-Jitter) + rand[0, d·Jitter). Zero means 0.5; negative turns
	// jitter off.
	Jitter float64
	// MaxAttempts is how many connection attempts one request makes
	// (waiting the delays between them) before it fails with the last
	// cause (default 6). The request's context can end it sooner.
	MaxAttempts int
}

func (b Backoff) withDefaults() (Backoff, error) {
	p, err := backoff.Policy{Base: b.Base, Max: b.Max, Jitter: b.Jitter}.Normalize("Backoff", 250*time.Millisecond, 10*time.Second)
	if err != nil {
		return b, fmt.Errorf("llmclient: %w", err)
	}
	b.Base, b.Max, b.Jitter = p.Base, p.Max, p.Jitter
	if b.MaxAttempts < 0 {
		return b, fmt.Errorf("llmclient: Backoff.MaxAttempts: expected a positive count or 0 for the default, got %d", b.MaxAttempts)
	}
	if b.MaxAttempts == 0 {
		b.MaxAttempts = 6
	}
	return b, nil
}

// delay is the wait after the n-th failure in a row (n >= 1); rnd returns
// a number in [0, 1).
func (b Backoff) delay(n int, rnd func() float64) time.Duration {
	return backoff.Delay(b.Base, b.Max, b.Jitter, n, rnd)
}

// sleep waits d, or until ctx ends or the client is closed.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.closeCtx.Done():
		return ErrClosed
	}
}
