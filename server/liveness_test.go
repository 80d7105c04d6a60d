package server

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

// closedWith waits for ws to end and checks its close code.
func closedWith(t *testing.T, ws *websocket.Conn, code int) {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := ws.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, code) {
			t.Fatalf("session ended with %v, want close %d", err, code)
		}
		return
	}
}

// Server.RevokeKey ends the key's sessions at once: WebSockets close with
// 1008, a waiting inbox poll gets 401, and a call an inbox poll had taken
// fails, saying why.
func TestRevokeEndsSessionsAtOnce(t *testing.T) {
	// No periodic check: only the revocation itself can end the sessions.
	e := newEnv(t, Config{RevocationCheckInterval: time.Hour})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	inboxKey := e.key(store.NewKey{Kind: store.KindToolkit, Name: "inbox"})
	e.pyRegister(inboxKey, "polled", pyGreet)
	polled := toolkitRef{store.DefaultOwner, "polled"}

	// A call taken by an inbox poll and not answered yet.
	callerKey := e.key(store.NewKey{Kind: store.KindLLM, Name: "caller"})
	caller := e.dialPyLLM(callerKey)
	takenReq := pyTaskRequest(callerKey, "polled", 0, "greet", map[string]any{"name": "x"})
	taken := make(chan int, 1)
	go func() {
		resp, err := http.Get(e.base + "/api/v1/toolkit/" + inboxKey + "/inbox?wait=30")
		if err == nil {
			io.Copy(io.Discard, resp.Body) // read whole: a poller gone early gets its call requeued
			resp.Body.Close()
			taken <- resp.StatusCode
		}
	}()
	eventually(t, "the first poll", func() bool { return e.srv.hub.waiters(polled) == 1 })
	caller.WriteJSON(takenReq)
	if status := <-taken; status != 200 {
		t.Fatalf("poll: %d", status)
	}
	// And a poll waiting for the next.
	waiting := make(chan string, 1)
	go func() {
		resp, err := http.Get(e.base + "/api/v1/toolkit/" + inboxKey + "/inbox?wait=30")
		if err == nil {
			var m map[string]any
			json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			waiting <- fmt.Sprint(resp.Status, " ", m["error"], m)
		}
	}()
	eventually(t, "the second poll", func() bool { return e.srv.hub.waiters(polled) == 1 })

	ctx := context.Background()
	for _, key := range []string{e.tkKey, e.llmKey, inboxKey} {
		if err := e.srv.RevokeKey(ctx, keyID(t, key)); err != nil {
			t.Fatal(err)
		}
	}
	closedWith(t, tk, websocket.ClosePolicyViolation)
	closedWith(t, llm, websocket.ClosePolicyViolation)
	if got := <-waiting; !strings.HasPrefix(got, "401 Unauthorized API key has been revoked") {
		t.Fatalf("waiting poll: %s", got)
	}
	m := readMsg(t, caller)
	checkTaskResponse(t, m, takenReq, "error")
	if !strings.Contains(m["message"].(string), "API key was revoked while the call was in flight") {
		t.Fatalf("taken call: %v", m)
	}
	// Revoked keys are refused from then on.
	if status, _ := e.get("/api/v1/toolkit/" + inboxKey + "/inbox"); status != 401 {
		t.Fatalf("poll with a revoked key: %d", status)
	}
}

// A key revoked by another process (atp keys revoke writes the file) ends
// the server's sessions within RevocationCheckInterval.
func TestRevokeFromAnotherProcess(t *testing.T) {
	db := filepath.Join(t.TempDir(), "atp.db")
	e := newEnv(t, Config{DBPath: db, RevocationCheckInterval: 20 * time.Millisecond})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	other, err := store.Open(context.Background(), db) // what atp keys revoke opens
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.RevokeKey(context.Background(), keyID(t, e.tkKey)); err != nil {
		t.Fatal(err)
	}
	closedWith(t, tk, websocket.ClosePolicyViolation)
}

