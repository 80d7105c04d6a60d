package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/atpgo/atp/internal/jsontree"
)

// converter rewrites one canonical schema into one dialect. It never touches
// orig, the parsed canonical schema: references are resolved against it, and
// the work happens on clones.
type converter struct {
	d      dialect
	orig   any
	log    changeLog
	cyclic map[string]bool // ref targets that can reach themselves
	// inlining counts the ref targets being inlined (a target can be on
	// the way to itself: Gemini unrolls recursion), so that a check costs
	// no more with a long chain of references.
	inlining map[string]int
	nodes    int
	// inlined counts the values copied by inlining references.
	inlined int
}

// downgradeError aborts a conversion whose dialect cannot express the schema.
type downgradeError struct{ change Change }

func (e *downgradeError) Error() string { return e.change.String() }

// cutMarker stands for a recursive reference that Gemini parameters unrolled
// as far as they go: the parent drops the property, branch or array that
// holds it.
var cutMarker = &object{}

func (c *converter) change(ptr, keyword string, a Action, reason string) {
	c.log.add(Change{Pointer: ptr, Keyword: keyword, Action: a, Reason: reason})
}

func (c *converter) downgrade(ptr, keyword, reason string) error {
	return &downgradeError{Change{Pointer: ptr, Keyword: keyword, Action: Downgraded, Reason: reason}}
}

// schemaError is a problem with the canonical schema itself.
func schemaError(ptr, format string, args ...any) error {
	return fmt.Errorf("%s: %s", pointerOrRoot(ptr), fmt.Sprintf(format, args...))
}

var errNotObject = errors.New("root is not an object schema")

// convertRoot converts a whole schema. With forInput, a missing schema means
// "no parameters" and the root gets properties:{}; without (output schemas)
// the root must already describe an object.
func convertRoot(d dialect, orig any, forInput bool) (*object, []Change, error) {
	c := &converter{d: d, orig: orig, cyclic: findCycles(orig)}

	var root *object
	switch t := clone(orig).(type) {
	case nil:
		root = newObject("")
	case bool:
		if !t {
			return nil, nil, schemaError("", "the schema is false: no value would ever be valid")
		}
		root = newObject("")
	case *object:
		root = t
	default:
		return nil, nil, schemaError("", "expected a schema (a JSON object), got %s", kindOf(t))
	}

	// A root $ref (invopop's default output) is inlined: every provider
	// wants the object itself at the root.
	if r, ok := root.get("$ref"); ok {
		ref, ok := r.(string)
		if !ok {
			return nil, nil, schemaError("", "$ref: expected a string, got %s", kindOf(r))
		}
		ptr, target, err := c.resolve(ref)
		if err != nil {
			return nil, nil, schemaError("", "$ref: %v", err)
		}
		if ptr == "" {
			return nil, nil, schemaError("", "$ref %q refers to the root itself", ref)
		}
		tobj, ok := target.(*object)
		if !ok {
			return nil, nil, schemaError("", "$ref %q must refer to an object schema, got %s", ref, kindOf(target))
		}
		merged := clone(tobj).(*object)
		for _, k := range root.keys {
			if k != "$ref" {
				merged.set(k, root.vals[k])
			}
		}
		merged.src = ""
		root = merged
		c.change("", "$ref", Rewritten, "the root $ref is replaced by the object it refers to: tool parameters must be an object schema")
	}

	// The root is an object.
	switch t := root.vals["type"].(type) {
	case nil:
		if root.has("type") {
			return nil, nil, schemaError("", "type: expected a string or an array of strings, got null")
		}
		if !forInput && !root.has("properties") {
			return nil, nil, errNotObject
		}
		root.setFirst("type", "object")
		if forInput && root.len() > 1 {
			c.change("", "type", Added, `tool parameters are an object: type "object" made explicit`)
		}
	case string:
		if t != "object" {
			if !forInput {
				return nil, nil, errNotObject
			}
			return nil, nil, schemaError("", `tool parameters: expected an object schema, got type %q`, t)
		}
	case []any:
		names, ok := stringList(t)
		if !ok || !contains(names, "object") {
			if !forInput {
				return nil, nil, errNotObject
			}
			return nil, nil, schemaError("", "tool parameters: expected an object schema, got type %s", encodeTree(t))
		}
		root.vals["type"] = "object"
		c.change("", "type", Rewritten, fmt.Sprintf("tool parameters are an object: type %s narrowed to \"object\"", encodeTree(t)))
	default:
		return nil, nil, schemaError("", "type: expected a string or an array of strings, got %s", kindOf(t))
	}
	if forInput {
		if p, ok := root.get("properties"); !ok || p == nil {
			root.setAfter("type", "properties", newObject("/properties"))
		}
	}

	res, err := c.object(root, true)
	if err != nil {
		return nil, nil, err
	}
	out, ok := res.(*object)
	if !ok || out == cutMarker {
		return nil, nil, schemaError("", "internal error: the root schema was replaced")
	}
	if err := c.definitions(out); err != nil {
		return nil, nil, err
	}
	if d == dOpenAIStrict {
		if err := checkOpenAILimits(out); err != nil {
			return nil, nil, err
		}
	}
	return out, c.log.list, nil
}

