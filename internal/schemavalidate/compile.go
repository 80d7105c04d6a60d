package schemavalidate

import (
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/atpgo/atp/internal/jsontree"
)

// kind is what a compiled node reads the value as.
type kind uint8

const (
	kindAny     kind = iota // any JSON value, read with Skip
	kindNever               // the false schema: no value is valid
	kindObject              // Object/Next
	kindArray               // Array/NextItem
	kindString              // String (or Bytes for base64 content)
	kindInteger             // Int or Uint
	kindNumber              // Float
	kindBoolean             // Bool
	kindNull                // only null
)

// node is a compiled schema. Nodes form a graph: a $ref points at the node of
// its target, so recursive schemas are cycles and every node is compiled once.
type node struct {
	src  *jsontree.Value // the schema, for the JSON pointer of Compile errors and notes
	kind kind
	// nullable: null is valid too (type ["T","null"] or anyOf [T, {"type":"null"}]).
	nullable bool
	// ref: the node is its $ref target (set when the schema is a $ref).
	ref *node
	// nullableOf: the node is the target, nullable (anyOf [{"$ref"}, null]).
	nullableOf *node

	// object
	props      []property
	propIndex  map[string]int
	allowed    string // the property names, comma-separated, for Unknown
	required   []int  // indexes into props, in props order
	extraReq   []string
	closed     bool  // additionalProperties: false
	additional *node // additionalProperties as a schema (a map's values); nil when closed or absent
	minProps   int   // -1 when absent
	maxProps   int   // -1 when absent
	// keyEnum limits the keys of additional properties (a map whose keys
	// are an enum type): propertyNames {"enum": [...]}.
	keyEnum  []string
	keySet   map[string]struct{} // keyEnum, when it is long
	inferred bool                // the root of an inferred Python schema: names only
	// extraIndex finds a name in extraReq, when there are many.
	extraIndex map[string]int

	// array
	prefix   []*node
	items    *node // nil: any item
	noExtra  bool  // items: false after prefixItems: no more items than prefix
	minItems int   // -1 when absent
	maxItems int   // -1 when absent
	unique   bool
	// uniqueScalars: uniqueItems is checked, over items that are strings,
	// numbers or booleans (null not allowed), as generated code does.
	uniqueScalars bool
	// fixedLen is minItems when it equals maxItems (a Go array), else -1.
	fixedLen   int
	fixedWords string // "array of exactly N items"

	// string
	minLen, maxLen int // -1 when absent
	pattern        *regexp.Regexp
	patternSrc     string
	format         string
	base64         bool
	enumStrings    []string
	enumSet        map[string]struct{} // enumStrings, when they are many
	hasEnum        bool

	// integer and number
	bits     int  // Int/Uint size; 64 unless the bounds are a Go integer type's range
	unsigned bool // read with Uint
	// bounds are indexed by bMinimum... in the order generated code checks
	// them; a bound that only restates the Go integer type's range (which
	// Int(bits) or Uint(bits) checks) is unset.
	bounds   [4]bound
	multiple multipleOf
	enumInts []int64
	enumNums []float64

	// boolean
	enumBools []bool

	// enum/const on a kind not covered above (objects, arrays, mixed types)
	enumRaw []string // canonical JSON of each allowed value
	// enumSeen dedupes enumRaw while the enum is read.
	enumSeen map[string]struct{}
	// enumLits are the enum's values as the schema spells them (compacted),
	// for "one of ..." messages.
	enumLits []string

	// expected is what a value must be, in the words of problems: "integer",
	// "one of \"a\", \"b\"". Set once every node is compiled.
	expected string
	// goTime and goDuration: the schema is what atpgen emits for time.Time
	// and time.Duration, read with Decoder.Time and Decoder.Duration.
	goTime, goDuration bool

	// target is the node that reads the value, through $ref and nullable
	// wrappers (n itself for most nodes); set once every node is compiled.
	target    *node
	nullChain bool // null is valid at n or on its way to target
	resolving bool // on the chain resolveTarget follows
}

// property is one entry of "properties".
type property struct {
	name     string
	node     *node
	required bool
}

