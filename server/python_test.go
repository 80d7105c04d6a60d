package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

// The Python SDK 0.2.5 end to end, in WebSocket mode on both sides.
func TestPythonWebSocketMode(t *testing.T) {
	e := newEnv(t, Config{})
	if st := e.pyRegister(e.tkKey, "hello", pyFail, pyGreet); len(st) != 2 || st[0] != 200 || st[1] != 200 {
		t.Fatalf("register statuses = %v, want [200 200]", st)
	}
	// A second start-up finds everything up to date and sends nothing.
	if st := e.pyRegister(e.tkKey, "hello", pyFail, pyGreet); st != nil {
		t.Fatalf("re-registration of unchanged tools sent register_tool: %v", st)
	}
	tk := e.dialPyToolkit(e.tkKey)
	go servePy(tk)

	llm := e.dialPyLLM(e.llmKey)
	ctxReq := pyContextRequest(e.llmKey, "hello", "openai")
	m := roundTrip(t, llm, ctxReq)
	if m["type"] != "toolkit_context" || m["request_id"] != ctxReq["request_id"] {
		t.Fatalf("context reply = %v", m)
	}
	payload := m["payload"].(map[string]any)
	for _, k := range []string{"toolkit_id", "toolkit_name", "caption", "provider", "tools", "user_prompt"} {
		if _, ok := payload[k]; !ok {
			t.Errorf("CONTEXT lacks %q: %v", k, payload)
		}
	}
	if payload["toolkit_id"] != "hello" || payload["provider"] != "openai" || payload["user_prompt"] != "say hi" {
		t.Fatalf("CONTEXT = %v", payload)
	}
	tools := payload["tools"].([]any)
	if len(tools) != 2 {
		t.Fatalf("tools = %v", tools)
	}
	greet := tools[1].(map[string]any)
	if greet["type"] != "function" || greet["name"] != "greet" || greet["description"] != "Greets someone." {
		t.Fatalf("openai tool = %v", greet)
	}
	params := greet["parameters"].(map[string]any)
	props := params["properties"].(map[string]any)
	if params["type"] != "object" || len(props) != 2 || props["name"] == nil || props["times"] == nil {
		t.Fatalf("inferred schema = %v", params)
	}

	m = roundTrip(t, llm, pyContextRequest(e.llmKey, "hello", "anthropic"))
	at := m["payload"].(map[string]any)["tools"].([]any)[1].(map[string]any)
	if at["name"] != "greet" || at["input_schema"] == nil {
		t.Fatalf("anthropic tool = %v", at)
	}

	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "Ada"})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "Hello, Ada" {
		t.Fatalf("result = %v", got)
	}
	req = pyTaskRequest(e.llmKey, "hello", 1, "fail", map[string]any{})
	m = roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if m["message"] != "boom" {
		t.Fatalf("a Python in-band failure: message = %v, want boom", m["message"])
	}
	// Inferred schema: names are checked, values are the tool's business.
	req = pyTaskRequest(e.llmKey, "hello", 2, "greet", map[string]any{"times": 2, "nmae": "x"})
	m = roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "name") || !strings.Contains(msg, "nmae") {
		t.Fatalf("invalid params on an inferred schema: %v", m["message"])
	}
}