// schema converts the schema at ptr.
func (c *converter) schema(v any, ptr string) (any, error) {
	c.nodes++
	if c.nodes > maxSchemaNodes {
		return nil, schemaError(ptr, "the schema grows past %d schema objects once references are inlined", maxSchemaNodes)
	}
	switch t := v.(type) {
	case *object:
		return c.object(t, false)
	case bool:
		if c.d == dMCP {
			return t, nil
		}
		if t {
			c.change(ptr, "true", Rewritten, "the boolean schema true is written as {}")
			return c.object(newObject(ptr), false)
		}
		if c.d == dOpenAIStrict || c.d == dGeminiParams {
			return nil, c.downgrade(ptr, "false", c.d.String()+" cannot express the boolean schema false")
		}
		return t, nil
	default:
		return nil, schemaError(ptr, "expected a schema (an object or a boolean), got %s", kindOf(v))
	}
}

// object converts one schema object in place (or returns its replacement).
func (c *converter) object(o *object, isRoot bool) (any, error) {
	ptr := o.src
	if err := checkKeywords(o); err != nil {
		return nil, err
	}

	if r, ok := o.vals["$ref"].(string); ok && !isRoot {
		res, handled, err := c.ref(o, r)
		if handled || err != nil {
			return res, err
		}
	}

	// allOf: merge into the object where the dialect prefers it merged.
	if o.has("allOf") && dialectAllOf[c.d] != allOfKeep {
		merged, err := c.mergeAllOf(o)
		if err != nil {
			return nil, err
		}
		if merged {
			c.change(ptr, "allOf", Rewritten, "allOf merged into one schema")
			if o.has("$ref") && !isRoot {
				return c.object(o, isRoot) // the merge brought a $ref: handle it as such
			}
		} else {
			switch dialectAllOf[c.d] {
			case allOfMergeOrDowngrade:
				return nil, c.downgrade(ptr, "allOf", c.d.String()+" does not support allOf, and its branches cannot be merged")
			case allOfMergeOrDrop:
				o.del("allOf")
				c.change(ptr, "allOf", Dropped, c.d.String()+" does not support allOf, and its branches cannot be merged; enforced locally")
			}
		}
	}

	if isRoot {
		for _, k := range c.d.rootComposition() {
			if o.has(k) {
				o.del(k)
				c.change(ptr, k, Dropped, c.d.String()+" rejects "+k+" at the root of tool parameters; enforced locally")
			}
		}
	}

	if o.has("oneOf") && c.d.oneOfToAnyOf() {
		if o.has("anyOf") {
			o.del("oneOf")
			c.change(ptr, "oneOf", Dropped, c.d.String()+" does not support oneOf beside anyOf; enforced locally")
		} else {
			o.rename("oneOf", "anyOf")
			c.change(ptr, "oneOf", Rewritten, c.d.String()+" takes anyOf for oneOf (the model gets the same choices)")
		}
	}

	if c.d != dMCP && o.has("properties") && !o.has("type") {
		o.setFirst("type", "object")
		c.change(ptr, "type", Added, `an object with properties gets type "object"`)
	}

	var notes []note
	for _, k := range append([]string(nil), o.keys...) {
		v, ok := o.vals[k]
		if !ok {
			continue // removed by an earlier keyword's rule
		}
		a := c.d.action(k)
		switch a {
		case keep:
			if err := c.children(o, k); err != nil {
				return nil, err
			}
		case strip:
			o.del(k)
			c.change(ptr, k, Stripped, c.d.keywordReason(k, a))
		case describe:
			o.del(k)
			notes = append(notes, note{k, v})
			c.change(ptr, k, Described, c.d.keywordReason(k, a))
		case drop:
			o.del(k)
			c.change(ptr, k, Dropped, c.d.keywordReason(k, a))
			if k == "patternProperties" && o.vals["additionalProperties"] == false {
				// Without patternProperties, additionalProperties:false would
				// reject the very keys the patterns allowed.
				o.del("additionalProperties")
				c.change(ptr, "additionalProperties", Dropped,
					"additionalProperties:false goes with patternProperties, else the keys the patterns allow would be rejected; enforced locally")
			}
		case downgrade:
			return nil, c.downgrade(ptr, k, c.d.keywordReason(k, a))
		case structural:
			res, err := c.structural(o, k, isRoot, &notes)
			if err != nil || res == cutMarker {
				return res, err
			}
		}
	}

	var res any = o
	var err error
	switch c.d {
	case dOpenAIStrict:
		res, err = c.strictRules(o, isRoot, &notes)
	case dGeminiParams:
		res, err = c.geminiRules(o, isRoot, &notes)
	case dGeminiJSON:
		err = c.geminiJSONRules(o, &notes)
	}
	if err != nil || res == cutMarker {
		return res, err
	}
	appendNotes(o, notes)
	return res, nil
}

