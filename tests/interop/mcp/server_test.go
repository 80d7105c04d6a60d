package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

func TestNewServerErrors(t *testing.T) {
	tk := testKit(t, "http://127.0.0.1:0", newProbe())
	for _, c := range []struct {
		name string
		tk   *runtime.Toolkit
		opts []mcp.Option
		want []string
	}{
		{"nil toolkit", nil, nil, []string{"toolkit is nil"}},
		{"empty bearer token", tk, []mcp.Option{mcp.WithBearerToken("")}, []string{"WithBearerToken: token is empty"}},
		{"bad header name", tk, []mcp.Option{mcp.WithAuthTokenHeader("X Token")}, []string{`WithAuthTokenHeader: "X Token" is not a valid HTTP header name`}},
		{"Authorization twice", tk, []mcp.Option{mcp.WithBearerToken("s"), mcp.WithAuthTokenHeader("authorization")}, []string{"conflicts with WithBearerToken"}},
		{"all at once", tk, []mcp.Option{mcp.WithBearerToken(""), mcp.WithMaxBodyBytes(-1)}, []string{"WithBearerToken", "WithMaxBodyBytes"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			srv, err := mcp.NewServer(c.tk, c.opts...)
			if err == nil || srv != nil {
				t.Fatalf("got %v, %v; want an error", srv, err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestNewServerRejectsSchemaMCPCannotTake(t *testing.T) {
	tk := runtime.NewToolkit("bad")
	run := func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return nil, nil }
	err := tk.Add(
		&runtime.Tool{Name: "scalar", InputSchema: json.RawMessage(`{"type":"string"}`), Run: run},
		&runtime.Tool{Name: "broken", InputSchema: json.RawMessage(`{"type":`), Run: run},
		&runtime.Tool{Name: "fine", InputSchema: json.RawMessage(emptyObject), Run: run},
	)
	if err != nil {
		t.Fatal(err)
	}
	_, err = mcp.NewServer(tk)
	if err == nil {
		t.Fatal("want an error")
	}
	for _, w := range []string{`tool "scalar"`, `tool parameters: expected an object schema, got type "string"`, `tool "broken"`, "not valid JSON"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	if strings.Contains(err.Error(), "fine") {
		t.Errorf("error %q blames a valid tool", err)
	}
}

func TestServerInfo(t *testing.T) {
	tk := testKit(t, "http://127.0.0.1:0", newProbe())
	srv, err := mcp.NewServer(tk, mcp.WithName("crm-dev"), mcp.WithVersion("1.2.3"), mcp.WithInstructions("Call get_contacts first."), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := connectStdio(t, srv, legacy)
	res := cs.InitializeResult()
	if res.ServerInfo.Name != "crm-dev" || res.ServerInfo.Version != "1.2.3" || res.Instructions != "Call get_contacts first." {
		t.Errorf("initialize result: %+v, server %+v", res, res.ServerInfo)
	}
	if c := res.Capabilities; c.Tools == nil || !c.Tools.ListChanged || c.Logging != nil || c.Resources != nil || c.Prompts != nil {
		t.Errorf("capabilities %+v (tools %+v), want tools with listChanged and nothing else", c, c.Tools)
	}

	srv, err = mcp.NewServer(tk, mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ = connectStdio(t, srv, legacy)
	if info := cs.InitializeResult().ServerInfo; info.Name != "testkit" || info.Version == "" {
		t.Errorf("default server info %+v, want the toolkit's name and a version", info)
	}
}

func TestEmptyToolkitListsNoTools(t *testing.T) {
	srv, err := mcp.NewServer(runtime.NewToolkit("empty"), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := connectStdio(t, srv, legacy)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil || len(res.Tools) != 0 {
		t.Errorf("tools/list: %v, %v", res, err)
	}
}

func TestMissingAuthToken(t *testing.T) {
	args := map[string]any{"name": "Acme"}
	t.Run("stdio without a token", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, standIn(t).URL, newProbe()), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		cs, _ := connectStdio(t, srv, legacy)
		got := callText(t, cs, "create_company", args, true)
		want := "tool create_company needs the end user's auth token and the call has none: missing auth token; " +
			"this server has no token for the end user (atp mcp reads it from ATP_AUTH_TOKEN)"
		if got != want {
			t.Errorf("got  %q\nwant %q", got, want)
		}
	})
	t.Run("http without the header", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, standIn(t).URL, newProbe()), mcp.WithAuthTokenHeader(tokenHeader), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		cs := connectHTTP(t, srv, legacy, nil)
		got := callText(t, cs, "create_company", args, true)
		if !strings.HasSuffix(got, "missing auth token; send it in the X-ATP-Auth-Token request header") {
			t.Errorf("got %q", got)
		}
		// Tools without auth do not need it.
		if got := callText(t, cs, "add", map[string]any{"a": 1, "b": 1}, false); got != "2" {
			t.Errorf("add: %q", got)
		}
	})
}

func TestAuthTokenSources(t *testing.T) {
	api := standIn(t)
	args := map[string]any{"name": "Acme"}
	t.Run("header wins over the server's token", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, api.URL, newProbe()), mcp.WithAuthToken("stale-token"), mcp.WithAuthTokenHeader(tokenHeader), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		cs := connectHTTP(t, srv, legacy, map[string][]string{tokenHeader: {"user-token"}})
		if got := callText(t, cs, "create_company", args, false); !strings.Contains(got, `"id":"42"`) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("server's token when the header is absent", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, api.URL, newProbe()), mcp.WithAuthToken("user-token"), mcp.WithAuthTokenHeader(tokenHeader), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		cs := connectHTTP(t, srv, legacy, nil)
		if got := callText(t, cs, "create_company", args, false); !strings.Contains(got, `"id":"42"`) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("Authorization header, Bearer scheme removed", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, api.URL, newProbe()), mcp.WithAuthTokenHeader("Authorization"), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		cs := connectHTTP(t, srv, legacy, map[string][]string{"Authorization": {"Bearer user-token"}})
		if got := callText(t, cs, "create_company", args, false); !strings.Contains(got, `"id":"42"`) {
			t.Errorf("got %q", got)
		}
	})
	t.Run("wrong token: the API's refusal, token redacted", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, api.URL, newProbe()), mcp.WithAuthTokenHeader(tokenHeader), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		cs := connectHTTP(t, srv, legacy, map[string][]string{tokenHeader: {"stolen"}})
		if got := callText(t, cs, "create_company", args, true); !strings.Contains(got, "401 Unauthorized") {
			t.Errorf("got %q", got)
		}
		if got := callText(t, cs, "echo_token", nil, true); got != "upstream refused token [REDACTED]" {
			t.Errorf("got %q", got)
		}
	})
}

func TestCallTimeout(t *testing.T) {
	p := newProbe()
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", p), mcp.WithCallTimeout(time.Millisecond), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	cs, _ := connectStdio(t, srv, legacy)
	if got := callText(t, cs, "block", nil, true); got != "tool block timed out after 1ms" {
		t.Errorf("got %q", got)
	}
	if cause := waitFor(t, p.cancelled, "block's context to end"); !errors.Is(cause, context.DeadlineExceeded) {
		t.Errorf("block's context ended with %v, want the deadline", cause)
	}
}

// TestNoTokenInLogs logs at Debug, where failed calls are logged with their
// message, and checks that neither token appears.
func TestNoTokenInLogs(t *testing.T) {
	var logs lockedBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := mcp.NewServer(testKit(t, standIn(t).URL, newProbe()),
		mcp.WithAuthTokenHeader(tokenHeader), mcp.WithBearerToken("server-secret"), mcp.WithLogger(logger))
	if err != nil {
		t.Fatal(err)
	}
	cs := connectHTTP(t, srv, legacy, map[string][]string{tokenHeader: {"user-token"}, "Authorization": {"Bearer server-secret"}})
	callText(t, cs, "echo_token", nil, true)
	callText(t, cs, "greet", map[string]any{"name": "Ada", "times": 9}, true)
	callText(t, cs, "create_company", map[string]any{"name": "Acme"}, false)
	out := logs.String()
	if !strings.Contains(out, "mcp: call failed") || !strings.Contains(out, "upstream refused token [REDACTED]") {
		t.Errorf("failed calls not logged at Debug:\n%s", out)
	}
	for _, secret := range []string{"user-token", "server-secret"} {
		if strings.Contains(out, secret) {
			t.Errorf("logs hold %q:\n%s", secret, out)
		}
	}
}

// callText calls a tool and returns its text, failing unless isError is
// as wanted.
func callText(t *testing.T, cs *sdk.ClientSession, name string, args any, wantError bool) string {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	if res.IsError != wantError {
		t.Fatalf("tools/call %s: isError %v, want %v: %s", name, res.IsError, wantError, text(t, res))
	}
	return text(t, res)
}