// The Python SDK's defaults: the toolkit polls the HTTP inbox, and the LLM
// client uses process/ with Authorization: ApiKey.
func TestPythonHTTPMode(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	inbox := "/api/v1/toolkit/" + e.tkKey + "/inbox"

	// Before any poll the toolkit is offline.
	status, m := e.post("/api/v1/atp/llm-client/process/", pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "Ada"}),
		"Authorization", "ApiKey "+e.llmKey, "Accept", "application/json")
	if status != 200 || m["status"] != "error" || !strings.Contains(m["message"].(string), "offline") {
		t.Fatalf("call before any poll: %d %v", status, m)
	}

	// An empty poll answers {} and marks the toolkit online.
	if status, body := e.get(inbox); status != 200 || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("empty inbox: %d %s", status, body)
	}
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "Ada"})
	type result struct {
		status int
		m      map[string]any
	}
	done := make(chan result, 1)
	go func() {
		status, m := e.post("/api/v1/atp/llm-client/process/", req, "Authorization", "ApiKey "+e.llmKey, "Accept", "application/json")
		done <- result{status, m}
	}()
	// The toolkit's next poll gets the call, flat.
	var flat map[string]any
	eventually(t, "the call in the inbox", func() bool {
		_, body := e.get(inbox)
		json.Unmarshal(body, &flat)
		return len(flat) > 0
	})
	if flat["tool_name"] != "greet" || flat["request_id"] == nil || flat["params"].(map[string]any)["name"] != "Ada" {
		t.Fatalf("inbox request = %v", flat)
	}
	if _, wrapped := flat["payload"]; wrapped {
		t.Fatalf("inbox request is wrapped: %v", flat)
	}
	status, ok := e.post("/api/v1/toolkit/"+e.tkKey+"/inbox/respond", map[string]any{"request_id": flat["request_id"], "response": "Hello, Ada"})
	if status != 200 || ok["ok"] != true {
		t.Fatalf("respond: %d %v", status, ok)
	}
	r := <-done
	if r.status != 200 || checkTaskResponse(t, r.m, req, "success") != "Hello, Ada" {
		t.Fatalf("process reply: %d %v", r.status, r.m)
	}
	// Answering twice: the call is over.
	status, ok = e.post("/api/v1/toolkit/"+e.tkKey+"/inbox/respond", map[string]any{"request_id": flat["request_id"], "response": "again"})
	if status != 410 || ok["ok"] != false {
		t.Fatalf("second respond: %d %v", status, ok)
	}

	// get_toolkit_context over HTTP, plain and as server-sent events.
	status, m = e.post("/api/v1/atp/llm-client/process/", pyContextRequest(e.llmKey, "hello", "mistral"), "Authorization", "ApiKey "+e.llmKey)
	tool := m["payload"].(map[string]any)["tools"].([]any)[0].(map[string]any)
	if status != 200 || tool["type"] != "function" || tool["function"].(map[string]any)["name"] != "greet" {
		t.Fatalf("mistral context: %d %v", status, m)
	}
	status, raw := e.postRaw("/api/v1/atp/llm-client/process/", pyContextRequest(e.llmKey, "hello", "openai"),
		"Authorization", "ApiKey "+e.llmKey, "Accept", "text/event-stream")
	events := sseEvents(t, raw)
	if status != 200 || len(events) != 1 || events[0]["type"] != "toolkit_context" {
		t.Fatalf("SSE context: %d %s", status, raw)
	}
}

// sseEvents parses the lines the Python client reads: "data: <json>".
func sseEvents(t *testing.T, raw []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data: ") {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line[6:]), &m); err != nil {
			t.Fatalf("SSE line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

// A task_request over process/ as an SSE stream (call_tool_streaming).
func TestProcessSSETask(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	go servePy(e.dialPyToolkit(e.tkKey))
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "Bo"})
	req["request_id"] = "task_hello_" + uuid4()
	status, raw := e.postRaw("/api/v1/atp/llm-client/process/", req, "Authorization", "ApiKey "+e.llmKey, "Accept", "text/event-stream")
	events := sseEvents(t, raw)
	if status != 200 || len(events) != 1 {
		t.Fatalf("SSE task: %d %s", status, raw)
	}
	if checkTaskResponse(t, events[0], req, "success") != "Hello, Bo" {
		t.Fatalf("SSE task result: %v", events[0])
	}
}

