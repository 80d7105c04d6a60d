package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/server/store"
)

// logBuffer collects a server's log output, for the redaction checks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testEnv is a server on httptest with a toolkit key and an LLM key of
// owner "default".
type testEnv struct {
	t      *testing.T
	srv    *Server
	http   *httptest.Server
	base   string // http://127.0.0.1:port
	wsBase string // ws://127.0.0.1:port
	logs   *logBuffer
	tkKey  string
	llmKey string
	nats   *tcpProxy // a replica's way to NATS (newReplicas), nil otherwise
}

func newEnv(t *testing.T, cfg Config) *testEnv {
	t.Helper()
	return newEnvOn(t, cfg, nil)
}

// newEnvOn is newEnv with the server's listener wrapped by wrap (nil: as
// it is).
func newEnvOn(t *testing.T, cfg Config, wrap func(net.Listener) net.Listener) *testEnv {
	t.Helper()
	logs := &logBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(srv.Handler())
	if wrap != nil {
		hs.Listener = wrap(hs.Listener)
	}
	hs.Start()
	e := &testEnv{t: t, srv: srv, http: hs, base: hs.URL, wsBase: "ws" + strings.TrimPrefix(hs.URL, "http"), logs: logs}
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	e.tkKey = e.key(store.NewKey{Kind: store.KindToolkit, Name: "tk"})
	e.llmKey = e.key(store.NewKey{Kind: store.KindLLM, Name: "llm"})
	return e
}

func (e *testEnv) key(nk store.NewKey) string {
	e.t.Helper()
	_, k, err := e.srv.CreateKey(context.Background(), nk)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// post sends a JSON body (a string is sent as is) and returns status and
// decoded reply.
func (e *testEnv) post(path string, body any, header ...string) (int, map[string]any) {
	e.t.Helper()
	status, raw := e.postRaw(path, body, header...)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatalf("POST %s: reply is not a JSON object: %v: %s", path, err, raw)
	}
	return status, m
}

