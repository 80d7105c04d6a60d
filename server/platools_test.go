package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

// ---- a Platools SDK, frame by frame ----

// sdkConn is a Platools SDK's connection, as the Python and TypeScript
// SDKs open it.
type sdkConn struct {
	t       *testing.T
	ws      *websocket.Conn
	welcome map[string]any
}

// dialSDKRaw opens the Platools WebSocket at path (with its query) with
// the secret as a Bearer token ("" sends none).
func (e *testEnv) dialSDKRaw(pathAndQuery, secret string, h http.Header) (*websocket.Conn, *http.Response, error) {
	if h == nil {
		h = http.Header{}
	}
	if secret != "" {
		h.Set("Authorization", "Bearer "+secret)
	}
	ws, resp, err := websocket.DefaultDialer.Dial(e.wsBase+pathAndQuery, h)
	if err == nil {
		e.t.Cleanup(func() { ws.Close() })
	}
	return ws, resp, err
}

// dialSDK connects for entity (with ?entity=&env= when env != "") and
// reads the welcome.
func (e *testEnv) dialSDK(secret, entity, env string) *sdkConn {
	e.t.Helper()
	q := "/ws/sdk?entity=" + entity
	if env != "" {
		q += "&env=" + env
	}
	ws, resp, err := e.dialSDKRaw(q, secret, nil)
	if err != nil {
		e.t.Fatalf("dial platools: %v (%s)", err, respStatus(resp))
	}
	c := &sdkConn{t: e.t, ws: ws}
	c.welcome = c.read()
	if c.welcome["type"] != "welcome" {
		e.t.Fatalf("first frame = %v; want welcome", c.welcome)
	}
	return c
}

func (c *sdkConn) send(v any) {
	c.t.Helper()
	var err error
	if s, ok := v.(string); ok {
		err = c.ws.WriteMessage(websocket.TextMessage, []byte(s))
	} else {
		err = c.ws.WriteJSON(v)
	}
	if err != nil {
		c.t.Fatalf("sdk: send: %v", err)
	}
}

func (c *sdkConn) read() map[string]any {
	c.t.Helper()
	return readMsg(c.t, c.ws)
}

// readType reads the next frame and checks its type.
func (c *sdkConn) readType(typ string) map[string]any {
	c.t.Helper()
	m := c.read()
	if m["type"] != typ {
		c.t.Fatalf("frame = %v; want type %s", m, typ)
	}
	return m
}

// register sends tool_register and returns the answer.
func (c *sdkConn) register(tools ...map[string]any) map[string]any {
	c.t.Helper()
	if tools == nil {
		tools = []map[string]any{}
	}
	c.send(map[string]any{"type": "tool_register", "tools": tools})
	return c.read()
}

// mustRegister is register for a declaration that must be accepted.
func (c *sdkConn) mustRegister(tools ...map[string]any) {
	c.t.Helper()
	if m := c.register(tools...); m["type"] != "tools_registered" {
		c.t.Fatalf("tool_register: %v", m)
	}
}

// sdkTool is a tool as the Python SDK declares it.
func sdkTool(name string, props ...string) map[string]any {
	properties := map[string]any{}
	if props == nil {
		props = []string{}
	}
	for _, p := range props {
		properties[p] = map[string]any{"type": "string", "title": p}
	}
	return map[string]any{
		"name": name, "description": "Tool " + name + ".",
		"input_schema":  map[string]any{"type": "object", "title": name + "Input", "properties": properties, "required": props},
		"output_schema": nil, "auth": "none", "roles": []string{}, "annotations": map[string]any{},
	}
}

// serveSDK answers tool calls until the connection closes: echo returns
// what it got, fail fails with a traceback, big returns n bytes.
func serveSDK(ws *websocket.Conn, calls chan<- map[string]any) {
	for {
		var m map[string]any
		if err := ws.ReadJSON(&m); err != nil {
			return
		}
		if m["type"] != "tool_call" {
			continue
		}
		if calls != nil {
			calls <- m
		}
		params := m["params"].(map[string]any)
		switch m["tool_name"] {
		case "echo", "whoami":
			ws.WriteJSON(map[string]any{"type": "tool_result", "call_id": m["call_id"], "result": params, "latency_ms": 3})
		case "fail":
			ws.WriteJSON(map[string]any{"type": "tool_error", "call_id": m["call_id"], "error": "the weather service is down",
				"traceback": "Traceback (most recent call last):\n  File \"secret/path.py\", line 3\nValueError: down"})
		case "big":
			n := int(params["n"].(float64))
			ws.WriteJSON(map[string]any{"type": "tool_result", "call_id": m["call_id"], "result": strings.Repeat("é", n/2), "latency_ms": 1})
		default:
			ws.WriteJSON(map[string]any{"type": "tool_error", "call_id": m["call_id"], "error": fmt.Sprintf("unknown tool: %v", m["tool_name"]), "traceback": nil})
		}
	}
}

