package doctor

import (
	"strings"

	"github.com/atpgo/atp/internal/model"
)

// resolver maps a JSON Pointer into a tool's canonical schema to the source
// position of what it describes: a property to its field or parameter, a
// $defs entry to its type. It goes as deep as it can follow the model and
// falls back to the deepest position found, at worst the tool's.
type resolver struct {
	pkg *model.Package
	t   *model.Tool
}

func (r resolver) pos(in, pointer string) model.Pos {
	pos := r.t.Pos
	var fields []*model.Field // the properties at this point, when known
	var typ *model.Type
	if in == "input" {
		fields = r.t.Fields
	} else {
		typ = r.t.Result
	}
	if pointer == "" {
		return pos
	}
	segs := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i := 0; i < len(segs); i++ {
		seg := unescapePointer(segs[i])
		if fields == nil && typ != nil {
			fields = r.fieldsOf(typ)
		}
		switch seg {
		case "properties":
			if i+1 >= len(segs) {
				return pos
			}
			i++
			name := unescapePointer(segs[i])
			var found *model.Field
			for _, f := range fields {
				if f.JSONName == name {
					found = f
					break
				}
			}
			if found == nil {
				return pos
			}
			pos, typ, fields = found.Pos, found.Type, nil
		case "items", "additionalProperties":
			typ, fields = r.elem(typ), nil
			if typ == nil {
				return pos
			}
		case "anyOf", "oneOf", "allOf", "prefixItems":
			// A union branch describes the same Go value (a pointer's
			// non-null branch): skip its index.
			i++
			if p := r.deref(typ); p != nil {
				typ = p
			}
		case "$defs", "definitions":
			if i+1 >= len(segs) {
				return pos
			}
			i++
			n := r.named(unescapePointer(segs[i]))
			if n == nil {
				return pos
			}
			pos, typ, fields = n.Pos, &model.Type{Kind: model.KindNamed, Ref: n.ID}, nil
		default:
			return pos
		}
	}
	return pos
}

// deref strips pointers and follows named types to their underlying type.
func (r resolver) deref(t *model.Type) *model.Type {
	for t != nil {
		switch t.Kind {
		case model.KindPointer:
			t = t.Elem
		case model.KindNamed:
			n := r.pkg.Named[t.Ref]
			if n == nil {
				return nil
			}
			t = n.Underlying
		default:
			return t
		}
	}
	return nil
}

func (r resolver) fieldsOf(t *model.Type) []*model.Field {
	if u := r.deref(t); u != nil && u.Kind == model.KindStruct {
		return u.Fields
	}
	return nil
}

// elem is the element type of a slice, array or map.
func (r resolver) elem(t *model.Type) *model.Type {
	if u := r.deref(t); u != nil && (u.Kind == model.KindSlice || u.Kind == model.KindArray || u.Kind == model.KindMap) {
		return u.Elem
	}
	return nil
}

// named finds the type behind a $defs key: gen names an entry after its type,
// qualified with the package name when two types share a name, with _2, _3
// ... after a clash.
func (r resolver) named(key string) *model.Named {
	var best *model.Named
	for _, n := range r.pkg.Named {
		switch key {
		case n.PkgName + "." + n.Name:
			return n
		case n.Name:
			if best == nil || n.ID < best.ID {
				best = n
			}
		}
	}
	return best
}