// structural handles a keyword with rules of its own. It returns cutMarker
// when the object must go (Gemini recursion cut in items).
func (c *converter) structural(o *object, k string, isRoot bool, notes *[]note) (any, error) {
	ptr := o.src
	switch k {
	case "$defs", "definitions":
		if isRoot {
			return nil, nil // converted by definitions once the rest is done
		}
		switch c.d {
		case dOpenAIStrict, dGeminiParams:
			// Every reference into a nested $defs is inlined in these
			// dialects (only root $defs are kept as such).
			o.del(k)
			c.change(ptr, k, Stripped, "nested "+k+" are inlined where they are referenced")
			return nil, nil
		}
		return nil, c.children(o, k)
	case "allOf", "anyOf", "oneOf", "properties", "items", "additionalProperties":
		return c.childrenCut(o, k)
	case "format":
		allowed := c.d.formats()
		f, _ := o.vals[k].(string)
		if allowed != nil && !allowed[f] {
			v := o.vals[k]
			o.del(k)
			*notes = append(*notes, note{k, v})
			c.change(ptr, k, Described, fmt.Sprintf("%s does not support format %s; noted in the description, enforced locally", c.d, encodeTree(v)))
		}
	case "examples":
		// Only Gemini parameters get here (structural in its column): it
		// takes one example.
		if arr, ok := o.vals[k].([]any); ok && len(arr) > 0 && !o.has("example") {
			o.rename(k, "example")
			o.vals["example"] = arr[0]
			c.change(ptr, k, Rewritten, "Gemini parameters take one example: the first of examples")
		} else {
			o.del(k)
			c.change(ptr, k, Stripped, "annotation Gemini parameters do not take")
		}
	}
	return nil, nil
}

// children converts the subschemas held by keyword k of o, if it holds any.
func (c *converter) children(o *object, k string) error {
	res, err := c.childrenCut(o, k)
	if err == nil && res == cutMarker {
		// Only Gemini parameters cut, and they keep none of the keywords
		// that reach here; be safe anyway.
		o.del(k)
	}
	return err
}

