package gen

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/model"
)

// oneParamTool is a tool with a single plain parameter v.
func oneParamTool(f *model.Field) *model.Tool {
	return &model.Tool{
		Pos: pos(1), GoName: "F", Name: "f",
		Args:  []model.Arg{{Kind: model.ArgParam, GoName: "v", Field: 0}},
		Input: model.InputPlain, Fields: []*model.Field{f},
	}
}

func pkgWith(named ...*model.Named) *model.Package {
	p := &model.Package{Path: testPkgPath, Name: "gentest", Dir: "/tmp/gentest", Named: map[string]*model.Named{}}
	for _, n := range named {
		p.Named[n.ID] = n
	}
	return p
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("invalid JSON %s: %v", b, err)
	}
	return out.String()
}

// propertyV returns the compact schema of property v and the root's $defs.
func propertyV(t *testing.T, pkg *model.Package, f *model.Field) (prop, defs string) {
	t.Helper()
	raw, err := InputSchema(pkg, oneParamTool(f))
	if err != nil {
		t.Fatalf("InputSchema: %v", err)
	}
	var root struct {
		Defs       json.RawMessage            `json:"$defs"`
		Properties map[string]json.RawMessage `json:"properties"`
	}
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	if root.Defs != nil {
		defs = compact(t, root.Defs)
	}
	return compact(t, root.Properties["v"]), defs
}

func enumNamed(name string, under *model.Type, values ...model.EnumValue) *model.Named {
	return &model.Named{
		ID: testPkgPath + "." + name, PkgPath: testPkgPath, PkgName: "gentest", Name: name, Pos: pos(2),
		Doc: name + " is an enum.", Underlying: under, Enum: values,
	}
}

