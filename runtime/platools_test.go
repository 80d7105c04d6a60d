package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/atpgo/atp/runtime/atpimpl"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const platosSecret = "platos_agent_s3cr3t-0123456789"

// fakePlatos is an in-test Platos platform: the Platools endpoint of
// docs/protocol.md §4. It greets each connection with welcome (unless
// noWelcome) and lets a test drive it frame by frame.
type fakePlatos struct {
	t   testing.TB
	srv *httptest.Server

	mu         sync.Mutex
	handshakes []http.Request // method, URL and header of each handshake
	reject     int            // status refusing upgrades; 0 accepts
	noWelcome  bool
	deaf       bool // connections are not read by the fake: the test reads them

	conns chan *fakeConn
}

func newFakePlatos(t testing.TB) *fakePlatos {
	f := &fakePlatos{t: t, conns: make(chan *fakeConn, 16)}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakePlatos) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.handshakes = append(f.handshakes, http.Request{Method: r.Method, URL: r.URL, Header: r.Header.Clone()})
	reject, noWelcome, deaf := f.reject, f.noWelcome, f.deaf
	f.mu.Unlock()
	if r.URL.Path != "/ws/sdk" && !strings.HasSuffix(r.URL.Path, "/ws/sdk") {
		http.NotFound(w, r)
		return
	}
	if reject != 0 {
		http.Error(w, `{"error":"Invalid service secret or entity not found"}`, reject)
		return
	}
	ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &fakeConn{t: f.t, ws: ws, in: make(chan []byte, 1024), closed: make(chan struct{}),
		pings: make(chan struct{}, 1024), pongs: make(chan string, 1024)}
	ws.SetPongHandler(func(data string) error { c.pongs <- data; return nil })
	if !noWelcome {
		welcome := `{"type":"welcome","sdk_connection_id":"sdk-1","organization_id":"org-1","entity_id":"crm","environment_id":"prod"}`
		if ws.WriteMessage(websocket.TextMessage, []byte(welcome)) != nil {
			return
		}
	}
	if !deaf {
		go c.readLoop()
	}
	f.conns <- c
}

func (f *fakePlatos) conn() *fakeConn {
	f.t.Helper()
	select {
	case c := <-f.conns:
		f.t.Cleanup(func() { c.ws.Close() })
		return c
	case <-time.After(waitBound):
		f.t.Fatalf("no connection from the toolkit within %s", waitBound)
		return nil
	}
}

func (f *fakePlatos) handshakeCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.handshakes)
}

// frame waits for the toolkit's next frame.
func (c *fakeConn) frame() map[string]any {
	c.t.Helper()
	select {
	case b := <-c.in:
		return decodeFrame(c.t, b)
	case <-c.closed:
		select {
		case b := <-c.in:
			return decodeFrame(c.t, b)
		default:
		}
		c.t.Fatalf("connection closed (code %d) while waiting for a frame", c.closeCode)
	case <-time.After(waitBound):
		c.t.Fatalf("no frame from the toolkit within %s", waitBound)
	}
	return nil
}

// frameOf waits for the next frame of type typ, skipping heartbeats.
func (c *fakeConn) frameOf(typ string) map[string]any {
	c.t.Helper()
	for {
		m := c.frame()
		if m["type"] == typ {
			return m
		}
		if m["type"] != "heartbeat" {
			c.t.Fatalf("got a %v frame, want %s: %v", m["type"], typ, m)
		}
	}
}

func decodeFrame(t testing.TB, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatalf("toolkit frame is not JSON: %v: %s", err, b)
	}
	return m
}

// call sends a tool_call with params (encoded as JSON).
func (c *fakeConn) call(id, tool string, params any) {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"type": "tool_call", "call_id": id, "tool_name": tool, "params": params})
	if err != nil {
		c.t.Fatal(err)
	}
	c.send(string(b))
}

// closeWith sends a close frame.
func (c *fakeConn) closeWith(code int, reason string) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second)); err != nil {
		c.t.Fatalf("fake platform: close: %v", err)
	}
}

