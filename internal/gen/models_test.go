package gen

import (
	"time"

	"github.com/atpgo/atp/internal/model"
)

// Hand-built models, as internal/parse would produce them for the sources
// in testdata/ (see run_test.go, which compiles them together).

const testPkgPath = "example.com/gentest"

func pos(line int) model.Pos { return model.Pos{File: "tools.go", Line: line, Col: 1} }

func intp(n int) *int { return &n }

func typ(k model.Kind) *model.Type { return &model.Type{Kind: k} }

func named(id string) *model.Type {
	return &model.Type{Kind: model.KindNamed, Ref: testPkgPath + "." + id}
}

func sliceOf(e *model.Type) *model.Type { return &model.Type{Kind: model.KindSlice, Elem: e} }

func ptrTo(e *model.Type) *model.Type { return &model.Type{Kind: model.KindPointer, Elem: e} }

func mapOf(e *model.Type) *model.Type {
	return &model.Type{Kind: model.KindMap, Key: typ(model.KindString), Elem: e}
}

func intType(bits int) *model.Type { return &model.Type{Kind: model.KindInt, Bits: bits} }

func uintType(bits int) *model.Type { return &model.Type{Kind: model.KindUint, Bits: bits} }

func field(goName, jsonName string, t *model.Type, required bool, doc string) *model.Field {
	return &model.Field{Pos: pos(10), GoPath: []string{goName}, JSONName: jsonName, Type: t, Required: required, Doc: doc}
}

func namedStruct(name, doc string, fields ...*model.Field) *model.Named {
	return &model.Named{
		ID: testPkgPath + "." + name, PkgPath: testPkgPath, PkgName: "gentest", Name: name, Pos: pos(5), Doc: doc,
		Underlying: &model.Type{Kind: model.KindStruct, Fields: fields},
	}
}

// weatherModel is the model of testdata/weather.go's GetForecast and of
// the plain-parameter tools Greet and Ping.
func weatherModel() *model.Package {
	units := &model.Named{
		ID: testPkgPath + ".Units", PkgPath: testPkgPath, PkgName: "gentest", Name: "Units", Pos: pos(3),
		Doc:        "Units is a temperature scale.",
		Underlying: typ(model.KindString),
		Enum: []model.EnumValue{
			{GoName: "Celsius", Value: `"celsius"`, Doc: "Degrees Celsius."},
			{GoName: "Fahrenheit", Value: `"fahrenheit"`, Doc: "Degrees Fahrenheit."},
		},
	}
	location := namedStruct("Location", "Location is where the forecast is for.",
		field("City", "city", typ(model.KindString), true, `City name, e.g. "Paris".`),
		field("Country", "country", typ(model.KindString), false, "ISO 3166-1 alpha-2 country code."),
	)
	location.Underlying.Fields[1].Constraints.Pattern = `^[A-Z]{2}$`
	days := field("Days", "days", intType(0), true, "How many days ahead.")
	days.Constraints.Minimum, days.Constraints.Maximum = "1", "14"
	unitsField := field("Units", "units", named("Units"), false, "Temperature scale of the answer.")
	unitsField.Constraints.Default = `"celsius"`
	tags := field("Tags", "tags", sliceOf(typ(model.KindString)), false, "Labels echoed back.")
	tags.Constraints.MaxItems = intp(3)
	tags.Constraints.Items = &model.Constraints{MinLength: intp(1)}
	weatherIn := namedStruct("WeatherIn", "WeatherIn is the forecast request.",
		field("Location", "location", named("Location"), true, "Where to forecast."),
		days,
		unitsField,
		tags,
		field("Since", "since", ptrTo(typ(model.KindTime)), false, "Only observations after this time."),
	)
	forecast := namedStruct("Forecast", "Forecast is the answer.",
		field("Summary", "summary", typ(model.KindString), true, ""),
	)

	name := field("name", "name", typ(model.KindString), true, "who to greet")
	name.Constraints.MinLength = intp(1)
	times := field("times", "times", intType(0), false, "how many times")
	times.Constraints.Minimum, times.Constraints.Maximum, times.Constraints.Default = "1", "3", "1"

	return &model.Package{
		Path: testPkgPath, Name: "gentest", Dir: "/tmp/gentest",
		Tools: []*model.Tool{
			{
				Pos: pos(40), GoName: "GetForecast", Name: "get_forecast",
				Description: "GetForecast returns a (fake) forecast.",
				ReadOnly:    true, Idempotent: true,
				Args: []model.Arg{
					{Kind: model.ArgContext, GoName: "ctx"},
					{Kind: model.ArgInput, GoName: "in"},
				},
				Input:     model.InputStruct,
				Fields:    weatherIn.Underlying.Fields,
				InputType: named("WeatherIn"),
				Result:    named("Forecast"), ReturnsError: true,
			},
			{
				Pos: pos(50), GoName: "Greet", Name: "greet",
				Description: "Greet greets someone.",
				Timeout:     30 * time.Second,
				Args: []model.Arg{
					{Kind: model.ArgContext, GoName: "ctx"},
					{Kind: model.ArgParam, GoName: "name", Field: 0},
					{Kind: model.ArgParam, GoName: "times", Field: 1},
				},
				Input:  model.InputPlain,
				Fields: []*model.Field{name, times},
				Result: typ(model.KindString), ReturnsError: true,
			},
			{
				Pos: pos(60), GoName: "Ping", Name: "ping", Description: "Ping checks that the toolkit is alive.",
				Input: model.InputNone,
			},
		},
		Named: map[string]*model.Named{
			units.ID: units, location.ID: location, weatherIn.ID: weatherIn, forecast.ID: forecast,
		},
	}
}

