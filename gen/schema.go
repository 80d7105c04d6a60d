package gen

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/atpgo/atp/internal/model"
)

// schemaCtx is the state of one root schema: the $defs it collects and the
// named types being inlined (a guard against cycles the model did not mark
// Recursive).
type schemaCtx struct {
	defs     jsonschema.Definitions
	inlining map[string]bool
}

func newSchemaCtx() *schemaCtx {
	return &schemaCtx{defs: jsonschema.Definitions{}, inlining: map[string]bool{}}
}

// finish attaches the collected $defs to root.
func (sc *schemaCtx) finish(root *jsonschema.Schema) *jsonschema.Schema {
	if len(sc.defs) > 0 {
		root.Definitions = sc.defs
	}
	return root
}

// anySchema is {}: any JSON value. invopop marshals an empty Schema as
// true, which is equivalent, but several providers accept only objects as
// schemas; a non-nil empty Extras makes it marshal as {}.
func anySchema() *jsonschema.Schema { return &jsonschema.Schema{Extras: map[string]any{}} }

func nullSchema() *jsonschema.Schema { return &jsonschema.Schema{Type: "null"} }

// nilable makes the schema of a slice, map or []byte nullable in a result:
// encoding/json writes a nil one as null, and MCP hosts validate results
// against the output schema. In params they are not: null is rejected.
func (g *generator) nilable(s *jsonschema.Schema) *jsonschema.Schema {
	if !g.output {
		return s
	}
	return nullable(s)
}

// isNilableKind reports whether a result value of t can be written as null
// without being a pointer.
func (g *generator) isNilableKind(t *model.Type) bool {
	ti := g.info(t)
	if g.custom(ti.named) || ti.named != nil && ti.named.Recursive {
		return false
	}
	return ti.kind == model.KindSlice || ti.kind == model.KindMap || ti.kind == model.KindBytes
}

// unwrapNull returns the non-null branch of a schema made by nullable, and
// any other schema as it is.
func unwrapNull(s *jsonschema.Schema) *jsonschema.Schema {
	if s.Type == "" && s.Ref == "" && len(s.AnyOf) == 2 && s.AnyOf[1].Type == "null" {
		return s.AnyOf[0]
	}
	return s
}

// nullable wraps s so that null is also accepted.
func nullable(s *jsonschema.Schema) *jsonschema.Schema {
	return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{s, nullSchema()}}
}

// compose joins a description and notes (enum value docs, the duration
// form) into one description.
func compose(parts ...string) string {
	var out []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, "\n")
}

// inputSchema builds the schema of a tool's params object.
func (g *generator) inputSchema(t *model.Tool) *jsonschema.Schema {
	sc := newSchemaCtx()
	var root *jsonschema.Schema
	switch t.Input {
	case model.InputStruct, model.InputStructPtr:
		st := t.InputType
		if st != nil && st.Kind == model.KindPointer {
			st = st.Elem
		}
		fields := t.Fields
		if st != nil && st.Kind == model.KindNamed {
			if n := g.pkg.Named[st.Ref]; n != nil && n.Underlying != nil && n.Underlying.Kind == model.KindStruct {
				fields = n.Underlying.Fields
				// A recursive input type is inlined at the root; its
				// inner references go through $defs.
				sc.inlining[n.ID] = true
			}
		}
		root = g.objectSchema(sc, fields)
	case model.InputPlain:
		root = g.objectSchema(sc, t.Fields)
	default:
		root = g.objectSchema(sc, nil)
	}
	return sc.finish(root)
}

// outputSchema builds the schema of a tool's result, nil when it has none.
// A pointer result is described by its element: the tool returning nil is
// not part of the contract.
func (g *generator) outputSchema(t *model.Tool) *jsonschema.Schema {
	if t.Result == nil {
		return nil
	}
	g.output = true
	defer func() { g.output = false }()
	rt := t.Result
	for rt.Kind == model.KindPointer {
		rt = rt.Elem
	}
	sc := newSchemaCtx()
	var root *jsonschema.Schema
	if n := g.namedOf(rt); n != nil && n.Recursive && !g.custom(n) {
		sc.inlining[n.ID] = true
		var notes string
		root, notes = g.namedBody(sc, n)
		root.Description = compose(n.Doc, notes)
	} else {
		s, doc, notes := g.typeSchema(sc, rt)
		if g.isNilableKind(rt) {
			// Like a nil pointer, a nil slice or map result is not part of
			// the contract; MCP wants an object root, not a union.
			s = unwrapNull(s)
		}
		if s.Ref == "" {
			s.Description = compose(doc, notes)
		}
		root = s
	}
	return sc.finish(root)
}