// ---- handshake ----

func TestPlatoolsHandshakeRefusals(t *testing.T) {
	e := newEnv(t, Config{})
	refused := func(path, secret string, status int, want string) {
		t.Helper()
		_, resp, err := e.dialSDKRaw(path, secret, nil)
		if err == nil || resp == nil {
			t.Fatalf("dial %s: %v", path, err)
		}
		var body struct{ Error string }
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != status || !strings.HasPrefix(body.Error, want) {
			t.Errorf("dial %s: %d %q; want %d %q", path, resp.StatusCode, body.Error, status, want)
		}
	}
	refused("/ws/sdk?entity=crm", "", 401, "Missing Authorization: Bearer <secret>")
	refused("/ws/sdk?entity=crm", "atp_tk_nope_nope", 401, "Invalid service secret or entity not found: invalid API key")
	refused("/ws/sdk?entity=crm", e.llmKey, 403, "Invalid service secret or entity not found: this is an LLM key")

	// After the upgrade: an error frame in the reference platform's words,
	// then close 1008.
	frameThen1008 := func(path, secret string, h http.Header, want string) {
		t.Helper()
		ws, resp, err := e.dialSDKRaw(path, secret, h)
		if err != nil {
			t.Fatalf("dial %s: %v (%s)", path, err, respStatus(resp))
		}
		m := readMsg(t, ws)
		if msg, _ := m["error"].(string); m["type"] != "error" || !strings.HasPrefix(msg, want) {
			t.Errorf("dial %s: frame %v; want error %q", path, m, want)
		}
		closedWith(t, ws, websocket.ClosePolicyViolation)
	}
	frameThen1008("/ws/sdk", e.tkKey, nil, "Missing entity id. Connect with ?entity=<slug> (or the X-Platos-Entity-Id header). Your service secret was not the problem.")
	frameThen1008("/ws/sdk?entity=a/b", e.tkKey, nil, `Invalid service secret or entity not found: entity: toolkit name "a/b": control characters and '/' are not allowed`)
	frameThen1008("/ws/sdk?entity=crm&env=%20x", e.tkKey, nil, `Could not resolve environment for this entity/project: env: environment " x" has leading or trailing spaces`)
	bound := e.key(store.NewKey{Kind: store.KindToolkit, Name: "bound", Toolkit: "billing"})
	frameThen1008("/ws/sdk?entity=crm", bound, nil, `Invalid service secret or entity not found: this toolkit key serves toolkit "billing", not "crm"`)
	// The entity from a header: billing belongs to the other key.
	frameThen1008("/ws/sdk", e.tkKey, http.Header{"X-Platos-Entity-Id": {"billing"}}, `Invalid service secret or entity not found: toolkit "billing" of owner "default" belongs to another key`)
}

func TestPlatoolsPathsAndEntity(t *testing.T) {
	e := newEnv(t, Config{})
	for _, c := range []struct {
		path      string
		h         http.Header
		entity    string
		wantEnv   string
		headerEnv string
	}{
		{"/ws/sdk?entity=crm", nil, "crm", "dev", ""},
		{"/tools/sync?source=crm&env=prod", nil, "crm", "prod", ""},
		{"/tools/sync/ws/sdk", http.Header{"X-Platos-Entity-Id": {"crm"}, "X-Platos-Environment-Id": {"staging"}}, "crm", "staging", ""},
		{"/ws/sdk", http.Header{"X-Platos-Source": {"crm"}}, "crm", "dev", ""},
	} {
		ws, resp, err := e.dialSDKRaw(c.path, e.tkKey, c.h)
		if err != nil {
			t.Fatalf("dial %s: %v (%s)", c.path, err, respStatus(resp))
		}
		m := readMsg(t, ws)
		sdkID, _ := m["sdk_connection_id"].(string)
		if m["type"] != "welcome" || m["organization_id"] != store.DefaultOwner || m["org_id"] != store.DefaultOwner ||
			m["entity_id"] != c.entity || m["environment_id"] != c.wantEnv || !strings.HasPrefix(sdkID, "sdk_") {
			t.Errorf("%s: welcome = %v", c.path, m)
		}
		ws.Close()
	}
}

