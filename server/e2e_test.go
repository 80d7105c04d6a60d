package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// goToolkit is a toolkit as generated code builds it: typed schemas and a
// decoder-driven Run.
func goToolkit(t *testing.T) *runtime.Toolkit {
	t.Helper()
	tk := runtime.NewToolkit("hello", runtime.WithLogger(discardLogger()))
	err := tk.Add(
		&runtime.Tool{
			Name: "greet", Description: "Greets someone.", Params: []string{"name"}, RequiredParams: []string{"name"},
			InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string","minLength":1}},"required":["name"],"additionalProperties":false}`),
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				var name string
				seen := false
				if d.Object() {
					for d.Next() {
						switch string(d.Key()) {
						case "name":
							name, seen = d.String(), true
						default:
							d.Unknown("name")
						}
					}
					if !seen {
						d.Missing("name", "string")
					}
				}
				if d.Failed() {
					return nil, nil // Invoke reports d's problems
				}
				return "Hello, " + name, nil
			},
		},
		&runtime.Tool{
			Name: "unlucky", Description: "Fails.", InputSchema: json.RawMessage(`{"type":"object"}`),
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return nil, errors.New("no luck") },
		},
		&runtime.Tool{
			Name: "report", Description: "Returns an object with an error field, as a result.", InputSchema: json.RawMessage(`{"type":"object"}`),
			Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) {
				return map[string]string{"error": "disk 3 is degraded"}, nil
			},
		},
	)
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// Our Go runtime against our server, over both of its transports.
func TestEndToEndGoRuntime(t *testing.T) {
	for _, transport := range []runtime.Transport{runtime.TransportWS, runtime.TransportHTTP} {
		t.Run(string(transport), func(t *testing.T) {
			e := newEnv(t, Config{})
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() {
				served <- goToolkit(t).Serve(ctx, runtime.ServeConfig{URL: e.base, APIKey: e.tkKey, Transport: transport, Logger: discardLogger()})
			}()
			defer func() {
				cancel()
				if err := <-served; err != nil {
					t.Errorf("Serve: %v", err)
				}
			}()
			// Online as the server sees it: a WebSocket, or an inbox poll
			// (the runtime reports itself connected only when a held poll
			// returns).
			eventually(t, "the toolkit to come online", func() bool {
				ws, inbox := e.srv.hub.online(toolkitRef{"default", "hello"})
				return ws > 0 || inbox
			})

			llm := e.dialPyLLM(e.llmKey)
			m := roundTrip(t, llm, pyContextRequest(e.llmKey, "hello", "openai"))
			tools := m["payload"].(map[string]any)["tools"].([]any)
			if len(tools) != 3 {
				t.Fatalf("tools = %v", tools)
			}
			greet := tools[0].(map[string]any)
			if greet["name"] != "greet" || greet["parameters"].(map[string]any)["properties"].(map[string]any)["name"] == nil {
				t.Fatalf("greet = %v", greet)
			}

			req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "Go"})
			if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got != "Hello, Go" {
				t.Fatalf("greet = %v", got)
			}
			req = pyTaskRequest(e.llmKey, "hello", 1, "unlucky", nil)
			m = roundTrip(t, llm, req)
			checkTaskResponse(t, m, req, "error")
			if m["message"] != "no luck" {
				t.Fatalf("failure message = %v", m["message"])
			}
			// A Go toolkit flags failures with is_error: a result with an
			// "error" field is still a result.
			req = pyTaskRequest(e.llmKey, "hello", 2, "report", nil)
			if got := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); got.(map[string]any)["error"] != "disk 3 is degraded" {
				t.Fatalf("report = %v", got)
			}
			// Invalid params stop at the server, with the runtime's words.
			req = pyTaskRequest(e.llmKey, "hello", 3, "greet", map[string]any{"name": ""})
			m = roundTrip(t, llm, req)
			if m["status"] != "error" || !strings.HasPrefix(m["message"].(string), "invalid params for greet: name: ") {
				t.Fatalf("invalid params = %v", m)
			}
		})
	}
}
