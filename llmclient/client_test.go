package llmclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server/store"
)

var protocols = []string{string(llmclient.TransportHTTP), string(llmclient.TransportWS)}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestToolkitContextPerProvider(t *testing.T) {
	e := newEnv(t)
	for _, proto := range protocols {
		c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
		// For each provider: the field that holds the schema of greet.
		for _, tc := range []struct{ provider, wantProvider, greet, schema string }{
			{"openai", "openai", `"name":"greet"`, `"parameters"`},
			{"openai-chat", "openai-chat", `"function":{"name":"greet"`, `"parameters"`},
			{"anthropic", "anthropic", `"name":"greet"`, `"input_schema"`},
			{"claude", "anthropic", `"name":"greet"`, `"input_schema"`},
			{"mistralai", "mistral", `"function":{"name":"greet"`, `"parameters"`},
			{"gemini", "gemini", `"name":"greet"`, `"parameters"`},
			{"mcp", "mcp", `"name":"greet"`, `"inputSchema"`},
		} {
			t.Run(proto+"/"+tc.provider, func(t *testing.T) {
				got, err := c.GetToolkitContext(testCtx(t), "kit", tc.provider, "say hi to Ada")
				if err != nil {
					t.Fatal(err)
				}
				if got.ToolkitID != "kit" || got.ToolkitName != "kit" || got.Provider != tc.wantProvider || got.UserPrompt != "say hi to Ada" {
					t.Errorf("context = %+v", got)
				}
				var tools []json.RawMessage
				if err := json.Unmarshal(got.Tools, &tools); err != nil || len(tools) != 7 {
					t.Fatalf("tools: %v: %s", err, got.Tools)
				}
				var greet string
				for _, tool := range tools {
					if strings.Contains(string(tool), tc.greet) {
						greet = string(tool)
					}
				}
				if greet == "" || !strings.Contains(greet, tc.schema) || !strings.Contains(greet, `"description":"who to greet`) {
					t.Errorf("greet in %s: %s", tc.provider, greet)
				}
				req := string(got.RequestTools())
				if tc.provider == "gemini" {
					if !strings.HasPrefix(req, `[{"functionDeclarations":[{"name":"`) || !strings.HasSuffix(req, "]}]") {
						t.Errorf("gemini request tools: %.80s...", req)
					}
				} else if req != string(got.Tools) {
					t.Errorf("request tools differ from tools for %s", tc.provider)
				}
			})
		}
		t.Run(proto+"/errors", func(t *testing.T) {
			ctx := testCtx(t)
			_, err := c.GetToolkitContext(ctx, "nope", "openai", "")
			if err == nil || !strings.Contains(err.Error(), `toolkit "nope" not found`) {
				t.Errorf("unknown toolkit: %v", err)
			}
			var apiErr *llmclient.APIError
			if !errors.As(err, &apiErr) {
				t.Errorf("unknown toolkit: %T, want *APIError", err)
			}
			_, err = c.GetToolkitContext(ctx, "kit", "cohere", "")
			if err == nil || !strings.Contains(err.Error(), `unknown provider "cohere"`) {
				t.Errorf("unknown provider: %v", err)
			}
			_, err = c.GetToolkitContext(ctx, "", "openai", "")
			if err == nil || !strings.Contains(err.Error(), "toolkitID is empty") {
				t.Errorf("no toolkit: %v", err)
			}
		})
	}
}