func TestPlatoolsConnsPerKey(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerKey: 1})
	e.dialSDK(e.tkKey, "crm", "prod")
	_, resp, err := e.dialSDKRaw("/ws/sdk?entity=crm&env=dev", e.tkKey, nil)
	if err == nil || resp.StatusCode != 429 || !strings.Contains(respStatus(resp), "--max-conns-per-key") {
		t.Fatalf("second connection: %v %s", err, respStatus(resp))
	}
}

// ---- tool_register ----

func TestPlatoolsRegister(t *testing.T) {
	e := newEnv(t, Config{MaxToolsPerToolkit: 3, MaxSchemaProperties: 4, PlatoolsRegistersPerMinute: 100})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	lookup := sdkTool("lookup_order", "order_id")
	lookup["auth"] = "user"
	lookup["roles"] = []string{"support"}
	lookup["annotations"] = map[string]any{"category": "orders", "readOnlyHint": true}
	lookup["output_schema"] = map[string]any{"type": "object"}
	got := c.register(lookup, sdkTool("refund", "order_id", "reason"))
	want := map[string]any{"type": "tools_registered", "entity_id": "crm", "environment_id": "prod", "count": 2.0,
		"new_tools": []any{"lookup_order", "refund"}, "updated": 0.0, "pruned": 0.0}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("tools_registered = %v\nwant %v", got, want)
	}
	kit := e.srv.registry.get(toolkitRef{store.DefaultOwner, "crm"})
	if kit == nil || kit.size() != 2 || kit.language != "Platools" {
		t.Fatalf("registry = %+v", kit)
	}
	lo := kit.tool("lookup_order")
	if !lo.NeedsAuthToken || string(lo.Hints) != `{"readOnlyHint":true}` || string(lo.OutputSchema) != `{"type":"object"}` ||
		!reflect.DeepEqual(lo.Params, []string{"order_id"}) || !reflect.DeepEqual(lo.RequiredParams, []string{"order_id"}) || lo.Inferred {
		t.Errorf("lookup_order = %+v", lo.Tool)
	}
	// The key is bound by the declaration, as by register_tool.
	if k, _ := e.srv.store.KeyByID(context.Background(), keyID(t, e.tkKey)); k.Toolkit != "crm" {
		t.Errorf("key bound to %q", k.Toolkit)
	}

	// The same declaration changes nothing; another updates and prunes.
	if got := c.register(lookup, sdkTool("refund", "order_id", "reason")); got["updated"] != 0.0 || got["pruned"] != 0.0 ||
		!reflect.DeepEqual(got["new_tools"], []any{}) || got["count"] != 2.0 {
		t.Errorf("same declaration = %v", got)
	}
	if got := c.register(sdkTool("lookup_order", "order_id", "verbose"), sdkTool("cancel", "order_id")); got["updated"] != 1.0 ||
		got["pruned"] != 1.0 || !reflect.DeepEqual(got["new_tools"], []any{"cancel"}) {
		t.Errorf("second declaration = %v", got)
	}
	kit = e.srv.registry.get(toolkitRef{store.DefaultOwner, "crm"})
	if !reflect.DeepEqual(kit.toolNames(), []string{"cancel", "lookup_order"}) || kit.tool("lookup_order").NeedsAuthToken {
		t.Errorf("tools after the second declaration = %v", kit.toolNames())
	}
	stored, err := e.srv.store.Toolkit(context.Background(), store.DefaultOwner, "crm")
	if err != nil || len(stored.Tools) != 2 {
		t.Fatalf("stored = %+v, %v", stored, err)
	}

	// Bad declarations change nothing and keep the connection.
	bad := sdkTool("ok", "a")
	deep := sdkTool("wide", "a", "b", "c", "d", "e")
	for _, b := range []struct {
		tools []map[string]any
		want  string
	}{
		{[]map[string]any{sdkTool("a"), sdkTool("b"), sdkTool("c"), sdkTool("d")}, "tool_register failed: 4 tools, over this server's limit of 3 per toolkit (atp serve --max-tools-per-toolkit); nothing was changed"},
		{[]map[string]any{bad, {"name": "bad name", "description": "x", "input_schema": map[string]any{"type": "object"}}},
			`tool_register failed: tools[1] (bad name): name: invalid tool name "bad name"`},
		{[]map[string]any{{"name": "s", "description": "x", "input_schema": map[string]any{"type": "string"}}}, `tools[0] (s): input_schema: the root must be {"type":"object"}`},
		{[]map[string]any{{"name": "n", "description": "x"}}, "tools[0] (n): input_schema: missing"},
		{[]map[string]any{{"name": "a", "description": "x", "input_schema": map[string]any{"type": "object"}, "auth": "root"}}, `tools[0] (a): auth: expected "none", "user" or "admin", got "root"`},
		{[]map[string]any{{"name": "h", "description": "x", "input_schema": map[string]any{"type": "object"}, "annotations": map[string]any{"readOnlyHint": "yes"}}}, "tools[0] (h): annotations.readOnlyHint: expected boolean, got string"},
		{[]map[string]any{deep}, "tools[0] (wide): input_schema.properties: 5 parameters, over the limit of 4 properties per object"},
		{[]map[string]any{bad, bad}, "tools[1] (ok): declared twice"},
	} {
		m := c.register(b.tools...)
		if m["type"] != "error" || !strings.Contains(m["error"].(string), b.want) {
			t.Errorf("declaration %v: %v; want an error with %q", b.tools, m, b.want)
		}
	}
	c.send(`{"type":"tool_register","tools":{"a":1}}`)
	if m := c.read(); m["error"] != "tool_register failed: tools: expected an array of tools, got object" {
		t.Errorf("tools not an array: %v", m)
	}
	if kit := e.srv.registry.get(toolkitRef{store.DefaultOwner, "crm"}); !reflect.DeepEqual(kit.toolNames(), []string{"cancel", "lookup_order"}) {
		t.Errorf("a refused declaration changed the tools: %v", kit.toolNames())
	}
	// An empty declaration prunes every tool.
	if got := c.register(); got["count"] != 0.0 || got["pruned"] != 2.0 {
		t.Errorf("empty declaration = %v", got)
	}
}

