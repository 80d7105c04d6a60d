package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/invopop/jsonschema"
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
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	root, err := readJSON(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("schema JSON has data after its end")
	}
	var w jsonWriter
	w.schema(root)
	return w.buf.Bytes(), nil
}

// jsonNode is one JSON value, with object members in their order.
type jsonNode struct {
	kind   byte        // '{', '[' or 0 for a scalar
	scalar []byte      // a scalar's JSON text
	keys   []string    // an object's member names
	vals   []*jsonNode // an object's member values, or an array's items
}

func readJSON(dec *json.Decoder) (*jsonNode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("schema JSON: %w", err)
	}
	switch v := tok.(type) {
	case json.Delim:
		n := &jsonNode{kind: byte(v)}
		if v != '{' && v != '[' {
			return nil, fmt.Errorf("schema JSON: unexpected %c", v)
		}
		for dec.More() {
			if v == '{' {
				kt, err := dec.Token()
				if err != nil {
					return nil, fmt.Errorf("schema JSON: %w", err)
				}
				n.keys = append(n.keys, kt.(string)) // the decoder allows only strings here
			}
			val, err := readJSON(dec)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, val)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, fmt.Errorf("schema JSON: %w", err)
		}
		return n, nil
	case string:
		return &jsonNode{scalar: encodeString(v)}, nil
	case json.Number:
		return &jsonNode{scalar: []byte(v)}, nil
	case bool:
		return &jsonNode{scalar: []byte(fmt.Sprint(v))}, nil
	case nil:
		return &jsonNode{scalar: []byte("null")}, nil
	}
	return nil, fmt.Errorf("schema JSON: unexpected token %v", tok)
}

// encodeString writes s as a JSON string without encoding/json's HTML
// escapes (it still escapes U+2028 and U+2029, as JavaScript needs).
func encodeString(s string) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

type jsonWriter struct{ buf bytes.Buffer }

// schema writes n as a schema: an object gets its keywords ordered; true,
// false (and anything malformed) is written as it is.
func (w *jsonWriter) schema(n *jsonNode) {
	if n.kind != '{' {
		w.value(n)
		return
	}
	order := make([]int, len(n.keys))
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
		ka, kb := n.keys[a], n.keys[b]
		if ra, rb := rank(ka), rank(kb); ra != rb {
			return ra - rb
		}
		if rank(ka) == len(keywordOrder) {
			return strings.Compare(ka, kb)
		}
		return 0
	})
	w.buf.WriteByte('{')
	for i, j := range order {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		k, v := n.keys[j], n.vals[j]
		w.buf.Write(encodeString(k))
		w.buf.WriteByte(':')
		switch {
		case schemaValued[k] && v.kind == '[', schemaListValued[k]:
			w.list(v, w.schema)
		case schemaValued[k]:
			w.schema(v)
		case schemaMapValued[k]:
			w.object(v, w.schema)
		default:
			w.value(v)
		}
	}
	w.buf.WriteByte('}')
}

// value writes n as data: every object keeps its member order.
func (w *jsonWriter) value(n *jsonNode) {
	switch n.kind {
	case '{':
		w.object(n, w.value)
	case '[':
		w.list(n, w.value)
	default:
		w.buf.Write(n.scalar)
	}
}

// object writes an object's members in their order, each value with elem;
// anything else as data.
func (w *jsonWriter) object(n *jsonNode, elem func(*jsonNode)) {
	if n.kind != '{' {
		w.value(n)
		return
	}
	w.buf.WriteByte('{')
	for i, k := range n.keys {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		w.buf.Write(encodeString(k))
		w.buf.WriteByte(':')
		elem(n.vals[i])
	}
	w.buf.WriteByte('}')
}

// list writes an array's items with elem; anything else as data.
func (w *jsonWriter) list(n *jsonNode, elem func(*jsonNode)) {
	if n.kind != '[' {
		w.value(n)
		return
	}
	w.buf.WriteByte('[')
	for i, v := range n.vals {
		if i > 0 {
			w.buf.WriteByte(',')
		}
		elem(v)
	}
	w.buf.WriteByte(']')
}
