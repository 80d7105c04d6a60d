package parse

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"go/constant"
	"go/token"
	"go/types"
	"slices"

	"github.com/atpgo/atp/internal/model"
)

// role says whether a type is decoded from params or encoded as a result:
// it decides which of a type's JSON methods matter and how errors read.
type role int

const (
	roleParam role = iota
	roleResult
)

// site is where a type is used, for error messages: "field Callback" at the
// field, "parameter cb" at the parameter, "result" at the result type.
type site struct {
	what string
	pos  token.Position
	role role
}

// typeErr reports that the type at s cannot be used, and why.
func (pl *pkgLoader) typeErr(s site, kindPlural, why string) {
	verb := "cannot be tool parameters"
	if s.role == roleResult {
		verb = "cannot be tool results"
	}
	pl.errorf(s.pos, "%s: %s %s (%s)", s.what, kindPlural, verb, why)
}

// namedEntry is the conversion state of one named type in one package.
type namedEntry struct {
	m *model.Named
	t *types.Named
	// full: Underlying has been converted. Types decoded (or encoded)
	// through their own methods are only converted when they are used the
	// other way too.
	full bool
	// broken: converting Underlying failed (reported once).
	broken bool
	// local: the type is declared in a package whose files were loaded,
	// so that problems in its fields are reported at the fields.
	local bool
	decl  token.Position
}

// unmarshalerIfaces are the method sets that change how encoding/json
// handles a type.
type unmarshalerIfaces struct {
	jsonUnmarshaler, textUnmarshaler, jsonMarshaler, textMarshaler *types.Interface
}

func newUnmarshalerIfaces() unmarshalerIfaces {
	bytesT := types.NewSlice(types.Typ[types.Byte])
	iface := func(method string, params, results []types.Type) *types.Interface {
		vars := func(ts []types.Type) *types.Tuple {
			var vs []*types.Var
			for _, t := range ts {
				vs = append(vs, types.NewParam(token.NoPos, nil, "", t))
			}
			return types.NewTuple(vs...)
		}
		sig := types.NewSignatureType(nil, nil, nil, vars(params), vars(results), false)
		fn := types.NewFunc(token.NoPos, nil, method, sig)
		return types.NewInterfaceType([]*types.Func{fn}, nil).Complete()
	}
	return unmarshalerIfaces{
		jsonUnmarshaler: iface("UnmarshalJSON", []types.Type{bytesT}, []types.Type{errorType}),
		textUnmarshaler: iface("UnmarshalText", []types.Type{bytesT}, []types.Type{errorType}),
		jsonMarshaler:   iface("MarshalJSON", nil, []types.Type{bytesT, errorType}),
		textMarshaler:   iface("MarshalText", nil, []types.Type{bytesT, errorType}),
	}
}

// specialKind is the kind of the named types the model knows by identity.
func specialKind(n *types.Named) model.Kind {
	switch {
	case isNamed(n, "time", "Time"):
		return model.KindTime
	case isNamed(n, "time", "Duration"):
		return model.KindDuration
	case isNamed(n, "encoding/json", "RawMessage"):
		return model.KindRaw
	}
	return ""
}

