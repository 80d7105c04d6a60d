package server

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server/store"
)

// needsTokenMessage is how the server refuses a call to a tool registered
// with needs_auth_token and no auth_provider that brings no auth_token.
const needsTokenMessage = "tool me needs the end user's auth token: send auth_token (the tool names no auth_provider"

// A Go tool that takes a runtime.AuthToken but has no auth provider: the
// runtime registers it with needs_auth_token, the server refuses calls
// without a token before routing them (external_user_id cannot supply one),
// routes calls with one, and still knows the tool needs one after a
// restart.
func TestNeedsAuthTokenGoToolkit(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "atp.db")
	srv, err := New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs := newHTTPTest(srv)
	_, tkKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "tk"})
	_, llmKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "llm"})
	e := &testEnv{t: t, srv: srv, base: hs.URL, wsBase: "ws" + strings.TrimPrefix(hs.URL, "http"), tkKey: tkKey, llmKey: llmKey}

	var runs atomic.Int32
	tk := runtime.NewToolkit("profile", runtime.WithLogger(discardLogger()))
	err = tk.Add(
		&runtime.Tool{
			Name: "me", Description: "The caller's profile.", InputSchema: json.RawMessage(`{"type":"object"}`),
			NeedsAuthToken: true,
			Run: func(_ context.Context, call *runtime.Call, _ *atpimpl.Decoder) (any, error) {
				runs.Add(1)
				return map[string]string{"token": string(call.AuthToken)}, nil
			},
		},
		&runtime.Tool{
			Name: "ping", Description: "Needs no token.", InputSchema: json.RawMessage(`{"type":"object"}`),
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return "pong", nil },
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- tk.Serve(serveCtx, runtime.ServeConfig{URL: hs.URL, APIKey: tkKey, Transport: runtime.TransportWS, Logger: discardLogger()})
	}()
	ref := toolkitRef{"default", "profile"}
	eventually(t, "the toolkit to come online", func() bool {
		k := srv.registry.get(ref)
		ws, _ := srv.hub.online(ref)
		return ws > 0 && k != nil && k.size() == 2
	})
	if k := srv.registry.get(ref); !k.tool("me").NeedsAuthToken || k.tool("ping").NeedsAuthToken {
		t.Fatalf("registered: me needs a token = %v, ping = %v; want true, false", k.tool("me").NeedsAuthToken, k.tool("ping").NeedsAuthToken)
	}

	llm := e.dialPyLLM(llmKey)
	refused := func(when string, edit func(req map[string]any)) {
		t.Helper()
		req := pyTaskRequest(llmKey, "profile", 0, "me", map[string]any{})
		if edit != nil {
			edit(req)
		}
		m := roundTrip(t, llm, req)
		checkTaskResponse(t, m, req, "error")
		if msg, _ := m["message"].(string); !strings.HasPrefix(msg, needsTokenMessage) {
			t.Fatalf("%s: message %q, want it to start with %q", when, msg, needsTokenMessage)
		}
	}
	refused("no token", nil)
	refused("external_user_id only", func(req map[string]any) { req["external_user_id"] = "u1" })
	refused("external_user_id in payload", func(req map[string]any) { req["payload"].(map[string]any)["external_user_id"] = "u1" })

	req := pyTaskRequest(llmKey, "profile", 1, "me", map[string]any{})
	req["payload"].(map[string]any)["auth_token"] = "tok-1"
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got.(map[string]any)["token"] != "tok-1" {
		t.Fatalf("call with a token: result %v, want the token to reach the tool", got)
	}
	req = pyTaskRequest(llmKey, "profile", 2, "ping", map[string]any{})
	if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "pong" {
		t.Fatalf("ping without a token = %v, want pong", got)
	}
	if n := runs.Load(); n != 1 {
		t.Fatalf("me ran %d times, want once (only the call with a token)", n)
	}

	stopServe()
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	llm.Close()
	hs.Close()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart, with the toolkit gone: the flag comes from the store,
	// so a call without a token is refused for what it lacks, not because
	// the toolkit is offline.
	srv, err = New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	hs = newHTTPTest(srv)
	defer func() { hs.Close(); srv.Close() }()
	e = &testEnv{t: t, srv: srv, base: hs.URL, wsBase: "ws" + strings.TrimPrefix(hs.URL, "http"), tkKey: tkKey, llmKey: llmKey}
	if k := srv.registry.get(ref); k == nil || !k.tool("me").NeedsAuthToken || k.tool("ping").NeedsAuthToken {
		t.Fatalf("after restart the registry has %+v; want me needing a token and ping not", k)
	}
	llm = e.dialPyLLM(llmKey)
	refused("no token, after restart", nil)
	req = pyTaskRequest(llmKey, "profile", 3, "me", map[string]any{})
	req["auth_token"] = "tok-2"
	m := roundTrip(t, llm, req)
	if msg, _ := m["message"].(string); m["status"] != "error" || !strings.Contains(msg, "is offline") {
		t.Fatalf("call with a token to the stopped toolkit = %v, want the offline error", m)
	}
}

