package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"reflect"
	goruntime "runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/atpgo/atp/runtime/atpimpl"
)

const serveTestKey = "sk-test-0123456789"

// serveGate drives the "gated" tool: each call reports its start and then
// waits for a release.
type serveGate struct {
	started             chan string   // request id of each gated call, as it starts
	release             chan struct{} // a value lets one call return; close lets all
	running, maxRunning atomic.Int32
}

func newServeGate() *serveGate {
	return &serveGate{started: make(chan string, 1024), release: make(chan struct{})}
}

func (g *serveGate) waitStarted(t testing.TB) string {
	t.Helper()
	select {
	case id := <-g.started:
		return id
	case <-time.After(waitBound):
		t.Fatalf("gated call did not start within %s", waitBound)
		return ""
	}
}

// readName decodes {"name": string}, as generated code would.
func readName(d *atpimpl.Decoder) string {
	var name string
	if d.Object() {
		for d.Next() {
			switch string(d.Key()) {
			case "name":
				name = d.String()
			default:
				d.Unknown("name")
			}
		}
	}
	return name
}

// newServeToolkit returns the toolkit the serve tests talk to. The gated
// tool uses gate (which may be nil when a test does not call it).
func newServeToolkit(t testing.TB, gate *serveGate) *Toolkit {
	t.Helper()
	tk := NewToolkit("testkit", WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	err := tk.Add(
		&Tool{
			Name:         "echo",
			Description:  "Says hello.",
			Params:       []string{"name"},
			InputSchema:  json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}}}`),
			OutputSchema: json.RawMessage(`{"type":"object","properties":{"hello":{"type":"string"}}}`),
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				name := readName(d)
				if d.Failed() {
					return nil, nil
				}
				return map[string]string{"hello": name}, nil
			},
		},
		&Tool{
			Name:           "forecast",
			Description:    "Weather for the next days.",
			Params:         []string{"days"},
			RequiredParams: []string{"days"},
			InputSchema:    json.RawMessage(`{"type":"object","properties":{"days":{"type":"integer"}},"required":["days"]}`),
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				var days int64
				seen := false
				if d.Object() {
					for d.Next() {
						switch string(d.Key()) {
						case "days":
							days, seen = d.Int(0), true
						default:
							d.Unknown("days")
						}
					}
					if !seen {
						d.Missing("days", "integer")
					}
				}
				if d.Failed() {
					return nil, nil
				}
				return map[string]int64{"days": days}, nil
			},
		},
		&Tool{
			Name: "boom",
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				panic("kaboom")
			},
		},
		&Tool{
			Name:    "sleepy",
			Timeout: 20 * time.Millisecond,
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		},
		&Tool{
			Name: "hang", // no timeout of its own
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				<-ctx.Done()
				return nil, ctx.Err()
			},
		},
		&Tool{
			Name:           "whoami",
			Description:    "The user's CRM identity.",
			AuthProvider:   "hubspot",
			AuthType:       "OAuth2",
			AuthWith:       "access_token",
			NeedsAuthToken: true,
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				return map[string]string{"token": string(call.AuthToken)}, nil
			},
		},
		&Tool{
			Name: "peek",
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				return map[string]string{"token": string(call.AuthToken), "transport": call.Transport, "request_id": call.RequestID}, nil
			},
		},
		&Tool{
			Name: "gated",
			Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
				n := gate.running.Add(1)
				defer gate.running.Add(-1)
				for {
					m := gate.maxRunning.Load()
					if n <= m || gate.maxRunning.CompareAndSwap(m, n) {
						break
					}
				}
				gate.started <- call.RequestID
				select {
				case <-gate.release:
					return map[string]string{"released": call.RequestID}, nil
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

// testConfig is the base configuration of the tests: a tiny backoff so
// reconnects happen at once.
func testConfig(f *fakeATP) ServeConfig {
	return ServeConfig{
		URL:     f.URL(),
		APIKey:  f.key,
		Backoff: Backoff{Base: time.Millisecond, Max: 5 * time.Millisecond},
	}
}

// serveWS starts Serve over WebSocket against f and returns the first
// connection.
func serveWS(t *testing.T, f *fakeATP, tk *Toolkit, edit func(*ServeConfig)) (*serveRun, *fakeConn, *logBuffer) {
	t.Helper()
	logger, logs := newTestLogger()
	cfg := testConfig(f)
	cfg.Logger = logger
	if edit != nil {
		edit(&cfg)
	}
	run := startServe(t, tk, cfg)
	return run, f.conn(), logs
}

func TestServeAnswersToolRequests(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	_, c, _ := serveWS(t, f, newServeToolkit(t, nil), nil)

	c.request("r1", "echo", map[string]any{"name": "world"}, "")
	r := c.response()
	wantKeys := []string{"latency_ms", "request_id", "result", "type"}
	if got := keysOf(r.m); !slices.Equal(got, wantKeys) {
		t.Errorf("success response keys = %v, want %v: %s", got, wantKeys, r.raw)
	}
	if r.m["request_id"] != "r1" || r.result()["hello"] != "world" || r.isError() {
		t.Errorf("response = %s, want request_id r1 and result {hello: world}", r.raw)
	}

	// A numeric request_id is echoed as a number, not a string.
	c.request(42, "peek", nil, "")
	r = c.response()
	if !strings.Contains(string(r.raw), `"request_id":42,`) {
		t.Errorf("numeric request_id not echoed as a number: %s", r.raw)
	}
	if r.result()["transport"] != "ws" || r.result()["request_id"] != "42" {
		t.Errorf("Call seen by the tool = %v, want transport ws and request id 42", r.result())
	}

	if got := f.wsAuth[0]; got != "Bearer "+serveTestKey {
		t.Errorf("handshake Authorization = %q, want the Bearer key", got)
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestServeFailuresAreAnswered(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	tk := newServeToolkit(t, nil)
	_, c, _ := serveWS(t, f, tk, func(cfg *ServeConfig) { cfg.CallTimeout = 30 * time.Millisecond })

	expectError := func(id string, want ...string) fakeResponse {
		t.Helper()
		r := c.response()
		if r.id() != id || !r.isError() {
			t.Fatalf("response = %s, want an is_error answer to %s", r.raw, id)
		}
		if got := keysOf(r.m); !slices.Equal(got, []string{"is_error", "latency_ms", "request_id", "result", "type"}) {
			t.Errorf("failure response keys = %v: %s", got, r.raw)
		}
		for _, w := range want {
			if !strings.Contains(r.errorText(), w) {
				t.Errorf("%s: error %q does not mention %q", id, r.errorText(), w)
			}
		}
		return r
	}

	c.request("u1", "nope", nil, "")
	expectError("u1", `unknown tool "nope"`, "echo", "forecast")

	c.request("p1", "boom", nil, "")
	expectError("p1", "panic", "kaboom")
	c.request("after-panic", "echo", map[string]any{"name": "still here"}, "")
	if r := c.response(); r.isError() || r.result()["hello"] != "still here" {
		t.Errorf("after a panic the session must go on; got %s", r.raw)
	}

	c.request("t1", "sleepy", nil, "")
	expectError("t1", "sleepy timed out after 20ms")
	c.request("t2", "hang", nil, "")
	expectError("t2", "hang timed out after 30ms") // ServeConfig.CallTimeout

	c.request("a1", "whoami", nil, "")
	expectError("a1", "auth token")
	c.request("a2", "whoami", nil, "tok-user-1")
	if r := c.response(); r.isError() || r.result()["token"] != "tok-user-1" {
		t.Errorf("tool that declares a token did not get it: %s", r.raw)
	}
	c.request("a3", "peek", nil, "tok-user-1")
	if r := c.response(); r.result()["token"] != "" {
		t.Errorf("tool that declares no token received one: %s", r.raw)
	}

	params := json.RawMessage(`{"days":"three","extra":1}`)
	c.request("v1", "forecast", params, "")
	r := expectError("v1")
	_, want := tk.Invoke(context.Background(), "forecast", params)
	var verr *ValidationError
	if !errors.As(want, &verr) {
		t.Fatalf("Invoke(forecast) error = %v, want a *ValidationError", want)
	}
	if r.errorText() != want.Error() {
		t.Errorf("invalid params error = %q, want %q", r.errorText(), want.Error())
	}
	var got []Problem
	b, _ := json.Marshal(r.result()["problems"])
	json.Unmarshal(b, &got)
	if !reflect.DeepEqual(got, verr.Problems) || len(got) < 2 {
		t.Errorf("problems = %+v, want %+v (both fields)", got, verr.Problems)
	}
	if !strings.HasPrefix(r.errorText(), "invalid params for forecast: days: ") {
		t.Errorf("invalid params error %q does not name the tool and field", r.errorText())
	}
}

// A tool that ignores its context is answered at the deadline, and keeps
// its slot until it returns.
func TestServeTimeoutOfToolIgnoringContext(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	tk := newServeToolkit(t, gate)
	unblock := make(chan struct{})
	tk.Add(&Tool{Name: "stubborn", Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
		<-unblock // ignores ctx
		return "late", nil
	}})
	_, c, _ := serveWS(t, f, tk, func(cfg *ServeConfig) {
		cfg.CallTimeout = 20 * time.Millisecond
		cfg.MaxInFlight = 1
	})
	c.request("s1", "stubborn", nil, "")
	if r := c.response(); r.id() != "s1" || !strings.Contains(r.errorText(), "stubborn timed out after 20ms") {
		t.Fatalf("answer = %s, want a timeout at the deadline", r.raw)
	}
	c.request("e1", "echo", map[string]any{"name": "next"}, "")
	c.request("probe", "nope", nil, "")
	if r := c.response(); r.id() != "probe" {
		t.Fatalf("answer = %s, want the probe first: echo must wait for the slot stubborn holds", r.raw)
	}
	close(unblock)
	if r := c.response(); r.id() != "e1" || r.isError() {
		t.Errorf("answer = %s, want e1 once stubborn returned", r.raw)
	}
	select {
	case b := <-c.in:
		t.Errorf("stubborn's late result was sent too: %s", b)
	default:
	}
}

func TestServeIgnoresBadFrames(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	_, c, logs := serveWS(t, f, newServeToolkit(t, nil), nil)

	c.send(`{"message_type":"atp_client_connected","payload":{"message":"welcome"}}`)
	c.send(`not json at all`)
	c.send(`[1,2,3]`)
	c.send(`{"message_type":"atp_app_request","payload":{"request_id":"x"}}`)
	c.send(`{"payload":{"request_id":"y"}}`)
	c.send(`{"message_type":"atp_tool_request","payload":"oops"}`)
	c.send(`{"message_type":"atp_tool_request","payload":{"tool_name":"echo"}}`) // no id: nobody to answer
	c.send(`{"message_type":"atp_tool_request","payload":{"request_id":"m1","tool_name":7}}`)
	c.request("ok", "echo", map[string]any{"name": "x"}, "")

	r := c.response()
	if r.id() != "m1" || !r.isError() || !strings.Contains(r.errorText(), "payload.tool_name: expected string, got 7") {
		t.Errorf("first answer = %s, want the malformed request m1 answered with what was wrong", r.raw)
	}
	if r := c.response(); r.id() != "ok" || r.isError() {
		t.Errorf("second answer = %s, want request ok answered", r.raw)
	}
	log := logs.String()
	for _, want := range []string{"ignoring malformed frame", "ignoring unknown message_type", "atp_app_request", "without message_type", "without request_id", "welcome"} {
		if !strings.Contains(log, want) {
			t.Errorf("log does not mention %q:\n%s", want, log)
		}
	}
}

func TestServeRefusesOversizedFrames(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	_, c, logs := serveWS(t, f, newServeToolkit(t, nil), func(cfg *ServeConfig) { cfg.ReadLimit = 1024 })

	big := strings.Repeat("x", 4096)
	c.send(`{"message_type":"atp_tool_request","payload":{"request_id":"big","tool_name":"echo","params":{"name":"` + big + `"}}}`)
	r := c.response()
	if r.id() != "big" || !r.isError() || !strings.Contains(r.errorText(), "read limit of 1024 bytes") {
		t.Errorf("oversized request answer = %s, want an error naming the limit", r.raw)
	}
	// The id comes after the cut: nothing to answer, but the session goes on.
	c.send(`{"message_type":"atp_tool_request","payload":{"params":{"name":"` + big + `"},"request_id":"late"}}`)
	c.request("small", "echo", map[string]any{"name": "y"}, "")
	if r := c.response(); r.id() != "small" || r.isError() {
		t.Errorf("after oversized frames, answer = %s, want request small answered on the same connection", r.raw)
	}
	select {
	case <-f.conns:
		t.Error("the toolkit reconnected after an oversized frame")
	default:
	}
	logs.waitFor(t, "refused a frame larger than ReadLimit")
}

func TestServeRunsCallsConcurrently(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	_, c, _ := serveWS(t, f, newServeToolkit(t, gate), nil)

	const n = 16
	for i := range n {
		c.request(fmt.Sprintf("g%d", i), "gated", nil, "")
	}
	// All n are running at once before any is allowed to finish.
	for range n {
		gate.waitStarted(t)
	}
	close(gate.release)
	got := c.responses(n)
	for i := range n {
		id := fmt.Sprintf("g%d", i)
		if r, ok := got[id]; !ok || r.isError() {
			t.Errorf("request %s: answer %s", id, r.raw)
		}
	}
}

func TestServeBoundsCallsInFlight(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	_, c, _ := serveWS(t, f, newServeToolkit(t, gate), func(cfg *ServeConfig) { cfg.MaxInFlight = 2 })

	const n = 6
	for i := range n {
		c.request(fmt.Sprintf("g%d", i), "gated", nil, "")
	}
	// An unknown tool is answered without a slot: its answer shows that all
	// n requests before it have been read and dispatched.
	c.request("probe", "nope", nil, "")
	if r := c.response(); r.id() != "probe" {
		t.Fatalf("first answer = %s, want the probe (no gated call may finish yet)", r.raw)
	}
	gate.waitStarted(t)
	gate.waitStarted(t)
	answered := map[string]bool{}
	for range n {
		gate.release <- struct{}{} // lets exactly one running call return
		r := c.response()
		if r.isError() {
			t.Errorf("gated call answered with an error: %s", r.raw)
		}
		answered[r.id()] = true
		if len(answered) < n-1 {
			gate.waitStarted(t) // a waiting request takes the free slot
		}
	}
	if len(answered) != n {
		t.Errorf("answered %d distinct requests, want %d", len(answered), n)
	}
	if m := gate.maxRunning.Load(); m != 2 {
		t.Errorf("at most %d calls ran at once, want exactly MaxInFlight = 2", m)
	}
}

func TestServeDrainsOnCancel(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	run, c, logs := serveWS(t, f, newServeToolkit(t, gate), nil)

	c.request("inflight", "gated", nil, "")
	gate.waitStarted(t)
	run.cancel()
	logs.waitFor(t, "shutting down")
	// The server hears of the drain first, so that it can route new calls
	// elsewhere.
	if n := c.draining(); n != 0 {
		t.Errorf("%d frames came before the draining frame, want none", n)
	}

	// A request arriving during the drain is refused, not run.
	c.request("late", "echo", map[string]any{"name": "z"}, "")
	if r := c.response(); r.id() != "late" || !strings.Contains(r.errorText(), "shutting down") {
		t.Errorf("request during drain: answer %s, want a shutting-down error", r.raw)
	}
	gate.release <- struct{}{}
	if r := c.response(); r.id() != "inflight" || r.isError() {
		t.Errorf("in-flight call: answer %s, want its result before the close", r.raw)
	}
	if code := c.waitClosed(); code != 1000 {
		t.Errorf("close code = %d, want 1000", code)
	}
	if err := run.wait(t); err != nil {
		t.Errorf("Serve after a clean drain = %v, want nil", err)
	}
}

func TestServeDrainDeadline(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	run, c, _ := serveWS(t, f, newServeToolkit(t, gate), func(cfg *ServeConfig) { cfg.DrainTimeout = 20 * time.Millisecond })

	c.request("stuck", "gated", nil, "")
	gate.waitStarted(t)
	run.cancel()
	r := c.response()
	if r.id() != "stuck" || !strings.Contains(r.errorText(), "shutdown deadline passed") {
		t.Errorf("call cut by the drain deadline: answer %s, want a cancellation error", r.raw)
	}
	if code := c.waitClosed(); code != 1000 {
		t.Errorf("close code = %d, want 1000", code)
	}
	if err := run.wait(t); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

// A tool that ignores its context still gets its call answered when the
// drain deadline passes, before the close.
func TestServeDrainDeadlineToolIgnoringContext(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	tk := newServeToolkit(t, nil)
	started, unblock := make(chan struct{}), make(chan struct{})
	t.Cleanup(func() { close(unblock) })
	tk.Add(&Tool{Name: "stubborn", Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
		close(started)
		<-unblock // ignores ctx
		return "late", nil
	}})
	run, c, _ := serveWS(t, f, tk, func(cfg *ServeConfig) {
		cfg.DrainTimeout = 20 * time.Millisecond
		cfg.PongTimeout = 50 * time.Millisecond // bounds the grace after the deadline
	})
	c.request("s", "stubborn", nil, "")
	select {
	case <-started:
	case <-time.After(waitBound):
		t.Fatal("stubborn did not start")
	}
	run.cancel()
	if r := c.response(); r.id() != "s" || !strings.Contains(r.errorText(), "call to stubborn cancelled: the toolkit's shutdown deadline passed") {
		t.Errorf("answer = %s, want a cancellation at the drain deadline", r.raw)
	}
	if code := c.waitClosed(); code != 1000 {
		t.Errorf("close code = %d, want 1000", code)
	}
	if err := run.wait(t); err != nil {
		t.Errorf("Serve = %v, want nil", err)
	}
}

func TestServeRegistration(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	tk := newServeToolkit(t, nil)
	_, c, _ := serveWS(t, f, tk, nil)

	calls := f.registrations()
	tools := tk.Tools()
	var want []string
	want = append(want, "toolkit/verify_hash")
	for _, tool := range tools {
		want = append(want, "toolkit/verify_tool_hash "+tool.Name, "register_tool "+tool.Name)
	}
	if got := regPaths(calls); !slices.Equal(got, want) {
		t.Fatalf("registration calls:\n got %v\nwant %v", got, want)
	}

	hashes := make([]string, len(tools))
	for i, tool := range tools {
		hashes[i] = toolHash(tool)
	}
	kitHash := toolkitHash(hashes)
	if calls[0].Body["toolkit_hash"] != kitHash || calls[0].Body["app_name"] != "testkit" || calls[0].Body["api_key"] != serveTestKey {
		t.Errorf("verify_hash body = %v", calls[0].Body)
	}
	if got := keysOf(calls[0].Body); !slices.Equal(got, []string{"api_key", "app_name", "toolkit_hash"}) {
		t.Errorf("verify_hash body keys = %v", got)
	}
	if got := keysOf(calls[1].Body); !slices.Equal(got, []string{"api_key", "tool_hash", "tool_name"}) {
		t.Errorf("verify_tool_hash body keys = %v", got)
	}

	bodies := map[string]map[string]any{}
	for _, call := range calls {
		if call.Path == "/api/v1/register_tool" {
			bodies[call.Body["function_id"].(string)] = call.Body
		}
	}
	echo := bodies["echo"]
	if got := keysOf(echo); !slices.Equal(got, []string{"api_key", "app_name", "code_hash", "function_id", "metadata", "programming_language", "toolkit_hash"}) {
		t.Errorf("register_tool body keys = %v", got)
	}
	echoHash := toolHash(tk.tools["echo"].tool)
	if echo["programming_language"] != "Go" || echo["code_hash"] != echoHash || echo["toolkit_hash"] != kitHash || echo["api_key"] != serveTestKey || echo["app_name"] != "testkit" {
		t.Errorf("register_tool echo body = %v", echo)
	}
	meta := echo["metadata"].(map[string]any)
	wantMeta := map[string]any{
		"params":          []any{"name"},
		"required_params": []any{},
		"description":     "Says hello.",
		"auth_provider":   nil,
		"auth_type":       nil,
		"auth_with":       nil,
		"sample_response": "",
		"source_code":     "",
		"input_schema":    map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
		"output_schema":   map[string]any{"type": "object", "properties": map[string]any{"hello": map[string]any{"type": "string"}}},
	}
	if !reflect.DeepEqual(meta, wantMeta) {
		t.Errorf("echo metadata:\n got %v\nwant %v", meta, wantMeta)
	}
	who := bodies["whoami"]["metadata"].(map[string]any)
	if who["auth_provider"] != "hubspot" || who["auth_type"] != "OAuth2" || who["auth_with"] != "access_token" || who["needs_auth_token"] != true {
		t.Errorf("whoami auth metadata = %v, want hubspot/OAuth2/access_token and needs_auth_token true", who)
	}
	if _, ok := who["output_schema"]; ok {
		t.Errorf("whoami has no output schema, but metadata sends one: %v", who)
	}
	if !reflect.DeepEqual(who["input_schema"], map[string]any{"type": "object"}) {
		t.Errorf("whoami input_schema = %v, want the any-object schema", who["input_schema"])
	}

	// Reconnect with the server up to date: one verify_hash, nothing re-sent.
	c.drop()
	f.conn()
	if got := regPaths(f.registrations()); !slices.Equal(got, []string{"toolkit/verify_hash"}) {
		t.Errorf("after a reconnect, registration calls = %v, want only verify_hash", got)
	}

}

// TestServeRegistrationNeedsAuthToken: metadata.needs_auth_token is sent,
// as true, exactly for the tools that need a token, with or without an
// auth_provider; every other tool's metadata has no such key. The flag is
// part of the contract hash.
func TestServeRegistrationNeedsAuthToken(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	tk := NewToolkit("tokenkit", WithLogger(slog.New(slog.DiscardHandler)))
	run := func(context.Context, *Call, *atpimpl.Decoder) (any, error) { return nil, nil }
	err := tk.Add(
		&Tool{Name: "plain", Run: run},
		&Tool{Name: "token_only", NeedsAuthToken: true, Run: run},
		&Tool{Name: "oauth", AuthProvider: "github", AuthType: "OAuth2", AuthWith: "access_token", NeedsAuthToken: true, Run: run},
	)
	if err != nil {
		t.Fatal(err)
	}
	serveWS(t, f, tk, nil)

	metadata := map[string]map[string]any{}
	hashes := map[string]string{}
	for _, call := range f.registrations() {
		if call.Path == "/api/v1/register_tool" {
			name := call.Body["function_id"].(string)
			metadata[name] = call.Body["metadata"].(map[string]any)
			hashes[name] = call.Body["code_hash"].(string)
		}
	}
	want := map[string]bool{"plain": false, "token_only": true, "oauth": true}
	for name, needs := range want {
		md, ok := metadata[name]
		if !ok {
			t.Errorf("%s was not registered", name)
			continue
		}
		v, sent := md["needs_auth_token"]
		switch {
		case needs && v != true:
			t.Errorf("%s metadata.needs_auth_token = %v (sent %t), want true", name, v, sent)
		case !needs && sent:
			t.Errorf("%s metadata.needs_auth_token = %v, want the key left out", name, v)
		}
	}
	if md := metadata["token_only"]; md != nil && md["auth_provider"] != nil {
		t.Errorf("token_only auth_provider = %v, want null", md["auth_provider"])
	}
	tok := *tk.tools["token_only"].tool
	tok.NeedsAuthToken = false
	if hashes["token_only"] == toolHash(&tok) {
		t.Error("token_only's code_hash does not change with needs_auth_token")
	}
}

func TestServeReregistersAfterReconnect(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	tk := newServeToolkit(t, nil)
	_, c, _ := serveWS(t, f, tk, nil)
	n := len(tk.Tools())
	if got := countPrefix(regPaths(f.registrations()), "register_tool"); got != n {
		t.Fatalf("first registration sent %d tools, want %d", got, n)
	}

	f.forget() // the server lost its store and drops the toolkit
	c.drop()
	c = f.conn()
	if got := countPrefix(regPaths(f.registrations()), "register_tool"); got != n {
		t.Errorf("after the server forgot the toolkit, %d tools re-sent, want %d", got, n)
	}

	// The server knows every tool but "echo", and has a stale toolkit hash:
	// only echo is re-sent.
	f.set(func(f *fakeATP) { f.toolkitHash = "stale"; delete(f.toolHashes, "echo") })
	c.drop()
	f.conn()
	if got := regPaths(f.registrations()); countPrefix(got, "register_tool") != 1 || !slices.Contains(got, "register_tool echo") {
		t.Errorf("registration calls = %v, want only echo re-sent", got)
	}
}

func TestServeRegistersWithoutVerifyEndpoints(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.verifyMissing = true
	tk := newServeToolkit(t, nil)
	_, c, _ := serveWS(t, f, tk, nil)
	if got := countPrefix(regPaths(f.registrations()), "register_tool"); got != len(tk.Tools()) {
		t.Fatalf("first registration sent %d tools, want all %d", got, len(tk.Tools()))
	}
	// The server cannot say it is up to date; what it acknowledged in this
	// Serve is not re-sent.
	c.drop()
	f.conn()
	if got := countPrefix(regPaths(f.registrations()), "register_tool"); got != 0 {
		t.Errorf("after a reconnect to a server without verify endpoints, %d tools re-sent, want 0", got)
	}
}

func countPrefix(list []string, prefix string) int {
	n := 0
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func TestServeRegistrationRefused(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.registerReply = func(body map[string]any) (int, string) {
		return http.StatusBadRequest, `{"error": "app_name \"testkit\" belongs to another account"}`
	}
	logger, _ := newTestLogger()
	cfg := testConfig(f)
	cfg.Logger = logger
	err := newServeToolkit(t, nil).Serve(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "register_tool") || !strings.Contains(err.Error(), "400 Bad Request") || !strings.Contains(err.Error(), `belongs to another account`) {
		t.Fatalf("Serve = %v, want the refusal with the server's reason", err)
	}
	if got := countPrefix(regPaths(f.registrations()), "register_tool"); got != 1 {
		t.Errorf("refused registration was sent %d times, want 1 (no retry)", got)
	}

	// A server error is retried, up to MaxAttempts.
	f.registerReply = func(body map[string]any) (int, string) { return http.StatusServiceUnavailable, "busy" }
	cfg.MaxAttempts = 3
	err = newServeToolkit(t, nil).Serve(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "gave up after 3 failed attempts") || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Serve = %v, want to give up after 3 attempts quoting the 503", err)
	}
	if got := countPrefix(regPaths(f.registrations()), "register_tool"); got != 3 {
		t.Errorf("register_tool sent %d times, want 3", got)
	}
}

func TestServeHandshakeRefused(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.wsReject, f.wsRejectBody = http.StatusForbidden, "key revoked"
	cfg := testConfig(f)
	cfg.Logger, _ = newTestLogger()
	err := newServeToolkit(t, nil).Serve(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "403 Forbidden") || !strings.Contains(err.Error(), "key revoked") {
		t.Fatalf("Serve = %v, want the refused handshake with the server's reason", err)
	}
}

func TestServeBackoff(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.wsReject = http.StatusServiceUnavailable
	clk := newFakeClock()
	logger, logs := newTestLogger()
	var states []State
	var mu sync.Mutex
	run := startServe(t, newServeToolkit(t, nil), ServeConfig{
		URL: f.URL(), APIKey: f.key, Logger: logger,
		Backoff:     Backoff{Base: time.Second, Max: 4 * time.Second, Jitter: -1},
		MaxAttempts: 6,
		OnState:     func(s State) { mu.Lock(); states = append(states, s); mu.Unlock() },
		clock:       clk,
	})
	var got []time.Duration
	for range 5 {
		got = append(got, clk.sleep(t))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	if !slices.Equal(got, want) {
		t.Errorf("delays = %v, want %v", got, want)
	}
	err := run.wait(t)
	if err == nil || !strings.Contains(err.Error(), "gave up after 6 failed attempts") || !strings.Contains(err.Error(), "503 Service Unavailable") {
		t.Errorf("Serve = %v, want it to give up after 6 attempts, quoting the last cause", err)
	}
	for attempt := 2; attempt <= 6; attempt++ {
		line := fmt.Sprintf(`"attempt":%d,"in":%d,"reason":"websocket handshake: the server answered 503`, attempt, want[attempt-2])
		if !strings.Contains(logs.String(), line) {
			t.Errorf("log has no reconnect line for attempt %d with its delay and reason:\n%s", attempt, logs.String())
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(states) != 5 || states[0].Kind != StateReconnecting || states[0].In != time.Second || states[0].Attempt != 2 || states[0].Reason == nil {
		t.Errorf("states = %v, want 5 reconnecting states starting with attempt 2 in 1s", states)
	}
}

func TestServeBackoffResetsAfterHealthySession(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.wsReject = http.StatusServiceUnavailable
	clk := newFakeClock()
	logger, _ := newTestLogger()
	connected := make(chan struct{}, 4)
	startServe(t, newServeToolkit(t, nil), ServeConfig{
		URL: f.URL(), APIKey: f.key, Logger: logger,
		Backoff: Backoff{Base: time.Second, Jitter: -1, ResetAfter: 30 * time.Second},
		OnState: func(s State) {
			if s.Kind == StateConnected {
				connected <- struct{}{}
			}
		},
		clock: clk,
	})
	waitConnected := func() {
		t.Helper()
		select {
		case <-connected:
		case <-time.After(waitBound):
			t.Fatal("not connected")
		}
	}
	expect := func(want time.Duration) {
		t.Helper()
		if got := clk.sleep(t); got != want {
			t.Fatalf("delay = %s, want %s", got, want)
		}
	}
	accept := func(on bool) {
		f.set(func(f *fakeATP) {
			f.wsReject = 0
			if !on {
				f.wsReject = http.StatusServiceUnavailable
			}
		})
	}
	// Each Sleep blocks until taken, so the server is switched before the
	// delay is taken and the attempt after it starts.
	f.waitHandshakes(t, 1) // attempt 1 was refused
	accept(true)
	expect(time.Second) // attempt 2 connects
	c := f.conn()
	waitConnected()
	clk.Advance(31 * time.Second) // a healthy session...
	accept(false)
	c.drop()
	expect(time.Second)    // ...resets the backoff
	f.waitHandshakes(t, 3) // attempt 2 of the new run was refused
	accept(true)
	expect(2 * time.Second) // attempt 3 connects
	c = f.conn()
	waitConnected()
	c.drop()                // a session dropped at once is not healthy:
	expect(4 * time.Second) // the delays keep growing
}

func TestBackoffDelays(t *testing.T) {
	b, err := Backoff{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if b.Base != time.Second || b.Max != time.Minute || b.Jitter != 0.5 || b.ResetAfter != 30*time.Second {
		t.Errorf("defaults = %+v", b)
	}
	low, high := func() float64 { return 0 }, func() float64 { return 0.999999 }
	for n, full := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 6: 32 * time.Second, 7: time.Minute, 60: time.Minute} {
		if got := b.delay(n, low); got != full/2 {
			t.Errorf("equal jitter, attempt %d, lowest = %s, want %s", n, got, full/2)
		}
		if got := b.delay(n, high); got < full-time.Millisecond || got > full {
			t.Errorf("equal jitter, attempt %d, highest = %s, want about %s", n, got, full)
		}
	}
	b.Jitter = 1
	if got := b.delay(3, low); got != 0 {
		t.Errorf("full jitter lowest = %s, want 0", got)
	}
	for _, bad := range []Backoff{{Base: -1}, {Max: -1}, {Jitter: 1.5}, {Base: time.Minute, Max: time.Second}, {ResetAfter: -1}} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("Backoff %+v accepted", bad)
		}
	}
}