func (e *testEnv) postRaw(path string, body any, header ...string) (int, []byte) {
	e.t.Helper()
	var data []byte
	switch b := body.(type) {
	case string:
		data = []byte(b)
	case []byte:
		data = b
	default:
		var err error
		if data, err = json.Marshal(body); err != nil {
			e.t.Fatal(err)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+path, bytes.NewReader(data))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

func (e *testEnv) get(path string) (int, []byte) {
	e.t.Helper()
	resp, err := http.Get(e.base + path)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// eventually polls cond every millisecond, failing after 10 s. It is for
// state that settles asynchronously (goroutines ending, a gauge dropping),
// never for ordering.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// ---- a client that sends exactly what the Python SDK 0.2.5 sends ----

// pyTool is a tool as a Python toolkit declares it.
type pyTool struct {
	name, description string
	params, required  []string
	source            string
}

func sha(s string) string {
	h := sha256Hex([]byte(s))
	return h
}

// pyRegister runs ToolKitClient's start-up registration (docs/protocol.md §1.1):
// verify_hash with the toolkit hash; if not up to date, verify_tool_hash
// and register_tool per tool. It returns the statuses of the register
// calls.
func (e *testEnv) pyRegister(key, app string, tools ...pyTool) []int {
	e.t.Helper()
	var all strings.Builder
	for _, t := range tools { // the caller passes them sorted by name
		all.WriteString(t.source)
	}
	kitHash := sha(all.String())
	status, reply := e.post("/api/v1/toolkit/verify_hash", map[string]any{"api_key": key, "app_name": app, "toolkit_hash": kitHash})
	if status == 200 && reply["up_to_date"] == true {
		return nil
	}
	var statuses []int
	for _, t := range tools {
		status, reply := e.post("/api/v1/toolkit/verify_tool_hash", map[string]any{"api_key": key, "tool_hash": sha(t.source), "tool_name": t.name})
		if status == 200 && reply["up_to_date"] == true {
			continue
		}
		status, reply = e.post("/api/v1/register_tool", map[string]any{
			"function_id": t.name, "api_key": key, "app_name": app, "programming_language": "Python",
			"code_hash": sha(t.source), "toolkit_hash": kitHash,
			"metadata": map[string]any{
				"params": t.params, "required_params": t.required, "description": t.description,
				"auth_provider": nil, "auth_type": nil, "auth_with": nil,
				"sample_response": "", "source_code": t.source,
			},
		})
		if status == 200 {
			if tok, _ := reply["exchange_token"].(string); tok == "" {
				e.t.Fatalf("register_tool %s: no exchange_token in %v", t.name, reply)
			}
		}
		statuses = append(statuses, status)
	}
	return statuses
}

var pyGreet = pyTool{
	name: "greet", description: "Greets someone.", params: []string{"name", "times"}, required: []string{"name"},
	source: "@client.register_tool(...)\ndef greet(name, times=1):\n    return 'Hello, ' + name\n",
}

var pyFail = pyTool{
	name: "fail", description: "Always fails.", params: []string{}, required: []string{},
	source: "@client.register_tool(...)\ndef fail():\n    raise ValueError('boom')\n",
}

// dialPyToolkit opens the toolkit WebSocket as websocket-client does: key
// in the path, no auth header, an Origin header of the base URL.
func (e *testEnv) dialPyToolkit(key string) *websocket.Conn {
	e.t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+key+"/", http.Header{"Origin": {e.base}})
	if err != nil {
		e.t.Fatalf("dial toolkit: %v (%v)", err, respStatus(resp))
	}
	var hello struct {
		MessageType string `json:"message_type"`
		Payload     struct {
			Message string `json:"message"`
		} `json:"payload"`
	}
	if err := ws.ReadJSON(&hello); err != nil || hello.MessageType != "atp_client_connected" || hello.Payload.Message == "" {
		e.t.Fatalf("greeting: %+v, %v", hello, err)
	}
	e.t.Cleanup(func() { ws.Close() })
	return ws
}

func respStatus(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// pyToolRequest is an atp_tool_request as the Python toolkit reads it.
type pyToolRequest struct {
	MessageType string `json:"message_type"`
	Payload     struct {
		RequestID any             `json:"request_id"`
		ToolName  string          `json:"tool_name"`
		Params    json.RawMessage `json:"params"`
		AuthToken *string         `json:"auth_token"`
	} `json:"payload"`
}

func readToolRequest(t *testing.T, ws *websocket.Conn) pyToolRequest {
	t.Helper()
	var req pyToolRequest
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	if err := ws.ReadJSON(&req); err != nil {
		t.Fatalf("toolkit: read request: %v", err)
	}
	if req.MessageType != "atp_tool_request" {
		t.Fatalf("toolkit: got message_type %q", req.MessageType)
	}
	return req
}

// servePy answers requests as the Python toolkit does, one at a time, until
// the connection closes: greet returns a string, fail returns the in-band
// error, an unknown tool gets no answer.
func servePy(ws *websocket.Conn) {
	for {
		var req pyToolRequest
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		if req.MessageType != "atp_tool_request" {
			continue
		}
		var result any
		switch req.Payload.ToolName {
		case "greet":
			var p struct{ Name string }
			json.Unmarshal(req.Payload.Params, &p)
			result = "Hello, " + p.Name
		case "fail":
			result = map[string]string{"error": "boom"}
		case "echo":
			result = map[string]any{"params": req.Payload.Params, "auth_token": req.Payload.AuthToken}
		default:
			continue
		}
		ws.WriteJSON(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": result})
	}
}

// dialPyLLM opens the LLM WebSocket and authenticates as LLMClient does.
func (e *testEnv) dialPyLLM(key string) *websocket.Conn {
	e.t.Helper()
	ws := e.dialLLMRaw(key, http.Header{"Origin": {e.base}})
	ws.WriteJSON(map[string]any{"type": "auth", "api_key": key})
	var ar map[string]any
	if err := ws.ReadJSON(&ar); err != nil || ar["type"] != "auth_response" || ar["success"] != true {
		e.t.Fatalf("auth: %v, %v", ar, err)
	}
	return ws
}

func (e *testEnv) dialLLMRaw(key string, h http.Header) *websocket.Conn {
	e.t.Helper()
	ws, resp, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/llm-client/"+key+"/", h)
	if err != nil {
		e.t.Fatalf("dial llm: %v (%s)", err, respStatus(resp))
	}
	e.t.Cleanup(func() { ws.Close() })
	return ws
}

var uuidSeq atomic.Int64

func uuid4() string {
	return fmt.Sprintf("6f1c2f3e-%04x-4b5a-9c1d-0e2f3a4b5c6d", uuidSeq.Add(1))
}

func pyContextRequest(key, toolkit, provider string) map[string]any {
	return map[string]any{"type": "get_toolkit_context", "toolkit_id": toolkit, "request_id": "context_" + toolkit + "_" + uuid4(),
		"provider": provider, "user_prompt": "say hi", "api_key": key}
}

func pyTaskRequest(key, toolkit string, i int, tool string, params any) map[string]any {
	return map[string]any{"type": "task_request", "request_id": fmt.Sprintf("task_%s_%d_%s", toolkit, i, uuid4()),
		"toolkit_id": toolkit, "auth_token": nil, "user_prompt": "say hi", "api_key": key,
		"payload": map[string]any{"function": tool, "parameters": params, "auth_token": nil, "tool_call_id": "call_" + uuid4()}}
}

func readMsg(t *testing.T, ws *websocket.Conn) map[string]any {
	t.Helper()
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m map[string]any
	if err := ws.ReadJSON(&m); err != nil {
		t.Fatalf("read: %v", err)
	}
	return m
}

// roundTrip sends one message on an LLM WebSocket and reads the answer.
func roundTrip(t *testing.T, ws *websocket.Conn, msg map[string]any) map[string]any {
	t.Helper()
	if err := ws.WriteJSON(msg); err != nil {
		t.Fatal(err)
	}
	return readMsg(t, ws)
}

// checkTaskResponse checks TASK_RESPONSE's shape (docs/protocol.md §2.4) and returns
// the tool result.
func checkTaskResponse(t *testing.T, m map[string]any, req map[string]any, status string) any {
	t.Helper()
	if m["type"] != "task_response" || m["request_id"] != req["request_id"] || m["status"] != status {
		t.Fatalf("task_response = %v; want type task_response, request_id %v, status %s", m, req["request_id"], status)
	}
	if _, ok := m["message"].(string); !ok {
		t.Fatalf("task_response without a string message: %v", m)
	}
	res, _ := m["result"].(map[string]any)
	tool, _ := res["tool"].(map[string]any)
	payload, _ := m["payload"].(map[string]any)
	fn := req["payload"].(map[string]any)["function"]
	if tool == nil || tool["name"] != fn || payload == nil {
		t.Fatalf("task_response result/payload shape wrong: %v", m)
	}
	a, _ := json.Marshal(tool["result"])
	b, _ := json.Marshal(payload["result"])
	if string(a) != string(b) {
		t.Fatalf("result.tool.result %s != payload.result %s", a, b)
	}
	return tool["result"]
}

func sha256Hex(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// waiters is the number of inbox long-polls waiting on ref.
func (h *hub) waiters(ref toolkitRef) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if r := h.routes[ref]; r != nil {
		return len(r.waiters)
	}
	return 0
}
