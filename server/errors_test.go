package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

func TestRegistrationErrors(t *testing.T) {
	e := newEnv(t, Config{BodyLimit: 4096})
	llmKey := e.llmKey
	valid := func() map[string]any {
		return map[string]any{
			"function_id": "greet", "api_key": e.tkKey, "app_name": "hello", "programming_language": "Python",
			"code_hash": "c", "toolkit_hash": "h",
			"metadata": map[string]any{"params": []string{"name"}, "required_params": []string{"name"}, "description": "d",
				"auth_provider": nil, "auth_type": nil, "auth_with": nil, "sample_response": "", "source_code": "def greet(name): ..."},
		}
	}
	with := func(change func(m map[string]any)) map[string]any {
		m := valid()
		change(m)
		return m
	}
	md := func(m map[string]any) map[string]any { return m["metadata"].(map[string]any) }
	cases := []struct {
		name   string
		body   any
		status int
		want   string
	}{
		{"bad tool name", with(func(m map[string]any) { m["function_id"] = "say hello" }), 400, `invalid tool name "say hello"`},
		{"tool name too long", with(func(m map[string]any) { m["function_id"] = strings.Repeat("a", 65) }), 400, "invalid tool name"},
		{"tool name starts with a digit", with(func(m map[string]any) { m["function_id"] = "1st" }), 400, "invalid tool name"},
		{"no app_name", with(func(m map[string]any) { delete(m, "app_name") }), 400, "app_name: missing"},
		{"required not in params", with(func(m map[string]any) { md(m)["required_params"] = []string{"nme"} }), 400, `"nme" is not in metadata.params`},
		{"params not a list", with(func(m map[string]any) { md(m)["params"] = map[string]any{"name": "str"} }), 400, "metadata.params: expected array, got object"},
		{"schema root not an object", with(func(m map[string]any) { md(m)["input_schema"] = map[string]any{"type": "string"} }), 400, `root must be {"type":"object"}`},
		{"schema does not compile", with(func(m map[string]any) {
			md(m)["input_schema"] = map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"type": "string", "pattern": "("}}}
		}), 400, "metadata.input_schema"},
		{"malformed JSON", `{"function_id": "greet",`, 400, "invalid JSON"},
		{"not an object", `[1,2]`, 400, "expected a JSON object, got an array"},
		{"too large", `{"function_id":"` + strings.Repeat("x", 5000) + `"}`, 413, "larger than the limit"},
		{"missing key", with(func(m map[string]any) { delete(m, "api_key") }), 401, "missing API key"},
		{"invalid key", with(func(m map[string]any) { m["api_key"] = "atp_tk_nope_nope" }), 401, "invalid API key"},
		{"LLM key", with(func(m map[string]any) { m["api_key"] = llmKey }), 403, "this is an LLM key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, raw := e.postRaw("/api/v1/register_tool", c.body)
			var reply struct{ Error string }
			if err := json.Unmarshal(raw, &reply); err != nil {
				t.Fatalf("reply is not JSON: %s", raw)
			}
			if status != c.status || !strings.Contains(reply.Error, c.want) {
				t.Fatalf("status %d, error %q; want %d and an error containing %q", status, reply.Error, c.status, c.want)
			}
		})
	}
	if kits, _ := e.srv.store.Toolkits(context.Background()); len(kits) != 0 {
		t.Fatalf("refused registrations stored toolkits: %+v", kits)
	}

	// A good registration binds the key; another app_name is then refused.
	if status, reply := e.post("/api/v1/register_tool", valid()); status != 200 || reply["exchange_token"] == "" {
		t.Fatalf("valid registration: %d %v", status, reply)
	}
	status, reply := e.post("/api/v1/register_tool", with(func(m map[string]any) { m["app_name"] = "other" }))
	if status != 403 || !strings.Contains(reply["error"].(string), `serves toolkit "hello", not "other"`) {
		t.Fatalf("other app_name: %d %v", status, reply)
	}
	status, reply = e.post("/api/v1/toolkit/verify_hash", map[string]any{"api_key": e.tkKey, "app_name": "other", "toolkit_hash": "h"})
	if status != 403 {
		t.Fatalf("verify_hash for another toolkit: %d %v", status, reply)
	}
	// Header and body keys must agree. The header is checked first, before
	// the body is read: a key of the wrong kind there is 403 at once.
	otherTk := e.key(store.NewKey{Kind: store.KindToolkit, Name: "other"})
	status, _ = e.post("/api/v1/register_tool", valid(), "Authorization", "Bearer "+otherTk)
	if status != 401 {
		t.Fatalf("disagreeing keys: %d", status)
	}
	status, _ = e.post("/api/v1/register_tool", valid(), "Authorization", "Bearer "+llmKey)
	if status != 403 {
		t.Fatalf("an LLM key in the header: %d", status)
	}
	// Revoked.
	k, _ := e.srv.store.Authenticate(context.Background(), e.tkKey)
	e.srv.store.RevokeKey(context.Background(), k.ID)
	status, reply = e.post("/api/v1/register_tool", valid())
	if status != 401 || reply["error"] != "API key has been revoked" {
		t.Fatalf("revoked key: %d %v", status, reply)
	}
}

