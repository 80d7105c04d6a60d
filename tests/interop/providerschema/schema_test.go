// Package providerschema checks package provider's converted schemas with a
// general JSON Schema validator (santhosh-tekuri/jsonschema): every schema
// sent to a provider is a valid draft 2020-12 schema (Gemini's OpenAPI
// dialect after translating it back), and accepts every instance the
// canonical schema accepts. The provider's own rules (OpenAI strict mode,
// Gemini's parameters) are checked by package provider's tests.
package providerschema

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/provider"
)

// testTool is one canonical tool of provider/testdata/tools.json, with
// instances that its canonical schema accepts.
type testTool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema"`
	Infer        *struct {
		Params   []string `json:"params"`
		Required []string `json:"required"`
	} `json:"infer"`
	Valid []json.RawMessage `json:"valid"`
}

func (tt testTool) tool() provider.Tool {
	in := tt.InputSchema
	if tt.Infer != nil {
		in = provider.InferSchema(tt.Infer.Params, tt.Infer.Required)
	}
	return provider.Tool{Name: tt.Name, Description: tt.Description, InputSchema: in, OutputSchema: tt.OutputSchema}
}

func loadTools(t *testing.T) []testTool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "..", "provider", "testdata", "tools.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tools []testTool
	if err := json.Unmarshal(data, &tools); err != nil {
		t.Fatalf("provider/testdata/tools.json: %v", err)
	}
	if len(tools) < 5 {
		t.Fatalf("only %d tools in provider/testdata/tools.json", len(tools))
	}
	return tools
}

// compile compiles a draft 2020-12 schema (checking it against the
// metaschema on the way).
func compile(t *testing.T, name string, raw []byte) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	url := "mem://" + name + ".json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s does not compile as JSON Schema 2020-12: %v\n%s", name, err, raw)
	}
	return sch
}

func validate(sch *jsonschema.Schema, instance []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(instance))
	if err != nil {
		return err
	}
	return sch.Validate(v)
}

// decode reads JSON with numbers kept as their text.
func decode(t *testing.T, raw []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	return v
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// definitionSchema digs the schema out of a provider's tool definition and
// says which dialect it is in.
func definitionSchema(t *testing.T, p string, def []byte) (schema map[string]any, form string) {
	t.Helper()
	d := decode(t, def).(map[string]any)
	get := func(o map[string]any, k string) map[string]any {
		v, _ := o[k].(map[string]any)
		return v
	}
	switch p {
	case provider.OpenAI:
		form = "openai"
		if d["strict"] == true {
			form = "openai-strict"
		}
		return get(d, "parameters"), form
	case provider.OpenAIChat:
		fn := get(d, "function")
		form = "openai"
		if fn["strict"] == true {
			form = "openai-strict"
		}
		return get(fn, "parameters"), form
	case provider.Anthropic:
		return get(d, "input_schema"), "jsonschema"
	case provider.Mistral:
		return get(get(d, "function"), "parameters"), "jsonschema"
	case provider.Gemini:
		if s := get(d, "parameters"); s != nil {
			return s, "gemini-parameters"
		}
		if s := get(d, "parametersJsonSchema"); s != nil {
			return s, "jsonschema"
		}
		return nil, "gemini-none"
	case provider.MCP:
		return get(d, "inputSchema"), "jsonschema"
	}
	t.Fatalf("unknown provider %s", p)
	return nil, ""
}

// TestConvertedSchemasAreValid checks, for every provider and every tool of
// provider/testdata/tools.json, that the schema sent is a valid JSON Schema
// and that it accepts every instance the canonical schema accepts: no
// conversion may reject a valid call. For OpenAI strict, the instance first
// gets null for every absent optional property, and DropNullOptionals must
// give the instance back.
func TestConvertedSchemasAreValid(t *testing.T) {
	for _, tt := range loadTools(t) {
		tool := tt.tool()
		canonical := tool.InputSchema
		if canonical == nil {
			canonical = json.RawMessage(`{"type":"object"}`)
		}
		canon := compile(t, tt.Name+"-canonical", canonical)
		for i, inst := range tt.Valid {
			if err := validate(canon, inst); err != nil {
				t.Fatalf("%s: testdata instance %d is not valid for the canonical schema: %v", tt.Name, i, err)
			}
		}
		for _, p := range provider.Names() {
			t.Run(p+"/"+tt.Name, func(t *testing.T) {
				def, _, err := provider.FormatTool(p, tool)
				if err != nil {
					t.Fatal(err)
				}
				schema, form := definitionSchema(t, p, def)
				if form == "gemini-none" {
					return // package provider's tests check the tool takes no parameters
				}
				if schema == nil {
					t.Fatalf("no schema in %s", def)
				}
				if form == "gemini-parameters" {
					schema = geminiToJSONSchema(schema).(map[string]any)
				}
				raw := encode(t, schema)
				sch := compile(t, p+"-"+tt.Name, raw)
				for i, inst := range tt.Valid {
					sent := inst
					if form == "openai-strict" {
						v := decode(t, inst)
						fillNulls(schema, schema, v)
						sent = encode(t, v)
						back, err := provider.DropNullOptionals(canonical, sent)
						if err != nil {
							t.Fatal(err)
						}
						// The canonical schema must accept what comes back, and
						// it must be the instance again, up to nulls where the
						// canonical schema takes null too (absent and null are
						// the same call for such a property).
						if err := validate(canon, back); err != nil {
							t.Errorf("instance %d: DropNullOptionals(%s) = %s, which the canonical schema rejects: %v", i, sent, back, err)
						}
						if g, w := withoutNulls(decode(t, back)), withoutNulls(decode(t, inst)); !reflect.DeepEqual(g, w) {
							t.Errorf("instance %d: DropNullOptionals(%s) = %s, want %s", i, sent, encode(t, g), encode(t, w))
						}
					}
					if err := validate(sch, sent); err != nil {
						t.Errorf("instance %d %s is valid for the canonical schema but not for %s's:\n%v\nschema: %s", i, sent, p, err, raw)
					}
				}
			})
		}
	}
}

// withoutNulls drops every null-valued object member.
func withoutNulls(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := map[string]any{}
		for k, x := range t {
			if x != nil {
				out[k] = withoutNulls(x)
			}
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = withoutNulls(x)
		}
		return out
	}
	return v
}

