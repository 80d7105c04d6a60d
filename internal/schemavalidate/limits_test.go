package schemavalidate

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// enumSchema has one string property with an enum of n values.
func enumSchema(n int) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf(`"v%d"`, i)
	}
	return `{"type":"object","properties":{"x":{"type":"string","enum":[` + strings.Join(vals, ",") + `]}}}`
}

// nestedSchema nests n object properties ("a" in "a" in ...): 2n+1 levels
// of JSON.
func nestedSchema(n int) string {
	return strings.Repeat(`{"type":"object","properties":{"a":`, n) + `{"type":"string"}` + strings.Repeat(`}}`, n)
}

// propsSchema has n properties, all required.
func propsSchema(n int) string {
	props, req := make([]string, n), make([]string, n)
	for i := range props {
		props[i] = fmt.Sprintf(`"p%d":{"type":"integer"}`, i)
		req[i] = fmt.Sprintf(`"p%d"`, i)
	}
	return `{"type":"object","properties":{` + strings.Join(props, ",") + `},"required":[` + strings.Join(req, ",") + `]}`
}

// requiredSchema requires n names that are not properties.
func requiredSchema(n int) string {
	req := make([]string, n)
	for i := range req {
		req[i] = fmt.Sprintf(`"r%d"`, i)
	}
	return `{"type":"object","required":[` + strings.Join(req, ",") + `]}`
}

// refChainSchema has a chain of n definitions, each a $ref to the next.
func refChainSchema(n int) string {
	defs := make([]string, n+1)
	for i := range n {
		defs[i] = fmt.Sprintf(`"d%d":{"$ref":"#/$defs/d%d"}`, i, i+1)
	}
	defs[n] = fmt.Sprintf(`"d%d":{"type":"string"}`, n)
	return `{"type":"object","properties":{"x":{"$ref":"#/$defs/d0"}},"$defs":{` + strings.Join(defs, ",") + `}}`
}

// manyRefsSchema has n properties, each a $ref into n definitions.
func manyRefsSchema(n int) string {
	props, defs := make([]string, n), make([]string, n)
	for i := range n {
		props[i] = fmt.Sprintf(`"p%d":{"$ref":"#/$defs/d%d"}`, i, n-1-i)
		defs[i] = fmt.Sprintf(`"d%d":{"type":"integer","minimum":%d}`, i, i)
	}
	return `{"type":"object","properties":{` + strings.Join(props, ",") + `},"$defs":{` + strings.Join(defs, ",") + `}}`
}

// objectEnumSchema has an enum of n objects (canonicalised to compare).
func objectEnumSchema(n int) string {
	vals := make([]string, n)
	for i := range vals {
		vals[i] = fmt.Sprintf(`{"b":%d,"a":[%d.0,"x"]}`, i, i)
	}
	return `{"type":"object","properties":{"x":{"enum":[` + strings.Join(vals, ",") + `]}}}`
}

// notesSchema has an unknown keyword at each of n levels of nesting.
func notesSchema(n int) string {
	return strings.Repeat(`{"x-no":1,"discriminator":1,"properties":{"a":`, n) + `{}` + strings.Repeat(`}}`, n)
}

// scalingFamilies are schemas that the old compiler took quadratic (or
// worse) time on: 10k/20k/40k enums took 0.18/0.64/2.23 s, 1000/2000/4000
// levels of nesting 0.62/2.16/8.56 s.
var scalingFamilies = map[string]func(n int) string{
	"enum":        enumSchema,
	"nesting":     nestedSchema,
	"properties":  propsSchema,
	"required":    requiredSchema,
	"ref chain":   refChainSchema,
	"many refs":   manyRefsSchema,
	"object enum": objectEnumSchema,
	"notes":       notesSchema,
}

// Compiling is linear in the schema's size for every shape: the compiler's
// count of its own steps (values parsed, members indexed, references and
// pointer tokens followed, enum values compared, ...) grows like the
// schema. A quadratic step (a list scanned once per element, a pointer
// rebuilt per level) makes the ratio grow with n and fails this test; it
// counts work, not time, so a busy machine cannot make it flaky.
func TestCompileIsLinear(t *testing.T) {
	for name, schema := range scalingFamilies {
		t.Run(name, func(t *testing.T) {
			var perByte []float64
			for _, n := range []int{500, 1000, 2000, 4000} {
				s := schema(n)
				v, err := Compile(json.RawMessage(s))
				if err != nil {
					t.Fatalf("n=%d: %v", n, err)
				}
				perByte = append(perByte, float64(v.steps)/float64(len(s)))
			}
			for i := 1; i < len(perByte); i++ {
				if perByte[i] > 1.1*perByte[0] {
					t.Errorf("steps per byte of schema grow with size: %.3f", perByte)
				}
			}
			t.Logf("%.3f", perByte)
			if perByte[0] > 2 {
				t.Errorf("%.2f steps per byte of schema: more than a constant few", perByte[0])
			}
		})
	}
}

