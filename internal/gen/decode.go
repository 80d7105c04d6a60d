package gen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dave/jennifer/jen"

	"github.com/atpgo/atp/internal/model"
)

// place is where generated code puts a decoded value.
type place struct {
	expr jen.Code // the variable: v.Days, e, *p
	ptr  jen.Code // its address when that is simpler than &expr (p for *p)
}

func (p place) val() *jen.Statement { return jen.Add(p.expr) }

func (p place) addr() *jen.Statement {
	if p.ptr != nil {
		return jen.Add(p.ptr)
	}
	return jen.Op("&").Add(p.expr)
}

// dot selects a field, through the pointer when there is one (v.City for a
// v *Location).
func (p place) dot(name string) *jen.Statement {
	if p.ptr != nil {
		return jen.Add(p.ptr).Dot(name)
	}
	return jen.Add(p.expr).Dot(name)
}

func (p place) index(i jen.Code) *jen.Statement {
	if p.ptr != nil {
		return jen.Parens(p.expr).Index(i)
	}
	return jen.Add(p.expr).Index(i)
}

// tmp names a temporary at a nesting depth: s, s1, s2... Nested values
// get their own names so that a reader never has to work out shadowing.
func tmp(base string, depth int) string {
	if depth == 0 {
		return base
	}
	return base + strconv.Itoa(depth)
}

// tmpPattern matches the names tmp hands out; plain-parameter locals avoid
// them.
var tmpPattern = regexp.MustCompile(`^(s|e|m|k|p|i|dup|seen|problems)[0-9]*$`)

func dcall(method string, args ...jen.Code) *jen.Statement {
	return jen.Id("d").Dot(method).Call(args...)
}

// runFunc is a tool's Run: decode the params, stop when they are invalid
// (Toolkit.Invoke then reports d's problems), else call the function.
func (g *generator) runFunc(e *toolEntry) jen.Code {
	t := e.t
	return jen.Func().Params(
		jen.Id("ctx").Qual("context", "Context"),
		jen.Id("call").Op("*").Qual(runtimePath, "Call"),
		jen.Id("d").Op("*").Qual(atpimplPath, "Decoder"),
	).Params(jen.Any(), jen.Error()).BlockFunc(func(b *jen.Group) {
		var inArg jen.Code
		locals := map[int]string{}
		switch t.Input {
		case model.InputPlain:
			locals = g.plainLocals(t)
			var decls []jen.Code
			for i, f := range t.Fields {
				ft, ok := g.goType(f.Type)
				if !ok {
					g.probs.add(f.Pos, "parameter %s: anonymous struct types are not supported as plain parameters; declare a named type", f.JSONName)
				}
				decls = append(decls, jen.Id(locals[i]).Add(ft))
			}
			switch len(decls) {
			case 0:
			case 1:
				b.Var().Add(decls[0])
			default:
				b.Var().Defs(decls...)
			}
			g.objectBlock(b, t.Fields, func(i int, _ *model.Field) place {
				return place{expr: jen.Id(locals[i])}
			}, nil, 0, false)
		case model.InputStruct, model.InputStructPtr:
			it := t.InputType
			if it != nil && it.Kind == model.KindPointer {
				it = it.Elem
			}
			n := g.namedOf(it)
			if n == nil || n.Underlying == nil || n.Underlying.Kind != model.KindStruct {
				g.probs.add(t.Pos, "tool %s: the input parameter must be a named struct type or a pointer to one", t.Name)
				return
			}
			b.Var().Id("in").Qual(n.PkgPath, n.Name)
			b.Id(g.useFunc(n)).Call(jen.Id("d"), jen.Op("&").Id("in"))
			if t.Input == model.InputStructPtr {
				inArg = jen.Op("&").Id("in")
			} else {
				inArg = jen.Id("in")
			}
		default:
			b.Comment("The tool takes no params: any member is unknown.")
			b.If(dcall("Object")).Block(
				jen.For(dcall("Next")).Block(dcall("Unknown", jen.Lit(""))),
			)
		}
		b.If(dcall("Failed")).Block(
			jen.Comment("Toolkit.Invoke reports d's problems; the function is not called."),
			jen.Return(jen.Nil(), jen.Nil()),
		)

		var args []jen.Code
		for _, a := range t.Args {
			switch a.Kind {
			case model.ArgContext:
				args = append(args, jen.Id("ctx"))
			case model.ArgAuthToken:
				args = append(args, jen.Id("call").Dot("AuthToken"))
			case model.ArgCall:
				args = append(args, jen.Id("call"))
			case model.ArgParam:
				if name, ok := locals[a.Field]; ok {
					args = append(args, jen.Id(name))
				} else {
					g.probs.add(a.Pos, "internal error: parameter %s of tool %s has no property", a.GoName, t.Name)
				}
			case model.ArgInput:
				if inArg == nil {
					g.probs.add(a.Pos, "internal error: tool %s has an input parameter but input kind %q", t.Name, t.Input)
					continue
				}
				args = append(args, inArg)
			}
		}
		var fn *jen.Statement
		if e.recv != nil {
			fn = jen.Id("r").Dot(t.GoName).Call(args...)
		} else {
			fn = jen.Id(t.GoName).Call(args...)
		}
		switch {
		case t.Result != nil && t.ReturnsError:
			b.Return(fn)
		case t.Result != nil:
			b.Return(fn, jen.Nil())
		case t.ReturnsError:
			b.Return(jen.Nil(), fn)
		default:
			b.Add(fn)
			b.Return(jen.Nil(), jen.Nil())
		}
	})
}

