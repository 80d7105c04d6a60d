package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
)

// greetArgs is a valid greet call (peers.md measured a 5-field object; the
// decode is a few µs of the total either way).
var greetArgs = json.RawMessage(`{"name":"Ada","times":2}`)

func benchCall(b *testing.B, cs *sdk.ClientSession) {
	ctx := context.Background()
	params := &sdk.CallToolParams{Name: "greet", Arguments: greetArgs}
	b.ReportAllocs()
	for b.Loop() {
		res, err := cs.CallTool(ctx, params)
		if err != nil || res.IsError {
			b.Fatalf("call: %v %+v", err, res)
		}
	}
}

// BenchmarkCallHTTP is one tools/call from the go-sdk client to our handler
// over streamable HTTP on loopback: the row of peers.md §d.1 to compare with
// (go-sdk typed 521 µs / 454 KB; mcp-go 129 µs / 26 KB). B/op counts client
// and server together, as there.
func BenchmarkCallHTTP(b *testing.B) {
	for _, c := range []struct {
		name    string
		version string
		opts    []mcp.Option
	}{
		{legacy, legacy, nil},
		{"2026-07-28", latest, nil},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv, err := mcp.NewServer(testKit(b, "http://127.0.0.1:0", newProbe()), append(c.opts, mcp.WithLogger(quiet))...)
			if err != nil {
				b.Fatal(err)
			}
			benchCall(b, connectHTTP(b, srv, c.version, nil))
		})
	}
}

// BenchmarkCallStdio is one tools/call over a pipe pair (compare with
// peers.md's go-sdk in-memory rows: typed 294 µs / 494 KB, raw 218 µs /
// 387 KB).
func BenchmarkCallStdio(b *testing.B) {
	srv, err := mcp.NewServer(testKit(b, "http://127.0.0.1:0", newProbe()), mcp.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	cs, _ := connectStdio(b, srv, legacy)
	benchCall(b, cs)
}

// BenchmarkSDKFloorHTTP is the SDK alone: a raw handler returning a fixed
// result over the same stateless JSON streamable HTTP. The difference from
// BenchmarkCallHTTP is what this package and the toolkit add.
func BenchmarkSDKFloorHTTP(b *testing.B) {
	s := sdk.NewServer(&sdk.Implementation{Name: "floor", Version: "1"}, &sdk.ServerOptions{Logger: quiet})
	s.AddTool(&sdk.Tool{Name: "greet", InputSchema: json.RawMessage(`{"type":"object"}`)},
		func(context.Context, *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: `"Hello, Ada! Hello, Ada!"`}}}, nil
		})
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s },
		&sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true, Logger: quiet})
	ts := httptest.NewServer(h)
	b.Cleanup(ts.Close)
	cs, err := newClient().Connect(context.Background(),
		&sdk.StreamableClientTransport{Endpoint: ts.URL, MaxRetries: -1}, &sdk.ClientSessionOptions{ProtocolVersion: legacy})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cs.Close() })
	benchCall(b, cs)
}