// Every provider's shape of tool calls in, the provider's result messages
// out, in the input order, ids echoed, failures readable.
func TestCallToolsPerProvider(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, provider, calls, want string
	}{
		{
			name: "openai responses output", provider: "openai",
			calls: `{"id":"resp_1","object":"response","output":[
				{"type":"reasoning","id":"rs_1","summary":[]},
				{"type":"function_call","id":"fc_1","call_id":"call_a","name":"greet","arguments":"{\"name\":\"Ada\"}","status":"completed"},
				{"type":"function_call","id":"fc_2","call_id":"call_b","name":"echo","arguments":"{\"n\":2,\"s\":\"x\"}","status":"completed"}]}`,
			want: `[{"type":"function_call_output","call_id":"call_a","output":"Hello, Ada"},` +
				`{"type":"function_call_output","call_id":"call_b","output":"{\"n\":2,\"s\":\"x\"}"}]`,
		},
		{
			name: "openai responses items with a failure", provider: "openai",
			calls: `[{"type":"function_call","call_id":"call_c","name":"fail","arguments":"{}"},
				{"type":"function_call","call_id":"call_d","name":"greet","arguments":"{\"name\":\"\"}"}]`,
			want: `[{"type":"function_call_output","call_id":"call_c","output":"{\"error\":\"no luck\"}"},` +
				`{"type":"function_call_output","call_id":"call_d","output":"{\"error\":\"invalid params for greet: name: `,
		},
		{
			name: "openai chat completion", provider: "openai",
			calls: `{"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[
				{"id":"call_1","type":"function","function":{"name":"greet","arguments":"{\"name\":\"Bo\"}"}},
				{"id":"call_2","type":"function","function":{"name":"nosuch","arguments":"{}"}}]}}]}`,
			want: `[{"role":"tool","tool_call_id":"call_1","content":"Hello, Bo"},` +
				`{"role":"tool","tool_call_id":"call_2","content":"{\"error\":\"toolkit \\\"kit\\\" has no tool \\\"nosuch\\\" (its tools: block, echo, fail, gate, greet, nap, whoami)\"}"}]`,
		},
		{
			name: "openai-chat tool_calls", provider: "openai-chat",
			calls: `[{"id":"call_3","type":"function","function":{"name":"echo","arguments":"{}"}}]`,
			want:  `[{"role":"tool","tool_call_id":"call_3","content":"{}"}]`,
		},
		{
			name: "anthropic message", provider: "anthropic",
			calls: `{"id":"msg_1","type":"message","role":"assistant","stop_reason":"tool_use","content":[
				{"type":"text","text":"Let me check."},
				{"type":"tool_use","id":"toolu_1","name":"greet","input":{"name":"Cy"}},
				{"type":"tool_use","id":"toolu_2","name":"fail","input":{}}]}`,
			want: `[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"Hello, Cy"},` +
				`{"type":"tool_result","tool_use_id":"toolu_2","content":"no luck","is_error":true}]}]`,
		},
		{
			name: "anthropic blocks", provider: "anthropic",
			calls: `[{"type":"tool_use","id":"toolu_3","name":"greet","input":{"name":""}}]`,
			want:  `[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_3","content":"invalid params for greet: name: `,
		},
		{
			name: "mistral tool_calls, arguments as object and string", provider: "mistralai",
			calls: `{"role":"assistant","tool_calls":[
				{"id":"D681PevKs","type":"function","function":{"name":"greet","arguments":{"name":"Di"}}},
				{"id":"Q2w3E4r5T","type":"function","function":{"name":"echo","arguments":"{\"k\":[1,2]}"}}]}`,
			want: `[{"role":"tool","tool_call_id":"D681PevKs","name":"greet","content":"Hello, Di"},` +
				`{"role":"tool","tool_call_id":"Q2w3E4r5T","name":"echo","content":"{\"k\":[1,2]}"}]`,
		},
		{
			name: "gemini response", provider: "gemini",
			calls: `{"candidates":[{"content":{"role":"model","parts":[
				{"text":"Calling."},
				{"functionCall":{"name":"greet","args":{"name":"Eve"}},"thoughtSignature":"c2ln"},
				{"functionCall":{"id":"fc9","name":"echo","args":{"n":1}}},
				{"functionCall":{"id":"fc10","name":"fail","args":{}}}]}}]}`,
			want: `[{"role":"user","parts":[{"functionResponse":{"name":"greet","response":{"output":"Hello, Eve"}}},` +
				`{"functionResponse":{"name":"echo","id":"fc9","response":{"output":{"n":1}}}},` +
				`{"functionResponse":{"name":"fail","id":"fc10","response":{"error":"no luck"}}}]}]`,
		},
		{
			name: "no calls", provider: "anthropic",
			calls: `{"content":[{"type":"text","text":"Done."}]}`,
			want:  `[]`,
		},
	}
	for _, proto := range protocols {
		c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
		for _, tc := range cases {
			t.Run(proto+"/"+tc.name, func(t *testing.T) {
				got, err := c.CallTools(testCtx(t), "kit", tc.provider, json.RawMessage(tc.calls))
				if err != nil {
					t.Fatal(err)
				}
				if !json.Valid(got) || !strings.HasPrefix(string(got), tc.want) {
					t.Errorf("got  %s\nwant %s", got, tc.want)
				}
			})
		}
	}
}

