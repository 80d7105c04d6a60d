package provider

import (
	"encoding/json"
	"strings"
	"testing"
)

func sampleResults() []ToolResult {
	return []ToolResult{
		{Call: ToolCall{ID: "call_1", Name: "get_weather", Arguments: json.RawMessage(`{"city":"Paris"}`)},
			Result: json.RawMessage(`{"temp_c": 15, "note": "<mild> & dry"}`)},
		{Call: ToolCall{ID: "call_2", Name: "create_company"}, IsError: true, Error: "hubspot: 401 Unauthorized"},
		{Call: ToolCall{ID: "call_3", Name: "greet"}, Result: json.RawMessage(`"Hello, Ada"`)},
	}
}

func TestFormatToolResults(t *testing.T) {
	for _, tc := range []struct{ p, want string }{
		{OpenAI, `[
			{"type":"function_call_output","call_id":"call_1","output":"{\"temp_c\":15,\"note\":\"<mild> & dry\"}"},
			{"type":"function_call_output","call_id":"call_2","output":"{\"error\":\"hubspot: 401 Unauthorized\"}"},
			{"type":"function_call_output","call_id":"call_3","output":"Hello, Ada"}]`},
		{OpenAIChat, `[
			{"role":"tool","tool_call_id":"call_1","content":"{\"temp_c\":15,\"note\":\"<mild> & dry\"}"},
			{"role":"tool","tool_call_id":"call_2","content":"{\"error\":\"hubspot: 401 Unauthorized\"}"},
			{"role":"tool","tool_call_id":"call_3","content":"Hello, Ada"}]`},
		{Mistral, `[
			{"role":"tool","tool_call_id":"call_1","name":"get_weather","content":"{\"temp_c\":15,\"note\":\"<mild> & dry\"}"},
			{"role":"tool","tool_call_id":"call_2","name":"create_company","content":"{\"error\":\"hubspot: 401 Unauthorized\"}"},
			{"role":"tool","tool_call_id":"call_3","name":"greet","content":"Hello, Ada"}]`},
		{Anthropic, `[{"role":"user","content":[
			{"type":"tool_result","tool_use_id":"call_1","content":"{\"temp_c\":15,\"note\":\"<mild> & dry\"}"},
			{"type":"tool_result","tool_use_id":"call_2","content":"hubspot: 401 Unauthorized","is_error":true},
			{"type":"tool_result","tool_use_id":"call_3","content":"Hello, Ada"}]}]`},
		{Gemini, `[{"role":"user","parts":[
			{"functionResponse":{"name":"get_weather","id":"call_1","response":{"output":{"temp_c":15,"note":"<mild> & dry"}}}},
			{"functionResponse":{"name":"create_company","id":"call_2","response":{"error":"hubspot: 401 Unauthorized"}}},
			{"functionResponse":{"name":"greet","id":"call_3","response":{"output":"Hello, Ada"}}}]}]`},
		{MCP, `[
			{"content":[{"type":"text","text":"{\"temp_c\":15,\"note\":\"<mild> & dry\"}"}],"structuredContent":{"temp_c":15,"note":"<mild> & dry"}},
			{"content":[{"type":"text","text":"hubspot: 401 Unauthorized"}],"isError":true},
			{"content":[{"type":"text","text":"Hello, Ada"}]}]`},
	} {
		t.Run(tc.p, func(t *testing.T) {
			got, err := FormatToolResults(tc.p, sampleResults())
			if err != nil {
				t.Fatal(err)
			}
			if want := compact(t, tc.want); string(got) != want {
				t.Errorf("\n got: %s\nwant: %s", got, want)
			}
		})
	}
}

