package provider

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/atpgo/atp/internal/jsontree"
)

// geminiRules applies the rules of Gemini's OpenAPI-subset Schema
// (FunctionDeclaration.parameters; see Sources in doc.go) to o, whose
// children are already converted: one upper-case type per schema, null as
// nullable:true, string-only enums, no additionalProperties, and no OBJECT
// without properties.
func (c *converter) geminiRules(o *object, isRoot bool, notes *[]note) (any, error) {
	ptr := o.src
	nullable := false

	if arr, ok := o.vals["anyOf"].([]any); ok {
		kept := arr[:0:0]
		for _, b := range arr {
			if isNullOnly(b) {
				nullable = true
				continue
			}
			kept = append(kept, b)
		}
		if nullable {
			c.change(ptr, "anyOf", Rewritten, "Gemini parameters write a null branch as nullable:true")
			switch len(kept) {
			case 0:
				o.del("anyOf")
				o.setFirst("type", "null")
			case 1:
				if !mergeBranch(o, kept[0]) {
					o.vals["anyOf"] = kept
				}
			default:
				o.vals["anyOf"] = kept
			}
		}
	}

	if ts, ok := o.vals["type"].([]any); ok {
		names, _ := stringList(ts)
		var nonNull []string
		hasNull := false
		for _, n := range names {
			if strings.EqualFold(n, "null") {
				hasNull = true
			} else if !containsFold(nonNull, n) {
				nonNull = append(nonNull, n)
			}
		}
		switch len(nonNull) {
		case 0:
			o.vals["type"] = "null"
		case 1:
			o.vals["type"] = nonNull[0]
			if hasNull {
				nullable = true
				c.change(ptr, "type", Rewritten, "Gemini parameters take one type per schema: null is written as nullable:true")
			}
		default:
			return nil, c.downgrade(ptr, "type", "Gemini parameters take one type per schema, not "+string(encodeTree(ts)))
		}
	}

	if cst, ok := o.get("const"); ok {
		switch v := cst.(type) {
		case string:
			o.rename("const", "enum")
			o.vals["enum"] = []any{v}
			c.change(ptr, "const", Rewritten, "Gemini parameters have no const: written as a one-value enum")
		case nil:
			o.del("const")
			o.set("type", "null")
			c.change(ptr, "const", Rewritten, `Gemini parameters have no const: const null written as type "null"`)
		default:
			o.del("const")
			*notes = append(*notes, note{"const", cst})
			c.change(ptr, "const", Described, "Gemini parameters have no const and take only string enum values; noted in the description, enforced locally")
		}
	}

	if e, ok := o.vals["enum"].([]any); ok {
		strs := e[:0:0]
		other := false
		sawNull := false
		for _, v := range e {
			switch v.(type) {
			case string:
				strs = append(strs, v)
			case nil:
				sawNull = true
			default:
				other = true
			}
		}
		switch {
		case other:
			o.del("enum")
			*notes = append(*notes, note{"enum", e})
			c.change(ptr, "enum", Described, "Gemini parameters take only string enum values; noted in the description, enforced locally")
		case sawNull:
			nullable = true
			if len(strs) == 0 {
				o.del("enum")
			} else {
				o.vals["enum"] = strs
			}
			c.change(ptr, "enum", Rewritten, "Gemini parameters write null in an enum as nullable:true")
		}
		if o.has("enum") && !o.has("type") {
			o.setFirst("type", "string")
			c.change(ptr, "type", Added, `Gemini parameters need a type: "string" for a string enum`)
		}
	}

	if isObjectSchema(o) {
		props, _ := o.vals["properties"].(*object)
		if ap, ok := o.get("additionalProperties"); ok {
			if ap != false {
				return nil, c.downgrade(ptr, "additionalProperties",
					"Gemini parameters cannot describe an object that takes other keys (a map)")
			}
			o.del("additionalProperties")
			c.change(ptr, "additionalProperties", Dropped, "Gemini parameters have no additionalProperties; other keys are rejected locally")
		}
		if (props == nil || props.len() == 0) && !isRoot {
			return nil, c.downgrade(ptr, "properties", "Gemini parameters reject an OBJECT with no properties (a free-form object)")
		}
		if req, ok := stringList(o.vals["required"]); ok {
			kept := req[:0:0]
			for _, r := range req {
				if props != nil && props.has(r) {
					kept = append(kept, r)
					continue
				}
				c.change(ptr, "required", Dropped, fmt.Sprintf("required names %q, which is not in properties: Gemini rejects that; enforced locally", r))
			}
			if len(kept) == 0 {
				o.del("required")
			} else {
				o.vals["required"] = anyList(kept)
			}
		}
		if props != nil {
			for _, name := range props.keys {
				if !geminiPropertyName.MatchString(name) {
					return nil, c.downgrade(ptr+"/properties/"+jsontree.EscapePointer(name), "properties", fmt.Sprintf(
						"Gemini parameters need property names matching %s, got %q", geminiPropertyName, name))
				}
			}
		}
	}

	if nullable {
		o.setAfter("type", "nullable", true)
	}
	if !o.has("type") && !o.has("anyOf") {
		return nil, c.downgrade(ptr, "type", "Gemini parameters need a type on every schema; this one accepts any value")
	}
	if t, ok := o.vals["type"].(string); ok {
		o.vals["type"] = strings.ToUpper(t)
	}
	return o, nil
}