func TestPlatoolsRegisterThrottled(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, Config{clock: clk, PlatoolsRegistersPerMinute: 3})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	for i := range 3 {
		clk.Advance(10 * time.Second)
		if m := c.register(sdkTool("a")); m["type"] != "tools_registered" {
			t.Fatalf("declaration %d: %v", i, m)
		}
	}
	// 10s, 20s, 30s: the fourth at 30s waits until the first is a minute old.
	m := c.register(sdkTool("a"), sdkTool("b"))
	if m["type"] != "register_throttled" || m["error"] != "tool_register exceeded 3/min; retry after 40s" || m["retry_after_ms"] != 40000.0 {
		t.Fatalf("fourth declaration = %v", m)
	}
	if kit := e.srv.registry.get(toolkitRef{store.DefaultOwner, "crm"}); kit.size() != 1 {
		t.Fatalf("a throttled declaration changed the tools: %v", kit.toolNames())
	}
	// Another environment has its own budget; a reconnect does not reset it.
	other := e.dialSDK(e.tkKey, "crm", "dev")
	if m := other.register(sdkTool("a")); m["type"] != "tools_registered" {
		t.Fatalf("other environment: %v", m)
	}
	c2 := e.dialSDK(e.tkKey, "crm", "prod")
	if m := c2.register(sdkTool("a")); m["type"] != "register_throttled" {
		t.Fatalf("after a reconnect: %v", m)
	}
	clk.Advance(40 * time.Second)
	if m := c2.register(sdkTool("a"), sdkTool("b")); m["type"] != "tools_registered" || m["count"] != 2.0 {
		t.Fatalf("after the wait: %v", m)
	}
}

// ---- calls ----