func TestFormatToolResultsErrorsStayReadable(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    ToolResult
		text string // what the model reads
	}{
		{"message only", ToolResult{Error: "boom"}, "boom"},
		{"flag and message", ToolResult{IsError: true, Error: "boom", Result: json.RawMessage(`{"error":"other"}`)}, "boom"},
		{"flag and an ATP error result", ToolResult{IsError: true, Result: json.RawMessage(`{"error":"quota exceeded"}`)}, `{"error":"quota exceeded"}`},
		{"flag and a string result", ToolResult{IsError: true, Result: json.RawMessage(`"bad city"`)}, "bad city"},
		{"flag and nothing else", ToolResult{IsError: true}, "the tool call failed without a message"},
		{"flag and null", ToolResult{IsError: true, Result: json.RawMessage(`null`)}, "the tool call failed without a message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.r.Call = ToolCall{ID: "c1", Name: "t"}
			out, err := FormatToolResults(Anthropic, []ToolResult{tc.r})
			if err != nil {
				t.Fatal(err)
			}
			var msgs []struct {
				Content []struct {
					Content string `json:"content"`
					IsError bool   `json:"is_error"`
				} `json:"content"`
			}
			if err := json.Unmarshal(out, &msgs); err != nil {
				t.Fatal(err)
			}
			b := msgs[0].Content[0]
			if b.Content != tc.text || !b.IsError {
				t.Errorf("content %q is_error %v, want %q true", b.Content, b.IsError, tc.text)
			}
			for _, p := range []string{OpenAI, OpenAIChat, Mistral, Gemini} {
				out, err := FormatToolResults(p, []ToolResult{tc.r})
				if err != nil {
					t.Fatal(err)
				}
				if strings.Contains(string(out), `{}`) || !strings.Contains(string(out), "error") {
					t.Errorf("%s: %s does not read as an error", p, out)
				}
			}
		})
	}
}

func TestFormatToolResultsValues(t *testing.T) {
	for _, tc := range []struct {
		result, output, gemini string
	}{
		{``, `null`, `null`},
		{`null`, `null`, `null`},
		{` 42 `, `42`, `42`},
		{`[1, {"b": 2, "a": 1}]`, `[1,{"b":2,"a":1}]`, `[1,{"b":2,"a":1}]`},
		{`"line\nbreak"`, "line\nbreak", `"line\nbreak"`},
		{`true`, `true`, `true`},
	} {
		r := []ToolResult{{Call: ToolCall{ID: "c", Name: "n"}, Result: json.RawMessage(tc.result)}}
		out, err := FormatToolResults(OpenAI, r)
		if err != nil {
			t.Fatal(err)
		}
		var items []struct{ Output string }
		if err := json.Unmarshal(out, &items); err != nil || items[0].Output != tc.output {
			t.Errorf("openai %q: output %q (%v), want %q", tc.result, items[0].Output, err, tc.output)
		}
		out, err = FormatToolResults(Gemini, r)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(out), `"response":{"output":`+tc.gemini+`}`) {
			t.Errorf("gemini %q: %s, want output %s", tc.result, out, tc.gemini)
		}
	}
}