// BenchmarkCompile compiles each family at doubling sizes: ns/op should
// double with n (compare the ratios, not the values, on a busy machine).
func BenchmarkCompile(b *testing.B) {
	for _, name := range []string{"enum", "nesting", "properties", "ref chain", "many refs"} {
		for _, n := range []int{1000, 2000, 4000} {
			s := json.RawMessage(scalingFamilies[name](n))
			b.Run(fmt.Sprintf("%s/%d", name, n), func(b *testing.B) {
				b.SetBytes(int64(len(s)))
				for b.Loop() {
					if _, err := Compile(s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func TestLimits(t *testing.T) {
	lim := Limits{MaxBytes: 20000, MaxDepth: 64, MaxEnum: 1000, MaxProperties: 1000}
	for _, tc := range []struct {
		name, schema string
		want         *LimitError
		msg          string
	}{
		{"enum at the limit", enumSchema(1000), nil, ""},
		{"enum over", enumSchema(1001), &LimitError{Limit: LimitEnum, Max: 1000, Got: 1001, Pointer: "/properties/x", Keyword: "enum"},
			"schema at /properties/x: enum has 1001 values, over the limit of 1000 values"},
		{"enum in a keyword not evaluated", `{"not":{"enum":[` + strings.Repeat(`1,`, 1000) + `1]}}`,
			&LimitError{Limit: LimitEnum, Max: 1000, Got: 1001, Pointer: "/not", Keyword: "enum"}, ""},
		{"properties at the limit", `{"properties":{` + strings.Repeat(`"":{},`, 0) + props(1000) + `}}`, nil, ""},
		{"properties over", `{"properties":{` + props(1001) + `}}`, &LimitError{Limit: LimitProperties, Max: 1000, Got: 1001, Keyword: "properties"},
			"schema at root: properties has 1001 members, over the limit of 1000 properties per object"},
		{"required over", requiredSchema(1001), &LimitError{Limit: LimitProperties, Max: 1000, Got: 1001, Keyword: "required"},
			"schema at root: required has 1001 names, over the limit of 1000 properties per object"},
		{"depth at the limit", nestedSchema(31), nil, ""},
		{"depth over", nestedSchema(32), &LimitError{Limit: LimitDepth, Max: 64, Got: 65, Pointer: strings.Repeat("/properties/a", 32)[:maxPointerBytes] + "…"},
			""},
		{"bytes over", enumSchema(3000), &LimitError{Limit: LimitBytes, Max: 20000, Got: len(enumSchema(3000))},
			fmt.Sprintf("the schema is %d bytes, over the limit of 20000 bytes", len(enumSchema(3000)))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := CompileLimited(json.RawMessage(tc.schema), lim)
			checkErr := CheckLimits([]byte(tc.schema), lim)
			if tc.want == nil {
				if err != nil || checkErr != nil {
					t.Fatalf("CompileLimited: %v; CheckLimits: %v", err, checkErr)
				}
				return
			}
			var le *LimitError
			if !errors.As(err, &le) || *le != *tc.want {
				t.Fatalf("CompileLimited error %#v, want %#v", err, tc.want)
			}
			if fmt.Sprint(checkErr) != err.Error() {
				t.Errorf("CheckLimits says %v, CompileLimited %v", checkErr, err)
			}
			if tc.msg != "" && err.Error() != tc.msg {
				t.Errorf("message %q, want %q", err, tc.msg)
			}
		})
	}
	// No limit: Compile takes what CompileLimited refuses.
	if _, err := Compile(json.RawMessage(enumSchema(5000))); err != nil {
		t.Fatal(err)
	}
}

func props(n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf(`"p%d":{}`, i)
	}
	return strings.Join(p, ",")
}

// An error's pointer is cut, so that a schema with long keys cannot make
// the error long.
func TestLimitPointerIsCut(t *testing.T) {
	key := strings.Repeat("k", 150)
	schema := strings.Repeat(`{"properties":{"`+key+`":`, 10) + `{}` + strings.Repeat(`}}`, 10)
	_, err := CompileLimited(json.RawMessage(schema), Limits{MaxDepth: 8})
	var le *LimitError
	if !errors.As(err, &le) || len(le.Pointer) > maxPointerBytes+len("…") || !strings.HasSuffix(le.Pointer, "…") {
		t.Fatalf("error %v: want a pointer cut to %d bytes", err, maxPointerBytes)
	}
	if le.Got != 21 {
		t.Errorf("depth found = %d, want 21", le.Got)
	}
}

// Problems never list a long enum: they say how many values it has.
func TestLongEnumWords(t *testing.T) {
	runCases(t, `{"type":"object","properties":{
		"s":{"type":"string","enum":["a","b","c","d","e","f","g","h","i","j","k"]},
		"n":{"type":"integer","enum":[1,2,3,4,5,6,7,8,9,10,11]},
		"short":{"type":"string","enum":["a","b"]},
		"m":{"type":"object","additionalProperties":{"type":"integer"},"propertyNames":{"enum":["a","b","c","d","e","f","g","h","i","j","k","l","m","n","o","p","q"]}}
	},"required":["s","n","short"]}`, []validateCase{
		{"valid", `{"s":"k","n":11,"short":"b","m":{"q":1,"a":2}}`, nil},
		{"bad", `{"s":"z","n":12,"short":"z","m":{"zz":1}}`, []string{
			`s: expected one of 11 values, got "z"`,
			`n: expected one of 11 values, got 12`,
			`short: expected one of "a", "b", got "z"`,
			`m.zz: expected one of 17 values, got "zz"`,
		}},
		{"missing", `{}`, []string{
			`s: missing required field (expected one of 11 values)`,
			`n: missing required field (expected one of 11 values)`,
			`short: missing required field (expected one of "a", "b")`,
		}},
	})
}

// Checks that keep sets past a few entries give the same answers.
func TestValidateLargeSets(t *testing.T) {
	items := make([]string, 100)
	for i := range items {
		items[i] = fmt.Sprint(i)
	}
	req := make([]string, 30)
	for i := range req {
		req[i] = fmt.Sprintf(`"r%d"`, i)
	}
	runCases(t, `{"type":"object","properties":{"u":{"type":"array","items":{"type":"integer"},"uniqueItems":true}},"required":[`+strings.Join(req, ",")+`]}`, []validateCase{
		{"unique", `{"u":[` + strings.Join(items, ",") + `],` + strings.Repeat(`"r0":1,`, 1) + present(req[1:]) + `}`, nil},
		{"repeat", `{"u":[` + strings.Join(items, ",") + `,42],` + present(req) + `}`, []string{`u: expected array of unique items, got repeated item 42`}},
		{"missing", `{"r3":1,` + present(req[5:]) + `}`, []string{
			`r0: missing required field (expected any value)`,
			`r1: missing required field (expected any value)`,
			`r2: missing required field (expected any value)`,
			`r4: missing required field (expected any value)`,
		}},
	})
}

func present(quoted []string) string {
	out := make([]string, len(quoted))
	for i, q := range quoted {
		out[i] = q + ":1"
	}
	return strings.Join(out, ",")
}

func TestNotesAreBounded(t *testing.T) {
	v, err := Compile(json.RawMessage(notesSchema(80)))
	if err != nil {
		t.Fatal(err)
	}
	notes := v.Notes()
	if len(notes) != maxNotes+1 || notes[maxNotes] != "and 60 more notes" {
		t.Fatalf("%d notes, last %q; want %d and a count of the rest", len(notes), notes[len(notes)-1], maxNotes+1)
	}
}

// A compile error quotes at most a few hundred bytes of the schema.
func TestCompileErrorIsShort(t *testing.T) {
	pattern := "(" + strings.Repeat("a", 100000)
	_, err := Compile(json.RawMessage(`{"properties":{"x":{"type":"string","pattern":"` + pattern + `"}}}`))
	if err == nil || len(err.Error()) > 400 || !strings.HasPrefix(err.Error(), "schema at /properties/x: pattern: Go cannot compile \"(aaa") {
		t.Fatalf("error of %d bytes: %.200v", len(fmt.Sprint(err)), err)
	}
}