// A call queued for an inbox toolkit that stopped polling fails when the
// inbox lease runs out, not at the call timeout, and says so.
func TestInboxLeaseExpiry(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Config{clock: clk, InboxOnlineWindow: 30 * time.Second, CallTimeout: time.Hour})
	inboxKey := e.key(store.NewKey{Kind: store.KindToolkit, Name: "inbox"})
	e.pyRegister(inboxKey, "polled", pyGreet)
	if status, _ := e.get("/api/v1/toolkit/" + inboxKey + "/inbox"); status != 200 { // one poll, then silence
		t.Fatal(status)
	}
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "polled", 0, "greet", map[string]any{"name": "x"})
	llm.WriteJSON(req)
	due := clk.nextTimer(t) // the lease check, armed when the call was queued
	clk.Advance(due.Sub(clk.Now()))
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	msg := m["message"].(string)
	if !strings.Contains(msg, `toolkit "polled" stopped polling its inbox`) || !strings.Contains(msg, "--inbox-lease") {
		t.Fatalf("call to a silent inbox: %s", msg)
	}

	// A toolkit that polls again in time renews its lease: the call waits.
	e.get("/api/v1/toolkit/" + inboxKey + "/inbox")
	req = pyTaskRequest(e.llmKey, "polled", 1, "greet", map[string]any{"name": "y"})
	llm.WriteJSON(req)
	due = clk.nextTimer(t)
	clk.Advance(due.Sub(clk.Now()) - time.Second)
	status, body := e.get("/api/v1/toolkit/" + inboxKey + "/inbox") // takes the call
	if status != 200 || !strings.Contains(string(body), `"tool_name":"greet"`) {
		t.Fatalf("poll within the lease: %d %s", status, body)
	}
	var got map[string]any
	json.Unmarshal(body, &got)
	e.post("/api/v1/toolkit/"+inboxKey+"/inbox/respond", map[string]any{"request_id": got["request_id"], "response": "late but fine"})
	if res := checkTaskResponse(t, readMsg(t, llm), req, "success"); res != "late but fine" {
		t.Fatalf("call within the lease: %v", res)
	}
}

// A WebSocket toolkit that stops answering pings (a stopped process keeps
// its socket open) has its calls failed at the pong timeout, with the
// reason.
func TestPongTimeoutFailsCalls(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 20 * time.Millisecond, PongTimeout: 50 * time.Millisecond, CallTimeout: time.Hour})
	// A Go toolkit: held to the pong timeout.
	status, reply := e.post("/api/v1/register_tool", map[string]any{"function_id": "greet", "api_key": e.tkKey, "app_name": "hello",
		"programming_language": "Go", "code_hash": "c", "toolkit_hash": "h", "metadata": map[string]any{"params": []string{"name"}, "required_params": []string{"name"}}})
	if status != 200 {
		t.Fatalf("register: %d %v", status, reply)
	}
	// Answers pings until the call comes, then stops, as a process stopped
	// mid-call: never dropped before the call is in flight, however slow
	// the machine.
	stopAtCall(e.dialPyToolkit(e.tkKey))
	// The calls go over HTTP: an LLM WebSocket of this test, not read while
	// it waits, would miss its own pongs and be dropped as well.
	call := func(req map[string]any) map[string]any {
		t.Helper()
		status, m := e.post("/api/v1/atp/llm-client/process/", req, "Authorization", "ApiKey "+e.llmKey)
		if status != 200 {
			t.Fatalf("call: %d %v", status, m)
		}
		return m
	}
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	m := call(req)
	checkTaskResponse(t, m, req, "error")
	msg := m["message"].(string)
	if !strings.Contains(msg, "no pong within 50ms") || !strings.Contains(msg, "--pong-timeout") {
		t.Fatalf("call to a stopped Go toolkit: %s", msg)
	}
	// A Python toolkit that sends nothing at all, not even its own pings.
	pyKey := e.key(store.NewKey{Kind: store.KindToolkit, Name: "py"})
	e.pyRegister(pyKey, "python", pyGreet)
	stopAtCall(e.dialPyToolkit(pyKey))
	req = pyTaskRequest(e.llmKey, "python", 0, "greet", map[string]any{"name": "x"})
	m = call(req)
	checkTaskResponse(t, m, req, "error")
	if msg := m["message"].(string); !strings.Contains(msg, "nothing received for 70ms") {
		t.Fatalf("call to a stopped Python toolkit: %s", msg)
	}
	// A toolkit that answers pings stays, round after round: the server
	// sends each ping only after the last one's check passed.
	tk := e.dialPyToolkit(e.tkKey)
	pings := make(chan struct{}, 1)
	tk.SetPingHandler(func(data string) error {
		select {
		case pings <- struct{}{}:
		default:
		}
		return tk.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	go servePy(tk)
	for range 3 {
		select {
		case <-pings:
		case <-time.After(10 * time.Second):
			t.Fatal("no ping")
		}
	}
	req = pyTaskRequest(e.llmKey, "hello", 1, "greet", map[string]any{"name": "y"})
	if reply := call(req); checkTaskResponse(t, reply, req, "success") != "Hello, y" {
		t.Fatalf("call to a live toolkit: %v", reply)
	}
}

// stopAtCall reads ws (gorilla answers the server's pings while it reads)
// until the first message, a call, then reads no more: from then on the
// toolkit answers nothing, not even pings.
func stopAtCall(ws *websocket.Conn) {
	go func() {
		ws.NextReader()
	}()
}

// The keepalive's verdict: a Go toolkit must answer each ping; a Python
// one, which cannot while it runs a tool, must show some sign of life (its
// own pings) within PingInterval + PongTimeout.
func TestPongVerdict(t *testing.T) {
	const pi, pt = 30 * time.Second, 10 * time.Second
	sent := time.Hour
	for _, c := range []struct {
		strict bool
		alive  time.Duration
		want   string
	}{
		{true, sent + time.Second, ""}, // pong
		{true, sent - time.Second, "no pong within 10s"},
		{false, sent + time.Second, ""},    // pong
		{false, sent - 25*time.Second, ""}, // its own ping, 25s before ours: running a tool
		{false, sent - 31*time.Second, "nothing received for 40s"},
	} {
		err := pongVerdict(c.strict, sent, c.alive, pi, pt)
		if (c.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), c.want)) {
			t.Errorf("strict=%v, alive %s before the ping: %v, want %q", c.strict, sent-c.alive, err, c.want)
		}
	}
}