func TestVerifyHashes(t *testing.T) {
	e := newEnv(t, Config{})
	verify := func(path string, body map[string]any) bool {
		status, reply := e.post(path, body)
		if status != 200 {
			t.Fatalf("%s: %d %v", path, status, reply)
		}
		return reply["up_to_date"] == true
	}
	kit := map[string]any{"api_key": e.tkKey, "app_name": "hello", "toolkit_hash": sha(pyGreet.source)}
	tool := map[string]any{"api_key": e.tkKey, "tool_name": "greet", "tool_hash": sha(pyGreet.source)}
	if verify("/api/v1/toolkit/verify_hash", kit) || verify("/api/v1/toolkit/verify_tool_hash", tool) {
		t.Fatal("up to date before any registration")
	}
	e.pyRegister(e.tkKey, "hello", pyGreet)
	if !verify("/api/v1/toolkit/verify_hash", kit) || !verify("/api/v1/toolkit/verify_tool_hash", tool) {
		t.Fatal("not up to date after registration")
	}
	tool["tool_hash"] = "changed"
	kit["toolkit_hash"] = "changed"
	if verify("/api/v1/toolkit/verify_hash", kit) || verify("/api/v1/toolkit/verify_tool_hash", tool) {
		t.Fatal("a changed hash is up to date")
	}
}

// A call to a toolkit with neither a WebSocket nor a recent inbox poll fails
// at once, with a message that says so.
func TestOfflineToolkit(t *testing.T) {
	e := newEnv(t, Config{CallTimeout: time.Hour})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	m := roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if msg := m["message"].(string); !strings.Contains(msg, `toolkit "hello" is offline`) {
		t.Fatalf("message = %q", msg)
	}
	// A toolkit that connected and left is offline again.
	tk := e.dialPyToolkit(e.tkKey)
	tk.Close()
	eventually(t, "the connection to go", func() bool { ws, _ := e.srv.hub.online(toolkitRef{"default", "hello"}); return ws == 0 })
	m = roundTrip(t, llm, req)
	if m["status"] != "error" || !strings.Contains(m["message"].(string), "offline") {
		t.Fatalf("after disconnect: %v", m)
	}
}

// A call the toolkit does not answer in time gets a timeout error; the late
// reply is dropped, and the next call is answered normally.
func TestTimeoutDropsLateReply(t *testing.T) {
	e := newEnv(t, Config{CallTimeout: time.Hour})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	req["timeout_ms"] = 20 // extension: this call's own timeout
	llm.WriteJSON(req)
	slow := readToolRequest(t, tk)
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	if msg := m["message"].(string); !strings.Contains(msg, "did not answer") || !strings.Contains(msg, "20ms") {
		t.Fatalf("timeout message = %q", msg)
	}
	tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": slow.Payload.RequestID, "result": "too late"})
	eventually(t, "the late reply to be counted", func() bool { return e.srv.metrics.lateReplies.Load() == 1 })

	go servePy(tk)
	req2 := pyTaskRequest(e.llmKey, "hello", 1, "greet", map[string]any{"name": "y"})
	if got := checkTaskResponse(t, roundTrip(t, llm, req2), req2, "success"); got != "Hello, y" {
		t.Fatalf("next call = %v (the late reply leaked into it?)", got)
	}
	req3 := pyTaskRequest(e.llmKey, "hello", 2, "greet", map[string]any{"name": "y"})
	req3["timeout_ms"] = -1
	if m := roundTrip(t, llm, req3); !strings.Contains(m["message"].(string), "timeout_ms") {
		t.Fatalf("negative timeout_ms: %v", m)
	}
}

