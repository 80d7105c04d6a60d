package schemavalidate_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/schemavalidate"
	"github.com/atpgo/atp/internal/schemavalidate/internal/equivtools"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/tests/weather"
)

// The equivalence tests run the same params through a tool's generated
// decoder (Toolkit.Invoke) and through a Validator compiled from the tool's
// InputSchema, and require the same problems, word for word and in order.

// pair is one tool both ways.
type pair struct {
	tk   *runtime.Toolkit
	name string
	v    *schemavalidate.Validator
}

func newPairs(t testing.TB) map[string]*pair {
	t.Helper()
	tk := runtime.NewToolkit("equiv")
	if err := tk.Add(append(equivtools.ATPTools(), weather.ATPTools()...)...); err != nil {
		t.Fatal(err)
	}
	pairs := map[string]*pair{}
	for _, tool := range tk.Tools() {
		v, err := schemavalidate.Compile(tool.InputSchema)
		if err != nil {
			t.Fatalf("Compile(%s's schema): %v", tool.Name, err)
		}
		if notes := v.Notes(); len(notes) > 0 {
			t.Fatalf("%s: atpgen's schema has keywords the Validator does not evaluate: %q", tool.Name, notes)
		}
		pairs[tool.Name] = &pair{tk: tk, name: tool.Name, v: v}
	}
	return pairs
}

// generated returns the problems the generated decoder finds.
func (p *pair) generated(t testing.TB, params string) []string {
	_, err := p.tk.Invoke(context.Background(), p.name, []byte(params))
	var verr *runtime.ValidationError
	if errors.As(err, &verr) {
		return strs(verr.Problems)
	}
	if err != nil {
		t.Fatalf("%s(%s): %v", p.name, params, err)
	}
	return nil
}

func (p *pair) validated(params string) []string { return strs(p.v.Validate([]byte(params))) }

