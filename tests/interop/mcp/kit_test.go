package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/examples/crm"
	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// quiet drops logs: the toolkit logs the panics the tests provoke.
var quiet = slog.New(slog.DiscardHandler)

// probe lets a test see inside the blocking tool.
type probe struct {
	started   chan struct{} // closed when block starts
	cancelled chan error    // receives context.Cause when block's context ends
	release   chan struct{} // closed to end block when a broken test left it running
	once      sync.Once
}

func newProbe() *probe {
	return &probe{started: make(chan struct{}), cancelled: make(chan error, 1), release: make(chan struct{})}
}

var errReleased = errors.New("released by the test, never cancelled")

// noParams decodes an empty params object, rejecting any key.
func noParams(d *atpimpl.Decoder) {
	if d.Object() {
		for d.Next() {
			d.Unknown("(none)")
		}
	}
}

const emptyObject = `{"type":"object","properties":{},"additionalProperties":false}`

// testKit is a toolkit with the hello and crm examples (crm against api)
// and tools that fail in each way a call can.
func testKit(t testing.TB, apiURL string, p *probe) *runtime.Toolkit {
	t.Helper()
	tk := runtime.NewToolkit("testkit", runtime.WithLogger(quiet))
	tools := append(hello.ATPTools(), (&crm.Client{BaseURL: apiURL}).ATPTools()...)
	tools = append(tools,
		&runtime.Tool{
			Name:        "block",
			Description: "Waits until its call is cancelled.",
			InputSchema: json.RawMessage(emptyObject),
			Run: func(ctx context.Context, _ *runtime.Call, d *atpimpl.Decoder) (any, error) {
				noParams(d)
				if d.Failed() {
					return nil, nil
				}
				p.once.Do(func() { close(p.started) })
				select {
				case <-ctx.Done():
					p.cancelled <- context.Cause(ctx)
					return nil, ctx.Err()
				case <-p.release:
					p.cancelled <- errReleased
					return nil, errReleased
				}
			},
		},
		&runtime.Tool{
			Name:        "boom",
			Description: "Panics.",
			InputSchema: json.RawMessage(emptyObject),
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) {
				var m map[string]int
				m["x"]++ // nil map write: a real runtime panic
				return nil, nil
			},
		},
		&runtime.Tool{
			Name:         "nothing",
			Description:  "Promises an object and returns null.",
			InputSchema:  json.RawMessage(emptyObject),
			OutputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`),
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) {
				return nil, nil
			},
		},
		&runtime.Tool{
			Name:           "echo_token",
			Description:    "Fails with an error that quotes the user's token.",
			InputSchema:    json.RawMessage(emptyObject),
			NeedsAuthToken: true,
			Run: func(_ context.Context, call *runtime.Call, _ *atpimpl.Decoder) (any, error) {
				return nil, fmt.Errorf("upstream refused token %s", string(call.AuthToken))
			},
		},
		&runtime.Tool{
			Name:        "purge",
			Description: "Deletes everything.",
			InputSchema: json.RawMessage(emptyObject),
			Hints:       runtime.Hints{Destructive: true},
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) {
				return map[string]int{"deleted": 3}, nil
			},
		},
		&runtime.Tool{
			Name:        "slow",
			Description: "Waits for its context, which its 1ms timeout ends.",
			InputSchema: json.RawMessage(emptyObject),
			Timeout:     time.Millisecond,
			Run: func(ctx context.Context, _ *runtime.Call, _ *atpimpl.Decoder) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		},
	)
	if err := tk.Add(tools...); err != nil {
		t.Fatal(err)
	}
	return tk
}

// standIn is a local stand-in for the CRM's REST API (as in
// examples/crm/crm_test.go): it accepts only the token "user-token".
func standIn(t testing.TB) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer user-token" {
			http.Error(w, `{"message":"bad token"}`, http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/crm/v3/objects/companies":
			var in map[string]any
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"id": "42", "name": in["name"], "industry": in["industry"], "created_at": "2026-11-21T05:00:00Z"})
		case r.Method == http.MethodGet && r.URL.Path == "/crm/v3/objects/contacts":
			w.Write([]byte(`{"results":[{"id":"c1","email":"ada@example.com","company_id":"42"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

// lockedBuffer collects what a server writes (wire bytes, logs) while
// other goroutines read it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	return len(p), nil
}

func (b *lockedBuffer) String() string { return string(b.Bytes()) }

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf...)
}

// Protocol versions the tests run with: the latest the SDK speaks (the
// sessionless 2026-07-28) and the one shipping hosts speak.
const (
	latest = ""
	legacy = "2025-11-25"
)

func newClient() *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: "test-host", Version: "1.0.0"}, nil)
}