// plainLocals names the locals of a tool's plain parameters: the Go
// parameter names, unless one would shadow something the generated code
// uses.
func (g *generator) plainLocals(t *model.Tool) map[int]string {
	// Names the generated code uses in Run: its parameters, imported
	// packages, the called function and the types it names.
	reserved := map[string]bool{t.GoName: true}
	for _, name := range strings.Fields("ctx call d r in v runtime context time json regexp math slices strconv") {
		reserved[name] = true
	}
	for _, n := range g.pkg.Named {
		reserved[n.Name], reserved[n.PkgName] = true, true
	}
	for _, r := range g.pkg.Receivers {
		reserved[r.TypeName] = true
	}
	taken := newIdents()
	locals := map[int]string{}
	for i, f := range t.Fields {
		name := ""
		if len(f.GoPath) > 0 {
			name = f.GoPath[len(f.GoPath)-1]
		}
		if name == "" || name == "_" || !isIdent(name) {
			name = "param" + strconv.Itoa(i)
		}
		if predeclared[name] || tmpPattern.MatchString(name) || strings.HasPrefix(name, "atp") || reserved[name] {
			name += "Param"
		}
		locals[i] = taken.get(name)
	}
	return locals
}

// useFunc returns the decode function of a named type and marks it needed.
func (g *generator) useFunc(n *model.Named) string {
	g.funcUsed[n.ID] = true
	return g.funcNames[n.ID]
}

// decodeFunc writes the decode function of a named type.
func (g *generator) decodeFunc(n *model.Named) jen.Code {
	name := g.funcNames[n.ID]
	typ := jen.Qual(n.PkgPath, n.Name)
	self := place{expr: jen.Op("*").Id("v"), ptr: jen.Id("v")}
	what := "a value"
	if n.Underlying.Kind == model.KindStruct {
		what = "an object"
	}
	return jen.Comment(fmt.Sprintf("%s reads %s of type %s from d into v, recording every problem in d.", name, what, n.Name)).Line().
		Func().Id(name).Params(jen.Id("d").Op("*").Qual(atpimplPath, "Decoder"), jen.Id("v").Op("*").Add(typ)).BlockFunc(func(b *jen.Group) {
		if n.Underlying.Kind == model.KindStruct {
			g.objectBlock(b, n.Underlying.Fields, nil, &self, 0, true)
			return
		}
		g.decode(b, self, n.Underlying, nil, 0)
	})
}