// childrenCut converts the subschemas under keyword k. A cut in a property or
// a branch removes that property or branch; a cut elsewhere (items) or of
// every branch cuts o itself.
func (c *converter) childrenCut(o *object, k string) (any, error) {
	ptr := o.src
	kptr := ptr + "/" + jsontree.EscapePointer(k)
	v := o.vals[k]
	switch schemaKeywordKind(k) {
	case oneSchema:
		if k == "additionalProperties" || k == "unevaluatedProperties" || k == "unevaluatedItems" {
			if _, isBool := v.(bool); isBool {
				return nil, nil // a boolean here is a rule, not a schema to rewrite
			}
		}
		if k == "items" {
			if _, isArr := v.([]any); isArr {
				return nil, schemaError(ptr, "items: expected a schema (draft 2020-12), got an array; use prefixItems for tuples")
			}
		}
		nv, err := c.schema(v, kptr)
		if err != nil {
			return nil, err
		}
		if nv == cutMarker {
			return cutMarker, nil
		}
		o.vals[k] = nv
	case schemaList:
		arr := v.([]any) // checked by checkKeywords
		out := arr[:0:0]
		for i, x := range arr {
			nv, err := c.schema(x, kptr+"/"+strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			if nv == cutMarker {
				continue
			}
			out = append(out, nv)
		}
		if len(out) == 0 || (len(out) < len(arr) && allNullOnly(out)) {
			// Every branch was cut, or only null is left: the value could
			// only ever be null, so it goes with the cut.
			return cutMarker, nil
		}
		o.vals[k] = out
	case schemaMap:
		if v == nil && k == "properties" {
			o.vals[k] = newObject(kptr)
			c.change(ptr, k, Rewritten, "properties null written as {}")
			return nil, nil
		}
		m := v.(*object) // checked by checkKeywords
		for _, name := range append([]string(nil), m.keys...) {
			nv, err := c.schema(m.vals[name], kptr+"/"+jsontree.EscapePointer(name))
			if err != nil {
				return nil, err
			}
			if nv == cutMarker {
				m.del(name)
				if req, ok := stringList(o.vals["required"]); ok {
					o.vals["required"] = anyList(without(req, name))
				}
				c.change(kptr+"/"+jsontree.EscapePointer(name), "$ref", Dropped, fmt.Sprintf(
					"recursive reference unrolled %d levels: Gemini parameters cannot express recursion; the property is omitted below that depth",
					geminiUnrollDepth))
				continue
			}
			m.vals[name] = nv
		}
	}
	return nil, nil
}

type keywordKind uint8

const (
	notSchema keywordKind = iota
	oneSchema
	schemaList
	schemaMap
)

func schemaKeywordKind(k string) keywordKind {
	switch k {
	case "items", "additionalProperties", "unevaluatedProperties", "unevaluatedItems", "propertyNames",
		"contains", "not", "if", "then", "else", "contentSchema", "additionalItems":
		return oneSchema
	case "allOf", "anyOf", "oneOf", "prefixItems":
		return schemaList
	case "properties", "patternProperties", "dependentSchemas", "$defs", "definitions":
		return schemaMap
	}
	return notSchema
}

var typeNames = map[string]bool{
	"string": true, "number": true, "integer": true, "boolean": true, "array": true, "object": true, "null": true,
}

// checkKeywords rejects keyword values of the wrong JSON type, before any
// rule reads them.
func checkKeywords(o *object) error {
	ptr := o.src
	for _, k := range o.keys {
		v := o.vals[k]
		switch k {
		case "type":
			switch t := v.(type) {
			case string:
				if !typeNames[strings.ToLower(t)] {
					return schemaError(ptr, "type: unknown type %q (expected string, number, integer, boolean, array, object or null)", t)
				}
			case []any:
				names, ok := stringList(t)
				if !ok || len(names) == 0 {
					return schemaError(ptr, "type: expected a string or a non-empty array of strings, got %s", encodeTree(t))
				}
				for _, n := range names {
					if !typeNames[strings.ToLower(n)] {
						return schemaError(ptr, "type: unknown type %q (expected string, number, integer, boolean, array, object or null)", n)
					}
				}
			default:
				return schemaError(ptr, "type: expected a string or an array of strings, got %s", kindOf(v))
			}
		case "required":
			if _, ok := stringList(v); !ok {
				return schemaError(ptr, "required: expected an array of strings, got %s", encodeTree(v))
			}
		case "enum":
			if _, ok := v.([]any); !ok {
				return schemaError(ptr, "enum: expected an array, got %s", kindOf(v))
			}
		case "$ref":
			if _, ok := v.(string); !ok {
				return schemaError(ptr, "$ref: expected a string, got %s", kindOf(v))
			}
		case "description", "title":
			if _, ok := v.(string); !ok {
				return schemaError(ptr, "%s: expected a string, got %s", k, kindOf(v))
			}
		}
		switch schemaKeywordKind(k) {
		case schemaList:
			arr, ok := v.([]any)
			if !ok || len(arr) == 0 {
				return schemaError(ptr, "%s: expected a non-empty array of schemas, got %s", k, encodeTree(v))
			}
		case schemaMap:
			if _, ok := v.(*object); !ok && !(v == nil && k == "properties") {
				return schemaError(ptr, "%s: expected an object of schemas, got %s", k, kindOf(v))
			}
		}
	}
	return nil
}

// note is a keyword moved into the description.
type note struct {
	keyword string
	value   any
}

// appendNotes adds "{minLength: 2, maximum: 100}" to o's description, the
// convention of Anthropic's SDK, so the model still reads constraints the
// provider cannot take.
func appendNotes(o *object, notes []note) {
	if len(notes) == 0 {
		return
	}
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range notes {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(n.keyword)
		b.WriteString(": ")
		b.Write(encodeTree(n.value))
	}
	b.WriteByte('}')
	if d, ok := o.str("description"); ok && d != "" {
		o.vals["description"] = d + "\n\n" + b.String()
		return
	}
	if o.has("type") {
		o.setAfter("type", "description", b.String())
	} else {
		o.set("description", b.String())
	}
}

// acceptsNull reports whether null is valid for the canonical-or-converted
// schema v (references are resolved in doc).
func acceptsNull(doc any, v any, depth int) bool {
	if depth > 32 {
		return false
	}
	o, ok := v.(*object)
	if !ok {
		b, _ := v.(bool)
		return b
	}
	if t, ok := o.vals["type"]; ok {
		switch t := t.(type) {
		case string:
			if !strings.EqualFold(t, "null") {
				return false
			}
		case []any:
			names, _ := stringList(t)
			if !containsFold(names, "null") {
				return false
			}
		}
	}
	if e, ok := o.vals["enum"].([]any); ok && !containsNil(e) {
		return false
	}
	if cst, ok := o.vals["const"]; ok && cst != nil {
		return false
	}
	for _, k := range []string{"anyOf", "oneOf"} {
		if arr, ok := o.vals[k].([]any); ok {
			any := false
			for _, b := range arr {
				if acceptsNull(doc, b, depth+1) {
					any = true
					break
				}
			}
			if !any {
				return false
			}
		}
	}
	if arr, ok := o.vals["allOf"].([]any); ok {
		for _, b := range arr {
			if !acceptsNull(doc, b, depth+1) {
				return false
			}
		}
	}
	if r, ok := o.vals["$ref"].(string); ok {
		if _, t, err := resolveRef(doc, r); err == nil && !acceptsNull(doc, t, depth+1) {
			return false
		}
	}
	return true
}

func allNullOnly(arr []any) bool {
	for _, x := range arr {
		if !isNullOnly(x) {
			return false
		}
	}
	return true
}

func containsNil(arr []any) bool {
	for _, x := range arr {
		if x == nil {
			return true
		}
	}
	return false
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func containsFold(ss []string, s string) bool {
	for _, x := range ss {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func without(ss []string, s string) []string {
	out := ss[:0:0]
	for _, x := range ss {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

func (o *object) rename(old, new string) {
	v, ok := o.vals[old]
	if !ok {
		return
	}
	delete(o.vals, old)
	o.vals[new] = v
	for i, k := range o.keys {
		if k == old {
			o.keys[i] = new
		}
	}
}

// isObjectSchema: the schema describes objects (type object, or properties).
func isObjectSchema(o *object) bool {
	switch t := o.vals["type"].(type) {
	case string:
		return strings.EqualFold(t, "object")
	case []any:
		names, _ := stringList(t)
		return containsFold(names, "object")
	}
	return o.has("properties")
}

func hasType(o *object, name string) bool {
	switch t := o.vals["type"].(type) {
	case string:
		return strings.EqualFold(t, name)
	case []any:
		names, _ := stringList(t)
		return containsFold(names, name)
	}
	return false
}

// valueTypes returns the JSON Schema type names of the values, in first-seen
// order (numbers that are whole are "integer" only if all of them are).
func valueTypes(vals []any) []string {
	var out []string
	add := func(s string) {
		if !contains(out, s) {
			out = append(out, s)
		}
	}
	allInt := true
	for _, v := range vals {
		if n, ok := v.(json.Number); ok {
			if _, err := strconv.ParseInt(string(n), 10, 64); err != nil {
				allInt = false
			}
		}
	}
	for _, v := range vals {
		switch v.(type) {
		case string:
			add("string")
		case json.Number:
			if allInt {
				add("integer")
			} else {
				add("number")
			}
		case bool:
			add("boolean")
		case nil:
			add("null")
		case *object:
			add("object")
		case []any:
			add("array")
		}
	}
	return out
}

var geminiPropertyName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// compactJSON validates raw JSON and returns it compacted.
func compactJSON(raw []byte) ([]byte, error) {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
