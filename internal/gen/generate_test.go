package gen

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/model"
)

func TestGenerateFile(t *testing.T) {
	f, probs := Generate(runModel())
	if len(probs) > 0 {
		t.Fatalf("problems: %v", probs)
	}
	if f.Path != filepath.Join("/tmp/gentest", FileName) {
		t.Errorf("Path = %s", f.Path)
	}
	firstLine, _, _ := strings.Cut(string(f.Content), "\n")
	if firstLine != Header {
		t.Errorf("first line = %q, want %q", firstLine, Header)
	}
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, FileName, f.Content, parser.ParseComments)
	if err != nil {
		t.Fatalf("generated file does not parse: %v", err)
	}
	if !ast.IsGenerated(file) {
		t.Error("ast.IsGenerated does not recognise the file")
	}
	formatted, err := format.Source(f.Content)
	if err != nil || !bytes.Equal(formatted, f.Content) {
		t.Errorf("generated file is not gofmt'd (%v)", err)
	}
	for _, want := range []string{
		"const _ = atpimpl.SupportPackageIsVersion2",
		"func ATPTools() []*runtime.Tool {",
		"func (r *Store) ATPTools() []*runtime.Tool {",
		"var _ func(context.Context, string, int) (string, error) = Greet",
		"var _ func(Store, string, uint16) string = Store.Echo",
		"var _ func(*Store, context.Context, *runtime.Call, runtime.AuthToken, *KitchenIn) (map[string]any, error) = (*Store).Kitchen",
		"Timeout:        30 * time.Second,",
		"return r.Kitchen(ctx, call, call.AuthToken, &in)",
		"return r.Echo(note, count), nil",
		"return nil, r.Fail(ctx)",
		"Ping()\n\t\t\t\treturn nil, nil",
		"func atpDecodeLocation(d *atpimpl.Decoder, v *Location) {",
		"func atpDecodeSubPoint(d *atpimpl.Decoder, v *sub.Point) {",
		"regexp.MustCompile(`^[A-Z]{2}$`)",
	} {
		if !bytes.Contains(f.Content, []byte(want)) {
			t.Errorf("generated file lacks %q", want)
		}
	}
	// No volatile data such as the package's directory: the file is a
	// function of the model alone.
	if bytes.Contains(f.Content, []byte("/tmp/gentest")) {
		t.Error("generated file contains the package directory")
	}
}

func TestGenerateNoTools(t *testing.T) {
	for _, pkg := range []*model.Package{
		nil,
		{Path: testPkgPath, Name: "gentest"},
		{Path: testPkgPath, Name: "gentest", Receivers: []*model.Receiver{{TypeName: "T"}}},
	} {
		if f, probs := Generate(pkg); f != nil || probs != nil {
			t.Errorf("Generate(%+v) = %v, %v; want nil, nil", pkg, f, probs)
		}
	}
}

// shuffled returns a copy of m with every list whose order must not
// matter shuffled, and Named rebuilt in a random insertion order.
func shuffled(m *model.Package, r *rand.Rand) *model.Package {
	out := *m
	out.Tools = slices.Clone(m.Tools)
	r.Shuffle(len(out.Tools), func(i, j int) { out.Tools[i], out.Tools[j] = out.Tools[j], out.Tools[i] })
	out.Receivers = nil
	for _, rc := range m.Receivers {
		c := *rc
		c.Tools = slices.Clone(rc.Tools)
		r.Shuffle(len(c.Tools), func(i, j int) { c.Tools[i], c.Tools[j] = c.Tools[j], c.Tools[i] })
		out.Receivers = append(out.Receivers, &c)
	}
	r.Shuffle(len(out.Receivers), func(i, j int) { out.Receivers[i], out.Receivers[j] = out.Receivers[j], out.Receivers[i] })
	ids := make([]string, 0, len(m.Named))
	for id := range m.Named {
		ids = append(ids, id)
	}
	r.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	out.Named = map[string]*model.Named{}
	for _, id := range ids {
		out.Named[id] = m.Named[id]
	}
	return &out
}

