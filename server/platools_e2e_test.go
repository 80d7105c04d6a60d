package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server/store"
)

// platoolsToolkit is goToolkit plus a tool that acts as the end user and
// one that panics.
func platoolsToolkit(t *testing.T) *runtime.Toolkit {
	tk := goToolkit(t)
	err := tk.Add(
		&runtime.Tool{
			Name: "whoami", Description: "Who the call is for.", NeedsAuthToken: true, InputSchema: json.RawMessage(`{"type":"object"}`),
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				p := call.Platos
				return map[string]any{"user": p.UserID, "context": p.Context, "entity": p.EntityID, "environment": p.EnvironmentID,
					"organization": p.OrganizationID, "token_ok": string(call.AuthToken) == "tok-42", "transport": call.Transport}, nil
			},
		},
		&runtime.Tool{
			Name: "boom", Description: "Panics.", InputSchema: json.RawMessage(`{"type":"object"}`),
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { panic("kaboom") },
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// servePlatoolsToolkit serves tk over the Platools wire to e and waits
// until it is connected; it returns Serve's error channel.
func (e *testEnv) servePlatoolsToolkit(ctx context.Context, tk *runtime.Toolkit, query string) <-chan error {
	e.t.Helper()
	connected := make(chan struct{})
	served := make(chan error, 1)
	var once bool
	go func() {
		served <- tk.Serve(ctx, runtime.ServeConfig{
			URL: e.base + "/" + query, APIKey: e.tkKey, Transport: runtime.TransportPlatools, Logger: discardLogger(),
			PingInterval: 50 * time.Millisecond,
			OnState: func(s runtime.State) {
				if s.Kind == runtime.StateConnected && !once {
					once = true
					close(connected)
				}
			},
		})
	}()
	select {
	case <-connected:
	case err := <-served:
		e.t.Fatalf("Serve ended before connecting: %v", err)
	case <-time.After(10 * time.Second):
		e.t.Fatal("the toolkit did not connect")
	}
	return served
}

// Our runtime's TransportPlatools against our server: the project's own
// code on both ends of the Platools wire, called by llmclient.
func TestEndToEndPlatools(t *testing.T) {
	e := newEnv(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	served := e.servePlatoolsToolkit(ctx, platoolsToolkit(t), "?entity=hello&env=prod")
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()

	for _, protocol := range []llmclient.Transport{llmclient.TransportHTTP, llmclient.TransportWS} {
		t.Run(string(protocol), func(t *testing.T) {
			c, err := llmclient.New(e.llmKey, llmclient.WithBaseURL(e.base), llmclient.WithTransport(protocol))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			tc, err := c.GetToolkitContext(ctx, "hello", "anthropic", "hi")
			if err != nil || !strings.Contains(string(tc.Tools), `"name":"whoami"`) || !strings.Contains(string(tc.Tools), `"name":"greet"`) {
				t.Fatalf("context: %v, %s", err, tc.Tools)
			}
			res, err := c.Call(ctx, "hello", "greet", json.RawMessage(`{"name":"Go"}`))
			if err != nil || res.Failed() || string(res.Value) != `"Hello, Go"` {
				t.Fatalf("greet: %+v, %v", res, err)
			}
			res, err = c.Call(ctx, "hello", "whoami", nil, llmclient.WithAuthToken("tok-42"), llmclient.WithExternalUserID("u-42"))
			var who map[string]any
			if err != nil || res.Failed() || json.Unmarshal(res.Value, &who) != nil {
				t.Fatalf("whoami: %+v, %v", res, err)
			}
			ctxJSON, _ := json.Marshal(who["context"])
			if who["user"] != "u-42" || string(ctxJSON) != `{"user.id":"u-42"}` || who["entity"] != "hello" || who["environment"] != "prod" ||
				who["organization"] != store.DefaultOwner || who["token_ok"] != true || who["transport"] != "platools" {
				t.Errorf("whoami = %v", who)
			}
			res, err = c.Call(ctx, "hello", "unlucky", nil)
			if err != nil || res.Error != "no luck" {
				t.Errorf("unlucky: %+v, %v", res, err)
			}
			res, err = c.Call(ctx, "hello", "boom", nil)
			if err != nil || res.Error != "tool boom failed: internal error (panic: kaboom)" || strings.Contains(string(res.Value), "goroutine") {
				t.Errorf("boom: %+v, %v", res, err)
			}
			res, err = c.Call(ctx, "hello", "greet", json.RawMessage(`{"name":""}`))
			if err != nil || !strings.HasPrefix(res.Error, "invalid params for greet: name: ") || len(res.Problems) != 1 {
				t.Errorf("greet with an empty name: %+v, %v", res, err)
			}
		})
	}
	// The runtime's heartbeats reach /metrics: unlucky failed each of its
	// two calls, which is degraded (down takes five failures in a row).
	eventually(t, "the toolkit's reported health in /metrics", func() bool {
		_, body := e.get("/metrics")
		return strings.Contains(string(body), `atp_platools_tool_up{owner="default",toolkit="hello",environment="prod",tool="unlucky",status="degraded"} 1`) &&
			strings.Contains(string(body), `atp_platools_tool_errors_1h{owner="default",toolkit="hello",environment="prod",tool="boom"} 2`)
	})
}

// A second instance of the toolkit supersedes the first, which stops
// without fighting back; a revoked key stops the second with a clear error.
func TestEndToEndPlatoolsSupersedeAndRevoke(t *testing.T) {
	e := newEnv(t, Config{RevocationCheckInterval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := e.servePlatoolsToolkit(ctx, platoolsToolkit(t), "?entity=hello")
	second := e.servePlatoolsToolkit(ctx, platoolsToolkit(t), "?entity=hello")
	select {
	case err := <-first:
		if !errors.Is(err, runtime.ErrSuperseded) {
			t.Fatalf("first Serve = %v; want ErrSuperseded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the superseded toolkit kept serving")
	}
	if ws, _ := e.srv.hub.online(toolkitRef{store.DefaultOwner, "hello"}); ws != 1 {
		t.Errorf("%d connections, want the second one only", ws)
	}
	if err := e.srv.RevokeKey(ctx, keyID(t, e.tkKey)); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-second:
		if err == nil || !strings.Contains(err.Error(), "close 4001: secret rotated; reconnect with new secret") || strings.Contains(err.Error(), e.tkKey) {
			t.Fatalf("second Serve = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the toolkit with a revoked key kept serving")
	}
}