func TestFormatToolResultsGeminiGeneratedIDs(t *testing.T) {
	calls, err := ParseToolCalls(Gemini, json.RawMessage(`[{"functionCall":{"name":"a","args":{}}},{"functionCall":{"id":"x1","name":"b","args":{}}}]`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := FormatToolResults(Gemini, []ToolResult{{Call: calls[0], Result: json.RawMessage(`1`)}, {Call: calls[1], Result: json.RawMessage(`2`)}})
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"role":"user","parts":[{"functionResponse":{"name":"a","response":{"output":1}}},{"functionResponse":{"name":"b","id":"x1","response":{"output":2}}}]}]`
	if string(out) != want {
		t.Errorf("\n got: %s\nwant: %s", out, want)
	}
}

func TestFormatToolResultsEmptyAndErrors(t *testing.T) {
	for _, p := range Names() {
		out, err := FormatToolResults(p, nil)
		if err != nil || string(out) != "[]" {
			t.Errorf("%s: %s, %v; want []", p, out, err)
		}
	}
	for _, tc := range []struct {
		name, p string
		r       ToolResult
		want    string
	}{
		{"no id", OpenAI, ToolResult{Call: ToolCall{Name: "x"}}, `provider: openai: results[1] (name "x"): the call's id is empty`},
		{"no id (anthropic)", Anthropic, ToolResult{Call: ToolCall{Name: "x"}}, "the call's id is empty"},
		{"no name (gemini)", Gemini, ToolResult{Call: ToolCall{ID: "i"}}, `results[1] (id "i"): the call's name is empty`},
		{"result not JSON", OpenAIChat, ToolResult{Call: ToolCall{ID: "i", Name: "x"}, Result: json.RawMessage(`{oops`)}, `results[1] (id "i", name "x"): result is not valid JSON`},
		{"unknown provider", "cohere", ToolResult{}, `unknown provider "cohere"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok := ToolResult{Call: ToolCall{ID: "ok", Name: "ok"}}
			_, err := FormatToolResults(tc.p, []ToolResult{ok, tc.r})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// Gemini and MCP need no id.
	for _, p := range []string{Gemini, MCP} {
		if _, err := FormatToolResults(p, []ToolResult{{Call: ToolCall{Name: "x"}}}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

// TestRoundTrip parses what each provider's model returns, answers every
// call, and checks that the messages echo each call's id, in order.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		p, model string
		ids      []string // ids the provider will read back, in order
		idPath   func(out []byte) []string
	}{
		{OpenAI, `{"output":[{"type":"function_call","call_id":"call_a","name":"f","arguments":"{}"},{"type":"reasoning"},{"type":"function_call","call_id":"call_b","name":"g","arguments":"{\"x\":1}"}]}`,
			[]string{"call_a", "call_b"}, func(out []byte) []string { return fieldOf(out, "call_id") }},
		{OpenAIChat, `{"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}},{"id":"call_2","type":"function","function":{"name":"f","arguments":"{}"}}]}`,
			[]string{"call_1", "call_2"}, func(out []byte) []string { return fieldOf(out, "tool_call_id") }},
		{Mistral, `[{"id":"aaaaaaaaa","function":{"name":"f","arguments":{}}},{"id":"bbbbbbbbb","function":{"name":"g","arguments":"{}"}}]`,
			[]string{"aaaaaaaaa", "bbbbbbbbb"}, func(out []byte) []string { return fieldOf(out, "tool_call_id") }},
		{Anthropic, `{"content":[{"type":"tool_use","id":"toolu_1","name":"f","input":{}},{"type":"text","text":"and"},{"type":"tool_use","id":"toolu_2","name":"g","input":{}}]}`,
			[]string{"toolu_1", "toolu_2"}, func(out []byte) []string {
				var msgs []struct {
					Content []struct {
						ID string `json:"tool_use_id"`
					} `json:"content"`
				}
				json.Unmarshal(out, &msgs)
				if len(msgs) != 1 {
					return nil
				}
				var ids []string
				for _, b := range msgs[0].Content {
					ids = append(ids, b.ID)
				}
				return ids
			}},
		{Gemini, `{"parts":[{"functionCall":{"id":"g1","name":"f","args":{}}},{"functionCall":{"id":"g2","name":"g","args":{}}}]}`,
			[]string{"g1", "g2"}, func(out []byte) []string {
				var msgs []struct {
					Parts []struct {
						FR struct{ ID string } `json:"functionResponse"`
					} `json:"parts"`
				}
				json.Unmarshal(out, &msgs)
				if len(msgs) != 1 {
					return nil
				}
				var ids []string
				for _, p := range msgs[0].Parts {
					ids = append(ids, p.FR.ID)
				}
				return ids
			}},
	} {
		t.Run(tc.p, func(t *testing.T) {
			calls, err := ParseToolCalls(tc.p, json.RawMessage(tc.model))
			if err != nil {
				t.Fatal(err)
			}
			var results []ToolResult
			for i, c := range calls {
				r := ToolResult{Call: c, Result: json.RawMessage(`{"n":` + string(rune('0'+i)) + `}`)}
				if i == 1 {
					r = ToolResult{Call: c, IsError: true, Error: "failed"}
				}
				results = append(results, r)
			}
			out, err := FormatToolResults(tc.p, results)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.idPath(out); strings.Join(got, ",") != strings.Join(tc.ids, ",") {
				t.Errorf("ids %v, want %v in %s", got, tc.ids, out)
			}
		})
	}
}

