package mcp_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	mcpgoclient "github.com/mark3labs/mcp-go/client"
	mcpgotransport "github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"

	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// TestAddToolsToMCPGoServer adds a toolkit to an mcp-go server a program
// already runs, beside a tool of its own, and calls both with mcp-go's own
// client over streamable HTTP.
func TestAddToolsToMCPGoServer(t *testing.T) {
	srv := mcpgoserver.NewMCPServer("existing", "1.0.0", mcpgoserver.WithToolCapabilities(true))
	srv.AddTool(mcpgo.NewTool("ping", mcpgo.WithDescription("The program's own tool.")),
		func(context.Context, mcpgo.CallToolRequest) (*mcpgo.CallToolResult, error) {
			return mcpgo.NewToolResultText("pong"), nil
		})
	api := standIn(t)
	tk := testKit(t, api.URL, newProbe())
	stop, err := mcp.AddTools(srv, tk, mcp.WithAuthTokenHeader(tokenHeader), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	ts := httptest.NewServer(mcpgoserver.NewStreamableHTTPServer(srv))
	defer ts.Close()

	c, err := mcpgoclient.NewStreamableHttpClient(ts.URL, mcpgotransport.WithHTTPHeaders(map[string]string{tokenHeader: "user-token"}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	init := mcpgo.InitializeRequest{}
	init.Params.ProtocolVersion = mcpgo.LATEST_LEGACY_PROTOCOL_VERSION
	init.Params.ClientInfo = mcpgo.Implementation{Name: "mcp-go-client", Version: "1"}
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	list, err := c.ListTools(ctx, mcpgo.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Tools) != len(tk.Tools())+1 {
		t.Errorf("listed %d tools, want the toolkit's %d and ping", len(list.Tools), len(tk.Tools()))
	}
	call := func(name string, args any) *mcpgo.CallToolResult {
		t.Helper()
		req := mcpgo.CallToolRequest{}
		req.Params.Name = name
		req.Params.Arguments = args
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return res
	}
	textOf := func(res *mcpgo.CallToolResult) string {
		t.Helper()
		if len(res.Content) != 1 {
			t.Fatalf("content %+v", res.Content)
		}
		tc, ok := res.Content[0].(mcpgo.TextContent)
		if !ok {
			t.Fatalf("content %T", res.Content[0])
		}
		return tc.Text
	}
	if got := textOf(call("ping", nil)); got != "pong" {
		t.Errorf("ping: %q", got)
	}
	if res := call("greet", map[string]any{"name": "Ada", "times": 1}); res.IsError || textOf(res) != "Hello, Ada!" {
		t.Errorf("greet: %+v", res)
	}
	// The token comes from the request's header.
	res := call("create_company", map[string]any{"name": "Acme"})
	if res.IsError || !strings.Contains(textOf(res), `"id":"42"`) {
		t.Errorf("create_company: %+v", res)
	}
	var sc map[string]any
	if b, _ := json.Marshal(res.StructuredContent); json.Unmarshal(b, &sc) != nil || sc["id"] != "42" {
		t.Errorf("structuredContent %v", res.StructuredContent)
	}
	if res := call("greet", map[string]any{"name": "Ada", "times": 0}); !res.IsError ||
		textOf(res) != "invalid params for greet:\ntimes: expected integer >= 1, got 0" {
		t.Errorf("invalid params: %+v", res)
	}

	// The tools follow the toolkit.
	if err := tk.Remove("greet"); err != nil {
		t.Fatal(err)
	}
	if srv.GetTool("greet") != nil || srv.GetTool("ping") == nil {
		t.Error("greet still served after Remove, or the program's own tool was removed")
	}
	stop()
	if err := tk.Add(workTool("later")); err != nil {
		t.Fatal(err)
	}
	if srv.GetTool("later") != nil {
		t.Error("a tool added after stop was served")
	}
}

func TestAddToolsErrors(t *testing.T) {
	if _, err := mcp.AddTools(nil, runtime.NewToolkit("x")); err == nil || !strings.Contains(err.Error(), "server is nil") {
		t.Errorf("nil server: %v", err)
	}
	srv := mcpgoserver.NewMCPServer("existing", "1.0.0")
	if _, err := mcp.AddTools(srv, nil); err == nil || !strings.Contains(err.Error(), "toolkit is nil") {
		t.Errorf("nil toolkit: %v", err)
	}
	tk := runtime.NewToolkit("bad")
	tk.Add(&runtime.Tool{Name: "scalar", InputSchema: json.RawMessage(`{"type":"string"}`),
		Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return nil, nil }})
	if _, err := mcp.AddTools(srv, tk); err == nil || !strings.Contains(err.Error(), `tool "scalar"`) {
		t.Errorf("bad schema: %v", err)
	}
}

// TestProgressPrecedesResult reads the stdio wire: each notifications/progress
// is written before the call's answer.
func TestProgressPrecedesResult(t *testing.T) {
	tk := runtime.NewToolkit("progress", runtime.WithLogger(quiet))
	if err := tk.Add(workTool("work")); err != nil {
		t.Fatal(err)
	}
	srv, err := mcp.NewServer(tk, mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	in := initialize + "\n" + `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"work","_meta":{"progressToken":7}}}` + "\n"
	if err := srv.ServeStdio(context.Background(), strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var m struct {
			ID     int
			Method string
			Params struct{ ProgressToken any }
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatal(err)
		}
		switch {
		case m.Method == "notifications/progress" && m.Params.ProgressToken == float64(7):
			order = append(order, "progress")
		case m.ID == 2:
			order = append(order, "result")
		}
	}
	if strings.Join(order, ",") != "progress,progress,result" {
		t.Errorf("wire order %v, want two progress notifications, then the result:\n%s", order, out.String())
	}
}
