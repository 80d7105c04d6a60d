// Package bench measures atp-go side by side with the Go MCP libraries,
// mark3labs/mcp-go and the official modelcontextprotocol/go-sdk, in one
// `go test -bench` run, so that every ratio compares numbers taken on the
// same machine at the same time. It is a module of its own: the peers it
// imports never enter the dependency graph of projects that import atp-go.
//
// Every path gets the same input and the same constraints: the get_forecast
// tool of package tests/weather, its generated JSON Schema (given to each
// library as the tool's input schema, so each validates the same rules) and
// the valid five-field arguments in Arguments.
//
//	go run ./cmd/report            # runs the benchmarks 5 times, prints README's tables
//	go test -run '^$' -bench . -benchmem -count 5 . > out.txt   # the raw numbers
//
// The benchmarks:
//
//   - BenchmarkDecode: decode and validate the arguments only.
//   - BenchmarkRegister: build a server with N tools.
//   - BenchmarkMCPCall: one tools/call over streamable HTTP (stateless, JSON
//     responses), server side (ServeHTTP with a recorder) and end to end (a
//     plain JSON-RPC HTTP client on loopback).
//   - BenchmarkServedCall, BenchmarkRoutedCall: an ATP call served by a
//     toolkit, and routed through `atp serve`, beside a raw WebSocket echo.
package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
	mcpgoserver "github.com/mark3labs/mcp-go/server"

	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/tests/weather"
)

// Arguments is the valid input every path decodes.
var Arguments = []byte(`{"location":{"city":"Paris","country":"FR"},"days":3,"units":"celsius","tags":["a","b"],"since":"2026-11-21T05:00:00Z"}`)

// ToolName is the tool every server serves.
const ToolName = "get_forecast"

// WantSummary is in every successful answer.
const WantSummary = "3 days of sun in Paris"

// ProtocolVersion is the MCP version of the benchmarks' HTTP requests: the
// latest that every library and shipping host speaks.
const ProtocolVersion = "2025-11-25"

var quiet = slog.New(slog.DiscardHandler)

// weatherTool is the generated tool, renamed when a server needs many.
func weatherTool(name string) *runtime.Tool {
	t := *weather.ATPTools()[0]
	t.Name = name
	return &t
}

// InputSchema is the generated JSON Schema of get_forecast's params.
func InputSchema() json.RawMessage { return weather.ATPTools()[0].InputSchema }

// toolNames is get_forecast followed by n-1 more names.
func toolNames(n int) []string {
	names := []string{ToolName}
	for i := 1; i < n; i++ {
		names = append(names, fmt.Sprintf("%s_%d", ToolName, i))
	}
	return names
}

// ATPServer is atp-go's MCP server with n copies of the tool.
func ATPServer(n int) (*mcp.Server, error) {
	tk := runtime.NewToolkit("weather", runtime.WithLogger(quiet))
	for _, name := range toolNames(n) {
		if err := tk.Add(weatherTool(name)); err != nil {
			return nil, err
		}
	}
	return mcp.NewServer(tk, mcp.WithLogger(quiet))
}

// ATPHandler is atp-go's streamable HTTP handler for one tool.
func ATPHandler() (http.Handler, error) {
	s, err := ATPServer(1)
	if err != nil {
		return nil, err
	}
	return s.HTTPHandler(), nil
}

// goSDKForecast is the typed handler a go-sdk user writes.
func goSDKForecast(ctx context.Context, _ *sdk.CallToolRequest, in weather.WeatherIn) (*sdk.CallToolResult, weather.Forecast, error) {
	out, err := weather.GetForecast(ctx, in)
	return nil, out, err
}

// GoSDKServer is the official SDK's server with n typed tools (AddTool[In,
// Out]: input validated against the generated schema and decoded into
// WeatherIn, the output schema inferred from Forecast).
func GoSDKServer(n int) *sdk.Server {
	s := sdk.NewServer(&sdk.Implementation{Name: "weather", Version: "1"}, &sdk.ServerOptions{Logger: quiet})
	for _, name := range toolNames(n) {
		sdk.AddTool(s, &sdk.Tool{Name: name, Description: "GetForecast returns a (fake) forecast.", InputSchema: InputSchema()}, goSDKForecast)
	}
	return s
}

// GoSDKHandler is the official SDK's stateless streamable HTTP handler with
// JSON responses, its fastest HTTP configuration.
func GoSDKHandler() http.Handler {
	s := GoSDKServer(1)
	return sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s },
		&sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true, Logger: quiet})
}

// mcpGoForecast is the typed handler an mcp-go user writes.
func mcpGoForecast(ctx context.Context, _ mcpgo.CallToolRequest, in weather.WeatherIn) (weather.Forecast, error) {
	return weather.GetForecast(ctx, in)
}

// MCPGoServer is mcp-go's server with n typed tools (NewStructuredToolHandler
// binding WeatherIn; the generated input schema; the output schema from
// Forecast), validating input when validate is set (WithInputSchemaValidation,
// off by default in mcp-go).
func MCPGoServer(n int, validate bool) *mcpgoserver.MCPServer {
	var opts []mcpgoserver.ServerOption
	if validate {
		opts = append(opts, mcpgoserver.WithInputSchemaValidation())
	}
	s := mcpgoserver.NewMCPServer("weather", "1", opts...)
	for _, name := range toolNames(n) {
		tool := mcpgo.NewTool(name,
			mcpgo.WithDescription("GetForecast returns a (fake) forecast."),
			mcpgo.WithRawInputSchema(InputSchema()),
			mcpgo.WithOutputSchema[weather.Forecast]())
		s.AddTool(tool, mcpgo.NewStructuredToolHandler(mcpGoForecast))
	}
	return s
}

// MCPGoHandler is mcp-go's stateless streamable HTTP handler.
func MCPGoHandler(validate bool) http.Handler {
	return mcpgoserver.NewStreamableHTTPServer(MCPGoServer(1, validate),
		mcpgoserver.WithStateLess(true),
		mcpgoserver.WithStreamableHTTPLogger(quiet))
}

// CallBody is the JSON-RPC tools/call every MCP benchmark sends.
func CallBody() []byte {
	return []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"` + ToolName + `","arguments":` + string(Arguments) + `}}`)
}

// SetCallHeaders sets what a streamable HTTP client sends with a POST.
func SetCallHeaders(h http.Header) {
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json, text/event-stream")
	h.Set("Mcp-Protocol-Version", ProtocolVersion)
}

// CallResult is the part of a tools/call answer the benchmarks check.
type CallResult struct {
	Result struct {
		IsError bool `json:"isError"`
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
		StructuredContent *weather.Forecast `json:"structuredContent"`
	} `json:"result"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// CheckCallAnswer reports what is wrong with a tools/call answer, nil when it
// is the forecast.
func CheckCallAnswer(status int, body []byte) error {
	if status != http.StatusOK {
		return fmt.Errorf("status %d: %s", status, body)
	}
	var r CallResult
	if err := json.Unmarshal(body, &r); err != nil {
		return fmt.Errorf("answer is not one JSON-RPC response (%v): %s", err, body)
	}
	if r.Error != nil || r.Result.IsError || r.Result.StructuredContent == nil || r.Result.StructuredContent.Summary != WantSummary {
		return fmt.Errorf("answer is not the forecast: %s", body)
	}
	return nil
}

// drain reads and closes an HTTP body.
func drain(r io.ReadCloser) ([]byte, error) {
	defer r.Close()
	return io.ReadAll(r)
}
