package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/santhosh-tekuri/jsonschema/v6"

	mcpgo "github.com/mark3labs/mcp-go/mcp"

	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/tests/weather"
)

// decodePath decodes and validates args, returning an error for invalid
// ones. Each benchmark path is also tested on a valid and an invalid input,
// so that a path that stopped validating cannot look fast.
type decodePath struct {
	name string
	make func(testing.TB) func(args []byte) error
}

func decodePaths() []decodePath {
	return []decodePath{
		{"atp", func(testing.TB) func([]byte) error {
			// The generated decoder: exact keys, required, enum, format,
			// unknown keys, all in one pass.
			var d atpimpl.Decoder
			return func(args []byte) error {
				var in weather.WeatherIn
				d.Reset(args)
				weather.DecodeWeatherIn(&d, &in)
				if d.Failed() {
					return fmt.Errorf("invalid params: %v", d.Problems())
				}
				return nil
			}
		}},
		{"encoding_json", func(testing.TB) func([]byte) error {
			// No checks at all: the floor of a reflective decode.
			return func(args []byte) error {
				var in weather.WeatherIn
				return json.Unmarshal(args, &in)
			}
		}},
		{"gosdk_typed", goSDKTyped},
		{"mcpgo_bind", func(testing.TB) func([]byte) error {
			// What mcp-go's typed handlers do: BindArguments on the raw
			// arguments the server kept (encoding/json, no checks).
			return func(args []byte) error {
				req := mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: ToolName, RawArguments: args}}
				var in weather.WeatherIn
				return req.BindArguments(&in)
			}
		}},
		{"mcpgo_bind_validate", mcpGoValidated},
	}
}

// goSDKTyped is the official SDK's typed-tool path, measured inside the SDK:
// the server's own tools/call method handler (taken with a receiving
// middleware) for a tool added with AddTool[WeatherIn, any], so that the
// arguments are unmarshalled to a map, defaulted, validated against the
// generated schema, re-marshalled and decoded into WeatherIn, and nothing
// is done with the output. No transport, no JSON-RPC framing.
func goSDKTyped(tb testing.TB) func([]byte) error {
	s := sdk.NewServer(&sdk.Implementation{Name: "weather", Version: "1"}, &sdk.ServerOptions{Logger: quiet})
	sdk.AddTool(s, &sdk.Tool{Name: ToolName, InputSchema: InputSchema()},
		func(context.Context, *sdk.CallToolRequest, weather.WeatherIn) (*sdk.CallToolResult, any, error) {
			return &sdk.CallToolResult{}, nil, nil
		})
	// The handler needs a live session: connect a client in memory and
	// keep the session of its first call.
	var handle sdk.MethodHandler
	var session *sdk.ServerSession
	s.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		handle = next
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if ss, ok := req.GetSession().(*sdk.ServerSession); ok && method == "tools/call" {
				session = ss
			}
			return next(ctx, method, req)
		}
	})
	ctx := context.Background()
	ct, st := sdk.NewInMemoryTransports()
	if _, err := s.Connect(ctx, st, nil); err != nil {
		tb.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, ct, nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cs.Close() })
	if _, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: ToolName, Arguments: json.RawMessage(Arguments)}); err != nil || session == nil {
		tb.Fatalf("first call: %v (session %v)", err, session)
	}
	return func(args []byte) error {
		req := &sdk.CallToolRequest{Session: session, Params: &sdk.CallToolParamsRaw{Name: ToolName, Arguments: args}}
		res, err := handle(ctx, "tools/call", req)
		if err != nil {
			return err
		}
		if r := res.(*sdk.CallToolResult); r.IsError {
			return r.GetError()
		}
		return nil
	}
}

// mcpGoValidated is mcp-go with WithInputSchemaValidation, reproduced with
// its validator and its calls (server/input_validation.go, v1.2.1): the
// schema compiled once by santhosh-tekuri/jsonschema as mcp-go compiles it,
// then per call the raw arguments decoded for the validator, validated,
// and bound.
func mcpGoValidated(tb testing.TB) func([]byte) error {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(InputSchema()))
	if err != nil {
		tb.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "mem:///mcp-go/tools/get_forecast/input-schema.json"
	if err := c.AddResource(url, doc); err != nil {
		tb.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		tb.Fatal(err)
	}
	return func(args []byte) error {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
		if err != nil {
			return err
		}
		if err := sch.Validate(v); err != nil {
			return err
		}
		req := mcpgo.CallToolRequest{Params: mcpgo.CallToolParams{Name: ToolName, RawArguments: args}}
		var in weather.WeatherIn
		return req.BindArguments(&in)
	}
}

// TestDecodePaths checks that every path accepts the benchmark's input and
// that the validating ones reject a bad enum value and an unknown key.
func TestDecodePaths(t *testing.T) {
	invalid := []byte(`{"location":{"city":"Paris"},"days":3,"units":"kelvin","dayz":1}`)
	validating := map[string]bool{"atp": true, "gosdk_typed": true, "mcpgo_bind_validate": true}
	for _, p := range decodePaths() {
		t.Run(p.name, func(t *testing.T) {
			decode := p.make(t)
			if err := decode(Arguments); err != nil {
				t.Fatalf("valid input: %v", err)
			}
			if err := decode(invalid); (err != nil) != validating[p.name] {
				t.Errorf("invalid input: error %v, want an error: %v", err, validating[p.name])
			}
		})
	}
}

// BenchmarkDecode is one call's arguments decoded and validated.
func BenchmarkDecode(b *testing.B) {
	for _, p := range decodePaths() {
		b.Run(p.name, func(b *testing.B) {
			decode := p.make(b)
			b.ReportAllocs()
			for b.Loop() {
				if err := decode(Arguments); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