// objectBlock decodes a JSON object into fields: one switch over the keys,
// a seen flag per field for duplicates and missing required fields, and
// defaults for absent optional ones. at gives each field's place; when nil,
// fields are reached from base through their GoPath. In a decode function
// (inFunc) a non-object returns early.
func (g *generator) objectBlock(b *jen.Group, fields []*model.Field, at func(int, *model.Field) place, base *place, depth int, inFunc bool) {
	if at == nil {
		at = func(_ int, f *model.Field) place {
			s := base.dot(f.GoPath[0])
			for _, step := range f.GoPath[1:] {
				s = s.Dot(step)
			}
			return place{expr: s}
		}
	}
	// embedAllocs allocates the embedded pointer structs on a promoted
	// field's path.
	embedAllocs := func(fb *jen.Group, f *model.Field) {
		if base == nil {
			return
		}
		for j := 0; j < len(f.GoPath)-1 && j < len(f.EmbedPtr); j++ {
			if !f.EmbedPtr[j] {
				continue
			}
			s := base.dot(f.GoPath[0])
			for _, step := range f.GoPath[1 : j+1] {
				s = s.Dot(step)
			}
			g.helpers["atpNew"] = true
			fb.If(jen.Add(s).Op("==").Nil()).Block(
				jen.Add(s).Op("=").Id("atpNew").Call(s),
			)
		}
	}
	seenNames := map[string]bool{}
	var names []string
	for _, f := range fields {
		if seenNames[f.JSONName] {
			g.probs.add(f.Pos, "two properties are named %q", f.JSONName)
		}
		seenNames[f.JSONName] = true
		names = append(names, f.JSONName)
		if len(f.GoPath) == 0 {
			g.probs.add(f.Pos, "internal error: property %s has no Go path", f.JSONName)
			return
		}
	}
	body := func(b *jen.Group) {
		if len(fields) == 0 {
			b.For(dcall("Next")).Block(dcall("Unknown", jen.Lit("")))
			return
		}
		seen := tmp("seen", depth)
		b.Var().Id(seen).Index(jen.Lit(len(fields))).Bool()
		b.For(dcall("Next")).Block(
			jen.Switch(jen.String().Call(dcall("Key"))).BlockFunc(func(sw *jen.Group) {
				for i, f := range fields {
					sw.Case(jen.Lit(f.JSONName)).BlockFunc(func(cb *jen.Group) {
						cb.If(dcall("Repeated", jen.Op("&").Id(seen).Index(jen.Lit(i)))).Block(jen.Continue())
						embedAllocs(cb, f)
						g.decode(cb, at(i, f), f.Type, &f.Constraints, depth)
					})
				}
				sw.Default().Block(dcall("Unknown", jen.Lit(strings.Join(names, ", "))))
			}),
		)
		for i, f := range fields {
			notSeen := jen.Op("!").Id(seen).Index(jen.Lit(i))
			switch {
			case f.Required:
				b.If(notSeen).Block(dcall("Missing", jen.Lit(f.JSONName), jen.Lit(g.expected(f.Type, scalarEnum(g, f)))))
			case f.Constraints.Default != "":
				b.If(notSeen).BlockFunc(func(db *jen.Group) {
					embedAllocs(db, f)
					g.assignDefault(db, at(i, f), f.Type, f.Constraints.Default, depth)
				})
			}
		}
	}
	if inFunc {
		b.If(jen.Op("!").Add(dcall("Object"))).Block(jen.Return())
		body(b)
		return
	}
	b.If(dcall("Object")).BlockFunc(body)
}

// scalarEnum is a field's declared enum when it applies to the field's
// value itself (an array's enum is in Constraints.Items).
func scalarEnum(g *generator, f *model.Field) []string {
	if g.classOf(f.Type) == classArray {
		return nil
	}
	return f.Constraints.Enum
}

// assignDefault writes a field's default into its place.
func (g *generator) assignDefault(b *jen.Group, pl place, t *model.Type, lit string, depth int) {
	ti := g.info(t)
	if ti.kind == model.KindPointer && ti.named == nil {
		p := tmp("p", depth)
		if et, ok := g.goType(t.Elem); ok {
			b.Id(p).Op(":=").New(et)
		} else {
			g.helpers["atpNew"] = true
			b.Id(p).Op(":=").Id("atpNew").Call(pl.val())
		}
		g.assignDefault(b, place{expr: jen.Op("*").Id(p), ptr: jen.Id(p)}, t.Elem, lit, depth+1)
		b.Add(pl.expr).Op("=").Id(p)
		return
	}
	if ti.kind == model.KindSlice || ti.kind == model.KindArray {
		// checkDefault made sure that lit is an array of scalars of a type
		// generated code can spell.
		var items []json.RawMessage
		_ = json.Unmarshal([]byte(lit), &items)
		vals := make([]jen.Code, len(items))
		for i, it := range items {
			vals[i] = g.defaultValue(ti.under.Elem, string(bytes.TrimSpace(it)))
		}
		typ, _ := g.goType(t)
		b.Add(pl.expr).Op("=").Add(typ).Values(vals...)
		return
	}
	b.Add(pl.expr).Op("=").Add(g.defaultValue(t, lit))
}

// defaultValue is the Go expression of lit, the JSON literal of a default
// value of the scalar type t.
func (g *generator) defaultValue(t *model.Type, lit string) jen.Code {
	switch g.info(t).kind {
	case model.KindDuration:
		var s string
		_ = json.Unmarshal([]byte(lit), &s)
		dur, _ := time.ParseDuration(s)
		return durationExpr(dur)
	case model.KindString:
		var s string
		_ = json.Unmarshal([]byte(lit), &s)
		return jen.Lit(s)
	}
	// Numbers and booleans: a JSON literal is a valid Go constant.
	return jen.Op(lit)
}

// itemConstraints are the constraints on each item of an array whose own
// constraints are c (nil for none).
func itemConstraints(c *model.Constraints) *model.Constraints {
	if c == nil {
		return nil
	}
	return c.Items
}

// hasValueChecks reports whether c asks for any check the decoder makes,
// on the value or on its items.
func hasValueChecks(c *model.Constraints) bool {
	return c != nil && (hasScalarKeywords(c) || c.MinItems != nil || c.MaxItems != nil || c.UniqueItems || c.Nullable || hasValueChecks(c.Items))
}

