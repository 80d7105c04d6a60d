package gen

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dave/jennifer/jen"
	"github.com/invopop/jsonschema"

	"github.com/atpgo/atp/internal/model"
)

// generator holds the state of generating one package's file.
type generator struct {
	pkg   *model.Package
	probs problems
	// output is set while result schemas are built: types then count as
	// custom when they marshal themselves, and values are described as
	// encoding/json writes them.
	output bool

	// $defs keys of recursive named types, by Named.ID.
	defNames map[string]string
	defTaken map[string]bool

	// Decode functions: their names by Named.ID, which are needed, which are
	// written.
	funcNames map[string]string
	funcUsed  map[string]bool
	funcDone  map[string]bool
	funcs     map[string]jen.Code // by function name

	// Package-level identifiers of the generated file.
	ids      *idents
	patterns map[string]string // pattern -> variable name
	patDecls []jen.Code
	helpers  map[string]bool // generic helpers used
}

func newGenerator(pkg *model.Package) *generator {
	g := &generator{
		pkg:       pkg,
		defNames:  map[string]string{},
		defTaken:  map[string]bool{},
		funcNames: map[string]string{},
		funcUsed:  map[string]bool{},
		funcDone:  map[string]bool{},
		funcs:     map[string]jen.Code{},
		patterns:  map[string]string{},
		helpers:   map[string]bool{},
		ids:       newIdents("ATPTools"),
	}
	if g.pkg.Named == nil {
		g.pkg = &model.Package{Path: pkg.Path, Name: pkg.Name, Dir: pkg.Dir, Tools: pkg.Tools, Receivers: pkg.Receivers, Named: map[string]*model.Named{}}
	}
	// Names of decode functions and $defs are assigned in ID order, before
	// anything is generated, so that they do not depend on which tool
	// happens to use a type first.
	ids := make([]string, 0, len(g.pkg.Named))
	for id := range g.pkg.Named {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		n := g.pkg.Named[id]
		if !isIdent(n.Name) || strings.Contains(strings.TrimPrefix(n.ID, n.PkgPath+"."), "[") {
			// The model names an instantiated generic type without its type
			// arguments, so generated code could not spell it.
			g.probs.add(n.Pos, "type %s: instantiated generic types are not supported yet; declare a non-generic type (type %sIn struct{...}) for the tool", strings.TrimPrefix(n.ID, n.PkgPath+"."), n.Name)
			continue
		}
		if n.PkgPath != g.pkg.Path && !isExported(n.Name) {
			g.probs.add(n.Pos, "type %s.%s is not exported, so the generated code in package %s cannot name it", n.PkgName, n.Name, g.pkg.Name)
		}
		base := "atpDecode" + exportName(n.Name)
		if n.PkgPath != g.pkg.Path {
			base = "atpDecode" + exportName(n.PkgName) + exportName(n.Name)
		}
		g.funcNames[id] = g.ids.get(base)
	}
	for _, id := range ids {
		if n := g.pkg.Named[id]; n.Recursive {
			g.defName(n)
		}
	}
	return g
}

func isExported(name string) bool { return name != "" && exportName(name) == name }

// toolEntry is one tool with what the file needs for it.
type toolEntry struct {
	t        *model.Tool
	recv     *model.Receiver // nil for a function
	inConst  string          // schema constant names
	outConst string
	inJSON   []byte
	outJSON  []byte
}

// Generate returns the package's atp_gen.go, or nil when the package has no
// tools (the caller then deletes a stale file). problems are generation
// problems with positions; when there are any, the file is nil too.
func Generate(pkg *model.Package) (*File, []model.Problem) {
	if pkg == nil || (len(pkg.Tools) == 0 && !hasReceiverTools(pkg)) {
		return nil, nil
	}
	g := newGenerator(pkg)
	content, err := g.file()
	if probs := g.probs.sorted(); len(probs) > 0 {
		return nil, probs
	}
	if err != nil {
		// A render error is a generator bug: report it at the package so
		// that the user sees something to report.
		return nil, []model.Problem{{Pos: model.Pos{File: pkg.Dir}, Message: "internal error: " + err.Error()}}
	}
	return &File{Path: filepath.Join(pkg.Dir, FileName), Content: content}, nil
}

func hasReceiverTools(pkg *model.Package) bool {
	for _, r := range pkg.Receivers {
		if len(r.Tools) > 0 {
			return true
		}
	}
	return false
}

// InputSchema returns the canonical JSON Schema of a tool's params: the
// same bytes the generated file embeds.
func InputSchema(pkg *model.Package, t *model.Tool) (json.RawMessage, error) {
	g := newGenerator(pkg)
	s := g.inputSchema(t)
	return g.schemaBytes(s)
}

