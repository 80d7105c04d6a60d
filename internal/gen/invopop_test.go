package gen

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/invopop/jsonschema"

	"github.com/atpgo/atp/internal/model"
)

// The Go types of the comparison with invopop/jsonschema's reflection, and
// (in ivModel) the model internal/parse gives for them.

type ivAddress struct {
	// Street and number.
	Street string `json:"street,omitempty"`
	City   string `json:"city" jsonschema:"minLength=1"`
}

type ivTier string

type ivMails []string

type ivInput struct {
	Name    string            `json:"name" jsonschema:"minLength=1,maxLength=50,title=Name"`
	Email   string            `json:"email,omitempty" jsonschema:"format=email"`
	Count   int               `json:"count,omitempty" jsonschema:"minimum=0,maximum=10,default=3"`
	Ratio   float64           `json:"ratio,omitempty" jsonschema:"exclusiveMaximum=1,multipleOf=0.5"`
	Small   int8              `json:"small,omitempty"`
	Port    uint16            `json:"port,omitempty"`
	Tier    ivTier            `json:"tier,omitempty" jsonschema:"enum=free,enum=pro,default=free"`
	Tags    []string          `json:"tags,omitempty" jsonschema:"maxItems=3,uniqueItems=true,pattern=^[a-z]+$,minLength=2,enum=ab,enum=cd,example=ab,default=ab,default=cd"`
	Scores  []int             `json:"scores,omitempty" jsonschema:"minItems=1,minimum=1,maximum=5,enum=1,enum=3,enum=5"`
	Refs    []*string         `json:"refs,omitempty" jsonschema:"maxLength=3"`
	Pair    [2]float64        `json:"pair,omitempty" jsonschema:"exclusiveMinimum=0,multipleOf=0.5"`
	Tiers   []ivTier          `json:"tiers,omitempty" jsonschema:"enum=free"`
	Mails   ivMails           `json:"mails,omitempty" jsonschema:"format=email"`
	Grid    [2]int            `json:"grid"`
	Labels  map[string]string `json:"labels,omitempty"`
	Address ivAddress         `json:"address"`
	Offices []ivAddress       `json:"offices,omitempty"`
	Founded *time.Time        `json:"founded,omitempty"`
	Blob    []byte            `json:"blob,omitempty"`
	Extra   any               `json:"extra,omitempty"`
	Raw     json.RawMessage   `json:"raw,omitempty"`
	Note    string            `json:"note,omitempty" jsonschema:"nullable"`
	Flag    bool              `json:"flag"`
	Skipped string            `json:"-"`
	hidden  string
}

var _ = ivInput{}.hidden

func ivModel() (*model.Package, *model.Tool) {
	address := namedStruct("ivAddress", "",
		field("Street", "street", typ(model.KindString), false, "Street and number."),
		field("City", "city", typ(model.KindString), true, ""),
	)
	address.Underlying.Fields[1].Constraints.MinLength = intp(1)
	tier := &model.Named{ID: testPkgPath + ".ivTier", PkgPath: testPkgPath, PkgName: "gentest", Name: "ivTier", Underlying: typ(model.KindString)}
	mails := &model.Named{ID: testPkgPath + ".ivMails", PkgPath: testPkgPath, PkgName: "gentest", Name: "ivMails", Underlying: sliceOf(typ(model.KindString))}

	f := func(goName, jsonName string, t *model.Type, required bool, set func(c *model.Constraints)) *model.Field {
		fl := field(goName, jsonName, t, required, "")
		if set != nil {
			set(&fl.Constraints)
		}
		return fl
	}
	fields := []*model.Field{
		f("Name", "name", typ(model.KindString), true, func(c *model.Constraints) { c.MinLength, c.MaxLength, c.Title = intp(1), intp(50), "Name" }),
		f("Email", "email", typ(model.KindString), false, func(c *model.Constraints) { c.Format = "email" }),
		f("Count", "count", intType(0), false, func(c *model.Constraints) { c.Minimum, c.Maximum, c.Default = "0", "10", "3" }),
		f("Ratio", "ratio", &model.Type{Kind: model.KindFloat, Bits: 64}, false, func(c *model.Constraints) { c.ExclusiveMaximum, c.MultipleOf = "1", "0.5" }),
		f("Small", "small", intType(8), false, nil),
		f("Port", "port", uintType(16), false, nil),
		f("Tier", "tier", named("ivTier"), false, func(c *model.Constraints) { c.Enum, c.Default = []string{`"free"`, `"pro"`}, `"free"` }),
		// As internal/parse reads the tags: the string and number keywords
		// of an array, and its enum and examples, constrain its items;
		// repeated defaults make an array default.
		f("Tags", "tags", sliceOf(typ(model.KindString)), false, func(c *model.Constraints) {
			c.MaxItems, c.UniqueItems, c.Default = intp(3), true, `["ab","cd"]`
			c.Items = &model.Constraints{MinLength: intp(2), Pattern: "^[a-z]+$", Enum: []string{`"ab"`, `"cd"`}, Examples: []string{`"ab"`}}
		}),
		f("Scores", "scores", sliceOf(intType(0)), false, func(c *model.Constraints) {
			c.MinItems, c.Items = intp(1), &model.Constraints{Minimum: "1", Maximum: "5", Enum: []string{"1", "3", "5"}}
		}),
		f("Refs", "refs", sliceOf(ptrTo(typ(model.KindString))), false, func(c *model.Constraints) { c.Items = &model.Constraints{MaxLength: intp(3)} }),
		f("Pair", "pair", &model.Type{Kind: model.KindArray, Len: 2, Elem: &model.Type{Kind: model.KindFloat, Bits: 64}}, false, func(c *model.Constraints) {
			c.Items = &model.Constraints{ExclusiveMinimum: "0", MultipleOf: "0.5"}
		}),
		f("Tiers", "tiers", sliceOf(named("ivTier")), false, func(c *model.Constraints) { c.Items = &model.Constraints{Enum: []string{`"free"`}} }),
		f("Mails", "mails", named("ivMails"), false, func(c *model.Constraints) { c.Items = &model.Constraints{Format: "email"} }),
		f("Grid", "grid", &model.Type{Kind: model.KindArray, Len: 2, Elem: intType(0)}, true, nil),
		f("Labels", "labels", mapOf(typ(model.KindString)), false, nil),
		f("Address", "address", named("ivAddress"), true, nil),
		f("Offices", "offices", sliceOf(named("ivAddress")), false, nil),
		f("Founded", "founded", ptrTo(typ(model.KindTime)), false, nil),
		f("Blob", "blob", typ(model.KindBytes), false, nil),
		f("Extra", "extra", typ(model.KindAny), false, nil),
		f("Raw", "raw", typ(model.KindRaw), false, nil),
		f("Note", "note", typ(model.KindString), false, func(c *model.Constraints) { c.Nullable = true }),
		f("Flag", "flag", typ(model.KindBool), true, nil),
	}
	input := namedStruct("ivInput", "", fields...)
	pkg := pkgWith(address, tier, mails, input)
	tool := &model.Tool{Pos: pos(1), GoName: "F", Name: "f", Input: model.InputStruct,
		Args: []model.Arg{{Kind: model.ArgInput}}, InputType: named("ivInput"), Fields: fields}
	pkg.Tools = []*model.Tool{tool}
	return pkg, tool
}