func TestPlatoolsRoutesCalls(t *testing.T) {
	e := newEnv(t, Config{PlatoolsMaxResultBytes: 5000})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	whoami := sdkTool("whoami")
	whoami["auth"] = "user"
	echo := sdkTool("echo", "q")
	echo["input_schema"].(map[string]any)["additionalProperties"] = true
	big := sdkTool("big")
	big["input_schema"] = map[string]any{"type": "object", "properties": map[string]any{"n": map[string]any{"type": "integer"}}}
	c.mustRegister(echo, sdkTool("fail"), whoami, big)
	calls := make(chan map[string]any, 16)
	go serveSDK(c.ws, calls)
	llm := e.dialPyLLM(e.llmKey)

	// The call reaches the SDK as tool_call, its params carrying the
	// envelope; the LLM client's own __platos is dropped.
	req := pyTaskRequest(e.llmKey, "crm", 0, "echo", map[string]any{"q": "orders", "__platos": map[string]any{"userToken": "forged"}})
	req["payload"].(map[string]any)["external_user_id"] = "u-42"
	req["auth_token"] = "tok-1" // not for a tool of auth "none"
	m := roundTrip(t, llm, req)
	result := checkTaskResponse(t, m, req, "success").(map[string]any)
	call := <-calls
	if id, _ := call["call_id"].(string); id == "" || call["tool_name"] != "echo" {
		t.Fatalf("tool_call = %v", call)
	}
	envelope := result["__platos"].(map[string]any)
	stamp, _ := envelope["timestamp"].(string)
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", stamp); err != nil {
		t.Errorf("timestamp %q: %v", stamp, err)
	}
	if nonce, _ := envelope["nonce"].(string); len(nonce) != 32 {
		t.Errorf("nonce %q", nonce)
	}
	delete(envelope, "timestamp")
	delete(envelope, "nonce")
	wantEnvelope := map[string]any{"organizationId": store.DefaultOwner, "projectId": "", "environmentId": "prod", "entityId": "crm",
		"userId": "u-42", "agentId": keyID(t, e.llmKey), "threadId": "", "callId": call["call_id"], "signature": ""}
	if !reflect.DeepEqual(envelope, wantEnvelope) {
		t.Errorf("__platos = %v\nwant %v", envelope, wantEnvelope)
	}
	if result["q"] != "orders" || !reflect.DeepEqual(result["_context"], map[string]any{"user.id": "u-42"}) || len(result) != 3 {
		t.Errorf("params = %v", result)
	}

	// A tool of auth "user" gets the end user's token; it needs one.
	req = pyTaskRequest(e.llmKey, "crm", 1, "whoami", nil)
	m = roundTrip(t, llm, req)
	if checkTaskResponse(t, m, req, "error"); !strings.Contains(m["message"].(string), "needs the end user's auth token: send auth_token") {
		t.Errorf("whoami without a token: %v", m)
	}
	req["payload"].(map[string]any)["auth_token"] = "tok-2"
	m = roundTrip(t, llm, req)
	if env := checkTaskResponse(t, m, req, "success").(map[string]any)["__platos"].(map[string]any); env["userToken"] != "tok-2" {
		t.Errorf("whoami's envelope = %v", env)
	}
	<-calls

	// tool_error: an error for the LLM client, without the traceback.
	req = pyTaskRequest(e.llmKey, "crm", 2, "fail", nil)
	m = roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	raw, _ := json.Marshal(m)
	if m["message"] != "the weather service is down" || strings.Contains(string(raw), "Traceback") || strings.Contains(string(raw), "secret/path.py") {
		t.Errorf("tool_error reached the LLM client as %s", raw)
	}
	<-calls

	// A result over PlatoolsMaxResultBytes is replaced by its preview.
	req = pyTaskRequest(e.llmKey, "crm", 3, "big", map[string]any{"n": 12000})
	m = roundTrip(t, llm, req)
	tr := checkTaskResponse(t, m, req, "success").(map[string]any)
	preview, _ := tr["preview"].(string)
	if tr["truncated"] != true || tr["original_bytes"] != 12002.0 || utf8.RuneCountInString(preview) != 4096 || !strings.HasPrefix(preview, `"éé`) {
		t.Errorf("truncated result = truncated %v, original_bytes %v, preview of %d characters", tr["truncated"], tr["original_bytes"], utf8.RuneCountInString(preview))
	}
	req = pyTaskRequest(e.llmKey, "crm", 4, "big", map[string]any{"n": 4000})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != strings.Repeat("é", 2000) {
		t.Errorf("a result under the limit was changed")
	}
	if strings.Contains(e.logs.String(), "tok-2") || strings.Contains(e.logs.String(), "tok-1") {
		t.Errorf("a token is in the log")
	}
}