// decode writes the statements that read one JSON value into pl. c holds
// the constraints that apply to this value (nil for none).
func (g *generator) decode(b *jen.Group, pl place, t *model.Type, c *model.Constraints, depth int) {
	ti := g.info(t)
	if c != nil && c.Nullable && ti.kind != model.KindPointer && ti.kind != model.KindAny && ti.kind != model.KindRaw {
		inner := *c
		inner.Nullable = false
		b.If(jen.Op("!").Add(dcall("Null"))).BlockFunc(func(nb *jen.Group) {
			g.decode(nb, pl, t, &inner, depth)
		})
		return
	}
	if n := ti.named; n != nil {
		switch {
		case n.JSONUnmarshaler:
			b.Add(dcall("Unmarshal", pl.addr(), jen.Lit(g.expected(t, nil))))
			return
		case n.TextUnmarshaler:
			b.Add(dcall("UnmarshalText", pl.addr(), jen.Lit("string")))
			return
		}
		switch ti.kind {
		case model.KindStruct, model.KindSlice, model.KindArray, model.KindMap, model.KindPointer:
			if !hasValueChecks(c) {
				b.Id(g.useFunc(n)).Call(jen.Id("d"), pl.addr())
				return
			}
			// The field's own constraints apply to this value: decode the
			// underlying type here, where they can be checked.
		}
	}
	switch ti.kind {
	case model.KindPointer:
		elem := ti.under.Elem
		b.If(jen.Op("!").Add(dcall("Null"))).BlockFunc(func(pb *jen.Group) {
			p := tmp("p", depth)
			if et, ok := g.goType(elem); ok {
				pb.Id(p).Op(":=").New(et)
			} else {
				g.helpers["atpNew"] = true
				pb.Id(p).Op(":=").Id("atpNew").Call(pl.val())
			}
			g.decode(pb, place{expr: jen.Op("*").Id(p), ptr: jen.Id(p)}, elem, c, depth+1)
			pb.Add(pl.expr).Op("=").Id(p)
		})
	case model.KindSlice:
		g.decodeSlice(b, pl, ti.under, c, depth)
	case model.KindArray:
		g.decodeArray(b, pl, ti.under, c, depth)
	case model.KindMap:
		g.decodeMap(b, pl, ti.under, depth)
	case model.KindStruct:
		g.objectBlock(b, ti.under.Fields, nil, &pl, depth+1, false)
	default:
		g.decodeScalar(b, pl, t, c)
	}
}

func (g *generator) decodeSlice(b *jen.Group, pl place, t *model.Type, c *model.Constraints, depth int) {
	s, e := tmp("s", depth), tmp("e", depth)
	unique := c != nil && c.UniqueItems
	b.If(dcall("Array")).BlockFunc(func(ab *jen.Group) {
		if unique {
			ab.Id("problems").Op(":=").Len(dcall("Problems"))
		}
		if st, ok := g.goType(t); ok {
			ab.Id(s).Op(":=").Make(st, jen.Lit(0))
		} else {
			g.helpers["atpMakeSlice"] = true
			ab.Id(s).Op(":=").Id("atpMakeSlice").Call(pl.val())
		}
		ab.For(dcall("NextItem")).BlockFunc(func(lb *jen.Group) {
			val := g.decodeElem(lb, e, t.Elem, itemConstraints(c), depth+1, func() *jen.Statement {
				g.helpers["atpElem"] = true
				return jen.Id("atpElem").Call(jen.Id(s))
			})
			lb.Id(s).Op("=").Append(jen.Id(s), val)
		})
		ab.Add(pl.expr).Op("=").Id(s)
		g.itemChecks(ab, jen.Id(s), t.Elem, c)
	})
}

// uniqueCheck fails when the scalar items of s repeat. It runs only when
// reading the items recorded no problem: items of the wrong type are zero
// values, which would look repeated.
func (g *generator) uniqueCheck(b *jen.Group, s jen.Code, elem *model.Type) {
	got := g.gotFunc(elem, jen.Id("x"))
	if got == nil {
		return // reported by the schema: only scalar items
	}
	b.If(jen.Len(dcall("Problems")).Op("==").Id("problems")).Block(
		jen.Comment("uniqueItems: the arrays LLMs send are short, so a quadratic scan beats a map."),
		jen.For(jen.List(jen.Id("j"), jen.Id("x")).Op(":=").Range().Add(s)).Block(
			jen.If(jen.Qual("slices", "Contains").Call(jen.Add(s).Index(jen.Op(":").Id("j")), jen.Id("x"))).Block(
				dcall("Fail", jen.Lit("array of unique items"), jen.Lit("repeated item ").Op("+").Add(got)),
				jen.Break(),
			),
		),
	)
}

