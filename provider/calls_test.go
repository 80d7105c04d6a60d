package provider

import (
	"encoding/json"
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
		{"malformed arguments string", OpenAIChat,
			`[{"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Par"}}]`,
			`provider: openai-chat: tool call 0 (id "call_1", name "get_weather"): arguments are not valid JSON`},
		{"arguments string holding an array", OpenAI,
			`{"type":"function_call","call_id":"call_2","name":"x","arguments":"[1,2]"}`,
			`tool call 0 (id "call_2", name "x"): arguments must be a JSON object, got array`},
		{"arguments a number", Mistral, `[{"id":"abcdefghi","function":{"name":"x","arguments":5}}]`,
			`tool call 0 (id "abcdefghi", name "x"): arguments must be a JSON object (or a string holding one), got number`},
		{"Anthropic input an array", Anthropic, `[{"type":"tool_use","id":"toolu_1","name":"x","input":[]}]`,
			`tool call 0 (id "toolu_1", name "x"): arguments must be a JSON object`},
		{"Gemini args a string that is not JSON", Gemini, `[{"functionCall":{"name":"x","args":"nope"}}]`,
			`tool call 0 (name "x"): arguments are not valid JSON`},
		{"missing name (Responses)", OpenAI, `[{"type":"function_call","call_id":"call_3","arguments":"{}"}]`,
			`tool call 0 (id "call_3"): name is missing`},
		{"missing name (chat)", OpenAIChat, `[{"id":"call_4","type":"function","function":{"arguments":"{}"}}]`,
			`tool call 0 (id "call_4"): name is missing`},
		{"missing name (Anthropic)", Anthropic, `[{"type":"tool_use","id":"toolu_2","input":{}}]`, `tool call 0 (id "toolu_2"): name is missing`},
		{"missing name (Gemini)", Gemini, `[{"functionCall":{"args":{}}}]`, "tool call 0: name is missing"},
		{"name not a string", OpenAIChat, `[{"id":"c","function":{"name":7}}]`, "name must be a string, got number"},
		{"function not an object", OpenAIChat, `[{"id":"c","type":"function","function":"x"}]`, `tool call 0 (id "c"): function: expected an object, got string`},
		{"an element that is not an object", OpenAI, `["call"]`, "tool call 0: expected a JSON object, got string"},
		{"an object that is no tool call", OpenAIChat, `[{"id":"c","arguments":"{}"}]`, `tool call 0 (id "c"): not a tool call`},
		{"id not a string", Anthropic, `[{"type":"tool_use","id":5,"name":"x"}]`, "id must be a string, got number"},
		{"second call bad", OpenAIChat, `[{"id":"ok","function":{"name":"a","arguments":"{}"}},{"id":"bad","function":{"name":"b","arguments":"{"}}]`,
			`tool call 1 (id "bad", name "b"): arguments are not valid JSON`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseToolCalls(tc.provider, json.RawMessage(tc.raw))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