func TestSchemaPerKind(t *testing.T) {
	unit := enumNamed("Unit", typ(model.KindString),
		model.EnumValue{GoName: "C", Value: `"celsius"`, Doc: "Degrees\nCelsius."},
		model.EnumValue{GoName: "F", Value: `"fahrenheit"`},
		model.EnumValue{GoName: "Alias", Value: `"celsius"`, Doc: "same as C"},
	)
	prio := enumNamed("Prio", intType(0), model.EnumValue{GoName: "Low", Value: "1", Doc: "can wait"}, model.EnumValue{GoName: "High", Value: "2"})
	loc := namedStruct("Loc", "Loc is a place.", field("City", "city", typ(model.KindString), true, "The city."))
	tree := namedStruct("Tree", "Tree is recursive.",
		field("Kids", "kids", sliceOf(named("Tree")), false, ""),
	)
	tree.Recursive = true
	money := &model.Named{ID: testPkgPath + ".Money", PkgPath: testPkgPath, PkgName: "gentest", Name: "Money", Pos: pos(3),
		Underlying: typ(model.KindAny), JSONUnmarshaler: true, SchemaJSON: `{"type":"string","x-unit":"cents"}`}
	blob := &model.Named{ID: testPkgPath + ".Blob", PkgPath: testPkgPath, PkgName: "gentest", Name: "Blob", Pos: pos(3),
		Underlying: typ(model.KindAny), JSONUnmarshaler: true}
	level := &model.Named{ID: testPkgPath + ".Level", PkgPath: testPkgPath, PkgName: "gentest", Name: "Level", Pos: pos(3),
		Underlying: intType(0), TextUnmarshaler: true}
	pkg := pkgWith(unit, prio, loc, tree, money, blob, level)

	with := func(t *model.Type, set func(c *model.Constraints)) *model.Field {
		f := field("V", "v", t, false, "")
		if set != nil {
			set(&f.Constraints)
		}
		return f
	}
	doc := func(f *model.Field, d string) *model.Field { f.Doc = d; return f }

	tests := []struct {
		name  string
		field *model.Field
		want  string
		defs  string
	}{
		{"bool", with(typ(model.KindBool), nil), `{"type":"boolean"}`, ""},
		{"int", with(intType(0), nil), `{"type":"integer"}`, ""},
		{"int64", with(intType(64), nil), `{"type":"integer"}`, ""},
		{"int8", with(intType(8), nil), `{"type":"integer","maximum":127,"minimum":-128}`, ""},
		{"int32", with(intType(32), nil), `{"type":"integer","maximum":2147483647,"minimum":-2147483648}`, ""},
		{"uint", with(uintType(0), nil), `{"type":"integer","minimum":0}`, ""},
		{"uint16", with(uintType(16), nil), `{"type":"integer","maximum":65535,"minimum":0}`, ""},
		{"float32", with(&model.Type{Kind: model.KindFloat, Bits: 32}, nil), `{"type":"number"}`, ""},
		{"string", with(typ(model.KindString), nil), `{"type":"string"}`, ""},
		{"bytes", with(typ(model.KindBytes), nil), `{"type":"string","contentEncoding":"base64"}`, ""},
		{"time", with(typ(model.KindTime), nil), `{"type":"string","format":"date-time"}`, ""},
		{"duration", doc(with(typ(model.KindDuration), nil), "How long."),
			`{"type":"string","pattern":"^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$","description":"How long.\nA Go duration string such as \"1h30m\", \"90s\" or \"250ms\" (units: h, m, s, ms, us, ns)."}`, ""},
		{"any", with(typ(model.KindAny), nil), `{}`, ""},
		{"raw", doc(with(typ(model.KindRaw), nil), "Passed through."), `{"description":"Passed through."}`, ""},
		{"slice", with(sliceOf(typ(model.KindString)), nil), `{"items":{"type":"string"},"type":"array"}`, ""},
		{"array", with(&model.Type{Kind: model.KindArray, Len: 3, Elem: intType(0)}, nil), `{"items":{"type":"integer"},"type":"array","maxItems":3,"minItems":3}`, ""},
		{"map", with(mapOf(typ(model.KindBool)), nil), `{"additionalProperties":{"type":"boolean"},"type":"object"}`, ""},
		{"map of any", with(mapOf(typ(model.KindAny)), nil), `{"additionalProperties":{},"type":"object"}`, ""},
		{"map with enum keys", with(&model.Type{Kind: model.KindMap, Key: named("Unit"), Elem: intType(0)}, nil),
			`{"additionalProperties":{"type":"integer"},"propertyNames":{"enum":["celsius","fahrenheit"]},"type":"object"}`, ""},
		{"pointer", doc(with(ptrTo(intType(0)), func(c *model.Constraints) { c.Minimum = "1"; c.Default = "5" }), "Count."),
			`{"anyOf":[{"type":"integer","minimum":1},{"type":"null"}],"description":"Count.","default":5}`, ""},
		{"anonymous struct", with(&model.Type{Kind: model.KindStruct, Fields: []*model.Field{field("A", "a", typ(model.KindString), true, "")}}, nil),
			`{"properties":{"a":{"type":"string"}},"additionalProperties":false,"type":"object","required":["a"]}`, ""},
		{"named struct takes the type doc", with(named("Loc"), nil),
			`{"properties":{"city":{"type":"string","description":"The city."}},"additionalProperties":false,"type":"object","required":["city"],"description":"Loc is a place."}`, ""},
		{"field doc replaces the type doc", doc(with(named("Loc"), nil), "Where."),
			`{"properties":{"city":{"type":"string","description":"The city."}},"additionalProperties":false,"type":"object","required":["city"],"description":"Where."}`, ""},
		{"string enum from consts", doc(with(named("Unit"), nil), "Scale."),
			`{"type":"string","enum":["celsius","fahrenheit"],"description":"Scale.\n- celsius: Degrees Celsius."}`, ""},
		{"int enum from consts", with(named("Prio"), nil),
			`{"type":"integer","enum":[1,2],"description":"Prio is an enum.\n- 1: can wait"}`, ""},
		{"enum tag replaces consts", with(named("Unit"), func(c *model.Constraints) { c.Enum = []string{`"celsius"`} }),
			`{"type":"string","enum":["celsius"],"description":"Unit is an enum.\n- celsius: Degrees Celsius."}`, ""},
		{"recursive", doc(with(named("Tree"), nil), "A tree."), `{"$ref":"#/$defs/Tree","description":"A tree."}`,
			`{"Tree":{"properties":{"kids":{"items":{"$ref":"#/$defs/Tree"},"type":"array"}},"additionalProperties":false,"type":"object","description":"Tree is recursive."}}`},
		{"json unmarshaler with schema", with(named("Money"), nil), `{"type":"string","x-unit":"cents"}`, ""},
		{"json unmarshaler without schema", with(named("Blob"), nil), `{}`, ""},
		{"text unmarshaler", with(named("Level"), nil), `{"type":"string"}`, ""},
		{"string constraints", with(typ(model.KindString), func(c *model.Constraints) {
			c.MinLength, c.MaxLength, c.Pattern, c.Format = intp(1), intp(9), `^a<b&c$`, "email"
		}), `{"type":"string","maxLength":9,"minLength":1,"pattern":"^a<b&c$","format":"email"}`, ""},
		{"number constraints", with(&model.Type{Kind: model.KindFloat, Bits: 64}, func(c *model.Constraints) {
			c.ExclusiveMinimum, c.ExclusiveMaximum, c.MultipleOf = "0", "1.5", "0.25"
		}), `{"type":"number","multipleOf":0.25,"exclusiveMaximum":1.5,"exclusiveMinimum":0}`, ""},
		{"a declared bound tighter than the type's wins", with(intType(8), func(c *model.Constraints) { c.Minimum, c.Maximum = "-5", "500" }),
			`{"type":"integer","maximum":127,"minimum":-5}`, ""},
		{"annotations", with(typ(model.KindString), func(c *model.Constraints) {
			c.Title, c.Description, c.Default, c.Examples = "T", "From the tag.", `"x"`, []string{`"y"`, `"z"`}
			c.Deprecated, c.ReadOnly, c.WriteOnly = true, true, true
		}), `{"type":"string","title":"T","description":"From the tag.","default":"x","deprecated":true,"readOnly":true,"writeOnly":true,"examples":["y","z"]}`, ""},
		{"nullable", doc(with(typ(model.KindString), func(c *model.Constraints) { c.Nullable, c.MinLength = true, intp(2) }), "Note."),
			`{"anyOf":[{"type":"string","minLength":2},{"type":"null"}],"description":"Note."}`, ""},
		{"nullable any stays any", with(typ(model.KindAny), func(c *model.Constraints) { c.Nullable = true }), `{}`, ""},
		{"array keywords and item keywords", with(sliceOf(ptrTo(typ(model.KindString))), func(c *model.Constraints) {
			c.MinItems, c.MaxItems, c.UniqueItems, c.Pattern, c.Enum = intp(1), intp(4), true, "^[a-z]+$", []string{`"a"`, `"b"`}
		}), `{"items":{"anyOf":[{"type":"string","enum":["a","b"],"pattern":"^[a-z]+$"},{"type":"null"}]},"type":"array","maxItems":4,"minItems":1,"uniqueItems":true}`, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, defs := propertyV(t, pkg, tc.field)
			if got != tc.want {
				t.Errorf("property schema\n got: %s\nwant: %s", got, tc.want)
			}
			if defs != tc.defs {
				t.Errorf("$defs\n got: %s\nwant: %s", defs, tc.defs)
			}
		})
	}
}