func TestGenerateDeterministic(t *testing.T) {
	base := runModel()
	base.Receivers = append(base.Receivers, &model.Receiver{TypeName: "Aux", Tools: []*model.Tool{{
		Pos: pos(200), GoName: "Aux", Receiver: "Aux", PtrReceiver: true, Name: "aux", Input: model.InputNone,
	}}})
	want, probs := Generate(base)
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 30 {
		got, probs := Generate(shuffled(base, r))
		if len(probs) > 0 {
			t.Fatal(probs)
		}
		if !bytes.Equal(got.Content, want.Content) {
			t.Fatalf("round %d: output differs with shuffled input:\n%s", i, lineDiff(string(want.Content), string(got.Content)))
		}
	}
	// The model is not changed by generating.
	again, _ := Generate(base)
	if !bytes.Equal(again.Content, want.Content) {
		t.Fatal("a second Generate of the same model differs")
	}
}

func TestGenerateProblems(t *testing.T) {
	str, i8 := typ(model.KindString), intType(8)
	cons := func(tp *model.Type, set func(c *model.Constraints)) *model.Field {
		f := field("V", "v", tp, false, "")
		f.Pos = model.Pos{File: "in.go", Line: 7, Col: 2}
		set(&f.Constraints)
		return f
	}
	generic := namedStruct("Page", "")
	generic.ID = testPkgPath + ".Page[string]"
	foreign := &model.Named{ID: "example.com/other.secret", PkgPath: "example.com/other", PkgName: "other", Name: "secret",
		Pos: model.Pos{File: "other.go", Line: 3, Col: 6}, Underlying: str}
	badSchema := &model.Named{ID: testPkgPath + ".Raw", PkgPath: testPkgPath, PkgName: "gentest", Name: "Raw",
		Pos: model.Pos{File: "in.go", Line: 2, Col: 6}, Underlying: typ(model.KindAny), JSONUnmarshaler: true, SchemaJSON: `{"type":`}
	needless := &model.Named{ID: testPkgPath + ".Plain", PkgPath: testPkgPath, PkgName: "gentest", Name: "Plain",
		Pos: model.Pos{File: "in.go", Line: 4, Col: 6}, Underlying: str, SchemaJSON: `{"type":"string"}`}
	unit := enumNamed("Unit", str, model.EnumValue{GoName: "C", Value: `"c"`})

	tests := []struct {
		name  string
		named []*model.Named
		field *model.Field
		want  string
	}{
		{"string keyword on a number", nil, cons(intType(0), func(c *model.Constraints) { c.MinLength = intp(1) }),
			"in.go:7:2: constraint minLength/maxLength does not apply to v: it is a number"},
		{"pattern on items that are numbers", nil, cons(sliceOf(intType(0)), func(c *model.Constraints) { c.Items = &model.Constraints{Pattern: "a"} }),
			"in.go:7:2: constraint pattern does not apply to v: its items are numbers"},
		{"item keyword on the array itself", nil, cons(sliceOf(str), func(c *model.Constraints) { c.MinLength = intp(1) }),
			"in.go:7:2: constraint minLength/maxLength does not apply to v: it is an array"},
		{"enum on the array itself", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Enum = []string{`"a"`} }),
			"in.go:7:2: constraint enum does not apply to v: it is an array"},
		{"array keyword on items", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Items = &model.Constraints{MinItems: intp(1)} }),
			"in.go:7:2: constraint minItems/maxItems/uniqueItems does not apply to v: its items are strings"},
		{"item constraints on a string", nil, cons(str, func(c *model.Constraints) { c.Items = &model.Constraints{MinLength: intp(1)} }),
			"in.go:7:2: constraints on items do not apply to v: it is a string"},
		{"item enum value of the wrong type", nil, cons(sliceOf(intType(0)), func(c *model.Constraints) { c.Items = &model.Constraints{Enum: []string{`"a"`}} }),
			`in.go:7:2: enum value "a" of v: expected an integer`},
		{"item bound no value can meet", nil, cons(sliceOf(i8), func(c *model.Constraints) { c.Items = &model.Constraints{Maximum: "-1000"} }),
			"in.go:7:2: maximum -1000 of v is out of the range of its Go type: no value would be valid"},
		{"item default", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Items = &model.Constraints{Default: `"a"`} }),
			"in.go:7:2: default does not apply to each item of v: give v an array default instead"},
		{"nullable items", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Items = &model.Constraints{Nullable: true} }),
			"in.go:7:2: nullable does not apply to the items of v: make them pointers instead"},
		{"item example that is not JSON", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Items = &model.Constraints{Examples: []string{"x"}} }),
			"in.go:7:2: example x of the items of v is not a JSON value"},
		{"number keyword on a string", nil, cons(str, func(c *model.Constraints) { c.Maximum = "3" }),
			"in.go:7:2: constraint minimum/maximum/multipleOf does not apply to v: it is a string"},
		{"array keyword on a string", nil, cons(str, func(c *model.Constraints) { c.MaxItems = intp(3) }),
			"in.go:7:2: constraint minItems/maxItems/uniqueItems does not apply to v: it is a string"},
		{"enum on an object", nil, cons(mapOf(str), func(c *model.Constraints) { c.Enum = []string{`"a"`} }),
			"in.go:7:2: constraint enum does not apply to v: it is an object"},
		{"pattern that does not compile", nil, cons(str, func(c *model.Constraints) { c.Pattern = "a(" }),
			"in.go:7:2: pattern of v does not compile (patterns use Go's RE2 syntax): error parsing regexp: missing closing ): `a(`"},
		{"bound that is not a number", nil, cons(intType(0), func(c *model.Constraints) { c.Minimum = "one" }),
			`in.go:7:2: minimum "one" of v is not a number`},
		{"bound no value can meet", nil, cons(i8, func(c *model.Constraints) { c.Minimum = "1000" }),
			"in.go:7:2: minimum 1000 of v is out of the range of its Go type: no value would be valid"},
		{"multipleOf zero", nil, cons(intType(0), func(c *model.Constraints) { c.MultipleOf = "0" }),
			"in.go:7:2: multipleOf of v must be greater than 0"},
		{"negative length", nil, cons(str, func(c *model.Constraints) { c.MinLength = intp(-1) }),
			"in.go:7:2: minLength of v must not be negative"},
		{"enum value of the wrong type", nil, cons(intType(0), func(c *model.Constraints) { c.Enum = []string{`"a"`} }),
			`in.go:7:2: enum value "a" of v: expected an integer`},
		{"default of the wrong type", nil, cons(intType(0), func(c *model.Constraints) { c.Default = `"3"` }),
			`in.go:7:2: default "3" of v: expected an integer`},
		{"default that is not JSON", nil, cons(str, func(c *model.Constraints) { c.Default = "abc" }),
			"in.go:7:2: default abc of v is not a JSON value (strings need quotes)"},
		{"default out of range", nil, cons(i8, func(c *model.Constraints) { c.Default = "300" }),
			"in.go:7:2: default 300 of v: out of the range of the Go type"},
		{"default not in the enum", []*model.Named{unit}, cons(named("Unit"), func(c *model.Constraints) { c.Default = `"f"` }),
			`in.go:7:2: default "f" of v is not one of its values "c"`},
		{"default on an object", nil, cons(mapOf(str), func(c *model.Constraints) { c.Default = `{}` }),
			"in.go:7:2: default on v is supported only for strings, numbers, booleans and durations, and arrays of them"},
		{"default on an array of objects", nil, cons(sliceOf(mapOf(str)), func(c *model.Constraints) { c.Default = `[]` }),
			"in.go:7:2: default on v is supported only for strings, numbers, booleans and durations, and arrays of them"},
		{"default on an array of pointers", nil, cons(sliceOf(ptrTo(str)), func(c *model.Constraints) { c.Default = `["a"]` }),
			"in.go:7:2: default on v is supported only for strings, numbers, booleans and durations, and arrays of them"},
		{"array default that is not an array", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Default = `"a"` }),
			`in.go:7:2: default "a" of v must be a JSON array of its items`},
		{"array default with an item of the wrong type", nil, cons(sliceOf(intType(0)), func(c *model.Constraints) { c.Default = `[1, "x"]` }),
			`in.go:7:2: default [1, "x"] of v: item "x": expected an integer`},
		{"array default with an item outside the item enum", nil, cons(sliceOf(str), func(c *model.Constraints) {
			c.Default, c.Items = `["a","z"]`, &model.Constraints{Enum: []string{`"a"`, `"b"`}}
		}), `in.go:7:2: default ["a","z"] of v: item "z" is not one of its values "a", "b"`},
		{"array default with an item outside the type's constants", []*model.Named{unit}, cons(sliceOf(named("Unit")), func(c *model.Constraints) { c.Default = `["f"]` }),
			`in.go:7:2: default ["f"] of v: item "f" is not one of its values "c"`},
		{"array default with a bad duration", nil, cons(sliceOf(typ(model.KindDuration)), func(c *model.Constraints) { c.Default = `["1m",5]` }),
			`in.go:7:2: default ["1m",5] of v: item 5 must be a duration string such as "1h30m"`},
		{"array default of the wrong length", nil, cons(&model.Type{Kind: model.KindArray, Len: 2, Elem: intType(0)}, func(c *model.Constraints) { c.Default = `[1]` }),
			"in.go:7:2: default [1] of v has 1 items, but it is an array of exactly 2"},
		{"array default below minItems", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Default, c.MinItems = `[]`, intp(1) }),
			"in.go:7:2: default [] of v has 0 items, fewer than its minItems 1"},
		{"array default above maxItems", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Default, c.MaxItems = `["a","b"]`, intp(1) }),
			`in.go:7:2: default ["a","b"] of v has 2 items, more than its maxItems 1`},
		{"array default with repeated unique items", nil, cons(sliceOf(str), func(c *model.Constraints) { c.Default, c.UniqueItems = `["a","a"]`, true }),
			`in.go:7:2: default ["a","a"] of v repeats "a", but its items must be unique`},
		{"bad duration default", nil, cons(typ(model.KindDuration), func(c *model.Constraints) { c.Default = `"soon"` }),
			`in.go:7:2: default "soon" of v: time: invalid duration "soon"`},
		{"example that is not JSON", nil, cons(str, func(c *model.Constraints) { c.Examples = []string{"x"} }),
			"in.go:7:2: example x of v is not a JSON value"},
		{"uniqueItems on objects", nil, cons(sliceOf(mapOf(str)), func(c *model.Constraints) { c.UniqueItems = true }),
			"in.go:7:2: uniqueItems on v is supported only for arrays of strings, numbers or booleans"},
		{"uniqueItems on pointers", nil, cons(sliceOf(ptrTo(str)), func(c *model.Constraints) { c.UniqueItems = true }),
			"in.go:7:2: uniqueItems on v is supported only for arrays of strings, numbers or booleans"},
		{"generic type", []*model.Named{generic}, field("V", "v", &model.Type{Kind: model.KindNamed, Ref: generic.ID}, true, ""),
			"tools.go:5:1: type Page[string]: instantiated generic types are not supported yet; declare a non-generic type (type PageIn struct{...}) for the tool"},
		{"unexported type of another package", []*model.Named{foreign}, field("V", "v", &model.Type{Kind: model.KindNamed, Ref: foreign.ID}, true, ""),
			"other.go:3:6: type other.secret is not exported, so the generated code in package gentest cannot name it"},
		{"declared schema that is not JSON", []*model.Named{badSchema}, field("V", "v", &model.Type{Kind: model.KindNamed, Ref: badSchema.ID}, true, ""),
			"in.go:2:6: //atp:schema of Raw is not a valid schema: unexpected end of JSON input"},
		{"declared schema on a type without JSON methods", []*model.Named{needless}, field("V", "v", &model.Type{Kind: model.KindNamed, Ref: needless.ID}, true, ""),
			"in.go:4:6: //atp:schema is used only for types with their own JSON or text methods (UnmarshalJSON, MarshalJSON, ...); Plain is encoded as its underlying type"},
		{"anonymous struct as a plain parameter", nil, field("V", "v", &model.Type{Kind: model.KindStruct}, true, ""),
			"tools.go:10:1: parameter v: anonymous struct types are not supported as plain parameters; declare a named type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			pkg := pkgWith(tc.named...)
			pkg.Tools = []*model.Tool{oneParamTool(tc.field)}
			f, probs := Generate(pkg)
			if f != nil {
				t.Error("Generate returned a file along with problems")
			}
			var got []string
			for _, p := range probs {
				got = append(got, p.String())
			}
			if len(got) != 1 || got[0] != tc.want {
				t.Errorf("problems:\n got: %q\nwant: %q", got, tc.want)
			}
			if _, err := InputSchema(pkg, pkg.Tools[0]); err == nil && !strings.Contains(tc.name, "plain parameter") {
				t.Error("InputSchema returned no error")
			}
		})
	}
}

