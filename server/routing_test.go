package server

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/server/store"
)

// Two connections of one toolkit share its calls: a call goes to the
// connection with the fewest in flight.
func TestConnectionsShareCalls(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	a := e.dialPyToolkit(e.tkKey)
	second := e.key(store.NewKey{Kind: store.KindToolkit, Name: "second", Toolkit: "hello"})
	b := e.dialPyToolkit(second)
	llm := e.dialPyLLM(e.llmKey)
	// a or b gets the first call and holds it; the second call must then go
	// to the other one.
	reqs := []map[string]any{
		pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "one"}),
		pyTaskRequest(e.llmKey, "hello", 1, "greet", map[string]any{"name": "two"}),
	}
	got := make(chan struct {
		ws  *websocket.Conn
		req pyToolRequest
	}, 2)
	for _, ws := range []*websocket.Conn{a, b} {
		go func() {
			var req pyToolRequest
			if ws.ReadJSON(&req) == nil {
				got <- struct {
					ws  *websocket.Conn
					req pyToolRequest
				}{ws, req}
			}
		}()
	}
	llm.WriteJSON(reqs[0])
	first := <-got
	llm.WriteJSON(reqs[1])
	other := <-got
	if first.ws == other.ws {
		t.Fatal("both calls went to the same connection")
	}
	for _, g := range []struct {
		ws  *websocket.Conn
		req pyToolRequest
	}{first, other} {
		g.ws.WriteJSON(map[string]any{"type": "tool_response", "request_id": g.req.Payload.RequestID, "result": "ok " + string(g.req.Payload.Params)})
	}
	seen := map[any]bool{}
	for range 2 {
		m := readMsg(t, llm)
		if m["status"] != "success" {
			t.Fatalf("reply: %v", m)
		}
		seen[m["request_id"]] = true
	}
	if !seen[reqs[0]["request_id"]] || !seen[reqs[1]["request_id"]] {
		t.Fatalf("replies matched to the wrong requests: %v", seen)
	}
}

// Calls on one LLM connection run concurrently and each answer is matched
// to its request_id, whatever order the toolkit answers in.
func TestConcurrentCallsMatchedByRequestID(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	const n = 20
	want := map[any]string{}
	for i := range n {
		req := pyTaskRequest(e.llmKey, "hello", i, "greet", map[string]any{"name": fmt.Sprint(i)})
		want[req["request_id"]] = fmt.Sprintf(`{"name":"%d"}`, i)
		llm.WriteJSON(req)
	}
	var held []pyToolRequest
	for range n {
		held = append(held, readToolRequest(t, tk))
	}
	for i := n - 1; i >= 0; i-- { // answer in reverse
		tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": held[i].Payload.RequestID, "result": string(held[i].Payload.Params)})
	}
	for range n {
		m := readMsg(t, llm)
		if res := m["result"].(map[string]any)["tool"].(map[string]any)["result"]; res != want[m["request_id"]] {
			t.Fatalf("request %v got %v, want %v", m["request_id"], res, want[m["request_id"]])
		}
	}
}

// The Python SDK reconnects in a tight loop without backoff. A storm of
// connections opened and dropped leaves no goroutine, socket or routing
// state behind.
func TestReconnectStorm(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	// One storm to warm up pools and buffers, then measure a second.
	storm := func(n int) {
		dialer := &websocket.Dialer{}
		for range n {
			ws, _, err := dialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/", http.Header{"Origin": {e.base}})
			if err != nil {
				t.Fatal(err)
			}
			ws.Close() // dropped as run_forever returns: no close handshake
		}
		// And the same with a revoked-looking bad key: refused before upgrade.
		for range n / 10 {
			_, resp, err := dialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/atp_tk_bad_key/", nil)
			if err == nil || resp.StatusCode != 401 {
				t.Fatalf("bad key: %v", err)
			}
		}
	}
	settled := func() {
		eventually(t, "connections to be gone from the hub", func() bool {
			g := e.srv.hub.gauges()
			return g.connections == 0
		})
		eventually(t, "no tracked sessions", func() bool {
			e.srv.mu.Lock()
			defer e.srv.mu.Unlock()
			return len(e.srv.live) == 0
		})
	}
	storm(100)
	settled()
	http.DefaultClient.CloseIdleConnections()
	baseGoroutines := goruntime.NumGoroutine()
	baseFDs := openFDs(t)
	var before goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)

	storm(500)
	settled()
	eventually(t, fmt.Sprintf("goroutines back to %d", baseGoroutines), func() bool {
		return goruntime.NumGoroutine() <= baseGoroutines
	})
	eventually(t, fmt.Sprintf("open files back to %d", baseFDs), func() bool { return openFDs(t) <= baseFDs })
	var after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	if grew := int64(after.HeapInuse) - int64(before.HeapInuse); grew > 4<<20 {
		t.Fatalf("heap in use grew by %d bytes over 500 connections", grew)
	}
	// The toolkit still works after the storm.
	go servePy(e.dialPyToolkit(e.tkKey))
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "after"})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "Hello, after" {
		t.Fatal(got)
	}
}

