package provider

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// strictRules applies OpenAI strict mode's object and type rules
// (its structured outputs page) to o, whose children are already converted.
func (c *converter) strictRules(o *object, isRoot bool, notes *[]note) (any, error) {
	ptr := o.src
	_, isRef := o.vals["$ref"]
	typed := func() bool { return o.has("type") || isRef || o.has("anyOf") }

	if !typed() {
		var vals []any
		if e, ok := o.vals["enum"].([]any); ok {
			vals = e
		} else if cst, ok := o.get("const"); ok {
			vals = []any{cst}
		}
		if vals != nil {
			ts := valueTypes(vals)
			if contains(ts, "object") || contains(ts, "array") {
				return nil, c.downgrade(ptr, "enum", "OpenAI strict mode takes only primitive enum and const values")
			}
			if len(ts) == 1 {
				o.setFirst("type", ts[0])
			} else {
				o.setFirst("type", anyList(ts))
			}
			c.change(ptr, "type", Added, "OpenAI strict mode needs a type on every schema: taken from the enum/const values")
		}
	}
	if !typed() {
		return nil, c.downgrade(ptr, "type", "OpenAI strict mode needs a type (or anyOf, or $ref) on every schema; this one accepts any value")
	}
	if hasType(o, "array") && !o.has("items") {
		return nil, c.downgrade(ptr, "items", "OpenAI strict mode needs items on every array schema")
	}
	if !isObjectSchema(o) {
		return o, nil
	}

	props, _ := o.vals["properties"].(*object)
	ap, hasAP := o.vals["additionalProperties"]
	switch {
	case hasAP && ap == false:
	case hasAP:
		return nil, c.downgrade(ptr, "additionalProperties",
			"OpenAI strict mode needs additionalProperties:false on every object; this one takes other keys (a map)")
	case (props == nil || props.len() == 0) && !isRoot:
		return nil, c.downgrade(ptr, "properties",
			"OpenAI strict mode cannot express a free-form object (no properties, other keys allowed)")
	default:
		o.set("additionalProperties", false)
		c.change(ptr, "additionalProperties", Added, "OpenAI strict mode requires additionalProperties:false on every object")
	}
	if props == nil {
		props = newObject(ptr + "/properties")
		o.setAfter("type", "properties", props)
	}
	req, _ := stringList(o.vals["required"])
	for _, r := range req {
		if !props.has(r) {
			return nil, c.downgrade(ptr, "required", fmt.Sprintf(
				"required names %q, which is not in properties: OpenAI strict mode cannot express it", r))
		}
	}
	isRequired := make(map[string]bool, len(req))
	for _, r := range req {
		isRequired[r] = true
	}
	for _, name := range props.keys {
		if isRequired[name] {
			continue
		}
		pv := props.vals[name]
		if acceptsNull(c.orig, pv, 0) {
			c.change(ptr, "required", Added, fmt.Sprintf(
				"optional property %q is listed as required: OpenAI strict mode requires every property (it already accepts null, which stands for absent)", name))
			continue
		}
		props.vals[name] = makeNullable(pv)
		c.change(ptr, "required", Added, fmt.Sprintf(
			"optional property %q is listed as required and made nullable: OpenAI strict mode requires every property (null stands for absent)", name))
	}
	o.setAfter("properties", "required", anyList(props.keys))
	return o, nil
}

// makeNullable widens a converted schema to also accept null, in the
// compact form when there is one: ["string","null"] for a primitive type
// (and null added to its enum), a null branch for an anyOf, else an anyOf
// wrapper that takes over description and title.
func makeNullable(v any) any {
	o, ok := v.(*object)
	if !ok {
		return v
	}
	if t, ok := o.vals["type"].(string); ok && isPrimitive(t) && !o.has("const") {
		o.vals["type"] = []any{t, "null"}
		if e, ok := o.vals["enum"].([]any); ok {
			o.vals["enum"] = append(e, nil)
		}
		return o
	}
	if arr, ok := o.vals["anyOf"].([]any); ok && !o.has("type") && !o.has("$ref") && !o.has("enum") && !o.has("const") {
		o.vals["anyOf"] = append(arr, nullSchema(o.src))
		return o
	}
	w := newObject(o.src)
	for _, k := range []string{"title", "description"} {
		if x, ok := o.get(k); ok {
			w.set(k, x)
			o.del(k)
		}
	}
	w.set("anyOf", []any{o, nullSchema(o.src)})
	return w
}