func (g *generator) namedOf(t *model.Type) *model.Named {
	if t == nil || t.Kind != model.KindNamed {
		return nil
	}
	return g.pkg.Named[t.Ref]
}

// objectSchema is the schema of a struct's or params object's fields:
// properties in declaration order, no others allowed.
func (g *generator) objectSchema(sc *schemaCtx, fields []*model.Field) *jsonschema.Schema {
	s := &jsonschema.Schema{
		Type:                 "object",
		Properties:           jsonschema.NewProperties(),
		AdditionalProperties: jsonschema.FalseSchema,
	}
	for _, f := range fields {
		s.Properties.Set(f.JSONName, g.fieldSchema(sc, f))
		if f.Required {
			s.Required = append(s.Required, f.JSONName)
		}
	}
	return s
}

// typeSchema returns the schema of t without field annotations, plus the
// description parts that belong to it: doc (the named type's doc comment,
// which a field's own doc replaces) and notes (enum value docs and the
// duration form, which are kept).
func (g *generator) typeSchema(sc *schemaCtx, t *model.Type) (s *jsonschema.Schema, doc, notes string) {
	switch t.Kind {
	case model.KindBool:
		return &jsonschema.Schema{Type: "boolean"}, "", ""
	case model.KindInt, model.KindUint:
		s := &jsonschema.Schema{Type: "integer"}
		lo, hi := schemaBounds(t.Kind, t.Bits)
		s.Minimum, s.Maximum = json.Number(lo), json.Number(hi)
		return s, "", ""
	case model.KindFloat:
		return &jsonschema.Schema{Type: "number"}, "", ""
	case model.KindString:
		return &jsonschema.Schema{Type: "string"}, "", ""
	case model.KindBytes:
		return g.nilable(&jsonschema.Schema{Type: "string", ContentEncoding: "base64"}), "", ""
	case model.KindTime:
		return &jsonschema.Schema{Type: "string", Format: "date-time"}, "", ""
	case model.KindDuration:
		if g.output {
			// encoding/json writes a time.Duration as its int64.
			return &jsonschema.Schema{Type: "integer"}, "", durationOutNote
		}
		return &jsonschema.Schema{Type: "string", Pattern: durationPattern}, "", durationNote
	case model.KindAny, model.KindRaw:
		return anySchema(), "", ""
	case model.KindSlice, model.KindArray:
		items, d, n := g.typeSchema(sc, t.Elem)
		if items.Ref == "" {
			items.Description = compose(d, n)
		}
		s := &jsonschema.Schema{Type: "array", Items: items}
		if t.Kind == model.KindArray {
			l := uint64(t.Len)
			s.MinItems, s.MaxItems = &l, &l
			return s, "", ""
		}
		return g.nilable(s), "", ""
	case model.KindMap:
		vals, d, n := g.typeSchema(sc, t.Elem)
		if vals.Ref == "" {
			vals.Description = compose(d, n)
		}
		s := &jsonschema.Schema{Type: "object", AdditionalProperties: vals}
		if keys := g.enumValues(t.Key); len(keys) > 0 {
			s.PropertyNames = &jsonschema.Schema{Enum: rawList(keys)}
		}
		return g.nilable(s), "", ""
	case model.KindPointer:
		elem, d, n := g.typeSchema(sc, t.Elem)
		return nullable(elem), d, n
	case model.KindStruct:
		return g.objectSchema(sc, t.Fields), "", ""
	case model.KindNamed:
		n := g.pkg.Named[t.Ref]
		if n == nil || n.Underlying == nil {
			return anySchema(), "", ""
		}
		return g.namedSchema(sc, n)
	}
	return anySchema(), "", ""
}