// A toolkit that registers a tool with needs_auth_token never sees a call
// that brings no token: the first request it gets is the one with a token.
// A later registration without the flag (as the Python SDK sends) clears
// it. A flag that is not a boolean is refused, naming the field.
func TestNeedsAuthTokenNeverRouted(t *testing.T) {
	e := newEnv(t, Config{})
	register := func(metadata map[string]any) (int, map[string]any) {
		t.Helper()
		md := map[string]any{"params": []string{}, "required_params": []string{}, "description": "d",
			"auth_provider": nil, "auth_type": nil, "auth_with": nil, "sample_response": "", "source_code": "",
			"input_schema": map[string]any{"type": "object"}}
		for k, v := range metadata {
			md[k] = v
		}
		return e.post("/api/v1/register_tool", map[string]any{
			"function_id": "me", "api_key": e.tkKey, "app_name": "profile", "programming_language": "Go",
			"code_hash": "h", "toolkit_hash": "k", "metadata": md,
		})
	}
	if status, m := register(map[string]any{"needs_auth_token": "yes"}); status != http.StatusBadRequest ||
		!strings.Contains(m["error"].(string), "metadata.needs_auth_token: expected boolean, got string") {
		t.Fatalf("register with needs_auth_token \"yes\" = %d %v, want 400 naming the field", status, m)
	}
	if status, m := register(map[string]any{"needs_auth_token": true}); status != http.StatusOK {
		t.Fatalf("register_tool: %d %v", status, m)
	}
	ws := e.dialPyToolkit(e.tkKey)
	got := make(chan pyToolRequest, 16)
	go func() {
		for {
			var req pyToolRequest
			if err := ws.ReadJSON(&req); err != nil {
				return
			}
			got <- req
			ws.WriteJSON(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": map[string]any{"token": req.Payload.AuthToken}})
		}
	}()
	llm := e.dialPyLLM(e.llmKey)
	for i, extra := range []map[string]any{nil, {"external_user_id": "u1"}} {
		req := pyTaskRequest(e.llmKey, "profile", i, "me", map[string]any{})
		for k, v := range extra {
			req[k] = v
		}
		m := roundTrip(t, llm, req)
		if msg, _ := m["message"].(string); m["status"] != "error" || !strings.HasPrefix(msg, needsTokenMessage) {
			t.Fatalf("call %d without a token = %v, want the needs-a-token error", i, m)
		}
	}
	req := pyTaskRequest(e.llmKey, "profile", 2, "me", map[string]any{})
	req["auth_token"] = "explicit"
	checkTaskResponse(t, roundTrip(t, llm, req), req, "success")
	select {
	case r := <-got:
		if r.Payload.AuthToken == nil || *r.Payload.AuthToken != "explicit" {
			t.Fatalf("the toolkit's first request carried %v, want the explicit token: a refused call reached it", r.Payload.AuthToken)
		}
	default:
		t.Fatal("the toolkit got no request")
	}
	select {
	case r := <-got:
		t.Fatalf("the toolkit got another request: %+v", r)
	default:
	}

	// Re-registered without the flag: calls without a token are routed.
	if status, m := register(nil); status != http.StatusOK {
		t.Fatalf("register_tool without the flag: %d %v", status, m)
	}
	req = pyTaskRequest(e.llmKey, "profile", 3, "me", map[string]any{})
	res := checkTaskResponse(t, roundTrip(t, llm, req), req, "success")
	if tok := res.(map[string]any)["token"]; tok != nil {
		t.Fatalf("routed call without a token: the toolkit got token %v, want none", tok)
	}
}