func (g *generator) decodeArray(b *jen.Group, pl place, t *model.Type, c *model.Constraints, depth int) {
	i := tmp("i", depth)
	n := int(t.Len)
	unique := c != nil && c.UniqueItems
	b.If(dcall("Array")).BlockFunc(func(ab *jen.Group) {
		if unique {
			ab.Id("problems").Op(":=").Len(dcall("Problems"))
		}
		ab.Id(i).Op(":=").Lit(0)
		ab.For(dcall("NextItem")).BlockFunc(func(lb *jen.Group) {
			lb.If(jen.Id(i).Op("<").Lit(n)).BlockFunc(func(ib *jen.Group) {
				g.decode(ib, place{expr: pl.index(jen.Id(i))}, t.Elem, itemConstraints(c), depth+1)
			}).Else().Block(dcall("Skip"))
			lb.Id(i).Op("++")
		})
		ab.If(jen.Id(i).Op("!=").Lit(n)).Block(
			dcall("Fail", jen.Lit(fmt.Sprintf("array of exactly %d items", n)),
				jen.Qual(atpimplPath, "GotInt").Call(jen.Int64().Call(jen.Id(i)))),
		)
		if unique {
			g.uniqueCheck(ab, pl.index(jen.Op(":")), t.Elem)
		}
	})
}

// itemChecks checks an array's item count and uniqueness after reading it.
func (g *generator) itemChecks(b *jen.Group, s jen.Code, elem *model.Type, c *model.Constraints) {
	if c == nil {
		return
	}
	if c.MinItems != nil {
		b.Add(dcall("MinItems", jen.Len(s), jen.Lit(*c.MinItems)))
	}
	if c.MaxItems != nil {
		b.Add(dcall("MaxItems", jen.Len(s), jen.Lit(*c.MaxItems)))
	}
	if c.UniqueItems {
		g.uniqueCheck(b, s, elem)
	}
}

// gotFunc describes a scalar value in a problem: atpimpl.GotString(x) and
// so on. nil for a non-scalar.
func (g *generator) gotFunc(t *model.Type, x jen.Code) jen.Code {
	ti := g.info(t)
	if g.custom(ti.named) {
		return nil
	}
	switch ti.kind {
	case model.KindString:
		if ti.named != nil {
			x = jen.String().Call(x)
		}
		return jen.Qual(atpimplPath, "GotString").Call(x)
	case model.KindInt:
		return jen.Qual(atpimplPath, "GotInt").Call(widen(jen.Int64(), ti, x))
	case model.KindUint:
		return jen.Qual(atpimplPath, "GotUint").Call(widen(jen.Uint64(), ti, x))
	case model.KindFloat:
		return jen.Qual(atpimplPath, "GotFloat").Call(widen(jen.Float64(), ti, x))
	case model.KindBool:
		return jen.Qual("strconv", "FormatBool").Call(jen.Bool().Call(x))
	}
	return nil
}

// widen converts x to the 64-bit type wide unless x is of it already.
func widen(wide *jen.Statement, ti typeInfo, x jen.Code) jen.Code {
	if ti.named == nil && ti.bits == 64 {
		return x
	}
	return jen.Add(wide).Call(x)
}

func (g *generator) decodeMap(b *jen.Group, pl place, t *model.Type, depth int) {
	m, k, e := tmp("m", depth), tmp("k", depth), tmp("e", depth)
	keyInfo := g.info(t.Key)
	if keyInfo.kind != model.KindString || g.custom(keyInfo.named) {
		g.probs.add(model.Pos{}, "internal error: map key kind %s is not a string kind", keyInfo.kind)
	}
	b.If(dcall("Object")).BlockFunc(func(ob *jen.Group) {
		if mt, ok := g.goType(t); ok {
			ob.Id(m).Op(":=").Make(mt)
		} else {
			g.helpers["atpMakeMap"] = true
			ob.Id(m).Op(":=").Id("atpMakeMap").Call(pl.val())
		}
		ob.For(dcall("Next")).BlockFunc(func(lb *jen.Group) {
			key := jen.String().Call(dcall("Key"))
			if keyInfo.named != nil {
				key = jen.Qual(keyInfo.named.PkgPath, keyInfo.named.Name).Call(dcall("Key"))
			}
			lb.Id(k).Op(":=").Add(key)
			lb.If(jen.List(jen.Id("_"), jen.Id("dup")).Op(":=").Id(m).Index(jen.Id(k)), jen.Id("dup")).Block(
				dcall("Duplicate"), jen.Continue(),
			)
			if vals := g.enumValues(t.Key); len(vals) > 0 {
				kv := jen.Id(k)
				if keyInfo.named != nil {
					kv = jen.String().Call(jen.Id(k))
				}
				lb.Add(dcall("Enum", append([]jen.Code{kv}, goStrings(vals)...)...))
			}
			val := g.decodeElem(lb, e, t.Elem, nil, depth+1, func() *jen.Statement {
				g.helpers["atpMapElem"] = true
				return jen.Id("atpMapElem").Call(jen.Id(m))
			})
			lb.Id(m).Index(jen.Id(k)).Op("=").Add(val)
		})
		ob.Add(pl.expr).Op("=").Id(m)
	})
}

