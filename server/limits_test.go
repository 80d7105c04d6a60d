package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/server/store"
)

// A key has at most MaxConnsPerKey WebSockets; one more is refused before
// the upgrade with 429, and a slot comes back when one closes.
func TestConnsPerKey(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerKey: 2})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	a := e.dialPyToolkit(e.tkKey)
	e.dialPyToolkit(e.tkKey)
	_, resp, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/", nil)
	if err == nil || resp.StatusCode != 429 || !strings.Contains(respStatus(resp), "--max-conns-per-key") {
		t.Fatalf("third toolkit connection: %v %s", err, respStatus(resp))
	}
	a.Close()
	eventually(t, "the slot to come back", func() bool { return e.srv.keyConns.count(keyID(t, e.tkKey)) == 1 })
	e.dialPyToolkit(e.tkKey)

	e.dialPyLLM(e.llmKey)
	e.dialPyLLM(e.llmKey)
	_, resp, err = websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/llm-client/"+e.llmKey+"/", nil)
	if err == nil || resp.StatusCode != 429 {
		t.Fatalf("third LLM connection: %v %s", err, respStatus(resp))
	}
}

func keyID(t *testing.T, apiKey string) string {
	_, id, _, ok := store.ParseKey(apiKey)
	if !ok {
		t.Fatalf("not a key: %s", apiKey)
	}
	return id
}

// A key has at most MaxRequestsPerKey HTTP requests in progress: a long
// poll holds one.
func TestRequestsPerKey(t *testing.T) {
	e := newEnv(t, Config{MaxRequestsPerKey: 1})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	polled := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.base+"/api/v1/toolkit/"+e.tkKey+"/inbox?wait=30", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			polled <- resp.StatusCode
		}
	}()
	ref := toolkitRef{store.DefaultOwner, "hello"}
	eventually(t, "the long poll", func() bool { return e.srv.hub.waiters(ref) == 1 })
	status, body := e.get("/api/v1/toolkit/" + e.tkKey + "/inbox")
	if status != 429 || !strings.Contains(string(body), "--max-requests-per-key") {
		t.Fatalf("second request: %d %s", status, body)
	}
	cancel()
	eventually(t, "the poll's slot to come back", func() bool { return e.srv.keyRequests.count(keyID(t, e.tkKey)) == 0 })
	if status, body := e.get("/api/v1/toolkit/" + e.tkKey + "/inbox"); status != 200 {
		t.Fatalf("after the poll: %d %s", status, body)
	}
}

// Calls pending per toolkit and per LLM key are capped; one more fails at
// once with a TASK_RESPONSE naming the limit, and the budget comes back as
// calls end.
func TestPendingCallLimits(t *testing.T) {
	e := newEnv(t, Config{MaxPendingPerToolkit: 3, MaxPendingPerLLMKey: 5, MaxPendingBytesPerLLMKey: 2048})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey) // does not answer yet
	llm := e.dialPyLLM(e.llmKey)
	type held struct {
		ws *websocket.Conn
		id any
	}
	var holding []held
	for i := range 3 {
		llm.WriteJSON(pyTaskRequest(e.llmKey, "hello", i, "greet", map[string]any{"name": "x"}))
		holding = append(holding, held{tk, readToolRequest(t, tk).Payload.RequestID})
	}
	req := pyTaskRequest(e.llmKey, "hello", 3, "greet", map[string]any{"name": "x"})
	m := roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if !strings.Contains(m["message"].(string), "--max-pending-per-toolkit") {
		t.Fatalf("fourth call: %v", m)
	}
	// Another toolkit of the owner: the LLM key's own cap (5) comes next.
	other := e.key(store.NewKey{Kind: store.KindToolkit, Name: "other"})
	e.pyRegister(other, "other", pyGreet)
	tk2 := e.dialPyToolkit(other)
	for i := range 2 {
		llm.WriteJSON(pyTaskRequest(e.llmKey, "other", i, "greet", map[string]any{"name": "x"}))
		holding = append(holding, held{tk2, readToolRequest(t, tk2).Payload.RequestID})
	}
	req = pyTaskRequest(e.llmKey, "other", 9, "greet", map[string]any{"name": "x"})
	if m := roundTrip(t, llm, req); !strings.Contains(m["message"].(string), "--max-pending-per-llm-key") {
		t.Fatalf("sixth call of the key: %v", m)
	}
	// Answering frees the budget; then params too big for the byte budget
	// are refused.
	for _, h := range holding {
		h.ws.WriteJSON(map[string]any{"type": "tool_response", "request_id": h.id, "result": "held"})
	}
	go servePy(tk)
	for range 5 {
		if m := readMsg(t, llm); m["status"] != "success" {
			t.Fatalf("held call: %v", m)
		}
	}
	b := e.srv.budget(keyID(t, e.llmKey))
	eventually(t, "the budget to come back", func() bool { return b.calls.Load() == 0 && b.bytes.Load() == 0 })
	req = pyTaskRequest(e.llmKey, "hello", 10, "greet", map[string]any{"name": strings.Repeat("n", 3000)})
	if m := roundTrip(t, llm, req); !strings.Contains(m["message"].(string), "--max-pending-bytes-per-llm-key") {
		t.Fatalf("big params: %v", m)
	}
	req = pyTaskRequest(e.llmKey, "hello", 11, "greet", map[string]any{"name": "ok"})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "Hello, ok" {
		t.Fatalf("after the limits: %v", got)
	}
	if b.calls.Load() != 0 || b.bytes.Load() != 0 {
		t.Fatalf("budget after all calls: %d calls, %d bytes", b.calls.Load(), b.bytes.Load())
	}
}

