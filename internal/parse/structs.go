package parse

import (
	"cmp"
	"go/token"
	"go/types"
	"slices"
	"strings"

	"github.com/atpgo/atp/internal/model"
)

// fieldCand is a struct field that encoding/json would see, before
// conflicts between promoted fields are resolved.
type fieldCand struct {
	name   string // JSON name
	tagged bool   // the name comes from a json tag
	index  []int  // field indexes from the root struct
	path   []*types.Var
	ptrs   []bool // per embedded step: a pointer
	v      *types.Var
	kvs    []tagKV
	loc    tagLocator
	decl   *declInfo
	pos    token.Position

	omitEmpty, omitZero bool
	// twice: the struct it is promoted from is embedded more than once at
	// the same depth, so encoding/json drops the field.
	twice bool
}

func (f *fieldCand) goPath() string {
	var names []string
	for _, p := range f.path {
		names = append(names, p.Name())
	}
	return strings.Join(append(names, f.v.Name()), ".")
}

// structFields lists the properties of a struct the way encoding/json sees
// them: exported fields, json tags, and the fields of embedded structs
// promoted by its rules (shallower wins; at the same depth a tagged field
// wins; otherwise encoding/json drops both, which is an error here).
func (pl *pkgLoader) structFields(root *types.Struct, s site) []*model.Field {
	type level struct {
		st    *types.Struct
		key   string
		index []int
		path  []*types.Var
		ptrs  []bool
	}
	var cands []*fieldCand
	visited := make(map[string]bool)
	count, nextCount := map[string]int{}, map[string]int{}
	next := []level{{st: root, key: types.TypeString(root, nil)}}
	for len(next) > 0 {
		current := next
		next = nil
		count, nextCount = nextCount, map[string]int{}
		for _, lv := range current {
			if visited[lv.key] {
				continue
			}
			visited[lv.key] = true
			for i := range lv.st.NumFields() {
				v := lv.st.Field(i)
				ft := types.Unalias(v.Type())
				if v.Embedded() {
					et := ft
					if p, ok := et.(*types.Pointer); ok {
						et = types.Unalias(p.Elem())
					}
					if _, isStruct := et.Underlying().(*types.Struct); !v.Exported() && !isStruct {
						continue
					}
				} else if !v.Exported() {
					continue
				}

				f := &fieldCand{
					index: append(slices.Clone(lv.index), i),
					path:  lv.path,
					ptrs:  lv.ptrs,
					v:     v,
				}
				f.decl = pl.lookupDecl(pkgPathOf(v), v.Name(), v.Pos())
				f.pos = pl.declPos(f.decl, v.Pos())
				f.loc = tagLocator{base: f.pos}
				if d := f.decl; d != nil && d.tag != nil {
					f.loc.base = d.tagPos
					if strings.HasPrefix(d.tag.Value, "`") && !strings.Contains(d.tag.Value, "\n") {
						f.loc.base.Column++
						f.loc.base.Offset++
						f.loc.exact = true
					}
				}
				kvs, err := parseStructTag(lv.st.Tag(i))
				if err != nil {
					pl.errorf(f.loc.base, "field %s: %v", v.Name(), err)
					continue
				}
				f.kvs = kvs
				if !pl.checkTagKeys(f) {
					continue
				}
				if kv, ok := lookupTag(kvs, "jsonschema"); ok && kv.value == "-" {
					continue // invopop's way to leave a field out
				}
				name, ok := pl.jsonName(f)
				if !ok {
					continue
				}
				if name == "-" && !f.tagged {
					continue // json:"-"
				}

				et := ft
				isPtr := false
				if p, ok := et.(*types.Pointer); ok {
					et, isPtr = types.Unalias(p.Elem()), true
				}
				_, isStruct := et.Underlying().(*types.Struct)
				if f.tagged || !v.Embedded() || !isStruct {
					f.name = cmp.Or(name, v.Name())
					f.twice = count[lv.key] > 1
					cands = append(cands, f)
					continue
				}
				// An embedded struct without a json name: its fields are
				// promoted.
				key := types.TypeString(et, nil)
				nextCount[key]++
				if nextCount[key] == 1 {
					next = append(next, level{
						st:    et.Underlying().(*types.Struct),
						key:   key,
						index: f.index,
						path:  append(slices.Clone(lv.path), v),
						ptrs:  append(slices.Clone(lv.ptrs), isPtr),
					})
				}
			}
		}
	}

	kept := pl.dominantFields(root, cands)
	var out []*model.Field
	for _, f := range kept {
		if field := pl.modelField(f, s.role); field != nil {
			out = append(out, field)
		}
	}
	return out
}

func pkgPathOf(v *types.Var) string {
	if v.Pkg() == nil {
		return ""
	}
	return v.Pkg().Path()
}