// goStrings turns JSON string literals into Go string literals.
func goStrings(lits []string) []jen.Code {
	out := make([]jen.Code, 0, len(lits))
	for _, l := range lits {
		var s string
		if json.Unmarshal([]byte(l), &s) == nil {
			out = append(out, jen.Lit(s))
		}
	}
	return out
}

// decodeScalar reads a scalar (or any, raw, bytes, time, duration) value,
// then checks its constraints. The checks are unconditional: the Decoder's
// checks and Fail stay silent about a value whose read already recorded a
// problem, so that a value of the wrong type gets exactly one message
// ("expected integer, got \"three\"") and none about the zero value the read
// returned.
func (g *generator) decodeScalar(b *jen.Group, pl place, t *model.Type, c *model.Constraints) {
	b.Add(pl.expr).Op("=").Add(g.scalarRead(t))
	for _, check := range g.scalarChecks(pl.val(), t, c) {
		b.Add(check)
	}
}

// isScalar reports whether decode reads t with one scalarRead.
func (g *generator) isScalar(t *model.Type) bool {
	ti := g.info(t)
	if g.custom(ti.named) {
		return false
	}
	switch ti.kind {
	case model.KindPointer, model.KindSlice, model.KindArray, model.KindMap, model.KindStruct:
		return false
	}
	return true
}

// scalarRead is the expression that reads a scalar of type t.
func (g *generator) scalarRead(t *model.Type) *jen.Statement {
	ti := g.info(t)
	var read *jen.Statement
	switch ti.kind {
	case model.KindBool:
		read = dcall("Bool")
	case model.KindInt:
		read = dcall("Int", jen.Lit(ti.bits))
		if ti.named == nil {
			read = convert(t, read)
		}
	case model.KindUint:
		read = dcall("Uint", jen.Lit(ti.bits))
		if ti.named == nil {
			read = convert(t, read)
		}
	case model.KindFloat:
		bits := ti.bits
		if bits == 0 {
			bits = 64
		}
		read = dcall("Float", jen.Lit(bits))
		if ti.named == nil && bits == 32 {
			read = jen.Float32().Call(read)
		}
	case model.KindString:
		read = dcall("String")
	case model.KindBytes:
		read = dcall("Bytes")
	case model.KindTime:
		read = dcall("Time")
	case model.KindDuration:
		read = dcall("Duration")
	case model.KindRaw:
		read = dcall("Raw")
	default:
		read = dcall("Any")
	}
	if ti.named != nil {
		read = jen.Qual(ti.named.PkgPath, ti.named.Name).Call(read)
	}
	return read
}

// decodeElem decodes one item of a slice or map and returns the expression
// of its value: the read itself for a scalar without checks, else the
// temporary e it declares (e := <read> for a scalar with checks, var e E
// and the full decode otherwise). zero makes e for a type generated code
// cannot spell.
func (g *generator) decodeElem(b *jen.Group, e string, t *model.Type, c *model.Constraints, depth int, zero func() *jen.Statement) jen.Code {
	if g.isScalar(t) && (c == nil || !c.Nullable) {
		checks := g.scalarChecks(jen.Id(e), t, c)
		if len(checks) == 0 {
			return g.scalarRead(t)
		}
		b.Id(e).Op(":=").Add(g.scalarRead(t))
		for _, check := range checks {
			b.Add(check)
		}
		return jen.Id(e)
	}
	if et, ok := g.goType(t); ok {
		b.Var().Id(e).Add(et)
	} else {
		b.Id(e).Op(":=").Add(zero())
	}
	g.decode(b, place{expr: jen.Id(e)}, t, c, depth)
	return jen.Id(e)
}

// convert wraps read (an int64 or uint64) in a conversion to the sized kind
// of t unless t is that 64-bit kind already.
func convert(t *model.Type, read *jen.Statement) *jen.Statement {
	if t.Bits == 64 {
		return read
	}
	switch {
	case t.Kind == model.KindInt && t.Bits == 0:
		return jen.Int().Call(read)
	case t.Kind == model.KindInt && t.Bits == 8:
		return jen.Int8().Call(read)
	case t.Kind == model.KindInt && t.Bits == 16:
		return jen.Int16().Call(read)
	case t.Kind == model.KindInt && t.Bits == 32:
		return jen.Int32().Call(read)
	case t.Kind == model.KindUint && t.Bits == 0:
		return jen.Uint().Call(read)
	case t.Kind == model.KindUint && t.Bits == 8:
		return jen.Uint8().Call(read)
	case t.Kind == model.KindUint && t.Bits == 16:
		return jen.Uint16().Call(read)
	case t.Kind == model.KindUint && t.Bits == 32:
		return jen.Uint32().Call(read)
	}
	return read
}

