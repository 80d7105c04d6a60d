package harness

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	mcpclient "github.com/mark3labs/mcp-go/client"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// An MCP harness over stdio, driven by an MCP client (mcp-go's; the
// official SDKs' clients are run against package mcp in module
// tests/interop): it lists the tools and calls them, with the end user's
// token from the environment.
func TestMCPStdio(t *testing.T) {
	setup(t)
	ctx := context.Background()
	h, err := Build(ctx, modPkgs, Options{Mode: MCP, Name: "fixture"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	cs, err := mcpclient.NewStdioMCPClient(h.Path, append(os.Environ(), AuthTokenEnv+"=s3cret"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	initRes, err := cs.Initialize(ctx, mcpgo.InitializeRequest{Params: mcpgo.InitializeParams{
		ProtocolVersion: mcpgo.LATEST_PROTOCOL_VERSION,
		ClientInfo:      mcpgo.Implementation{Name: "harness-test", Version: "1.0.0"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got := initRes.ServerInfo.Name; got != "fixture" {
		t.Errorf("server name %q", got)
	}
	list, err := cs.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range list.Tools {
		names = append(names, tl.Name)
	}
	slices.Sort(names)
	if !slices.Equal(names, h.Tools) {
		t.Fatalf("tools %v, want %v", names, h.Tools)
	}
	for _, c := range []struct {
		tool    string
		args    map[string]any
		text    string
		isError bool
	}{
		{"greet", map[string]any{"name": "Ada", "times": 1}, "Hello, Ada!", false},
		{"greet", map[string]any{"name": "Ada", "times": 9}, "times", true},
		// The tool's fmt.Println goes to stderr, not into the stream.
		{"shout", map[string]any{"message": "hey"}, "HEY", false},
		{"whoami", nil, "6", false},
		// The constructor made the receiver, once for the session.
		{"count", map[string]any{"word": "go"}, "1", false},
		{"count", map[string]any{"word": "go"}, "2", false},
	} {
		res, err := cs.CallTool(ctx, mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: c.tool, Arguments: c.args}})
		if err != nil {
			t.Fatalf("%s: %v", c.tool, err)
		}
		text := ""
		if len(res.Content) > 0 {
			if tc, ok := mcpgo.AsTextContent(res.Content[0]); ok {
				text = tc.Text
			}
		}
		if res.IsError != c.isError || !strings.Contains(text, c.text) {
			t.Errorf("%s %v: isError %v, text %q; want %v, %q", c.tool, c.args, res.IsError, text, c.isError, c.text)
		}
	}
}