// checkTagKeys rejects tag keys that would be silently ignored.
func (pl *pkgLoader) checkTagKeys(f *fieldCand) bool {
	ok := true
	seen := make(map[string]bool)
	for _, kv := range f.kvs {
		switch kv.key {
		case "json", "jsonschema", "jsonschema_description":
			if seen[kv.key] {
				pl.errorf(f.loc.keyAt(kv), "field %s: the struct tag has %s twice", f.v.Name(), kv.key)
				ok = false
			}
			seen[kv.key] = true
		case "jsonschema_extras":
			pl.errorf(f.loc.keyAt(kv), "field %s: jsonschema_extras is not supported: atpgen builds schemas from the jsonschema keywords it checks", f.v.Name())
			ok = false
		}
	}
	return ok
}

// jsonName reads the field's json tag: its name ("" when none) and options.
func (pl *pkgLoader) jsonName(f *fieldCand) (string, bool) {
	kv, has := lookupTag(f.kvs, "json")
	if !has {
		return "", true
	}
	if kv.value == "-" {
		return "-", true
	}
	name, opts, _ := strings.Cut(kv.value, ",")
	ok := true
	if name != "" {
		if !isValidJSONName(name) {
			pl.errorf(f.loc.at(kv, 0), "field %s: json name %q is not valid: encoding/json would ignore it and use %s", f.v.Name(), name, f.v.Name())
			ok = false
		}
		f.tagged = true
	}
	off := len(name) + 1
	if opts != "" {
		for opt := range strings.SplitSeq(opts, ",") {
			switch opt {
			case "omitempty":
				f.omitEmpty = true
			case "omitzero":
				f.omitZero = true
			case "string":
				pl.errorf(f.loc.at(kv, off), "field %s: the json option string is not supported: declare the field as a string", f.v.Name())
				ok = false
			default:
				pl.errorf(f.loc.at(kv, off), "field %s: unknown json option %q (options: omitempty, omitzero)", f.v.Name(), opt)
				ok = false
			}
			off += len(opt) + 1
		}
	}
	return name, ok
}

// dominantFields applies encoding/json's rules to fields with the same JSON
// name, reports the conflicts it would resolve by dropping both, and returns
// the winners in field order.
func (pl *pkgLoader) dominantFields(root *types.Struct, cands []*fieldCand) []*fieldCand {
	byName := make(map[string][]*fieldCand)
	var names []string
	for _, f := range cands {
		if byName[f.name] == nil {
			names = append(names, f.name)
		}
		byName[f.name] = append(byName[f.name], f)
	}
	var kept []*fieldCand
	for _, name := range names {
		group := byName[name]
		slices.SortStableFunc(group, func(a, b *fieldCand) int {
			if d := cmp.Compare(len(a.index), len(b.index)); d != 0 {
				return d
			}
			if a.tagged != b.tagged {
				if a.tagged {
					return -1
				}
				return 1
			}
			return slices.Compare(a.index, b.index)
		})
		f := group[0]
		if len(group) > 1 && len(group[1].index) == len(f.index) && group[1].tagged == f.tagged {
			other := group[1]
			at := pl.fieldPos(root, other.index[0])
			pl.errorf(at, "json name %q is ambiguous: %s and %s are at the same depth, so encoding/json would drop both; give one another json name", name, f.goPath(), other.goPath())
			continue
		}
		if f.twice {
			pl.errorf(pl.fieldPos(root, f.index[0]), "field %s is promoted from a struct embedded twice at the same depth, so encoding/json would drop it; embed it once", f.goPath())
			continue
		}
		kept = append(kept, f)
	}
	slices.SortFunc(kept, func(a, b *fieldCand) int { return slices.Compare(a.index, b.index) })
	return kept
}

// fieldPos is the position of the root struct's i-th field.
func (pl *pkgLoader) fieldPos(root *types.Struct, i int) token.Position {
	v := root.Field(i)
	return pl.declPos(pl.lookupDecl(pkgPathOf(v), v.Name(), v.Pos()), v.Pos())
}

// modelField converts a field that encoding/json keeps.
func (pl *pkgLoader) modelField(f *fieldCand, r role) *model.Field {
	for _, step := range f.path {
		if !step.Exported() && pkgPathOf(step) != pl.pkg.PkgPath {
			pl.errorf(f.pos, "field %s is promoted through the unexported embedded field %s of package %s, which generated code in package %s cannot reach", f.goPath(), step.Name(), step.Pkg().Name(), pl.pkg.Name)
			return nil
		}
	}
	what := "field " + f.v.Name()
	typ := pl.conv(f.v.Type(), site{what: what, pos: f.pos, role: r})
	if typ == nil {
		return nil
	}
	field := &model.Field{
		Pos:      pl.modelPos(f.pos),
		JSONName: f.name,
		Doc:      f.decl.docText(),
		Type:     typ,
	}
	for _, p := range f.path {
		field.GoPath = append(field.GoPath, p.Name())
	}
	field.GoPath = append(field.GoPath, f.v.Name())
	if len(f.ptrs) > 0 && slices.Contains(f.ptrs, true) {
		field.EmbedPtr = slices.Clone(f.ptrs)
	}
	c, force, ok := pl.constraints(f.kvs, f.loc, typ, what)
	if !ok {
		return nil
	}
	field.Constraints = c
	_, isPtr := types.Unalias(f.v.Type()).Underlying().(*types.Pointer)
	field.Required = force || (!isPtr && !f.omitEmpty && !f.omitZero && c.Default == "")
	return field
}
