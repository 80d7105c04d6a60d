package llmclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
	"github.com/gorilla/websocket"
)

var fastBackoff = llmclient.Backoff{Base: time.Millisecond, Max: 4 * time.Millisecond, MaxAttempts: 3}

// The WebSocket comes back after the server drops it, after the server
// goes away and returns, and a call whose answer was lost says so.
func TestWSReconnect(t *testing.T) {
	e := newEnv(t)
	logs := newEvents()
	c := e.client(llmclient.WithTransport("ws"), llmclient.WithLogger(slogOf(logs)), llmclient.WithBackoff(fastBackoff))
	ctx := testCtx(t)
	greet := func(name string) {
		t.Helper()
		r, err := c.Call(ctx, "kit", "greet", json.RawMessage(`{"name":"`+name+`"}`))
		if err != nil || str(r.Value) != "Hello, "+name {
			t.Fatalf("greet %s: %+v, %v", name, r, err)
		}
	}
	greet("one")

	// The server drops the connection: the next call dials again.
	e.dropLLMConns()
	logs.waitFor(t, "connection to the ATP server lost")
	greet("two")
	if n := logs.count("llmclient: connected"); n != 2 {
		t.Errorf("%d connections, want 2", n)
	}

	// A call in flight when the connection drops fails with
	// ErrConnectionLost: it is not sent again, since the tool may have run.
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(ctx, "kit", "block", nil)
		done <- err
	}()
	<-e.started
	e.dropLLMConns()
	if err := <-done; !errors.Is(err, llmclient.ErrConnectionLost) || !strings.Contains(err.Error(), "the tool may have run") {
		t.Errorf("in-flight call: %v, want ErrConnectionLost", err)
	}
	logs.waitFor(t, "connection to the ATP server lost")

	// The server is gone: a call makes Backoff.MaxAttempts attempts, then
	// fails with the cause.
	addr := strings.TrimPrefix(e.llmURL(), "http://")
	e.stopLLMListener()
	before := logs.count("connecting to the ATP server failed")
	_, err := c.Call(ctx, "kit", "greet", json.RawMessage(`{"name":"three"}`))
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") || !strings.Contains(err.Error(), "[REDACTED]") {
		t.Errorf("server down: %v", err)
	}
	if n := logs.count("connecting to the ATP server failed") - before; n != 3 {
		t.Errorf("%d failed attempts logged, want 3", n)
	}

	// It is back on the same address: the next call connects.
	e.startLLMListener(addr)
	greet("four")

	if strings.Contains(logs.String(), e.llmKey) || err != nil && strings.Contains(err.Error(), e.llmKey) {
		t.Error("the API key appears in a log line or an error")
	}
}

// A refused key is not retried, and the key stays out of errors and logs.
func TestAuthFailure(t *testing.T) {
	e := newEnv(t)
	badKey := e.llmKey[:len(e.llmKey)-4] + "xxxx"
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			logs := newEvents()
			c, err := llmclient.New(badKey, llmclient.WithBaseURL(e.llmURL()), llmclient.WithTransport(llmclient.Transport(proto)),
				llmclient.WithLogger(slogOf(logs)), llmclient.WithBackoff(fastBackoff))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_, err = c.GetToolkitContext(testCtx(t), "kit", "openai", "")
			var apiErr *llmclient.APIError
			if !errors.As(err, &apiErr) || !strings.Contains(err.Error(), "invalid API key") {
				t.Fatalf("err = %v, want an *APIError about the key", err)
			}
			if proto == string(llmclient.TransportHTTP) && apiErr.StatusCode != http.StatusUnauthorized {
				t.Errorf("status %d, want 401", apiErr.StatusCode)
			}
			if proto == string(llmclient.TransportWS) && logs.count("connecting to the ATP server failed") != 1 {
				t.Errorf("a refused key was retried:\n%s", logs)
			}
			if strings.Contains(err.Error(), badKey) || strings.Contains(logs.String(), badKey) {
				t.Errorf("the key leaked: %v\n%s", err, logs)
			}
		})
	}
}

// stubWS is a WebSocket server that authenticates like ATP and hands every
// later message to handle.
type stubWS struct {
	t      *testing.T
	url    string
	paths  chan string
	handle func(ws *websocket.Conn, msg map[string]any)
}