func nullSchema(src string) *object {
	n := newObject(src)
	n.set("type", "null")
	return n
}

func isPrimitive(t string) bool {
	return t == "string" || t == "number" || t == "integer" || t == "boolean"
}

// checkOpenAILimits enforces strict mode's size limits (its structured outputs page). Arrays count
// as nesting levels, to fail closed.
func checkOpenAILimits(root *object) error {
	var props, enumValues, chars int
	var tooLarge string
	walkSchemas(root, func(o *object) {
		if p, ok := o.vals["properties"].(*object); ok {
			props += p.len()
			for _, k := range p.keys {
				chars += utf8.RuneCountInString(k)
			}
		}
		for _, k := range []string{"$defs", "definitions"} {
			if m, ok := o.vals[k].(*object); ok {
				for _, name := range m.keys {
					chars += utf8.RuneCountInString(name)
				}
			}
		}
		if e, ok := o.vals["enum"].([]any); ok {
			enumValues += len(e)
			n, allStrings := valueChars(e)
			chars += n
			if len(e) > openAILargeEnum && allStrings && n > openAILargeEnumMaxChars && tooLarge == "" {
				tooLarge = o.src
			}
		}
		if cst, ok := o.get("const"); ok {
			n, _ := valueChars([]any{cst})
			chars += n
		}
	})
	limit := func(kw, what string, got, max int) error {
		return &downgradeError{Change{Keyword: kw, Action: Downgraded, Reason: fmt.Sprintf(
			"OpenAI strict mode allows at most %d %s; this schema has %d", max, what, got)}}
	}
	if props > openAIMaxProperties {
		return limit("properties", "object properties", props, openAIMaxProperties)
	}
	if enumValues > openAIMaxEnumValues {
		return limit("enum", "enum values in all", enumValues, openAIMaxEnumValues)
	}
	if chars > openAIMaxStringLength {
		return limit("enum", "characters of property names, definition names, enum and const values", chars, openAIMaxStringLength)
	}
	if tooLarge != "" {
		return &downgradeError{Change{Pointer: tooLarge, Keyword: "enum", Action: Downgraded, Reason: fmt.Sprintf(
			"OpenAI strict mode allows a string enum of more than %d values at most %d characters", openAILargeEnum, openAILargeEnumMaxChars)}}
	}
	depth := schemaDepth(root)
	for _, k := range []string{"$defs", "definitions"} {
		if m, ok := root.vals[k].(*object); ok {
			for _, name := range m.keys {
				depth = max(depth, schemaDepth(m.vals[name]))
			}
		}
	}
	if depth > openAIMaxDepth {
		return limit("properties", "levels of nesting", depth, openAIMaxDepth)
	}
	return nil
}

func valueChars(vals []any) (n int, allStrings bool) {
	allStrings = true
	for _, v := range vals {
		switch t := v.(type) {
		case string:
			n += utf8.RuneCountInString(t)
		case json.Number:
			n += len(t)
			allStrings = false
		default:
			allStrings = false
		}
	}
	return n, allStrings
}

// schemaDepth counts object and array levels on the deepest path (root
// definitions are measured on their own).
func schemaDepth(v any) int {
	o, ok := v.(*object)
	if !ok {
		return 0
	}
	self := 0
	if isObjectSchema(o) || hasType(o, "array") {
		self = 1
	}
	deepest := 0
	for _, k := range o.keys {
		if k == "$defs" || k == "definitions" {
			continue
		}
		switch schemaKeywordKind(k) {
		case oneSchema:
			deepest = max(deepest, schemaDepth(o.vals[k]))
		case schemaList:
			if arr, ok := o.vals[k].([]any); ok {
				for _, x := range arr {
					deepest = max(deepest, schemaDepth(x))
				}
			}
		case schemaMap:
			if m, ok := o.vals[k].(*object); ok {
				for _, name := range m.keys {
					deepest = max(deepest, schemaDepth(m.vals[name]))
				}
			}
		}
	}
	return self + deepest
}