func TestGenerateProblemsAllAtOnceSorted(t *testing.T) {
	a := field("A", "a", intType(0), false, "")
	a.Pos = model.Pos{File: "b.go", Line: 1, Col: 1}
	a.Constraints.Pattern = "x"
	b := field("B", "b", typ(model.KindString), false, "")
	b.Pos = model.Pos{File: "a.go", Line: 9, Col: 1}
	b.Constraints.Minimum = "1"
	c := field("C", "a", typ(model.KindString), false, "")
	c.Pos = model.Pos{File: "a.go", Line: 3, Col: 1}
	pkg := pkgWith()
	pkg.Tools = []*model.Tool{{
		Pos: pos(1), GoName: "F", Name: "f", Input: model.InputPlain, Fields: []*model.Field{a, b, c},
		Args: []model.Arg{{Kind: model.ArgParam, Field: 0}, {Kind: model.ArgParam, Field: 1}, {Kind: model.ArgParam, Field: 2}},
	}}
	_, probs := Generate(pkg)
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	want := []string{
		`a.go:3:1: two properties are named "a"`,
		"a.go:9:1: constraint minimum/maximum/multipleOf does not apply to b: it is a string",
		"b.go:1:1: constraint pattern does not apply to a: it is a number",
	}
	if !slices.Equal(got, want) {
		t.Errorf("problems:\n got: %q\nwant: %q", got, want)
	}
}

