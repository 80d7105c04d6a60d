package llmclient_test

import (
	"encoding/json"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/provider"
)

// One call with malformed arguments in a batch: the other calls run on the
// real server and the bad one comes back as an error for its own id, which
// the model can read. Each bad call names echo, which would answer with its
// params had the call been sent, so a result other than the error means it
// was.
func TestCallToolsMalformedArguments(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, provider, calls, want string
	}{
		{
			name: "openai responses, truncated arguments", provider: "openai",
			calls: `{"output":[
				{"type":"function_call","call_id":"call_a","name":"greet","arguments":"{\"name\":\"Ada\"}"},
				{"type":"function_call","call_id":"call_b","name":"echo","arguments":"{\"n\":"}]}`,
			want: `[{"type":"function_call_output","call_id":"call_a","output":"Hello, Ada"},` +
				`{"type":"function_call_output","call_id":"call_b","output":"{\"error\":\"arguments: not valid JSON: unexpected end of input at offset 5\"}"}]`,
		},
		{
			name: "openai chat completion, bad call first", provider: "openai",
			calls: `{"choices":[{"message":{"role":"assistant","tool_calls":[
				{"id":"call_1","type":"function","function":{"name":"echo","arguments":"{\"n\":1,}"}},
				{"id":"call_2","type":"function","function":{"name":"greet","arguments":"{\"name\":\"Bo\"}"}}]}}]}`,
			want: `[{"role":"tool","tool_call_id":"call_1","content":"{\"error\":\"arguments: not valid JSON: invalid character '}' looking for beginning of object key string at offset 7\"}"},` +
				`{"role":"tool","tool_call_id":"call_2","content":"Hello, Bo"}]`,
		},
		{
			name: "openai-chat, arguments an array", provider: "openai-chat",
			calls: `[{"id":"call_3","type":"function","function":{"name":"echo","arguments":"[1]"}},
				{"id":"call_4","type":"function","function":{"name":"echo","arguments":"{\"k\":1}"}}]`,
			want: `[{"role":"tool","tool_call_id":"call_3","content":"{\"error\":\"arguments: expected a JSON object, got array\"}"},` +
				`{"role":"tool","tool_call_id":"call_4","content":"{\"k\":1}"}]`,
		},
		{
			name: "anthropic message, bad call between a success and a failure", provider: "anthropic",
			calls: `{"role":"assistant","content":[
				{"type":"tool_use","id":"toolu_1","name":"greet","input":{"name":"Cy"}},
				{"type":"tool_use","id":"toolu_2","name":"echo","input":["Cy"]},
				{"type":"tool_use","id":"toolu_3","name":"fail","input":{}}]}`,
			want: `[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"Hello, Cy"},` +
				`{"type":"tool_result","tool_use_id":"toolu_2","content":"arguments: expected a JSON object (or a string holding one), got array","is_error":true},` +
				`{"type":"tool_result","tool_use_id":"toolu_3","content":"no luck","is_error":true}]}]`,
		},
		{
			name: "mistral, arguments a number", provider: "mistralai",
			calls: `{"role":"assistant","tool_calls":[
				{"id":"D681PevKs","type":"function","function":{"name":"greet","arguments":{"name":"Di"}}},
				{"id":"Q2w3E4r5T","type":"function","function":{"name":"echo","arguments":42}}]}`,
			want: `[{"role":"tool","tool_call_id":"D681PevKs","name":"greet","content":"Hello, Di"},` +
				`{"role":"tool","tool_call_id":"Q2w3E4r5T","name":"echo","content":"{\"error\":\"arguments: expected a JSON object (or a string holding one), got number\"}"}]`,
		},
		{
			name: "gemini response, args not JSON, no id", provider: "gemini",
			calls: `{"candidates":[{"content":{"role":"model","parts":[
				{"functionCall":{"name":"echo","args":"{n:1}"}},
				{"functionCall":{"id":"fc2","name":"greet","args":{"name":"Eve"}}}]}}]}`,
			want: `[{"role":"user","parts":[{"functionResponse":{"name":"echo","response":{"error":"arguments: not valid JSON: invalid character 'n' looking for beginning of object key string at offset 1"}}},` +
				`{"functionResponse":{"name":"greet","id":"fc2","response":{"output":"Hello, Eve"}}}]}]`,
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
				if string(got) != tc.want {
					t.Errorf("got  %s\nwant %s", got, tc.want)
				}
			})
		}
	}
}