// Answers are taken only from the connection the call went to, and the
// SDK's problems list (our runtime's extension) reaches the LLM client.
func TestPlatoolsAnswers(t *testing.T) {
	e := newEnv(t, Config{CallTimeout: time.Hour})
	prod := e.dialSDK(e.tkKey, "crm", "prod")
	prod.mustRegister(sdkTool("echo", "q"))
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "crm", 0, "echo", map[string]any{"q": "x"})
	llm.WriteJSON(req)
	call := prod.readType("tool_call")
	dev := e.dialSDK(e.tkKey, "crm", "dev")
	dev.send(map[string]any{"type": "tool_result", "call_id": call["call_id"], "result": "from dev", "latency_ms": 1})
	dev.send(map[string]any{"type": "heartbeat", "tools_health": map[string]any{}})
	dev.readType("heartbeat_ack") // the answer above has been handled
	eventually(t, "the dropped answer to be counted", func() bool { return e.srv.metrics.lateReplies.Load() == 1 })
	prod.send(map[string]any{"type": "tool_error", "call_id": call["call_id"], "error": "invalid params for echo: q: too short",
		"traceback": nil, "problems": []map[string]string{{"path": "q", "message": "too short"}}})
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	res, _ := json.Marshal(m["result"].(map[string]any)["tool"].(map[string]any)["result"])
	if m["message"] != "invalid params for echo: q: too short" || string(res) != `{"error":"invalid params for echo: q: too short","problems":[{"message":"too short","path":"q"}]}` {
		t.Errorf("answer = %v", m)
	}

	// A malformed answer that names its call fails the call at once.
	dev.ws.Close()
	eventually(t, "the dev connection to go", func() bool { ws, _ := e.srv.hub.online(toolkitRef{store.DefaultOwner, "crm"}); return ws == 1 })
	req = pyTaskRequest(e.llmKey, "crm", 1, "echo", map[string]any{"q": "y"})
	llm.WriteJSON(req)
	call = prod.readType("tool_call")
	prod.send(fmt.Sprintf(`{"type":"tool_result","call_id":%q,"result":}`, call["call_id"]))
	m = readMsg(t, llm)
	if checkTaskResponse(t, m, req, "error"); !strings.Contains(m["message"].(string), "the toolkit's answer could not be read: result: invalid JSON") {
		t.Errorf("malformed answer: %v", m)
	}
	// Unknown and typeless frames are logged (cut) and ignored.
	prod.send(`{"type":"` + strings.Repeat("z", 300) + `"}`)
	prod.send(`{"call_id":"x"}`)
	prod.send(map[string]any{"type": "heartbeat"})
	prod.readType("heartbeat_ack")
	logs := e.logs.String()
	if !strings.Contains(logs, "unknown frame type") || !strings.Contains(logs, "…(300 bytes)") || !strings.Contains(logs, "frame without type") {
		t.Errorf("log:\n%s", logs)
	}
}

func TestPlatoolsHeartbeatAndMetrics(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	c.mustRegister(sdkTool("a"), sdkTool("b"))
	health := map[string]any{
		"a":     map[string]any{"status": "healthy", "avg_latency_ms": 12, "error_count_1h": 0},
		"b":     map[string]any{"status": "degraded", "avg_latency_ms": 15000, "error_count_1h": 3, "last_error": "timeout"},
		"ghost": map[string]any{"status": "down", "avg_latency_ms": 0, "error_count_1h": 9},
	}
	c.send(map[string]any{"type": "heartbeat", "tools_health": health})
	c.readType("heartbeat_ack")
	alert := c.readType("tool_health_alert")
	want := map[string]any{"type": "tool_health_alert", "tool": "b", "status": "degraded",
		"details": map[string]any{"avg_latency_ms": 15000.0, "error_count_1h": 3.0, "last_error": "timeout"}}
	if !reflect.DeepEqual(alert, want) {
		t.Errorf("alert = %v", alert)
	}
	// The same status again: no new alert.
	c.send(map[string]any{"type": "heartbeat", "tools_health": health})
	c.readType("heartbeat_ack")
	c.send(map[string]any{"type": "heartbeat", "tools_health": map[string]any{}})
	c.readType("heartbeat_ack")
	c.send(map[string]any{"type": "heartbeat", "tools_health": health})
	c.readType("heartbeat_ack")
	c.readType("tool_health_alert") // healthy (unreported) to degraded: a change

	_, body := e.get("/metrics")
	metrics := string(body)
	for _, line := range []string{
		"atp_platools_connections 1",
		`atp_platools_tool_up{owner="default",toolkit="crm",environment="prod",tool="a",status="healthy"} 1`,
		`atp_platools_tool_up{owner="default",toolkit="crm",environment="prod",tool="b",status="degraded"} 1`,
		`atp_platools_tool_latency_ms{owner="default",toolkit="crm",environment="prod",tool="b"} 15000`,
		`atp_platools_tool_errors_1h{owner="default",toolkit="crm",environment="prod",tool="b"} 3`,
	} {
		if !strings.Contains(metrics, line+"\n") {
			t.Errorf("/metrics lacks %q:\n%s", line, metrics)
		}
	}
	if strings.Contains(metrics, "ghost") {
		t.Errorf("an undeclared tool's health is kept")
	}
	c.ws.Close()
	eventually(t, "the connection's health to go", func() bool {
		_, body := e.get("/metrics")
		return strings.Contains(string(body), "atp_platools_connections 0\n") && !strings.Contains(string(body), `tool="a"`)
	})
}