// runModel is the model of testdata/run/tools.go: weatherModel plus the
// methods of Store, whose Kitchen takes a field of every kind.
func runModel() *model.Package {
	pkg := weatherModel()
	add := func(n *model.Named) { pkg.Named[n.ID] = n }

	priority := &model.Named{
		ID: testPkgPath + ".Priority", PkgPath: testPkgPath, PkgName: "gentest", Name: "Priority", Pos: pos(70),
		Doc: "Priority orders work.", Underlying: intType(0),
		Enum: []model.EnumValue{{GoName: "Low", Value: "1", Doc: "can wait"}, {GoName: "High", Value: "2", Doc: "do it now"}},
	}
	node := namedStruct("Node", "Node is a tree node.",
		field("Label", "label", typ(model.KindString), true, ""),
		field("Children", "children", sliceOf(ptrTo(named("Node"))), false, ""),
	)
	node.Recursive = true
	base := namedStruct("Base", "Base is embedded by value.", field("ID", "id", typ(model.KindString), true, ""))
	paging := namedStruct("Paging", "Paging is embedded by pointer.", field("Page", "page", intType(0), false, ""))
	level := &model.Named{
		ID: testPkgPath + ".Level", PkgPath: testPkgPath, PkgName: "gentest", Name: "Level", Pos: pos(80),
		Doc: "Level decodes itself from text.", Underlying: intType(0), TextUnmarshaler: true,
	}
	money := &model.Named{
		ID: testPkgPath + ".Money", PkgPath: testPkgPath, PkgName: "gentest", Name: "Money", Pos: pos(90),
		Doc: "Money decodes itself from JSON: a number of cents or a \"12.50\" string.", Underlying: intType(64),
		JSONUnmarshaler: true,
		SchemaJSON:      `{"anyOf":[{"type":"integer"},{"type":"string","pattern":"^[0-9]+(\\.[0-9]{1,2})?$"}]}`,
	}
	point := &model.Named{
		ID: "example.com/gentest/sub.Point", PkgPath: "example.com/gentest/sub", PkgName: "sub", Name: "Point", Pos: pos(1),
		Doc: "Point is a point on a grid.",
		Underlying: &model.Type{Kind: model.KindStruct, Fields: []*model.Field{
			field("X", "x", intType(0), true, ""), field("Y", "y", intType(0), true, ""),
		}},
	}

	id := field("ID", "id", typ(model.KindString), true, "")
	id.GoPath, id.EmbedPtr = []string{"Base", "ID"}, []bool{false}
	page := field("Page", "page", intType(0), false, "")
	page.GoPath, page.EmbedPtr = []string{"Paging", "Page"}, []bool{true}
	page.Constraints.Minimum = "1"
	items := field("Items", "items", sliceOf(&model.Type{Kind: model.KindStruct, Fields: []*model.Field{
		field("Name", "name", typ(model.KindString), true, ""),
		field("Qty", "qty", uintType(8), true, ""),
	}}), false, "")
	wait := field("Wait", "wait", typ(model.KindDuration), false, "")
	wait.Constraints.Default = `"1m"`
	limit := field("Limit", "limit", ptrTo(intType(0)), false, "")
	limit.Constraints.Default = "20"
	note := field("Note", "note", typ(model.KindString), false, "")
	note.Constraints.Nullable = true
	codes := field("Codes", "codes", sliceOf(typ(model.KindString)), false, "")
	codes.Constraints.UniqueItems, codes.Constraints.Items = true, &model.Constraints{Pattern: "^[a-z]+$"}
	ratio := field("Ratio", "ratio", &model.Type{Kind: model.KindFloat, Bits: 64}, false, "")
	ratio.Constraints.ExclusiveMinimum, ratio.Constraints.Maximum, ratio.Constraints.MultipleOf = "0", "1", "0.25"

	kitchenIn := namedStruct("KitchenIn", "KitchenIn has one field of every kind.",
		id, page,
		field("Priority", "priority", named("Priority"), false, ""),
		field("Tree", "tree", named("Node"), true, ""),
		items,
		field("Labels", "labels", &model.Type{Kind: model.KindMap, Key: named("Units"), Elem: intType(0)}, false, ""),
		field("Point", "point", &model.Type{Kind: model.KindArray, Len: 2, Elem: &model.Type{Kind: model.KindFloat, Bits: 32}}, false, ""),
		field("Blob", "blob", typ(model.KindBytes), false, ""),
		wait,
		field("Extra", "extra", typ(model.KindAny), false, ""),
		field("Raw", "raw", typ(model.KindRaw), false, ""),
		field("Level", "level", named("Level"), false, ""),
		field("Price", "price", named("Money"), false, ""),
		limit, note,
		field("Where", "where", &model.Type{Kind: model.KindNamed, Ref: point.ID}, false, ""),
		codes, ratio,
		field("Meta", "meta", mapOf(sliceOf(intType(16))), false, ""),
	)
	for _, n := range []*model.Named{priority, node, base, paging, level, money, point, kitchenIn} {
		add(n)
	}

	noteParam := field("note", "note", typ(model.KindString), true, "")
	countParam := field("count", "count", uintType(16), true, "")
	pkg.Receivers = []*model.Receiver{{
		TypeName: "Store", Pos: pos(65),
		Tools: []*model.Tool{
			{
				Pos: pos(100), GoName: "Kitchen", Receiver: "Store", PtrReceiver: true, Name: "kitchen",
				Description:  "Kitchen echoes what it got, in a stable form.",
				AuthProvider: "hubspot", NeedsAuthToken: true, Destructive: true,
				Args: []model.Arg{
					{Kind: model.ArgContext}, {Kind: model.ArgCall}, {Kind: model.ArgAuthToken}, {Kind: model.ArgInput},
				},
				Input: model.InputStructPtr, Fields: kitchenIn.Underlying.Fields, InputType: ptrTo(named("KitchenIn")),
				Result: mapOf(typ(model.KindAny)), ReturnsError: true,
			},
			{
				Pos: pos(110), GoName: "Echo", Receiver: "Store", Name: "echo",
				Description: "Echo repeats a note; a value receiver.",
				Args:        []model.Arg{{Kind: model.ArgParam, GoName: "note", Field: 0}, {Kind: model.ArgParam, GoName: "count", Field: 1}},
				Input:       model.InputPlain, Fields: []*model.Field{noteParam, countParam},
				Result: typ(model.KindString),
			},
			{
				Pos: pos(120), GoName: "Fail", Receiver: "Store", PtrReceiver: true, Name: "fail",
				Description: "Fail always fails.",
				Args:        []model.Arg{{Kind: model.ArgContext}},
				Input:       model.InputNone, ReturnsError: true,
			},
		},
	}}
	addLimits(pkg)
	return pkg
}