// Sequential calls skip the bad one and keep going: the third call's gate
// is opened by the first.
func TestCallToolsMalformedArgumentsSequential(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	calls := `[{"type":"function_call","call_id":"a","name":"gate","arguments":"{\"open\":\"seq-bad\"}"},
		{"type":"function_call","call_id":"b","name":"gate","arguments":"{\"wait\":"},
		{"type":"function_call","call_id":"c","name":"gate","arguments":"{\"wait\":\"seq-bad\"}"}]`
	got, err := c.CallTools(testCtx(t), "kit", "openai", json.RawMessage(calls), llmclient.Sequential())
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"type":"function_call_output","call_id":"a","output":"passed seq-bad"},` +
		`{"type":"function_call_output","call_id":"b","output":"{\"error\":\"arguments: not valid JSON: unexpected end of input at offset 8\"}"},` +
		`{"type":"function_call_output","call_id":"c","output":"passed seq-bad"}]`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// RunCalls answers calls with unreadable arguments itself: with nothing
// listening, a batch of them still gets its Results, in order, and no
// transport error.
func TestRunCallsMalformedArgumentsNotSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: any request would fail
	calls, err := provider.ParseToolCalls("anthropic", json.RawMessage(`[
		{"type":"tool_use","id":"t1","name":"echo","input":"{\"a\":"},
		{"type":"tool_use","id":"t2","name":"greet","input":7}]`))
	if err != nil {
		t.Fatal(err)
	}
	wantErrs := []string{
		"arguments: not valid JSON: unexpected end of input at offset 5",
		"arguments: expected a JSON object (or a string holding one), got number",
	}
	for _, proto := range protocols {
		for _, seq := range []bool{false, true} {
			name := proto
			var opts []llmclient.CallOption
			if seq {
				name += "/sequential"
				opts = append(opts, llmclient.Sequential())
			}
			t.Run(name, func(t *testing.T) {
				c, err := llmclient.New("atp_llm_key", llmclient.WithBaseURL("http://"+addr), llmclient.WithTransport(llmclient.Transport(proto)), llmclient.WithLogger(discard()))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				results, err := c.RunCalls(testCtx(t), "kit", calls, opts...)
				if err != nil {
					t.Fatal(err)
				}
				if len(results) != 2 {
					t.Fatalf("%d results, want 2", len(results))
				}
				for i, r := range results {
					wantValue, _ := json.Marshal(map[string]string{"error": wantErrs[i]})
					if !r.Failed() || r.Error != wantErrs[i] || r.Tool != calls[i].Name || r.ToolCallID != calls[i].ID || string(r.Value) != string(wantValue) {
						t.Errorf("results[%d] = %+v, want tool %s, id %s, error %q", i, r, calls[i].Name, calls[i].ID, wantErrs[i])
					}
				}
				if proto != string(llmclient.TransportHTTP) {
					return // a refused WebSocket dial is retried with backoff
				}
				// A good call in the same batch is sent, and fails for want
				// of a server: the client would have reported the bad ones'
				// requests the same way.
				good := append(calls[:2:2], provider.ToolCall{ID: "t3", Name: "echo", Arguments: json.RawMessage(`{}`)})
				if _, err := c.RunCalls(testCtx(t), "kit", good, opts...); err == nil || !strings.Contains(err.Error(), `calls[2] (echo, id "t3")`) {
					t.Errorf("with a good call: %v, want its transport error", err)
				}
			})
		}
	}
}

// A ToolCall built by hand with Err set is not sent either, and its Err
// need not be an *provider.ArgumentsError.
func TestRunCallsHandBuiltErr(t *testing.T) {
	e := newEnv(t)
	c := e.client()
	calls := []provider.ToolCall{
		{ID: "x1", Name: "echo", Arguments: json.RawMessage(`{"ok":true}`)},
		{ID: "x2", Name: "echo", Arguments: json.RawMessage(`{"ok":true}`), Err: errors.New("arguments: refused by the agent")},
	}
	results, err := c.RunCalls(testCtx(t), "kit", calls)
	if err != nil {
		t.Fatal(err)
	}
	if results[0].Failed() || string(results[0].Value) != `{"ok":true}` {
		t.Errorf("results[0] = %+v, want the echo", results[0])
	}
	if results[1].Error != "arguments: refused by the agent" || results[1].ToolCallID != "x2" {
		t.Errorf("results[1] = %+v, want the call's Err", results[1])
	}
}