func openFDs(t *testing.T) int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatalf("counting open files: %v", err)
	}
	return len(entries)
}

// Keys, toolkits and tools survive a restart; a key revoked before the
// restart stays refused after it.
func TestRestartPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "atp.db")
	ctx := context.Background()
	srv, err := New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	_, tkKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "tk"})
	_, llmKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "llm"})
	revoked, revokedKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "gone"})
	hs := newHTTPTest(srv)
	e := &testEnv{t: t, srv: srv, base: hs.URL, wsBase: "ws" + strings.TrimPrefix(hs.URL, "http"), tkKey: tkKey, llmKey: llmKey}
	e.pyRegister(tkKey, "hello", pyFail, pyGreet)
	srv.store.RevokeKey(ctx, revoked.ID)
	hs.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(filepath.Dir(path)); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("database directory: %v, %v; want mode 0700", info.Mode(), err)
	}

	srv, err = New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs = newHTTPTest(srv)
	defer func() { hs.Close(); srv.Close() }()
	e = &testEnv{t: t, srv: srv, base: hs.URL, wsBase: "ws" + strings.TrimPrefix(hs.URL, "http"), tkKey: tkKey, llmKey: llmKey}
	if st := e.pyRegister(tkKey, "hello", pyFail, pyGreet); st != nil {
		t.Fatalf("after restart the registration is not up to date: %v", st)
	}
	go servePy(e.dialPyToolkit(tkKey))
	llm := e.dialPyLLM(llmKey)
	m := roundTrip(t, llm, pyContextRequest(llmKey, "hello", "anthropic"))
	tools := m["payload"].(map[string]any)["tools"].([]any)
	if len(tools) != 2 || tools[1].(map[string]any)["description"] != "Greets someone." {
		t.Fatalf("tools after restart: %v", tools)
	}
	req := pyTaskRequest(llmKey, "hello", 0, "greet", map[string]any{"name": "again"})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "Hello, again" {
		t.Fatal(got)
	}
	ws := e.dialLLMRaw(revokedKey, nil)
	if m := roundTrip(t, ws, map[string]any{"type": "auth", "api_key": revokedKey}); m["success"] != false {
		t.Fatalf("revoked key after restart: %v", m)
	}
}