// When a toolkit connection drops mid-call, its calls fail at once, not at
// their timeout (an hour here).
func TestToolkitDropFailsFast(t *testing.T) {
	e := newEnv(t, Config{CallTimeout: time.Hour})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	llm.WriteJSON(req)
	readToolRequest(t, tk)
	tk.Close()
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	if msg := m["message"].(string); !strings.Contains(msg, "connection closed while the call was in flight") {
		t.Fatalf("message = %q", msg)
	}
}

// Params are checked against the tool's schema before routing, with the
// runtime's messages; the toolkit never sees a bad call.
func TestInvalidParams(t *testing.T) {
	e := newEnv(t, Config{})
	status, reply := e.post("/api/v1/register_tool", map[string]any{
		"function_id": "greet", "api_key": e.tkKey, "app_name": "hello", "programming_language": "Go",
		"code_hash": "c", "toolkit_hash": "h",
		"metadata": map[string]any{"params": []string{"name", "times"}, "required_params": []string{"name"}, "description": "d",
			"auth_provider": nil, "auth_type": nil, "auth_with": nil, "sample_response": "", "source_code": "",
			"input_schema": map[string]any{"type": "object", "additionalProperties": false, "required": []string{"name"},
				"properties": map[string]any{"name": map[string]any{"type": "string"}, "times": map[string]any{"type": "integer", "minimum": 1}}}},
	})
	if status != 200 {
		t.Fatalf("register: %d %v", status, reply)
	}
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"times": "two", "extra": true})
	m := roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	// The runtime's Decoder words and order: members as they come, then
	// what is missing.
	want := `invalid params for greet: extra: unknown field (allowed: name, times); times: expected integer, got "two"; name: missing required field (expected string)`
	if m["message"] != want {
		t.Fatalf("message =\n  %q\nwant\n  %q", m["message"], want)
	}
	if problems, _ := m["problems"].([]any); len(problems) != 3 {
		t.Fatalf("problems = %v", m["problems"])
	}
	// Nothing reached the toolkit: the next frame it reads is the good call.
	echoed := make(chan struct{})
	echoParams := func() {
		req := readToolRequest(t, tk)
		tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": string(req.Payload.Params), "is_error": false})
		echoed <- struct{}{}
	}
	go echoParams()
	// OpenAI hands arguments over as a JSON string: it is unwrapped.
	req = pyTaskRequest(e.llmKey, "hello", 1, "greet", `{"name":"Ada","times":2}`)
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != `{"name":"Ada","times":2}` {
		t.Fatalf("params the toolkit got = %v", got)
	}
	<-echoed
	req = pyTaskRequest(e.llmKey, "hello", 2, "greet", `not json`)
	if m := roundTrip(t, llm, req); m["status"] != "error" || !strings.Contains(m["message"].(string), "not a JSON object") {
		t.Fatalf("string params: %v", m)
	}
	// OpenAI's strict mode sends null for an optional property it leaves
	// out: the null is dropped, not rejected. A null for a required one
	// stays an error.
	go echoParams()
	req = pyTaskRequest(e.llmKey, "hello", 3, "greet", `{"name":"Ada","times":null}`)
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != `{"name":"Ada"}` {
		t.Fatalf("params the toolkit got = %v", got)
	}
	<-echoed
	req = pyTaskRequest(e.llmKey, "hello", 4, "greet", `{"name":null}`)
	if m := roundTrip(t, llm, req); m["status"] != "error" || m["message"] != "invalid params for greet: name: expected string, got null" {
		t.Fatalf("null for a required property: %v", m)
	}
}

func TestUnknownToolkitAndTool(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyFail, pyGreet)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "nope", 0, "greet", nil)
	if m := roundTrip(t, llm, req); m["status"] != "error" || m["message"] != `toolkit "nope" not found` {
		t.Fatalf("unknown toolkit: %v", m)
	}
	req = pyTaskRequest(e.llmKey, "hello", 0, "grete", nil)
	if m := roundTrip(t, llm, req); m["status"] != "error" || m["message"] != `toolkit "hello" has no tool "grete" (its tools: fail, greet)` {
		t.Fatalf("unknown tool: %v", m)
	}
	ctxReq := pyContextRequest(e.llmKey, "nope", "openai")
	m := roundTrip(t, llm, ctxReq)
	if m["type"] != "toolkit_context" || m["status"] != "error" || m["request_id"] != ctxReq["request_id"] ||
		m["payload"].(map[string]any)["error"] != `toolkit "nope" not found` {
		t.Fatalf("context of unknown toolkit: %v", m)
	}
	m = roundTrip(t, llm, pyContextRequest(e.llmKey, "hello", "cohere"))
	if msg, _ := m["error"].(string); !strings.Contains(msg, `unknown provider "cohere"`) || !strings.Contains(msg, "anthropic") {
		t.Fatalf("unknown provider: %v", m)
	}
	status, reply := e.post("/api/v1/atp/llm-client/process/", pyContextRequest(e.llmKey, "nope", "openai"), "Authorization", "ApiKey "+e.llmKey)
	if status != 404 || reply["status"] != "error" {
		t.Fatalf("HTTP context of unknown toolkit: %d %v", status, reply)
	}
}