func TestServeKeepalive(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	_, c, _ := serveWS(t, f, newServeToolkit(t, nil), func(cfg *ServeConfig) { cfg.PingInterval = 5 * time.Millisecond })
	for range 2 {
		select {
		case <-c.pings:
		case <-time.After(waitBound):
			t.Fatal("no ping from the toolkit")
		}
	}

	// A server that never answers pings is dropped as dead.
	f2 := newFakeATP(t, serveTestKey)
	f2.deaf = true
	_, _, logs := serveWS(t, f2, newServeToolkit(t, nil), func(cfg *ServeConfig) {
		cfg.PingInterval = 5 * time.Millisecond
		cfg.PongTimeout = 20 * time.Millisecond
	})
	f2.set(func(f *fakeATP) { f.deaf = false })
	f2.conn() // the reconnect
	logs.waitFor(t, "connection presumed dead")
}

func TestServeStateAndStatus(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	states := make(chan State, 16)
	var status Status
	if status.Online() {
		t.Error("zero Status is online")
	}
	run, c, _ := serveWS(t, f, newServeToolkit(t, nil), func(cfg *ServeConfig) {
		cfg.Status = &status
		cfg.OnState = func(s State) { states <- s }
	})
	next := func(want StateKind) State {
		t.Helper()
		select {
		case s := <-states:
			if s.Kind != want {
				t.Fatalf("state = %v, want %v", s, want)
			}
			return s
		case <-time.After(waitBound):
			t.Fatalf("no %v state", want)
			return State{}
		}
	}
	next(StateConnected)
	if !status.Online() {
		t.Error("Status not online while connected")
	}
	c.drop()
	if s := next(StateDisconnected); s.Reason == nil {
		t.Error("disconnected without a reason")
	}
	if s := next(StateReconnecting); s.In <= 0 || s.Attempt != 2 {
		t.Errorf("reconnecting state = %v", s)
	}
	f.conn()
	next(StateConnected)
	run.stop(t)
	if s := next(StateDisconnected); !errors.Is(s.Reason, context.Canceled) {
		t.Errorf("final state = %v, want disconnected by cancel", s)
	}
	if status.Online() {
		t.Error("Status online after Serve returned")
	}
}