// platoolsToolkit is newServeToolkit plus tools that fail, that read the
// Platos envelope, and that block.
func platoolsToolkit(t testing.TB, block, started chan struct{}) *Toolkit {
	tk := newServeToolkit(t, nil)
	err := tk.Add(
		&Tool{
			Name: "fail", Description: "Always fails.",
			Run: func(context.Context, *Call, *atpimpl.Decoder) (any, error) {
				return nil, errors.New("the weather service is down")
			},
		},
		&Tool{
			Name: "scope", Description: "Says what the platform sent with the call.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"q":{"type":"string"}}}`),
			Hints:       Hints{ReadOnly: true, Idempotent: true},
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				var q string
				if d.Object() {
					for d.Next() {
						switch string(d.Key()) {
						case "q":
							q = d.String()
						default:
							d.Unknown("q")
						}
					}
				}
				if d.Failed() {
					return nil, nil
				}
				return map[string]any{"q": q, "platos": call.Platos, "transport": call.Transport, "request_id": call.RequestID}, nil
			},
		},
		&Tool{
			Name: "block", Description: "Waits for the test.", Hints: Hints{Destructive: true},
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				started <- struct{}{}
				select {
				case <-block:
					return "unblocked", nil
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			},
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

type platoolsRun struct {
	run   *serveRun
	conn  *fakeConn
	logs  *logBuffer
	clock *fakeClock
	f     *fakePlatos
	block chan struct{} // closing it lets the block tool return
	// started receives a value as each call of the block tool starts.
	started chan struct{}
}

func (r *platoolsRun) waitStarted(t testing.TB) {
	t.Helper()
	select {
	case <-r.started:
	case <-time.After(waitBound):
		t.Fatalf("the block tool did not start within %s", waitBound)
	}
}

// servePlatools starts Serve over the Platools wire against a fake
// platform, on a fake clock, and returns the first connection once the
// toolkit has declared its tools.
func servePlatools(t *testing.T, edit func(*ServeConfig)) *platoolsRun {
	t.Helper()
	f := newFakePlatos(t)
	logger, logs := newTestLogger()
	clk := newFakeClock()
	block, started := make(chan struct{}), make(chan struct{}, 16)
	cfg := ServeConfig{
		URL: f.srv.URL + "/?entity=crm&env=prod", APIKey: platosSecret, Transport: TransportPlatools, Logger: logger,
		Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond}, clock: clk,
	}
	if edit != nil {
		edit(&cfg)
	}
	r := &platoolsRun{run: startServe(t, platoolsToolkit(t, block, started), cfg), logs: logs, clock: clk, f: f, block: block, started: started}
	r.conn = f.conn()
	r.conn.frameOf("tool_register")
	return r
}

func TestPlatoolsURL(t *testing.T) {
	for in, want := range map[string]string{
		"wss://x.example/y?z=1":                    "wss://x.example/y/ws/sdk?z=1",
		"http://host:9000":                         "ws://host:9000/ws/sdk",
		"https://p.example/base//?entity=crm&env=": "wss://p.example/base/ws/sdk?entity=crm&env=",
		"https://p.example/?env=prod/x":            "wss://p.example/ws/sdk?env=prod/x",
		"HTTP://h.example/tools/sync/":             "ws://h.example/tools/sync/ws/sdk",
		"ws://127.0.0.1:1/":                        "ws://127.0.0.1:1/ws/sdk",
	} {
		got, err := platoolsURL(in)
		if err != nil || got != want {
			t.Errorf("platoolsURL(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for in, want := range map[string]string{
		"platform.example":          "has no scheme",
		"ftp://h":                   `scheme "ftp" not supported`,
		"https://":                  "has no host",
		"https://u:p@h.example":     "user name or password",
		"https://h.example/#frag":   "fragment",
		"https://h.example/%zz?x=1": "PLATOS_URL",
	} {
		if _, err := platoolsURL(in); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("platoolsURL(%q): %v; want an error containing %q", in, err, want)
		}
	}
}

func TestPlatoolsConfigErrors(t *testing.T) {
	tk := newServeToolkit(t, nil)
	for _, c := range []struct {
		cfg  ServeConfig
		want string
	}{
		{ServeConfig{Transport: TransportPlatools, APIKey: platosSecret}, "ServeConfig.URL is empty: set it to the Platos platform's URL (PLATOS_URL)"},
		{ServeConfig{Transport: TransportPlatools, URL: "https://p.example"}, "ServeConfig.APIKey is empty: set it to the Platos service secret (PLATOS_SECRET)"},
		{ServeConfig{Transport: TransportPlatools, URL: "p.example/" + platosSecret, APIKey: platosSecret}, "has no scheme"},
	} {
		err := tk.Serve(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Serve(%+v) = %v; want %q", c.cfg, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), platosSecret) {
			t.Errorf("the secret is in the error: %v", err)
		}
	}
}

func TestPlatoolsHandshakeAndRegister(t *testing.T) {
	f := newFakePlatos(t)
	f.noWelcome = true
	clk := newFakeClock()
	states := make(chan State, 16)
	cfg := ServeConfig{URL: f.srv.URL + "/base/?entity=crm&env=prod", APIKey: platosSecret, Transport: TransportPlatools,
		clock: clk, OnState: func(s State) { states <- s }}
	startServe(t, platoolsToolkit(t, make(chan struct{}), make(chan struct{}, 1)), cfg)
	c := f.conn()

	f.mu.Lock()
	hs := f.handshakes[0]
	f.mu.Unlock()
	if hs.URL.Path != "/base/ws/sdk" || hs.URL.Query().Get("entity") != "crm" || hs.URL.Query().Get("env") != "prod" {
		t.Errorf("handshake URL = %s; want /base/ws/sdk?entity=crm&env=prod", hs.URL)
	}
	if got := hs.Header.Get("Authorization"); got != "Bearer "+platosSecret {
		t.Errorf("Authorization = %q", got)
	}

	// Nothing is declared before the platform's welcome...
	clk.waitArmed(t, connectGrace)
	c.send(`{"type":"welcome","sdk_connection_id":"sdk-1","org_id":"org-1"}`)
	reg := c.frame()
	if reg["type"] != "tool_register" {
		t.Fatalf("first frame after welcome = %v; want tool_register", reg)
	}
	// ...and once only, even when the welcome grace runs out after it.
	clk.Advance(connectGrace)

	tools := map[string]map[string]any{}
	for _, x := range reg["tools"].([]any) {
		m := x.(map[string]any)
		tools[m["name"].(string)] = m
	}
	if len(tools) != len(platoolsToolkit(t, nil, nil).Tools()) {
		t.Fatalf("tool_register declares %d tools, want every tool: %v", len(tools), reg)
	}
	echo, whoami, scope, block := tools["echo"], tools["whoami"], tools["scope"], tools["block"]
	if echo["description"] != "Says hello." || echo["auth"] != "none" || !reflect.DeepEqual(echo["roles"], []any{}) ||
		!reflect.DeepEqual(echo["annotations"], map[string]any{}) {
		t.Errorf("echo = %v", echo)
	}
	in, _ := json.Marshal(echo["input_schema"])
	out, _ := json.Marshal(echo["output_schema"])
	if string(in) != `{"properties":{"name":{"type":"string"}},"type":"object"}` || string(out) != `{"properties":{"hello":{"type":"string"}},"type":"object"}` {
		t.Errorf("echo schemas = %s, %s", in, out)
	}
	if whoami["auth"] != "user" || whoami["auth_provider"] != "hubspot" {
		t.Errorf("whoami = %v; want auth user and auth_provider hubspot", whoami)
	}
	if v, ok := tools["fail"]["output_schema"]; !ok || v != nil {
		t.Errorf("fail output_schema = %v, %v; want null", v, ok)
	}
	if in, _ := json.Marshal(tools["boom"]["input_schema"]); string(in) != `{"type":"object"}` {
		t.Errorf("boom input_schema = %s; want the empty object schema", in)
	}
	if !reflect.DeepEqual(scope["annotations"], map[string]any{"readOnlyHint": true, "idempotentHint": true}) ||
		!reflect.DeepEqual(block["annotations"], map[string]any{"destructiveHint": true}) {
		t.Errorf("annotations: scope %v, block %v", scope["annotations"], block["annotations"])
	}

	// Connected once the platform has the tools.
	select {
	case s := <-states:
		t.Fatalf("state %v before tools_registered", s)
	default:
	}
	c.send(`{"type":"tools_registered","entity_id":"crm","environment_id":"prod","count":9,"new_tools":["echo"],"updated":0,"pruned":1}`)
	select {
	case s := <-states:
		if s.Kind != StateConnected {
			t.Fatalf("state = %v, want connected", s)
		}
	case <-time.After(waitBound):
		t.Fatal("not connected after tools_registered")
	}
	c.call("r-1", "echo", map[string]any{"name": "Ada"})
	if m := c.frame(); m["type"] != "tool_result" {
		t.Fatalf("frame = %v; want the call's tool_result (no second tool_register)", m)
	}
}

func TestPlatoolsRegistersWithoutWelcome(t *testing.T) {
	f := newFakePlatos(t)
	f.noWelcome = true
	logger, logs := newTestLogger()
	clk := newFakeClock()
	startServe(t, newServeToolkit(t, nil), ServeConfig{URL: f.srv.URL, APIKey: platosSecret, Transport: TransportPlatools, clock: clk, Logger: logger})
	c := f.conn()
	clk.waitArmed(t, connectGrace)
	clk.Advance(connectGrace)
	c.frameOf("tool_register")
	logs.waitFor(t, "no welcome from the platform")
}

func TestPlatoolsRegisterThrottled(t *testing.T) {
	r := servePlatools(t, nil)
	r.conn.send(`{"type":"register_throttled","error":"tool_register exceeded 6/min; retry after 5s","retry_after_ms":4500}`)
	r.clock.waitArmed(t, 4500*time.Millisecond)
	select {
	case b := <-r.conn.in:
		t.Fatalf("frame before the wait was over: %s", b)
	default:
	}
	r.clock.Advance(4500 * time.Millisecond)
	r.conn.frameOf("tool_register")
	r.logs.waitFor(t, "tool_register throttled")

	// A wait the platform did not name is the default; a huge one is capped.
	r.conn.send(`{"type":"register_throttled","error":"slow down"}`)
	r.clock.waitArmed(t, defaultRegisterWait)
	r.conn.send(`{"type":"register_throttled","error":"slow down","retry_after_ms":1e12}`)
	r.clock.waitArmed(t, maxRegisterWait)
}

func TestPlatoolsToolCalls(t *testing.T) {
	r := servePlatools(t, nil)
	c := r.conn
	c.send(`{"type":"heartbeat_ack"}`)

	// The envelope and the context leave the params (the tool's decoder
	// refuses unknown fields); the user's token becomes the call's token.
	envelope := map[string]any{
		"organizationId": "org-1", "projectId": "proj-1", "environmentId": "prod", "entityId": "crm", "userId": "u-42",
		"userToken": "tok-secret", "agentId": "agent-7", "threadId": "th-1", "callId": "c-1",
		"timestamp": "2026-09-15T00:00:00.000Z", "nonce": "n-1", "signature": "sig", "entityToken": "ignored",
	}
	c.call("c-1", "scope", map[string]any{"q": "orders", "__platos": envelope, "_context": map[string]any{"user.id": "u-42"}})
	res := c.frameOf("tool_result")
	if res["call_id"] != "c-1" {
		t.Fatalf("tool_result = %v", res)
	}
	if _, ok := res["latency_ms"].(json.Number); !ok {
		t.Fatalf("tool_result without numeric latency_ms: %v", res)
	}
	var got struct {
		Q, Transport string
		RequestID    string `json:"request_id"`
		Platos       *Platos
	}
	b, _ := json.Marshal(res["result"])
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := Platos{OrganizationID: "org-1", ProjectID: "proj-1", EnvironmentID: "prod", EntityID: "crm", UserID: "u-42",
		AgentID: "agent-7", ThreadID: "th-1", CallID: "c-1", Timestamp: "2026-09-15T00:00:00.000Z", Nonce: "n-1", Signature: "sig",
		Context: json.RawMessage(`{"user.id":"u-42"}`)}
	if got.Q != "orders" || got.Transport != string(TransportPlatools) || got.RequestID != "c-1" || got.Platos == nil || !reflect.DeepEqual(*got.Platos, want) {
		t.Errorf("scope result = %s; want q orders, transport platools, request_id c-1 and platos %+v", b, want)
	}
	c.call("c-2", "whoami", map[string]any{"__platos": envelope})
	if res := c.frameOf("tool_result"); res["result"].(map[string]any)["token"] != "tok-secret" {
		t.Errorf("whoami = %v; want the envelope's userToken", res)
	}
	// Without a token, a tool that needs one is refused before it runs.
	c.call("c-3", "whoami", map[string]any{"__platos": map[string]any{"userId": "u-42"}})
	if e := c.frameOf("tool_error"); !strings.Contains(e["error"].(string), "needs the end user's auth token") {
		t.Errorf("whoami without a token = %v", e)
	}

	// Failures: the SDKs' exact words for an unknown tool, the decoder's
	// problem list, the tool's error, a panic's stack.
	c.call("c-4", "nope", map[string]any{})
	e := c.frameOf("tool_error")
	if e["call_id"] != "c-4" || e["error"] != "unknown tool: nope" || e["traceback"] != nil {
		t.Errorf("unknown tool = %v", e)
	}
	if _, ok := e["traceback"]; !ok {
		t.Errorf("tool_error without a traceback member: %v", e)
	}
	c.call("c-5", "forecast", map[string]any{"days": "three", "dayz": 1, "__platos": envelope})
	e = c.frameOf("tool_error")
	wantErr := `invalid params for forecast: days: expected integer, got "three"; dayz: unknown field (allowed: days)`
	if e["error"] != wantErr || e["traceback"] != nil {
		t.Errorf("invalid params = %v; want %q", e, wantErr)
	}
	problems, _ := json.Marshal(e["problems"])
	if string(problems) != `[{"message":"expected integer, got \"three\"","path":"days"},{"message":"unknown field (allowed: days)","path":"dayz"}]` {
		t.Errorf("problems = %s", problems)
	}
	c.call("c-6", "fail", nil)
	if e := c.frameOf("tool_error"); e["error"] != "the weather service is down" || e["traceback"] != nil {
		t.Errorf("fail = %v", e)
	}
	c.call("c-7", "boom", map[string]any{})
	e = c.frameOf("tool_error")
	tb, _ := e["traceback"].(string)
	if e["error"] != "tool boom failed: internal error (panic: kaboom)" || !strings.Contains(tb, "goroutine") || !strings.Contains(tb, "panic") {
		t.Errorf("boom = %v", e)
	}

	// A call_id that is a number is echoed as sent.
	c.send(`{"type":"tool_call","call_id":17,"tool_name":"echo","params":{"name":"Ada"}}`)
	if res := c.frameOf("tool_result"); res["call_id"] != json.Number("17") {
		t.Errorf("numeric call_id = %v", res)
	}
	if strings.Contains(r.logs.String(), "tok-secret") || strings.Contains(r.logs.String(), platosSecret) {
		t.Errorf("a secret is in the log:\n%s", r.logs)
	}
}

func TestPlatoolsMalformedFrames(t *testing.T) {
	r := servePlatools(t, nil)
	c := r.conn
	// A tool_call whose call_id can be read is answered; others are logged.
	c.send(`{"type":"tool_call","call_id":"m-1","tool_name":7,"params":{}}`)
	if e := c.frameOf("tool_error"); e["call_id"] != "m-1" || e["error"] != "malformed tool_call: tool_name: expected string, got 7" {
		t.Errorf("malformed tool_call = %v", e)
	}
	c.call("m-2", "echo", map[string]any{"name": "Ada", "__platos": map[string]any{"userToken": 12345}})
	if e := c.frameOf("tool_error"); e["error"] != "malformed tool_call: params.__platos.userToken: expected string, got another JSON type" {
		t.Errorf("non-string userToken = %v", e)
	}
	c.call("m-3", "echo", map[string]any{"name": "Ada", "__platos": "nope"})
	if e := c.frameOf("tool_error"); e["error"] != `malformed tool_call: params.__platos: expected object, got "nope"` {
		t.Errorf("non-object envelope = %v", e)
	}
	c.send(`{"type":"tool_call","tool_name":"echo","params":{}}`)
	c.send(`[1,2]`)
	c.send(`{"type":"tool_call","call_id":"m-4","tool_name":"echo","params":"not an object"}`)
	if e := c.frameOf("tool_error"); e["call_id"] != "m-4" || e["error"] != `invalid params for echo: params: expected object, got "not an object"` {
		t.Errorf("params not an object = %v", e)
	}
	long := strings.Repeat("x", 500)
	c.send(`{"type":"` + long + `","call_id":"u-1"}`)
	c.send(`{"type":"tool_health_alert","tool":"echo","status":"degraded","details":{"avg_latency_ms":12000}}`)
	c.send(`{"note":"no type"}`)
	// The session goes on.
	c.call("m-5", "echo", map[string]any{"name": "Ada"})
	if res := c.frameOf("tool_result"); res["call_id"] != "m-5" {
		t.Errorf("after bad frames: %v", res)
	}
	logs := r.logs.String()
	for _, want := range []string{"ignoring a tool_call without call_id", "ignoring malformed frame", "ignoring an unknown frame type",
		"the platform reports a tool's health", "ignoring a frame without type"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, long[:100]) {
		t.Errorf("an unknown type was logged whole")
	}
	if strings.Contains(logs, "12345") {
		t.Errorf("a malformed token was logged")
	}
}

func TestPlatoolsOversizedFrame(t *testing.T) {
	r := servePlatools(t, func(c *ServeConfig) { c.ReadLimit = 1024 })
	r.conn.send(`{"type":"tool_call","call_id":"big-1","tool_name":"echo","params":{"name":"` + strings.Repeat("a", 2000) + `"}}`)
	if e := r.conn.frameOf("tool_error"); e["call_id"] != "big-1" || !strings.Contains(e["error"].(string), "larger than the toolkit's read limit of 1024 bytes") {
		t.Errorf("oversized = %v", e)
	}
	r.conn.call("small", "echo", map[string]any{"name": "Ada"})
	r.conn.frameOf("tool_result")
}

// The reading goroutine never runs a tool: while a call blocks, other calls
// and pings are answered.
func TestPlatoolsReaderNeverRunsATool(t *testing.T) {
	r := servePlatools(t, func(c *ServeConfig) { c.MaxInFlight = 1 })
	r.conn.call("b-1", "block", nil)
	r.waitStarted(t)
	r.conn.ping("still reading")
	// With one slot, a second call waits for it; an unknown tool needs none.
	r.conn.call("b-2", "echo", map[string]any{"name": "Ada"})
	r.conn.call("b-3", "nope", nil)
	if e := r.conn.frameOf("tool_error"); e["call_id"] != "b-3" {
		t.Fatalf("got %v; want the unknown tool's answer first", e)
	}
	close(r.block)
	ids := []any{r.conn.frameOf("tool_result")["call_id"], r.conn.frameOf("tool_result")["call_id"]}
	if !reflect.DeepEqual(ids, []any{"b-1", "b-2"}) {
		t.Errorf("answers = %v; want b-1 then b-2", ids)
	}
}

func TestPlatoolsDrain(t *testing.T) {
	r := servePlatools(t, nil)
	r.conn.call("d-1", "block", nil)
	r.waitStarted(t)
	done := make(chan error, 1)
	go func() { done <- r.run.stop(t) }()
	r.logs.waitFor(t, "draining running calls")
	r.conn.call("d-2", "echo", map[string]any{"name": "late"})
	if e := r.conn.frameOf("tool_error"); e["call_id"] != "d-2" || e["error"] != errShuttingDown.Error() {
		t.Errorf("call during the drain = %v", e)
	}
	close(r.block)
	if res := r.conn.frameOf("tool_result"); res["call_id"] != "d-1" || res["result"] != "unblocked" {
		t.Errorf("drained call = %v", res)
	}
	if code := r.conn.waitClosed(); code != websocket.CloseNormalClosure {
		t.Errorf("close code = %d, want 1000", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v, want nil after cancel", err)
	}
}

func TestPlatoolsHeartbeat(t *testing.T) {
	r := servePlatools(t, func(c *ServeConfig) { c.PingInterval = time.Minute })
	c := r.conn
	c.call("h-1", "echo", map[string]any{"name": "Ada"})
	c.frameOf("tool_result")
	for i := range 5 {
		c.call(fmt.Sprintf("f-%d", i), "fail", nil)
		c.frameOf("tool_error")
	}
	// Invalid params are the caller's fault: they do not count.
	c.call("h-2", "forecast", map[string]any{"days": "x"})
	c.frameOf("tool_error")
	r.clock.Advance(time.Minute)
	hb := c.frameOf("heartbeat")
	health := hb["tools_health"].(map[string]any)
	if len(health) != len(platoolsToolkit(t, nil, nil).Tools()) {
		t.Errorf("tools_health has %d tools, want every tool: %v", len(health), health)
	}
	want := map[string]healthEntry{
		"echo":     {Status: "healthy"},
		"fail":     {Status: "down", ErrorCount1h: 5, LastError: "the weather service is down"},
		"forecast": {Status: "healthy"},
	}
	for name, w := range want {
		var got healthEntry
		b, _ := json.Marshal(health[name])
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("tools_health[%s] = %s: %v", name, b, err)
		}
		got.AvgLatencyMs = 0 // real time: only its presence is checked
		if _, ok := health[name].(map[string]any)["avg_latency_ms"].(json.Number); !ok || got != w {
			t.Errorf("tools_health[%s] = %s; want %+v", name, b, w)
		}
	}
	// The next one comes a period later.
	r.clock.Advance(time.Minute)
	c.frameOf("heartbeat")
}

func TestToolHealthThresholds(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	h := newToolHealth()
	rec := func(tool string, at time.Duration, latency time.Duration, failed bool) {
		msg := ""
		if failed {
			msg = "boom at " + at.String()
		}
		h.record(tool, t0.Add(at), latency, failed, msg)
	}
	report := func(at time.Duration) map[string]healthEntry {
		return h.report([]string{"a", "b", "c", "idle"}, t0.Add(at))
	}
	for i := range 20 {
		rec("a", time.Duration(i)*time.Second, 100*time.Millisecond, i < 2) // 2 of 20 failed: 10%, not more
		rec("b", time.Duration(i)*time.Second, 100*time.Millisecond, i < 3) // 15%
	}
	rec("c", 0, 10*time.Second, false)
	got := report(time.Minute)
	if e := got["a"]; e.Status != "healthy" || e.ErrorCount1h != 2 || e.AvgLatencyMs != 100 || e.LastError != "boom at 1s" {
		t.Errorf("a = %+v", e)
	}
	if got["b"].Status != "degraded" || got["c"].Status != "degraded" || got["c"].AvgLatencyMs != 10000 {
		t.Errorf("b = %+v, c = %+v; want degraded (errors, latency)", got["b"], got["c"])
	}
	if e := got["idle"]; e != (healthEntry{Status: "healthy"}) {
		t.Errorf("idle = %+v", e)
	}
	for i := range 5 {
		rec("a", 2*time.Minute+time.Duration(i)*time.Second, time.Millisecond, true)
	}
	if e := report(3 * time.Minute)["a"]; e.Status != "down" || e.ErrorCount1h != 7 {
		t.Errorf("a after 5 failures in a row = %+v", e)
	}
	rec("a", 4*time.Minute, time.Millisecond, false)
	if e := report(5 * time.Minute)["a"]; e.Status != "degraded" {
		t.Errorf("a after a success = %+v; want degraded (7 of 26 failed)", e)
	}
	// An hour later, it is all forgotten.
	if e := report(2 * time.Hour)["a"]; e != (healthEntry{Status: "healthy"}) {
		t.Errorf("a two hours later = %+v", e)
	}
	h.record("long", t0, time.Millisecond, true, strings.Repeat("é", 400))
	if e := h.report([]string{"long"}, t0)["long"]; len(e.LastError) > maxLastError+len("…") {
		t.Errorf("last_error is %d bytes", len(e.LastError))
	}
}

func TestPlatoolsErrorAndClose1008Stops(t *testing.T) {
	r := servePlatools(t, nil)
	r.conn.send(`{"type":"error","error":"Invalid service secret or entity not found"}`)
	r.conn.closeWith(websocket.ClosePolicyViolation, "")
	err := r.run.wait(t)
	if err == nil || !strings.Contains(err.Error(), "the platform refused the connection (close 1008): Invalid service secret or entity not found") {
		t.Fatalf("Serve = %v", err)
	}
	if n := r.f.handshakeCount(); n != 1 {
		t.Errorf("%d handshakes; want 1: a refusal is not retried", n)
	}
}

func TestPlatoolsClose4001Stops(t *testing.T) {
	r := servePlatools(t, nil)
	r.conn.closeWith(closeSecretRotated, "secret rotated; reconnect with new secret")
	err := r.run.wait(t)
	if err == nil || !strings.Contains(err.Error(), "close 4001: secret rotated; reconnect with new secret") || !strings.Contains(err.Error(), "PLATOS_SECRET") {
		t.Fatalf("Serve = %v", err)
	}
	if n := r.f.handshakeCount(); n != 1 {
		t.Errorf("%d handshakes; want 1", n)
	}
}

func TestPlatoolsSupersededStops(t *testing.T) {
	r := servePlatools(t, nil)
	r.conn.closeWith(websocket.CloseNormalClosure, "superseded by new connection")
	err := r.run.wait(t)
	if !errors.Is(err, ErrSuperseded) || !strings.Contains(err.Error(), "another connection for the same entity and environment") {
		t.Fatalf("Serve = %v; want ErrSuperseded", err)
	}
	if n := r.f.handshakeCount(); n != 1 {
		t.Errorf("%d handshakes; want 1: a superseded toolkit does not take the place back", n)
	}
	r.logs.waitFor(t, "a newer connection took over")
}

func TestPlatoolsReconnects(t *testing.T) {
	r := servePlatools(t, nil)
	// Any other close is retried with backoff, and the tools are declared
	// again on the new connection.
	r.conn.closeWith(websocket.CloseGoingAway, "restarting")
	if d := r.clock.sleep(t); d <= 0 || d > time.Millisecond {
		t.Errorf("first backoff = %s", d)
	}
	c := r.f.conn()
	c.frameOf("tool_register")
	c.drop()
	r.clock.sleep(t)
	r.f.conn().frameOf("tool_register")
}

func TestPlatoolsHandshakeRefused(t *testing.T) {
	f := newFakePlatos(t)
	f.reject = http.StatusUnauthorized
	err := newServeToolkit(t, nil).Serve(context.Background(), ServeConfig{URL: f.srv.URL, APIKey: platosSecret, Transport: TransportPlatools})
	if err == nil || !strings.Contains(err.Error(), "401 Unauthorized") || !strings.Contains(err.Error(), "Invalid service secret") {
		t.Fatalf("Serve = %v", err)
	}
}

func TestPlatoolsSplit(t *testing.T) {
	var d atpimpl.Decoder
	for _, c := range []struct {
		in, rest, token string
		platos          *Platos
	}{
		{`{"a":1}`, `{"a":1}`, "", nil},
		{`{"__platos":{"userToken":"t","userId":7,"nonce":null},"a":"x","_context":{"k":[1]},"b":{"c":true}}`, `{"a":"x","b":{"c":true}}`, "t",
			&Platos{UserID: "7", Context: json.RawMessage(`{"k":[1]}`)}},
		{`{"_context":null}`, `{}`, "", &Platos{}},
		{` { "we\"ird" : 1 , "__platos" : {} } `, `{"we\"ird":1}`, "", &Platos{}},
		{`"__platos"`, `"__platos"`, "", nil},
		{`{"__platos":{},"a":}`, `{"__platos":{},"a":}`, "", nil},
	} {
		rest, platos, token, err := splitPlatos(&d, json.RawMessage(c.in))
		if err != nil || string(rest) != c.rest || token != c.token || !reflect.DeepEqual(platos, c.platos) {
			t.Errorf("splitPlatos(%s) = %s, %+v, %q, %v; want %s, %+v, %q", c.in, rest, platos, token, err, c.rest, c.platos, c.token)
		}
	}
}

func TestPlatoolsNeverLogsTheSecret(t *testing.T) {
	f := newFakePlatos(t)
	logger, logs := newTestLogger()
	u, _ := url.Parse(f.srv.URL)
	u.Path = "/nowhere/"
	f.reject = http.StatusServiceUnavailable
	run := startServe(t, newServeToolkit(t, nil), ServeConfig{URL: u.String(), APIKey: platosSecret, Transport: TransportPlatools, Logger: logger,
		MaxAttempts: 2, Backoff: Backoff{Base: time.Millisecond, Max: time.Millisecond}})
	err := run.wait(t)
	if err == nil || strings.Contains(err.Error(), platosSecret) || strings.Contains(logs.String(), platosSecret) {
		t.Fatalf("Serve = %v; log:\n%s", err, logs)
	}
}

func TestPlatoolsLeavesNoGoroutines(t *testing.T) {
	f := newFakePlatos(t)
	block, started := make(chan struct{}), make(chan struct{}, 20)
	tk := platoolsToolkit(t, block, started)
	before := goruntime.NumGoroutine()
	run := startServe(t, tk, ServeConfig{URL: f.srv.URL, APIKey: platosSecret, Transport: TransportPlatools, Logger: slog.New(slog.DiscardHandler)})
	c := f.conn()
	c.frameOf("tool_register")
	for i := range 20 {
		c.call(fmt.Sprint("g", i), "block", nil)
	}
	for range 20 {
		<-started
	}
	close(block)
	for range 20 {
		c.frameOf("tool_result")
	}
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	c.ws.Close()
	f.srv.CloseClientConnections()
	deadline := time.Now().Add(waitBound)
	for goruntime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Serve returned, %d before:\n%s", goruntime.NumGoroutine(), before, buf[:goruntime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond) // bounded polling of an observable
	}
}
