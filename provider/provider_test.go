package provider

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"openai": OpenAI, "OpenAI": OpenAI, " openai-responses ": OpenAI,
		"openai-chat": OpenAIChat, "openai_chat": OpenAIChat,
		"anthropic": Anthropic, "claude": Anthropic,
		"mistral": Mistral, "mistralai": Mistral, "MistralAI": Mistral,
		"gemini": Gemini, "google": Gemini,
		"mcp": MCP,
	} {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := Normalize("cohere")
	if err == nil || !strings.Contains(err.Error(), `unknown provider "cohere"`) ||
		!strings.Contains(err.Error(), "openai, openai-chat, anthropic, mistral (or mistralai), gemini, mcp") {
		t.Errorf("unknown provider error = %v", err)
	}
	if _, err := Normalize(" "); err == nil || !strings.Contains(err.Error(), "no provider named") {
		t.Errorf("empty provider error = %v", err)
	}
	for _, n := range Names() {
		if got, err := Normalize(n); err != nil || got != n {
			t.Errorf("Normalize(%q) = %q, %v", n, got, err)
		}
	}
	names := Names()
	names[0] = "changed"
	if Names()[0] != OpenAI {
		t.Error("Names returns the package's own slice")
	}
}

func TestFormatToolsErrors(t *testing.T) {
	good := Tool{Name: "ok", InputSchema: json.RawMessage(`{"type":"object"}`)}
	for _, tc := range []struct {
		name, provider string
		tool           Tool
		want           string
	}{
		{"unknown provider", "cohere", good, `unknown provider "cohere"`},
		{"empty name", OpenAI, Tool{}, "provider: openai: tools[1]: tool name is empty"},
		{"dot in an OpenAI name", OpenAI, Tool{Name: "crm.create"}, `tool "crm.create": name must match ^[a-zA-Z0-9_-]{1,64}$`},
		{"long Anthropic name", Anthropic, Tool{Name: strings.Repeat("a", 65)}, "name must match"},
		{"Gemini name starting with a digit", Gemini, Tool{Name: "1tool"}, `tool "1tool": name must match`},
		{"bad input schema", Mistral, Tool{Name: "x", InputSchema: json.RawMessage(`{"type":"string"}`)}, `tool "x": input schema: (root): tool parameters: expected an object schema`},
		{"input schema not JSON", MCP, Tool{Name: "x", InputSchema: json.RawMessage(`{`)}, `tool "x": input schema is not valid JSON`},
		{"output schema not JSON", MCP, Tool{Name: "x", OutputSchema: json.RawMessage(`{`)}, `tool "x": output schema is not valid JSON`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FormatTools(tc.provider, []Tool{good, tc.tool})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	// MCP and Gemini take dots; MCP takes long names.
	for _, p := range []string{MCP, Gemini} {
		if _, err := FormatTools(p, []Tool{{Name: "crm.create_company"}}); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestFormatToolsEmpty(t *testing.T) {
	for _, p := range Names() {
		out, err := FormatTools(p, nil)
		if err != nil || string(out) != "[]" {
			t.Errorf("%s: %s, %v", p, out, err)
		}
	}
}

func TestOpenAIChatDescriptionIsCut(t *testing.T) {
	long := strings.Repeat("é", openAIChatMaxDescription+10)
	def, changes, err := FormatTool(OpenAIChat, Tool{Name: "t", Description: long})
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Function struct{ Description string } `json:"function"`
	}
	if err := json.Unmarshal(def, &d); err != nil {
		t.Fatal(err)
	}
	if n := utf8.RuneCountInString(d.Function.Description); n != openAIChatMaxDescription || !strings.HasSuffix(d.Function.Description, "…") {
		t.Errorf("description has %d characters, want %d ending in …", n, openAIChatMaxDescription)
	}
	if !slices.ContainsFunc(changes, func(c Change) bool { return c.In == "tool" && c.Keyword == "description" && c.Action == Dropped }) {
		t.Errorf("no change reports the cut: %v", changes)
	}
	// At the limit, and on the Responses API, the description is whole.
	for _, tc := range []struct {
		p    string
		desc string
	}{{OpenAIChat, strings.Repeat("é", openAIChatMaxDescription)}, {OpenAI, long}} {
		def, _, err := FormatTool(tc.p, Tool{Name: "t", Description: tc.desc})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(def), `"description":"`+tc.desc+`"`) {
			t.Errorf("%s: description changed", tc.p)
		}
	}
}

func TestToolDefinitionShapes(t *testing.T) {
	tool := Tool{
		Name: "get_weather", Description: "Weather <now> & later",
		InputSchema:  json.RawMessage(`{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}`),
		OutputSchema: json.RawMessage(`{"type":"object","properties":{"t":{"type":"number"}}}`),
		ReadOnly:     true, Idempotent: true,
	}
	for _, tc := range []struct{ p, want string }{
		{OpenAI, `{"type":"function","name":"get_weather","description":"Weather <now> & later","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false},"strict":true}`},
		{OpenAIChat, `{"type":"function","function":{"name":"get_weather","description":"Weather <now> & later","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false},"strict":true}}`},
		{Anthropic, `{"name":"get_weather","description":"Weather <now> & later","input_schema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`},
		{Mistral, `{"type":"function","function":{"name":"get_weather","description":"Weather <now> & later","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}`},
		{Gemini, `{"name":"get_weather","description":"Weather <now> & later","parameters":{"type":"OBJECT","properties":{"city":{"type":"STRING"}},"required":["city"]}}`},
		{MCP, `{"name":"get_weather","description":"Weather <now> & later","inputSchema":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]},"outputSchema":{"type":"object","properties":{"t":{"type":"number"}}},"annotations":{"readOnlyHint":true,"idempotentHint":true}}`},
	} {
		def, _, err := FormatTool(tc.p, tool)
		if err != nil {
			t.Fatal(err)
		}
		if string(def) != tc.want {
			t.Errorf("%s\n got: %s\nwant: %s", tc.p, def, tc.want)
		}
	}
}

func TestGeminiToolWithoutParametersOmitsThem(t *testing.T) {
	for _, in := range []string{``, `{"type":"object","properties":{}}`, `{"type":"object","additionalProperties":false}`} {
		def, changes, err := FormatTool(Gemini, Tool{Name: "ping", Description: "d", InputSchema: json.RawMessage(in)})
		if err != nil {
			t.Fatal(err)
		}
		if string(def) != `{"name":"ping","description":"d"}` {
			t.Errorf("%q: %s", in, def)
		}
		if !slices.ContainsFunc(changes, func(c Change) bool { return c.In == "tool" && c.Keyword == "parameters" }) {
			t.Errorf("%q: no change reports the omission: %v", in, changes)
		}
	}
	def, _, err := FormatTool(Gemini, Tool{Name: "m", InputSchema: json.RawMessage(`{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"integer"}}}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(def), `"parametersJsonSchema":{"type":"object"`) || strings.Contains(string(def), `"parameters"`) {
		t.Errorf("a map should go as parametersJsonSchema: %s", def)
	}
}

func TestMCPOutputSchema(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
		dropped         bool
	}{
		{"none", ``, `{"name":"t","description":"","inputSchema":{"type":"object","properties":{}}}`, false},
		{"not an object", `{"type":"array","items":{"type":"string"}}`, `{"name":"t","description":"","inputSchema":{"type":"object","properties":{}}}`, true},
		{"no type, no properties", `{"description":"anything"}`, `{"name":"t","description":"","inputSchema":{"type":"object","properties":{}}}`, true},
		{"root $ref to an object", `{"$ref":"#/$defs/R","$defs":{"R":{"type":"object","properties":{"a":{"type":"string"}}}}}`,
			`{"name":"t","description":"","inputSchema":{"type":"object","properties":{}},"outputSchema":{"type":"object","properties":{"a":{"type":"string"}},"$defs":{"R":{"type":"object","properties":{"a":{"type":"string"}}}}}}`, false},
		{"properties without type", `{"properties":{"a":{"type":"string"}}}`,
			`{"name":"t","description":"","inputSchema":{"type":"object","properties":{}},"outputSchema":{"type":"object","properties":{"a":{"type":"string"}}}}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def, changes, err := FormatTool(MCP, Tool{Name: "t", OutputSchema: json.RawMessage(tc.out)})
			if err != nil {
				t.Fatal(err)
			}
			if string(def) != tc.want {
				t.Errorf("\n got: %s\nwant: %s", def, tc.want)
			}
			dropped := slices.ContainsFunc(changes, func(c Change) bool {
				return c.In == "output" && c.Keyword == "outputSchema" && c.Action == Dropped
			})
			if dropped != tc.dropped {
				t.Errorf("dropped = %v, want %v (%v)", dropped, tc.dropped, changes)
			}
		})
	}
}

func TestMCPAnnotations(t *testing.T) {
	for _, tc := range []struct {
		tool Tool
		want string
	}{
		{Tool{Name: "a"}, ``},
		{Tool{Name: "a", Destructive: true}, `"annotations":{"destructiveHint":true}`},
		{Tool{Name: "a", ReadOnly: true, Destructive: true, Idempotent: true}, `"annotations":{"readOnlyHint":true,"destructiveHint":true,"idempotentHint":true}`},
	} {
		def, _, err := FormatTool(MCP, tc.tool)
		if err != nil {
			t.Fatal(err)
		}
		has := strings.Contains(string(def), `"annotations"`)
		if (tc.want == "") == has || (tc.want != "" && !strings.Contains(string(def), tc.want)) {
			t.Errorf("%+v: %s, want %q", tc.tool, def, tc.want)
		}
	}
}

func TestInferSchema(t *testing.T) {
	for _, tc := range []struct {
		params, required []string
		want             string
	}{
		{[]string{"name", "greeting"}, []string{"name"},
			`{"type":"object","properties":{"name":{"type":"string"},"greeting":{"type":"string"}},"required":["name"],"x-atp-inferred":true}`},
		{nil, nil, `{"type":"object","properties":{},"x-atp-inferred":true}`},
		{[]string{"a", "", "a", "b"}, []string{"c", "a", "a", ""},
			`{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"string"},"c":{"type":"string"}},"required":["c","a"],"x-atp-inferred":true}`},
	} {
		if got := string(InferSchema(tc.params, tc.required)); got != tc.want {
			t.Errorf("InferSchema(%q, %q)\n got: %s\nwant: %s", tc.params, tc.required, got, tc.want)
		}
	}
	// Providers that reject unknown keywords lose the marker; MCP keeps it.
	s := InferSchema([]string{"q"}, nil)
	for _, p := range Names() {
		out, changes, err := ConvertSchema(p, s)
		if err != nil {
			t.Fatal(err)
		}
		kept := strings.Contains(string(out), InferredKeyword)
		if kept != (p == MCP) {
			t.Errorf("%s: marker kept = %v: %s", p, kept, out)
		}
		if p != MCP && !slices.ContainsFunc(changes, func(c Change) bool { return c.Keyword == InferredKeyword && c.Action == Stripped }) {
			t.Errorf("%s: no change reports the stripped marker", p)
		}
	}
}