func TestPlainLocalsAvoidGeneratedNames(t *testing.T) {
	pkg := pkgWith()
	var fields []*model.Field
	var args []model.Arg
	for i, name := range []string{"d", "ctx", "s", "seen", "len", "atpX", "time", "_", "dParam"} {
		fields = append(fields, field(name, "p"+itoa2(i), typ(model.KindString), true, ""))
		args = append(args, model.Arg{Kind: model.ArgParam, GoName: name, Field: i})
	}
	tool := &model.Tool{Pos: pos(1), GoName: "F", Name: "f", Input: model.InputPlain, Fields: fields, Args: args}
	got := newGenerator(pkg).plainLocals(tool)
	want := []string{"dParam", "ctxParam", "sParam", "seenParam", "lenParam", "atpXParam", "timeParam", "param7", "dParam2"}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("local %d = %q, want %q", i, got[i], w)
		}
	}
}

func itoa2(i int) string { return string(rune('0' + i)) }

func TestDurationExpr(t *testing.T) {
	f := func(d string) string {
		t.Helper()
		dur, err := parseDurationStd(d)
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(strings.TrimPrefix(fmtCode(durationExpr(dur)), "var _ ="))
	}
	for in, want := range map[string]string{
		"30s": "30 * time.Second", "1h": "time.Hour", "90m": "90 * time.Minute", "1.5s": "1500 * time.Millisecond",
		"1ns": "time.Nanosecond", "2h0m1ns": "7200000000001 * time.Nanosecond",
	} {
		if got := f(in); got != want {
			t.Errorf("durationExpr(%s) = %s, want %s", in, got, want)
		}
	}
}