// namedSchema is the schema of a named type: inline, or a $ref into $defs
// for a recursive type.
func (g *generator) namedSchema(sc *schemaCtx, n *model.Named) (s *jsonschema.Schema, doc, notes string) {
	if g.custom(n) {
		return g.customSchema(n), n.Doc, ""
	}
	if n.Recursive || sc.inlining[n.ID] {
		name := g.defName(n)
		if _, ok := sc.defs[name]; !ok {
			sc.defs[name] = anySchema() // placeholder: stops the recursion
			def, notes := g.namedBody(sc, n)
			def.Description = compose(n.Doc, notes)
			sc.defs[name] = def
		}
		return &jsonschema.Schema{Ref: "#/$defs/" + jsonPointerEscape(name)}, "", ""
	}
	sc.inlining[n.ID] = true
	defer delete(sc.inlining, n.ID)
	body, notes := g.namedBody(sc, n)
	return body, n.Doc, notes
}

// namedBody is the schema of a named type's underlying type, with its enum,
// and the notes that go into its description (its enum values' docs).
func (g *generator) namedBody(sc *schemaCtx, n *model.Named) (s *jsonschema.Schema, notes string) {
	if g.custom(n) {
		return g.customSchema(n), ""
	}
	if n.SchemaJSON != "" && !(n.JSONUnmarshaler || n.TextUnmarshaler || n.JSONMarshaler || n.TextMarshaler) {
		g.probs.add(n.Pos, "//atp:schema is used only for types with their own JSON or text methods (UnmarshalJSON, MarshalJSON, ...); %s is encoded as its underlying type", n.Name)
	}
	if n.Underlying.Kind == model.KindStruct {
		s = g.objectSchema(sc, n.Underlying.Fields)
	} else {
		s, _, notes = g.typeSchema(sc, n.Underlying)
	}
	self := &model.Type{Kind: model.KindNamed, Ref: n.ID}
	if vals := g.enumValues(self); len(vals) > 0 {
		g.checkEnumLits(n.Pos, n.Name, self, vals)
		s.Enum = rawList(vals)
	}
	return s, compose(notes, g.enumNotes(n))
}

// enumNotes lists an enum's documented values, one line each.
func (g *generator) enumNotes(n *model.Named) string {
	if g.custom(n) {
		return ""
	}
	var lines []string
	seen := map[string]bool{}
	for _, v := range n.Enum {
		doc := strings.Join(strings.Fields(v.Doc), " ")
		if doc == "" || seen[v.Value] {
			continue
		}
		seen[v.Value] = true
		lit := v.Value
		var str string
		if json.Unmarshal([]byte(lit), &str) == nil {
			lit = str
		}
		lines = append(lines, "- "+lit+": "+doc)
	}
	return strings.Join(lines, "\n")
}

// customSchema is the schema of a type that decodes (or, for results,
// encodes) itself: the one it declares with //atp:schema, else {} for JSON
// methods and a string for text methods.
func (g *generator) customSchema(n *model.Named) *jsonschema.Schema {
	if n.SchemaJSON != "" {
		s, err := parseSchema(n.SchemaJSON)
		if err != nil {
			g.probs.add(n.Pos, "//atp:schema of %s is not a valid schema: %v", n.Name, err)
			return anySchema()
		}
		return s
	}
	if g.textual(n) {
		return &jsonschema.Schema{Type: "string"}
	}
	return anySchema()
}

// schemaKeys are the JSON keys jsonschema.Schema has fields for.
var schemaKeys = func() map[string]bool {
	keys := map[string]bool{}
	st := reflect.TypeFor[jsonschema.Schema]()
	for i := range st.NumField() {
		name, _, _ := strings.Cut(st.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			keys[name] = true
		}
	}
	return keys
}()

// parseSchema reads a declared schema into a jsonschema.Schema, keeping the
// keywords it has no field for in Extras so that nothing is lost.
func parseSchema(text string) (*jsonschema.Schema, error) {
	var s jsonschema.Schema
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, err
	}
	var all map[string]json.RawMessage
	if json.Unmarshal([]byte(text), &all) == nil {
		for k, v := range all {
			if !schemaKeys[k] {
				if s.Extras == nil {
					s.Extras = map[string]any{}
				}
				s.Extras[k] = v
			}
		}
	}
	if reflect.DeepEqual(s, jsonschema.Schema{}) {
		return anySchema(), nil
	}
	return &s, nil
}

// defName returns the $defs key of a recursive named type: its name, or
// pkg.Name when two packages' types share a name.
func (g *generator) defName(n *model.Named) string {
	if name, ok := g.defNames[n.ID]; ok {
		return name
	}
	name := n.Name
	if g.defTaken[name] {
		name = n.PkgName + "." + n.Name
	}
	base := name
	for i := 2; g.defTaken[name]; i++ {
		name = base + "_" + strconv.Itoa(i)
	}
	g.defTaken[name] = true
	g.defNames[n.ID] = name
	return name
}

