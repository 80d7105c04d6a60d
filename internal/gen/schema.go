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
// schema; the constraints of an array's items (Constraints.Items) go on its
// items schema the same way.
func (g *generator) fieldSchema(sc *schemaCtx, f *model.Field) *jsonschema.Schema {
	s, doc, notes := g.typeSchema(sc, f.Type)
	if g.output && !f.Required && g.isNilableKind(f.Type) && len(s.AnyOf) == 2 {
		// omitempty drops a nil slice or map: the property is absent, never null.
		s = s.AnyOf[0]
	}
	c := &f.Constraints
	g.applyValueKeywords(s, f.Type, c, f, 0)
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
	if c.Default != "" && g.checkDefault(f) {
		s.Default = json.RawMessage(c.Default)
	}
	g.annotate(s, c, f.JSONName, f)
	return s
}

// annotate sets the annotations of c other than description and default on
// s. what names the value in problems.
func (g *generator) annotate(s *jsonschema.Schema, c *model.Constraints, what string, f *model.Field) {
	s.Title = c.Title
	for _, ex := range c.Examples {
		if !json.Valid([]byte(ex)) {
			g.probs.add(f.Pos, "example %s of %s is not a JSON value", ex, what)
			continue
		}
		s.Examples = append(s.Examples, json.RawMessage(ex))
	}
	s.Deprecated, s.ReadOnly, s.WriteOnly = c.Deprecated, c.ReadOnly, c.WriteOnly
}

// checkDefault reports whether a field's default is usable: the decoder
// assigns it when the property is absent, so it must be a value of the
// field's type that the decoder can write: a string, number, boolean or
// duration, or an array of them (parse joins repeated default= values of
// an array into one).
func (g *generator) checkDefault(f *model.Field) bool {
	c := &f.Constraints
	if !json.Valid([]byte(c.Default)) {
		g.probs.add(f.Pos, "default %s of %s is not a JSON value (strings need quotes)", c.Default, f.JSONName)
		return false
	}
	t := f.Type
	for g.info(t).kind == model.KindPointer {
		t = g.info(t).under.Elem
	}
	if g.classOf(t) == classArray {
		return g.checkArrayDefault(f, t)
	}
	if !g.defaultable(t) {
		g.probs.add(f.Pos, "default on %s is supported only for strings, numbers, booleans and durations, and arrays of them", f.JSONName)
		return false
	}
	if problem := g.defaultProblem(t, c.Default, c.Enum); problem != "" {
		g.probs.add(f.Pos, "default %s of %s%s", c.Default, f.JSONName, problem)
		return false
	}
	return true
}

// checkArrayDefault checks the default of an array field of type t (not a
// pointer): a JSON array of defaultable items that meets the array's
// constraints and its items'.
func (g *generator) checkArrayDefault(f *model.Field, t *model.Type) bool {
	c := &f.Constraints
	elem := g.info(t).under.Elem
	if !g.defaultable(elem) {
		g.probs.add(f.Pos, "default on %s is supported only for strings, numbers, booleans and durations, and arrays of them", f.JSONName)
		return false
	}
	var items []json.RawMessage
	if json.Unmarshal([]byte(c.Default), &items) != nil || items == nil {
		g.probs.add(f.Pos, "default %s of %s must be a JSON array of its items", c.Default, f.JSONName)
		return false
	}
	var itemEnum []string
	if c.Items != nil {
		itemEnum = c.Items.Enum
	}
	ok := true
	seen := map[string]bool{}
	for _, it := range items {
		lit := string(bytes.TrimSpace(it))
		if problem := g.defaultProblem(elem, lit, itemEnum); problem != "" {
			g.probs.add(f.Pos, "default %s of %s: item %s%s", c.Default, f.JSONName, lit, problem)
			ok = false
		}
		if k := canonicalJSON(lit); c.UniqueItems && seen[k] {
			g.probs.add(f.Pos, "default %s of %s repeats %s, but its items must be unique", c.Default, f.JSONName, lit)
			ok = false
		} else {
			seen[k] = true
		}
	}
	n := len(items)
	under := g.info(t).under
	switch {
	case under.Kind == model.KindArray && int64(n) != under.Len:
		g.probs.add(f.Pos, "default %s of %s has %d items, but it is an array of exactly %d", c.Default, f.JSONName, n, under.Len)
		ok = false
	case c.MinItems != nil && n < *c.MinItems:
		g.probs.add(f.Pos, "default %s of %s has %d items, fewer than its minItems %d", c.Default, f.JSONName, n, *c.MinItems)
		ok = false
	case c.MaxItems != nil && n > *c.MaxItems:
		g.probs.add(f.Pos, "default %s of %s has %d items, more than its maxItems %d", c.Default, f.JSONName, n, *c.MaxItems)
		ok = false
	}
	return ok
}