// conv converts a Go type used at s; nil when it cannot be used (reported).
func (pl *pkgLoader) conv(t types.Type, s site) *model.Type {
	switch t := types.Unalias(t).(type) {
	case *types.Basic:
		return pl.basic(t, s)
	case *types.Named:
		if k := specialKind(t); k != "" {
			return &model.Type{Kind: k}
		}
		if types.Identical(t, errorType) {
			pl.typeErr(s, "error values", "error is an interface that JSON cannot fill; use a string")
			return nil
		}
		if iface, ok := t.Underlying().(*types.Interface); ok && !iface.Empty() {
			pl.typeErr(s, "interface types such as "+types.TypeString(t, pl.qualifier), "the decoder cannot tell which concrete type to build; use a concrete type, or any for any JSON value")
			return nil
		}
		return pl.namedRef(t, s)
	case *types.TypeParam:
		pl.typeErr(s, "type parameters such as "+t.Obj().Name(), "generated code needs concrete types")
	case *types.Pointer:
		if elem := pl.conv(t.Elem(), s); elem != nil {
			return &model.Type{Kind: model.KindPointer, Elem: elem}
		}
	case *types.Slice:
		elem := types.Unalias(t.Elem())
		if types.Identical(elem, types.Typ[types.Uint8]) {
			return &model.Type{Kind: model.KindBytes}
		}
		if b, ok := elem.Underlying().(*types.Basic); ok && b.Kind() == types.Uint8 {
			pl.typeErr(s, "slices of a named byte type such as "+types.TypeString(t, pl.qualifier), "encoding/json treats them as base64 strings; use []byte")
			return nil
		}
		if e := pl.conv(t.Elem(), s); e != nil {
			return &model.Type{Kind: model.KindSlice, Elem: e}
		}
	case *types.Array:
		if e := pl.conv(t.Elem(), s); e != nil {
			return &model.Type{Kind: model.KindArray, Elem: e, Len: t.Len()}
		}
	case *types.Map:
		key := types.Unalias(t.Key())
		b, ok := key.Underlying().(*types.Basic)
		if !ok || b.Kind() != types.String {
			pl.typeErr(s, "maps with "+types.TypeString(key, pl.qualifier)+" keys", "JSON object keys are strings; use a map with string keys")
			return nil
		}
		k := pl.conv(key, s)
		v := pl.conv(t.Elem(), s)
		if k != nil && v != nil {
			return &model.Type{Kind: model.KindMap, Key: k, Elem: v}
		}
	case *types.Struct:
		return &model.Type{Kind: model.KindStruct, Fields: pl.structFields(t, s)}
	case *types.Interface:
		if t.Empty() {
			return &model.Type{Kind: model.KindAny}
		}
		pl.typeErr(s, "interface types such as "+types.TypeString(t, pl.qualifier), "the decoder cannot tell which concrete type to build; use a concrete type, or any for any JSON value")
	case *types.Chan:
		pl.typeErr(s, "channel types", "JSON has no channels")
	case *types.Signature:
		pl.typeErr(s, "func types", "JSON has no functions")
	}
	return nil
}

func (pl *pkgLoader) basic(b *types.Basic, s site) *model.Type {
	t, kindPlural, why := basicType(b)
	if kindPlural != "" {
		pl.typeErr(s, kindPlural, why)
	}
	return t
}

// basicType converts a basic type, or says why it cannot be used. Both are
// zero for invalid types, which come from errors the type checker reported.
func basicType(b *types.Basic) (t *model.Type, kindPlural, why string) {
	switch b.Kind() {
	case types.Bool:
		return &model.Type{Kind: model.KindBool}, "", ""
	case types.Int:
		return &model.Type{Kind: model.KindInt}, "", ""
	case types.Int8:
		return &model.Type{Kind: model.KindInt, Bits: 8}, "", ""
	case types.Int16:
		return &model.Type{Kind: model.KindInt, Bits: 16}, "", ""
	case types.Int32:
		return &model.Type{Kind: model.KindInt, Bits: 32}, "", ""
	case types.Int64:
		return &model.Type{Kind: model.KindInt, Bits: 64}, "", ""
	case types.Uint:
		return &model.Type{Kind: model.KindUint}, "", ""
	case types.Uint8:
		return &model.Type{Kind: model.KindUint, Bits: 8}, "", ""
	case types.Uint16:
		return &model.Type{Kind: model.KindUint, Bits: 16}, "", ""
	case types.Uint32:
		return &model.Type{Kind: model.KindUint, Bits: 32}, "", ""
	case types.Uint64:
		return &model.Type{Kind: model.KindUint, Bits: 64}, "", ""
	case types.Float32:
		return &model.Type{Kind: model.KindFloat, Bits: 32}, "", ""
	case types.Float64:
		return &model.Type{Kind: model.KindFloat, Bits: 64}, "", ""
	case types.String:
		return &model.Type{Kind: model.KindString}, "", ""
	case types.Uintptr:
		return nil, "uintptr values", "they hold memory addresses; use uint64"
	case types.Complex64, types.Complex128:
		return nil, "complex numbers", "JSON has no complex numbers; use two floats"
	case types.UnsafePointer:
		return nil, "unsafe.Pointer values", "they hold memory addresses"
	}
	return nil, "", ""
}