// A toolkit has at most MaxToolsPerToolkit tools; updating one it has is
// always allowed.
func TestToolsPerToolkit(t *testing.T) {
	e := newEnv(t, Config{MaxToolsPerToolkit: 2})
	if statuses := e.pyRegister(e.tkKey, "hello", pyFail, pyGreet); statuses[0] != 200 || statuses[1] != 200 {
		t.Fatalf("two tools: %v", statuses)
	}
	third := pyTool{name: "third", params: []string{}, required: []string{}, source: "def third(): ..."}
	status, reply := e.post("/api/v1/register_tool", map[string]any{"function_id": "third", "api_key": e.tkKey, "app_name": "hello",
		"programming_language": "Python", "code_hash": sha(third.source), "toolkit_hash": "h2", "metadata": map[string]any{"params": []string{}, "required_params": []string{}}})
	if status != 409 || !strings.Contains(reply["error"].(string), "--max-tools-per-toolkit") {
		t.Fatalf("third tool: %d %v", status, reply)
	}
	status, reply = e.post("/api/v1/register_tool", map[string]any{"function_id": "greet", "api_key": e.tkKey, "app_name": "hello",
		"programming_language": "Python", "code_hash": "new", "toolkit_hash": "h3", "metadata": map[string]any{"params": []string{"name"}, "required_params": []string{}}})
	if status != 200 {
		t.Fatalf("updating a tool: %d %v", status, reply)
	}
}

// An idle connection does not keep the buffer of a large message it sent:
// 20 toolkits that each sent one 2 MiB frame leave the heap where it was.
func TestIdleConnectionsReleaseReadBuffers(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerKey: 100})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	before := heapInUse()
	big := []byte(`{"type":"` + strings.Repeat("t", 2<<20) + `"}`)
	var conns []*websocket.Conn
	for range 20 {
		ws := e.dialPyToolkit(e.tkKey)
		if err := ws.WriteMessage(websocket.TextMessage, big); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, ws)
	}
	// Each has been read once this ping's pong comes back: the frames are
	// handled in order.
	for _, ws := range conns {
		pong := make(chan struct{})
		ws.SetPongHandler(func(string) error { close(pong); return nil })
		ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(time.Second))
		go ws.ReadMessage()
		select {
		case <-pong:
		case <-time.After(10 * time.Second):
			t.Fatal("no pong")
		}
	}
	if grew := heapInUse() - before; grew > 16<<20 {
		t.Fatalf("20 idle connections hold %d MiB after one 2 MiB frame each", grew>>20)
	}
}

