package gen

import (
	"bytes"
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/invopop/jsonschema"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/internal/model"
)

func TestOrderSchemaKeys(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"every keyword, reversed, then extensions sorted",
			`{"x-b":1,"definitions":{},"$defs":{},"contentSchema":{},"contentMediaType":"m","contentEncoding":"base64","writeOnly":true,"readOnly":true,` +
				`"deprecated":true,"examples":[1],"default":1,"else":{},"then":{},"if":{},"not":{},"allOf":[],"oneOf":[],"anyOf":[],` +
				`"dependentSchemas":{},"unevaluatedProperties":false,"propertyNames":{},"additionalProperties":false,"dependentRequired":{},"required":[],` +
				`"patternProperties":{},"properties":{},"unevaluatedItems":false,"additionalItems":false,"contains":{},"prefixItems":[],"items":{},` +
				`"maxProperties":1,"minProperties":1,"maxContains":1,"minContains":1,"uniqueItems":true,"maxItems":1,"minItems":1,` +
				`"maxLength":1,"minLength":1,"multipleOf":1,"exclusiveMaximum":1,"maximum":1,"exclusiveMinimum":1,"minimum":1,` +
				`"pattern":"p","format":"f","const":1,"enum":[1],"type":"integer","$comment":"c","description":"d","title":"t",` +
				`"$dynamicRef":"#r","$ref":"#r","$dynamicAnchor":"a","$anchor":"a","$id":"i","$schema":"s","x-a":2,"$x":3}`,
			`{"$schema":"s","$id":"i","$anchor":"a","$dynamicAnchor":"a","$ref":"#r","$dynamicRef":"#r","title":"t","description":"d","$comment":"c",` +
				`"type":"integer","enum":[1],"const":1,"format":"f","pattern":"p",` +
				`"minimum":1,"exclusiveMinimum":1,"maximum":1,"exclusiveMaximum":1,"multipleOf":1,"minLength":1,"maxLength":1,` +
				`"minItems":1,"maxItems":1,"uniqueItems":true,"minContains":1,"maxContains":1,"minProperties":1,"maxProperties":1,` +
				`"items":{},"prefixItems":[],"contains":{},"additionalItems":false,"unevaluatedItems":false,` +
				`"properties":{},"patternProperties":{},"required":[],"dependentRequired":{},"additionalProperties":false,"propertyNames":{},` +
				`"unevaluatedProperties":false,"dependentSchemas":{},"anyOf":[],"oneOf":[],"allOf":[],"not":{},"if":{},"then":{},"else":{},` +
				`"default":1,"examples":[1],"deprecated":true,"readOnly":true,"writeOnly":true,"contentEncoding":"base64","contentMediaType":"m","contentSchema":{},` +
				`"$defs":{},"definitions":{},"$x":3,"x-a":2,"x-b":1}`},
		{"property names keep their order; their schemas are ordered",
			`{"properties":{"type":{"type":"string","description":"named type"},"$ref":{"items":{"type":"string"},"type":"array"},"b":{},"a":true},"type":"object"}`,
			`{"type":"object","properties":{"type":{"description":"named type","type":"string"},"$ref":{"type":"array","items":{"type":"string"}},"b":{},"a":true}}`},
		{"$defs keep their order; their schemas are ordered",
			`{"$defs":{"Z":{"type":"string","title":"z"},"A":{"$ref":"#/$defs/Z","description":"a"}},"$ref":"#/$defs/A"}`,
			`{"$ref":"#/$defs/A","$defs":{"Z":{"title":"z","type":"string"},"A":{"$ref":"#/$defs/Z","description":"a"}}}`},
		{"data is copied as it is",
			`{"x-meta":{"z":1,"type":{"b":2,"a":1}},"examples":[{"type":1,"$ref":2}],"default":{"properties":1,"$id":2},"const":{"b":1,"a":2},` +
				`"enum":[{"b":1,"a":2}],"required":["b","a"],"dependentRequired":{"b":["y","x"],"a":[]},"type":"object"}`,
			`{"type":"object","enum":[{"b":1,"a":2}],"const":{"b":1,"a":2},"required":["b","a"],"dependentRequired":{"b":["y","x"],"a":[]},` +
				`"default":{"properties":1,"$id":2},"examples":[{"type":1,"$ref":2}],"x-meta":{"z":1,"type":{"b":2,"a":1}}}`},
		{"schemas in lists and single subschemas are ordered",
			`{"anyOf":[{"minimum":1,"type":"integer"},{"type":"null"},true],"oneOf":[{"format":"x","type":"string"}],"allOf":[{"title":"t","$ref":"#a"}],` +
				`"prefixItems":[{"enum":[1],"type":"integer"}],"not":{"const":1,"type":"integer"},"if":{"required":["a"],"type":"object"},` +
				`"then":{"maxLength":1,"type":"string"},"else":{"pattern":"p","type":"string"},"contains":{"minimum":1,"type":"number"},` +
				`"propertyNames":{"pattern":"^a","type":"string"},"additionalProperties":{"items":{},"type":"array"},` +
				`"patternProperties":{"^b":{"format":"f","type":"string"},"^a":{}},"dependentSchemas":{"b":{"required":["a"],"type":"object"}},` +
				`"contentSchema":{"minimum":0,"type":"integer"}}`,
			`{"prefixItems":[{"type":"integer","enum":[1]}],"contains":{"type":"number","minimum":1},` +
				`"patternProperties":{"^b":{"type":"string","format":"f"},"^a":{}},"additionalProperties":{"type":"array","items":{}},` +
				`"propertyNames":{"type":"string","pattern":"^a"},"dependentSchemas":{"b":{"type":"object","required":["a"]}},` +
				`"anyOf":[{"type":"integer","minimum":1},{"type":"null"},true],"oneOf":[{"type":"string","format":"x"}],"allOf":[{"$ref":"#a","title":"t"}],` +
				`"not":{"type":"integer","const":1},"if":{"type":"object","required":["a"]},"then":{"type":"string","maxLength":1},"else":{"type":"string","pattern":"p"},` +
				`"contentSchema":{"type":"integer","minimum":0}}`},
		{"draft 7 tuple items are schemas",
			`{"items":[{"minimum":1,"type":"integer"},{"format":"f","type":"string"}],"additionalItems":{"maxLength":1,"type":"string"},"type":"array"}`,
			`{"type":"array","items":[{"type":"integer","minimum":1},{"type":"string","format":"f"}],"additionalItems":{"type":"string","maxLength":1}}`},
		{"boolean schemas stay", `true`, `true`},
		{"a keyword whose value is not the expected shape is copied",
			`{"properties":[{"type":"x","$ref":"y"}],"anyOf":{"type":"x","$ref":"y"},"type":"object"}`,
			`{"type":"object","properties":[{"type":"x","$ref":"y"}],"anyOf":{"type":"x","$ref":"y"}}`},
		{"strings are written without HTML escapes; other escapes and numbers keep their form",
			"{\"pattern\":\"^a\\u003cb\\u003e\\u0026c\\\\d\\\"$\",\"description\":\"µ \\u2028 \\t \\u0001 \\\\u003c\",\"maximum\":1e400,\"minimum\":-0.50}",
			"{\"description\":\"µ \\u2028 \\t \\u0001 \\\\u003c\",\"pattern\":\"^a<b>&c\\\\d\\\"$\",\"minimum\":-0.50,\"maximum\":1e400}"},
		{"whitespace in the input is dropped", "{ \"type\" : \"string\",\n \"title\": \"t\" }", `{"title":"t","type":"string"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := orderSchemaKeys([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("orderSchemaKeys\n got: %s\nwant: %s", got, tc.want)
			}
			// Only the order changes: both decode to the same value.
			a, b := decodeJSON(t, []byte(tc.in)), decodeJSON(t, got)
			if !reflect.DeepEqual(a, b) {
				t.Errorf("output decodes to %v, input to %v", b, a)
			}
			again, err := orderSchemaKeys(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("not idempotent: %s (%v)", again, err)
			}
		})
	}
}

// decodeJSON decodes b with numbers as their text, so that a number
// float64 cannot hold compares too.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

func TestOrderSchemaKeysRejectsBadJSON(t *testing.T) {
	for _, in := range []string{``, `{`, `{"a":}`, `{"a":1}}`, `{"a":1} {}`, `[1,]`, `{"a" 1}`, `{1:2}`} {
		if got, err := orderSchemaKeys([]byte(in)); err == nil {
			t.Errorf("orderSchemaKeys(%q) = %s, want an error", in, got)
		}
	}
}

// TestMarshalSchemaOrdersEverySchema checks every schema the run model's
// file embeds: each schema object's keywords are in keywordOrder (then
// extensions in byte order), the JSON means what invopop's marshalling
// means, and it is indented with 2 spaces.
func TestMarshalSchemaOrdersEverySchema(t *testing.T) {
	pkg := runModel()
	var tools []*model.Tool
	tools = append(tools, pkg.Tools...)
	for _, r := range pkg.Receivers {
		tools = append(tools, r.Tools...)
	}
	checked := 0
	for _, tool := range tools {
		g := newGenerator(pkg)
		schemas := []*jsonschema.Schema{g.inputSchema(tool)}
		if out := g.outputSchema(tool); out != nil {
			schemas = append(schemas, out)
		}
		for _, s := range schemas {
			plain, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			got, err := marshalSchema(s)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(decodeJSON(t, plain), decodeJSON(t, got)) {
				t.Errorf("tool %s: the ordered schema means something else:\n%s\ninvopop's:\n%s", tool.Name, got, plain)
			}
			if !bytes.HasPrefix(got, []byte("{\n  \"")) {
				t.Errorf("tool %s: schema is not indented with 2 spaces:\n%s", tool.Name, got)
			}
			root, _, err := jsontree.Parse(got, 0, nil)
			if err != nil {
				t.Fatal(err)
			}
			checkKeywordOrder(t, tool.Name, "#", root)
			checked++
		}
	}
	if checked < 10 {
		t.Errorf("checked only %d schemas", checked)
	}
}

// checkKeywordOrder walks a schema the way JSON Schema nests them and
// reports an object whose keywords are out of order.
func checkKeywordOrder(t *testing.T, tool, path string, n *jsontree.Value) {
	t.Helper()
	if n.Kind != '{' {
		return
	}
	pos := func(k string) int {
		if i := slices.Index(keywordOrder, k); i >= 0 {
			return i
		}
		return len(keywordOrder)
	}
	for i := 1; i < len(n.Members); i++ {
		a, b := n.Members[i-1].Key, n.Members[i].Key
		if pa, pb := pos(a), pos(b); pa > pb || (pa == pb && pa == len(keywordOrder) && a > b) {
			t.Errorf("tool %s: at %s, %q comes before %q", tool, path, a, b)
		}
	}
	for _, m := range n.Members {
		k, v := m.Key, m.Val
		switch {
		case k == "properties" || k == "$defs":
			for _, p := range v.Members {
				checkKeywordOrder(t, tool, path+"/"+k+"/"+p.Key, p.Val)
			}
		case k == "anyOf" || k == "oneOf" || k == "allOf":
			for j, e := range v.Elems {
				checkKeywordOrder(t, tool, path+"/"+k+"/"+strconv.Itoa(j), e)
			}
		case k == "items" || k == "additionalProperties" || k == "propertyNames":
			checkKeywordOrder(t, tool, path+"/"+k, v)
		}
	}
}