// defaultable reports whether the decoder can assign a default to a value
// of type t: a string, number, boolean or duration (not a pointer, and not
// a type that decodes itself).
func (g *generator) defaultable(t *model.Type) bool {
	ti := g.info(t)
	if g.custom(ti.named) {
		return false
	}
	switch ti.kind {
	case model.KindDuration, model.KindBool, model.KindInt, model.KindUint, model.KindFloat, model.KindString:
		return true
	}
	return false
}

// defaultProblem says what is wrong with lit as the default of a value of
// the defaultable type t, as the end of a sentence that starts with
// "default <lit> of <name>"; "" when nothing is. enum, when not empty,
// limits the values; else t's constants do.
func (g *generator) defaultProblem(t *model.Type, lit string, enum []string) string {
	if g.info(t).kind == model.KindDuration {
		var s string
		if json.Unmarshal([]byte(lit), &s) != nil {
			return ` must be a duration string such as "1h30m"`
		}
		if _, err := time.ParseDuration(s); err != nil {
			return ": " + err.Error()
		}
		return ""
	}
	if err := g.checkLit(t, lit); err != nil {
		return ": " + err.Error()
	}
	if len(enum) == 0 {
		enum = g.enumValues(t)
	}
	if len(enum) == 0 {
		return ""
	}
	want := canonicalJSON(lit)
	for _, e := range enum {
		if canonicalJSON(e) == want {
			return ""
		}
	}
	return " is not one of its values " + strings.Join(enum, ", ")
}

// checkLit checks that a JSON literal is a value of the scalar type t.
func (g *generator) checkLit(t *model.Type, lit string) error {
	ti := g.info(t)
	switch ti.kind {
	case model.KindString:
		var s string
		if json.Unmarshal([]byte(lit), &s) != nil {
			return errors.New("expected a JSON string")
		}
	case model.KindBool:
		if lit != "true" && lit != "false" {
			return errors.New("expected true or false")
		}
	case model.KindFloat:
		if _, ok := parseNumber(lit); !ok {
			return errors.New("expected a number")
		}
	case model.KindInt, model.KindUint:
		r, ok := parseNumber(lit)
		if !ok {
			return errors.New("expected an integer")
		}
		i, ok := ratInt(r)
		if !ok {
			return errors.New("expected an integer")
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
// a value of type t, and those of c.Items on the schema of its items (as in
// invopop/jsonschema, internal/parse puts a []T field's string and number
// keywords there). depth counts the steps into items, for problems.
func (g *generator) applyValueKeywords(s *jsonschema.Schema, t *model.Type, c *model.Constraints, f *model.Field, depth int) {
	for g.info(t).kind == model.KindPointer {
		s, t = unwrapNull(s), g.info(t).under.Elem
	}
	s = unwrapNull(s) // a result's nilable slice or map
	cl := g.classOf(t)
	bad := func(keyword string) {
		g.probs.add(f.Pos, "constraint %s does not apply to %s: %s", keyword, f.JSONName, classWhat(cl, depth))
	}
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
				et := g.info(t).under.Elem
				// The decoder compares items with ==: pointers would compare
				// as addresses.
				if ec := g.classOf(et); (ec != classString && ec != classNumber && ec != classBool) || g.info(et).kind == model.KindPointer {
					g.probs.add(f.Pos, "uniqueItems on %s is supported only for arrays of strings, numbers or booleans", f.JSONName)
				}
			}
		}
	}
	if c.Items != nil {
		g.applyItems(s, t, cl, c.Items, f, depth)
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

// applyItems sets ic, the constraints of each item of an array of type t,
// on the schema of its items, s.Items.
func (g *generator) applyItems(s *jsonschema.Schema, t *model.Type, cl class, ic *model.Constraints, f *model.Field, depth int) {
	if cl != classArray {
		g.probs.add(f.Pos, "constraints on items do not apply to %s: %s", f.JSONName, classWhat(cl, depth))
		return
	}
	if s.Items == nil {
		g.probs.add(f.Pos, "constraints on the items of %s are not supported for a recursive type", f.JSONName)
		return
	}
	if ic.Default != "" {
		g.probs.add(f.Pos, "default does not apply to each item of %s: give %s an array default instead", f.JSONName, f.JSONName)
	}
	if ic.Nullable {
		g.probs.add(f.Pos, "nullable does not apply to the items of %s: make them pointers instead", f.JSONName)
	}
	g.applyValueKeywords(s.Items, g.info(t).under.Elem, ic, f, depth+1)
	if ic.Description != "" {
		s.Items.Description = ic.Description
	}
	g.annotate(s.Items, ic, "the items of "+f.JSONName, f)
}

// classWhat says what a value is in a problem about a constraint on it:
// "it is a number", or "its items are numbers" for items.
func classWhat(cl class, depth int) string {
	if depth > 0 {
		return "its items are " + classNoun(cl, true)
	}
	return "it is " + classNoun(cl, false)
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