// bound is one of minimum, exclusiveMinimum, maximum, exclusiveMaximum.
type bound struct {
	set   bool
	isMin bool // minimum or exclusiveMinimum
	exc   bool // exclusiveMinimum or exclusiveMaximum
	num   number
	// intVal is the bound when it is an integer (1, 1.0, 1e2), for integer
	// values: generated code compares those as integers and words them
	// "integer >= 100"; a fractional bound is compared as a float.
	intVal *big.Int
	// lim is intVal as an inclusive limit: the smallest value a minimum
	// allows, the largest a maximum allows.
	lim *big.Int
}

// The bounds in the order generated code checks them.
const (
	bMinimum = iota
	bExclusiveMinimum
	bMaximum
	bExclusiveMaximum
)

// boundOps are the comparisons of the bounds, for messages.
var boundOps = [4]string{">=", ">", "<=", "<"}

// Compile errors name the keyword and the JSON pointer of the schema.
type compileError struct {
	ptr, keyword string
	err          error
}

func (e *compileError) Error() string {
	at := e.ptr
	if at == "" {
		at = "root"
	}
	msg := cut(e.err.Error(), maxErrorBytes)
	if e.keyword == "" {
		return fmt.Sprintf("schema at %s: %s", at, msg)
	}
	return fmt.Sprintf("schema at %s: %s: %s", at, e.keyword, msg)
}

// maxErrorBytes cuts what an error quotes from a schema (a pattern, a
// name), so that a huge schema cannot make the error huge.
const maxErrorBytes = 300

// cut returns s cut to at most max bytes on a character boundary, with "…".
func cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	for max > 0 && !utf8.RuneStart(s[max]) {
		max--
	}
	return s[:max] + "…"
}

func (e *compileError) Unwrap() error { return e.err }

type compiler struct {
	root  *jsontree.Value
	nodes map[*jsontree.Value]*node // by schema: each is compiled once
	order []*node                   // the nodes in the order they were made
	notes []string                  // keywords accepted but not evaluated
	// moreNotes counts the notes past maxNotes, which are not kept.
	moreNotes int
	// steps counts the compiler's units of work (values parsed, members
	// looked up, references followed, ...): the tests hold it linear in
	// the size of the schema.
	steps int
}

// maxNotes bounds the notes kept: a hostile schema could otherwise have one
// per keyword, each with a long pointer.
const maxNotes = 100

// maxPointerBytes cuts the JSON pointers in errors and notes.
const maxPointerBytes = 200

func (c *compiler) fail(at *jsontree.Value, keyword string, format string, args ...any) error {
	return &compileError{ptr: at.Pointer(maxPointerBytes), keyword: keyword, err: fmt.Errorf(format, args...)}
}

func (c *compiler) note(src *jsontree.Value, keyword, why string) {
	if len(c.notes) >= maxNotes {
		c.moreNotes++
		return
	}
	at := src.Pointer(maxPointerBytes)
	if at == "" {
		at = "root"
	}
	c.notes = append(c.notes, fmt.Sprintf("%s at %s: %s", keyword, at, why))
}

// annotations are keywords that describe without constraining.
var annotations = map[string]bool{
	"$schema": true, "$id": true, "$comment": true, "$anchor": true, "$vocabulary": true,
	"$dynamicAnchor": true, "title": true, "description": true, "default": true,
	"examples": true, "deprecated": true, "readOnly": true, "writeOnly": true,
	"contentMediaType": true, "contentSchema": true,
}

// widening are assertion keywords this package does not evaluate. Leaving
// one out can only make the validator accept more, never reject a valid call;
// the toolkit still validates what it receives. Each is reported by Notes.
var widening = map[string]string{
	"oneOf":                 "general oneOf is not evaluated",
	"allOf":                 "allOf is not evaluated",
	"anyOf":                 "general anyOf is not evaluated",
	"not":                   "not is not evaluated",
	"if":                    "if/then/else is not evaluated",
	"then":                  "if/then/else is not evaluated",
	"else":                  "if/then/else is not evaluated",
	"dependentRequired":     "dependentRequired is not evaluated",
	"dependentSchemas":      "dependentSchemas is not evaluated",
	"dependencies":          "dependencies is not evaluated",
	"contains":              "contains is not evaluated",
	"minContains":           "minContains is not evaluated",
	"maxContains":           "maxContains is not evaluated",
	"unevaluatedItems":      "unevaluatedItems is not evaluated",
	"unevaluatedProperties": "unevaluatedProperties is not evaluated",
	"$dynamicRef":           "$dynamicRef is not evaluated",
}