// Serve shuts down gracefully when its context ends: sockets get 1001,
// waiting calls fail with a clear message, Serve returns nil.
func TestServeGracefulShutdown(t *testing.T) {
	srv, err := New(context.Background(), Config{Addr: "127.0.0.1:0", Logger: discardLogger(), CallTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	_, tkKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "tk"})
	_, llmKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "llm"})
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	if srv.URL() != "http://"+ln.Addr().String() {
		t.Fatalf("URL() = %q", srv.URL())
	}
	e := &testEnv{t: t, srv: srv, base: srv.URL(), wsBase: "ws" + strings.TrimPrefix(srv.URL(), "http"), tkKey: tkKey, llmKey: llmKey}
	e.pyRegister(tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(tkKey)
	llm := e.dialPyLLM(llmKey)
	req := pyTaskRequest(llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	llm.WriteJSON(req)
	readToolRequest(t, tk)
	stop()
	m := readMsg(t, llm)
	if m["status"] != "error" || !strings.Contains(m["message"].(string), "shutting down") {
		t.Fatalf("call during shutdown: %v", m)
	}
	for _, ws := range []*websocket.Conn{tk, llm} {
		if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("socket at shutdown: %v, want close 1001", err)
		}
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyFail, pyGreet)
	go servePy(e.dialPyToolkit(e.tkKey))
	llm := e.dialPyLLM(e.llmKey)
	roundTrip(t, llm, pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"}))
	roundTrip(t, llm, pyTaskRequest(e.llmKey, "hello", 1, "fail", map[string]any{}))
	roundTrip(t, llm, pyTaskRequest(e.llmKey, "nope", 2, "fail", map[string]any{}))
	status, body := e.get("/metrics")
	text := string(body)
	for _, want := range []string{
		`atp_calls_total{status="success"} 1`,
		`atp_calls_total{status="error"} 2`,
		`atp_call_errors_total{reason="tool_error"} 1`,
		`atp_call_errors_total{reason="not_found"} 1`,
		`atp_call_errors_total{reason="timeout"} 0`,
		"# TYPE atp_call_duration_seconds histogram",
		`atp_call_duration_seconds_bucket{le="+Inf"} 2`,
		"atp_call_duration_seconds_count 2",
		"atp_toolkits_connected 1",
		"atp_toolkit_connections 1",
		"atp_llm_connections 1",
		"atp_calls_in_flight 0",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if status != 200 || t.Failed() {
		t.Fatalf("/metrics: %d\n%s", status, text)
	}
}

func TestDevKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "atp.db")
	srv, err := New(context.Background(), Config{DBPath: path, Dev: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	keys := srv.DevKeys()
	if len(keys) != 2 || keys[0].Key.Kind != store.KindToolkit || keys[1].Key.Kind != store.KindLLM {
		t.Fatalf("dev keys = %+v", keys)
	}
	for _, k := range keys {
		if _, err := srv.store.Authenticate(context.Background(), k.APIKey); err != nil {
			t.Fatalf("dev key does not authenticate: %v", err)
		}
	}
	srv.Close()
	srv, err = New(context.Background(), Config{DBPath: path, Dev: true, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if len(srv.DevKeys()) != 0 {
		t.Fatal("dev mode created keys in a store that had some")
	}
}

// No API key appears in any log line, whether in a path, an error or a
// record of the server's own.
func TestKeysNeverLogged(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 20 * time.Millisecond})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	go servePy(tk)
	llm := e.dialPyLLM(e.llmKey)
	roundTrip(t, llm, pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"}))
	e.get("/api/v1/toolkit/" + e.tkKey + "/inbox")
	e.post("/api/v1/toolkit/"+e.tkKey+"/inbox/respond", map[string]any{"request_id": "nope", "response": 1})
	e.post("/api/v1/atp/llm-client/process/", pyContextRequest(e.llmKey, "hello", "openai"), "Authorization", "ApiKey "+e.llmKey)
	foreign := "sk-not-ours-0123456789abcdef"
	e.get("/api/v1/toolkit/" + foreign + "/inbox")
	e.get("/ws/v1/atp/llm-client/" + foreign + "/")
	e.get("/api/v1/unknown/" + e.llmKey)
	websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+foreign+"/", nil)
	// A record that carries a key by mistake is scrubbed too.
	e.srv.log.Info("oops "+e.llmKey, "key", e.tkKey, "err", fmt.Errorf("wrapped %s", e.llmKey))
	tk.Close()
	eventually(t, "the disconnect to be logged", func() bool { return strings.Contains(e.logs.String(), "toolkit disconnected") })

	logs := e.logs.String()
	if !strings.Contains(logs, "path=/api/v1/toolkit/[REDACTED]/inbox") {
		t.Fatalf("request lines are missing or not redacted:\n%s", logs)
	}
	for _, secret := range []string{e.tkKey, e.llmKey, foreign} {
		if strings.Contains(logs, secret) {
			t.Fatalf("a key appears in the logs:\n%s", logs)
		}
	}
	// The secret part alone must not leak either.
	for _, key := range []string{e.tkKey, e.llmKey} {
		_, _, secret, _ := store.ParseKey(key)
		if strings.Contains(logs, secret) {
			t.Fatalf("a key's secret appears in the logs")
		}
	}
}

func TestRedactPath(t *testing.T) {
	for in, want := range map[string]string{
		"/ws/v1/atp/toolkit-client/abc/":         "/ws/v1/atp/toolkit-client/[REDACTED]/",
		"/ws/v1/atp/llm-client/abc":              "/ws/v1/atp/llm-client/[REDACTED]",
		"/prefix/api/v1/toolkit/abc/inbox":       "/prefix/api/v1/toolkit/[REDACTED]/inbox",
		"/api/v1/toolkit/abc/inbox/respond":      "/api/v1/toolkit/[REDACTED]/inbox/respond",
		"/api/v1/toolkit/verify_hash":            "/api/v1/toolkit/verify_hash",
		"/api/v1/atp/toolkit-client/k/messages/": "/api/v1/atp/toolkit-client/[REDACTED]/messages/",
		"/x/atp_llm_abcd_efgh2345":               "/x/[REDACTED]",
		"/healthz":                               "/healthz",
		// Letter case does not matter, and a second key is found too.
		"/WS/V1/ATP/TOOLKIT-CLIENT/ATP_TK_ABCD_EFGH/":  "/WS/V1/ATP/TOOLKIT-CLIENT/[REDACTED]/",
		"/Api/V1/Toolkit/Atp_Tk_Abcd2_Efgh7/inbox":     "/Api/V1/Toolkit/[REDACTED]/inbox",
		"/api/v1/toolkit/VERIFY_HASH":                  "/api/v1/toolkit/VERIFY_HASH",
		"/ws/v1/atp/llm-client/x/ATP_LLM_ABCD_EFGH":    "/ws/v1/atp/llm-client/[REDACTED]/[REDACTED]",
		"/ATP_TK_ABCD_EFGH/ws/v1/atp/toolkit-client/k": "/[REDACTED]/ws/v1/atp/toolkit-client/[REDACTED]",
		"/x/AtP_LlM_aBcD_eFgH2345":                     "/x/[REDACTED]",
		"/x/notatp_tk_":                                "/x/notatp_tk_",
	} {
		if got := redactPath(in); got != want {
			t.Errorf("redactPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newHTTPTest(srv *Server) *httptest.Server { return httptest.NewServer(srv.Handler()) }

// More calls than one LLM connection may have in flight: the server stops
// reading until answers free slots, and nothing deadlocks (the requests it
// has yet to write out are flushed before it waits).
func TestLLMBackpressure(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	const n = maxLLMInFlight + 44
	go func() {
		for i := range n {
			llm.WriteJSON(pyTaskRequest(e.llmKey, "hello", i, "greet", map[string]any{"name": fmt.Sprint(i)}))
		}
	}()
	// Hold every answer until the server has stopped at its bound.
	var held []pyToolRequest
	for range maxLLMInFlight {
		held = append(held, readToolRequest(t, tk))
	}
	for _, r := range held {
		tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": r.Payload.RequestID, "result": "ok"})
	}
	go servePy(tk)
	for range n {
		if m := readMsg(t, llm); m["status"] != "success" {
			t.Fatalf("reply: %v", m)
		}
	}
}

// A toolkit may connect before it registers (docs/protocol.md §1.1): the connection of
// a key not yet bound joins its toolkit when the first registration binds
// the key.
func TestConnectBeforeRegistering(t *testing.T) {
	e := newEnv(t, Config{})
	ws, _, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	var hello pyToolRequest
	ws.ReadJSON(&hello)
	if g := e.srv.hub.gauges(); g.connections != 1 || g.toolkitsConnected != 0 {
		t.Fatalf("unbound connection: %+v", g)
	}
	e.pyRegister(e.tkKey, "hello", pyGreet)
	if g := e.srv.hub.gauges(); g.toolkitsConnected != 1 {
		t.Fatalf("after registration: %+v", g)
	}
	go servePy(ws)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "early"})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "Hello, early" {
		t.Fatal(got)
	}
}

// A key sent in other letter cases is not a valid key, but it is still the
// secret: no log line holds it, in any case, and no 404 body echoes it.
func TestKeysInOtherCaseNeverLeak(t *testing.T) {
	e := newEnv(t, Config{})
	upper, mixed := strings.ToUpper(e.tkKey), strings.ToUpper(e.llmKey[:12])+e.llmKey[12:]
	var bodies []string
	for _, path := range []string{
		"/WS/v1/atp/toolkit-client/" + upper + "/",
		"/ws/v1/atp/toolkit-client/" + upper + "/",
		"/api/v1/toolkit/" + upper + "/inbox",
		"/API/V1/TOOLKIT/" + upper + "/INBOX",
		"/api/v1/atp/llm-client/process/" + mixed,
		"/Ws/V1/Atp/Llm-Client/" + mixed,
	} {
		status, body := e.get(path)
		if status != http.StatusNotFound && status != http.StatusUnauthorized {
			t.Errorf("GET %s = %d, want 404 or 401", path, status)
		}
		bodies = append(bodies, string(body))
	}
	status, body := e.postRaw("/api/v1/atp/llm-client/process/", pyContextRequest(mixed, "hello", "openai"), "Authorization", "ApiKey "+mixed)
	if status != http.StatusUnauthorized {
		t.Errorf("process/ with a key in other case = %d %s, want 401", status, body)
	}
	bodies = append(bodies, string(body))
	e.srv.log.Info("oops "+upper, "key", mixed)

	logs := strings.ToLower(e.logs.String())
	if !strings.Contains(logs, "[redacted]") {
		t.Fatalf("nothing was redacted; the check would prove nothing:\n%s", e.logs)
	}
	for _, key := range []string{e.tkKey, e.llmKey} {
		_, _, secret, _ := store.ParseKey(key)
		if strings.Contains(logs, secret) {
			t.Fatalf("a key's secret appears in the logs, in some letter case:\n%s", e.logs)
		}
		for _, b := range bodies {
			if strings.Contains(strings.ToLower(b), secret) {
				t.Fatalf("a reply echoes a key's secret: %s", b)
			}
		}
	}
}

// A toolkit connection that announces its drain ({"type":"draining"}) gets
// no new call, though it is the least busy, while the calls in flight on it
// still get its answers; a toolkit whose connections all drain is offline
// at once, saying so.
func TestDrainingConnectionGetsNoNewCalls(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	ref := toolkitRef{"default", "hello"}
	type delivery struct {
		ws  *websocket.Conn
		req pyToolRequest
	}
	got := make(chan delivery, 8)
	conns := []*websocket.Conn{
		e.dialPyToolkit(e.tkKey),
		e.dialPyToolkit(e.key(store.NewKey{Kind: store.KindToolkit, Name: "second", Toolkit: "hello"})),
	}
	for _, ws := range conns {
		go func() {
			for {
				var req pyToolRequest
				if ws.ReadJSON(&req) != nil {
					return
				}
				got <- delivery{ws, req}
			}
		}()
	}
	next := func() delivery {
		t.Helper()
		select {
		case d := <-got:
			return d
		case <-time.After(10 * time.Second):
			t.Fatal("no call reached a toolkit connection within 10s")
			return delivery{}
		}
	}
	llm := e.dialPyLLM(e.llmKey)
	reqs := []map[string]any{
		pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "one"}),
		pyTaskRequest(e.llmKey, "hello", 1, "greet", map[string]any{"name": "two"}),
		pyTaskRequest(e.llmKey, "hello", 2, "greet", map[string]any{"name": "three"}),
	}
	llm.WriteJSON(reqs[0])
	held := []delivery{next()}
	busy, idle := held[0].ws, conns[0]
	if idle == busy {
		idle = conns[1]
	}
	idle.WriteJSON(map[string]any{"type": "draining"})
	eventually(t, "the draining connection to leave routing", func() bool { ws, _ := e.srv.hub.online(ref); return ws == 1 })
	llm.WriteJSON(reqs[1])
	if held = append(held, next()); held[1].ws != busy {
		t.Fatal("a call went to the draining connection, the least busy")
	}
	busy.WriteJSON(map[string]any{"type": "draining"})
	eventually(t, "both connections to leave routing", func() bool { ws, _ := e.srv.hub.online(ref); return ws == 0 })
	if g := e.srv.hub.gauges(); g.connections != 2 || g.inFlight != 2 {
		t.Errorf("gauges with two draining connections and two calls = %+v, want 2 connections, 2 in flight", g)
	}
	m := roundTrip(t, llm, reqs[2])
	checkTaskResponse(t, m, reqs[2], "error")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "its connections are shutting down") || !strings.Contains(msg, "the call was not sent") {
		t.Errorf("call with every connection draining: %q", msg)
	}
	// The draining connection still delivers the answers of its calls.
	for _, d := range held {
		busy.WriteJSON(map[string]any{"type": "tool_response", "request_id": d.req.Payload.RequestID, "result": "ok"})
	}
	for range held {
		if m := readMsg(t, llm); m["status"] != "success" {
			t.Errorf("answer of a call in flight on a draining connection: %v", m)
		}
	}
	// Closed, the draining connections leave nothing behind.
	for _, ws := range conns {
		ws.Close()
	}
	eventually(t, "the closed connections to leave the hub", func() bool {
		g := e.srv.hub.gauges()
		return g.connections == 0 && g.inFlight == 0
	})
}