// The inbox long-poll extension: a poll with ?wait= is held until a call
// arrives, and answered with it at once.
func TestInboxLongPoll(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	ref := toolkitRef{"default", "hello"}
	polled := make(chan map[string]any, 1)
	go func() {
		resp, err := http.Get(e.base + "/api/v1/toolkit/" + e.tkKey + "/inbox?wait=30")
		var m map[string]any
		if err == nil {
			json.NewDecoder(resp.Body).Decode(&m)
			resp.Body.Close()
			if resp.Header.Get("ATP-Inbox-Wait") != "30" {
				m = map[string]any{"header": resp.Header.Get("ATP-Inbox-Wait")}
			}
		}
		polled <- m
	}()
	eventually(t, "the long-poll to be waiting", func() bool {
		e.srv.hub.mu.Lock()
		defer e.srv.hub.mu.Unlock()
		r := e.srv.hub.routes[ref]
		return r != nil && len(r.waiters) == 1
	})
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "Cy"})
	llm.WriteJSON(req)
	flat := <-polled
	if flat["tool_name"] != "greet" {
		t.Fatalf("long-poll got %v", flat)
	}
	e.post("/api/v1/toolkit/"+e.tkKey+"/inbox/respond", map[string]any{"request_id": flat["request_id"], "response": "hi Cy", "is_error": false})
	if checkTaskResponse(t, readMsg(t, llm), req, "success") != "hi Cy" {
		t.Fatal("wrong result")
	}
	// A long-poll that times out answers {} (wait=0.01 s).
	if status, body := e.get("/api/v1/toolkit/" + e.tkKey + "/inbox?wait=10ms"); status != 200 || strings.TrimSpace(string(body)) != "{}" {
		t.Fatalf("expired long-poll: %d %s", status, body)
	}
	if status, body := e.get("/api/v1/toolkit/" + e.tkKey + "/inbox?wait=soon"); status != 400 || !strings.Contains(string(body), "wait") {
		t.Fatalf("bad wait: %d %s", status, body)
	}
}

// A poller that gives up (the HTTP client goes away) while holding no call
// leaves no waiter behind; a call queued while nobody polls is handed to the
// next poll.
func TestInboxQueueAndAbandonedPoll(t *testing.T) {
	e := newEnv(t, Config{CallTimeout: time.Minute})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	ref := toolkitRef{"default", "hello"}
	reqCtx, cancel := context.WithCancel(context.Background())
	go func() {
		r, _ := http.NewRequestWithContext(reqCtx, http.MethodGet, e.base+"/api/v1/toolkit/"+e.tkKey+"/inbox?wait=60", nil)
		if resp, err := http.DefaultClient.Do(r); err == nil {
			resp.Body.Close()
		}
	}()
	eventually(t, "a waiting poll", func() bool { return e.srv.hub.waiters(ref) == 1 })
	cancel()
	eventually(t, "the abandoned poll to leave", func() bool { return e.srv.hub.waiters(ref) == 0 })

	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "Di"})
	llm.WriteJSON(req)
	var flat map[string]any
	eventually(t, "the queued call", func() bool {
		_, body := e.get("/api/v1/toolkit/" + e.tkKey + "/inbox")
		json.Unmarshal(body, &flat)
		return len(flat) > 0
	})
	e.post("/api/v1/toolkit/"+e.tkKey+"/inbox/respond", map[string]any{"request_id": flat["request_id"], "response": map[string]any{"error": "no such person"}})
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	if m["message"] != "no such person" {
		t.Fatalf("inbox in-band failure: %v", m)
	}
}

