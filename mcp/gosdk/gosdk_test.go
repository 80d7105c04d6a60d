package gosdk_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/examples/hello"
	atpmcp "github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/mcp/gosdk"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

var quiet = slog.New(slog.DiscardHandler)

func waitFor[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

func text(t *testing.T, res *sdk.CallToolResult) string {
	t.Helper()
	if len(res.Content) != 1 {
		t.Fatalf("content %+v", res.Content)
	}
	return res.Content[0].(*sdk.TextContent).Text
}

// TestAddTools serves a toolkit on a go-sdk server beside the program's own
// tool and drives it with the go-sdk's client.
func TestAddTools(t *testing.T) {
	srv := sdk.NewServer(&sdk.Implementation{Name: "existing", Version: "1.0.0"}, &sdk.ServerOptions{Logger: quiet})
	sdk.AddTool(srv, &sdk.Tool{Name: "ping"}, func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, any, error) {
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "pong"}}}, nil, nil
	})
	tk := runtime.NewToolkit("hello", runtime.WithLogger(quiet))
	if err := tk.Add(hello.ATPTools()...); err != nil {
		t.Fatal(err)
	}
	stop, err := gosdk.AddTools(srv, tk, atpmcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	ctx := context.Background()
	ct, st := sdk.NewInMemoryTransports()
	ss, err := srv.Connect(ctx, st, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	changed := make(chan struct{}, 8)
	progress := make(chan *sdk.ProgressNotificationParams, 8)
	client := sdk.NewClient(&sdk.Implementation{Name: "host", Version: "1"}, &sdk.ClientOptions{
		ToolListChangedHandler:      func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
		ProgressNotificationHandler: func(_ context.Context, r *sdk.ProgressNotificationClientRequest) { progress <- r.Params },
	})
	cs, err := client.Connect(ctx, ct, &sdk.ClientSessionOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	list, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]*sdk.Tool{}
	for _, tool := range list.Tools {
		found[tool.Name] = tool
	}
	g := found["greet"]
	if found["ping"] == nil || g == nil || !g.Annotations.ReadOnlyHint || g.Annotations.DestructiveHint == nil || *g.Annotations.DestructiveHint {
		t.Fatalf("tools %v; greet %+v", list.Tools, g)
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "greet", Arguments: map[string]any{"name": "Ada", "times": 2}})
	if err != nil || res.IsError || text(t, res) != "Hello, Ada! Hello, Ada!" {
		t.Fatalf("greet: %v %+v", err, res)
	}
	res, err = cs.CallTool(ctx, &sdk.CallToolParams{Name: "greet", Arguments: json.RawMessage(`{"name":"Ada","times":"two"}`)})
	if err != nil || !res.IsError || text(t, res) != "invalid params for greet:\ntimes: expected integer, got \"two\"" {
		t.Fatalf("invalid params: %v %+v", err, res)
	}
	if res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "ping"}); err != nil || text(t, res) != "pong" {
		t.Fatalf("the program's own tool: %v %+v", err, res)
	}

	// Progress and list changes reach the host.
	if err := tk.Add(&runtime.Tool{
		Name:        "work",
		InputSchema: json.RawMessage(`{"type":"object","properties":{}}`),
		Run: func(_ context.Context, call *runtime.Call, _ *atpimpl.Decoder) (any, error) {
			call.Progress(1, 1, "all of it")
			return map[string]int{"done": 1}, nil
		},
	}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "list_changed after Add")
	params := &sdk.CallToolParams{Name: "work"}
	params.SetProgressToken("p1")
	res, err = cs.CallTool(ctx, params)
	if err != nil || res.IsError || text(t, res) != `{"done":1}` {
		t.Fatalf("work: %v %+v", err, res)
	}
	if sc, _ := json.Marshal(res.StructuredContent); string(sc) != `{"done":1}` {
		t.Errorf("structuredContent %s", sc)
	}
	if p := waitFor(t, progress, "progress"); p.ProgressToken != "p1" || p.Progress != 1 || p.Message != "all of it" {
		t.Errorf("progress %+v", p)
	}
	if err := tk.Remove("greet"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "list_changed after Remove")
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "greet"}); err == nil || !strings.Contains(err.Error(), "unknown tool") {
		t.Errorf("removed tool: %v", err)
	}
}

func TestAddToolsErrors(t *testing.T) {
	if _, err := gosdk.AddTools(nil, runtime.NewToolkit("x")); err == nil || !strings.Contains(err.Error(), "server is nil") {
		t.Errorf("nil server: %v", err)
	}
	srv := sdk.NewServer(&sdk.Implementation{Name: "s", Version: "1"}, nil)
	if _, err := gosdk.AddTools(srv, nil); err == nil || !strings.Contains(err.Error(), "toolkit is nil") {
		t.Errorf("nil toolkit: %v", err)
	}
	tk := runtime.NewToolkit("bad")
	tk.Add(&runtime.Tool{Name: "scalar", InputSchema: json.RawMessage(`{"type":"string"}`),
		Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return nil, nil }})
	if _, err := gosdk.AddTools(srv, tk); err == nil || !strings.Contains(err.Error(), `tool "scalar"`) {
		t.Errorf("bad schema: %v", err)
	}
}