// qualifier writes package names in messages, and nothing for the package
// being loaded.
func (pl *pkgLoader) qualifier(p *types.Package) string {
	if p == pl.pkg.Types {
		return ""
	}
	return p.Name()
}

// namedRef registers a named type in the package's model and returns a
// reference to it.
func (pl *pkgLoader) namedRef(t *types.Named, s site) *model.Type {
	obj := t.Obj()
	if obj.Pkg() == nil {
		pl.typeErr(s, "predeclared types such as "+obj.Name(), "JSON has no such values")
		return nil
	}
	if obj.Pkg().Path() != pl.pkg.PkgPath && !obj.Exported() {
		pl.errorf(s.pos, "%s: type %s is unexported, so generated code in package %s cannot name it", s.what, types.TypeString(t, pl.qualifier), pl.pkg.Name)
		return nil
	}
	if t.TypeParams().Len() > 0 && t.TypeArgs().Len() == 0 {
		pl.typeErr(s, "uninstantiated generic types such as "+obj.Name(), "generated code needs concrete types")
		return nil
	}
	id := types.TypeString(t, nil)
	e := pl.named[id]
	if e == nil {
		e = pl.newNamed(t, id)
	}
	if !pl.ensureFull(e, s) {
		return nil
	}
	return &model.Type{Kind: model.KindNamed, Ref: id}
}

// newNamed registers a named type, with what its declaration and methods
// say, and its underlying type not converted yet.
func (pl *pkgLoader) newNamed(t *types.Named, id string) *namedEntry {
	obj := t.Obj()
	decl := pl.lookupDecl(obj.Pkg().Path(), obj.Name(), obj.Pos())
	// Problems in an instance of a generic type are reported at its use:
	// the declaration alone does not show them.
	_, local := pl.decls[obj.Pos()]
	local = local && t.TypeArgs().Len() == 0
	n := &model.Named{
		ID:         id,
		PkgPath:    obj.Pkg().Path(),
		PkgName:    obj.Pkg().Name(),
		Name:       obj.Name(),
		Underlying: placeholder(t),
	}
	e := &namedEntry{m: n, t: t, local: local, decl: pl.declPos(decl, obj.Pos())}
	n.Pos = pl.modelPos(e.decl)
	if decl != nil {
		n.Doc = decl.docText()
		if _, scanned := pl.decls[obj.Pos()]; scanned {
			n.SchemaJSON = pl.schemas[obj.Pos()]
		} else {
			// A dependency's type: its files were not scanned.
			n.SchemaJSON, _ = pl.schemaOf(schemaComments(decl.doc), decl.fset)
		}
	}
	ptr := types.NewPointer(t)
	n.JSONUnmarshaler = types.Implements(ptr, pl.ifaces.jsonUnmarshaler)
	n.TextUnmarshaler = !n.JSONUnmarshaler && types.Implements(ptr, pl.ifaces.textUnmarshaler)
	n.JSONMarshaler = types.Implements(ptr, pl.ifaces.jsonMarshaler)
	n.TextMarshaler = !n.JSONMarshaler && types.Implements(ptr, pl.ifaces.textMarshaler)
	n.Enum = pl.enumOf(t)
	pl.named[id] = e
	pl.mp.Named[id] = n
	return e
}

// placeholder is the Underlying of a type that is not converted (yet): its
// basic kind, or any.
func placeholder(t *types.Named) *model.Type {
	if b, ok := t.Underlying().(*types.Basic); ok {
		if m, _, _ := basicType(b); m != nil {
			return m
		}
	}
	return &model.Type{Kind: model.KindAny}
}