// An LLM key sees only its owner's toolkits; a toolkit of another owner is
// "not found", whatever its name.
func TestCrossOwnerIsolation(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	go servePy(e.dialPyToolkit(e.tkKey))
	otherLLM := e.key(store.NewKey{Kind: store.KindLLM, Name: "other", Owner: "acme"})
	llm := e.dialPyLLM(otherLLM)
	if m := roundTrip(t, llm, pyContextRequest(otherLLM, "hello", "openai")); m["status"] != "error" || !strings.Contains(m["error"].(string), "not found") {
		t.Fatalf("other owner's context: %v", m)
	}
	req := pyTaskRequest(otherLLM, "hello", 0, "greet", map[string]any{"name": "x"})
	if m := roundTrip(t, llm, req); m["status"] != "error" || m["message"] != `toolkit "hello" not found` {
		t.Fatalf("other owner's call: %v", m)
	}
	// acme's own "hello" is a different toolkit, served separately.
	acmeTk := e.key(store.NewKey{Kind: store.KindToolkit, Name: "acme tk", Owner: "acme"})
	e.pyRegister(acmeTk, "hello", pyFail)
	m := roundTrip(t, llm, pyContextRequest(otherLLM, "hello", "openai"))
	if tools := m["payload"].(map[string]any)["tools"].([]any); len(tools) != 1 || tools[0].(map[string]any)["name"] != "fail" {
		t.Fatalf("acme's hello: %v", m)
	}
	// default's toolkit key cannot answer acme's calls: replies are matched
	// to the toolkit the call was routed to.
	acmeWS := e.dialPyToolkit(acmeTk)
	req = pyTaskRequest(otherLLM, "hello", 1, "fail", map[string]any{})
	llm.WriteJSON(req)
	got := readToolRequest(t, acmeWS)
	intruder := e.dialPyToolkit(e.tkKey)
	intruder.WriteJSON(map[string]any{"type": "tool_response", "request_id": got.Payload.RequestID, "result": "forged"})
	eventually(t, "the forged reply to be dropped", func() bool { return e.srv.metrics.lateReplies.Load() == 1 })
	acmeWS.WriteJSON(map[string]any{"type": "tool_response", "request_id": got.Payload.RequestID, "result": "real"})
	if m := readMsg(t, llm); checkTaskResponse(t, m, req, "success") != "real" {
		t.Fatalf("reply = %v", m)
	}
}