// OutputSchema returns the canonical JSON Schema of a tool's result, nil
// when the tool returns only an error or nothing.
func OutputSchema(pkg *model.Package, t *model.Tool) (json.RawMessage, error) {
	g := newGenerator(pkg)
	s := g.outputSchema(t)
	if s == nil {
		return nil, nil
	}
	return g.schemaBytes(s)
}

func (g *generator) schemaBytes(s *jsonschema.Schema) (json.RawMessage, error) {
	if probs := g.probs.sorted(); len(probs) > 0 {
		msgs := make([]error, len(probs))
		for i, p := range probs {
			msgs[i] = errors.New(p.String())
		}
		return nil, errors.Join(msgs...)
	}
	return marshalSchema(s)
}

// sortedTools returns tools sorted by name (then Go name), whatever order
// the model lists them in.
func sortedTools(tools []*model.Tool) []*model.Tool {
	out := slices.Clone(tools)
	slices.SortFunc(out, func(a, b *model.Tool) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.GoName, b.GoName))
	})
	return out
}

func (g *generator) file() ([]byte, error) {
	f := jen.NewFilePathName(g.pkg.Path, g.pkg.Name)
	f.HeaderComment(Header)
	f.ImportName(runtimePath, "runtime")
	f.ImportName(atpimplPath, "atpimpl")
	f.ImportName(jsonPath, "json")
	for _, n := range g.pkg.Named {
		if n.PkgPath != g.pkg.Path {
			f.ImportName(n.PkgPath, n.PkgName)
		}
	}

	f.Comment("A compile error on the next line means that the atpgen which wrote this file and")
	f.Comment("the github.com/atpgo/atp/runtime packages it is built with do not match: run go")
	f.Comment("generate with the atpgen of your github.com/atpgo/atp version.")
	f.Const().Id("_").Op("=").Qual(atpimplPath, "SupportPackageIsVersion2")

	// Entries in a fixed order: package functions by tool name, then each
	// receiver's methods by tool name.
	var pkgTools []*toolEntry
	for _, t := range sortedTools(g.pkg.Tools) {
		pkgTools = append(pkgTools, &toolEntry{t: t})
	}
	recvs := slices.Clone(g.pkg.Receivers)
	slices.SortFunc(recvs, func(a, b *model.Receiver) int { return strings.Compare(a.TypeName, b.TypeName) })
	recvTools := map[*model.Receiver][]*toolEntry{}
	var all []*toolEntry
	all = append(all, pkgTools...)
	for _, r := range recvs {
		for _, t := range sortedTools(r.Tools) {
			e := &toolEntry{t: t, recv: r}
			recvTools[r] = append(recvTools[r], e)
			all = append(all, e)
		}
	}

	// Schemas first: their constants' names are taken before locals are.
	for _, e := range all {
		base := "atp" + camelName(e.t.GoName)
		if e.recv != nil {
			base = "atp" + exportName(e.recv.TypeName) + camelName(e.t.GoName)
		}
		var err error
		e.inConst = g.ids.get(base + "InputSchema")
		if e.inJSON, err = marshalSchema(g.inputSchema(e.t)); err != nil {
			return nil, fmt.Errorf("tool %s: input schema: %w", e.t.Name, err)
		}
		if out := g.outputSchema(e.t); out != nil {
			e.outConst = g.ids.get(base + "OutputSchema")
			if e.outJSON, err = marshalSchema(out); err != nil {
				return nil, fmt.Errorf("tool %s: output schema: %w", e.t.Name, err)
			}
		}
	}

	// Staleness guards.
	for _, e := range all {
		g.guard(f, e)
	}

	if len(pkgTools) > 0 {
		f.Line()
		f.Comment(fmt.Sprintf("ATPTools returns the tools of package %s (%s), for runtime.Toolkit.Add.", g.pkg.Name, toolNames(pkgTools)))
		f.Func().Id("ATPTools").Params().Index().Op("*").Qual(runtimePath, "Tool").Block(
			jen.Return(jen.Index().Op("*").Qual(runtimePath, "Tool").Add(multiValues(g.toolLiterals(pkgTools)...))),
		)
	}
	for _, r := range recvs {
		entries := recvTools[r]
		if len(entries) == 0 {
			continue
		}
		f.Line()
		f.Comment(fmt.Sprintf("ATPTools returns the tools that are methods of r (%s), for runtime.Toolkit.Add.", toolNames(entries)))
		f.Comment("The tools call r's methods, so r must stay usable while they are served.")
		if c := r.Constructor; c != nil {
			f.Comment(fmt.Sprintf("atp test and atp mcp make r with %s, its //atp:constructor.", c.GoName))
		}
		f.Func().Params(jen.Id("r").Op("*").Id(r.TypeName)).Id("ATPTools").Params().Index().Op("*").Qual(runtimePath, "Tool").Block(
			jen.Return(jen.Index().Op("*").Qual(runtimePath, "Tool").Add(multiValues(g.toolLiterals(entries)...))),
		)
	}

	// The schemas, as the transports announce them. They are built at
	// generate time, so nothing is reflected at run time.
	for _, e := range all {
		f.Line()
		f.Comment(fmt.Sprintf("%s is the JSON Schema of the params of tool %s.", e.inConst, e.t.Name))
		f.Const().Id(e.inConst).Op("=").Add(stringLit(e.inJSON))
		if e.outConst != "" {
			f.Line()
			f.Comment(fmt.Sprintf("%s is the JSON Schema of the result of tool %s.", e.outConst, e.t.Name))
			f.Const().Id(e.outConst).Op("=").Add(stringLit(e.outJSON))
		}
	}

	// Decode functions, generated until no new one is needed (a function
	// can need others), then written in name order.
	for {
		var todo []string
		for id := range g.funcUsed {
			if !g.funcDone[id] {
				todo = append(todo, id)
			}
		}
		if len(todo) == 0 {
			break
		}
		slices.Sort(todo)
		for _, id := range todo {
			g.funcDone[id] = true
			g.funcs[g.funcNames[id]] = g.decodeFunc(g.pkg.Named[id])
		}
	}
	names := make([]string, 0, len(g.funcs))
	for name := range g.funcs {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		f.Line()
		f.Add(g.funcs[name])
	}

	if len(g.patDecls) > 0 {
		f.Line()
		f.Comment("Patterns of the params' pattern constraints.")
		f.Var().DefsFunc(func(vg *jen.Group) {
			for _, d := range g.patDecls {
				vg.Add(d)
			}
		})
	}
	g.writeHelpers(f)

	var buf bytes.Buffer
	if err := f.Render(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func toolNames(entries []*toolEntry) string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.t.Name
	}
	return strings.Join(names, ", ")
}

