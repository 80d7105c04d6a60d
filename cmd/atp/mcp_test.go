package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// atp mcp --http serves the packages' tools to a real MCP client, behind
// the bearer token, and stops cleanly on interrupt.
func TestMCPCommandHTTP(t *testing.T) {
	te := newTestEnv(t)
	toolModule(t, nil)
	te.vars["ATP_MCP_TOKEN"] = "mcp-secret"
	te.vars["ATP_AUTH_TOKEN"] = "user-token"

	pr, pw := io.Pipe()
	te.env.stdout = pw
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, &te.env, []string{"mcp", "./...", "--http", "127.0.0.1:0"})
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output; stderr %s", te.errOut)
	}
	url := regexp.MustCompile(`http://127\.0\.0\.1:\d+/mcp`).FindString(sc.Text())
	if url == "" {
		t.Fatalf("first line %q", sc.Text())
	}
	go io.Copy(io.Discard, pr)

	// Without the token: 401.
	resp, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %d", resp.StatusCode)
	}

	// An MCP client (mcp-go's; the official SDKs' clients are run against
	// package mcp in module tests/interop).
	cs, err := mcpclient.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer mcp-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ProtocolVersion: mcpgo.LATEST_PROTOCOL_VERSION,
		ClientInfo:      mcpgo.Implementation{Name: "atp-test", Version: "1.0.0"},
	}}); err != nil {
		t.Fatal(err)
	}
	list, err := cs.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil || len(list.Tools) != 6 {
		t.Fatalf("tools/list: %v, %d tools", err, len(list.Tools))
	}
	for _, c := range []struct {
		tool string
		args map[string]any
		text string
	}{
		{"greet", map[string]any{"name": "Ada", "times": 1}, "Hello, Ada!"}, // a string result is its text
		{"whoami", nil, "10"}, // len("user-token"), from ATP_AUTH_TOKEN
		{"increment", map[string]any{"by": 4}, "4"},
	} {
		res, err := cs.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: c.tool, Arguments: c.args}})
		if err != nil || res.IsError || len(res.Content) == 0 {
			t.Fatalf("%s: %v %+v", c.tool, err, res)
		}
		if tc, ok := mcpgo.AsTextContent(res.Content[0]); !ok || tc.Text != c.text {
			t.Errorf("%s: %+v, want %s", c.tool, res.Content[0], c.text)
		}
	}
	cs.Close()

	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, te.errOut)
	}
	if !strings.Contains(te.errOut.String(), "atp mcp: serving 6 tools (greet+counter) over streamable HTTP") {
		t.Errorf("stderr %q", te.errOut)
	}
	if strings.Contains(te.errOut.String(), "mcp-secret") || strings.Contains(te.errOut.String(), "user-token") {
		t.Errorf("a secret is in stderr: %s", te.errOut)
	}
}

func TestMCPCommandUsage(t *testing.T) {
	te := newTestEnv(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"mcp", "--http", "0.0.0.0:0"}, "--http 0.0.0.0:0 listens beyond loopback: set a bearer token (--token or $ATP_MCP_TOKEN)"},
		{[]string{"mcp", "--http", "nonsense"}, `--http: expected host:port, got "nonsense"`},
		{[]string{"mcp", "--token", "x"}, "--token applies to --http only"},
	} {
		if code, _, stderr := te.atp(c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("atp %q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// atp mcp --http --json: the address as JSON on stdout, logs as JSON lines
// on stderr.
func TestMCPCommandJSON(t *testing.T) {
	te := newTestEnv(t)
	toolModule(t, nil)
	pr, pw := io.Pipe()
	te.env.stdout = pw
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, &te.env, []string{"mcp", "./...", "--http", "127.0.0.1:0", "--json"})
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output; stderr %s", te.errOut)
	}
	var start struct{ URL string }
	if err := json.Unmarshal(sc.Bytes(), &start); err != nil || !regexp.MustCompile(`^http://127\.0\.0\.1:\d+/mcp$`).MatchString(start.URL) {
		t.Fatalf("first line %q: %v", sc.Text(), err)
	}
	go io.Copy(io.Discard, pr)
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("exit %d: %s", code, te.errOut)
	}
	first, _, _ := strings.Cut(te.errOut.String(), "\n")
	var rec struct {
		Msg, Toolkit, Transport string
		Tools                   []string
	}
	if err := json.Unmarshal([]byte(first), &rec); err != nil || rec.Msg != "atp mcp: serving" || rec.Toolkit != "greet+counter" ||
		len(rec.Tools) != 6 || rec.Transport != "streamable HTTP" {
		t.Fatalf("first log line %q: %v", first, err)
	}
}
