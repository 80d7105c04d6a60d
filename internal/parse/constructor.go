package parse

import (
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"github.com/atpgo/atp/internal/model"
)

// buildConstructors checks the package's //atp:constructor functions and
// returns them by the name of the receiver type they make. marked holds the
// types that have //atp:tool methods.
//
// A constructor is what atp test and atp mcp call, from a program of their
// own, to get a ready receiver instead of a zero value: so it must be
// exported, and take nothing they cannot give (at most a context).
func (pl *pkgLoader) buildConstructors(decls []toolDecl, marked map[string]bool) map[string]*model.Constructor {
	ctors := make(map[string]*model.Constructor)
	first := make(map[string]token.Pos)
	for _, d := range decls {
		fd := d.fd
		name := fd.Name.Name
		if len(d.comments) > 1 {
			p := pl.fset.Position(d.comments[0].Slash)
			pl.errorAt(d.comments[1].Slash, "second //atp:constructor on %s (first at line %d): keep one", name, p.Line)
			continue
		}
		if dir, _ := ast.ParseDirective(d.comments[0].Slash, d.comments[0].Text); strings.TrimSpace(dir.Args) != "" {
			pl.errorAt(dir.ArgsPos, "//atp:constructor takes no options: write it alone on its line")
			continue
		}
		if fd.Recv != nil {
			pl.errorAt(fd.Name.Pos(), "method %s cannot be a constructor: mark a package-level func that returns *T, as in func New%s() (*%s, error)", name, receiverName(fd), receiverName(fd))
			continue
		}
		if fd.Type.TypeParams != nil {
			pl.errorAt(fd.Type.TypeParams.Opening, "generic function %s cannot be a constructor: nothing would choose its type arguments", name)
			continue
		}
		obj, _ := pl.pkg.TypesInfo.Defs[fd.Name].(*types.Func)
		if obj == nil {
			continue // the type checker has reported why
		}
		sig := obj.Signature()
		c := &model.Constructor{GoName: name, Pos: pl.modelPos(pl.fset.Position(fd.Name.Pos()))}

		params := sig.Params()
		switch {
		case params.Len() == 0:
		case params.Len() == 1 && classifyParam(params.At(0).Type()) == paramContext && !sig.Variadic():
			c.TakesContext = true
		default:
			pl.errorAt(fd.Type.Params.Pos(), "constructor %s takes %s: a constructor takes nothing or one context.Context, as atp test and atp mcp have nothing else to give it", name, pl.tupleString(params))
			continue
		}

		res := sig.Results()
		var typeName string
		if res.Len() == 1 || (res.Len() == 2 && types.Identical(res.At(1).Type(), errorType)) {
			typeName = pl.localPointee(res.At(0).Type())
			c.ReturnsError = res.Len() == 2
		}
		if typeName == "" {
			at := fd.Type.Pos()
			if fd.Type.Results != nil {
				at = fd.Type.Results.Pos()
			}
			pl.errorAt(at, "constructor %s returns %s: expected *T or (*T, error), T a non-generic type of package %s whose methods are tools", name, pl.tupleString(res), pl.pkg.Name)
			continue
		}
		if !ast.IsExported(name) {
			pl.errorAt(fd.Name.Pos(), "constructor %s is not exported: atp test and atp mcp call it from a program of their own; export it (%s)", name, strings.ToUpper(name[:1])+name[1:])
			continue
		}
		if !marked[typeName] {
			pl.errorAt(fd.Name.Pos(), "constructor %s makes *%s, which has no //atp:tool methods: mark its tool methods, or remove //atp:constructor", name, typeName)
			continue
		}
		if prev, dup := first[typeName]; dup {
			pl.errorAt(fd.Name.Pos(), "second constructor for %s (first: %s at line %d): keep one //atp:constructor per type", typeName, ctors[typeName].GoName, pl.fset.Position(prev).Line)
			continue
		}
		first[typeName] = fd.Name.Pos()
		ctors[typeName] = c
	}
	return ctors
}

// localPointee returns T's name when t is *T for a non-generic named type T
// declared in the package being loaded, else "".
func (pl *pkgLoader) localPointee(t types.Type) string {
	ptr, ok := types.Unalias(t).(*types.Pointer)
	if !ok {
		return ""
	}
	n, ok := types.Unalias(ptr.Elem()).(*types.Named)
	if !ok || n.Obj().Pkg() != pl.pkg.Types || n.TypeParams().Len() > 0 || n.TypeArgs().Len() > 0 {
		return ""
	}
	return n.Obj().Name()
}

func (pl *pkgLoader) tupleString(t *types.Tuple) string {
	if t.Len() == 0 {
		return "nothing"
	}
	var parts []string
	for v := range t.Variables() {
		parts = append(parts, types.TypeString(v.Type(), pl.qualifier))
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// receiverName is the name of the type of a method's receiver, from the
// syntax: T for t T, *T, *T[K] and (T).
func receiverName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return ""
	}
	e := fd.Recv.List[0].Type
	for {
		switch x := e.(type) {
		case *ast.StarExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.IndexExpr:
			e = x.X
		case *ast.IndexListExpr:
			e = x.X
		case *ast.Ident:
			return x.Name
		default:
			return ""
		}
	}
}