func TestWrongKeyKindAndRevokedKeys(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 20 * time.Millisecond})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	// A toolkit key on the LLM WebSocket: the auth handshake fails, then the
	// connection closes.
	ws := e.dialLLMRaw(e.tkKey, nil)
	ws.WriteJSON(map[string]any{"type": "auth", "api_key": e.tkKey})
	m := readMsg(t, ws)
	if m["type"] != "auth_response" || m["success"] != false || !strings.Contains(m["error"].(string), "this is a toolkit key") {
		t.Fatalf("toolkit key on the LLM socket: %v", m)
	}
	if _, _, err := ws.ReadMessage(); !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
		t.Fatalf("after a failed auth: %v, want close 1008", err)
	}
	// An LLM key on the toolkit WebSocket and inbox.
	_, resp, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+e.llmKey+"/", nil)
	if err == nil || resp.StatusCode != 403 {
		t.Fatalf("LLM key on the toolkit socket: %v %s", err, respStatus(resp))
	}
	if status, _ := e.get("/api/v1/toolkit/" + e.llmKey + "/inbox"); status != 403 {
		t.Fatalf("LLM key on the inbox: %d", status)
	}
	// An LLM key on process/ with a toolkit key.
	if status, _ := e.post("/api/v1/atp/llm-client/process/", pyContextRequest(e.tkKey, "hello", "openai"), "Authorization", "ApiKey "+e.tkKey); status != 403 {
		t.Fatalf("toolkit key on process/: %d", status)
	}
	otherLLM := e.key(store.NewKey{Kind: store.KindLLM, Name: "other"})
	if status, _ := e.post("/api/v1/atp/llm-client/process/", pyContextRequest(e.llmKey, "hello", "openai"), "Authorization", "ApiKey "+otherLLM); status != 401 {
		t.Fatalf("header and body keys differ on process/: %d", status)
	}
	if status, _ := e.post("/api/v1/atp/llm-client/process/", pyContextRequest("", "hello", "openai")); status != 401 {
		t.Fatalf("no key on process/: %d", status)
	}

	// Revoking keys in the store ends their open sessions within the
	// revocation check interval and refuses them afterwards.
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	ctx := context.Background()
	for _, key := range []string{e.tkKey, e.llmKey} {
		k, err := e.srv.store.Authenticate(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		e.srv.store.RevokeKey(ctx, k.ID)
	}
	for _, ws := range []*websocket.Conn{tk, llm} {
		ws.SetReadDeadline(time.Now().Add(10 * time.Second))
		for {
			_, _, err := ws.ReadMessage()
			if err == nil {
				continue // a greeting or ping-driven frame
			}
			if !websocket.IsCloseError(err, websocket.ClosePolicyViolation) {
				t.Fatalf("revoked key's session ended with %v, want close 1008", err)
			}
			break
		}
	}
	ws = e.dialLLMRaw(e.llmKey, nil)
	ws.WriteJSON(map[string]any{"type": "auth", "api_key": e.llmKey})
	if m := readMsg(t, ws); m["success"] != false || m["error"] != "API key has been revoked" {
		t.Fatalf("revoked LLM key: %v", m)
	}
	_, resp, err = websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/", nil)
	if err == nil || resp.StatusCode != 401 {
		t.Fatalf("revoked toolkit key: %v %s", err, respStatus(resp))
	}
}

// Oversized bodies get 413, oversized frames close the socket with 1009.
func TestLimits(t *testing.T) {
	e := newEnv(t, Config{BodyLimit: 2048, FrameLimit: 2048})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	big := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": strings.Repeat("x", 4096)})
	status, reply := e.post("/api/v1/atp/llm-client/process/", big, "Authorization", "ApiKey "+e.llmKey)
	if status != 413 || !strings.Contains(reply["error"].(string), "2048 bytes") {
		t.Fatalf("big body: %d %v", status, reply)
	}
	status, _ = e.postRaw("/api/v1/toolkit/"+e.tkKey+"/inbox/respond", `{"request_id":"x","response":"`+strings.Repeat("y", 4096)+`"}`)
	if status != 413 {
		t.Fatalf("big inbox respond: %d", status)
	}
	llm := e.dialPyLLM(e.llmKey)
	llm.WriteJSON(big)
	if _, _, err := llm.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("big LLM frame: %v, want close 1009", err)
	}
	tk := e.dialPyToolkit(e.tkKey)
	tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": "x", "result": strings.Repeat("z", 4096)})
	if _, _, err := tk.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("big toolkit frame: %v, want close 1009", err)
	}
}