// Values a peer sends are cut in the log, and one connection's warnings
// are rate-limited: 200 frames with 1 MiB fields log a few lines (20 under
// the race detector, which makes each frame ten times slower to read).
func TestLogFlood(t *testing.T) {
	clk := newFakeClock() // frozen: the warning budget does not refill
	e := newEnv(t, Config{clock: clk, MaxPeerWarnings: 10})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	ws := e.dialPyToolkit(e.tkKey)
	huge := strings.Repeat("x", 1<<20)
	frames := [][]byte{
		[]byte(`{"type":"` + huge + `"}`),
		[]byte(`{"type":"tool_response","request_id":"` + huge + `","result":1}`),
		[]byte(`{"type":"tool_response","request_id":"r","result":1,"latency_ms":"` + huge + `"}`),
		[]byte(`{"type":"` + huge),
	}
	n := 200
	if raceEnabled {
		n = 20
	}
	for i := range n {
		if err := ws.WriteMessage(websocket.TextMessage, frames[i%len(frames)]); err != nil {
			t.Fatal(err)
		}
	}
	// A clean close: the server reads every frame before it.
	ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(10*time.Second))
	for {
		if _, _, err := ws.ReadMessage(); err != nil {
			break
		}
	}
	summary := fmt.Sprintf("%d similar warnings suppressed", n-10)
	eventually(t, "the summary of the suppressed warnings", func() bool { return strings.Contains(e.logs.String(), summary) })
	logs := e.logs.String()
	if len(logs) > 64<<10 {
		t.Fatalf("%d frames grew the log by %d bytes", n, len(logs))
	}
	if !strings.Contains(logs, "…(1048576 bytes)") {
		t.Fatalf("cut values do not give their length:\n%s", logs)
	}
	// The LLM side: an unknown type is not echoed whole in the error.
	llm := e.dialPyLLM(e.llmKey)
	llm.WriteMessage(websocket.TextMessage, []byte(`{"type":"`+huge+`","request_id":"q"}`))
	_, reply, err := llm.ReadMessage()
	if err != nil || len(reply) > 1024 || !strings.Contains(string(reply), "unknown message type") {
		t.Fatalf("reply to a huge type: %v, %d bytes", err, len(reply))
	}
}

// A toolkit's result with invalid UTF-8 never goes out raw: on the LLM
// WebSocket (a text frame), in process/ replies and in SSE, and from the
// inbox, it carries U+FFFD instead.
func TestInvalidUTF8Results(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	go func() {
		for {
			var req pyToolRequest
			if tk.ReadJSON(&req) != nil {
				return
			}
			id, _ := json.Marshal(req.Payload.RequestID)
			tk.WriteMessage(websocket.TextMessage, []byte(`{"type":"tool_response","request_id":`+string(id)+`,"result":{"text":"a`+"\xff\xfe"+`b"}}`))
		}
	}()
	want := "a\uFFFDb" // a run of invalid bytes becomes one U+FFFD
	check := func(where string, raw []byte) {
		t.Helper()
		if !utf8Valid(raw) || !strings.Contains(string(raw), want) {
			t.Fatalf("%s: %q", where, raw)
		}
	}
	llm := e.dialPyLLM(e.llmKey)
	llm.WriteJSON(pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"}))
	_, raw, err := llm.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	check("LLM WebSocket", raw)
	req := pyTaskRequest(e.llmKey, "hello", 1, "greet", map[string]any{"name": "x"})
	_, raw = e.postRaw("/api/v1/atp/llm-client/process/", req, "Authorization", "ApiKey "+e.llmKey)
	check("process/", raw)
	_, raw = e.postRaw("/api/v1/atp/llm-client/process/", req, "Authorization", "ApiKey "+e.llmKey, "Accept", "text/event-stream")
	check("SSE", raw)

	// The inbox.
	inboxKey := e.key(store.NewKey{Kind: store.KindToolkit, Name: "inbox"})
	e.pyRegister(inboxKey, "polled", pyGreet)
	go func() {
		resp, err := http.Get(e.base + "/api/v1/toolkit/" + inboxKey + "/inbox?wait=10")
		if err != nil {
			return
		}
		var req map[string]any
		json.NewDecoder(resp.Body).Decode(&req)
		resp.Body.Close()
		id, _ := json.Marshal(req["request_id"])
		resp, err = http.Post(e.base+"/api/v1/toolkit/"+inboxKey+"/inbox/respond", "application/json",
			strings.NewReader(`{"request_id":`+string(id)+`,"response":"a`+"\xff\xfe"+`b"}`))
		if err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "the inbox poll", func() bool { return e.srv.hub.waiters(toolkitRef{store.DefaultOwner, "polled"}) == 1 })
	_, raw = e.postRaw("/api/v1/atp/llm-client/process/", pyTaskRequest(e.llmKey, "polled", 2, "greet", map[string]any{"name": "x"}), "Authorization", "ApiKey "+e.llmKey)
	check("inbox", raw)
}

// A reply the server cannot read fails its call at once, saying why,
// rather than leaving it to time out.
func TestMalformedReplyFailsItsCall(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	llm.WriteJSON(req)
	got := readToolRequest(t, tk)
	id, _ := json.Marshal(got.Payload.RequestID)
	tk.WriteMessage(websocket.TextMessage, []byte(`{"type":"tool_response","request_id":`+string(id)+`,"is_error":"yes","result":1}`))
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	if !strings.Contains(m["message"].(string), "reply could not be read") || !strings.Contains(m["message"].(string), "is_error") {
		t.Fatalf("malformed reply: %v", m)
	}
}

func utf8Valid(b []byte) bool { return strings.ToValidUTF8(string(b), "?") == string(b) }

// The greeting tells a toolkit it is connected, so calls must reach it
// from then on: 300 calls, each right after a fresh connection's greeting,
// none "offline"; and the greeting is the connection's first message even
// when calls are waiting for it.
func TestConnectedIsRoutable(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	llm := e.dialPyLLM(e.llmKey)
	ref := toolkitRef{store.DefaultOwner, "hello"}
	for i := range 300 {
		tk := e.dialPyToolkit(e.tkKey) // returns once the greeting is read
		req := pyTaskRequest(e.llmKey, "hello", i, "greet", map[string]any{"name": fmt.Sprint(i)})
		llm.WriteJSON(req)
		go servePy(tk)
		if got := checkTaskResponse(t, readMsg(t, llm), req, "success"); got != fmt.Sprint("Hello, ", i) {
			t.Fatalf("call %d: %v", i, got)
		}
		tk.Close()
		eventually(t, "the connection to leave", func() bool { ws, _ := e.srv.hub.online(ref); return ws == 0 })
	}

	// Calls sent while the toolkit connects: its first frame is the
	// greeting, whatever was routed to it as it joined.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if llm.WriteJSON(pyTaskRequest(e.llmKey, "hello", i, "greet", map[string]any{"name": "x"})) != nil {
				return
			}
		}
	}()
	go func() {
		for {
			if _, _, err := llm.ReadMessage(); err != nil {
				return
			}
		}
	}()
	for range 20 {
		ws, _, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/", nil)
		if err != nil {
			t.Fatal(err)
		}
		var first map[string]any
		if err := ws.ReadJSON(&first); err != nil || first["message_type"] != "atp_client_connected" {
			t.Fatalf("first frame: %v %v", first, err)
		}
		ws.Close()
		eventually(t, "the connection to leave", func() bool { ws, _ := e.srv.hub.online(ref); return ws == 0 })
	}
}