// A toolkit that shuts down releases its held inbox polls
// (docs/extensions.md): they end at once with no call, and a poll that
// comes within a second after is not held; later ones are again.
func TestInboxRelease(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Config{clock: clk})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	ref := toolkitRef{"default", "hello"}
	poll := func() chan string {
		got := make(chan string, 1)
		go func() {
			resp, err := http.Get(e.base + "/api/v1/toolkit/" + e.tkKey + "/inbox?wait=60")
			if err != nil {
				got <- err.Error()
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			got <- strings.TrimSpace(string(body))
		}()
		return got
	}
	answered := func(what string, got chan string) {
		t.Helper()
		select {
		case body := <-got:
			if body != "{}" {
				t.Fatalf("%s: %s, want {}", what, body)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still held after 10s", what)
		}
	}
	release := func(want float64) {
		t.Helper()
		if status, m := e.post("/api/v1/toolkit/"+e.tkKey+"/inbox/release", "{}"); status != 200 || m["released"] != want {
			t.Fatalf("release: %d %v, want 200 and %v released", status, m, want)
		}
	}

	held := poll()
	eventually(t, "a held poll", func() bool { return e.srv.hub.waiters(ref) == 1 })
	release(1)
	answered("the released poll", held)
	answered("a poll just after the release", poll())
	clk.Advance(time.Second)
	held = poll()
	eventually(t, "a held poll a second later", func() bool { return e.srv.hub.waiters(ref) == 1 })
	release(1)
	answered("the second released poll", held)
	if status, _ := e.post("/api/v1/toolkit/"+e.llmKey+"/inbox/release", "{}"); status != http.StatusForbidden {
		t.Fatalf("release with an LLM key: %d, want 403", status)
	}
}

var pyEcho = pyTool{
	name: "echo", description: "Echoes its params and token.", params: []string{"text"}, required: []string{},
	source: "@client.register_tool(...)\ndef echo(text=None, auth_token=None):\n    return {...}\n",
}

// The auth token of a task_request reaches the toolkit: the call's own
// (payload.auth_token) first, else the request's.
func TestAuthTokenPassThrough(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyEcho)
	go servePy(e.dialPyToolkit(e.tkKey))
	llm := e.dialPyLLM(e.llmKey)
	token := func(top, call any) any {
		req := pyTaskRequest(e.llmKey, "hello", 0, "echo", map[string]any{"text": "x"})
		req["auth_token"] = top
		req["payload"].(map[string]any)["auth_token"] = call
		res := checkTaskResponse(t, roundTrip(t, llm, req), req, "success").(map[string]any)
		return res["auth_token"]
	}
	if got := token("tok-top", nil); got != "tok-top" {
		t.Fatalf("top-level token: toolkit got %v", got)
	}
	if got := token("tok-top", "tok-call"); got != "tok-call" {
		t.Fatalf("per-call token: toolkit got %v", got)
	}
	if got := token(nil, nil); got != nil {
		t.Fatalf("no token: toolkit got %v", got)
	}
}

// Keepalive: the server answers pings, and pings an idle toolkit.
func TestPings(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 10 * time.Millisecond})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	pong := make(chan string, 1)
	ping := make(chan struct{}, 1)
	tk.SetPongHandler(func(d string) error { pong <- d; return nil })
	tk.SetPingHandler(func(string) error {
		select {
		case ping <- struct{}{}:
		default:
		}
		return nil
	})
	go func() {
		for {
			if _, _, err := tk.ReadMessage(); err != nil {
				return
			}
		}
	}()
	tk.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second))
	if got := <-pong; got != "are you there" {
		t.Fatalf("pong = %q", got)
	}
	<-ping
}

// A Go toolkit may also send its key as Authorization: Bearer; it must
// agree with the key in the path.
func TestToolkitBearerHeader(t *testing.T) {
	e := newEnv(t, Config{})
	other := e.key(store.NewKey{Kind: store.KindToolkit, Name: "other"})
	url := e.wsBase + "/ws/v1/atp/toolkit-client/" + e.tkKey + "/"
	ws, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + e.tkKey}})
	if err != nil {
		t.Fatalf("matching Bearer: %v", err)
	}
	ws.Close()
	_, resp, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer " + other}})
	if err == nil || resp.StatusCode != 401 {
		t.Fatalf("different Bearer: %v %s", err, respStatus(resp))
	}
}