// stringLit renders a schema as a raw string literal, or as a quoted one
// when it holds a backquote (or a carriage return, which raw strings drop).
func stringLit(b []byte) jen.Code {
	if bytes.ContainsAny(b, "`\r") {
		return jen.Lit(string(b))
	}
	return jen.Id("`" + string(b) + "`")
}

// guard writes the line that stops the build when a tool's signature no
// longer matches what the file was generated for.
func (g *generator) guard(f *jen.File, e *toolEntry) {
	t := e.t
	var params []jen.Code
	var fn jen.Code
	goName := t.GoName
	switch {
	case e.recv != nil && t.PtrReceiver:
		params = append(params, jen.Op("*").Id(e.recv.TypeName))
		fn = jen.Parens(jen.Op("*").Id(e.recv.TypeName)).Dot(t.GoName)
		goName = "(*" + e.recv.TypeName + ")." + t.GoName
	case e.recv != nil:
		params = append(params, jen.Id(e.recv.TypeName))
		fn = jen.Id(e.recv.TypeName).Dot(t.GoName)
		goName = e.recv.TypeName + "." + t.GoName
	default:
		fn = jen.Id(t.GoName)
	}
	spellable := true
	for _, a := range t.Args {
		switch a.Kind {
		case model.ArgContext:
			params = append(params, jen.Qual("context", "Context"))
		case model.ArgAuthToken:
			params = append(params, jen.Qual(runtimePath, "AuthToken"))
		case model.ArgCall:
			params = append(params, jen.Op("*").Qual(runtimePath, "Call"))
		case model.ArgParam:
			if a.Field < 0 || a.Field >= len(t.Fields) {
				g.probs.add(a.Pos, "internal error: parameter %s refers to property #%d, which tool %s does not have", a.GoName, a.Field, t.Name)
				return
			}
			pt, ok := g.goType(t.Fields[a.Field].Type)
			spellable = spellable && ok
			params = append(params, pt)
		case model.ArgInput:
			it, ok := g.goType(inputGoType(t))
			spellable = spellable && ok
			params = append(params, it)
		}
	}
	var results []jen.Code
	if t.Result != nil {
		rt, ok := g.goType(t.Result)
		spellable = spellable && ok
		results = append(results, rt)
	}
	if t.ReturnsError {
		results = append(results, jen.Error())
	}
	if !spellable {
		// An anonymous struct type cannot be spelled without its tags; the
		// call in Run still checks the parameters.
		return
	}
	f.Line()
	f.Comment(fmt.Sprintf("If this line fails to compile, the signature of %s changed after atpgen ran: run go generate.", goName))
	sig := jen.Func().Params(params...)
	switch len(results) {
	case 0:
	case 1:
		sig = sig.Add(results[0])
	default:
		sig = sig.Parens(jen.List(results...))
	}
	f.Var().Id("_").Add(sig).Op("=").Add(fn)
}