// fieldOf reads one string field of every object in a JSON array.
func fieldOf(out []byte, key string) []string {
	var items []map[string]any
	json.Unmarshal(out, &items)
	var vals []string
	for _, it := range items {
		s, _ := it[key].(string)
		vals = append(vals, s)
	}
	return vals
}

// A call whose arguments could not be read is answered with its Err, flagged
// as a failure, with nothing but the call given; an Error of its own wins.
func TestFormatToolResultsMalformedArguments(t *testing.T) {
	for _, tc := range []struct{ p, calls, want string }{
		{OpenAI, `[{"type":"function_call","call_id":"call_1","name":"f","arguments":"{}"},
			{"type":"function_call","call_id":"call_2","name":"g","arguments":"{\"a\":"}]`,
			`[{"type":"function_call_output","call_id":"call_1","output":"ok"},` +
				`{"type":"function_call_output","call_id":"call_2","output":"{\"error\":\"arguments: not valid JSON: unexpected end of input at offset 5\"}"}]`},
		{OpenAIChat, `[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}},
			{"id":"call_2","type":"function","function":{"name":"g","arguments":"7"}}]`,
			`[{"role":"tool","tool_call_id":"call_1","content":"ok"},` +
				`{"role":"tool","tool_call_id":"call_2","content":"{\"error\":\"arguments: expected a JSON object, got number\"}"}]`},
		{Mistral, `[{"id":"aaaaaaaaa","function":{"name":"f","arguments":{}}},{"id":"bbbbbbbbb","function":{"name":"g","arguments":true}}]`,
			`[{"role":"tool","tool_call_id":"aaaaaaaaa","name":"f","content":"ok"},` +
				`{"role":"tool","tool_call_id":"bbbbbbbbb","name":"g","content":"{\"error\":\"arguments: expected a JSON object (or a string holding one), got boolean\"}"}]`},
		{Anthropic, `[{"type":"tool_use","id":"toolu_1","name":"f","input":{}},{"type":"tool_use","id":"toolu_2","name":"g","input":"x"}]`,
			`[{"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":"ok"},` +
				`{"type":"tool_result","tool_use_id":"toolu_2","content":"arguments: not valid JSON: invalid character 'x' looking for beginning of value at offset 0","is_error":true}]}]`},
		{Gemini, `[{"functionCall":{"id":"g1","name":"f","args":{}}},{"functionCall":{"id":"g2","name":"g","args":[]}}]`,
			`[{"role":"user","parts":[{"functionResponse":{"name":"f","id":"g1","response":{"output":"ok"}}},` +
				`{"functionResponse":{"name":"g","id":"g2","response":{"error":"arguments: expected a JSON object (or a string holding one), got array"}}}]}]`},
		{MCP, `[{"name":"f","arguments":{}},{"name":"g","arguments":"{,}"}]`,
			`[{"content":[{"type":"text","text":"ok"}]},` +
				`{"content":[{"type":"text","text":"arguments: not valid JSON: invalid character ',' looking for beginning of object key string at offset 1"}],"isError":true}]`},
	} {
		t.Run(tc.p, func(t *testing.T) {
			calls, err := ParseToolCalls(tc.p, json.RawMessage(tc.calls))
			if err != nil {
				t.Fatal(err)
			}
			if len(calls) != 2 || calls[0].Err != nil || calls[1].Err == nil {
				t.Fatalf("calls = %+v, want a good one then a malformed one", calls)
			}
			out, err := FormatToolResults(tc.p, []ToolResult{{Call: calls[0], Result: json.RawMessage(`"ok"`)}, {Call: calls[1]}})
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tc.want {
				t.Errorf("\n got: %s\nwant: %s", out, tc.want)
			}
		})
	}
	bad, err := ParseToolCalls(Anthropic, json.RawMessage(`{"type":"tool_use","id":"t","name":"g","input":5}`))
	if err != nil {
		t.Fatal(err)
	}
	out, err := FormatToolResults(Anthropic, []ToolResult{{Call: bad[0], Error: "retry with an object"}})
	if want := `[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":"retry with an object","is_error":true}]}]`; err != nil || string(out) != want {
		t.Errorf("own Error: %s, %v; want %s", out, err, want)
	}
}