// ---- the connection's end ----

func TestPlatoolsSupersede(t *testing.T) {
	e := newEnv(t, Config{CallTimeout: time.Hour})
	old := e.dialSDK(e.tkKey, "crm", "prod")
	old.mustRegister(sdkTool("echo", "q"))
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "crm", 0, "echo", map[string]any{"q": "x"})
	llm.WriteJSON(req)
	old.readType("tool_call") // in flight on the old connection

	otherEnv := e.dialSDK(e.tkKey, "crm", "dev")
	newer := e.dialSDK(e.tkKey, "crm", "prod")
	old.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := old.ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != websocket.CloseNormalClosure || ce.Text != "superseded by new connection" {
		t.Fatalf("old connection ended with %v; want 1000 superseded by new connection", err)
	}
	m := readMsg(t, llm)
	if checkTaskResponse(t, m, req, "error"); !strings.Contains(m["message"].(string), "superseded by new connection") {
		t.Errorf("call in flight on the superseded connection: %v", m)
	}
	// The other environment and the new connection stay.
	for _, c := range []*sdkConn{otherEnv, newer} {
		c.send(map[string]any{"type": "heartbeat", "tools_health": map[string]any{}})
		c.readType("heartbeat_ack")
	}
	if ws, _ := e.srv.hub.online(toolkitRef{store.DefaultOwner, "crm"}); ws != 2 {
		t.Errorf("%d connections online, want 2", ws)
	}
}

func TestPlatoolsRevokedKeyCloses4001(t *testing.T) {
	e := newEnv(t, Config{RevocationCheckInterval: time.Hour})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	c.mustRegister(sdkTool("echo"))
	if err := e.srv.RevokeKey(context.Background(), keyID(t, e.tkKey)); err != nil {
		t.Fatal(err)
	}
	c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ws.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 4001 || ce.Text != "secret rotated; reconnect with new secret" {
		t.Fatalf("revoked: %v; want close 4001", err)
	}
	if _, resp, err := e.dialSDKRaw("/ws/sdk?entity=crm", e.tkKey, nil); err == nil || resp.StatusCode != 401 {
		t.Fatalf("dial with the revoked key: %v %s", err, respStatus(resp))
	}
}

func TestPlatoolsFrameLimitAndShutdown(t *testing.T) {
	e := newEnv(t, Config{FrameLimit: 4096})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	c.send(`{"type":"heartbeat","tools_health":{"x":"` + strings.Repeat("y", 5000) + `"}}`)
	closedWith(t, c.ws, websocket.CloseMessageTooBig)

	c = e.dialSDK(e.tkKey, "crm", "prod")
	e.srv.shutdownSessions()
	closedWith(t, c.ws, websocket.CloseGoingAway)
}

