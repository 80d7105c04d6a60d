package llmclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// env is a real ATP server with the test toolkit "kit" connected. The
// toolkit and the LLM clients reach the server through separate listeners,
// so a test can drop and restart the LLM side alone.
type env struct {
	t      testing.TB
	srv    *server.Server
	llmKey string
	tkURL  string // the toolkit's listener

	llmMu   sync.Mutex
	llmAddr string
	llmLn   *trackingListener
	llmHS   *http.Server

	gates   *gates
	started chan string // tools that block say so here
	release chan struct{}
}

func newEnv(t testing.TB, configure ...func(*server.Config)) *env {
	t.Helper()
	cfg := server.Config{Dev: true, Logger: discard()}
	for _, f := range configure {
		f(&cfg)
	}
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys := srv.DevKeys()
	if len(keys) != 2 {
		t.Fatalf("dev keys: %d, want 2", len(keys))
	}
	e := &env{t: t, srv: srv, gates: newGates(), started: make(chan string, 64), release: make(chan struct{})}
	for _, k := range keys {
		if k.Key.Kind == store.KindLLM {
			e.llmKey = k.APIKey
		}
	}
	tkLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tkHS := &http.Server{Handler: srv.Handler()}
	go tkHS.Serve(tkLn)
	e.tkURL = "http://" + tkLn.Addr().String()
	e.startLLMListener("127.0.0.1:0")

	stopKit := e.serveToolkit(testToolkit(e), keys[0].APIKey)
	t.Cleanup(func() {
		close(e.release)
		stopKit()
		srv.Close()
		tkHS.Close()
		e.stopLLMListener()
	})
	e.waitConnected(1)
	return e
}

// serveToolkit connects tk and returns a func that disconnects it and
// waits for Serve to return.
func (e *env) serveToolkit(tk *runtime.Toolkit, key string) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- tk.Serve(ctx, runtime.ServeConfig{URL: e.tkURL, APIKey: key, Logger: discard()})
	}()
	return func() {
		cancel()
		if err := <-served; err != nil {
			e.t.Errorf("toolkit %s: Serve: %v", tk.Name(), err)
		}
	}
}

// waitConnected polls the server's health endpoint until n toolkits have a
// WebSocket connection.
func (e *env) waitConnected(n int) {
	e.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(e.tkURL + "/healthz")
		if err != nil {
			e.t.Fatal(err)
		}
		var h struct {
			Connected int `json:"toolkits_connected"`
		}
		json.NewDecoder(resp.Body).Decode(&h)
		resp.Body.Close()
		if h.Connected == n {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waiting for %d toolkits to be connected: %d are", n, h.Connected)
		}
		time.Sleep(2 * time.Millisecond) // bounded polling of observable server state
	}
}

func (e *env) llmURL() string {
	e.llmMu.Lock()
	defer e.llmMu.Unlock()
	return "http://" + e.llmAddr
}

func (e *env) startLLMListener(addr string) {
	e.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	tl := &trackingListener{Listener: ln}
	hs := &http.Server{Handler: e.srv.Handler()}
	go hs.Serve(tl)
	e.llmMu.Lock()
	e.llmAddr, e.llmLn, e.llmHS = ln.Addr().String(), tl, hs
	e.llmMu.Unlock()
}

// stopLLMListener closes the LLM listener and every connection it
// accepted, WebSockets included.
func (e *env) stopLLMListener() {
	e.llmMu.Lock()
	hs, ln := e.llmHS, e.llmLn
	e.llmMu.Unlock()
	hs.Close() // does not close hijacked connections...
	ln.dropAll()
}

// dropLLMConns closes the LLM side's connections; the listener stays.
func (e *env) dropLLMConns() {
	e.llmMu.Lock()
	ln := e.llmLn
	e.llmMu.Unlock()
	ln.dropAll()
}

func (e *env) client(opts ...llmclient.Option) *llmclient.Client {
	e.t.Helper()
	c, err := llmclient.New(e.llmKey, append([]llmclient.Option{llmclient.WithBaseURL(e.llmURL()), llmclient.WithLogger(discard())}, opts...)...)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

type trackingListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func (l *trackingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.mu.Lock()
		l.conns = append(l.conns, c)
		l.mu.Unlock()
	}
	return c, err
}