// scalarChecks are the constraint checks on a scalar value v of type t:
// enum first, then bounds, multipleOf, length, pattern and format.
func (g *generator) scalarChecks(v *jen.Statement, t *model.Type, c *model.Constraints) []jen.Code {
	ti := g.info(t)
	if g.custom(ti.named) {
		return nil
	}
	var enum []string
	if c != nil && len(c.Enum) > 0 {
		enum = dedupe(c.Enum)
	} else {
		enum = g.enumValues(t)
	}
	if c == nil {
		c = &model.Constraints{}
	}
	var out []jen.Code
	switch ti.kind {
	case model.KindString:
		sv := v
		if ti.named != nil {
			sv = jen.String().Call(v)
		}
		if len(enum) > 0 {
			out = append(out, dcall("Enum", append([]jen.Code{sv}, goStrings(enum)...)...))
		}
		if c.MinLength != nil {
			out = append(out, dcall("MinLength", sv, jen.Lit(*c.MinLength)))
		}
		if c.MaxLength != nil {
			out = append(out, dcall("MaxLength", sv, jen.Lit(*c.MaxLength)))
		}
		if c.Pattern != "" {
			out = append(out, dcall("Pattern", sv, jen.Id(g.patternVar(c.Pattern)), rawOrQuoted(c.Pattern)))
		}
		if c.Format != "" {
			out = append(out, dcall("Format", sv, jen.Lit(c.Format)))
		}
	case model.KindInt, model.KindUint, model.KindFloat:
		if len(enum) > 0 {
			var cases []jen.Code
			for _, l := range enum {
				cases = append(cases, jen.Op(l))
			}
			out = append(out, jen.Switch(v).Block(
				jen.Case(cases...),
				jen.Default().Block(dcall("Fail", jen.Lit(oneOf(enum)), g.gotFunc(t, v))),
			))
		}
		out = append(out, g.boundCheck(v, t, c.Minimum, "minimum")...)
		out = append(out, g.boundCheck(v, t, c.ExclusiveMinimum, "exclusiveMinimum")...)
		out = append(out, g.boundCheck(v, t, c.Maximum, "maximum")...)
		out = append(out, g.boundCheck(v, t, c.ExclusiveMaximum, "exclusiveMaximum")...)
		out = append(out, g.multipleOfCheck(v, t, c.MultipleOf)...)
	}
	return out
}

// boundCheck checks a number against a minimum or maximum. Integer kinds
// compare as integers (converted to int64 or uint64 when the bound does not
// fit the type on every platform); fractions and floats use the decoder's
// MinimumFloat and MaximumFloat.
func (g *generator) boundCheck(v *jen.Statement, t *model.Type, bound, keyword string) []jen.Code {
	if bound == "" {
		return nil
	}
	r, ok := parseNumber(bound)
	if !ok {
		return nil // reported by the schema
	}
	ti := g.info(t)
	isMin := keyword == "minimum" || keyword == "exclusiveMinimum"
	exclusive := strings.HasPrefix(keyword, "exclusive")
	if i, isInt := ratInt(r); isInt && ti.kind != model.KindFloat {
		lo, hi := intRange(ti.kind, ti.bits, false)
		// A bound every value of the type meets needs no check.
		if (isMin && (i.Cmp(lo) < 0 || (!exclusive && i.Cmp(lo) == 0))) || (!isMin && (i.Cmp(hi) > 0 || (!exclusive && i.Cmp(hi) == 0))) {
			return nil
		}
		var op, word string
		switch keyword {
		case "minimum":
			op, word = "<", ">="
		case "exclusiveMinimum":
			op, word = "<=", ">"
		case "maximum":
			op, word = ">", "<="
		default:
			op, word = ">=", "<"
		}
		cmpv := v
		plo, phi := intRange(ti.kind, ti.bits, true)
		if i.Cmp(plo) < 0 || i.Cmp(phi) > 0 {
			if ti.kind == model.KindUint {
				cmpv = jen.Uint64().Call(v)
			} else {
				cmpv = jen.Int64().Call(v)
			}
		}
		return []jen.Code{jen.If(jen.Add(cmpv).Op(op).Op(i.String())).Block(
			dcall("Fail", jen.Lit("integer "+word+" "+i.String()), g.gotFunc(t, v)),
		)}
	}
	fv := widen(jen.Float64(), ti, v)
	if ti.kind != model.KindFloat {
		fv = jen.Float64().Call(v)
	}
	method := "MaximumFloat"
	if isMin {
		method = "MinimumFloat"
	}
	return []jen.Code{dcall(method, fv, jen.Op(bound), jen.Lit(exclusive))}
}