func strs(ps []runtime.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

// compare fails when the two disagree.
func (p *pair) compare(t testing.TB, params string) {
	t.Helper()
	gen, val := p.generated(t, params), p.validated(params)
	if strings.Join(gen, "\n") != strings.Join(val, "\n") {
		t.Errorf("%s(%s)\ngenerated: %q\nvalidator: %q", p.name, params, gen, val)
	}
}

// takeBase is a valid params object of tool take, which the property cases
// below extend.
const takeBase = `"name":"Acme","home":{"city":"Paris","country":"FR"}`

// takeValues are good and bad values for each property of tool take.
var takeValues = map[string][]string{
	"requested_by": {`"ab"`, `"a"`, `1`, `null`},
	"email":        {`"a@example.com"`, `"nope"`, `"a@@b"`},
	"color":        {`"red"`, `"blue"`, `1`},
	"tier":         {`"pro"`, `"gold"`, `null`, `["free"]`},
	"level":        {`1`, `2.0`, `3`, `1.5`, `"1"`},
	"region":       {`"eu"`, `"xx"`, `1`, `null`},
	"grade":        {`11`, `12`, `0`, `"1"`},
	"small":        {`127`, `128`, `-128`, `-129`, `2.5`, `1e2`, `1e3`},
	"short":        {`0`, `-1`, `32767`, `32768`},
	"byte":         {`255`, `256`, `-1`, `0.0`},
	"count":        {`0`, `-1`, `18446744073709551615`, `18446744073709551616`, `1e3`, `-0`},
	"page":         {`1`, `0`, `100`, `101`, `1e2`, `1e400`, `-1e400`},
	"odd":          {`1`, `0`, `9`, `10`, `2147483648`, `-2147483649`},
	"step":         {`10`, `7`, `-5`, `0`},
	"half":         {`1.5`, `1.25`, `-0.5`, `1e308`, `0.1`},
	"share":        {`0.5`, `-0.1`, `1.1`, `1e400`, `0`, `1`},
	"frac":         {`2`, `1`, `-1`, `1.5`},
	"ok":           {`true`, `false`, `"true"`, `null`, `0`},
	"maybe":        {`null`, `1`, `"x"`, `1.5`},
	"nullable":     {`null`, `"x"`, `1`},
	"when":         {`"2026-11-21T05:05:00Z"`, `"yesterday"`, `"2026-11-21T05:05:00"`, `5`, `"2026-02-30T00:00:00Z"`, `null`},
	"since":        {`null`, `"2026-11-21T05:05:00+01:00"`, `"x"`, `{}`},
	"wait":         {`"1h30m"`, `"forever"`, `""`, `5`, `"-1.5h"`, `"9999999999h"`, `"0"`, `".5s"`},
	"blob":         {`"aGk="`, `"aGk"`, `"!!"`, `5`, `""`, `null`},
	"tags":         {`[]`, `["a","b"]`, `["a","a"]`, `["a","b","c","d"]`, `["a","a","b","c"]`, `[1,"a"]`, `[1,1]`, `"a"`, `null`},
	"scores":       {`[1,2]`, `[1,2,1]`, `[1,1.0]`, `[1,"x",1]`, `[0,"x"]`},
	"triple":       {`[1,2,3]`, `[1,2]`, `[1,2,3,4]`, `[1,"x",3,"y"]`, `[]`},
	"pair":         {`["a","b"]`, `["a","a"]`, `["a"]`, `["a","a","a"]`, `["a",1]`},
	"levels":       {`[1,2]`, `[1,3]`, `["1"]`, `[2,2]`},
	"labels":       {`{"a":1}`, `{"a":1,"a":2}`, `{"a":"x"}`, `[]`, `{"a b":1.5}`, `{}`},
	"by_tier":      {`{"free":"x"}`, `{"gold":"x"}`, `{"free":"x","free":"y"}`, `{"gold":1}`},
	"work":         {`null`, `{"city":"Paris","country":"FR"}`, `{"country":"FR"}`, `"x"`},
	"offices":      {`[{"city":"Paris","country":"FR"},{}]`, `[null]`, `[{"city":"P","country":"fr","zip":1}]`},
	"tree":         {`null`, `{"label":"a","children":[null,{"label":"b","children":[{"lable":1}]}]}`, `{"children":[]}`, `{"label":"a","children":{}}`},
	"raw":          {`{"any":[1e400,null]}`, `1`, `"x"`},
	"nested":       {`{"a":[true,false]}`, `{"a":[1]}`, `{"a":null}`, `{"a":[],"a":[]}`, `{"a":[true,"x"],"b":[null]}`},
	"zzz":          {`1`},
	"Name":         {`"x"`},
}

// equivCases returns every params string of the equivalence test, per tool.
func equivCases() map[string][]string {
	take := []string{
		`{` + takeBase + `}`,
		`{}`, ``, `null`, `[]`, `"x"`, `1`,
		`{"name":"","home":{"city":1,"country":"fr","zip":"x"}}`,
		`{"name":"123456789","name":"a","home":null}`,
		`{"home":{"city":"P","country":"FR"}}`,
		`{"name":"a","home":{}}`,
		`{"name":`, `{"name":"a"} x`, `{"name":"a",}`, `{"name":"\u00e9\ud800"}`,
		`{"name":"a","tree":` + strings.Repeat(`{"label":"x","children":[`, 600) + strings.Repeat(`]}`, 600) + `}`,
	}
	for prop, values := range takeValues {
		for _, v := range values {
			take = append(take, fmt.Sprintf(`{%s,%q:%s}`, takeBase, prop, v))
		}
	}
	return map[string][]string{
		"take": take,
		"get_forecast": {
			`{"location":{"city":"Paris"},"days":3}`,
			`{"location":{"city":"Paris","country":"FR"},"days":3,"units":"celsius","tags":["a","b"],"since":"2026-11-21T05:05:00Z"}`,
			`{"location":{"city":"Paris"},"days":3,"since":null}`,
			`{"location":{"city":"Paris"},"days":"three"}`,
			`{"location":{"city":"Paris"},"days":2.5}`,
			`{"location":{"city":"Paris"},"dayz":4}`,
			`{"Location":{"city":"Paris"},"DAYS":3}`,
			`{"location":{"city":"Paris"},"days":3,"units":"kelvin"}`,
			`{"location":null,"days":3}`,
			`{"location":{"city":"Paris"},"days":3,"since":"yesterday"}`,
			`{"location":{"city":42,"zip":1},"days":3,"days":4}`,
			`{"days":"three","dayz":4,"units":"kelvin","location":null,"since":"yesterday","tags":[1,null]}`,
			`{}`, ``, `null`, `[1]`, `{"location":`, `{} x`,
		},
		"greet": {
			`{"name":"Ada","times":2}`,
			`{"name":"Ada","times":2,"loud":true}`,
			`{"name":"Ada","times":2,"loud":null}`,
			`{"times":"two","nmae":"Ada"}`,
			`{"name":"Ada","times":9}`,
			`{"name":"Ada","times":0}`,
			`{"name":"Ada","times":2.5}`,
			`{"name":"Ada","times":"2"}`,
			`{"name":"Ada","times":1e30}`,
			`[1]`, `{"name":`,
		},
		"ping": {``, `{}`, `null`, `{"x":1}`, `{"x":1,"x":2}`, `[]`, `{"x":}`},
		"need": {
			`{}`,
			`{"tier":"pro","level":1,"region":"eu","grade":1,"color":"red","small":1,"count":1,"share":1,"ok":true,"when":"2026-11-21T05:05:00Z","wait":"1s","blob":"","tags":[],"triple":[1,2,3],"labels":{},"home":{"city":"P","country":"FR"},"tree":{"label":"x"},"extra":null,"raw":null,"nullable":null,"nested":{"a":["free"],"b":["pro"]}}`,
			`{"nested":{"a":["free"],"b":["gold"]}}`,
			`{"region":"north","grade":99}`,
			`{"tier":null,"level":null,"color":null,"small":null,"count":null,"share":null,"ok":null,"when":null,"wait":null,"blob":null,"tags":null,"triple":null,"labels":null,"home":null,"tree":null}`,
		},
	}
}

func TestEquivalence(t *testing.T) {
	pairs := newPairs(t)
	for tool, cases := range equivCases() {
		p := pairs[tool]
		if p == nil {
			t.Fatalf("equivtools has no tool %s", tool)
		}
		t.Run(tool, func(t *testing.T) {
			invalid := 0
			for _, params := range cases {
				p.compare(t, params)
				if p.validated(params) != nil {
					invalid++
				}
			}
			// The cases must exercise both verdicts.
			if invalid == 0 || invalid == len(cases) {
				t.Errorf("%d of %d cases invalid: the cases do not test both verdicts", invalid, len(cases))
			}
		})
	}
}

// TestDocumentedDifferences pins the cases where a schema does not say which
// Go type is behind it (see package doc): the verdict agrees, or the
// Validator accepts what the toolkit will still reject, and the words may
// differ. If one of these starts to agree, the generator or the Validator
// changed: update the package doc.
func TestDocumentedDifferences(t *testing.T) {
	p := newPairs(t)["guess"]
	for _, tc := range []struct {
		params         string
		generated, val []string
	}{
		{`{"ratio":1e39}`,
			[]string{`ratio: expected number from -3.4028234663852886e+38 to 3.4028234663852886e+38, got 1e39`}, nil},
		{`{"extra":[1e400]}`,
			[]string{`extra[0]: expected number from -1.7976931348623157e+308 to 1.7976931348623157e+308, got 1e400`}, nil},
		{`{"offset":-1}`,
			[]string{`offset: expected integer >= 0, got -1`},
			[]string{`offset: expected integer from 0 to 18446744073709551615, got -1`}},
		{`{"stamp":"soon"}`,
			[]string{`stamp: expected RFC 3339 date-time, got "soon"`},
			[]string{`stamp: expected RFC 3339 date-time string, got "soon"`}},
		{`{"stamp":1}`,
			[]string{`stamp: expected string, got 1`},
			[]string{`stamp: expected RFC 3339 date-time string, got 1`}},
		{`{"two":[1]}`,
			[]string{`two: expected at least 2 items, got 1`},
			[]string{`two: expected array of exactly 2 items, got 1`}},
	} {
		gen, val := p.generated(t, tc.params), p.validated(tc.params)
		if strings.Join(gen, "\n") != strings.Join(tc.generated, "\n") || strings.Join(val, "\n") != strings.Join(tc.val, "\n") {
			t.Errorf("guess(%s)\ngenerated: %q (want %q)\nvalidator: %q (want %q)", tc.params, gen, tc.generated, val, tc.val)
		}
	}
	// Away from those edges the two agree.
	for _, params := range []string{
		`{"ratio":1.5,"extra":{"a":[1,"b",null]},"offset":3,"stamp":"2026-11-21T05:05:00Z","two":[1,2]}`,
		`{"ratio":"x","extra":1e300,"offset":1.5,"stamp":"2026-11-21T05:05:00+01:00","two":[1,"x"]}`,
	} {
		p.compare(t, params)
	}
}

// FuzzValidate checks that no params make the Validator panic, and that for
// the weather reference tool and the tools of equivtools it and the
// generated decoder agree on the verdict and on every problem.
func FuzzValidate(f *testing.F) {
	for _, cases := range equivCases() {
		for _, c := range cases {
			f.Add(c)
		}
	}
	pairs := newPairs(f)
	f.Fuzz(func(t *testing.T, params string) {
		for _, name := range []string{"get_forecast", "take", "need", "greet", "ping"} {
			pairs[name].compare(t, params)
		}
		// Problems are not random: a path and a message each.
		for _, p := range pairs["take"].v.Validate([]byte(params)) {
			if p.Message == "" {
				t.Fatalf("empty problem message at %q for %q", p.Path, params)
			}
		}
	})
}

// BenchmarkValidate measures Validate on the weather reference input, beside
// the generated decoder that does the same work in a toolkit.
func BenchmarkValidate(b *testing.B) {
	params := []byte(`{"location":{"city":"Paris","country":"FR"},"days":3,"units":"celsius","tags":["a","b"],"since":"2026-11-21T05:05:00Z"}`)
	pairs := newPairs(b)
	p := pairs["get_forecast"]
	b.Run("validator", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if ps := p.v.Validate(params); ps != nil {
				b.Fatal(ps)
			}
		}
	})
	b.Run("generated", func(b *testing.B) {
		tool, _ := p.tk.Tool("get_forecast")
		var d atpimpl.Decoder
		call := &runtime.Call{}
		b.ReportAllocs()
		for b.Loop() {
			d.Reset(params)
			if _, err := tool.Run(context.Background(), call, &d); err != nil || d.Failed() {
				b.Fatal(err, d.Problems())
			}
		}
	})
	b.Run("validator_invalid", func(b *testing.B) {
		bad := []byte(`{"location":{"city":42},"days":"three","units":"kelvin","tags":["a",1],"since":"yesterday"}`)
		b.ReportAllocs()
		for b.Loop() {
			if ps := p.v.Validate(bad); len(ps) != 5 {
				b.Fatal(ps)
			}
		}
	})
}
