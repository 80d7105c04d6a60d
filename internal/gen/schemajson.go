package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"

	"github.com/atpgo/atp/internal/jsontree"
)

// marshalSchema renders a schema as the generated file embeds it: 2-space
// indented JSON with the keywords in keywordOrder, and with <, > and &
// written as they are (encoding/json escapes them for HTML, which makes
// patterns and descriptions hard to read).
func marshalSchema(s *jsonschema.Schema) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	ordered, err := orderSchemaKeys(b)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, ordered, "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// keywordOrder is the order the keywords of a schema object are written in:
// what the schema is and says, what the value is, its bounds, its parts,
// then annotations and definitions. invopop/jsonschema writes them in its
// struct's field order (properties first, type near the end), which reads
// badly in atp_gen.go and in the tool lists LLMs are given. Keywords not
// listed (extensions such as x-unit) follow, in byte order.
var keywordOrder = []string{
	"$schema", "$id", "$anchor", "$dynamicAnchor", "$ref", "$dynamicRef",
	"title", "description", "$comment",
	"type", "enum", "const", "format", "pattern",
	"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum", "multipleOf",
	"minLength", "maxLength",
	"minItems", "maxItems", "uniqueItems", "minContains", "maxContains",
	"minProperties", "maxProperties",
	"items", "prefixItems", "contains", "additionalItems", "unevaluatedItems",
	"properties", "patternProperties", "required", "dependentRequired",
	"additionalProperties", "propertyNames", "unevaluatedProperties", "dependentSchemas",
	"anyOf", "oneOf", "allOf", "not", "if", "then", "else",
	"default", "examples", "deprecated", "readOnly", "writeOnly",
	"contentEncoding", "contentMediaType", "contentSchema",
	"$defs", "definitions",
}

var keywordRank = func() map[string]int {
	m := make(map[string]int, len(keywordOrder))
	for i, k := range keywordOrder {
		m[k] = i
	}
	return m
}()

// What a keyword's value holds, for the keywords whose value holds
// schemas: everything else (enum, const, default, examples, required,
// extensions...) is data and is written exactly as it is.
var (
	// A schema; items and additionalItems may also be a list (draft 7 tuples).
	schemaValued = map[string]bool{
		"items": true, "additionalItems": true, "contains": true, "unevaluatedItems": true,
		"additionalProperties": true, "propertyNames": true, "unevaluatedProperties": true,
		"not": true, "if": true, "then": true, "else": true, "contentSchema": true,
	}
	// A list of schemas.
	schemaListValued = map[string]bool{"anyOf": true, "oneOf": true, "allOf": true, "prefixItems": true}
	// An object whose member names are data (property names, $defs keys)
	// and whose values are schemas: the names keep their order.
	schemaMapValued = map[string]bool{
		"properties": true, "patternProperties": true, "dependentSchemas": true, "$defs": true, "definitions": true,
	}
)

// orderSchemaKeys rewrites a JSON Schema (compact or not) as compact JSON
// with the keywords of every schema object in keywordOrder. Member names of
// properties, $defs and the like keep their order, and data (enum, default,
// examples, extensions...) is copied as it is: only keywords move. Numbers
// keep their text; strings are re-encoded without HTML escapes.
func orderSchemaKeys(b []byte) ([]byte, error) {
	if !json.Valid(b) {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			return nil, fmt.Errorf("schema JSON: %w", err)
		}
		return nil, errors.New("schema JSON is not valid")
	}
	root, _, err := jsontree.Parse(b, 0, nil)
	if err != nil {
		return nil, fmt.Errorf("schema JSON: %w", err)
	}
	var w jsonWriter
	w.schema(root)
	return w.buf, nil
}

type jsonWriter struct{ buf []byte }

// schema writes v as a schema: an object gets its keywords ordered; true,
// false (and anything malformed) is written as it is.
func (w *jsonWriter) schema(v *jsontree.Value) {
	if v.Kind != '{' {
		w.value(v)
		return
	}
	order := make([]int, len(v.Members))
	for i := range order {
		order[i] = i
	}
	rank := func(k string) int {
		if r, ok := keywordRank[k]; ok {
			return r
		}
		return len(keywordOrder)
	}
	slices.SortStableFunc(order, func(a, b int) int {
		ka, kb := v.Members[a].Key, v.Members[b].Key
		if ra, rb := rank(ka), rank(kb); ra != rb {
			return ra - rb
		}
		if rank(ka) == len(keywordOrder) {
			return strings.Compare(ka, kb)
		}
		return 0
	})
	w.buf = append(w.buf, '{')
	for i, j := range order {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		k, val := v.Members[j].Key, v.Members[j].Val
		w.buf = jsontree.AppendString(w.buf, k)
		w.buf = append(w.buf, ':')
		switch {
		case schemaValued[k] && val.Kind == '[', schemaListValued[k]:
			w.list(val, w.schema)
		case schemaValued[k]:
			w.schema(val)
		case schemaMapValued[k]:
			w.object(val, w.schema)
		default:
			w.value(val)
		}
	}
	w.buf = append(w.buf, '}')
}

// value writes v as data: every object keeps its member order.
func (w *jsonWriter) value(v *jsontree.Value) {
	switch v.Kind {
	case '{':
		w.object(v, w.value)
	case '[':
		w.list(v, w.value)
	case '"':
		w.buf = jsontree.AppendString(w.buf, v.Str)
	default:
		w.buf = append(w.buf, v.Raw...)
	}
}

// object writes an object's members in their order, each value with elem;
// anything else as data.
func (w *jsonWriter) object(v *jsontree.Value, elem func(*jsontree.Value)) {
	if v.Kind != '{' {
		w.value(v)
		return
	}
	w.buf = append(w.buf, '{')
	for i, m := range v.Members {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		w.buf = jsontree.AppendString(w.buf, m.Key)
		w.buf = append(w.buf, ':')
		elem(m.Val)
	}
	w.buf = append(w.buf, '}')
}

// list writes an array's items with elem; anything else as data.
func (w *jsonWriter) list(v *jsontree.Value, elem func(*jsontree.Value)) {
	if v.Kind != '[' {
		w.value(v)
		return
	}
	w.buf = append(w.buf, '[')
	for i, el := range v.Elems {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		elem(el)
	}
	w.buf = append(w.buf, ']')
}