func TestServeConfigErrors(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	tk := newServeToolkit(t, nil)
	cases := []struct {
		name string
		cfg  ServeConfig
		want string
	}{
		{"no url", ServeConfig{APIKey: "k"}, "ServeConfig.URL is empty"},
		{"no key", ServeConfig{URL: f.URL()}, "ServeConfig.APIKey is empty"},
		{"scheme", ServeConfig{URL: "ftp://example.com", APIKey: "k"}, `scheme "ftp" not supported: expected http, https, ws or wss`},
		{"no scheme", ServeConfig{URL: "example.com/atp", APIKey: "k"}, "has no scheme"},
		{"no host", ServeConfig{URL: "https:///path", APIKey: "k"}, "has no host"},
		{"user info", ServeConfig{URL: "https://u:p@example.com", APIKey: "k"}, "must not hold a user name or password"},
		{"transport", ServeConfig{URL: f.URL(), APIKey: "k", Transport: "grpc"}, `Transport: expected "ws", "http" or "platools", got "grpc"`},
		{"in flight", ServeConfig{URL: f.URL(), APIKey: "k", MaxInFlight: -1}, "MaxInFlight: expected a positive value or 0 for the default, got -1"},
		{"read limit", ServeConfig{URL: f.URL(), APIKey: "k", ReadLimit: -5}, "ReadLimit: expected a positive value or 0 for the default, got -5"},
		{"backoff", ServeConfig{URL: f.URL(), APIKey: "k", Backoff: Backoff{Base: time.Minute, Max: time.Second}}, "ServeConfig.Backoff.Max (1s) is less than ServeConfig.Backoff.Base (1m0s)"},
		{"inbox wait", ServeConfig{URL: f.URL(), APIKey: "k", InboxWait: 1500 * time.Millisecond}, "InboxWait: expected whole seconds, got 1.5s"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tk.Serve(context.Background(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Serve = %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := NewToolkit("empty").Serve(context.Background(), ServeConfig{URL: f.URL(), APIKey: "k"}); err == nil || !strings.Contains(err.Error(), "no tools") {
		t.Errorf("Serve of an empty toolkit = %v, want an error", err)
	}
	bad := NewToolkit("bad")
	bad.Add(&Tool{Name: "x", InputSchema: json.RawMessage(`{`), Run: func(context.Context, *Call, *atpimpl.Decoder) (any, error) { return nil, nil }})
	if err := bad.Serve(context.Background(), ServeConfig{URL: f.URL(), APIKey: "k"}); err == nil || !strings.Contains(err.Error(), "tool x: InputSchema is not valid JSON") {
		t.Errorf("Serve with a broken schema = %v, want an error", err)
	}
	if calls := f.registrations(); len(calls) != 0 {
		t.Errorf("invalid configurations reached the server: %v", regPaths(calls))
	}
}

func TestServeURLs(t *testing.T) {
	cases := []struct {
		base, key             string
		ws, verify, inbox, re string
	}{
		{"https://api.chat-atp.com", "k1", "wss://api.chat-atp.com/ws/v1/atp/toolkit-client/k1/", "https://api.chat-atp.com/api/v1/toolkit/verify_hash",
			"https://api.chat-atp.com/api/v1/toolkit/k1/inbox?wait=25", "https://api.chat-atp.com/api/v1/toolkit/k1/inbox/respond"},
		{"http://127.0.0.1:7777/atp/?region=eu", "a/b c", "ws://127.0.0.1:7777/atp/ws/v1/atp/toolkit-client/a%2Fb%20c/?region=eu", "http://127.0.0.1:7777/atp/api/v1/toolkit/verify_hash?region=eu",
			"http://127.0.0.1:7777/atp/api/v1/toolkit/a%2Fb%20c/inbox?region=eu&wait=25", "http://127.0.0.1:7777/atp/api/v1/toolkit/a%2Fb%20c/inbox/respond?region=eu"},
		{"WSS://Host.example/x", "k", "wss://Host.example/x/ws/v1/atp/toolkit-client/k/", "https://Host.example/x/api/v1/toolkit/verify_hash",
			"https://Host.example/x/api/v1/toolkit/k/inbox?wait=25", "https://Host.example/x/api/v1/toolkit/k/inbox/respond"},
		{"ws://h:1", "k", "ws://h:1/ws/v1/atp/toolkit-client/k/", "http://h:1/api/v1/toolkit/verify_hash",
			"http://h:1/api/v1/toolkit/k/inbox?wait=25", "http://h:1/api/v1/toolkit/k/inbox/respond"},
	}
	for _, tc := range cases {
		ep, err := parseServeURL(tc.base, tc.key)
		if err != nil {
			t.Errorf("%s: %v", tc.base, err)
			continue
		}
		for _, c := range []struct{ got, want string }{
			{ep.ws(), tc.ws}, {ep.api("/api/v1/toolkit/verify_hash"), tc.verify}, {ep.inbox(25 * time.Second), tc.inbox}, {ep.inboxRespond(), tc.re},
		} {
			if c.got != c.want {
				t.Errorf("%s: got %s, want %s", tc.base, c.got, c.want)
			}
		}
	}
}

func TestServeUnderPathPrefix(t *testing.T) {
	f := newFakeATPAt(t, "key/with slash", "/atp")
	_, c, _ := serveWS(t, f, newServeToolkit(t, nil), nil)
	c.request("p", "echo", map[string]any{"name": "prefix"}, "")
	if r := c.response(); r.result()["hello"] != "prefix" {
		t.Errorf("answer = %s", r.raw)
	}
}

func TestServeInbox(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	clk := newFakeClock()
	logger, _ := newTestLogger()
	startServe(t, newServeToolkit(t, nil), ServeConfig{
		URL: f.URL(), APIKey: f.key, Transport: TransportHTTP, Logger: logger,
		PollInterval: 7 * time.Second, clock: clk,
	})
	// An old server answers {} at once: the poller pauses PollInterval.
	if d := clk.sleep(t); d != 7*time.Second {
		t.Errorf("pause after an empty poll = %s, want PollInterval 7s", d)
	}
	if q := <-f.polls; q.Get("wait") != "25" {
		t.Errorf("poll query = %v, want wait=25", q)
	}
	f.inboxQueue <- `{"request_id":"i1","tool_name":"echo","params":{"name":"inbox"},"auth_token":null}`
	f.inboxQueue <- `{"request_id":7,"tool_name":"nope","params":{}}`
	stopPausing := make(chan struct{})
	defer close(stopPausing)
	go func() { // take the poller's pauses from now on
		for {
			select {
			case <-clk.sleeps:
			case <-stopPausing:
				return
			}
		}
	}()
	got := map[string]map[string]any{}
	for range 2 {
		r := f.inboxResponse()
		got[fmt.Sprint(r["request_id"])] = r
	}
	ok := got["i1"]
	if keys := keysOf(ok); !slices.Equal(keys, []string{"latency_ms", "request_id", "response"}) {
		t.Errorf("inbox answer keys = %v, want request_id, response, latency_ms", keys)
	}
	if !reflect.DeepEqual(ok["response"], map[string]any{"hello": "inbox"}) {
		t.Errorf("inbox answer = %v", ok)
	}
	bad := got["7"]
	if bad["is_error"] != true || !strings.Contains(fmt.Sprint(bad["response"]), `unknown tool "nope"`) {
		t.Errorf("inbox answer to an unknown tool = %v", bad)
	}
}

func TestServeInboxLongPoll(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.longPoll = true
	f.respondFails = 1
	gate := newServeGate()
	clk := newFakeClock()
	logger, _ := newTestLogger()
	run := startServe(t, newServeToolkit(t, gate), ServeConfig{
		URL: f.URL(), APIKey: f.key, Transport: TransportHTTP, Logger: logger,
		InboxWait: 3 * time.Second, clock: clk,
		Backoff: Backoff{Base: time.Millisecond},
	})
	// Held empty polls follow each other without a pause: a Sleep would
	// block on the fake clock, which nobody reads yet.
	for range 3 {
		select {
		case q := <-f.polls:
			if q.Get("wait") != "3" {
				t.Errorf("poll query = %v, want wait=3", q)
			}
		case <-time.After(waitBound):
			t.Fatal("the poller stopped polling a long-poll server")
		}
	}
	// Calls run concurrently on this transport too.
	for i := range 4 {
		f.inboxQueue <- fmt.Sprintf(`{"request_id":"g%d","tool_name":"gated","params":{}}`, i)
	}
	for range 4 {
		gate.waitStarted(t)
	}
	close(gate.release)
	// The first answer is refused with a 503 and retried after a backoff.
	if d := clk.sleep(t); d <= 0 || d > time.Millisecond {
		t.Errorf("retry delay = %s, want the backoff base", d)
	}
	ids := map[string]bool{}
	for range 4 {
		r := f.inboxResponse()
		ids[fmt.Sprint(r["request_id"])] = true
		if r["is_error"] != nil {
			t.Errorf("answer = %v", r)
		}
	}
	if len(ids) != 4 {
		t.Errorf("answers for %v, want 4 distinct requests", ids)
	}
	if err := run.stop(t); err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestServeInboxDrainsOnCancel(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.longPoll = true
	gate := newServeGate()
	logger, _ := newTestLogger()
	run := startServe(t, newServeToolkit(t, gate), ServeConfig{
		URL: f.URL(), APIKey: f.key, Transport: TransportHTTP, Logger: logger,
	})
	f.inboxQueue <- `{"request_id":"d1","tool_name":"gated","params":{}}`
	gate.waitStarted(t)
	done := make(chan error, 1)
	go func() { done <- run.stop(t) }()
	gate.release <- struct{}{}
	if r := f.inboxResponse(); r["request_id"] != "d1" || r["is_error"] != nil {
		t.Errorf("drained call answer = %v", r)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

// A toolkit shutting down does not cut its held poll: it asks the server to
// release it and reads it to the end, so that a request handed over at that
// moment is run and answered, not lost (docs/extensions.md).
func TestServeInboxReadsItsLastPoll(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.longPoll, f.knowsRelease, f.holdForRelease = true, true, true
	logger, _ := newTestLogger()
	run := startServe(t, newServeToolkit(t, nil), ServeConfig{
		URL: f.URL(), APIKey: f.key, Transport: TransportHTTP, Logger: logger,
	})
	select {
	case <-f.polls:
	case <-time.After(waitBound):
		t.Fatal("no poll")
	}
	// The poll is held; the server hands it a request as the toolkit stops.
	f.inboxQueue <- `{"request_id":"last","tool_name":"echo","params":{"name":"z"}}`
	done := make(chan error, 1)
	go func() { done <- run.stop(t) }()
	if r := f.inboxResponse(); r["request_id"] != "last" || r["is_error"] != nil || fmt.Sprint(r["response"]) != "map[hello:z]" {
		t.Errorf("answer of the request in the last poll = %v", r)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve = %v", err)
	}
}

func TestServeTwoToolkitsInOneProcess(t *testing.T) {
	f1, f2 := newFakeATP(t, "key-one"), newFakeATP(t, "key-two")
	tk1, tk2 := newServeToolkit(t, nil), NewToolkit("other")
	tk2.Add(&Tool{Name: "echo", Run: func(context.Context, *Call, *atpimpl.Decoder) (any, error) { return "from two", nil }})
	run1, c1, _ := serveWS(t, f1, tk1, nil)
	_, c2, _ := serveWS(t, f2, tk2, nil)
	c1.request("a", "echo", map[string]any{"name": "one"}, "")
	c2.request("b", "echo", nil, "")
	if r := c1.response(); r.result()["hello"] != "one" {
		t.Errorf("toolkit one answered %s", r.raw)
	}
	if r := c2.response(); r.m["result"] != "from two" {
		t.Errorf("toolkit two answered %s", r.raw)
	}
	if err := run1.stop(t); err != nil {
		t.Fatal(err)
	}
	c2.request("c", "echo", nil, "")
	if r := c2.response(); r.id() != "c" {
		t.Errorf("toolkit two stopped with toolkit one: %s", r.raw)
	}
	if f2.registrations()[0].Body["app_name"] != "other" {
		t.Error("toolkit two registered under the wrong name")
	}
}

// TestServeNeverLogsTheKey runs Serve through failures and a normal session
// with a key that has characters URLs escape, and searches every log line
// and returned error for the key in any spelling.
func TestServeNeverLogsTheKey(t *testing.T) {
	const key = "sk-live-SECRET/key+1=="
	forms := []string{key, url.PathEscape(key), url.QueryEscape(key), "SECRET"}
	check := func(t *testing.T, what, text string) {
		t.Helper()
		for _, form := range forms {
			if strings.Contains(text, form) {
				t.Errorf("%s holds the key (%q):\n%s", what, form, text)
			}
		}
	}

	t.Run("inbox poll error quoting the URL", func(t *testing.T) {
		f := newFakeATP(t, key)
		f.inboxHangup = true
		logger, logs := newTestLogger()
		err := newServeToolkit(t, nil).Serve(context.Background(), ServeConfig{
			URL: f.URL(), APIKey: key, Transport: TransportHTTP, Logger: logger,
			MaxAttempts: 2, Backoff: Backoff{Base: time.Millisecond},
		})
		if err == nil || !strings.Contains(err.Error(), "/api/v1/toolkit/[REDACTED]/inbox") {
			t.Errorf("Serve = %v, want the failing inbox URL, redacted", err)
		}
		check(t, "error", fmt.Sprint(err))
		check(t, "log", logs.String())
		if !errors.Is(err, io.EOF) {
			t.Errorf("Serve = %v: redaction lost the cause, io.EOF", err)
		}
	})

	t.Run("refused registration echoing the key", func(t *testing.T) {
		f := newFakeATP(t, key)
		f.registerReply = func(map[string]any) (int, string) {
			return http.StatusUnauthorized, `{"error":"unknown api key sk-live-SECRET/key+1=="}`
		}
		logger, logs := newTestLogger()
		err := newServeToolkit(t, nil).Serve(context.Background(), ServeConfig{URL: f.URL(), APIKey: key, Logger: logger})
		if err == nil || !strings.Contains(err.Error(), "unknown api key [REDACTED]") {
			t.Errorf("Serve = %v, want the server's reason with the key redacted", err)
		}
		check(t, "error", fmt.Sprint(err))
		check(t, "log", logs.String())
	})

	t.Run("failing dial", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		logger, logs := newTestLogger()
		err = newServeToolkit(t, nil).Serve(context.Background(), ServeConfig{
			URL: "http://" + addr + "/" + url.PathEscape(key), APIKey: key, Logger: logger,
			MaxAttempts: 2, Backoff: Backoff{Base: time.Millisecond},
		})
		if err == nil || !strings.Contains(err.Error(), "/[REDACTED]/api/v1/toolkit/verify_hash") {
			t.Fatalf("Serve to a closed port = %v, want the failing URL with the key redacted", err)
		}
		check(t, "error", err.Error())
		check(t, "log", logs.String())
	})

	t.Run("normal session", func(t *testing.T) {
		f := newFakeATP(t, key)
		f.wsRejectBody = "bad key " + key
		logger, logs := newTestLogger()
		run := startServe(t, newServeToolkit(t, nil), ServeConfig{URL: f.URL(), APIKey: key, Logger: logger, Backoff: Backoff{Base: time.Millisecond}})
		c := f.conn()
		c.request("1", "echo", map[string]any{"name": key}, key)
		c.response()
		f.set(func(f *fakeATP) { f.wsReject = http.StatusBadGateway })
		c.send(`{"message_type":"` + key + `"}`)
		c.drop()
		logs.waitFor(t, "502 Bad Gateway")
		f.set(func(f *fakeATP) { f.wsReject = 0 })
		f.conn()
		if err := run.stop(t); err != nil {
			t.Fatal(err)
		}
		check(t, "log", logs.String())
		if !strings.Contains(logs.String(), "toolkit-client/[REDACTED]/") {
			t.Errorf("log does not show the redacted URL:\n%s", logs.String())
		}
	})
}

func TestRedactorKeepsErrorChain(t *testing.T) {
	r := newRedactor("s3cret")
	inner := &url.Error{Op: "Get", URL: "https://h/api/v1/toolkit/s3cret/inbox", Err: context.DeadlineExceeded}
	err := r.err(fmt.Errorf("inbox poll: %w", inner))
	if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "/toolkit/[REDACTED]/inbox") {
		t.Errorf("redacted error = %q", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Error("redaction lost the cause")
	}
	for e := error(err); e != nil; {
		if strings.Contains(e.Error(), "s3cret") {
			t.Errorf("an error in the chain holds the key: %q", e)
		}
		u, ok := e.(interface{ Unwrap() []error })
		if !ok {
			break
		}
		if list := u.Unwrap(); len(list) > 0 {
			e = list[0]
		} else {
			e = nil
		}
	}
	if plain := errors.New("no secret here"); r.err(plain) != plain {
		t.Error("an error without the key was rewrapped")
	}
}

func TestRequestIDInPrefix(t *testing.T) {
	cases := []struct {
		in   string
		flat bool
		want string
	}{
		{`{"message_type":"atp_tool_request","payload":{"request_id":"r1","params":{"x":"yyyy`, false, `"r1"`},
		{`{"payload":{"tool_name":"t","request_id":12,"params":{"x":"yy`, false, `12`},
		{`{"message_type":"other","payload":{"request_id":"r1"`, false, ``},
		{`{"message_type":"atp_tool_request","payload":{"params":{"x":"yyy`, false, ``},
		{`{"request_id":"flat","params":{"a":"bbbb`, true, `"flat"`},
		{`[1,2`, true, ``},
	}
	for _, tc := range cases {
		if got := string(requestIDInPrefix([]byte(tc.in), tc.flat)); got != tc.want {
			t.Errorf("requestIDInPrefix(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestToolHashCoversTheContract(t *testing.T) {
	base := func() *Tool {
		return &Tool{Name: "t", Description: "d", Params: []string{"a"}, InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"integer"}}}`)}
	}
	h := toolHash(base())
	if len(h) != 64 {
		t.Fatalf("hash %q is not hex sha256", h)
	}
	same := base()
	same.InputSchema = json.RawMessage("{ \"properties\": {\"a\": {\"type\": \"integer\"}},\n \"type\": \"object\" }")
	same.Run = func(context.Context, *Call, *atpimpl.Decoder) (any, error) { return nil, nil }
	if toolHash(same) != h {
		t.Error("reformatting the schema or changing Run changed the hash")
	}
	changes := map[string]func(*Tool){
		"description": func(t *Tool) { t.Description = "other" },
		"schema":      func(t *Tool) { t.InputSchema = json.RawMessage(`{"type":"object"}`) },
		"output":      func(t *Tool) { t.OutputSchema = json.RawMessage(`{"type":"string"}`) },
		"auth":        func(t *Tool) { t.AuthProvider = "github" },
		"token":       func(t *Tool) { t.NeedsAuthToken = true },
		"hints":       func(t *Tool) { t.Hints.ReadOnly = true },
		"timeout":     func(t *Tool) { t.Timeout = time.Second },
		"required":    func(t *Tool) { t.RequiredParams = []string{"a"} },
	}
	for name, change := range changes {
		tool := base()
		change(tool)
		if toolHash(tool) == h {
			t.Errorf("changing the %s did not change the hash", name)
		}
	}
	if toolkitHash([]string{"a", "b"}) == toolkitHash([]string{"b", "a"}) || toolkitHash([]string{"ab"}) == toolkitHash([]string{"a", "b"}) {
		t.Error("toolkit hash ignores order or boundaries")
	}
}

// No tool runs on the goroutine that reads the connection: while a call is
// blocked (on a channel the test holds, as a tool that takes seconds would
// be), other calls, to the same tool and to others, are answered and pings
// get their pongs. Many fast calls of the tool before (which once let it run
// on the read loop) change nothing.
func TestServeSlowCallNeverDelaysOthers(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	tk := newServeToolkit(t, gate)
	err := tk.Add(&Tool{Name: "sometimes", Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
		name := readName(d)
		if d.Failed() {
			return nil, nil
		}
		if name == "wait" {
			gate.started <- call.RequestID
			select {
			case <-gate.release:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return name, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, c, _ := serveWS(t, f, tk, nil)

	for i := range 20 {
		c.request(fmt.Sprintf("fast%d", i), "sometimes", map[string]any{"name": "x"}, "")
		if r := c.response(); r.isError() {
			t.Fatalf("fast call: %s", r.raw)
		}
	}
	c.request("slow", "sometimes", map[string]any{"name": "wait"}, "")
	gate.waitStarted(t)
	for i := range 3 {
		c.ping(fmt.Sprint("while blocked ", i))
		c.request(fmt.Sprint("same", i), "sometimes", map[string]any{"name": "y"}, "")
		if r := c.response(); r.id() != fmt.Sprint("same", i) || r.isError() {
			t.Fatalf("call to the same tool while another is blocked: %s", r.raw)
		}
		c.request(fmt.Sprint("other", i), "echo", map[string]any{"name": "z"}, "")
		if r := c.response(); r.id() != fmt.Sprint("other", i) || r.isError() {
			t.Fatalf("call to another tool while one is blocked: %s", r.raw)
		}
	}
	gate.release <- struct{}{}
	if r := c.response(); r.id() != "slow" || r.isError() {
		t.Fatalf("slow call: %s", r.raw)
	}
}

// With every call slot held by a blocked call, requests wait for a slot
// without holding up the reading: pings get their pongs, a request that
// runs nothing is answered, and each waiting call runs as a slot frees.
func TestServeFullSlotsKeepReading(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	_, c, _ := serveWS(t, f, newServeToolkit(t, gate), func(cfg *ServeConfig) { cfg.MaxInFlight = 1 })

	c.request("held", "gated", nil, "")
	gate.waitStarted(t)
	c.request("waiting", "echo", map[string]any{"name": "w"}, "")
	c.ping("slots full")
	c.request("probe", "nope", nil, "")
	if r := c.response(); r.id() != "probe" {
		t.Fatalf("first answer = %s, want the unknown-tool probe", r.raw)
	}
	select {
	case b := <-c.in:
		t.Fatalf("answer while the only slot is held: %s", b)
	default:
	}
	gate.release <- struct{}{}
	got := c.responses(2)
	if r := got["held"]; r.isError() {
		t.Errorf("held call: %s", r.raw)
	}
	if r := got["waiting"]; r.isError() || r.result()["hello"] != "w" {
		t.Errorf("waiting call: %s", r.raw)
	}
}

func TestCallSlots(t *testing.T) {
	c := callSlots{max: 2}
	var ran []string
	job := func(name string) func() { return func() { ran = append(ran, name) } }
	if !c.start(job("a")) || !c.start(job("b")) {
		t.Fatal("a free slot was refused")
	}
	if c.start(job("c")) || c.start(job("d")) {
		t.Fatal("a third call started with MaxInFlight 2")
	}
	// The goroutine that frees a slot runs the waiting calls, in order.
	c.run(job("a"))
	if want := []string{"a", "c", "d"}; !slices.Equal(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
	if c.running != 1 || len(c.waiting) != 0 {
		t.Errorf("running %d, waiting %d; want 1 and 0", c.running, len(c.waiting))
	}
	c.run(job("b"))
	if c.running != 0 {
		t.Errorf("running %d after every call finished", c.running)
	}

	// After stop, a waiting call runs at once (it only answers).
	c = callSlots{max: 1}
	c.start(func() {})
	done := make(chan struct{})
	c.start(func() { close(done) })
	c.stop()
	select {
	case <-done:
	case <-time.After(waitBound):
		t.Fatal("a waiting call did not run at stop")
	}
	later := make(chan struct{})
	c.start(func() { close(later) })
	select {
	case <-later:
	case <-time.After(waitBound):
		t.Fatal("a call after stop did not run")
	}
}

// stateRecorder collects the states Serve reports.
type stateRecorder chan State

func (r stateRecorder) next(t *testing.T, want StateKind) State {
	t.Helper()
	select {
	case s := <-r:
		if s.Kind != want {
			t.Fatalf("state = %v, want %v", s, want)
		}
		return s
	case <-time.After(waitBound):
		t.Fatalf("no %v state within %s", want, waitBound)
		return State{}
	}
}

// none checks that no state was reported. The caller first makes a round
// trip (a ping) so that the toolkit has handled every frame sent before.
func (r stateRecorder) none(t *testing.T) {
	t.Helper()
	select {
	case s := <-r:
		t.Fatalf("state %v reported, want none yet", s)
	default:
	}
}

// The toolkit is connected when calls can reach it: the server's greeting
// says so (atp serve greets once the connection is routable), not the
// WebSocket handshake.
func TestServeConnectedOnGreeting(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.noGreeting = true
	states := make(stateRecorder, 16)
	var status Status
	clk := newFakeClock()
	_, c, logs := serveWS(t, f, newServeToolkit(t, nil), func(cfg *ServeConfig) {
		cfg.OnState = func(s State) { states <- s }
		cfg.Status = &status
		cfg.clock = clk
	})
	clk.waitArmed(t, connectGrace)
	c.ping("before the greeting")
	states.none(t)
	if status.Online() {
		t.Fatal("Status online before the greeting")
	}
	c.send(`{"message_type":"atp_client_connected","payload":{"message":"hello"}}`)
	states.next(t, StateConnected)
	if !status.Online() {
		t.Error("Status not online after the greeting")
	}
	logs.waitFor(t, `"on":"the server's greeting"`)
	// A second greeting, or the grace passing, reports nothing new.
	c.send(`{"message_type":"atp_client_connected","payload":{"message":"again"}}`)
	clk.Advance(connectGrace)
	c.ping("after")
	states.none(t)
}

// A server that never greets: the first tool request shows that calls
// reach the toolkit, and is answered.
func TestServeConnectedOnFirstRequestWithoutGreeting(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.noGreeting = true
	states := make(stateRecorder, 16)
	clk := newFakeClock()
	_, c, _ := serveWS(t, f, newServeToolkit(t, nil), func(cfg *ServeConfig) {
		cfg.OnState = func(s State) { states <- s }
		cfg.clock = clk
	})
	c.ping("before the request")
	states.none(t)
	c.request("r1", "echo", map[string]any{"name": "a"}, "")
	states.next(t, StateConnected)
	if r := c.response(); r.isError() {
		t.Fatalf("first call: %s", r.raw)
	}
}

// A server that never greets and sends no call: the session counts as
// connected once the grace period has passed on the toolkit's clock.
func TestServeConnectedAfterGraceWithoutGreeting(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.noGreeting = true
	states := make(stateRecorder, 16)
	clk := newFakeClock()
	run, c, logs := serveWS(t, f, newServeToolkit(t, nil), func(cfg *ServeConfig) {
		cfg.OnState = func(s State) { states <- s }
		cfg.clock = clk
	})
	clk.waitArmed(t, connectGrace)
	clk.Advance(connectGrace - time.Millisecond)
	c.ping("almost")
	states.none(t)
	clk.Advance(time.Millisecond)
	states.next(t, StateConnected)
	logs.waitFor(t, "no greeting from the server within 1s")
	run.cancel()
	states.next(t, StateDisconnected)
}

// A session that ends before it was ever routable reports neither
// connected nor disconnected, even if its grace timer would fire later.
func TestServeNeverConnectedSessionReportsNothing(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	f.noGreeting = true
	states := make(stateRecorder, 16)
	clk := newFakeClock()
	startServe(t, newServeToolkit(t, nil), ServeConfig{
		URL: f.URL(), APIKey: f.key, clock: clk,
		Backoff: Backoff{Base: time.Second, Jitter: -1},
		OnState: func(s State) { states <- s },
	})
	c := f.conn()
	clk.waitArmed(t, connectGrace)
	c.drop()
	if d := clk.sleep(t); d != time.Second { // the reconnect backoff: the session is over
		t.Fatalf("backoff = %s, want 1s", d)
	}
	s := states.next(t, StateReconnecting)
	if s.Attempt != 2 {
		t.Errorf("reconnecting = %v, want attempt 2 (the dropped session was never connected)", s)
	}
	// Sleep advanced the clock past the old grace timer, which was stopped.
	c = f.conn()
	clk.waitArmed(t, connectGrace)
	c.ping("after the reconnect")
	states.none(t)
}

// Over the WebSocket, params that are not UTF-8 are answered with a problem
// at their path and never reach the tool, and a result holding such bytes
// goes out as UTF-8 (RFC 6455 requires it of a text frame).
func TestServeUTF8(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	tk := newServeToolkit(t, nil)
	ran := make(chan struct{}, 1)
	err := tk.Add(&Tool{Name: "rawbytes", Run: func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error) {
		readName(d)
		if d.Failed() {
			return nil, nil
		}
		ran <- struct{}{}
		return json.RawMessage("{\"text\":\"caf\xe9\"}"), nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	_, c, _ := serveWS(t, f, tk, nil)

	c.send("{\"message_type\":\"atp_tool_request\",\"payload\":{\"request_id\":\"bad\",\"tool_name\":\"rawbytes\",\"params\":{\"name\":\"\xff\xfe\"}}}")
	r := c.response()
	problems, _ := r.result()["problems"].([]any)
	if !r.isError() || len(problems) != 1 || fmt.Sprint(problems[0]) != "map[message:invalid UTF-8 in string path:name]" {
		t.Fatalf("params with invalid UTF-8: %s", r.raw)
	}
	select {
	case <-ran:
		t.Fatal("the tool ran with params that are not UTF-8")
	default:
	}

	c.request("good", "rawbytes", map[string]any{"name": "x"}, "")
	r = c.response()
	if r.isError() || !utf8.Valid(r.raw) || r.result()["text"] != "caf\uFFFD" {
		t.Fatalf("result with invalid UTF-8: %q", r.raw)
	}
}

// The session's goroutines (reader, callers, idle ones) all end with Serve.
func TestServeLeavesNoGoroutines(t *testing.T) {
	f := newFakeATP(t, serveTestKey)
	gate := newServeGate()
	before := goruntime.NumGoroutine()
	tr := &http.Transport{} // its idle registration connections are closed below
	run, c, _ := serveWS(t, f, newServeToolkit(t, gate), func(cfg *ServeConfig) { cfg.HTTPClient = &http.Client{Transport: tr} })
	for i := range 20 {
		c.request(fmt.Sprint("g", i), "gated", nil, "")
	}
	for range 20 {
		gate.waitStarted(t)
	}
	close(gate.release)
	c.responses(20)
	for i := range 20 {
		c.request(fmt.Sprint("e", i), "echo", map[string]any{"name": "x"}, "")
	}
	c.responses(20)
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	c.ws.Close()
	tr.CloseIdleConnections()
	deadline := time.Now().Add(waitBound)
	for goruntime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after Serve returned, %d before:\n%s", goruntime.NumGoroutine(), before, buf[:goruntime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond) // bounded polling of an observable
	}
}