func TestMalformedAndUnknownMessages(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)

	status, reply := e.post("/api/v1/atp/llm-client/process/", `{"type": "task_request", "toolkit_id": }`, "Authorization", "ApiKey "+e.llmKey)
	if status != 400 || !strings.Contains(reply["error"].(string), "toolkit_id: invalid JSON") {
		t.Fatalf("malformed process/ body: %d %v", status, reply)
	}
	status, reply = e.post("/api/v1/atp/llm-client/process/", `{"type": "task_request", "toolkit_id": 7}`, "Authorization", "ApiKey "+e.llmKey)
	if status != 400 || reply["error"] != "toolkit_id: expected string, got 7" {
		t.Fatalf("wrong field type: %d %v", status, reply)
	}
	status, reply = e.post("/api/v1/atp/llm-client/process/", map[string]any{"type": "list_tools", "request_id": "r1", "api_key": e.llmKey}, "Authorization", "ApiKey "+e.llmKey)
	if status != 400 || reply["type"] != "error" || reply["request_id"] != "r1" || !strings.Contains(reply["error"].(string), `unknown message type "list_tools"`) {
		t.Fatalf("unknown type over HTTP: %d %v", status, reply)
	}

	// Over the WebSocket: an error frame each, and the session goes on.
	llm.WriteMessage(websocket.TextMessage, []byte(`{"type": "task_request",`))
	if m := readMsg(t, llm); m["type"] != "error" || !strings.Contains(m["error"].(string), "invalid JSON") {
		t.Fatalf("malformed frame: %v", m)
	}
	if m := roundTrip(t, llm, map[string]any{"type": "subscribe", "request_id": 42}); m["type"] != "error" || m["request_id"] != float64(42) ||
		!strings.Contains(m["error"].(string), `unknown message type "subscribe"`) {
		t.Fatalf("unknown type: %v", m)
	}
	if m := roundTrip(t, llm, map[string]any{"request_id": "r"}); m["type"] != "error" || !strings.Contains(m["error"].(string), "type: missing") {
		t.Fatalf("no type: %v", m)
	}
	m := roundTrip(t, llm, map[string]any{"type": "get_toolkit_context", "toolkit_id": "hello", "api_key": e.tkKey})
	if m["type"] != "error" || !strings.Contains(m["error"].(string), "api_key") {
		t.Fatalf("another key inside a message: %v", m)
	}

	// The toolkit's unknown and malformed frames are ignored: the session
	// still serves.
	tk.WriteMessage(websocket.TextMessage, []byte(`{"type":"app_response","request_id":"x","result":{}}`))
	tk.WriteMessage(websocket.TextMessage, []byte(`not json`))
	tk.WriteJSON(map[string]any{"type": "tool_response", "result": "no id"})
	go servePy(tk)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "z"})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "Hello, z" {
		t.Fatalf("after junk frames: %v", got)
	}
	if !strings.Contains(e.logs.String(), "unknown message type") {
		t.Fatal("the toolkit's unknown message type was not logged")
	}
}

// A message before auth fails the handshake.
func TestLLMMessageBeforeAuth(t *testing.T) {
	e := newEnv(t, Config{})
	ws := e.dialLLMRaw("atp_llm_bad_key", nil)
	m := roundTrip(t, ws, pyContextRequest("atp_llm_bad_key", "hello", "openai"))
	if m["type"] != "auth_response" || m["success"] != false || !strings.Contains(m["error"].(string), "invalid API key") {
		t.Fatalf("unauthenticated context request: %v", m)
	}
	// With a valid key in the URL the connection works without the auth
	// message (clients that authenticate by URL or header only).
	ws = e.dialLLMRaw(e.llmKey, nil)
	if m := roundTrip(t, ws, pyContextRequest(e.llmKey, "nope", "openai")); m["type"] != "toolkit_context" {
		t.Fatalf("URL-authenticated request: %v", m)
	}
	// An auth message with another key than the URL's fails.
	ws = e.dialLLMRaw(e.llmKey, nil)
	other := e.key(store.NewKey{Kind: store.KindLLM, Name: "o"})
	if m := roundTrip(t, ws, map[string]any{"type": "auth", "api_key": other}); m["success"] != false {
		t.Fatalf("auth with another key: %v", m)
	}
}

func TestOriginCheck(t *testing.T) {
	e := newEnv(t, Config{AllowedOrigins: []string{"https://app.example.com"}})
	dial := func(origin string) (int, error) {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		ws, resp, err := websocket.DefaultDialer.Dial(e.wsBase+"/ws/v1/atp/llm-client/"+e.llmKey+"/", h)
		if ws != nil {
			ws.Close()
		}
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	for _, ok := range []string{"", e.base, "https://app.example.com"} {
		if status, err := dial(ok); err != nil || status != 101 {
			t.Errorf("origin %q refused: %d %v", ok, status, err)
		}
	}
	for _, bad := range []string{"https://evil.example", "null", "http://127.0.0.1:1"} {
		status, err := dial(bad)
		if !errors.Is(err, websocket.ErrBadHandshake) || status != 403 {
			t.Errorf("origin %q: %d %v, want 403", bad, status, err)
		}
	}
}

func TestNotFoundAndHealth(t *testing.T) {
	e := newEnv(t, Config{})
	status, body := e.get("/api/v1/nothing/" + e.llmKey)
	if status != 404 || !strings.Contains(string(body), "no such endpoint") {
		t.Fatalf("unknown path: %d %s", status, body)
	}
	status, body = e.get("/healthz")
	var h map[string]any
	json.Unmarshal(body, &h)
	if status != 200 || h["status"] != "ok" || h["database"] != "ok" || h["store"] != store.EngineSQLite {
		t.Fatalf("healthz: %d %s", status, body)
	}
}