func TestInputSchemaRoot(t *testing.T) {
	pkg := weatherModel()
	for _, tc := range []struct {
		tool string
		want string
	}{
		{"ping", `{"properties":{},"additionalProperties":false,"type":"object"}`},
		{"greet", `{"properties":{"name":{"type":"string","minLength":1,"description":"who to greet"},` +
			`"times":{"type":"integer","maximum":3,"minimum":1,"description":"how many times","default":1}},` +
			`"additionalProperties":false,"type":"object","required":["name"]}`},
	} {
		var tool *model.Tool
		for _, tl := range pkg.Tools {
			if tl.Name == tc.tool {
				tool = tl
			}
		}
		raw, err := InputSchema(pkg, tool)
		if err != nil {
			t.Fatal(err)
		}
		if got := compact(t, raw); got != tc.want {
			t.Errorf("%s input schema\n got: %s\nwant: %s", tc.tool, got, tc.want)
		}
		if bytes.Contains(raw, []byte(`"$schema"`)) || bytes.Contains(raw, []byte(`"$id"`)) {
			t.Errorf("%s input schema has $schema or $id: %s", tc.tool, raw)
		}
		if !bytes.HasPrefix(raw, []byte("{\n  \"")) {
			t.Errorf("%s input schema is not indented with 2 spaces:\n%s", tc.tool, raw)
		}
	}
}