// /healthz fails when the store cannot write, though it still reads: here
// another process holds the write lock.
func TestHealthzChecksWrites(t *testing.T) {
	db := filepath.Join(t.TempDir(), "atp.db")
	e := newEnv(t, Config{DBPath: db})
	if status, body := e.get("/healthz"); status != 200 {
		t.Fatalf("healthy: %d %s", status, body)
	}
	raw, err := sql.Open("sqlite", db+"?_busy_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	if err := e.srv.store.Ping(context.Background()); err != nil {
		t.Fatalf("reads still work: %v", err)
	}
	// The check runs at most once a second: the next one sees the lock.
	var body []byte
	eventually(t, "healthz to fail", func() bool {
		var status int
		status, body = e.get("/healthz")
		return status == 503
	})
	if !strings.Contains(string(body), `"status":"unavailable"`) || !strings.Contains(string(body), "write check") {
		t.Fatalf("store cannot write: %s", body)
	}
	conn.ExecContext(context.Background(), "ROLLBACK")
	eventually(t, "healthz to recover", func() bool { status, _ := e.get("/healthz"); return status == 200 })
}

// atp serve --verbose logs each successful call by toolkit, tool and
// duration; never its params, result or token.
func TestVerboseLogsCalls(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	go servePy(tk)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "secret-param-value"})
	req["auth_token"] = "secret-token-value"
	checkTaskResponse(t, roundTrip(t, llm, req), req, "success")
	eventually(t, "the call's log line", func() bool { return strings.Contains(e.logs.String(), "call done") })
	logs := e.logs.String()
	line := logs[strings.Index(logs, "call done"):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{"toolkit=hello", "tool=greet", "duration="} {
		if !strings.Contains(line, want) {
			t.Fatalf("call line %q lacks %q", line, want)
		}
	}
	for _, secret := range []string{"secret-param-value", "secret-token-value", "Hello, "} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log shows %q:\n%s", secret, logs)
		}
	}
}