func (l *trackingListener) dropAll() {
	l.mu.Lock()
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// gates are named one-shot signals between tool calls, to order calls
// without sleeping.
type gates struct {
	mu sync.Mutex
	m  map[string]chan struct{}
}

func newGates() *gates { return &gates{m: map[string]chan struct{}{}} }

func (g *gates) get(name string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	ch, ok := g.m[name]
	if !ok {
		ch = make(chan struct{})
		g.m[name] = ch
	}
	return ch
}

func (g *gates) open(name string) {
	ch := g.get(name)
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// object decodes a tool's params into a map, the decoder's way.
func object(d *atpimpl.Decoder) map[string]json.RawMessage {
	m := map[string]json.RawMessage{}
	if d.Object() {
		for d.Next() {
			m[string(d.Key())] = d.Raw()
		}
	}
	return m
}

func str(raw json.RawMessage) string {
	var s string
	json.Unmarshal(raw, &s)
	return s
}

// testToolkit is toolkit "kit":
//
//	greet {name}          "Hello, <name>"; name must be a non-empty string
//	echo {...}            its params, as given
//	fail                  fails with "no luck"
//	block                 says it started, then waits for its context or the end of the test
//	gate {open?, wait?}   opens gate "open", then waits for gate "wait"
//	nap                   sleeps 50 ms (the benchmark's tool)
//	whoami                the auth token it got
func testToolkit(e *env) *runtime.Toolkit {
	tk := runtime.NewToolkit("kit", runtime.WithLogger(discard()))
	anyObject := json.RawMessage(`{"type":"object"}`)
	err := tk.Add(
		&runtime.Tool{
			Name: "greet", Description: "Greets someone.", Params: []string{"name"}, RequiredParams: []string{"name"},
			InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string","minLength":1,"description":"who to greet"}},"required":["name"],"additionalProperties":false}`),
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				return "Hello, " + str(object(d)["name"]), nil
			},
		},
		&runtime.Tool{
			Name: "echo", Description: "Returns its params.", InputSchema: anyObject,
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				return d.Raw(), nil
			},
		},
		&runtime.Tool{
			Name: "fail", Description: "Fails.", InputSchema: anyObject,
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) {
				return nil, errors.New("no luck")
			},
		},
		&runtime.Tool{
			Name: "block", Description: "Blocks.", InputSchema: anyObject,
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				e.started <- "block"
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-e.release:
					return "released", nil
				}
			},
		},
		&runtime.Tool{
			Name: "gate", Description: "Opens a gate and waits for another.", InputSchema: anyObject,
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				p := object(d)
				if name := str(p["open"]); name != "" {
					e.gates.open(name)
				}
				if name := str(p["wait"]); name != "" {
					select {
					case <-e.gates.get(name):
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				return "passed " + str(p["open"]) + str(p["wait"]), nil
			},
		},
		&runtime.Tool{
			Name: "nap", Description: "Sleeps 50 ms.", InputSchema: anyObject,
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				t := time.NewTimer(50 * time.Millisecond)
				defer t.Stop()
				select {
				case <-t.C:
					return "rested", nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			},
		},
		&runtime.Tool{
			Name: "whoami", Description: "Returns the auth token.", InputSchema: anyObject, NeedsAuthToken: true,
			AuthProvider: "hubspot", AuthType: "OAuth2", AuthWith: "access_token",
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				return "token " + string(call.AuthToken), nil
			},
		},
	)
	if err != nil {
		e.t.Fatal(err)
	}
	return tk
}

// events is a slog handler that records messages, for the tests that wait
// for a connection event and check that no line holds the key.
type events struct {
	mu  sync.Mutex
	buf bytes.Buffer
	ch  chan string
}

func newEvents() *events { return &events{ch: make(chan string, 256)} }

func (h *events) Enabled(context.Context, slog.Level) bool { return true }
func (h *events) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *events) WithGroup(string) slog.Handler            { return h }
func (h *events) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	text := slog.NewTextHandler(&h.buf, nil)
	text.Handle(context.Background(), r)
	h.mu.Unlock()
	select {
	case h.ch <- r.Message:
	default:
	}
	return nil
}

func (h *events) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.buf.String()
}

// waitFor waits for a log message containing want.
func (h *events) waitFor(t testing.TB, want string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case m := <-h.ch:
			if strings.Contains(m, want) {
				return
			}
		case <-timeout:
			t.Fatalf("no log message %q; logs:\n%s", want, h.String())
		}
	}
}

// count counts the log lines containing s.
func (h *events) count(s string) int { return strings.Count(h.String(), s) }

func slogOf(h slog.Handler) *slog.Logger { return slog.New(h) }