// addLimits adds testdata/run/tools.go's Limits to a model.
func addLimits(pkg *model.Package) {
	code := &model.Named{ID: testPkgPath + ".Code", PkgPath: testPkgPath, PkgName: "gentest", Name: "Code", Pos: pos(130),
		Doc: "Code is a named string without constants.", Underlying: typ(model.KindString)}
	tags := &model.Named{ID: testPkgPath + ".Tags", PkgPath: testPkgPath, PkgName: "gentest", Name: "Tags", Pos: pos(131),
		Doc: "Tags is a named slice.", Underlying: sliceOf(typ(model.KindString))}
	f := func(goName, jsonName string, t *model.Type, set func(c *model.Constraints)) *model.Field {
		fl := field(goName, jsonName, t, false, "")
		if set != nil {
			set(&fl.Constraints)
		}
		return fl
	}
	limitsIn := namedStruct("LimitsIn", "LimitsIn exercises the integer, float and named-type checks.",
		f("Tiny", "tiny", intType(8), func(c *model.Constraints) { c.ExclusiveMaximum = "100" }),
		f("Count", "count", uintType(0), nil),
		f("Big", "big", intType(0), func(c *model.Constraints) { c.Maximum = "1099511627776" }),
		f("Half", "half", intType(0), func(c *model.Constraints) { c.Minimum = "1.5" }),
		f("Step", "step", intType(0), func(c *model.Constraints) { c.MultipleOf = "5" }),
		f("Scale", "scale", &model.Type{Kind: model.KindFloat, Bits: 32}, func(c *model.Constraints) { c.Enum = []string{"0.5", "1"} }),
		f("Mode", "mode", uintType(8), func(c *model.Constraints) { c.Enum = []string{"1", "3"} }),
		f("Code", "code", named("Code"), func(c *model.Constraints) { c.Pattern, c.MinLength = "^[A-Z]+$", intp(2) }),
		f("On", "on", typ(model.KindBool), func(c *model.Constraints) { c.Default = "true" }),
		f("Factor", "factor", &model.Type{Kind: model.KindFloat, Bits: 64}, func(c *model.Constraints) { c.Default = "2.5" }),
		f("Grid", "grid", &model.Type{Kind: model.KindArray, Len: 2, Elem: &model.Type{Kind: model.KindArray, Len: 2, Elem: intType(0)}}, nil),
		f("Tags", "tags", named("Tags"), func(c *model.Constraints) { c.MinItems = intp(1) }),
		f("Words", "words", named("Tags"), nil),
		f("When", "when", typ(model.KindString), func(c *model.Constraints) { c.Format = "date" }),
		f("Picks", "picks", sliceOf(typ(model.KindString)), func(c *model.Constraints) {
			c.MaxItems, c.Items = intp(3), &model.Constraints{Pattern: "^[a-z]+$", MaxLength: intp(3)}
		}),
		f("Scores", "scores", sliceOf(intType(0)), func(c *model.Constraints) {
			c.Default, c.Items = "[2,3]", &model.Constraints{Minimum: "1", Maximum: "5"}
		}),
		f("Refs", "refs", sliceOf(ptrTo(typ(model.KindString))), func(c *model.Constraints) { c.Items = &model.Constraints{MinLength: intp(2)} }),
		f("Units", "units", sliceOf(named("Units")), func(c *model.Constraints) { c.Items = &model.Constraints{Enum: []string{`"celsius"`}} }),
		f("Pair", "pair", &model.Type{Kind: model.KindArray, Len: 2, Elem: &model.Type{Kind: model.KindFloat, Bits: 64}}, func(c *model.Constraints) {
			c.Items = &model.Constraints{ExclusiveMinimum: "0"}
		}),
		f("Labels", "labels", named("Tags"), func(c *model.Constraints) { c.Items = &model.Constraints{Pattern: "^#"} }),
		f("Waits", "waits", sliceOf(typ(model.KindDuration)), func(c *model.Constraints) { c.Default = `["1m","90s"]` }),
		f("Codes", "codes", sliceOf(named("Code")), func(c *model.Constraints) {
			c.Default, c.Items = `["AA"]`, &model.Constraints{Enum: []string{`"AA"`, `"BB"`}}
		}),
		f("Box", "box", &model.Type{Kind: model.KindArray, Len: 2, Elem: intType(8)}, func(c *model.Constraints) {
			c.Default, c.Items = "[1,2]", &model.Constraints{Minimum: "0"}
		}),
	)
	for _, n := range []*model.Named{code, tags, limitsIn} {
		pkg.Named[n.ID] = n
	}
	pkg.Tools = append(pkg.Tools, &model.Tool{
		Pos: pos(140), GoName: "Limits", Name: "limits", Description: "Limits returns its input.",
		Args:  []model.Arg{{Kind: model.ArgInput}},
		Input: model.InputStruct, Fields: limitsIn.Underlying.Fields, InputType: named("LimitsIn"),
		Result: named("LimitsIn"),
	})
}
