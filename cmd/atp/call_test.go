package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

// liveServer runs an ATP server on a free port with the hello toolkit
// connected over WebSocket, and returns its URL and an LLM key.
func liveServer(t *testing.T) (url, llmKey string) {
	t.Helper()
	srv, err := server.New(context.Background(), server.Config{Addr: "127.0.0.1:0", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	_, tkKey, err := srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "tk"})
	if err != nil {
		t.Fatal(err)
	}
	_, llmKey, err = srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "agent"})
	if err != nil {
		t.Fatal(err)
	}

	tk := runtime.NewToolkit("hello", runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err := tk.Add(hello.ATPTools()...); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{})
	toolkitDone := make(chan error, 1)
	go func() {
		toolkitDone <- tk.Serve(ctx, runtime.ServeConfig{URL: srv.URL(), APIKey: tkKey, OnState: func(s runtime.State) {
			if s.Kind == runtime.StateConnected {
				select {
				case <-connected:
				default:
					close(connected)
				}
			}
		}})
	}()
	select {
	case <-connected:
	case err := <-toolkitDone:
		t.Fatalf("toolkit stopped before connecting: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		<-toolkitDone
		<-served
		srv.Close()
	})
	return srv.URL(), llmKey
}

func TestCallAndContext(t *testing.T) {
	url, key := liveServer(t)
	te := newTestEnv(t)
	te.vars["ATP_URL"] = url
	te.vars["ATP_API_KEY"] = key

	code, out, stderr := te.atp("call", "--toolkit", "hello", "--tool", "greet", "--params", `{"name":"Ada","times":2}`)
	if code != exitOK || out != "\"Hello, Ada! Hello, Ada!\"\n" {
		t.Fatalf("call: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = te.atp("call", "--toolkit", "hello", "--tool", "add", "--params", `{"a":1.5,"b":2}`, "--json")
	var reply map[string]any
	if err := json.Unmarshal([]byte(out), &reply); err != nil || code != exitOK || reply["status"] != "success" ||
		reply["type"] != "task_response" || strings.Count(out, "\n") != 1 {
		t.Fatalf("call --json: exit %d, %v, %q", code, err, out)
	}
	if res := reply["result"].(map[string]any)["tool"].(map[string]any)["result"]; res != 3.5 {
		t.Fatalf("call --json result %v", res)
	}

	// --url and --key win over the environment.
	code, out, _ = te.atp("call", "--url", url+"/", "--key", key, "--toolkit", "hello", "--tool", "add", "--params", `{"a":1,"b":2}`)
	if code != exitOK || out != "3\n" {
		t.Fatalf("call with flags: exit %d, %q", code, out)
	}

	// Failures: exit 1 with the server's reason.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--tool", "greet", "--params", `{"name":"Ada","times":9}`}, "tool greet of toolkit hello failed: invalid params for greet"},
		{[]string{"--tool", "greet", "--params", `{"name":"","times":1}`}, "name is empty"},
		{[]string{"--tool", "nope"}, `toolkit "hello" has no tool "nope"`},
		{[]string{"--tool", "greet", "--key", "atp_llm_bad_key"}, "the server refused the key (401 Unauthorized)"},
		{[]string{"--tool", "greet", "--url", "http://127.0.0.1:1"}, "cannot reach the ATP server at http://127.0.0.1:1/api/v1/atp/llm-client/process/ (is atp serve running?)"},
	} {
		args := append([]string{"call", "--toolkit", "hello"}, c.args...)
		code, out, stderr := te.atp(args...)
		if code != exitFailure || !strings.Contains(stderr, c.want) || out != "" {
			t.Errorf("atp %q: exit %d, stdout %q, stderr %q; want exit 1 and %q", args, code, out, stderr, c.want)
		}
		if strings.Contains(stderr, key) {
			t.Errorf("atp %q: the key is in stderr", args)
		}
	}
	code, _, stderr = te.atp("call", "--toolkit", "other", "--tool", "greet")
	if code != exitFailure || !strings.Contains(stderr, `toolkit "other" not found`) {
		t.Errorf("unknown toolkit: exit %d, %q", code, stderr)
	}

	// The context in two providers' formats.
	code, out, _ = te.atp("context", "--toolkit", "hello", "--provider", "anthropic")
	var payload struct {
		ToolkitID string `json:"toolkit_id"`
		Provider  string `json:"provider"`
		Tools     []struct {
			Name        string          `json:"name"`
			InputSchema json.RawMessage `json:"input_schema"`
		} `json:"tools"`
	}
	if err := json.Unmarshal([]byte(out), &payload); err != nil || code != exitOK || payload.ToolkitID != "hello" || payload.Provider != "anthropic" ||
		len(payload.Tools) != 2 || payload.Tools[0].Name != "add" || len(payload.Tools[1].InputSchema) == 0 {
		t.Fatalf("context anthropic: exit %d, %v, %s", code, err, out)
	}
	code, out, _ = te.atp("context", "--toolkit", "hello", "--json")
	if err := json.Unmarshal([]byte(out), &reply); err != nil || code != exitOK || reply["type"] != "toolkit_context" ||
		!strings.Contains(out, `"type":"function","name":"add"`) {
		t.Fatalf("context --json (openai): exit %d, %v, %s", code, err, out)
	}
	code, _, stderr = te.atp("context", "--toolkit", "other")
	if code != exitFailure || !strings.Contains(stderr, `404 Not Found: toolkit "other" not found`) {
		t.Errorf("context of an unknown toolkit: exit %d, %q", code, stderr)
	}
}

func TestCallAndContextUsage(t *testing.T) {
	te := newTestEnv(t)
	te.vars["ATP_API_KEY"] = "atp_llm_x_y"
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"call", "--tool", "x"}, "--toolkit is required"},
		{[]string{"call", "--toolkit", "t"}, "--tool is required"},
		{[]string{"call", "--toolkit", "t", "--tool", "x", "--params", "{"}, "invalid --params JSON"},
		{[]string{"call", "--toolkit", "t", "--tool", "x", "--params", `"s"`}, "--params: expected a JSON object, got string"},
		{[]string{"call", "--toolkit", "t", "--tool", "x", "--auth-token", "a", "--external-user-id", "u"}, "--auth-token and --external-user-id exclude each other"},
		{[]string{"call", "--toolkit", "t", "--tool", "x", "--url", "ftp://h"}, `--url: expected http://host:port or https://host, got "ftp://h"`},
		{[]string{"call", "--toolkit", "t", "--tool", "x", "--timeout", "-1s"}, "--timeout must not be negative"},
		{[]string{"call", "--toolkit", "t", "--tool", "x", "extra"}, `unexpected argument "extra"`},
		{[]string{"context"}, "--toolkit is required"},
		{[]string{"context", "--toolkit", "t", "--provider", "bard"}, `--provider: provider: unknown provider "bard"`},
	} {
		if code, _, stderr := te.atp(c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("atp %q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
	delete(te.vars, "ATP_API_KEY")
	if code, _, stderr := te.atp("context", "--toolkit", "t"); code != exitUsage || !strings.Contains(stderr, "no API key: pass --key or set ATP_API_KEY") {
		t.Errorf("no key: exit %d, %q", code, stderr)
	}
}