// inputGoType is the Go type of a tool's struct input parameter.
func inputGoType(t *model.Tool) *model.Type {
	it := t.InputType
	if it == nil {
		return &model.Type{Kind: model.KindAny}
	}
	if t.Input == model.InputStructPtr && it.Kind != model.KindPointer {
		return &model.Type{Kind: model.KindPointer, Elem: it}
	}
	return it
}

func (g *generator) toolLiterals(entries []*toolEntry) []jen.Code {
	out := make([]jen.Code, len(entries))
	for i, e := range entries {
		out[i] = g.toolLiteral(e)
	}
	return out
}

// toolLiteral is a tool's *runtime.Tool composite literal (without the &,
// which the slice literal makes implicit).
func (g *generator) toolLiteral(e *toolEntry) jen.Code {
	t := e.t
	var items []jen.Code
	field := func(name string, v jen.Code) { items = append(items, jen.Id(name).Op(":").Add(v)) }
	{
		field("Name", jen.Lit(t.Name))
		if t.Description != "" {
			field("Description", jen.Lit(t.Description))
		}
		var params, required []jen.Code
		for _, fl := range t.Fields {
			params = append(params, jen.Lit(fl.JSONName))
			if fl.Required {
				required = append(required, jen.Lit(fl.JSONName))
			}
		}
		if len(params) > 0 {
			field("Params", jen.Index().String().Values(params...))
		}
		if len(required) > 0 {
			field("RequiredParams", jen.Index().String().Values(required...))
		}
		field("InputSchema", jen.Qual(jsonPath, "RawMessage").Call(jen.Id(e.inConst)))
		if e.outConst != "" {
			field("OutputSchema", jen.Qual(jsonPath, "RawMessage").Call(jen.Id(e.outConst)))
		}
		if t.AuthProvider != "" {
			field("AuthProvider", jen.Lit(t.AuthProvider))
			field("AuthType", jen.Lit(cmp.Or(t.AuthType, "OAuth2")))
			field("AuthWith", jen.Lit(cmp.Or(t.AuthWith, "access_token")))
		} else {
			if t.AuthType != "" {
				field("AuthType", jen.Lit(t.AuthType))
			}
			if t.AuthWith != "" {
				field("AuthWith", jen.Lit(t.AuthWith))
			}
		}
		if t.NeedsAuthToken || t.AuthProvider != "" {
			field("NeedsAuthToken", jen.True())
		}
		if t.ReadOnly || t.Destructive || t.Idempotent {
			field("Hints", jen.Qual(runtimePath, "Hints").ValuesFunc(func(h *jen.Group) {
				if t.ReadOnly {
					h.Id("ReadOnly").Op(":").True()
				}
				if t.Destructive {
					h.Id("Destructive").Op(":").True()
				}
				if t.Idempotent {
					h.Id("Idempotent").Op(":").True()
				}
			}))
		}
		if t.Timeout > 0 {
			field("Timeout", durationExpr(t.Timeout))
		}
		field("Run", g.runFunc(e))
	}
	return multiValues(items...)
}

// multiValues renders a composite literal's elements one per line, with a
// trailing comma, as gofmt'd hand-written code has them.
func multiValues(items ...jen.Code) *jen.Statement {
	var lines []jen.Code
	for _, it := range items {
		lines = append(lines, jen.Line().Add(it))
	}
	return jen.Values(append(lines, jen.Line())...)
}

// durationExpr spells d with the largest unit that divides it:
// 30 * time.Second, time.Minute, 1500 * time.Millisecond.
func durationExpr(d time.Duration) jen.Code {
	if d == 0 {
		return jen.Lit(0)
	}
	for _, u := range durationUnits {
		if d%u.d == 0 {
			n := d / u.d
			if n == 1 {
				return jen.Qual("time", u.name)
			}
			if n == -1 {
				return jen.Op("-").Qual("time", u.name)
			}
			return jen.Lit(int(n)).Op("*").Qual("time", u.name)
		}
	}
	return jen.Qual("time", "Duration").Call(jen.Lit(int64(d)))
}