// TestSchemaMatchesInvopopReflection compares the generated schema of a
// struct input with what invopop/jsonschema reflects for the same type,
// after removing the differences gen/doc.go documents.
func TestSchemaMatchesInvopopReflection(t *testing.T) {
	pkg, tool := ivModel()
	ours, err := InputSchema(pkg, tool)
	if err != nil {
		t.Fatal(err)
	}
	r := &jsonschema.Reflector{DoNotReference: true, ExpandedStruct: true, AllowAdditionalProperties: false, RequiredFromJSONSchemaTags: false}
	theirs, err := json.Marshal(r.Reflect(&ivInput{}))
	if err != nil {
		t.Fatal(err)
	}
	var a, b any
	if err := json.Unmarshal(ours, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(theirs, &b); err != nil {
		t.Fatal(err)
	}
	a, b = normalizeOurs(a), normalizeTheirs(b)
	if !reflect.DeepEqual(a, b) {
		ja, _ := json.MarshalIndent(a, "", "  ")
		jb, _ := json.MarshalIndent(b, "", "  ")
		t.Errorf("schemas differ beyond the documented differences:\nours (normalised):\n%s\ninvopop (normalised):\n%s\n%s", ja, jb, lineDiff(string(jb), string(ja)))
	}
	// The normalisation must not hide everything: both keep the properties
	// and the constraints on items.
	m, ok := a.(map[string]any)
	if !ok || len(m["properties"].(map[string]any)) != 23 {
		t.Fatalf("normalised schema lost its properties: %v", a)
	}
	tags := m["properties"].(map[string]any)["tags"].(map[string]any)
	items, _ := tags["items"].(map[string]any)
	if items["pattern"] != "^[a-z]+$" || items["minLength"] != 2.0 || !reflect.DeepEqual(items["enum"], []any{"ab", "cd"}) ||
		!reflect.DeepEqual(items["examples"], []any{"ab"}) || !reflect.DeepEqual(tags["default"], []any{"ab", "cd"}) {
		t.Errorf("tags lost the constraints on its items: %v", tags)
	}
}

// normalizeOurs removes what gen adds on purpose: descriptions, the
// sized-integer bounds, the null branch of nullable and pointer values.
// {} (any value) becomes true, invopop's spelling of the same schema.
func normalizeOurs(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if len(v) == 0 {
			return true
		}
		if anyOf, ok := v["anyOf"].([]any); ok && len(anyOf) == 2 && isNullSchema(anyOf[1]) {
			inner := anyOf[0].(map[string]any)
			for k, x := range v {
				if k != "anyOf" {
					inner[k] = x
				}
			}
			return normalizeOurs(inner)
		}
		delete(v, "description")
		if v["type"] == "integer" {
			lo, hi := v["minimum"], v["maximum"]
			for _, r := range [][2]float64{{-128, 127}, {-32768, 32767}, {-2147483648, 2147483647}, {0, 255}, {0, 65535}, {0, 4294967295}} {
				if lo == r[0] && hi == r[1] {
					delete(v, "minimum")
					delete(v, "maximum")
				}
			}
		}
		for k, x := range v {
			v[k] = normalizeOurs(x)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = normalizeOurs(x)
		}
	}
	return v
}

// normalizeTheirs removes what invopop adds that gen leaves out on purpose:
// $schema, $id, descriptions, and the oneOf-with-null of nullable.
func normalizeTheirs(v any) any {
	switch v := v.(type) {
	case map[string]any:
		if oneOf, ok := v["oneOf"].([]any); ok && len(oneOf) == 2 && isNullSchema(oneOf[1]) {
			return normalizeTheirs(oneOf[0])
		}
		delete(v, "$schema")
		delete(v, "$id")
		delete(v, "description")
		for k, x := range v {
			v[k] = normalizeTheirs(x)
		}
		return v
	case []any:
		for i, x := range v {
			v[i] = normalizeTheirs(x)
		}
	}
	return v
}

func isNullSchema(v any) bool {
	m, ok := v.(map[string]any)
	return ok && len(m) == 1 && m["type"] == "null"
}
