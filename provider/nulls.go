package provider

import (
	"encoding/json"
	"fmt"
)

// DropNullOptionals undoes OpenAI strict mode's "every property required"
// rule before arguments are validated against the canonical schema: it
// removes each property whose value is null, that the canonical schema does
// not require, and whose canonical schema does not accept null. It walks
// nested objects and arrays (through properties, items, $ref and a null
// union's other branch). Other values, and key order, are kept.
//
// A model in strict mode sends {"unit": null} for an optional "unit" it
// means to leave out; the canonical schema would reject that null.
func DropNullOptionals(schema, args json.RawMessage) (json.RawMessage, error) {
	doc, err := parseSchema(schema, "schema")
	if err != nil {
		return nil, fmt.Errorf("provider: %w", err)
	}
	v, err := parseTree(args)
	if err != nil {
		return nil, fmt.Errorf("provider: arguments are not valid JSON: %w", err)
	}
	dropNulls(doc, doc, v, 0)
	return encodeTree(v), nil
}

func dropNulls(doc, s, v any, depth int) {
	if depth > 64 {
		return
	}
	so, ok := s.(*object)
	if !ok {
		return
	}
	if r, ok := so.vals["$ref"].(string); ok {
		if _, t, err := resolveRef(doc, r); err == nil {
			dropNulls(doc, t, v, depth+1)
		}
	}
	// A nullable wrapper anyOf:[S, {"type":"null"}] applies S to non-null values.
	for _, k := range []string{"anyOf", "oneOf"} {
		if arr, ok := so.vals[k].([]any); ok && v != nil {
			var nonNull []any
			for _, b := range arr {
				if !isNullOnly(b) {
					nonNull = append(nonNull, b)
				}
			}
			if len(nonNull) == 1 {
				dropNulls(doc, nonNull[0], v, depth+1)
			}
		}
	}
	if arr, ok := so.vals["allOf"].([]any); ok {
		for _, b := range arr {
			dropNulls(doc, b, v, depth+1)
		}
	}
	switch val := v.(type) {
	case *object:
		props, _ := so.vals["properties"].(*object)
		if props == nil {
			return
		}
		req, _ := stringList(so.vals["required"])
		for _, k := range append([]string(nil), val.keys...) {
			ps, ok := props.vals[k]
			if !ok {
				continue
			}
			if val.vals[k] == nil && !contains(req, k) && !acceptsNull(doc, ps, 0) {
				val.del(k)
				continue
			}
			dropNulls(doc, ps, val.vals[k], depth+1)
		}
	case []any:
		if items, ok := so.vals["items"]; ok {
			for _, x := range val {
				dropNulls(doc, items, x, depth+1)
			}
		}
	}
}
