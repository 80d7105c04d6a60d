package provider

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"
)

type wantCall struct{ id, name, args string }

func checkCalls(t *testing.T, got []ToolCall, want []wantCall) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d calls %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		if (w.id != "" && g.ID != w.id) || g.Name != w.name || string(g.Arguments) != w.args {
			t.Errorf("call %d = {%q %q %s}, want {%q %q %s}", i, g.ID, g.Name, g.Arguments, w.id, w.name, w.args)
		}
		if w.id != "" && g.GeneratedID {
			t.Errorf("call %d: GeneratedID set for an id the model sent", i)
		}
	}
}

func TestParseOpenAIChatToolCalls(t *testing.T) {
	calls := `[
	  {"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":"{\"location\": \"Paris\", \"unit\": null}"}},
	  {"id":"call_def456","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"Europe/Paris\",\"n\":12345678901234567890}"}}]`
	want := []wantCall{
		{"call_abc123", "get_weather", `{"location":"Paris","unit":null}`},
		{"call_def456", "get_time", `{"tz":"Europe/Paris","n":12345678901234567890}`},
	}
	for name, raw := range map[string]string{
		"tool_calls array":   calls,
		"assistant message":  `{"role":"assistant","content":null,"tool_calls":` + calls + `}`,
		"whole completion":   `{"id":"chatcmpl-1","choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","tool_calls":` + calls + `}}]}`,
		"as provider openai": calls,
	} {
		t.Run(name, func(t *testing.T) {
			p := OpenAIChat
			if name == "as provider openai" {
				p = OpenAI
			}
			got, err := ParseToolCalls(p, json.RawMessage(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkCalls(t, got, want)
		})
	}
}

func TestParseOpenAIResponsesItems(t *testing.T) {
	output := `[
	  {"type":"reasoning","id":"rs_1","summary":[]},
	  {"type":"function_call","id":"fc_1","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}","status":"completed"},
	  {"type":"message","id":"msg_1","role":"assistant","content":[{"type":"output_text","text":"Checking."}]},
	  {"type":"function_call","id":"fc_2","call_id":"call_2","name":"ping","arguments":""}]`
	want := []wantCall{{"call_1", "get_weather", `{"city":"Oslo"}`}, {"call_2", "ping", `{}`}}
	for name, raw := range map[string]string{
		"output array":   output,
		"whole response": `{"id":"resp_1","object":"response","output":` + output + `}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseToolCalls(OpenAI, json.RawMessage(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkCalls(t, got, want)
		})
	}
	one, err := ParseToolCalls(OpenAI, json.RawMessage(`{"type":"function_call","call_id":"call_9","name":"x","arguments":"{}"}`))
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, one, []wantCall{{"call_9", "x", `{}`}})
}

func TestParseMistralToolCalls(t *testing.T) {
	raw := `{"role":"assistant","content":"","tool_calls":[
	  {"id":"D681PevKs","type":"function","function":{"name":"retrieve_payment_status","arguments":{"transaction_id":"T1001"}},"index":0},
	  {"id":"a1b2c3d4e","function":{"name":"refund","arguments":"{\"transaction_id\":\"T1002\"}"}},
	  {"id":"x9y8z7w6v","name":"note","arguments":{"text":"hi"}}]}`
	got, err := ParseToolCalls("mistralai", json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, got, []wantCall{
		{"D681PevKs", "retrieve_payment_status", `{"transaction_id":"T1001"}`},
		{"a1b2c3d4e", "refund", `{"transaction_id":"T1002"}`},
		{"x9y8z7w6v", "note", `{"text":"hi"}`},
	})
}

func TestParseAnthropicToolUse(t *testing.T) {
	content := `[
	  {"type":"text","text":"Let me check."},
	  {"type":"tool_use","id":"toolu_01A","name":"get_weather","input":{"location":"San Francisco, CA"}},
	  {"type":"thinking","thinking":"...","signature":"s"},
	  {"type":"tool_use","id":"toolu_01B","name":"ping","input":{}},
	  {"type":"tool_use","id":"toolu_01C","name":"noargs"}]`
	want := []wantCall{{"toolu_01A", "get_weather", `{"location":"San Francisco, CA"}`}, {"toolu_01B", "ping", `{}`}, {"toolu_01C", "noargs", `{}`}}
	for name, raw := range map[string]string{
		"content array": content,
		"whole message": `{"id":"msg_1","type":"message","role":"assistant","content":` + content + `,"stop_reason":"tool_use"}`,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := ParseToolCalls(Anthropic, json.RawMessage(raw))
			if err != nil {
				t.Fatal(err)
			}
			checkCalls(t, got, want)
		})
	}
	one, err := ParseToolCalls("claude", json.RawMessage(`{"type":"tool_use","id":"toolu_9","name":"x","input":{"a":[1,2]}}`))
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, one, []wantCall{{"toolu_9", "x", `{"a":[1,2]}`}})
	none, err := ParseToolCalls(Anthropic, json.RawMessage(`{"role":"assistant","content":"just text"}`))
	if err != nil || len(none) != 0 {
		t.Fatalf("plain text message: %v, %v", none, err)
	}
}

var generatedIDPattern = regexp.MustCompile(`^[a-zA-Z0-9]{9}$`)

func TestParseGeminiFunctionCalls(t *testing.T) {
	parts := `[
	  {"text":"Checking both."},
	  {"functionCall":{"name":"get_weather","args":{"city":"Paris"}},"thoughtSignature":"c2ln"},
	  {"functionCall":{"id":"fc-7","name":"get_time","args":{"tz":"CET"}}},
	  {"function_call":{"name":"ping"}}]`
	raw := `{"candidates":[{"content":{"role":"model","parts":` + parts + `},"finishReason":"STOP"}]}`
	got, err := ParseToolCalls(Gemini, json.RawMessage(raw))
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, got, []wantCall{{"", "get_weather", `{"city":"Paris"}`}, {"fc-7", "get_time", `{"tz":"CET"}`}, {"", "ping", `{}`}})
	for _, i := range []int{0, 2} {
		if !got[i].GeneratedID || !generatedIDPattern.MatchString(got[i].ID) {
			t.Errorf("call %d: id %q (generated %v), want a generated 9-character id", i, got[i].ID, got[i].GeneratedID)
		}
	}
	if got[0].ID == got[2].ID {
		t.Error("two calls got the same generated id")
	}

	// The same input gives the same ids, whatever the wrapping.
	for _, again := range []string{raw, `{"role":"model","parts":` + parts + `}`, parts} {
		g2, err := ParseToolCalls(Gemini, json.RawMessage(again))
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if g2[i].ID != got[i].ID {
				t.Errorf("call %d: id %q then %q", i, got[i].ID, g2[i].ID)
			}
		}
	}

	bare, err := ParseToolCalls(Gemini, json.RawMessage(`[{"name":"a","args":{"x":1}},{"name":"b","id":"i2"}]`))
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, bare, []wantCall{{"", "a", `{"x":1}`}, {"i2", "b", `{}`}})
}

func TestParseMCPToolCalls(t *testing.T) {
	got, err := ParseToolCalls(MCP, json.RawMessage(`[
	  {"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"get_weather","arguments":{"location":"New York"}}},
	  {"jsonrpc":"2.0","id":"a","method":"tools/list"},
	  {"name":"ping"}]`))
	if err != nil {
		t.Fatal(err)
	}
	checkCalls(t, got, []wantCall{{"2", "get_weather", `{"location":"New York"}`}, {"", "ping", `{}`}})
}

func TestParseToolCallsNone(t *testing.T) {
	for p, raw := range map[string]string{
		OpenAI:     `null`,
		OpenAIChat: `{"role":"assistant","content":"Hello"}`,
		Mistral:    `{"role":"assistant","content":"Hi","tool_calls":null}`,
		Anthropic:  `[]`,
		Gemini:     `{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}`,
	} {
		got, err := ParseToolCalls(p, json.RawMessage(raw))
		if err != nil || got == nil || len(got) != 0 {
			t.Errorf("%s %s: %v, %v; want an empty list", p, raw, got, err)
		}
	}
}

func TestParseToolCallsErrors(t *testing.T) {
	for _, tc := range []struct {
		name, provider, raw, want string
	}{
		{"unknown provider", "cohere", `[]`, `unknown provider "cohere"`},
		{"empty input", OpenAI, ``, "provider: openai: no tool calls given"},
		{"not JSON", Anthropic, `[{`, "provider: anthropic: tool calls are not valid JSON"},
		{"a number", OpenAI, `42`, "expected tool calls as a JSON array or object, got number"},
		{"missing name (Responses)", OpenAI, `[{"type":"function_call","call_id":"call_3","arguments":"{}"}]`,
			`tool call 0 (id "call_3"): name is missing`},
		{"missing name (chat)", OpenAIChat, `[{"id":"call_4","type":"function","function":{"arguments":"{}"}}]`,
			`tool call 0 (id "call_4"): name is missing`},
		{"missing name (Anthropic)", Anthropic, `[{"type":"tool_use","id":"toolu_2","input":{}}]`, `tool call 0 (id "toolu_2"): name is missing`},
		{"missing name (Gemini)", Gemini, `[{"functionCall":{"args":{}}}]`, "tool call 0: name is missing"},
		{"name not a string", OpenAIChat, `[{"id":"c","function":{"name":7}}]`, "name: expected a string, got number"},
		{"function not an object", OpenAIChat, `[{"id":"c","type":"function","function":"x"}]`, `tool call 0 (id "c"): function: expected an object, got string`},
		{"an element that is not an object", OpenAI, `["call"]`, "tool call 0: expected a JSON object, got string"},
		{"an object that is no tool call", OpenAIChat, `[{"id":"c","arguments":"{}"}]`, `tool call 0 (id "c"): not a tool call`},
		{"id not a string", Anthropic, `[{"type":"tool_use","id":5,"name":"x"}]`, "id: expected a string, got number"},
		{"second call no tool call", OpenAIChat, `[{"id":"ok","function":{"name":"a","arguments":"{}"}},{"id":"bad","arguments":"{}"}]`,
			`tool call 1 (id "bad"): not a tool call`},
		// Malformed arguments do not make up for a call that cannot be
		// answered.
		{"missing name, malformed arguments", OpenAI, `[{"type":"function_call","call_id":"call_5","arguments":"{"}]`,
			`tool call 0 (id "call_5"): name is missing`},
		{"id not a string, malformed arguments", OpenAIChat, `[{"id":["c"],"function":{"name":"x","arguments":"{"}}]`,
			`tool call 0 (name "x"): id: expected a string, got array`},
		{"duplicate key outside any arguments string", Anthropic, `[{"type":"tool_use","id":"t","name":"x","input":{"a":1,"a":2}}]`,
			`provider: anthropic: tool calls are not valid JSON: /0/input: duplicate key "a"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToolCalls(tc.provider, json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

// A call whose arguments cannot be read comes back in its place, with its id
// and name and an error the model can read; the calls around it are
// unaffected.
func TestParseToolCallsMalformedArguments(t *testing.T) {
	type bad struct {
		index         int
		id, name, err string
		generatedID   bool
		syntax        bool // Err wraps the *json.SyntaxError
	}
	for _, tc := range []struct {
		name, provider, raw string
		good                []wantCall
		bad                 bad
	}{
		{"openai responses, truncated string", OpenAI, `{"output":[
			{"type":"function_call","call_id":"call_1","name":"get_weather","arguments":"{\"city\":\"Oslo\"}"},
			{"type":"function_call","call_id":"call_2","name":"get_time","arguments":"{\"tz\": \"Europe/Par"}]}`,
			[]wantCall{{"call_1", "get_weather", `{"city":"Oslo"}`}},
			bad{1, "call_2", "get_time", "arguments: not valid JSON: unexpected end of input at offset 18", false, true}},
		{"openai-chat completion, trailing comma first", OpenAIChat, `{"choices":[{"message":{"role":"assistant","tool_calls":[
			{"id":"call_a","type":"function","function":{"name":"get_time","arguments":"{\"tz\":1,}"}},
			{"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{}"}}]}}]}`,
			[]wantCall{{"call_b", "get_weather", `{}`}},
			bad{0, "call_a", "get_time", "arguments: not valid JSON: invalid character '}' looking for beginning of object key string at offset 8", false, true}},
		{"openai-chat, string holding an array", OpenAIChat, `[
			{"id":"call_c","type":"function","function":{"name":"a","arguments":"{\"x\":1}"}},
			{"id":"call_d","type":"function","function":{"name":"b","arguments":"[1,2]"}}]`,
			[]wantCall{{"call_c", "a", `{"x":1}`}},
			bad{1, "call_d", "b", "arguments: expected a JSON object, got array", false, false}},
		{"openai-chat, duplicate key", OpenAIChat, `[
			{"id":"call_e","type":"function","function":{"name":"a","arguments":"{\"x\":{\"y\":1,\"y\":2}}"}},
			{"id":"call_f","type":"function","function":{"name":"b","arguments":"{\"x\":1}"}}]`,
			[]wantCall{{"call_f", "b", `{"x":1}`}},
			bad{0, "call_e", "a", `arguments: duplicate key "y" in /x`, false, false}},
		{"mistral, arguments a number", Mistral, `{"role":"assistant","tool_calls":[
			{"id":"D681PevKs","type":"function","function":{"name":"refund","arguments":{"transaction_id":"T1"}}},
			{"id":"a1b2c3d4e","type":"function","function":{"name":"refund","arguments":5}}]}`,
			[]wantCall{{"D681PevKs", "refund", `{"transaction_id":"T1"}`}},
			bad{1, "a1b2c3d4e", "refund", "arguments: expected a JSON object (or a string holding one), got number", false, false}},
		{"anthropic message, input an array", Anthropic, `{"role":"assistant","content":[
			{"type":"text","text":"Two calls."},
			{"type":"tool_use","id":"toolu_1","name":"greet","input":["Ada"]},
			{"type":"tool_use","id":"toolu_2","name":"greet","input":{"name":"Bo"}}]}`,
			[]wantCall{{"toolu_2", "greet", `{"name":"Bo"}`}},
			bad{0, "toolu_1", "greet", "arguments: expected a JSON object (or a string holding one), got array", false, false}},
		{"gemini response, args a string that is not JSON, no id", Gemini, `{"candidates":[{"content":{"parts":[
			{"functionCall":{"id":"fc1","name":"get_weather","args":{"city":"Paris"}}},
			{"functionCall":{"name":"get_time","args":"nope"}}]}}]}`,
			[]wantCall{{"fc1", "get_weather", `{"city":"Paris"}`}},
			bad{1, "", "get_time", "arguments: not valid JSON: invalid character 'o' in literal null (expecting 'u') at offset 1", true, true}},
		{"mcp, arguments an array", MCP, `[
			{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","arguments":{}}},
			{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"b","arguments":[]}}]`,
			[]wantCall{{"1", "a", `{}`}},
			bad{1, "2", "b", "arguments: expected a JSON object (or a string holding one), got array", false, false}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls, err := ParseToolCalls(tc.provider, json.RawMessage(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) != len(tc.good)+1 {
				t.Fatalf("got %d calls %+v, want %d", len(calls), calls, len(tc.good)+1)
			}
			var good []ToolCall
			for i, c := range calls {
				if i != tc.bad.index {
					if c.Err != nil {
						t.Errorf("call %d: Err = %v for good arguments", i, c.Err)
					}
					good = append(good, c)
				}
			}
			checkCalls(t, good, tc.good)

			b := calls[tc.bad.index]
			if b.Name != tc.bad.name || (tc.bad.id != "" && b.ID != tc.bad.id) || b.GeneratedID != tc.bad.generatedID {
				t.Errorf("bad call = {id %q name %q generated %v}, want {%q %q %v}", b.ID, b.Name, b.GeneratedID, tc.bad.id, tc.bad.name, tc.bad.generatedID)
			}
			if tc.bad.generatedID && !generatedIDPattern.MatchString(b.ID) {
				t.Errorf("generated id %q, want 9 letters and digits", b.ID)
			}
			if b.Arguments != nil {
				t.Errorf("bad call's Arguments = %s, want nil: they must not be run", b.Arguments)
			}
			if b.Err == nil || b.Err.Error() != tc.bad.err {
				t.Fatalf("bad call's Err = %v, want %q", b.Err, tc.bad.err)
			}
			var ae *ArgumentsError
			if !errors.As(b.Err, &ae) || "arguments: "+ae.Problem != tc.bad.err {
				t.Errorf("Err is %T %+v, want an *ArgumentsError", b.Err, ae)
			}
			var syn *json.SyntaxError
			if errors.As(b.Err, &syn) != tc.bad.syntax {
				t.Errorf("Err wraps a *json.SyntaxError: %v, want %v", !tc.bad.syntax, tc.bad.syntax)
			}
		})
	}
}

// A generated id for a call with malformed arguments is as stable as any
// other, and tells calls apart.
func TestParseToolCallsMalformedArgumentsGeneratedIDs(t *testing.T) {
	raw := json.RawMessage(`[{"functionCall":{"name":"f","args":"{"}},{"functionCall":{"name":"f","args":"{"}},{"functionCall":{"name":"f","args":[1]}}]`)
	first, err := ParseToolCalls(Gemini, raw)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseToolCalls(Gemini, raw)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for i, c := range first {
		if c.Err == nil || !c.GeneratedID || c.ID != again[i].ID {
			t.Errorf("call %d: id %q then %q (generated %v), Err %v", i, c.ID, again[i].ID, c.GeneratedID, c.Err)
		}
		if seen[c.ID] {
			t.Errorf("call %d: id %q given twice", i, c.ID)
		}
		seen[c.ID] = true
	}
}
