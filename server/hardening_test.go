package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atpgo/atp/server/store"
)

// newServedEnv is newEnv behind Serve (the http.Server atp serve runs, with
// its connection cap and timeouts) instead of httptest.
func newServedEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.Addr = "127.0.0.1:0"
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-served
		srv.Close()
	})
	e := &testEnv{t: t, srv: srv, base: srv.URL(), wsBase: "ws" + strings.TrimPrefix(srv.URL(), "http"), logs: logs}
	e.tkKey = e.key(store.NewKey{Kind: store.KindToolkit, Name: "tk"})
	e.llmKey = e.key(store.NewKey{Kind: store.KindLLM, Name: "llm"})
	return e
}

// rawConn is a TCP connection that speaks HTTP/1.1 by hand, to send what no
// well-behaved client would: a body that stops short.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (e *testEnv) dialRaw() *rawConn {
	e.t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(e.base, "http://"))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return &rawConn{t: e.t, c: c, br: bufio.NewReader(c)}
}

// startPost sends a POST's headers, declaring a body of length bytes, and
// the first part of that body.
func (rc *rawConn) startPost(path string, length int, part string, header ...string) {
	rc.t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n", path, length)
	for i := 0; i+1 < len(header); i += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", header[i], header[i+1])
	}
	b.WriteString("\r\n")
	b.WriteString(part)
	if _, err := io.WriteString(rc.c, b.String()); err != nil {
		rc.t.Fatal(err)
	}
}

// response reads one response (waiting up to 10 s).
func (rc *rawConn) response() (*http.Response, string) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("reading the response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(body)
}

// closed waits (up to 10 s) for the server to close the connection. A
// reset counts: the server closes with part of the body unread.
func (rc *rawConn) closed() {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, rc.br); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		rc.t.Fatalf("the server did not close the connection: %v", err)
	}
}

// registerBody is a register_tool body as the Python SDK sends it, its key
// second, cut to length n (n <= 0: whole).
func registerBody(key string, descLen int) string {
	return `{"function_id":"greet","api_key":"` + key + `","app_name":"hello","programming_language":"Python","code_hash":"c","toolkit_hash":"h",` +
		`"metadata":{"params":["name"],"required_params":["name"],"description":"` + strings.Repeat("d", descLen) + `","auth_provider":null,"auth_type":null,"auth_with":null,"sample_response":"","source_code":""}}`
}