// typedKeywords are the keywords that apply to values of one type.
var typedKeywords = []string{
	"properties", "required", "additionalProperties", "minProperties", "maxProperties", "propertyNames",
	"items", "prefixItems", "minItems", "maxItems", "uniqueItems",
	"minLength", "maxLength", "pattern", "format", "contentEncoding",
	"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
}

// anyNode is {}: the items of an array without items, a required name
// without a property.
var anyNode = func() *node {
	n := newNode(&jsontree.Value{Kind: '{'})
	n.expected = "any value"
	n.target = n
	return n
}()

func newNode(src *jsontree.Value) *node {
	return &node{src: src, minProps: -1, maxProps: -1, minItems: -1, maxItems: -1, minLen: -1, maxLen: -1, fixedLen: -1}
}

// compileRef returns the node of the schema at the JSON pointer ptr of the
// document, compiling it once.
func (c *compiler) compileRef(ptr string) (*node, error) {
	v, err := c.root.Resolve(ptr, &c.steps)
	if err != nil {
		return nil, err
	}
	return c.compileAt(v)
}

// compileAt compiles the subschema v, once. The node is registered before
// it is filled in, so that a schema that refers to itself gets the node
// being built.
func (c *compiler) compileAt(v *jsontree.Value) (*node, error) {
	c.steps++
	if n, ok := c.nodes[v]; ok {
		return n, nil
	}
	n := newNode(v)
	c.nodes[v] = n
	c.order = append(c.order, n)
	if err := c.fill(n, v); err != nil {
		return nil, err
	}
	return n, nil
}

// typeSet is a set of JSON Schema type names.
type typeSet uint8

const (
	tObject typeSet = 1 << iota
	tArray
	tString
	tInteger
	tNumber
	tBoolean
	tNull
)

var typeNames = map[string]typeSet{
	"object": tObject, "array": tArray, "string": tString, "integer": tInteger,
	"number": tNumber, "boolean": tBoolean, "null": tNull,
}

func parseType(raw *jsontree.Value) (typeSet, error) {
	var names []string
	if raw.Kind == '"' {
		s, err := jsonString(raw)
		if err != nil {
			return 0, err
		}
		names = []string{s}
	} else {
		els, err := arrayElements(raw)
		if err != nil {
			return 0, fmt.Errorf("expected a type name or an array of them: %w", err)
		}
		if len(els) == 0 {
			return 0, fmt.Errorf("expected at least one type name")
		}
		for _, el := range els {
			s, err := jsonString(el)
			if err != nil {
				return 0, err
			}
			names = append(names, s)
		}
	}
	var set typeSet
	for _, name := range names {
		t, ok := typeNames[name]
		if !ok {
			return 0, fmt.Errorf("unknown type %q (expected object, array, string, integer, number, boolean or null)", name)
		}
		set |= t
	}
	return set, nil
}

