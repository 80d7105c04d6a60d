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
	codes := &model.Named{ID: testPkgPath + ".Codes", PkgPath: testPkgPath, PkgName: "gentest", Name: "Codes", Pos: pos(3),
		Doc: "Codes are codes.", Underlying: sliceOf(typ(model.KindString))}
	pkg := pkgWith(unit, prio, loc, tree, money, blob, level, codes)

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
		{"int8", with(intType(8), nil), `{"type":"integer","minimum":-128,"maximum":127}`, ""},
		{"int32", with(intType(32), nil), `{"type":"integer","minimum":-2147483648,"maximum":2147483647}`, ""},
		{"uint", with(uintType(0), nil), `{"type":"integer","minimum":0}`, ""},
		{"uint16", with(uintType(16), nil), `{"type":"integer","minimum":0,"maximum":65535}`, ""},
		{"float32", with(&model.Type{Kind: model.KindFloat, Bits: 32}, nil), `{"type":"number"}`, ""},
		{"string", with(typ(model.KindString), nil), `{"type":"string"}`, ""},
		{"bytes", with(typ(model.KindBytes), nil), `{"type":"string","contentEncoding":"base64"}`, ""},
		{"time", with(typ(model.KindTime), nil), `{"type":"string","format":"date-time"}`, ""},
		{"duration", doc(with(typ(model.KindDuration), nil), "How long."),
			`{"description":"How long.\nA Go duration string such as \"1h30m\", \"90s\" or \"250ms\" (units: h, m, s, ms, us, ns).","type":"string","pattern":"^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"}`, ""},
		{"any", with(typ(model.KindAny), nil), `{}`, ""},
		{"raw", doc(with(typ(model.KindRaw), nil), "Passed through."), `{"description":"Passed through."}`, ""},
		{"slice", with(sliceOf(typ(model.KindString)), nil), `{"type":"array","items":{"type":"string"}}`, ""},
		{"array", with(&model.Type{Kind: model.KindArray, Len: 3, Elem: intType(0)}, nil), `{"type":"array","minItems":3,"maxItems":3,"items":{"type":"integer"}}`, ""},
		{"map", with(mapOf(typ(model.KindBool)), nil), `{"type":"object","additionalProperties":{"type":"boolean"}}`, ""},
		{"map of any", with(mapOf(typ(model.KindAny)), nil), `{"type":"object","additionalProperties":{}}`, ""},
		{"map with enum keys", with(&model.Type{Kind: model.KindMap, Key: named("Unit"), Elem: intType(0)}, nil),
			`{"type":"object","additionalProperties":{"type":"integer"},"propertyNames":{"enum":["celsius","fahrenheit"]}}`, ""},
		{"pointer", doc(with(ptrTo(intType(0)), func(c *model.Constraints) { c.Minimum = "1"; c.Default = "5" }), "Count."),
			`{"description":"Count.","anyOf":[{"type":"integer","minimum":1},{"type":"null"}],"default":5}`, ""},
		{"anonymous struct", with(&model.Type{Kind: model.KindStruct, Fields: []*model.Field{field("A", "a", typ(model.KindString), true, "")}}, nil),
			`{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`, ""},
		{"named struct takes the type doc", with(named("Loc"), nil),
			`{"description":"Loc is a place.","type":"object","properties":{"city":{"description":"The city.","type":"string"}},"required":["city"],"additionalProperties":false}`, ""},
		{"field doc replaces the type doc", doc(with(named("Loc"), nil), "Where."),
			`{"description":"Where.","type":"object","properties":{"city":{"description":"The city.","type":"string"}},"required":["city"],"additionalProperties":false}`, ""},
		{"string enum from consts", doc(with(named("Unit"), nil), "Scale."),
			`{"description":"Scale.\n- celsius: Degrees Celsius.","type":"string","enum":["celsius","fahrenheit"]}`, ""},
		{"int enum from consts", with(named("Prio"), nil),
			`{"description":"Prio is an enum.\n- 1: can wait","type":"integer","enum":[1,2]}`, ""},
		{"enum tag replaces consts", with(named("Unit"), func(c *model.Constraints) { c.Enum = []string{`"celsius"`} }),
			`{"description":"Unit is an enum.\n- celsius: Degrees Celsius.","type":"string","enum":["celsius"]}`, ""},
		{"recursive", doc(with(named("Tree"), nil), "A tree."), `{"$ref":"#/$defs/Tree","description":"A tree."}`,
			`{"Tree":{"description":"Tree is recursive.","type":"object","properties":{"kids":{"type":"array","items":{"$ref":"#/$defs/Tree"}}},"additionalProperties":false}}`},
		{"json unmarshaler with schema", with(named("Money"), nil), `{"type":"string","x-unit":"cents"}`, ""},
		{"json unmarshaler without schema", with(named("Blob"), nil), `{}`, ""},
		{"text unmarshaler", with(named("Level"), nil), `{"type":"string"}`, ""},
		{"string constraints", with(typ(model.KindString), func(c *model.Constraints) {
			c.MinLength, c.MaxLength, c.Pattern, c.Format = intp(1), intp(9), `^a<b&c$`, "email"
		}), `{"type":"string","format":"email","pattern":"^a<b&c$","minLength":1,"maxLength":9}`, ""},
		{"number constraints", with(&model.Type{Kind: model.KindFloat, Bits: 64}, func(c *model.Constraints) {
			c.ExclusiveMinimum, c.ExclusiveMaximum, c.MultipleOf = "0", "1.5", "0.25"
		}), `{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1.5,"multipleOf":0.25}`, ""},
		{"a declared bound tighter than the type's wins", with(intType(8), func(c *model.Constraints) { c.Minimum, c.Maximum = "-5", "500" }),
			`{"type":"integer","minimum":-5,"maximum":127}`, ""},
		{"annotations", with(typ(model.KindString), func(c *model.Constraints) {
			c.Title, c.Description, c.Default, c.Examples = "T", "From the tag.", `"x"`, []string{`"y"`, `"z"`}
			c.Deprecated, c.ReadOnly, c.WriteOnly = true, true, true
		}), `{"title":"T","description":"From the tag.","type":"string","default":"x","examples":["y","z"],"deprecated":true,"readOnly":true,"writeOnly":true}`, ""},
		{"nullable", doc(with(typ(model.KindString), func(c *model.Constraints) { c.Nullable, c.MinLength = true, intp(2) }), "Note."),
			`{"description":"Note.","anyOf":[{"type":"string","minLength":2},{"type":"null"}]}`, ""},
		{"nullable any stays any", with(typ(model.KindAny), func(c *model.Constraints) { c.Nullable = true }), `{}`, ""},
		{"array keywords and item keywords", with(sliceOf(typ(model.KindString)), func(c *model.Constraints) {
			c.MinItems, c.MaxItems, c.UniqueItems = intp(1), intp(4), true
			c.Items = &model.Constraints{Pattern: "^[a-z]+$", Enum: []string{`"a"`, `"b"`}, MinLength: intp(1), Examples: []string{`"a"`}}
		}), `{"type":"array","minItems":1,"maxItems":4,"uniqueItems":true,"items":{"type":"string","enum":["a","b"],"pattern":"^[a-z]+$","minLength":1,"examples":["a"]}}`, ""},
		{"item keywords on pointer items", with(sliceOf(ptrTo(typ(model.KindString))), func(c *model.Constraints) {
			c.Items = &model.Constraints{Pattern: "^[a-z]+$", Enum: []string{`"a"`, `"b"`}, Examples: []string{`"a"`}}
		}), `{"type":"array","items":{"anyOf":[{"type":"string","enum":["a","b"],"pattern":"^[a-z]+$"},{"type":"null"}],"examples":["a"]}}`, ""},
		{"item keywords on an array of numbers", with(&model.Type{Kind: model.KindArray, Len: 3, Elem: intType(8)}, func(c *model.Constraints) {
			c.Items = &model.Constraints{Minimum: "0", ExclusiveMaximum: "100", MultipleOf: "5", Enum: []string{"5", "10"}}
		}), `{"type":"array","minItems":3,"maxItems":3,"items":{"type":"integer","enum":[5,10],"minimum":0,"maximum":127,"exclusiveMaximum":100,"multipleOf":5}}`, ""},
		{"item enum on named items", with(sliceOf(named("Unit")), func(c *model.Constraints) { c.Items = &model.Constraints{Enum: []string{`"celsius"`}} }),
			`{"type":"array","items":{"description":"Unit is an enum.\n- celsius: Degrees Celsius.","type":"string","enum":["celsius"]}}`, ""},
		{"item keywords on a named slice", with(named("Codes"), func(c *model.Constraints) { c.Items = &model.Constraints{Format: "email"} }),
			`{"description":"Codes are codes.","type":"array","items":{"type":"string","format":"email"}}`, ""},
		{"item keywords through a pointer to a slice", with(ptrTo(sliceOf(typ(model.KindString))), func(c *model.Constraints) { c.Items = &model.Constraints{MaxLength: intp(3)} }),
			`{"anyOf":[{"type":"array","items":{"type":"string","maxLength":3}},{"type":"null"}]}`, ""},
		{"item annotations", with(sliceOf(typ(model.KindString)), func(c *model.Constraints) {
			c.Items = &model.Constraints{Title: "Tag", Description: "One tag.", Deprecated: true}
		}), `{"type":"array","items":{"title":"Tag","description":"One tag.","type":"string","deprecated":true}}`, ""},
		{"array default", with(sliceOf(typ(model.KindString)), func(c *model.Constraints) { c.Default = `["a","b"]` }),
			`{"type":"array","items":{"type":"string"},"default":["a","b"]}`, ""},
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
		{"ping", `{"type":"object","properties":{},"additionalProperties":false}`},
		{"greet", `{"type":"object","properties":{"name":{"description":"who to greet","type":"string","minLength":1},` +
			`"times":{"description":"how many times","type":"integer","minimum":1,"maximum":3,"default":1}},` +
			`"required":["name"],"additionalProperties":false}`},
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
	want := `{"type":"object","properties":{"label":{"type":"string"},"children":{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]}}},` +
		`"required":["label"],"additionalProperties":false,` +
		`"$defs":{"Node":{"description":"Node is a tree node.","type":"object","properties":{"label":{"type":"string"},"children":{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]}}},` +
		`"required":["label"],"additionalProperties":false}}}`
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
	want = `{"description":"Node is a tree node.","type":"object",` +
		`"properties":{"label":{"type":"string"},"children":{"anyOf":[{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]}},{"type":"null"}]}},` +
		`"required":["label","children"],"additionalProperties":false,` +
		`"$defs":{"Node":{"description":"Node is a tree node.","type":"object",` +
		`"properties":{"label":{"type":"string"},"children":{"anyOf":[{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]}},{"type":"null"}]}},` +
		`"required":["label","children"],"additionalProperties":false}}}`
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
		{"root slice is not nullable", sliceOf(typ(model.KindString)), `{"type":"array","items":{"type":"string"}}`},
		{"struct", ptrTo(named("Out")), `{"description":"Out is a result.","type":"object","properties":{` +
			`"tags":{"anyOf":[{"type":"array","items":{"type":"string"}},{"type":"null"}]},` +
			`"opt":{"type":"object","additionalProperties":{"type":"integer"}},` +
			`"took":{"description":"A duration in nanoseconds.","type":"integer"},` +
			`"at":{"type":"string"},"x":{},` +
			`"in":{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}},` +
			`"required":["tags","took","at","x","in"],"additionalProperties":false}`},
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