// connectStdio serves srv over a pair of pipes and connects the SDK's
// client to it. wire receives every byte the server writes.
func connectStdio(t testing.TB, srv *mcp.Server, version string) (cs *sdk.ClientSession, wire *lockedBuffer) {
	t.Helper()
	return connectStdioWith(t, srv, version, nil)
}

// connectStdioWith is connectStdio with a client made with opts.
func connectStdioWith(t testing.TB, srv *mcp.Server, version string, opts *sdk.ClientOptions) (cs *sdk.ClientSession, wire *lockedBuffer) {
	t.Helper()
	c2sR, c2sW := io.Pipe()
	s2cR, s2cW := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.ServeStdio(ctx, c2sR, s2cW) }()
	wire = &lockedBuffer{}
	transport := &sdk.IOTransport{Reader: io.NopCloser(io.TeeReader(s2cR, wire)), Writer: c2sW}
	client := sdk.NewClient(&sdk.Implementation{Name: "test-host", Version: "1.0.0"}, opts)
	cs, err := client.Connect(ctx, transport, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		cancel()
		t.Fatalf("connect over stdio: %v", err)
	}
	t.Cleanup(func() {
		// Closing the client closes the server's input: ServeStdio sees EOF
		// and returns nil.
		cs.Close()
		if err := <-served; err != nil {
			t.Errorf("ServeStdio after the host closed its input: %v", err)
		}
		cancel()
		s2cW.Close()
		c2sR.Close()
	})
	return cs, wire
}

// connectHTTP serves srv's HTTP handler on a loopback listener and connects
// the SDK's client to it, sending header with every request.
func connectHTTP(t testing.TB, srv *mcp.Server, version string, header http.Header) *sdk.ClientSession {
	t.Helper()
	return connectHTTPWith(t, srv, version, header, nil)
}

// connectHTTPWith is connectHTTP with a client made with opts.
func connectHTTPWith(t testing.TB, srv *mcp.Server, version string, header http.Header, opts *sdk.ClientOptions) *sdk.ClientSession {
	t.Helper()
	ts := httptest.NewServer(srv.HTTPHandler())
	t.Cleanup(ts.Close)
	hc := &http.Client{Transport: headerTransport{header, http.DefaultTransport}}
	transport := &sdk.StreamableClientTransport{Endpoint: ts.URL, HTTPClient: hc, MaxRetries: -1}
	client := sdk.NewClient(&sdk.Implementation{Name: "test-host", Version: "1.0.0"}, opts)
	cs, err := client.Connect(context.Background(), transport, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect over HTTP: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

type headerTransport struct {
	header http.Header
	next   http.RoundTripper
}

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h.header {
		r.Header[k] = v
	}
	return h.next.RoundTrip(r)
}

// text is the only text content of res.
func text(t testing.TB, res *sdk.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("content: want 1 block, got %d: %+v", len(res.Content), res.Content)
	}
	tc, ok := res.Content[0].(*sdk.TextContent)
	if !ok {
		t.Fatalf("content[0]: want text, got %T", res.Content[0])
	}
	return tc.Text
}

// waitFor receives from ch, failing the test if nothing comes within a
// generous bound (the bound only stops a broken test from hanging).
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}