// ensureFull converts a named type's underlying type when the use at s
// needs it: params need it unless the type unmarshals itself, results unless
// it marshals itself. It reports false when the type cannot be used.
//
// Problems in a struct's fields are reported at the fields when the struct
// is declared in a loaded package; for a dependency's struct they are
// summed up at the use, where the user can act on them. Problems in other
// underlying types (func, chan, ...) are reported at the use.
func (pl *pkgLoader) ensureFull(e *namedEntry, use site) bool {
	if e.broken {
		return false
	}
	n := e.m
	need := !(n.JSONUnmarshaler || n.TextUnmarshaler)
	if use.role == roleResult {
		need = !(n.JSONMarshaler || n.TextMarshaler)
	}
	if !need || e.full {
		return true
	}
	e.full = true
	name := types.TypeString(e.t, pl.qualifier)
	_, isStruct := e.t.Underlying().(*types.Struct)
	s := use
	s.what = use.what + " (" + name + ")"
	if isStruct {
		s = site{what: "type " + name, pos: e.decl, role: use.role}
	}
	start := len(pl.problems)
	u := pl.conv(e.t.Underlying(), s)
	if len(pl.problems) > start || u == nil {
		e.broken = true
		if isStruct && !e.local && len(pl.problems) > start {
			inner := slices.Clone(pl.problems[start:])
			pl.problems = pl.problems[:start]
			more := ""
			if len(inner) > 1 {
				more = fmt.Sprintf(" (and %d more problems)", len(inner)-1)
			}
			pl.errorf(use.pos, "%s: type %s cannot be used: %s%s", use.what, name, inner[0].Message, more)
		}
		return false
	}
	n.Underlying = u
	return true
}

// enumOf lists the constants of type t declared in t's package, in source
// order, when t is a string or integer type.
func (pl *pkgLoader) enumOf(t *types.Named) []model.EnumValue {
	b, ok := t.Underlying().(*types.Basic)
	if !ok || b.Info()&(types.IsString|types.IsInteger) == 0 {
		return nil
	}
	type found struct {
		c    *types.Const
		pos  token.Position
		decl *declInfo
	}
	var consts []found
	scope := t.Obj().Pkg().Scope()
	for _, name := range scope.Names() {
		c, ok := scope.Lookup(name).(*types.Const)
		if !ok || !types.Identical(c.Type(), t) {
			continue
		}
		d := pl.lookupDecl(c.Pkg().Path(), c.Name(), c.Pos())
		consts = append(consts, found{c, pl.declPos(d, c.Pos()), d})
	}
	slices.SortFunc(consts, func(a, b found) int {
		return cmp.Or(cmp.Compare(a.pos.Filename, b.pos.Filename), cmp.Compare(a.pos.Line, b.pos.Line), cmp.Compare(a.pos.Column, b.pos.Column))
	})
	var out []model.EnumValue
	seen := make(map[string]bool)
	for _, f := range consts {
		v := enumLiteral(f.c.Val())
		if v == "" || seen[v] {
			continue // an alias of an earlier constant
		}
		seen[v] = true
		out = append(out, model.EnumValue{GoName: f.c.Name(), Value: v, Doc: f.decl.docText(), Pos: pl.modelPos(f.pos)})
	}
	return out
}

// enumLiteral is a constant's value as a JSON literal.
func enumLiteral(v constant.Value) string {
	switch v.Kind() {
	case constant.String:
		return jsonString(constant.StringVal(v))
	case constant.Int:
		return v.ExactString()
	}
	return ""
}

// jsonString quotes s as JSON, leaving <, > and & as they are.
func jsonString(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s) // a string always encodes
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

// markRecursive sets Recursive on every named type that can reach itself.
func markRecursive(named map[string]*model.Named) {
	for id, n := range named {
		visited := make(map[string]bool)
		var reaches func(t *model.Type) bool
		reaches = func(t *model.Type) bool {
			if t == nil {
				return false
			}
			switch t.Kind {
			case model.KindNamed:
				if t.Ref == id {
					return true
				}
				if visited[t.Ref] {
					return false
				}
				visited[t.Ref] = true
				if m := named[t.Ref]; m != nil {
					return reaches(m.Underlying)
				}
				return false
			case model.KindStruct:
				for _, f := range t.Fields {
					if reaches(f.Type) {
						return true
					}
				}
				return false
			}
			return reaches(t.Elem) || reaches(t.Key)
		}
		n.Recursive = reaches(n.Underlying)
	}
}
