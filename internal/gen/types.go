package gen

import (
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dave/jennifer/jen"

	"github.com/atpgo/atp/internal/model"
)

// Import paths the generated code uses.
const (
	runtimePath = "github.com/atpgo/atp/runtime"
	// atpimplPath is the contract between generated code and the runtime:
	// the Decoder, the Got functions and the version constant.
	atpimplPath = "github.com/atpgo/atp/runtime/atpimpl"
	jsonPath    = "encoding/json"
)

// problems collects generation problems without duplicates (a type used by
// several tools is visited several times) and sorts them by position.
type problems struct {
	list []model.Problem
	seen map[string]bool
}

func (p *problems) add(pos model.Pos, format string, args ...any) {
	pr := model.Problem{Pos: pos, Message: fmt.Sprintf(format, args...)}
	if p.seen == nil {
		p.seen = map[string]bool{}
	}
	if k := pr.String(); !p.seen[k] {
		p.seen[k] = true
		p.list = append(p.list, pr)
	}
}

func (p *problems) sorted() []model.Problem {
	out := slices.Clone(p.list)
	slices.SortFunc(out, func(a, b model.Problem) int {
		return cmp.Or(
			strings.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			strings.Compare(a.Message, b.Message),
		)
	})
	return out
}

// class is what a value looks like in JSON, which decides the keywords
// that apply to it and the words used for it in messages.
type class int

const (
	classOther  class = iota // bytes, time, duration, any, raw, custom unmarshalers
	classBool                // true or false
	classNumber              // int, uint, float kinds
	classString              // string kinds
	classArray               // slices and arrays (not []byte)
	classObject              // structs and maps
)

// typeInfo resolves a model type through named types to what the generator
// needs: the kind that decides decoding, and the named type if any.
type typeInfo struct {
	kind  model.Kind
	bits  int
	named *model.Named // non-nil for KindNamed
	under *model.Type  // the underlying type for KindNamed, else the type itself
}

func (g *generator) info(t *model.Type) typeInfo {
	if t.Kind != model.KindNamed {
		return typeInfo{kind: t.Kind, bits: t.Bits, under: t}
	}
	n := g.pkg.Named[t.Ref]
	if n == nil || n.Underlying == nil {
		return typeInfo{kind: model.KindAny, under: &model.Type{Kind: model.KindAny}}
	}
	return typeInfo{kind: n.Underlying.Kind, bits: n.Underlying.Bits, named: n, under: n.Underlying}
}

// custom reports whether the named type decodes itself (for params) or
// encodes itself (for results, while g.output is set): its JSON then need
// not look like its Go type.
func (g *generator) custom(n *model.Named) bool {
	if n == nil {
		return false
	}
	if g.output {
		return n.JSONMarshaler || n.TextMarshaler
	}
	return n.JSONUnmarshaler || n.TextUnmarshaler
}

// textual reports whether a custom type's JSON is a string (it goes through
// UnmarshalText or MarshalText).
func (g *generator) textual(n *model.Named) bool {
	if g.output {
		return n.TextMarshaler && !n.JSONMarshaler
	}
	return n.TextUnmarshaler && !n.JSONUnmarshaler
}

func (g *generator) classOf(t *model.Type) class {
	ti := g.info(t)
	if g.custom(ti.named) {
		return classOther
	}
	switch ti.kind {
	case model.KindBool:
		return classBool
	case model.KindInt, model.KindUint, model.KindFloat:
		return classNumber
	case model.KindString:
		return classString
	case model.KindSlice, model.KindArray:
		return classArray
	case model.KindMap, model.KindStruct:
		return classObject
	case model.KindPointer:
		return g.classOf(ti.under.Elem)
	}
	return classOther
}

// enumValues returns the JSON literals a value of t is limited to by its
// named type's constants, without duplicates; nil when t is not an enum.
// Types that decode themselves are not enums: their constants need not be
// what their JSON looks like.
func (g *generator) enumValues(t *model.Type) []string {
	ti := g.info(t)
	if ti.named == nil || g.custom(ti.named) || len(ti.named.Enum) == 0 {
		return nil
	}
	var out []string
	for _, v := range ti.named.Enum {
		out = append(out, v.Value)
	}
	return dedupe(out)
}

func dedupe(lits []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, l := range lits {
		k := canonicalJSON(l)
		if !seen[k] {
			seen[k] = true
			out = append(out, l)
		}
	}
	return out
}