func (g *generator) multipleOfCheck(v *jen.Statement, t *model.Type, m string) []jen.Code {
	if m == "" {
		return nil
	}
	r, ok := parseNumber(m)
	if !ok || r.Sign() <= 0 {
		return nil // reported by the schema
	}
	ti := g.info(t)
	fail := dcall("Fail", jen.Lit("multiple of "+m), g.gotFunc(t, v))
	if i, isInt := ratInt(r); isInt && ti.kind != model.KindFloat {
		if i.Cmp(big.NewInt(1)) == 0 {
			return nil
		}
		cmpv := v
		_, phi := intRange(ti.kind, ti.bits, true)
		if i.Cmp(phi) > 0 {
			if ti.kind == model.KindUint {
				cmpv = jen.Uint64().Call(v)
			} else {
				cmpv = jen.Int64().Call(v)
			}
		}
		return []jen.Code{jen.If(jen.Add(cmpv).Op("%").Op(i.String()).Op("!=").Lit(0)).Block(fail)}
	}
	// A fractional divisor, or a float: compare the decimal values exactly,
	// as JSON Schema defines multipleOf (0.29 is a multiple of 0.01 although
	// 0.29/0.01 is not a whole number in float64).
	return []jen.Code{dcall("MultipleOf", jen.Lit(m))}
}

// patternVar returns the package-level variable holding a compiled
// pattern, declaring it on first use.
func (g *generator) patternVar(pattern string) string {
	if name, ok := g.patterns[pattern]; ok {
		return name
	}
	name := g.ids.get("atpPattern" + strconv.Itoa(len(g.patterns)+1))
	g.patterns[pattern] = name
	g.patDecls = append(g.patDecls, jen.Id(name).Op("=").Qual("regexp", "MustCompile").Call(rawOrQuoted(pattern)))
	return name
}

// rawOrQuoted renders s as a raw string literal when it can be one, which
// keeps patterns' backslashes readable.
func rawOrQuoted(s string) jen.Code {
	if strings.ContainsAny(s, "`\r") || !isPrintable(s) {
		return jen.Lit(s)
	}
	return jen.Id("`" + s + "`")
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r < ' ' && r != '\t' {
			return false
		}
	}
	return true
}

// writeHelpers writes the generic helpers the decoders used. They infer a
// type from a place, for the types generated code cannot spell (anonymous
// structs, whose tags the model does not carry, and embedded pointers).
func (g *generator) writeHelpers(f *jen.File) {
	if g.helpers["atpNew"] {
		f.Line()
		f.Comment("atpNew returns a pointer to a new zero value of the type its argument points to, for types generated code does not spell.")
		f.Func().Id("atpNew").Types(jen.Id("P").Op("~*").Id("E"), jen.Id("E").Any()).Params(jen.Id("_").Id("P")).Id("P").Block(
			jen.Return(jen.New(jen.Id("E"))),
		)
	}
	if g.helpers["atpMakeSlice"] {
		f.Line()
		f.Comment("atpMakeSlice returns an empty slice of s's type, for types generated code does not spell.")
		f.Func().Id("atpMakeSlice").Types(jen.Id("S").Op("~[]").Id("E"), jen.Id("E").Any()).Params(jen.Id("_").Id("S")).Id("S").Block(
			jen.Return(jen.Make(jen.Id("S"), jen.Lit(0))),
		)
	}
	if g.helpers["atpElem"] {
		f.Line()
		f.Comment("atpElem returns the zero value of s's element type, for types generated code does not spell.")
		f.Func().Id("atpElem").Types(jen.Id("S").Op("~[]").Id("E"), jen.Id("E").Any()).Params(jen.Id("_").Id("S")).Params(jen.Id("zero").Id("E")).Block(
			jen.Return(),
		)
	}
	if g.helpers["atpMakeMap"] {
		f.Line()
		f.Comment("atpMakeMap returns an empty map of m's type, for types generated code does not spell.")
		f.Func().Id("atpMakeMap").Types(jen.Id("M").Op("~map[").Id("K").Op("]").Id("V"), jen.Id("K").Comparable(), jen.Id("V").Any()).Params(jen.Id("_").Id("M")).Id("M").Block(
			jen.Return(jen.Make(jen.Id("M"))),
		)
	}
	if g.helpers["atpMapElem"] {
		f.Line()
		f.Comment("atpMapElem returns the zero value of m's value type, for types generated code does not spell.")
		f.Func().Id("atpMapElem").Types(jen.Id("M").Op("~map[").Id("K").Op("]").Id("V"), jen.Id("K").Comparable(), jen.Id("V").Any()).Params(jen.Id("_").Id("M")).Params(jen.Id("zero").Id("V")).Block(
			jen.Return(),
		)
	}
}