// resolve finds the target of a local $ref ("#/$defs/T") in doc.
func resolve(doc any, ref string) (any, bool) {
	ptr, ok := strings.CutPrefix(ref, "#")
	if !ok {
		return nil, false
	}
	cur := doc
	for _, tok := range strings.Split(ptr, "/")[1:] {
		tok = jsontree.UnescapePointer(tok)
		switch c := cur.(type) {
		case map[string]any:
			if cur, ok = c[tok]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(c) {
				return nil, false
			}
			cur = c[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// hasType and isObjectSchema read "type" as package provider does.
func hasType(o map[string]any, name string) bool {
	switch t := o["type"].(type) {
	case string:
		return strings.EqualFold(t, name)
	case []any:
		for _, x := range t {
			if s, ok := x.(string); ok && strings.EqualFold(s, name) {
				return true
			}
		}
	}
	return false
}

func isObjectSchema(o map[string]any) bool {
	switch o["type"].(type) {
	case string, []any:
		return hasType(o, "object")
	}
	_, props := o["properties"]
	return props
}

// fillNulls gives every absent property of an object the value null, as a
// model in strict mode does, following the converted schema s.
func fillNulls(doc, s, v any) {
	so, ok := s.(map[string]any)
	if !ok {
		return
	}
	if r, ok := so["$ref"].(string); ok {
		if target, ok := resolve(doc, r); ok {
			fillNulls(doc, target, v)
		}
		return
	}
	if arr, ok := so["anyOf"].([]any); ok {
		for _, b := range arr {
			if fits(doc, b, v) {
				fillNulls(doc, b, v)
				return
			}
		}
	}
	switch val := v.(type) {
	case map[string]any:
		props, _ := so["properties"].(map[string]any)
		for k, ps := range props {
			if x, ok := val[k]; ok {
				fillNulls(doc, ps, x)
			} else {
				val[k] = nil
			}
		}
	case []any:
		for _, x := range val {
			fillNulls(doc, so["items"], x)
		}
	}
}

// fits: branch b could describe v (right JSON type; an object's keys are
// all among its properties).
func fits(doc, b, v any) bool {
	bo, ok := b.(map[string]any)
	if !ok {
		return true
	}
	if r, ok := bo["$ref"].(string); ok {
		if target, ok := resolve(doc, r); ok {
			return fits(doc, target, v)
		}
	}
	switch val := v.(type) {
	case nil:
		return hasType(bo, "null")
	case map[string]any:
		if !isObjectSchema(bo) {
			return false
		}
		props, _ := bo["properties"].(map[string]any)
		for k := range val {
			if _, ok := props[k]; !ok {
				return false
			}
		}
		return true
	case []any:
		return hasType(bo, "array")
	}
	return !isObjectSchema(bo) && !hasType(bo, "array") && !hasType(bo, "null")
}

// geminiToJSONSchema translates Gemini's OpenAPI-subset Schema back into
// JSON Schema, so that a validator can check it accepts the instances.
func geminiToJSONSchema(v any) any {
	o, ok := v.(map[string]any)
	if !ok {
		return v
	}
	out := map[string]any{}
	nullable := o["nullable"] == true
	for k, x := range o {
		switch k {
		case "nullable", "example", "propertyOrdering":
			continue
		case "format":
			if x == "enum" {
				continue
			}
		case "type":
			t := strings.ToLower(fmt.Sprint(x))
			if nullable {
				out["type"] = []any{t, "null"}
			} else {
				out["type"] = t
			}
			continue
		case "enum":
			if nullable {
				out["enum"] = append(append([]any(nil), x.([]any)...), nil)
				continue
			}
		case "properties":
			props := map[string]any{}
			for name, ps := range x.(map[string]any) {
				props[name] = geminiToJSONSchema(ps)
			}
			out[k] = props
			continue
		case "items":
			out[k] = geminiToJSONSchema(x)
			continue
		case "anyOf":
			var arr []any
			for _, b := range x.([]any) {
				arr = append(arr, geminiToJSONSchema(b))
			}
			if _, typed := o["type"]; nullable && !typed {
				arr = append(arr, map[string]any{"type": "null"})
			}
			out[k] = arr
			continue
		}
		out[k] = x
	}
	return out
}