// fill compiles the schema raw into n.
func (c *compiler) fill(n *node, raw *jsontree.Value) error {
	ptr := raw
	switch raw.Kind {
	case 't', 'f':
		if raw.Kind == 'f' {
			n.kind = kindNever
		}
		return nil
	case '{':
	default:
		return c.fail(ptr, "", "expected a schema (an object or a boolean), got %s", raw.KindName())
	}
	ms, err := objectMembers(raw)
	if err != nil {
		return c.fail(ptr, "", "%v", err)
	}
	kw := make(map[string]*jsontree.Value, len(ms))
	for _, m := range ms {
		c.steps++
		kw[m.Key] = m.Val
	}

	// Definitions are compiled even when nothing refers to them, so that a
	// bad pattern in one is reported now rather than never.
	for _, defs := range []string{"$defs", "definitions"} {
		if raw, ok := kw[defs]; ok {
			dm, err := objectMembers(raw)
			if err != nil {
				return c.fail(ptr, defs, "%v", err)
			}
			for _, d := range dm {
				if _, err := c.compileAt(d.Val); err != nil {
					return err
				}
			}
		}
	}

	if raw, ok := kw["$ref"]; ok {
		target, err := c.refTarget(raw, ptr)
		if err != nil {
			return err
		}
		n.ref = target
		for _, m := range ms {
			if m.Key != "$ref" && !annotations[m.Key] && !strings.HasPrefix(m.Key, "x-") && m.Key != "$defs" && m.Key != "definitions" {
				c.note(ptr, m.Key, "keywords beside $ref are not evaluated")
			}
		}
		return nil
	}

	if v, ok := kw["x-atp-inferred"]; ok && ptr.Parent == nil {
		if b, err := jsonBool(v); err != nil {
			return c.fail(ptr, "x-atp-inferred", "%v", err)
		} else if b {
			n.inferred = true
		}
	}

	types := typeSet(0)
	if raw, ok := kw["type"]; ok {
		if types, err = parseType(raw); err != nil {
			return c.fail(ptr, "type", "%v", err)
		}
	}
	if raw, ok := kw["nullable"]; ok { // OpenAPI 3.0's spelling, which some toolkits send
		b, err := jsonBool(raw)
		if err != nil {
			return c.fail(ptr, "nullable", "%v", err)
		}
		if b && types != 0 {
			types |= tNull
		}
	}

	// anyOf [X, {"type": "null"}] is how pointers are spelled: X, nullable.
	if raw, ok := kw["anyOf"]; ok {
		branch, isNullable, err := c.nullableBranch(raw)
		if err != nil {
			return err
		}
		if isNullable {
			n.nullable = true
			n.nullableOf = branch
			for _, m := range ms {
				if m.Key != "anyOf" && !annotations[m.Key] && !strings.HasPrefix(m.Key, "x-") && m.Key != "$defs" && m.Key != "definitions" {
					c.note(ptr, m.Key, "keywords beside a nullable anyOf are not evaluated")
				}
			}
			return nil
		}
	}

	if types&tNull != 0 {
		n.nullable = true
		types &^= tNull
		if types == 0 {
			n.kind = kindNull
		}
	}
	if types&(tInteger|tNumber) == tInteger|tNumber {
		types &^= tInteger // every integer is a number
	}
	switch types {
	case 0:
		if n.kind != kindNull {
			n.kind = kindAny
		}
	case tObject:
		n.kind = kindObject
	case tArray:
		n.kind = kindArray
	case tString:
		n.kind = kindString
	case tInteger:
		n.kind = kindInteger
	case tNumber:
		n.kind = kindNumber
	case tBoolean:
		n.kind = kindBoolean
	default:
		n.kind = kindAny
		c.note(ptr, "type", "a value of several types is not type-checked")
	}

	for _, m := range ms {
		key, val := m.Key, m.Val
		switch {
		case annotations[key], strings.HasPrefix(key, "x-"),
			key == "type", key == "nullable", key == "$defs", key == "definitions":
			continue
		case key == "anyOf":
			c.note(ptr, key, widening[key])
			continue
		case widening[key] != "":
			c.note(ptr, key, widening[key])
			continue
		}
		if err := c.keyword(n, key, val, kw); err != nil {
			return err
		}
	}
	return c.finish(n, kw)
}

// refTarget compiles the target of the local $ref of the schema ptr.
func (c *compiler) refTarget(raw, ptr *jsontree.Value) (*node, error) {
	ref, err := jsonString(raw)
	if err != nil {
		return nil, c.fail(ptr, "$ref", "%v", err)
	}
	if !strings.HasPrefix(ref, "#") {
		return nil, c.fail(ptr, "$ref", "only local references (#/...) are supported, got %q", ref)
	}
	frag, err := url.PathUnescape(ref[1:])
	if err != nil {
		return nil, c.fail(ptr, "$ref", "bad reference %q: %v", ref, err)
	}
	if frag != "" && frag[0] != '/' {
		return nil, c.fail(ptr, "$ref", "anchors are not supported, got %q", ref)
	}
	target, err := c.compileRef(frag)
	if err != nil {
		var cerr *compileError
		if errors.As(err, &cerr) {
			return nil, err // a problem in the target, reported where it is
		}
		return nil, c.fail(ptr, "$ref", "cannot resolve %q: %v", ref, err)
	}
	return target, nil
}