// isNullOnly: a converted branch that admits only null.
func isNullOnly(v any) bool {
	o, ok := v.(*object)
	if !ok {
		return false
	}
	t, ok := o.vals["type"].(string)
	if !ok || !strings.EqualFold(t, "null") {
		return false
	}
	for _, k := range o.keys {
		if k != "type" && k != "description" && k != "title" {
			return false
		}
	}
	return true
}

// mergeBranch folds the only non-null anyOf branch into o, where anyOf was,
// when their keywords do not conflict (o's description and title win).
func mergeBranch(o *object, b any) bool {
	bo, ok := b.(*object)
	if !ok {
		return false
	}
	for _, k := range bo.keys {
		if k == "description" || k == "title" || k == "anyOf" {
			continue
		}
		if cur, ok := o.vals[k]; ok && !equalJSON(cur, bo.vals[k]) {
			return false
		}
	}
	var keys []string
	for _, k := range o.keys {
		if k != "anyOf" {
			keys = append(keys, k)
			continue
		}
		for _, bk := range bo.keys {
			if _, ok := o.vals[bk]; !ok || bk == "anyOf" {
				keys = append(keys, bk)
			}
		}
	}
	delete(o.vals, "anyOf")
	// Both descriptions are kept: the branch's may carry notes of keywords
	// Gemini lacks.
	if od, ok := o.str("description"); ok && od != "" {
		if bd, ok := bo.str("description"); ok && bd != "" && bd != od {
			o.vals["description"] = od + "\n\n" + bd
		}
	}
	for _, k := range bo.keys {
		if _, ok := o.vals[k]; !ok {
			o.vals[k] = bo.vals[k]
		}
	}
	o.keys = keys
	return true
}

// geminiJSONRules: Gemini's JSON Schema (parametersJsonSchema) lists no
// const, and enums of strings and numbers only.
func (c *converter) geminiJSONRules(o *object, notes *[]note) error {
	ptr := o.src
	if cst, ok := o.get("const"); ok {
		o.rename("const", "enum")
		o.vals["enum"] = []any{cst}
		c.change(ptr, "const", Rewritten, "Gemini's JSON Schema support does not list const: written as a one-value enum")
	}
	if e, ok := o.vals["enum"].([]any); ok {
		for _, v := range e {
			switch v.(type) {
			case string, json.Number:
				continue
			}
			o.del("enum")
			*notes = append(*notes, note{"enum", e})
			c.change(ptr, "enum", Described, "Gemini takes enum values that are strings or numbers only; noted in the description, enforced locally")
			break
		}
	}
	return nil
}
