package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// serveStdioEnv makes the test binary an MCP stdio server: the TypeScript
// client starts it as a host starts `atp mcp`.
const serveStdioEnv = "ATP_MCP_TEST_SERVE_STDIO"

func TestMain(m *testing.M) {
	if os.Getenv(serveStdioEnv) == "1" {
		srv, err := mcp.NewServer(tsKit(), mcp.WithLogger(quiet))
		if err == nil {
			err = srv.ServeStdio(context.Background(), os.Stdin, os.Stdout)
		}
		if err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// tsKit has a string result (greet), an object result with an output
// schema (report) and progress (work). The TypeScript client handles a
// notification on a later turn of its event loop but a response at once, so
// a report read in the same chunk as the answer finds its call gone: work
// waits, after each report, for the client's ack call, which its progress
// handler makes.
func tsKit() *runtime.Toolkit {
	tk := runtime.NewToolkit("tskit", runtime.WithLogger(quiet))
	acks := make(chan struct{}, 8)
	waitAck := func(ctx context.Context) error {
		select {
		case <-acks:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return errors.New("no ack from the client's progress handler")
		}
	}
	work := &runtime.Tool{
		Name:        "work",
		Description: "Works in two steps, each acknowledged.",
		InputSchema: json.RawMessage(emptyObject),
		Run: func(ctx context.Context, call *runtime.Call, _ *atpimpl.Decoder) (any, error) {
			call.Progress(1, 2, "first half")
			if err := waitAck(ctx); err != nil {
				return nil, err
			}
			call.Progress(2, 2, "")
			if err := waitAck(ctx); err != nil {
				return nil, err
			}
			return "done", nil
		},
	}
	ack := &runtime.Tool{
		Name:        "ack",
		Description: "Acknowledges a progress report.",
		InputSchema: json.RawMessage(emptyObject),
		Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) {
			acks <- struct{}{}
			return "ok", nil
		},
	}
	tools := append(hello.ATPTools(), work, ack, &runtime.Tool{
		Name:         "report",
		Description:  "Returns an object.",
		InputSchema:  json.RawMessage(emptyObject),
		OutputSchema: json.RawMessage(`{"type":"object","properties":{"ok":{"type":"boolean"}}}`),
		Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) {
			return map[string]bool{"ok": true}, nil
		},
	})
	if err := tk.Add(tools...); err != nil {
		panic(err)
	}
	return tk
}

// tsClientDir holds the npm project of the official MCP TypeScript client
// (its package-lock.json pins the version).
var tsClientDir = filepath.Join("testdata", "tsclient")

// TestTypeScriptClient runs the official MCP TypeScript client
// (@modelcontextprotocol/sdk) with Node against ServeStdio and HTTPHandler.
// .ci/run installs Node's packages (npm ci); locally the test installs them
// when they are missing, and skips only where node or npm is not installed.
func TestTypeScriptClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed: the official MCP TypeScript client cannot run here (CI runs it)")
	}
	if _, err := os.Stat(filepath.Join(tsClientDir, "node_modules", "@modelcontextprotocol", "sdk")); err != nil {
		npm, err := exec.LookPath("npm")
		if err != nil {
			t.Skip("npm is not installed: cannot install the official MCP TypeScript client (CI runs it)")
		}
		cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund")
		cmd.Dir = tsClientDir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("npm ci in %s: %v\n%s", tsClientDir, err, out)
		}
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, args ...string) map[string]json.RawMessage {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, node, append([]string{"client.mjs"}, args...)...)
		cmd.Dir = tsClientDir
		cmd.Env = append(os.Environ(), serveStdioEnv+"=1")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("node client.mjs %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout.Bytes(), stderr.Bytes())
		}
		var out map[string]json.RawMessage
		if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
			t.Fatalf("client output %q: %v (stderr %s)", stdout.Bytes(), err, stderr.Bytes())
		}
		return out
	}
	t.Run("stdio", func(t *testing.T) { checkTSClient(t, run(t, "stdio", self, "-test.run=^$")) })
	t.Run("http", func(t *testing.T) {
		srv, err := mcp.NewServer(tsKit(), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.HTTPHandler())
		defer ts.Close()
		checkTSClient(t, run(t, "http", ts.URL+"/mcp"))
	})
}

type tsResult struct {
	Content []struct {
		Type, Text string
	}
	StructuredContent map[string]any
	IsError           bool
}

func checkTSClient(t *testing.T, out map[string]json.RawMessage) {
	t.Helper()
	get := func(key string, v any) {
		t.Helper()
		if err := json.Unmarshal(out[key], v); err != nil {
			t.Fatalf("%s: %v in %s", key, err, out[key])
		}
	}
	var caps struct{ Tools struct{ ListChanged bool } }
	get("capabilities", &caps)
	if !caps.Tools.ListChanged {
		t.Errorf("capabilities %s, want tools.listChanged", out["capabilities"])
	}
	var tools []struct {
		Name            string
		Annotations     map[string]any
		HasOutputSchema bool
	}
	get("tools", &tools)
	byName := map[string]bool{}
	for _, tool := range tools {
		byName[tool.Name] = tool.HasOutputSchema
		if tool.Name == "greet" && (tool.Annotations["readOnlyHint"] != true || tool.Annotations["destructiveHint"] != false) {
			t.Errorf("greet annotations %v", tool.Annotations)
		}
	}
	if len(tools) != 5 || !byName["report"] {
		t.Errorf("tools %s, want add, greet, report (with an outputSchema), work and ack", out["tools"])
	}
	one := func(key string) tsResult {
		t.Helper()
		var r tsResult
		get(key, &r)
		if len(r.Content) != 1 || r.Content[0].Type != "text" {
			t.Fatalf("%s: %s, want one text block", key, out[key])
		}
		return r
	}
	if r := one("greet"); r.IsError || r.Content[0].Text != "Hello, Ada! Hello, Ada!" || r.StructuredContent != nil {
		t.Errorf("greet: %s", out["greet"])
	}
	if r := one("invalid"); !r.IsError || r.Content[0].Text != "invalid params for greet:\ntimes: expected integer >= 1, got 0" {
		t.Errorf("invalid params: %s", out["invalid"])
	}
	if r := one("object"); r.IsError || r.Content[0].Text != `{"ok":true}` || r.StructuredContent["ok"] != true {
		t.Errorf("object result: %s", out["object"])
	}
	if r := one("work"); r.IsError || r.Content[0].Text != "done" {
		t.Errorf("work: %s", out["work"])
	}
	var progress []struct {
		Progress, Total float64
		Message         string
	}
	get("progress", &progress)
	if len(progress) != 2 || progress[0].Progress != 1 || progress[0].Total != 2 || progress[0].Message != "first half" || progress[1].Progress != 2 {
		t.Errorf("progress %s, want two reports", out["progress"])
	}
	var unknown string
	get("unknown", &unknown)
	if !strings.Contains(unknown, "nope") {
		t.Errorf("unknown tool: %q, want an error naming it", unknown)
	}
}