// nullableBranch reports whether an anyOf is [X, {"type":"null"}] (in either
// order) and compiles X.
func (c *compiler) nullableBranch(raw *jsontree.Value) (*node, bool, error) {
	els, err := arrayElements(raw)
	if err != nil {
		return nil, false, c.fail(raw, "", "%v", err)
	}
	if len(els) != 2 {
		return nil, false, nil
	}
	for i, el := range els {
		if !isNullSchema(el) {
			continue
		}
		n, err := c.compileAt(els[1-i])
		if err != nil {
			return nil, false, err
		}
		return n, true, nil
	}
	return nil, false, nil
}

// isNullSchema reports whether raw is {"type":"null"} (with annotations).
func isNullSchema(raw *jsontree.Value) bool {
	ms, err := objectMembers(raw)
	if err != nil {
		return false
	}
	isNull := false
	for _, m := range ms {
		switch {
		case m.Key == "type":
			t, err := parseType(m.Val)
			if err != nil || t != tNull {
				return false
			}
			isNull = true
		case annotations[m.Key], strings.HasPrefix(m.Key, "x-"):
		default:
			return false
		}
	}
	return isNull
}

// keyword compiles one assertion keyword into n.
func (c *compiler) keyword(n *node, key string, val *jsontree.Value, kw map[string]*jsontree.Value) error {
	var err error
	switch key {
	case "properties":
		var ms []jsontree.Member
		if ms, err = objectMembers(val); err != nil {
			break
		}
		n.propIndex = make(map[string]int, len(ms))
		names := make([]string, len(ms))
		for i, m := range ms {
			p, err := c.compileAt(m.Val)
			if err != nil {
				return err
			}
			n.props = append(n.props, property{name: m.Key, node: p})
			n.propIndex[m.Key] = i
			names[i] = m.Key
		}
		n.allowed = strings.Join(names, ", ")
	case "required":
		var els []*jsontree.Value
		if els, err = arrayElements(val); err != nil {
			break
		}
		seen := make(map[string]struct{}, len(els))
		for _, el := range els {
			c.steps++
			var s string
			if s, err = jsonString(el); err != nil {
				break
			}
			if _, dup := seen[s]; dup {
				continue
			}
			seen[s] = struct{}{}
			n.extraReq = append(n.extraReq, s) // sorted out in finish, once properties are known
		}
	case "additionalProperties":
		if val.Kind == 't' || val.Kind == 'f' {
			n.closed = val.Kind == 'f'
			break
		}
		n.additional, err = c.compileAt(val)
		if err != nil {
			return err
		}
		if n.additional.kind == kindNever && n.additional.ref == nil && n.additional.nullableOf == nil && !n.additional.nullable {
			n.closed, n.additional = true, nil
		}
	case "patternProperties":
		// Keys matching a pattern are not "additional": without evaluating
		// the patterns, a closed object would reject valid keys.
		if ap, ok := kw["additionalProperties"]; ok && ap.Kind != 't' {
			return c.fail(n.src, key, "not supported together with additionalProperties")
		}
		c.note(n.src, key, "patternProperties is not evaluated")
	case "propertyNames":
		if names, ok := enumOfStrings(val); ok {
			n.keyEnum, n.keySet = names, stringSet(names)
			break
		}
		c.note(n.src, key, "propertyNames other than an enum of strings is not evaluated")
	case "minProperties":
		n.minProps, err = jsonCount(val)
	case "maxProperties":
		n.maxProps, err = jsonCount(val)
	case "items":
		if val.Kind == '[' { // draft 7 tuple form
			err = c.prefixItems(n, val)
			break
		}
		if val.Kind == 'f' {
			n.noExtra = true
			break
		}
		n.items, err = c.compileAt(val)
	case "additionalItems": // draft 7: items after a tuple
		if items, ok := kw["items"]; !ok || items.Kind != '[' {
			c.note(n.src, key, "additionalItems without a tuple items is ignored")
			break
		}
		if val.Kind == 'f' {
			n.noExtra = true
			break
		}
		n.items, err = c.compileAt(val)
	case "prefixItems":
		err = c.prefixItems(n, val)
	case "minItems":
		n.minItems, err = jsonCount(val)
	case "maxItems":
		n.maxItems, err = jsonCount(val)
	case "uniqueItems":
		n.unique, err = jsonBool(val)
	case "minLength":
		n.minLen, err = jsonCount(val)
	case "maxLength":
		n.maxLen, err = jsonCount(val)
	case "pattern":
		var s string
		if s, err = jsonString(val); err != nil {
			break
		}
		if n.pattern, err = regexp.Compile(s); err != nil {
			return c.fail(n.src, key, "Go cannot compile %q: %v", s, err)
		}
		n.patternSrc = s
	case "format":
		n.format, err = jsonString(val)
	case "contentEncoding":
		var s string
		if s, err = jsonString(val); err != nil {
			break
		}
		if s == "base64" {
			n.base64 = true
		} else {
			c.note(n.src, key, fmt.Sprintf("content encoding %q is not checked", s))
		}
	case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum":
		var num number
		if num, err = jsonNumber(val); err != nil {
			break
		}
		err = n.setBound(key, num)
	case "multipleOf":
		var num number
		if num, err = jsonNumber(val); err != nil {
			break
		}
		if num.f <= 0 {
			err = fmt.Errorf("expected a number above 0, got %s", num.text)
			break
		}
		n.multiple = newMultipleOf(num)
	case "enum":
		var els []*jsontree.Value
		if els, err = arrayElements(val); err != nil {
			break
		}
		c.setEnum(n, els)
	case "const":
		c.setEnum(n, []*jsontree.Value{val})
	default:
		// An unknown keyword is an annotation, as JSON Schema says.
		c.note(n.src, key, "unknown keyword, ignored")
	}
	if err != nil {
		var cerr *compileError
		if errors.As(err, &cerr) {
			return err
		}
		return c.fail(n.src, key, "%v", err)
	}
	return nil
}