// A toolkit that stops answering (no frame, no pong) is dropped, and the
// call in flight on it fails saying why.
func TestPlatoolsLiveness(t *testing.T) {
	e := newEnv(t, Config{PingInterval: 50 * time.Millisecond, PongTimeout: 100 * time.Millisecond, CallTimeout: time.Hour})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	c.mustRegister(sdkTool("echo"))
	// The SDK reads on, and answers pings until told to stop.
	var answering atomic.Bool
	answering.Store(true)
	c.ws.SetPingHandler(func(data string) error {
		if !answering.Load() {
			return nil
		}
		return c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	calls := make(chan map[string]any, 1)
	go func() {
		for {
			var m map[string]any
			if c.ws.ReadJSON(&m) != nil {
				return
			}
			if m["type"] == "tool_call" {
				answering.Store(false) // stuck from now on
				calls <- m
			}
		}
	}()
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "crm", 0, "echo", nil)
	m := roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	select {
	case <-calls:
	default:
		t.Fatalf("the call never reached the toolkit: %v", m)
	}
	if msg := m["message"].(string); !strings.Contains(msg, "in flight (nothing received for 150ms") {
		t.Fatalf("call to a stopped toolkit: %s", msg)
	}
}

func TestPlatoolsParams(t *testing.T) {
	for _, c := range []struct {
		params, ctx, want string
	}{
		{`{"a":1}`, "", `{"a":1,"__platos":{}}`},
		{` { } `, `{"user.id":"u"}`, `{"__platos":{},"_context":{"user.id":"u"}}`},
		{`{"__platos":{"userToken":"forged"},"a":1,"_context":{}}`, "", `{"a":1,"__platos":{}}`},
		{`{"q":"__platos"}`, "", `{"q":"__platos","__platos":{}}`},
	} {
		var ctx []byte
		if c.ctx != "" {
			ctx = []byte(c.ctx)
		}
		if got := appendPlatosParams(nil, []byte(c.params), []byte("{}"), ctx); string(got) != c.want {
			t.Errorf("appendPlatosParams(%s) = %s; want %s", c.params, got, c.want)
		}
	}
	params, required := schemaParams([]byte(`{"type":"object","properties":{"z":{},"a":{"type":"string"},"m":{}},"required":["a","nope","a"]}`))
	if !reflect.DeepEqual(params, []string{"z", "a", "m"}) || !reflect.DeepEqual(required, []string{"a"}) {
		t.Errorf("schemaParams = %v, %v", params, required)
	}
	if got := closeReason(strings.Repeat("é", 100)); len(got) > 123 || !utf8.ValidString(got) {
		t.Errorf("closeReason = %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}

// The per-toolkit cap on pending calls holds for Platools connections.
func TestPlatoolsPendingCap(t *testing.T) {
	e := newEnv(t, Config{MaxPendingPerToolkit: 1, CallTimeout: time.Hour})
	c := e.dialSDK(e.tkKey, "crm", "prod")
	c.mustRegister(sdkTool("echo"))
	llm := e.dialPyLLM(e.llmKey)
	first := pyTaskRequest(e.llmKey, "crm", 0, "echo", nil)
	llm.WriteJSON(first)
	call := c.readType("tool_call")
	second := pyTaskRequest(e.llmKey, "crm", 1, "echo", nil)
	m := roundTrip(t, llm, second)
	if checkTaskResponse(t, m, second, "error"); !strings.Contains(m["message"].(string), "--max-pending-per-toolkit") {
		t.Fatalf("second call: %v", m)
	}
	c.send(map[string]any{"type": "tool_result", "call_id": call["call_id"], "result": "ok", "latency_ms": 1})
	if got := checkTaskResponse(t, readMsg(t, llm), first, "success"); got != "ok" {
		t.Fatalf("first call = %v", got)
	}
}

// A name taken by another key after the handshake ends the connection at
// its declaration: it could never serve it.
func TestPlatoolsNameTakenAfterHandshake(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dialSDK(e.tkKey, "crm", "prod") // e.tkKey is bound to nothing: crm is free
	other := e.key(store.NewKey{Kind: store.KindToolkit, Name: "other"})
	if st := e.pyRegister(other, "crm", pyGreet); len(st) != 1 || st[0] != 200 {
		t.Fatalf("the other key's registration: %v", st)
	}
	m := c.register(sdkTool("echo"))
	if msg, _ := m["error"].(string); m["type"] != "error" || !strings.HasPrefix(msg, `Invalid service secret or entity not found: toolkit "crm" of owner "default" belongs to another key`) {
		t.Fatalf("declaration = %v", m)
	}
	closedWith(t, c.ws, websocket.ClosePolicyViolation)
	if kit := e.srv.registry.get(toolkitRef{store.DefaultOwner, "crm"}); kit == nil || kit.toolNames()[0] != "greet" || kit.size() != 1 {
		t.Fatalf("crm = %+v", kit)
	}
}