// The connection of a key bound by a registration that raced with its
// handshake still joins the toolkit.
func TestBindRacingHandshake(t *testing.T) {
	h := newHub(time.Minute, time.Now)
	c := &tkConn{key: store.Key{ID: "k1", Owner: "o"}}
	h.bind("k1", toolkitRef{"o", "crm"}) // the registration lands first...
	if err := h.addConn(c); err != nil { // ...then the handshake, which read the key unbound
		t.Fatal(err)
	}
	if ws, _ := h.online(toolkitRef{"o", "crm"}); ws != 1 {
		t.Fatalf("connection not routable: %d", ws)
	}
}

// An LLM WebSocket whose key is not valid opens (the client learns why in
// answer to its auth message) but as one of the few unauthenticated
// connections, with small messages.
func TestUnauthenticatedLLMWebSocket(t *testing.T) {
	e := newEnv(t, Config{MaxUnauthRequests: 1, UnauthBodyLimit: 1024})
	bad := e.dialLLMRaw("atp_llm_nope_nope", nil)
	_, resp, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/llm-client/atp_llm_nope_nope/", nil)
	if err == nil || resp.StatusCode != 503 || !strings.Contains(respStatus(resp), "--max-unauth-requests") {
		t.Fatalf("second unauthenticated WebSocket: %v %s", err, respStatus(resp))
	}
	// A valid key is not held back by them.
	e.dialPyLLM(e.llmKey)
	bad.WriteMessage(websocket.TextMessage, []byte(`{"type":"auth","api_key":"`+strings.Repeat("k", 2048)+`"}`))
	if _, _, err := bad.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("a big message before auth: %v, want close 1009", err)
	}
	eventually(t, "the slot to come back", func() bool { return e.srv.unauth.inUse() == 0 })
}

// New refuses a limit the server cannot work with, naming it: zero is the
// default everywhere, and a negative call timeout (no bound, in package
// runtime) is refused, since an LLM client waits for every routed call.
func TestNewRefusesBadLimits(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{CallTimeout: -time.Second}, "server: CallTimeout: expected a positive duration, or 0 for the default, got -1s"},
		{Config{MaxCallTimeout: -1}, "server: MaxCallTimeout: expected a positive duration, or 0 for the default, got -1ns"},
		{Config{WriteTimeout: -time.Second}, "server: WriteTimeout: expected a positive duration"},
		{Config{MaxHeaderBytes: 10}, "server: MaxHeaderBytes: expected at least 1024, or 0 for the default, got 10"},
		{Config{MaxConnsPerKey: -1}, "server: MaxConnsPerKey: expected at least 1, or 0 for the default, got -1"},
	} {
		srv, err := New(context.Background(), c.cfg)
		if err == nil {
			srv.Close()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want an error containing %q", c.cfg, err, c.want)
		}
	}
}