func (c *compiler) prefixItems(n *node, val *jsontree.Value) error {
	els, err := arrayElements(val)
	if err != nil {
		return c.fail(n.src, "prefixItems", "%v", err)
	}
	for _, el := range els {
		p, err := c.compileAt(el)
		if err != nil {
			return err
		}
		n.prefix = append(n.prefix, p)
	}
	return nil
}

// finish resolves what needs every keyword: required against properties,
// integer bounds against Go's integer ranges, and the inferred root.
func (c *compiler) finish(n *node, kw map[string]*jsontree.Value) error {
	if n.kind == kindObject || n.kind == kindAny || n.inferred {
		req := n.extraReq
		n.extraReq = nil
		for _, name := range req {
			if i, ok := n.propIndex[name]; ok {
				n.props[i].required = true
			} else {
				n.extraReq = append(n.extraReq, name)
			}
		}
		if len(n.extraReq) > 8 {
			n.extraIndex = make(map[string]int, len(n.extraReq))
			for i, name := range n.extraReq {
				n.extraIndex[name] = i
			}
		}
		for i, p := range n.props {
			if p.required {
				n.required = append(n.required, i)
			}
		}
	}
	if n.inferred {
		// Python calls f(**params): an unknown name fails unless the
		// function takes **kwargs, which the registration says with
		// additionalProperties.
		n.kind = kindObject
		if _, ok := kw["additionalProperties"]; !ok {
			n.closed = true
		}
	}
	if n.kind == kindObject && len(n.extraReq) > 0 && n.closed {
		return c.fail(n.src, "required", "%q is required but not in properties, and additionalProperties is false: no value is valid", n.extraReq[0])
	}
	if n.hasEnum {
		n.typedEnum()
		n.enumSet = stringSet(n.enumStrings)
		if n.enumRaw != nil && n.kind != kindAny {
			c.note(n.src, "enum", "an enum of objects or arrays is not evaluated")
			n.enumRaw = nil
		}
	}
	if n.kind == kindAny {
		// Without a type to read the value as, keywords that apply to one
		// type are not evaluated (JSON Schema would apply them to values of
		// that type only, which needs a look at the value first).
		for _, key := range typedKeywords {
			if _, ok := kw[key]; ok {
				c.note(n.src, key, "the schema has no single type, so this keyword is not evaluated")
			}
		}
	}
	if n.kind == kindInteger {
		n.integerRange()
	}
	if n.kind == kindArray && n.minItems >= 0 && n.minItems == n.maxItems && len(n.prefix) == 0 && !n.noExtra {
		n.fixedLen = n.minItems
		n.fixedWords = fixedLenWords(n.fixedLen)
	}
	if n.kind == kindString {
		switch {
		case n.format == "date-time" && !n.base64 && n.pattern == nil && n.minLen < 0 && n.maxLen < 0 && !n.hasEnum:
			n.goTime = true
		case n.patternSrc == goDurationPattern && n.format == "" && !n.base64 && n.minLen < 0 && n.maxLen < 0 && !n.hasEnum:
			n.goDuration = true
		}
	}
	return nil
}