// Calls run concurrently and come back in the input order: the first call
// can only finish after the second has run.
func TestCallToolsConcurrentInOrder(t *testing.T) {
	e := newEnv(t)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
			calls := fmt.Sprintf(`[
				{"type":"tool_use","id":"first","name":"gate","input":{"wait":"%[1]s-b"}},
				{"type":"tool_use","id":"second","name":"gate","input":{"open":"%[1]s-b","wait":"%[1]s-c"}},
				{"type":"tool_use","id":"third","name":"gate","input":{"open":"%[1]s-c"}}]`, proto)
			got, err := c.CallTools(testCtx(t), "kit", "anthropic", json.RawMessage(calls))
			if err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf(`[{"role":"user","content":[{"type":"tool_result","tool_use_id":"first","content":"passed %[1]s-b"},`+
				`{"type":"tool_result","tool_use_id":"second","content":"passed %[1]s-b%[1]s-c"},`+
				`{"type":"tool_result","tool_use_id":"third","content":"passed %[1]s-c"}]}]`, proto)
			if string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

// Sequential runs the calls in order: the second call's gate is opened by
// the first, which would deadlock the other way round.
func TestCallToolsSequential(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	calls := `[{"type":"function_call","call_id":"a","name":"gate","arguments":"{\"open\":\"seq\"}"},
		{"type":"function_call","call_id":"b","name":"gate","arguments":"{\"wait\":\"seq\"}"}]`
	got, err := c.CallTools(testCtx(t), "kit", "openai", json.RawMessage(calls), llmclient.Sequential())
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"type":"function_call_output","call_id":"a","output":"passed seq"},{"type":"function_call_output","call_id":"b","output":"passed seq"}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func TestCallResults(t *testing.T) {
	e := newEnv(t)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
			ctx := testCtx(t)

			r, err := c.Call(ctx, "kit", "echo", json.RawMessage(`{"a":[1,{"b":null}]}`))
			if err != nil || r.Failed() || string(r.Value) != `{"a":[1,{"b":null}]}` {
				t.Errorf("echo: %+v, %v", r, err)
			}
			r, err = c.Call(ctx, "kit", "echo", nil)
			if err != nil || string(r.Value) != `{}` {
				t.Errorf("echo without params: %+v, %v", r, err)
			}

			r, err = c.Call(ctx, "kit", "greet", json.RawMessage(`{"name":"","extra":1}`))
			if err != nil || !r.Failed() || !strings.HasPrefix(r.Error, "invalid params for greet: ") {
				t.Fatalf("invalid params: %+v, %v", r, err)
			}
			paths := map[string]bool{}
			for _, p := range r.Problems {
				paths[p.Path] = p.Message != ""
			}
			if !paths["name"] || !paths["extra"] {
				t.Errorf("problems = %+v, want name and extra", r.Problems)
			}

			r, err = c.Call(ctx, "kit", "fail", nil)
			if err != nil || r.Error != "no luck" {
				t.Errorf("fail: %+v, %v", r, err)
			}

			// The token reaches the tool; a tool that needs one and gets
			// none is never invoked.
			r, err = c.Call(ctx, "kit", "whoami", nil, llmclient.WithAuthToken("user-token-1"))
			if err != nil || r.Failed() || str(r.Value) != "token user-token-1" {
				t.Errorf("whoami: %+v, %v", r, err)
			}
			r, err = c.Call(ctx, "kit", "whoami", nil)
			if err != nil || !r.Failed() || !strings.Contains(r.Error, "auth") {
				t.Errorf("whoami without a token: %+v, %v", r, err)
			}

			r, err = c.Call(ctx, "nope", "echo", nil)
			if err != nil || r.Error != `toolkit "nope" not found` {
				t.Errorf("unknown toolkit: %+v, %v", r, err)
			}

			if _, err := c.Call(ctx, "kit", "echo", json.RawMessage(`{"a":`)); err == nil || !strings.Contains(err.Error(), "params are not valid JSON") {
				t.Errorf("bad JSON params: %v", err)
			}
			if _, err := c.Call(ctx, "kit", "", nil); err == nil || !strings.Contains(err.Error(), "tool is empty") {
				t.Errorf("no tool: %v", err)
			}
		})
	}
}

// A tool that does not answer within the call's timeout is an error the
// model reads, in the server's words.
func TestCallTimeout(t *testing.T) {
	e := newEnv(t)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
			got, err := c.CallTools(testCtx(t), "kit", "anthropic",
				json.RawMessage(`[{"type":"tool_use","id":"t1","name":"block","input":{}},{"type":"tool_use","id":"t2","name":"echo","input":{}}]`),
				llmclient.WithCallTimeout(50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			<-e.started
			want := `[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"toolkit \"kit\" did not answer the call to block within 50ms; a late reply will be dropped","is_error":true},` +
				`{"type":"tool_result","tool_use_id":"t2","content":"{}"}]}]`
			if string(got) != want {
				t.Errorf("got  %s\nwant %s", got, want)
			}
		})
	}
}