func TestRecursiveStructInput(t *testing.T) {
	node := namedStruct("Node", "Node is a tree node.",
		field("Label", "label", typ(model.KindString), true, ""),
		field("Children", "children", sliceOf(ptrTo(named("Node"))), false, ""),
	)
	node.Recursive = true
	pkg := pkgWith(node)
	tool := &model.Tool{Pos: pos(1), GoName: "Count", Name: "count", Input: model.InputStruct,
		Args: []model.Arg{{Kind: model.ArgInput}}, InputType: named("Node"), Fields: node.Underlying.Fields,
		Result: named("Node")}
	want := `{"$defs":{"Node":{"properties":{"label":{"type":"string"},"children":{"items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]},"type":"array"}},` +
		`"additionalProperties":false,"type":"object","required":["label"],"description":"Node is a tree node."}},` +
		`"properties":{"label":{"type":"string"},"children":{"items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]},"type":"array"}},` +
		`"additionalProperties":false,"type":"object","required":["label"]}`
	raw, err := InputSchema(pkg, tool)
	if err != nil {
		t.Fatal(err)
	}
	if got := compact(t, raw); got != want {
		t.Errorf("input schema\n got: %s\nwant: %s", got, want)
	}
	// The output root is the type itself, inline, with a nullable slice
	// since encoding/json writes a nil one as null when it is not omitempty.
	node.Underlying.Fields[1].Required = true
	raw, err = OutputSchema(pkg, tool)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"$defs":{"Node":{"properties":{"label":{"type":"string"},"children":{"anyOf":[{"items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]},"type":"array"},{"type":"null"}]}},` +
		`"additionalProperties":false,"type":"object","required":["label","children"],"description":"Node is a tree node."}},` +
		`"properties":{"label":{"type":"string"},"children":{"anyOf":[{"items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]},"type":"array"},{"type":"null"}]}},` +
		`"additionalProperties":false,"type":"object","required":["label","children"],"description":"Node is a tree node."}`
	if got := compact(t, raw); got != want {
		t.Errorf("output schema\n got: %s\nwant: %s", got, want)
	}
}

func TestOutputSchema(t *testing.T) {
	stamp := &model.Named{ID: testPkgPath + ".Stamp", PkgPath: testPkgPath, PkgName: "gentest", Name: "Stamp", Pos: pos(3),
		Underlying: typ(model.KindAny), TextMarshaler: true}
	opaque := &model.Named{ID: testPkgPath + ".Opaque", PkgPath: testPkgPath, PkgName: "gentest", Name: "Opaque", Pos: pos(3),
		Underlying: typ(model.KindAny), JSONMarshaler: true}
	// A type that decodes itself in params but not in results is described
	// by its fields in results.
	in := namedStruct("In", "", field("A", "a", typ(model.KindString), true, ""))
	in.JSONUnmarshaler = true
	out := namedStruct("Out", "Out is a result.",
		field("Tags", "tags", sliceOf(typ(model.KindString)), true, ""),
		field("Opt", "opt", mapOf(intType(0)), false, ""),
		field("Took", "took", typ(model.KindDuration), true, ""),
		field("At", "at", named("Stamp"), true, ""),
		field("X", "x", named("Opaque"), true, ""),
		field("In", "in", named("In"), true, ""),
	)
	pkg := pkgWith(stamp, opaque, in, out)
	for _, tc := range []struct {
		name   string
		result *model.Type
		want   string
	}{
		{"none", nil, ""},
		{"pointer is its element", ptrTo(typ(model.KindString)), `{"type":"string"}`},
		{"root slice is not nullable", sliceOf(typ(model.KindString)), `{"items":{"type":"string"},"type":"array"}`},
		{"struct", ptrTo(named("Out")), `{"properties":{` +
			`"tags":{"anyOf":[{"items":{"type":"string"},"type":"array"},{"type":"null"}]},` +
			`"opt":{"additionalProperties":{"type":"integer"},"type":"object"},` +
			`"took":{"type":"integer","description":"A duration in nanoseconds."},` +
			`"at":{"type":"string"},"x":{},` +
			`"in":{"properties":{"a":{"type":"string"}},"additionalProperties":false,"type":"object","required":["a"]}},` +
			`"additionalProperties":false,"type":"object","required":["tags","took","at","x","in"],"description":"Out is a result."}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tool := &model.Tool{Pos: pos(1), GoName: "F", Name: "f", Input: model.InputNone, Result: tc.result}
			raw, err := OutputSchema(pkg, tool)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want == "" {
				if raw != nil {
					t.Errorf("output schema = %s, want none", raw)
				}
				return
			}
			if got := compact(t, raw); got != tc.want {
				t.Errorf("output schema\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
}

func TestUnescapeHTML(t *testing.T) {
	in := []byte(`{"a":"x\u003cy\u003e\u0026z","b":"\\u003c stays","c":"\u2028"}`)
	want := `{"a":"x<y>&z","b":"\\u003c stays","c":"\u2028"}`
	if got := string(unescapeHTML(in)); got != want {
		t.Errorf("unescapeHTML = %s, want %s", got, want)
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(want), &v); err != nil || v["a"] != "x<y>&z" || v["b"] != `\u003c stays` {
		t.Errorf("unescaped JSON decodes to %q (%v)", v, err)
	}
}

func TestSchemaWords(t *testing.T) {
	for schema, want := range map[string]string{
		`{"type":"string"}`:                                                "string",
		`{"type":["integer","string","null"]}`:                             "integer or string",
		`{"anyOf":[{"type":"integer"},{"type":"string"},{"type":"null"}]}`: "integer or string",
		`{"oneOf":[{"type":"a"},{"type":"b"},{"type":"c"}]}`:               "a, b or c",
		`{"anyOf":[{"type":"integer"},{"$ref":"#/x"}]}`:                    "",
		`{}`:    "",
		`nope`:  "",
		``:      "",
		`[1,2]`: "",
	} {
		if got := schemaWords(schema); got != want {
			t.Errorf("schemaWords(%s) = %q, want %q", schema, got, want)
		}
	}
}

func TestDurationPatternMatchesParseDuration(t *testing.T) {
	re := mustCompile(t, durationPattern)
	for _, s := range []string{"0", "+0", "-0", "1h", "1h30m", "1.5h", ".5s", "1.s", "250ms", "3us", "3µs", "3μs", "-2m3.5s", "1ns"} {
		if !re.MatchString(s) {
			t.Errorf("pattern rejects %q, which time.ParseDuration accepts", s)
		}
		if _, err := parseDurationStd(s); err != nil {
			t.Errorf("test bug: time.ParseDuration(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "1", "h", ".", "1x", "1h 30m", "--1s", "1.5", "0s0", "1e3s"} {
		if re.MatchString(s) {
			t.Errorf("pattern accepts %q, which time.ParseDuration rejects", s)
		}
		if _, err := parseDurationStd(s); err == nil {
			t.Errorf("test bug: time.ParseDuration(%q) succeeds", s)
		}
	}
	if !strings.Contains(durationNote, `"1h30m"`) {
		t.Errorf("the duration note does not show the form: %s", durationNote)
	}
}
