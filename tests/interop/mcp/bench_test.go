package mcp_test

import (
	"context"
	"encoding/json"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
)

// greetArgs is a valid greet call. Module bench compares this package with
// mcp-go and the go-sdk on one input in one run; these benchmarks time the
// transports here, with the go-sdk's client.
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
// over streamable HTTP on loopback. B/op counts client and server together.
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

// BenchmarkCallStdio is one tools/call from the go-sdk client over a pipe
// pair.
func BenchmarkCallStdio(b *testing.B) {
	srv, err := mcp.NewServer(testKit(b, "http://127.0.0.1:0", newProbe()), mcp.WithLogger(quiet))
	if err != nil {
		b.Fatal(err)
	}
	cs, _ := connectStdio(b, srv, legacy)
	benchCall(b, cs)
}