// The attack of the review: many connections that send all of a body but
// its last byte. Without a key nothing is read past UnauthBodyLimit, no
// more than MaxUnauthRequests are read at once (the rest get 503 at once),
// each gets 408 at UnauthReadTimeout, and everything is released.
func TestSlowBodiesWithoutAKey(t *testing.T) {
	goroutines := goruntime.NumGoroutine()
	e := newServedEnv(t, Config{MaxUnauthRequests: 4, UnauthReadTimeout: time.Minute})
	// No key so far: the body's first bytes hold none.
	stalled := `{"function_id":"greet","metadata":{"description":"` + strings.Repeat("d", 1000)
	var held []*rawConn
	for range 4 {
		rc := e.dialRaw()
		rc.startPost("/api/v1/register_tool", 4<<20, stalled)
		held = append(held, rc)
	}
	eventually(t, "4 unauthenticated reads", func() bool { return e.srv.unauth.inUse() == 4 })
	for i := range 20 {
		for _, path := range []string{"/api/v1/register_tool", "/api/v1/toolkit/verify_hash", "/api/v1/atp/llm-client/process/"} {
			rc := e.dialRaw()
			rc.startPost(path, 4<<20, stalled)
			resp, body := rc.response()
			if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || !strings.Contains(body, "--max-unauth-requests") {
				t.Fatalf("request %d past the limit on %s: %d %q %s", i, path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
			}
			rc.closed()
		}
	}
	// The held reads end when their clients go, and give their slots back.
	for _, rc := range held {
		rc.c.Close()
	}
	eventually(t, "the unauthenticated slots to be released", func() bool { return e.srv.unauth.inUse() == 0 })
	eventually(t, "the connections to be released", func() bool { return e.srv.conns.Load().openConns() == 0 })
	eventually(t, "the goroutines to end", func() bool { return goruntime.NumGoroutine() <= goroutines+10 })
}

func TestSlowBodyTimeouts(t *testing.T) {
	goroutines := goruntime.NumGoroutine()
	e := newServedEnv(t, Config{UnauthReadTimeout: 100 * time.Millisecond, BodyReadTimeout: 200 * time.Millisecond})
	// Without a key: 64 connections (the unauthenticated limit) that each
	// send all of a 60 KB body but its last byte get 408 at the
	// unauthenticated deadline, and leave nothing behind.
	before := heapInUse()
	start := time.Now()
	body := registerBody("", 60000)
	body = strings.Replace(body, `"api_key":"",`, "", 1) // no key so far: it would come last
	var conns []*rawConn
	for range 64 {
		rc := e.dialRaw()
		rc.startPost("/api/v1/register_tool", len(body), body[:len(body)-1])
		conns = append(conns, rc)
	}
	for i, rc := range conns {
		resp, body := rc.response()
		if resp.StatusCode != 408 || !strings.Contains(body, "--unauth-read-timeout") || time.Since(start) < 100*time.Millisecond {
			t.Fatalf("slow body %d without a key: %d %s after %s", i, resp.StatusCode, body, time.Since(start))
		}
		rc.closed()
	}
	eventually(t, "the connections to be released", func() bool { return e.srv.conns.Load().openConns() == 0 })
	eventually(t, "the goroutines to end", func() bool { return goruntime.NumGoroutine() <= goroutines+10 })
	if grew := heapInUse() - before; grew > 8<<20 {
		t.Fatalf("the heap grew by %d MiB", grew>>20)
	}
	// With the key first in the body, the rest must still come within the
	// authenticated deadline.
	full := registerBody(e.tkKey, 10)
	rc := e.dialRaw()
	rc.startPost("/api/v1/register_tool", len(full), full[:len(full)-1])
	if resp, body := rc.response(); resp.StatusCode != 408 || !strings.Contains(body, "--body-read-timeout") {
		t.Fatalf("slow body after its key: %d %s", resp.StatusCode, body)
	}
	rc.closed()
	// With the key in the header: the same, and no unauthenticated slot.
	msg := `{"type":"get_toolkit_context","toolkit_id":"hello"}`
	rc = e.dialRaw()
	rc.startPost("/api/v1/atp/llm-client/process/", len(msg), msg[:len(msg)-1], "Authorization", "ApiKey "+e.llmKey)
	if resp, body := rc.response(); resp.StatusCode != 408 || !strings.Contains(body, "--body-read-timeout") {
		t.Fatalf("slow body with a header key: %d %s", resp.StatusCode, body)
	}
	rc.closed()
	// The same on the endpoints with the key in the path.
	rc = e.dialRaw()
	rc.startPost("/api/v1/toolkit/"+e.tkKey+"/inbox/respond", 100, `{"request_id":"x",`)
	if resp, body := rc.response(); resp.StatusCode != 408 {
		t.Fatalf("slow inbox/respond: %d %s", resp.StatusCode, body)
	}
	rc.closed()
	// A bad key in the header is refused before any of the body is read.
	rc = e.dialRaw()
	rc.startPost("/api/v1/atp/llm-client/process/", 1<<20, `{"type":`, "Authorization", "ApiKey atp_llm_nope_nope")
	if resp, body := rc.response(); resp.StatusCode != 401 || !resp.Close {
		t.Fatalf("bad header key: %d %s (close: %v)", resp.StatusCode, body, resp.Close)
	}
	rc.closed()
}

// Without a key in the first UnauthBodyLimit bytes: 413, having read no
// more. The server's heap does not grow with what such clients send.
func TestUnauthenticatedBodyLimit(t *testing.T) {
	e := newServedEnv(t, Config{UnauthBodyLimit: 4096, MaxUnauthRequests: 64})
	before := heapInUse()
	chunk := strings.Repeat("x", 1<<20)
	for i := range 30 {
		rc := e.dialRaw()
		rc.startPost("/api/v1/register_tool", 4<<20, `{"metadata":{"description":"`)
		go io.WriteString(rc.c, chunk) // the server stops reading: this may block until the close
		resp, body := rc.response()
		if resp.StatusCode != 413 || !strings.Contains(body, "no api_key within the first 4096 bytes") || !strings.Contains(body, "--unauth-body-limit") {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		rc.c.Close()
	}
	if grew := heapInUse() - before; grew > 16<<20 {
		t.Fatalf("the heap grew by %d MiB for 30 refused bodies", grew>>20)
	}
	// A key past the limit is the same; a key in time is fine, however big
	// the rest of the body (up to BodyLimit).
	late := `{"metadata":{"description":"` + strings.Repeat("d", 5000) + `"},"api_key":"` + e.tkKey + `"}`
	if status, raw := e.postRaw("/api/v1/register_tool", late); status != 413 {
		t.Fatalf("key after the limit: %d %s", status, raw)
	}
	if status, raw := e.postRaw("/api/v1/register_tool", registerBody(e.tkKey, 100000)); status != 200 {
		t.Fatalf("key first, big body: %d %s", status, raw)
	}
	// The body's api_key may not be repeated with another value.
	twice := strings.Replace(registerBody(e.tkKey, 10), `"metadata"`, `"api_key":"atp_tk_other_key","metadata"`, 1)
	if status, raw := e.postRaw("/api/v1/register_tool", twice); status != 401 {
		t.Fatalf("api_key twice: %d %s", status, raw)
	}
	for body, want := range map[string]string{
		`[1,2]`:                 "expected a JSON object, got an array",
		`{"api_key": 12}`:       "api_key: expected a string, got number",
		`{"function_id":"x"}`:   "missing API key",
		`{"function_id":"x",`:   "invalid JSON",
		`{"api_key":"x"} extra`: "invalid API key",
	} {
		status, raw := e.postRaw("/api/v1/register_tool", body)
		if status/100 != 4 || !strings.Contains(string(raw), want) {
			t.Fatalf("%s: %d %s, want an error containing %q", body, status, raw, want)
		}
	}
}

func heapInUse() int64 {
	goruntime.GC()
	var m goruntime.MemStats
	goruntime.ReadMemStats(&m)
	return int64(m.HeapInuse)
}

// The http.Server's own limits: total connections, header size, header
// and idle timeouts.
func TestConnectionLimits(t *testing.T) {
	e := newServedEnv(t, Config{MaxConnections: 3, MaxHeaderBytes: 4096, IdleTimeout: 100 * time.Millisecond, ReadHeaderTimeout: 100 * time.Millisecond})
	var open []*rawConn
	for range 3 {
		open = append(open, e.dialRaw())
	}
	eventually(t, "3 open connections", func() bool {
		l := e.srv.conns.Load() // nil until Serve has started
		return l != nil && l.openConns() == 3
	})
	extra := e.dialRaw()
	io.WriteString(extra.c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, body := extra.response()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "1" || !strings.Contains(body, "--max-connections") {
		t.Fatalf("connection past the cap: %d %s", resp.StatusCode, body)
	}
	// The three send nothing: the header timeout closes them, and the
	// server takes connections again.
	for _, rc := range open {
		rc.closed()
	}
	eventually(t, "the connections to be released", func() bool { return e.srv.conns.Load().openConns() == 0 })

	rc := e.dialRaw()
	io.WriteString(rc.c, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: "+strings.Repeat("b", 8192)+"\r\n\r\n")
	if resp, _ := rc.response(); resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("big header: %d", resp.StatusCode)
	}
	// A keep-alive connection idle past IdleTimeout is closed.
	rc = e.dialRaw()
	io.WriteString(rc.c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp, _ := rc.response(); resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	rc.closed()
}

// Limits must be usable: a negative one is refused by New.
func TestLimitsValidated(t *testing.T) {
	for _, cfg := range []Config{{MaxConnsPerKey: -1}, {PongTimeout: -time.Second}, {UnauthBodyLimit: 10}} {
		if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "expected") {
			t.Fatalf("New(%+v) = %v, want an error", cfg, err)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