func TestOfflineToolkit(t *testing.T) {
	e := newEnv(t)
	_, key, err := e.srv.CreateKey(context.Background(), store.NewKey{Kind: store.KindToolkit, Name: "second"})
	if err != nil {
		t.Fatal(err)
	}
	other := runtime.NewToolkit("other", runtime.WithLogger(discard()))
	other.Add(&runtime.Tool{Name: "ping", Description: "Pings.", InputSchema: json.RawMessage(`{"type":"object"}`),
		Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return "pong", nil }})
	stop := e.serveToolkit(other, key)
	e.waitConnected(2)
	stop()
	e.waitConnected(1)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
			got, err := c.CallTools(testCtx(t), "other", "openai", json.RawMessage(`[{"type":"function_call","call_id":"c1","name":"ping","arguments":"{}"}]`))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(got), `[{"type":"function_call_output","call_id":"c1","output":"{\"error\":\"toolkit \\\"other\\\" is offline`) {
				t.Errorf("got %s", got)
			}
		})
	}
}

// Cancelling the context returns at once with the context's error.
func TestContextCancellation(t *testing.T) {
	e := newEnv(t)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
			ctx, cancel := context.WithCancel(testCtx(t))
			done := make(chan error, 1)
			go func() {
				_, err := c.CallTools(ctx, "kit", "openai", json.RawMessage(`[
					{"type":"function_call","call_id":"a","name":"block","arguments":"{}"},
					{"type":"function_call","call_id":"b","name":"echo","arguments":"{}"}]`))
				done <- err
			}()
			<-e.started
			cancel()
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			// The client is still usable.
			r, err := c.Call(testCtx(t), "kit", "greet", json.RawMessage(`{"name":"again"}`))
			if err != nil || str(r.Value) != "Hello, again" {
				t.Errorf("after cancel: %+v, %v", r, err)
			}
		})
	}
}

// Many goroutines share one client; over WebSocket they share one
// connection.
func TestConcurrentCallTools(t *testing.T) {
	e := newEnv(t)
	for _, proto := range protocols {
		t.Run(proto, func(t *testing.T) {
			logs := newEvents()
			c := e.client(llmclient.WithTransport(llmclient.Transport(proto)), llmclient.WithLogger(slogOf(logs)))
			ctx := testCtx(t)
			var wg sync.WaitGroup
			for g := range 16 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range 5 {
						calls := fmt.Sprintf(`[
							{"type":"function_call","call_id":"%[1]d-%[2]d-a","name":"echo","arguments":"{\"g\":%[1]d,\"i\":%[2]d}"},
							{"type":"function_call","call_id":"%[1]d-%[2]d-b","name":"greet","arguments":"{\"name\":\"g%[1]di%[2]d\"}"}]`, g, i)
						got, err := c.CallTools(ctx, "kit", "openai", json.RawMessage(calls))
						if err != nil {
							t.Error(err)
							return
						}
						want := fmt.Sprintf(`[{"type":"function_call_output","call_id":"%[1]d-%[2]d-a","output":"{\"g\":%[1]d,\"i\":%[2]d}"},`+
							`{"type":"function_call_output","call_id":"%[1]d-%[2]d-b","output":"Hello, g%[1]di%[2]d"}]`, g, i)
						if string(got) != want {
							t.Errorf("got  %s\nwant %s", got, want)
						}
					}
				}()
			}
			wg.Wait()
			if proto == string(llmclient.TransportWS) {
				if n := logs.count("llmclient: connected"); n != 1 {
					t.Errorf("%d WebSocket connections, want 1:\n%s", n, logs)
				}
			}
		})
	}
}

// A negative call timeout is refused before anything is sent: the server
// bounds every routed call and cannot be asked not to.
func TestNegativeCallTimeout(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	_, err := c.Call(testCtx(t), "kit", "echo", nil, llmclient.WithCallTimeout(-time.Second))
	if err == nil || !strings.Contains(err.Error(), "WithCallTimeout: expected a positive duration or 0 for the server's default, got -1s") {
		t.Fatalf("Call with a negative timeout: %v", err)
	}
}