func jsonPointerEscape(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func rawList(lits []string) []any {
	out := make([]any, len(lits))
	for i, l := range lits {
		out[i] = json.RawMessage(l)
	}
	return out
}

// fieldSchema is a property's schema: its type's schema with the field's
// constraints and annotations. For a pointer or a nullable field the value
// keywords go on the non-null branch and the annotations on the outer
// schema.
func (g *generator) fieldSchema(sc *schemaCtx, f *model.Field) *jsonschema.Schema {
	s, doc, notes := g.typeSchema(sc, f.Type)
	if g.output && !f.Required && g.isNilableKind(f.Type) && len(s.AnyOf) == 2 {
		// omitempty drops a nil slice or map: the property is absent, never null.
		s = s.AnyOf[0]
	}
	c := &f.Constraints
	g.applyValueKeywords(s, f.Type, c, f, 0)
	cl := g.classOf(f.Type)
	if c.Nullable && g.info(f.Type).kind != model.KindPointer && g.info(f.Type).kind != model.KindAny && g.info(f.Type).kind != model.KindRaw {
		s = nullable(s)
	}
	desc := c.Description
	if desc == "" {
		desc = f.Doc
	}
	if desc == "" {
		desc = doc
	}
	s.Description = compose(desc, notes)
	s.Title = c.Title
	if c.Default != "" {
		if g.checkDefault(f, cl) {
			s.Default = json.RawMessage(c.Default)
		}
	}
	for _, ex := range c.Examples {
		if !json.Valid([]byte(ex)) {
			g.probs.add(f.Pos, "example %s of %s is not a JSON value", ex, f.JSONName)
			continue
		}
		s.Examples = append(s.Examples, json.RawMessage(ex))
	}
	s.Deprecated, s.ReadOnly, s.WriteOnly = c.Deprecated, c.ReadOnly, c.WriteOnly
	return s
}

// checkDefault reports whether a field's default is usable: the decoder
// assigns it when the property is absent, so it must be a value of the
// field's type that the decoder can write.
func (g *generator) checkDefault(f *model.Field, cl class) bool {
	c := &f.Constraints
	if !json.Valid([]byte(c.Default)) {
		g.probs.add(f.Pos, "default %s of %s is not a JSON value (strings need quotes)", c.Default, f.JSONName)
		return false
	}
	t := f.Type
	for g.info(t).kind == model.KindPointer {
		t = g.info(t).under.Elem
	}
	ti := g.info(t)
	switch {
	case ti.kind == model.KindDuration && !g.custom(ti.named):
		var s string
		if json.Unmarshal([]byte(c.Default), &s) != nil {
			g.probs.add(f.Pos, "default %s of %s must be a duration string such as \"1h30m\"", c.Default, f.JSONName)
			return false
		}
		if _, err := time.ParseDuration(s); err != nil {
			g.probs.add(f.Pos, "default %s of %s: %v", c.Default, f.JSONName, err)
			return false
		}
		return true
	case cl == classBool || cl == classNumber || cl == classString:
		enum := c.Enum
		if enum == nil {
			enum = g.enumValues(t)
		}
		if err := g.checkLit(t, c.Default); err != nil {
			g.probs.add(f.Pos, "default %s of %s: %v", c.Default, f.JSONName, err)
			return false
		}
		if len(enum) > 0 {
			want := canonicalJSON(c.Default)
			for _, e := range enum {
				if canonicalJSON(e) == want {
					return true
				}
			}
			g.probs.add(f.Pos, "default %s of %s is not one of its values %s", c.Default, f.JSONName, strings.Join(enum, ", "))
			return false
		}
		return true
	}
	g.probs.add(f.Pos, "default on %s is supported only for strings, numbers, booleans and durations", f.JSONName)
	return false
}

// checkLit checks that a JSON literal is a value of the scalar type t.
func (g *generator) checkLit(t *model.Type, lit string) error {
	ti := g.info(t)
	switch ti.kind {
	case model.KindString:
		var s string
		if json.Unmarshal([]byte(lit), &s) != nil {
			return errors.New("want a JSON string")
		}
	case model.KindBool:
		if lit != "true" && lit != "false" {
			return errors.New("want true or false")
		}
	case model.KindFloat:
		if _, ok := parseNumber(lit); !ok {
			return errors.New("want a number")
		}
	case model.KindInt, model.KindUint:
		r, ok := parseNumber(lit)
		if !ok {
			return errors.New("want an integer")
		}
		i, ok := ratInt(r)
		if !ok {
			return errors.New("want an integer")
		}
		lo, hi := intRange(ti.kind, ti.bits, true)
		if i.Cmp(lo) < 0 || i.Cmp(hi) > 0 {
			return errors.New("out of the range of the Go type")
		}
	default:
		return errors.New("not a scalar type")
	}
	return nil
}

// checkEnumLits reports enum values that are not values of t.
func (g *generator) checkEnumLits(pos model.Pos, what string, t *model.Type, lits []string) bool {
	ok := true
	for _, l := range lits {
		if err := g.checkLit(t, l); err != nil {
			g.probs.add(pos, "enum value %s of %s: %v", l, what, err)
			ok = false
		}
	}
	return ok
}

// applyValueKeywords sets the validation keywords of c on s, the schema of
// a value of type t. As in invopop/jsonschema, string and number keywords on
// an array apply to its items. depth counts those steps into items.
func (g *generator) applyValueKeywords(s *jsonschema.Schema, t *model.Type, c *model.Constraints, f *model.Field, depth int) {
	for g.info(t).kind == model.KindPointer {
		s, t = unwrapNull(s), g.info(t).under.Elem
	}
	s = unwrapNull(s) // a result's nilable slice or map
	cl := g.classOf(t)
	bad := func(keyword string) {
		what := "it is " + classNoun(cl, false)
		if depth > 0 {
			what = "its items are " + classNoun(cl, true)
		}
		g.probs.add(f.Pos, "constraint %s does not apply to %s: %s", keyword, f.JSONName, what)
	}
	if depth == 0 {
		if c.MinItems != nil || c.MaxItems != nil || c.UniqueItems {
			if cl != classArray {
				bad("minItems/maxItems/uniqueItems")
			} else {
				if c.MinItems != nil && g.nonNegative(f, "minItems", *c.MinItems) {
					s.MinItems = u64(*c.MinItems)
				}
				if c.MaxItems != nil && g.nonNegative(f, "maxItems", *c.MaxItems) {
					s.MaxItems = u64(*c.MaxItems)
				}
				if c.UniqueItems {
					s.UniqueItems = true
					if et := g.info(t).under.Elem; et != nil {
						if ec := g.classOf(et); ec != classString && ec != classNumber && ec != classBool {
							g.probs.add(f.Pos, "uniqueItems on %s is supported only for arrays of strings, numbers or booleans", f.JSONName)
						}
					}
				}
			}
		}
	}
	if !hasScalarKeywords(c) {
		return
	}
	if cl == classArray {
		if s.Items == nil {
			g.probs.add(f.Pos, "constraints on the items of %s are not supported for a recursive type", f.JSONName)
			return
		}
		g.applyValueKeywords(s.Items, g.info(t).under.Elem, c, f, depth+1)
		return
	}
	if c.MinLength != nil || c.MaxLength != nil || c.Pattern != "" || c.Format != "" {
		if cl != classString {
			switch {
			case c.Pattern != "":
				bad("pattern")
			case c.Format != "":
				bad("format")
			default:
				bad("minLength/maxLength")
			}
		} else {
			if c.MinLength != nil && g.nonNegative(f, "minLength", *c.MinLength) {
				s.MinLength = u64(*c.MinLength)
			}
			if c.MaxLength != nil && g.nonNegative(f, "maxLength", *c.MaxLength) {
				s.MaxLength = u64(*c.MaxLength)
			}
			if c.Pattern != "" {
				if _, err := regexp.Compile(c.Pattern); err != nil {
					g.probs.add(f.Pos, "pattern of %s does not compile (patterns use Go's RE2 syntax): %v", f.JSONName, err)
				}
				s.Pattern = c.Pattern
			}
			s.Format = c.Format
		}
	}
	if c.Minimum != "" || c.Maximum != "" || c.ExclusiveMinimum != "" || c.ExclusiveMaximum != "" || c.MultipleOf != "" {
		if cl != classNumber {
			bad("minimum/maximum/multipleOf")
		} else {
			ti := g.info(t)
			num := func(keyword, v string) (json.Number, bool) {
				if v == "" {
					return "", false
				}
				r, ok := parseNumber(v)
				if !ok {
					g.probs.add(f.Pos, "%s %q of %s is not a number", keyword, v, f.JSONName)
					return "", false
				}
				if keyword == "multipleOf" && r.Sign() <= 0 {
					g.probs.add(f.Pos, "multipleOf of %s must be greater than 0", f.JSONName)
					return "", false
				}
				if ti.kind != model.KindFloat && (keyword == "minimum" || keyword == "maximum") {
					if i, isInt := ratInt(r); isInt {
						lo, hi := intRange(ti.kind, ti.bits, false)
						if (keyword == "minimum" && i.Cmp(hi) > 0) || (keyword == "maximum" && i.Cmp(lo) < 0) {
							g.probs.add(f.Pos, "%s %s of %s is out of the range of its Go type: no value would be valid", keyword, v, f.JSONName)
							return "", false
						}
					}
				}
				return json.Number(v), true
			}
			if n, ok := num("minimum", c.Minimum); ok {
				s.Minimum = tighter(s.Minimum, n, true)
			}
			if n, ok := num("maximum", c.Maximum); ok {
				s.Maximum = tighter(s.Maximum, n, false)
			}
			if n, ok := num("exclusiveMinimum", c.ExclusiveMinimum); ok {
				s.ExclusiveMinimum = n
			}
			if n, ok := num("exclusiveMaximum", c.ExclusiveMaximum); ok {
				s.ExclusiveMaximum = n
			}
			if n, ok := num("multipleOf", c.MultipleOf); ok {
				s.MultipleOf = n
			}
		}
	}
	if len(c.Enum) > 0 {
		if cl != classString && cl != classNumber {
			bad("enum")
		} else if g.checkEnumLits(f.Pos, f.JSONName, t, c.Enum) {
			s.Enum = rawList(dedupe(c.Enum))
		}
	}
}

func hasScalarKeywords(c *model.Constraints) bool {
	return c.MinLength != nil || c.MaxLength != nil || c.Pattern != "" || c.Format != "" ||
		c.Minimum != "" || c.Maximum != "" || c.ExclusiveMinimum != "" || c.ExclusiveMaximum != "" ||
		c.MultipleOf != "" || len(c.Enum) > 0
}

func (g *generator) nonNegative(f *model.Field, keyword string, n int) bool {
	if n < 0 {
		g.probs.add(f.Pos, "%s of %s must not be negative", keyword, f.JSONName)
		return false
	}
	return true
}

func u64(n int) *uint64 {
	v := uint64(n)
	return &v
}

// tighter returns the stricter of a type's bound and a declared one.
func tighter(typeBound, declared json.Number, isMin bool) json.Number {
	if typeBound == "" {
		return declared
	}
	a, ok1 := parseNumber(string(typeBound))
	b, ok2 := parseNumber(string(declared))
	if !ok1 || !ok2 {
		return declared
	}
	if (isMin && b.Cmp(a) >= 0) || (!isMin && b.Cmp(a) <= 0) {
		return declared
	}
	return typeBound
}

// marshalSchema renders a schema as the generated file embeds it: 2-space
// indented JSON, with <, > and & left as they are (encoding/json escapes
// them for HTML, which makes patterns and descriptions hard to read).
func marshalSchema(s *jsonschema.Schema) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, unescapeHTML(b), "", "  "); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// unescapeHTML turns the \u003c, \u003e and \u0026 escapes encoding/json
// writes back into the characters, leaving every other escape alone.
func unescapeHTML(b []byte) []byte {
	if !bytes.Contains(b, []byte(`\u00`)) {
		return b
	}
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' || i+1 >= len(b) {
			out = append(out, b[i])
			continue
		}
		if b[i+1] == 'u' && i+5 < len(b) {
			switch string(b[i+2 : i+6]) {
			case "003c":
				out = append(out, '<')
				i += 5
				continue
			case "003e":
				out = append(out, '>')
				i += 5
				continue
			case "0026":
				out = append(out, '&')
				i += 5
				continue
			}
		}
		// Copy the escape's two bytes so that an escaped backslash is never
		// read as the start of another escape.
		out = append(out, b[i], b[i+1])
		i++
	}
	return out
}