func newStubWS(t *testing.T, key string, handle func(ws *websocket.Conn, msg map[string]any)) *stubWS {
	s := &stubWS{t: t, paths: make(chan string, 16), handle: handle}
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.paths <- r.URL.Path
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		var auth map[string]any
		if err := ws.ReadJSON(&auth); err != nil || auth["type"] != "auth" || auth["api_key"] != key {
			t.Errorf("auth message = %v, %v", auth, err)
			return
		}
		ws.WriteJSON(map[string]any{"type": "auth_response", "success": true})
		for {
			var m map[string]any
			if err := ws.ReadJSON(&m); err != nil {
				return
			}
			s.handle(ws, m)
		}
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

func taskResponse(m map[string]any, status, message string, result any) map[string]any {
	return map[string]any{"type": "task_response", "request_id": m["request_id"], "status": status, "message": message,
		"result":  map[string]any{"tool": map[string]any{"name": m["payload"].(map[string]any)["function"], "result": result}},
		"payload": map[string]any{"result": result}}
}

// Requests carry the fields docs/protocol.md §2.1 names; answers are matched by
// request_id whatever their order.
func TestWSWireAndOutOfOrderAnswers(t *testing.T) {
	const key = "atp_llm_stub_secret"
	var mu sync.Mutex
	var got []map[string]any
	s := newStubWS(t, key, func(ws *websocket.Conn, m map[string]any) {
		mu.Lock()
		got = append(got, m)
		batch := got
		mu.Unlock()
		if len(batch) < 2 {
			return // answer both at once, the second first
		}
		for i := len(batch) - 1; i >= 0; i-- {
			p := batch[i]["payload"].(map[string]any)
			ws.WriteJSON(taskResponse(batch[i], "success", "", p["function"].(string)+" done"))
		}
	})
	c, err := llmclient.New(key, llmclient.WithBaseURL(s.url+"/prefix/"), llmclient.WithTransport("wss"), llmclient.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := c.CallTools(testCtx(t), "kit", "mistral", json.RawMessage(`[
		{"id":"AAAAAAAA1","type":"function","function":{"name":"one","arguments":"{\"x\":1}"}},
		{"id":"AAAAAAAA2","type":"function","function":{"name":"two","arguments":{"y":[true]}}}]`),
		llmclient.WithAuthToken("tok"), llmclient.WithExternalUserID("user-7"), llmclient.WithUserPrompt("do it"),
		llmclient.WithCallTimeout(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"role":"tool","tool_call_id":"AAAAAAAA1","name":"one","content":"one done"},{"role":"tool","tool_call_id":"AAAAAAAA2","name":"two","content":"two done"}]`
	if string(out) != want {
		t.Errorf("got  %s\nwant %s", out, want)
	}
	if p := <-s.paths; p != "/prefix/ws/v1/atp/llm-client/"+key+"/" {
		t.Errorf("path %s", p)
	}
	seen := map[string]bool{}
	for _, m := range got {
		p := m["payload"].(map[string]any)
		name := p["function"].(string)
		seen[name] = true
		checks := map[string]any{
			"type": "task_request", "toolkit_id": "kit", "api_key": key, "auth_token": "tok", "user_prompt": "do it",
			"external_user_id": "user-7", "timeout_ms": 1500.0,
		}
		for k, v := range checks {
			if m[k] != v {
				t.Errorf("%s: %s = %v, want %v", name, k, m[k], v)
			}
		}
		if id, _ := m["request_id"].(string); !strings.HasPrefix(id, "task_") {
			t.Errorf("%s: request_id %v", name, m["request_id"])
		}
		params, _ := json.Marshal(p["parameters"])
		wantParams := map[string]string{"one": `{"x":1}`, "two": `{"y":[true]}`}[name]
		if string(params) != wantParams || p["auth_token"] != "tok" || p["tool_call_id"] != map[string]string{"one": "AAAAAAAA1", "two": "AAAAAAAA2"}[name] {
			t.Errorf("%s: payload %v", name, p)
		}
	}
	if !seen["one"] || !seen["two"] || len(got) != 2 {
		t.Errorf("requests: %v", got)
	}
}

// A server that never answers: the call's timeout is enforced by the client
// too, and the late answer is dropped. An error frame fails its request.
func TestWSStubFailures(t *testing.T) {
	const key = "atp_llm_stub_secret"
	answerLate := make(chan map[string]any, 1)
	s := newStubWS(t, key, func(ws *websocket.Conn, m map[string]any) {
		switch m["payload"].(map[string]any)["function"] {
		case "silent":
			answerLate <- m
		case "refused":
			ws.WriteJSON(map[string]any{"type": "error", "request_id": m["request_id"], "error": "payload.function: not allowed"})
		case "late":
			ws.WriteJSON(taskResponse(<-answerLate, "success", "", "too late"))
			ws.WriteJSON(taskResponse(m, "success", "", "on time"))
		case "python":
			// A Python toolkit's failure as an older server words it: no
			// message, the error in the result.
			ws.WriteJSON(map[string]any{"type": "task_response", "request_id": m["request_id"], "status": "error",
				"result": map[string]any{"tool": map[string]any{"name": "python", "result": map[string]any{"error": "division by zero"}}}})
		}
	})
	c, err := llmclient.New(key, llmclient.WithBaseURL(s.url), llmclient.WithTransport("ws"), llmclient.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	r, err := c.Call(ctx, "kit", "silent", nil, llmclient.WithCallTimeout(20*time.Millisecond))
	if err != nil || r.Error != "the call to silent got no answer within 20ms" || string(r.Value) != `{"error":"the call to silent got no answer within 20ms"}` {
		t.Errorf("silent: %+v, %v", r, err)
	}
	r, err = c.Call(ctx, "kit", "late", nil)
	if err != nil || str(r.Value) != "on time" {
		t.Errorf("late: %+v, %v", r, err)
	}
	_, err = c.Call(ctx, "kit", "refused", nil)
	var apiErr *llmclient.APIError
	if !errors.As(err, &apiErr) || apiErr.Message != "payload.function: not allowed" {
		t.Errorf("refused: %v", err)
	}
	r, err = c.Call(ctx, "kit", "python", nil)
	if err != nil || r.Error != "division by zero" {
		t.Errorf("python: %+v, %v", r, err)
	}

	// Close fails the waiting requests and every later one.
	done := make(chan error, 1)
	go func() {
		_, err := c.Call(context.Background(), "kit", "silent", nil)
		done <- err
	}()
	<-answerLate
	c.Close()
	if err := <-done; !errors.Is(err, llmclient.ErrClosed) {
		t.Errorf("waiting call after Close: %v", err)
	}
	if _, err := c.Call(ctx, "kit", "late", nil); !errors.Is(err, llmclient.ErrClosed) {
		t.Errorf("call after Close: %v", err)
	}
}

// A handshake the server refuses with an HTTP status is not retried.
func TestWSHandshakeRefused(t *testing.T) {
	count := 0
	var mu sync.Mutex
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		count++
		mu.Unlock()
		http.Error(w, `{"error":"api key revoked"}`, http.StatusForbidden)
	}))
	defer hs.Close()
	const key = "atp_llm_x_revokedsecret"
	c, _ := llmclient.New(key, llmclient.WithBaseURL(hs.URL), llmclient.WithTransport("ws"), llmclient.WithLogger(discard()), llmclient.WithBackoff(fastBackoff))
	defer c.Close()
	_, err := c.Call(testCtx(t), "kit", "x", nil)
	var apiErr *llmclient.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusForbidden || apiErr.Message != "api key revoked" || strings.Contains(err.Error(), key) {
		t.Errorf("err = %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if count != 1 {
		t.Errorf("%d handshakes, want 1", count)
	}
}

// One WebSocket carries at most 192 requests waiting for an answer, below
// the 256 after which `atp serve` stops reading a connection: the rest wait
// in the client for a slot.
func TestWSInFlightBound(t *testing.T) {
	const key, bound, total = "atp_llm_stub_secret", 192, 250
	var held []map[string]any
	released := false
	s := newStubWS(t, key, func(ws *websocket.Conn, m map[string]any) {
		if released {
			ws.WriteJSON(taskResponse(m, "success", "", "ok"))
			return
		}
		held = append(held, m)
		if len(held) > bound {
			t.Errorf("%d requests in flight on one connection", len(held))
		}
		if len(held) == bound {
			released = true
			for _, h := range held {
				ws.WriteJSON(taskResponse(h, "success", "", "ok"))
			}
		}
	})
	c, err := llmclient.New(key, llmclient.WithBaseURL(s.url), llmclient.WithTransport("ws"), llmclient.WithLogger(discard()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := testCtx(t)
	var wg sync.WaitGroup
	for range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := c.Call(ctx, "kit", "x", nil); err != nil || str(r.Value) != "ok" {
				t.Errorf("call: %+v, %v", r, err)
			}
		}()
	}
	wg.Wait()
	if !released {
		t.Error("the server never had the bound's worth of requests")
	}
}
