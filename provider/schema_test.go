package provider

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func mustTree(t *testing.T, raw []byte) any {
	t.Helper()
	v, err := parseTree(raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	return v
}

// definitionSchema digs the schema out of a provider's tool definition and
// says which dialect it is in.
func definitionSchema(t *testing.T, p string, def []byte) (schema *object, form string) {
	t.Helper()
	d := mustTree(t, def).(*object)
	get := func(o *object, k string) *object {
		v, _ := o.vals[k].(*object)
		return v
	}
	switch p {
	case OpenAI:
		form = "openai"
		if d.vals["strict"] == true {
			form = "openai-strict"
		}
		return get(d, "parameters"), form
	case OpenAIChat:
		fn := get(d, "function")
		form = "openai"
		if fn.vals["strict"] == true {
			form = "openai-strict"
		}
		return get(fn, "parameters"), form
	case Anthropic:
		return get(d, "input_schema"), "jsonschema"
	case Mistral:
		return get(get(d, "function"), "parameters"), "jsonschema"
	case Gemini:
		if s := get(d, "parameters"); s != nil {
			return s, "gemini-parameters"
		}
		if s := get(d, "parametersJsonSchema"); s != nil {
			return s, "jsonschema"
		}
		return nil, "gemini-none"
	case MCP:
		return get(d, "inputSchema"), "jsonschema"
	}
	t.Fatalf("unknown provider %s", p)
	return nil, ""
}

// TestConvertedSchemasObeyProviderRules checks, for every provider and
// every tool of testdata/tools.json, that the schema sent obeys the
// provider's own rules (strict checker, Gemini checker) and has a root
// properties object. That every converted schema is a valid JSON Schema
// that accepts every instance the canonical one accepts is checked against
// a general JSON Schema validator in module tests/interop (package
// providerschema), which keeps that validator out of this module.
func TestConvertedSchemasObeyProviderRules(t *testing.T) {
	for _, tt := range loadTools(t) {
		tool := tt.tool()
		for _, p := range Names() {
			t.Run(p+"/"+tt.Name, func(t *testing.T) {
				def, _, err := FormatTool(p, tool)
				if err != nil {
					t.Fatal(err)
				}
				schema, form := definitionSchema(t, p, def)
				if form == "gemini-none" {
					canonical := tool.InputSchema
					if canonical == nil {
						canonical = json.RawMessage(`{"type":"object"}`)
					}
					if props, _ := mustTree(t, canonical).(*object).vals["properties"].(*object); props != nil && props.len() > 0 {
						t.Fatal("gemini omitted parameters of a tool that has some")
					}
					return
				}
				if schema == nil {
					t.Fatalf("no schema in %s", def)
				}
				switch form {
				case "openai-strict":
					if v := checkStrict(schema); len(v) > 0 {
						t.Fatalf("strict schema breaks strict rules:\n  %s\n%s", strings.Join(v, "\n  "), encodeTree(schema))
					}
				case "gemini-parameters":
					if v := checkGeminiParams(schema); len(v) > 0 {
						t.Fatalf("Gemini parameters break Gemini's rules:\n  %s\n%s", strings.Join(v, "\n  "), encodeTree(schema))
					}
				}
				if p != MCP {
					if props, ok := schema.vals["properties"].(*object); !ok || props == nil {
						t.Fatalf("root has no properties object: %s", encodeTree(schema))
					}
				}
			})
		}
	}
}

var strictKeywords = map[string]bool{
	"type": true, "properties": true, "required": true, "additionalProperties": true, "items": true,
	"anyOf": true, "enum": true, "const": true, "$ref": true, "$defs": true, "definitions": true,
	"description": true, "title": true, "pattern": true, "format": true, "multipleOf": true,
	"maximum": true, "exclusiveMaximum": true, "minimum": true, "exclusiveMinimum": true,
	"minItems": true, "maxItems": true,
}

// checkStrict lists how a schema breaks OpenAI strict mode's rules
// (its structured outputs page, listed under Sources in doc.go).
func checkStrict(root *object) []string {
	var bad []string
	if root.vals["type"] != "object" {
		bad = append(bad, "root: type is not \"object\"")
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf", "enum", "const", "not"} {
		if root.has(k) {
			bad = append(bad, "root: has "+k)
		}
	}
	walkSchemas(root, func(o *object) {
		at := pointerOrRoot(o.src)
		for _, k := range o.keys {
			if !strictKeywords[k] {
				bad = append(bad, fmt.Sprintf("%s: keyword %s is not supported", at, k))
			}
		}
		if _, ok := o.vals["$ref"]; ok {
			if o.len() != 1 {
				bad = append(bad, at+": $ref has sibling keywords")
			}
			return
		}
		if !o.has("type") && !o.has("anyOf") {
			bad = append(bad, at+": no type")
		}
		if f, ok := o.str("format"); ok && !openAIStrictFormats[f] {
			bad = append(bad, at+": format "+f)
		}
		if hasType(o, "array") && !o.has("items") {
			bad = append(bad, at+": array without items")
		}
		if isObjectSchema(o) {
			if o.vals["additionalProperties"] != false {
				bad = append(bad, at+": additionalProperties is not false")
			}
			props, _ := o.vals["properties"].(*object)
			req, _ := stringList(o.vals["required"])
			if props == nil {
				bad = append(bad, at+": object without properties")
				return
			}
			if len(req) != props.len() {
				bad = append(bad, fmt.Sprintf("%s: required %v does not list every property %v", at, req, props.keys))
			}
			for _, r := range req {
				if !props.has(r) {
					bad = append(bad, at+": required names a missing property "+r)
				}
			}
		}
	})
	return bad
}

var geminiKeywords = map[string]bool{
	"anyOf": true, "default": true, "description": true, "enum": true, "example": true, "format": true,
	"items": true, "maxItems": true, "maxLength": true, "maxProperties": true, "maximum": true,
	"minItems": true, "minLength": true, "minProperties": true, "minimum": true, "nullable": true,
	"pattern": true, "properties": true, "propertyOrdering": true, "required": true, "title": true, "type": true,
}

var geminiTypes = map[string]bool{"STRING": true, "NUMBER": true, "INTEGER": true, "BOOLEAN": true, "ARRAY": true, "OBJECT": true, "NULL": true}

// checkGeminiParams lists how a schema breaks the rules of Gemini's
// parameters Schema (FunctionDeclaration, listed under Sources in doc.go).
func checkGeminiParams(root *object) []string {
	var bad []string
	if root.vals["type"] != "OBJECT" {
		bad = append(bad, "root: type is not OBJECT")
	}
	var walk func(v any, at string, isRoot bool)
	walk = func(v any, at string, isRoot bool) {
		o, ok := v.(*object)
		if !ok {
			bad = append(bad, at+": not an object schema")
			return
		}
		for _, k := range o.keys {
			if !geminiKeywords[k] {
				bad = append(bad, fmt.Sprintf("%s: unknown field %s", at, k))
			}
		}
		t, hasT := o.vals["type"].(string)
		if hasT && !geminiTypes[t] {
			bad = append(bad, fmt.Sprintf("%s: type %v", at, o.vals["type"]))
		}
		if !hasT && !o.has("anyOf") {
			bad = append(bad, at+": no type")
		}
		if e, ok := o.vals["enum"].([]any); ok {
			for _, x := range e {
				if _, ok := x.(string); !ok {
					bad = append(bad, at+": enum value that is not a string")
				}
			}
		}
		if f, ok := o.str("format"); ok && !geminiFormats[f] {
			bad = append(bad, at+": format "+f)
		}
		props, _ := o.vals["properties"].(*object)
		if (o.has("properties") || o.has("required")) && t != "OBJECT" {
			bad = append(bad, at+": properties or required on a non-OBJECT")
		}
		if t == "OBJECT" {
			if !isRoot && (props == nil || props.len() == 0) {
				bad = append(bad, at+": OBJECT without properties")
			}
			req, _ := stringList(o.vals["required"])
			for _, r := range req {
				if props == nil || !props.has(r) {
					bad = append(bad, at+": required names a missing property "+r)
				}
			}
		}
		if t == "ARRAY" && !o.has("items") {
			bad = append(bad, at+": ARRAY without items")
		}
		if props != nil {
			for _, name := range props.keys {
				if !geminiPropertyName.MatchString(name) {
					bad = append(bad, at+": property name "+name)
				}
				walk(props.vals[name], at+"/properties/"+name, false)
			}
		}
		if it, ok := o.get("items"); ok {
			walk(it, at+"/items", false)
		}
		if arr, ok := o.vals["anyOf"].([]any); ok {
			for i, b := range arr {
				walk(b, fmt.Sprintf("%s/anyOf/%d", at, i), false)
			}
		}
	}
	walk(root, "(root)", true)
	return bad
}

// The checkers must be able to fail, or the tests above prove nothing.
func TestCheckersCatchViolations(t *testing.T) {
	loose := mustTree(t, []byte(`{"type":"object","properties":{
		"a":{"type":"string","minLength":1},
		"b":{"type":"object","properties":{"c":{"type":"string"}}},
		"d":{"$ref":"#/$defs/D","description":"x"},
		"e":{},
		"f":{"type":"array"},
		"g":{"type":"string","format":"uri"}},
		"required":["a"]}`)).(*object)
	got := strings.Join(checkStrict(loose), "\n")
	for _, want := range []string{
		"/properties/a: keyword minLength is not supported",
		"/properties/b: additionalProperties is not false",
		"/properties/b: required [] does not list every property [c]",
		"/properties/d: $ref has sibling keywords",
		"/properties/e: no type",
		"/properties/f: array without items",
		"/properties/g: format uri",
		"(root): required [a] does not list every property",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("checkStrict missed %q; it said:\n%s", want, got)
		}
	}

	gem := mustTree(t, []byte(`{"type":"object","properties":{
		"a":{"type":"STRING","additionalProperties":false},
		"b":{"type":"OBJECT"},
		"c":{"type":"INTEGER","enum":[1]},
		"d-e":{"type":"STRING","format":"email"},
		"f":{"type":"ARRAY"},
		"g":{"description":"x"}},
		"required":["zz"]}`)).(*object)
	got = strings.Join(checkGeminiParams(gem), "\n")
	for _, want := range []string{
		"root: type is not OBJECT",
		"(root): type object",
		"/properties/a: unknown field additionalProperties",
		"/properties/b: OBJECT without properties",
		"/properties/c: enum value that is not a string",
		"(root): property name d-e",
		"/properties/d-e: format email",
		"/properties/f: ARRAY without items",
		"/properties/g: no type",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("checkGeminiParams missed %q; it said:\n%s", want, got)
		}
	}
}