// typedEnum turns the enum's values into those of the node's kind, which the
// read of that kind compares with. Values of another type can never match
// and are dropped (null is the nullable's business). An untyped schema whose
// values are all strings is a string schema.
func (n *node) typedEnum() {
	allStrings := true
	for _, c := range n.enumRaw {
		if c != "null" && c[0] != '"' {
			allStrings = false
		}
		if c == "null" && n.kind == kindAny {
			n.nullable = true
		}
	}
	if n.kind == kindAny && allStrings {
		n.kind = kindString
	}
	lits := n.enumLits
	n.enumLits = nil
	for i, c := range n.enumRaw {
		switch n.kind {
		case kindString:
			if c[0] == '"' {
				s, _ := strconv.Unquote(c)
				n.enumStrings = append(n.enumStrings, s)
				n.enumLits = append(n.enumLits, lits[i])
			}
		case kindInteger:
			if v, err := strconv.ParseInt(c, 10, 64); err == nil {
				n.enumInts = append(n.enumInts, v)
				n.enumLits = append(n.enumLits, lits[i])
			}
		case kindNumber:
			if c != "null" && c[0] != '"' && c[0] != '{' && c[0] != '[' && c != "true" && c != "false" {
				f, _ := new(big.Rat).SetString(c)
				if f != nil {
					v, _ := f.Float64()
					n.enumNums = append(n.enumNums, v)
					n.enumLits = append(n.enumLits, lits[i])
				}
			}
		case kindBoolean:
			if c == "true" || c == "false" {
				n.enumBools = append(n.enumBools, c == "true")
				n.enumLits = append(n.enumLits, lits[i])
			}
		default:
			n.enumLits = append(n.enumLits, lits[i])
			continue
		}
	}
	switch n.kind {
	case kindString, kindInteger, kindNumber, kindBoolean:
		n.enumRaw = nil
		// An enum none of whose values has the node's type allows nothing;
		// an empty, non-nil list says so to the read.
		if n.enumStrings == nil && n.kind == kindString {
			n.enumStrings = []string{}
		}
		if n.enumInts == nil && n.kind == kindInteger {
			n.enumInts = []int64{}
		}
		if n.enumNums == nil && n.kind == kindNumber {
			n.enumNums = []float64{}
		}
		if n.enumBools == nil && n.kind == kindBoolean {
			n.enumBools = []bool{}
		}
	}
}

// setBound records a numeric bound.
func (n *node) setBound(key string, num number) error {
	i := map[string]int{"minimum": bMinimum, "exclusiveMinimum": bExclusiveMinimum, "maximum": bMaximum, "exclusiveMaximum": bExclusiveMaximum}[key]
	b := bound{set: true, num: num, isMin: i == bMinimum || i == bExclusiveMinimum, exc: i == bExclusiveMinimum || i == bExclusiveMaximum}
	if r := exactRat(num); r != nil && r.IsInt() {
		b.intVal = new(big.Int).Set(r.Num())
		b.lim = new(big.Int).Set(b.intVal)
		switch {
		case b.exc && b.isMin:
			b.lim.Add(b.lim, big.NewInt(1))
		case b.exc:
			b.lim.Sub(b.lim, big.NewInt(1))
		}
	}
	n.bounds[i] = b
	return nil
}

// Go's integer ranges, for recognising the bounds the generator emits for
// sized integer types.
var (
	goIntMin  = map[int]*big.Int{}
	goIntMax  = map[int]*big.Int{}
	goUintMax = map[int]*big.Int{}
)

func init() {
	for _, bits := range []int{8, 16, 32, 64} {
		one := big.NewInt(1)
		goIntMax[bits] = new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits-1)), one)
		goIntMin[bits] = new(big.Int).Neg(new(big.Int).Lsh(one, uint(bits-1)))
		goUintMax[bits] = new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits)), one)
	}
}

// exactRat returns num's exact value, or nil for a number with a huge
// exponent, whose exact value would take unbounded work to build.
func exactRat(num number) *big.Rat {
	if i := strings.IndexAny(num.text, "eE"); i >= 0 {
		if exp, err := strconv.Atoi(strings.TrimPrefix(num.text[i+1:], "+")); err != nil || exp > 400 || exp < -400 {
			return nil
		}
	}
	r, ok := new(big.Rat).SetString(num.text)
	if !ok {
		return nil
	}
	return r
}