// canonicalJSON returns a literal in a form where equal values compare
// equal ("1.0" and "1" stay distinct, which is fine for enum members).
func canonicalJSON(lit string) string {
	var v any
	if err := json.Unmarshal([]byte(lit), &v); err != nil {
		return lit
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// maxListed is how many allowed values a problem lists; past it, the
// problem says how many there are, as atpimpl.Decoder.Enum does, so that a
// huge enum is not echoed back on every bad call.
const maxListed = 10

// oneOf words an enum's values (JSON literals) for a problem: "one of 1,
// 2", or "one of 20000 values".
func oneOf(enum []string) string {
	if len(enum) > maxListed {
		return fmt.Sprintf("one of %d values", len(enum))
	}
	return "one of " + strings.Join(enum, ", ")
}

// expected describes the JSON a value of t must be, in the words problems
// use: "integer", "one of \"a\", \"b\"", "RFC 3339 date-time string".
// enum, when not nil, overrides the type's own enum.
func (g *generator) expected(t *model.Type, enum []string) string {
	ti := g.info(t)
	if ti.kind == model.KindPointer {
		return g.expected(ti.under.Elem, enum)
	}
	if enum == nil {
		enum = g.enumValues(t)
	}
	if len(enum) > 0 && !g.custom(ti.named) {
		return oneOf(enum)
	}
	if g.custom(ti.named) && g.textual(ti.named) {
		return "string"
	}
	if g.custom(ti.named) {
		if w := schemaWords(ti.named.SchemaJSON); w != "" {
			return w
		}
		return "valid value"
	}
	switch ti.kind {
	case model.KindBool:
		return "boolean"
	case model.KindInt, model.KindUint:
		return "integer"
	case model.KindFloat:
		return "number"
	case model.KindString:
		return "string"
	case model.KindBytes:
		return "base64 string"
	case model.KindTime:
		return "RFC 3339 date-time string"
	case model.KindDuration:
		return "duration string"
	case model.KindSlice, model.KindArray:
		return "array"
	case model.KindMap, model.KindStruct:
		return "object"
	}
	return "any value"
}

// goType spells t in Go. ok is false when t holds an anonymous struct type:
// the model does not carry its field tags, which are part of its identity,
// so generated code never spells one (it infers it from a place instead).
func (g *generator) goType(t *model.Type) (code jen.Code, ok bool) {
	switch t.Kind {
	case model.KindBool:
		return jen.Bool(), true
	case model.KindInt:
		switch t.Bits {
		case 8:
			return jen.Int8(), true
		case 16:
			return jen.Int16(), true
		case 32:
			return jen.Int32(), true
		case 64:
			return jen.Int64(), true
		}
		return jen.Int(), true
	case model.KindUint:
		switch t.Bits {
		case 8:
			return jen.Uint8(), true
		case 16:
			return jen.Uint16(), true
		case 32:
			return jen.Uint32(), true
		case 64:
			return jen.Uint64(), true
		}
		return jen.Uint(), true
	case model.KindFloat:
		if t.Bits == 32 {
			return jen.Float32(), true
		}
		return jen.Float64(), true
	case model.KindString:
		return jen.String(), true
	case model.KindBytes:
		return jen.Index().Byte(), true
	case model.KindTime:
		return jen.Qual("time", "Time"), true
	case model.KindDuration:
		return jen.Qual("time", "Duration"), true
	case model.KindAny:
		return jen.Any(), true
	case model.KindRaw:
		return jen.Qual(jsonPath, "RawMessage"), true
	case model.KindSlice:
		e, ok := g.goType(t.Elem)
		return jen.Index().Add(e), ok
	case model.KindArray:
		e, ok := g.goType(t.Elem)
		return jen.Index(jen.Lit(int(t.Len))).Add(e), ok
	case model.KindMap:
		k, ok1 := g.goType(t.Key)
		e, ok2 := g.goType(t.Elem)
		return jen.Map(k).Add(e), ok1 && ok2
	case model.KindPointer:
		e, ok := g.goType(t.Elem)
		return jen.Op("*").Add(e), ok
	case model.KindNamed:
		n := g.pkg.Named[t.Ref]
		if n == nil {
			return jen.Id("_"), false
		}
		return jen.Qual(n.PkgPath, n.Name), true
	}
	return jen.Id("_"), false
}

// classNoun names a class in problems about constraints: "a number",
// or "numbers" for items.
func classNoun(c class, plural bool) string {
	nouns := map[class][2]string{
		classBool:   {"a boolean", "booleans"},
		classNumber: {"a number", "numbers"},
		classString: {"a string", "strings"},
		classArray:  {"an array", "arrays"},
		classObject: {"an object", "objects"},
		classOther:  {"a value with its own JSON form", "values with their own JSON form"},
	}
	n := nouns[c]
	if plural {
		return n[1]
	}
	return n[0]
}

// schemaWords describes the JSON a declared schema accepts by its types:
// "string", "integer or string". "" when the schema does not say.
func schemaWords(schema string) string {
	type node struct {
		Type     any    `json:"type"`
		AnyOf    []node `json:"anyOf"`
		OneOf    []node `json:"oneOf"`
		Pattern  string `json:"pattern"`
		Examples []any  `json:"examples"`
	}
	var n node
	if schema == "" || json.Unmarshal([]byte(schema), &n) != nil {
		return ""
	}
	var types []string
	var walk func(n node) bool
	walk = func(n node) bool {
		switch t := n.Type.(type) {
		case string:
			types = append(types, t)
			return true
		case []any:
			for _, e := range t {
				s, ok := e.(string)
				if !ok {
					return false
				}
				types = append(types, s)
			}
			return len(t) > 0
		}
		branches := append(slices.Clone(n.AnyOf), n.OneOf...)
		for _, b := range branches {
			if !walk(b) {
				return false
			}
		}
		return len(branches) > 0
	}
	if !walk(n) {
		return ""
	}
	var words []string
	for _, t := range types {
		if t != "null" && !slices.Contains(words, t) {
			words = append(words, t)
		}
	}
	switch len(words) {
	case 0:
		return ""
	case 1:
		// "expected string, got \"twelve\"" would read as a contradiction:
		// say which strings, by example or by pattern, when the schema does.
		if words[0] == "string" {
			if len(n.Examples) > 0 {
				if ex, ok := n.Examples[0].(string); ok {
					return "string such as " + strconv.Quote(ex)
				}
			}
			if n.Pattern != "" {
				return "string matching " + n.Pattern
			}
		}
		return words[0]
	}
	return strings.Join(words[:len(words)-1], ", ") + " or " + words[len(words)-1]
}