// integerRange picks the read the generated decoder makes for the Go type
// behind an integer schema. atpgen writes a sized type's range as minimum
// and maximum (tightened by the field's own bounds): when the bounds are
// exactly a Go range, or one of them is a Go range's end and the other lies
// inside that range, the value is read with Int(bits) or Uint(bits), whose
// range message is the generated one, and that end is not checked again.
// Anything else is read as int (64 bits) with every bound checked after it.
func (n *node) integerRange() {
	n.bits = 64
	lo, hi := n.bounds[bMinimum].lim, n.bounds[bMaximum].lim
	eq := func(a, b *big.Int) bool { return a != nil && b != nil && a.Cmp(b) == 0 }
	within := func(a, min, max *big.Int) bool { return a != nil && a.Cmp(min) >= 0 && a.Cmp(max) <= 0 }
	use := func(bits int, unsigned, dropLo, dropHi bool) {
		n.bits, n.unsigned = bits, unsigned
		if dropLo {
			n.bounds[bMinimum] = bound{}
		}
		if dropHi {
			n.bounds[bMaximum] = bound{}
		}
	}
	for _, bits := range []int{8, 16, 32, 64} {
		if eq(lo, goIntMin[bits]) && eq(hi, goIntMax[bits]) {
			use(bits, false, true, true)
			return
		}
		if lo != nil && lo.Sign() == 0 && eq(hi, goUintMax[bits]) {
			use(bits, true, true, true)
			return
		}
	}
	zero := new(big.Int)
	if lo != nil && lo.Sign() == 0 && hi == nil && !n.bounds[bExclusiveMaximum].set {
		// atpgen's uint and uint64 (an int with minimum=0 looks the same;
		// the two differ only in the words for a negative value).
		use(64, true, true, false)
		return
	}
	for _, bits := range []int{8, 16, 32} {
		switch {
		case eq(hi, goIntMax[bits]) && within(lo, goIntMin[bits], goIntMax[bits]):
			use(bits, false, false, true)
			return
		case eq(lo, goIntMin[bits]) && within(hi, goIntMin[bits], goIntMax[bits]):
			use(bits, false, true, false)
			return
		case eq(hi, goUintMax[bits]) && within(lo, zero, goUintMax[bits]):
			use(bits, true, false, true)
			return
		}
	}
}

// setEnum records the allowed values of enum or const, each once.
func (c *compiler) setEnum(n *node, els []*jsontree.Value) {
	n.hasEnum = true
	if n.enumSeen == nil {
		n.enumSeen = make(map[string]struct{}, len(els))
	}
	for _, el := range els {
		canon := string(appendCanonical(nil, el, &c.steps))
		if _, dup := n.enumSeen[canon]; dup {
			continue
		}
		n.enumSeen[canon] = struct{}{}
		n.enumRaw = append(n.enumRaw, canon)
		n.enumLits = append(n.enumLits, compactText(el))
	}
}

// enumOfStrings reads {"enum": ["a", "b"]} (annotations allowed).
func enumOfStrings(raw *jsontree.Value) ([]string, bool) {
	ms, err := objectMembers(raw)
	if err != nil {
		return nil, false
	}
	var out []string
	found := false
	for _, m := range ms {
		switch {
		case m.Key == "enum":
			els, err := arrayElements(m.Val)
			if err != nil {
				return nil, false
			}
			for _, el := range els {
				s, err := jsonString(el)
				if err != nil {
					return nil, false
				}
				out = append(out, s)
			}
			found = true
		case m.Key == "type" && m.Val.Kind == '"' && m.Val.Str == "string",
			annotations[m.Key], strings.HasPrefix(m.Key, "x-"):
		default:
			return nil, false
		}
	}
	return out, found
}

// stringSet returns a set of a long list, for lookups; nil for a short one,
// which a scan searches as fast.
func stringSet(list []string) map[string]struct{} {
	if len(list) <= 16 {
		return nil
	}
	set := make(map[string]struct{}, len(list))
	for _, s := range list {
		set[s] = struct{}{}
	}
	return set
}
