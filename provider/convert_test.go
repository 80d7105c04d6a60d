package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

func compact(t *testing.T, s string) string {
	t.Helper()
	c, err := compactJSON([]byte(s))
	if err != nil {
		t.Fatalf("bad JSON in test: %v\n%s", err, s)
	}
	return string(c)
}

// changeKeys renders changes as "pointer keyword action" lines.
func changeKeys(changes []Change) []string {
	out := make([]string, len(changes))
	for i, c := range changes {
		out[i] = fmt.Sprintf("%s %s %s", c.Pointer, c.Keyword, c.Action)
	}
	return out
}

type ruleCase struct {
	name     string
	provider string
	in       string
	want     string   // the converted schema
	changes  []string // "pointer keyword action" lines that must be among the changes
	first    string   // when set, the first change must be this one
}

func runRuleCases(t *testing.T, cases []ruleCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.provider+"/"+tc.name, func(t *testing.T) {
			out, changes, err := ConvertSchema(tc.provider, json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := string(out), compact(t, tc.want); got != want {
				t.Errorf("schema\n got: %s\nwant: %s", got, want)
			}
			keys := changeKeys(changes)
			for _, w := range tc.changes {
				found := false
				for _, k := range keys {
					if k == w {
						found = true
					}
				}
				if !found {
					t.Errorf("missing change %q; changes:\n  %s", w, strings.Join(keys, "\n  "))
				}
			}
			if tc.first != "" && (len(keys) == 0 || keys[0] != tc.first) {
				t.Errorf("first change: want %q; changes:\n  %s", tc.first, strings.Join(keys, "\n  "))
			}
			if tc.first == "" {
				for _, c := range changes {
					if c.Action == Downgraded {
						t.Errorf("unexpected downgrade: %s", c)
					}
				}
			}
		})
	}
}

func TestOpenAIStrictRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{
			name:     "optional primitive becomes a nullable type array, null joins its enum",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"a":{"type":"string"},"u":{"type":"string","enum":["x","y"]}},"required":["a"],"additionalProperties":false}`,
			want:     `{"type":"object","properties":{"a":{"type":"string"},"u":{"type":["string","null"],"enum":["x","y",null]}},"required":["a","u"],"additionalProperties":false}`,
			changes:  []string{" required added"},
		},
		{
			name:     "optional object is wrapped in anyOf that takes its description",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"o":{"type":"object","description":"d","properties":{"x":{"type":"integer"}},"required":["x"]}}}`,
			want: `{"type":"object","properties":{"o":{"description":"d","anyOf":[
				{"type":"object","properties":{"x":{"type":"integer"}},"required":["x"],"additionalProperties":false},
				{"type":"null"}]}},"required":["o"],"additionalProperties":false}`,
			changes: []string{"/properties/o additionalProperties added", " additionalProperties added", " required added"},
		},
		{
			name:     "optional property that already takes null is only listed as required",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"p":{"anyOf":[{"type":"string"},{"type":"null"}]}},"additionalProperties":false}`,
			want:     `{"type":"object","properties":{"p":{"anyOf":[{"type":"string"},{"type":"null"}]}},"required":["p"],"additionalProperties":false}`,
		},
		{
			name:     "no schema gives the strict empty object",
			provider: OpenAIChat,
			in:       ``,
			want:     `{"type":"object","properties":{},"required":[],"additionalProperties":false}`,
		},
		{
			name:     "enum without type gets the values' type",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"e":{"enum":[1,2]}},"required":["e"]}`,
			want:     `{"type":"object","properties":{"e":{"type":"integer","enum":[1,2]}},"required":["e"],"additionalProperties":false}`,
			changes:  []string{"/properties/e type added"},
		},
		{
			name:     "allOf branches are merged",
			provider: OpenAI,
			in: `{"type":"object","properties":{"p":{"allOf":[
				{"type":"object","properties":{"a":{"type":"string"}},"required":["a"]},
				{"properties":{"b":{"type":"integer"}},"required":["b"]}]}},"required":["p"]}`,
			want: `{"type":"object","properties":{"p":{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},
				"required":["a","b"],"additionalProperties":false}},"required":["p"],"additionalProperties":false}`,
			changes: []string{"/properties/p allOf rewritten"},
		},
		{
			name:     "a $ref with siblings is inlined and unused $defs go",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"s":{"$ref":"#/$defs/S","description":"sort"}},"required":["s"],"$defs":{"S":{"type":"string","enum":["a","b"]}}}`,
			want:     `{"type":"object","properties":{"s":{"type":"string","enum":["a","b"],"description":"sort"}},"required":["s"],"additionalProperties":false}`,
			changes:  []string{"/properties/s $ref rewritten", " $defs stripped"},
		},
		{
			name:     "a recursive $ref with siblings is wrapped in a one-branch anyOf; bare refs stay",
			provider: OpenAI,
			in: `{"type":"object","properties":{"n":{"$ref":"#/$defs/N","description":"node"}},"required":["n"],
				"$defs":{"N":{"type":"object","properties":{"k":{"$ref":"#/$defs/N"}}}}}`,
			want: `{"type":"object","properties":{"n":{"description":"node","anyOf":[{"$ref":"#/$defs/N"}]}},"required":["n"],
				"$defs":{"N":{"type":"object","properties":{"k":{"anyOf":[{"$ref":"#/$defs/N"},{"type":"null"}]}},"required":["k"],"additionalProperties":false}},
				"additionalProperties":false}`,
			changes: []string{"/properties/n $ref rewritten", "/$defs/N required added"},
		},
		{
			name:     "a one-branch allOf of a recursive $ref becomes that $ref",
			provider: OpenAI,
			in: `{"type":"object","properties":{"a":{"allOf":[{"$ref":"#/$defs/N"}],"description":"d"}},"required":["a"],
				"$defs":{"N":{"type":"object","properties":{"n":{"$ref":"#/$defs/N"}}}}}`,
			want: `{"type":"object","properties":{"a":{"description":"d","anyOf":[{"$ref":"#/$defs/N"}]}},"required":["a"],
				"$defs":{"N":{"type":"object","properties":{"n":{"anyOf":[{"$ref":"#/$defs/N"},{"type":"null"}]}},"required":["n"],"additionalProperties":false}},
				"additionalProperties":false}`,
			changes: []string{"/properties/a allOf rewritten", "/properties/a $ref rewritten"},
		},
		{
			name:     "a $ref that does not point into $defs is inlined",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"a":{"type":"string","minLength":1},"b":{"$ref":"#/properties/a"}},"required":["a","b"]}`,
			want:     `{"type":"object","properties":{"a":{"type":"string","description":"{minLength: 1}"},"b":{"type":"string","description":"{minLength: 1}"}},"required":["a","b"],"additionalProperties":false}`,
			changes:  []string{"/properties/b $ref rewritten", "/properties/a minLength described"},
		},
		{
			name:     "oneOf to anyOf; not dropped; minLength, format uri and default described; email kept; examples stripped",
			provider: OpenAI,
			in: `{"type":"object","properties":{"x":{"oneOf":[{"type":"string"},{"type":"integer"}]},
				"y":{"type":"string","not":{"const":""},"minLength":2,"format":"uri","examples":["a"],"default":"b"},
				"z":{"type":"string","format":"email"}},"required":["x","y","z"]}`,
			want: `{"type":"object","properties":{"x":{"anyOf":[{"type":"string"},{"type":"integer"}]},
				"y":{"type":"string","description":"{minLength: 2, format: \"uri\", default: \"b\"}"},
				"z":{"type":"string","format":"email"}},"required":["x","y","z"],"additionalProperties":false}`,
			changes: []string{"/properties/x oneOf rewritten", "/properties/y not dropped", "/properties/y minLength described",
				"/properties/y format described", "/properties/y examples stripped", "/properties/y default described"},
		},
		{
			name:     "root anyOf is dropped",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"a":{"type":"string"}},"anyOf":[{"required":["a"]}],"required":["a"]}`,
			want:     `{"type":"object","properties":{"a":{"type":"string"}},"required":["a"],"additionalProperties":false}`,
			changes:  []string{" anyOf dropped"},
		},
		{
			name:     "a description note goes after type when there is no description",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"t":{"type":"array","items":{"type":"string"},"uniqueItems":true}},"required":["t"]}`,
			want:     `{"type":"object","properties":{"t":{"type":"array","description":"{uniqueItems: true}","items":{"type":"string"}}},"required":["t"],"additionalProperties":false}`,
		},
	})
}

func TestOpenAIStrictFallsBackToNonStrict(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{
			name:     "a map",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}}},"required":["m"]}`,
			want:     `{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}}},"required":["m"]}`,
			first:    "/properties/m additionalProperties downgraded",
		},
		{
			name:     "a free-form object",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"f":{"type":"object"}}}`,
			want:     `{"type":"object","properties":{"f":{"type":"object"}}}`,
			first:    "/properties/f properties downgraded",
		},
		{
			name:     "a value of any type",
			provider: OpenAIChat,
			in:       `{"type":"object","properties":{"v":{"description":"anything"}}}`,
			want:     `{"type":"object","properties":{"v":{"description":"anything"}}}`,
			first:    "/properties/v type downgraded",
		},
		{
			name:     "an array without items",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"l":{"type":"array"}},"required":["l"]}`,
			want:     `{"type":"object","properties":{"l":{"type":"array"}},"required":["l"]}`,
			first:    "/properties/l items downgraded",
		},
		{
			name:     "conflicting allOf branches (non-strict keeps allOf as a hint)",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"p":{"allOf":[{"type":"string"},{"type":"integer"}]}}}`,
			want:     `{"type":"object","properties":{"p":{"allOf":[{"type":"string"},{"type":"integer"}]}}}`,
			first:    "/properties/p allOf downgraded",
		},
		{
			name:     "required names a property that is not there",
			provider: OpenAI,
			in:       `{"type":"object","properties":{},"required":["ghost"]}`,
			want:     `{"type":"object","properties":{},"required":["ghost"]}`,
			first:    " required downgraded",
		},
		{
			name:     "patternProperties",
			provider: OpenAI,
			in:       `{"type":"object","properties":{"p":{"type":"object","patternProperties":{"^a":{"type":"string"}}}}}`,
			want:     `{"type":"object","properties":{"p":{"type":"object","patternProperties":{"^a":{"type":"string"}}}}}`,
			first:    "/properties/p patternProperties downgraded",
		},
		{
			name:     "non-strict drops not and if/then/else, rewrites oneOf, keeps the rest as hints",
			provider: OpenAI,
			in: `{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}},
				"s":{"type":"string","minLength":1,"not":{"const":""},"if":{"const":"a"},"then":{"maxLength":1},"examples":["a"]},
				"o":{"oneOf":[{"type":"string"},{"type":"null"}]}},"$schema":"x","x-y":1}`,
			want: `{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}},
				"s":{"type":"string","minLength":1,"examples":["a"]},"o":{"anyOf":[{"type":"string"},{"type":"null"}]}}}`,
			first:   "/properties/m additionalProperties downgraded",
			changes: []string{"/properties/s not dropped", "/properties/s if dropped", "/properties/s then dropped", "/properties/o oneOf rewritten", " $schema stripped", " x-y stripped"},
		},
	})
}

func TestOpenAIStrictLimits(t *testing.T) {
	wide := newObject("")
	wide.set("type", "object")
	props := newObject("")
	for i := 0; i <= openAIMaxProperties; i++ {
		p := newObject("")
		p.set("type", "integer")
		props.set(fmt.Sprintf("p%d", i), p)
	}
	wide.set("properties", props)

	deep := `{"type":"string"}`
	for i := 0; i < openAIMaxDepth+1; i++ {
		deep = `{"type":"object","properties":{"x":` + deep + `},"required":["x"]}`
	}

	var values []string
	for i := 0; i <= openAIMaxEnumValues; i++ {
		values = append(values, fmt.Sprintf(`"v%d"`, i))
	}
	enum := `{"type":"object","properties":{"e":{"type":"string","enum":[` + strings.Join(values, ",") + `]}},"required":["e"]}`

	long := strings.Repeat("x", openAILargeEnumMaxChars/openAILargeEnum+1)
	values = values[:0]
	for i := 0; i <= openAILargeEnum; i++ {
		values = append(values, fmt.Sprintf(`"%s%d"`, long, i))
	}
	bigEnum := `{"type":"object","properties":{"e":{"type":"string","enum":[` + strings.Join(values, ",") + `]}},"required":["e"]}`

	atLimit := `{"type":"string"}`
	for i := 0; i < openAIMaxDepth; i++ {
		atLimit = `{"type":"object","properties":{"x":` + atLimit + `},"required":["x"]}`
	}

	for _, tc := range []struct {
		name, schema string
		downgraded   bool
	}{
		{"too many properties", string(encodeTree(wide)), true},
		{"too deep", deep, true},
		{"deep up to the limit", atLimit, false},
		{"too many enum values", enum, true},
		{"a long string enum of many values", bigEnum, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			def, changes, err := FormatTool(OpenAI, Tool{Name: "t", InputSchema: json.RawMessage(tc.schema)})
			if err != nil {
				t.Fatal(err)
			}
			strict := bytes.HasSuffix(def, []byte(`"strict":true}`))
			if strict == tc.downgraded {
				t.Fatalf("strict = %v, want %v", strict, !tc.downgraded)
			}
			if tc.downgraded && (len(changes) == 0 || changes[0].Action != Downgraded || !strings.Contains(changes[0].Reason, "at most")) {
				t.Fatalf("first change should be the limit's downgrade, got %v", changes)
			}
		})
	}
}

func TestAnthropicRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{
			name:     "keeps composition below the root, strips metadata, drops root anyOf",
			provider: Anthropic,
			in: `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
				"properties":{"a":{"oneOf":[{"type":"string"},{"type":"integer"}],"not":{"const":""}},"b":{"x-ui":"slider","type":"number","minimum":0}},
				"anyOf":[{"required":["a"]},{"required":["b"]}]}`,
			want:    `{"type":"object","properties":{"a":{"oneOf":[{"type":"string"},{"type":"integer"}],"not":{"const":""}},"b":{"type":"number","minimum":0}}}`,
			changes: []string{" $schema stripped", " anyOf dropped", "/properties/b x-ui stripped"},
		},
		{
			name:     "properties without type get type object; null properties become {}",
			provider: Anthropic,
			in:       `{"properties":{"o":{"properties":null}}}`,
			want:     `{"type":"object","properties":{"o":{"type":"object","properties":{}}}}`,
			changes:  []string{" type added", "/properties/o type added", "/properties/o properties rewritten"},
		},
	})
}

func TestMistralRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{
			name:     "inlines non-recursive refs, keeps recursive ones",
			provider: "mistralai",
			in: `{"type":"object","properties":{"s":{"$ref":"#/$defs/S"},"n":{"$ref":"#/$defs/N"}},
				"$defs":{"S":{"type":"string"},"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}`,
			want: `{"type":"object","properties":{"s":{"type":"string"},"n":{"$ref":"#/$defs/N"}},
				"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}`,
			changes: []string{"/properties/s $ref rewritten", " $defs stripped"},
		},
	})
}

func TestGeminiRules(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{
			name:     "null unions become nullable, types upper-case, additionalProperties dropped",
			provider: Gemini,
			in: `{"type":"object","properties":{"a":{"type":["string","null"]},
				"b":{"anyOf":[{"type":"integer","minimum":0},{"type":"null"}],"description":"count"},
				"c":{"enum":["x",null]},"d":{"type":"boolean"}},"required":["d"],"additionalProperties":false}`,
			want: `{"type":"OBJECT","properties":{"a":{"type":"STRING","nullable":true},
				"b":{"type":"INTEGER","nullable":true,"minimum":0,"description":"count"},
				"c":{"type":"STRING","nullable":true,"enum":["x"]},"d":{"type":"BOOLEAN"}},"required":["d"]}`,
			changes: []string{"/properties/a type rewritten", "/properties/b anyOf rewritten", "/properties/c enum rewritten", "/properties/c type added", " additionalProperties dropped"},
		},
		{
			name:     "string const becomes enum; other const and enums go to the description",
			provider: Gemini,
			in:       `{"type":"object","properties":{"k":{"const":"x"},"n":{"type":"integer","const":3},"e":{"type":"integer","enum":[1,2]}},"required":["k"]}`,
			want:     `{"type":"OBJECT","properties":{"k":{"type":"STRING","enum":["x"]},"n":{"type":"INTEGER","description":"{const: 3}"},"e":{"type":"INTEGER","description":"{enum: [1,2]}"}},"required":["k"]}`,
			changes:  []string{"/properties/k const rewritten", "/properties/n const described", "/properties/e enum described"},
		},
		{
			name:     "formats other than date-time, exclusive bounds and multipleOf are described; first example kept",
			provider: Gemini,
			in: `{"type":"object","properties":{"t":{"type":"string","format":"date-time"},"d":{"type":"string","format":"date","description":"day"},
				"x":{"type":"number","exclusiveMinimum":0,"multipleOf":0.5},"ex":{"type":"string","examples":["a","b"],"minLength":1}}}`,
			want: `{"type":"OBJECT","properties":{"t":{"type":"STRING","format":"date-time"},"d":{"type":"STRING","description":"day\n\n{format: \"date\"}"},
				"x":{"type":"NUMBER","description":"{exclusiveMinimum: 0, multipleOf: 0.5}"},"ex":{"type":"STRING","example":"a","minLength":1}}}`,
			changes: []string{"/properties/d format described", "/properties/x exclusiveMinimum described", "/properties/ex examples rewritten"},
		},
		{
			name:     "refs are inlined, recursion unrolled three levels and cut below",
			provider: Gemini,
			in: `{"type":"object","properties":{"n":{"$ref":"#/$defs/N"}},
				"$defs":{"N":{"type":"object","properties":{"v":{"type":"string"},"next":{"$ref":"#/$defs/N"}}}}}`,
			want: `{"type":"OBJECT","properties":{"n":{"type":"OBJECT","properties":{"v":{"type":"STRING"},
				"next":{"type":"OBJECT","properties":{"v":{"type":"STRING"},
				"next":{"type":"OBJECT","properties":{"v":{"type":"STRING"}}}}}}}}}`,
			changes: []string{"/properties/n $ref rewritten", "/$defs/N/properties/next $ref rewritten", "/$defs/N/properties/next $ref dropped", " $defs stripped"},
		},
		{
			name:     "a recursive array item is cut with its array, a nullable branch with its property",
			provider: Gemini,
			in: `{"type":"object","properties":{"n":{"$ref":"#/$defs/N"}},
				"$defs":{"N":{"type":"object","properties":{"v":{"type":"string"},"kids":{"type":"array","items":{"$ref":"#/$defs/N"}},
				"next":{"anyOf":[{"$ref":"#/$defs/N"},{"type":"null"}]}},"required":["v","kids"]}}}`,
			want: `{"type":"OBJECT","properties":{"n":{"type":"OBJECT","properties":{"v":{"type":"STRING"},
				"kids":{"type":"ARRAY","items":{"type":"OBJECT","properties":{"v":{"type":"STRING"},
					"kids":{"type":"ARRAY","items":{"type":"OBJECT","properties":{"v":{"type":"STRING"}},"required":["v"]}},
					"next":{"type":"OBJECT","nullable":true,"properties":{"v":{"type":"STRING"}},"required":["v"]}},"required":["v","kids"]}},
				"next":{"type":"OBJECT","nullable":true,"properties":{"v":{"type":"STRING"},
					"kids":{"type":"ARRAY","items":{"type":"OBJECT","properties":{"v":{"type":"STRING"}},"required":["v"]}},
					"next":{"type":"OBJECT","nullable":true,"properties":{"v":{"type":"STRING"}},"required":["v"]}},"required":["v","kids"]}},
				"required":["v","kids"]}}}`,
		},
		{
			name:     "required names missing from properties are dropped",
			provider: Gemini,
			in:       `{"type":"object","properties":{"a":{"type":"string"}},"required":["a","ghost"]}`,
			want:     `{"type":"OBJECT","properties":{"a":{"type":"STRING"}},"required":["a"]}`,
			changes:  []string{" required dropped"},
		},
		{
			name:     "oneOf becomes anyOf, mergeable allOf is merged, not dropped",
			provider: Gemini,
			in: `{"type":"object","properties":{"u":{"oneOf":[{"type":"string"},{"type":"integer"}]},
				"m":{"allOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"required":["a"]}]},"s":{"type":"string","not":{"const":""}}}}`,
			want: `{"type":"OBJECT","properties":{"u":{"anyOf":[{"type":"STRING"},{"type":"INTEGER"}]},
				"m":{"type":"OBJECT","properties":{"a":{"type":"STRING"}},"required":["a"]},"s":{"type":"STRING"}}}`,
			changes: []string{"/properties/u oneOf rewritten", "/properties/m allOf rewritten", "/properties/s not dropped"},
		},
	})
}

func TestGeminiFallsBackToJSONSchema(t *testing.T) {
	runRuleCases(t, []ruleCase{
		{
			name:     "a map; then const to enum, pattern described, ref siblings handled",
			provider: Gemini,
			in: `{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}},
				"k":{"type":"string","const":"x","pattern":"^x$"},"r":{"$ref":"#/$defs/R","description":"d"},"q":{"$ref":"#/$defs/R","minimum":1},
				"o":{"oneOf":[{"type":"string"},{"type":"null"}]}},
				"$schema":"x","$defs":{"R":{"type":"integer"}}}`,
			want: `{"type":"object","properties":{"m":{"type":"object","additionalProperties":{"type":"string"}},
				"k":{"type":"string","description":"{pattern: \"^x$\"}","enum":["x"]},"r":{"$ref":"#/$defs/R","description":"d"},"q":{"type":"integer","minimum":1},
				"o":{"anyOf":[{"type":"string"},{"type":"null"}]}},
				"$defs":{"R":{"type":"integer"}}}`,
			first:   "/properties/m additionalProperties downgraded",
			changes: []string{"/properties/k const rewritten", "/properties/k pattern described", "/properties/q $ref rewritten", "/properties/o oneOf rewritten", " $schema stripped"},
		},
		{
			name:     "keeps $id and $anchor, describes length and boolean enums, drops siblings of a recursive $ref",
			provider: Gemini,
			in: `{"$id":"urn:p","type":"object","properties":{"m":{"type":"object"},
				"s":{"type":"string","minLength":2,"$anchor":"s"},"b":{"type":"boolean","enum":[true]},
				"n":{"$ref":"#/$defs/N","description":"d","minItems":1,"title":"t"}},
				"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}`,
			want: `{"$id":"urn:p","type":"object","properties":{"m":{"type":"object"},
				"s":{"type":"string","description":"{minLength: 2}","$anchor":"s"},"b":{"type":"boolean","description":"{enum: [true]}"},
				"n":{"$ref":"#/$defs/N","description":"d"}},
				"$defs":{"N":{"type":"object","properties":{"next":{"$ref":"#/$defs/N"}}}}}`,
			first:   "/properties/m properties downgraded",
			changes: []string{"/properties/s minLength described", "/properties/b enum described", "/properties/n minItems dropped", "/properties/n title dropped"},
		},
		{
			name:     "unmergeable allOf is dropped, which leaves a schema of any type",
			provider: Gemini,
			in:       `{"type":"object","properties":{"p":{"allOf":[{"type":"string"},{"type":"integer"}]}}}`,
			want:     `{"type":"object","properties":{"p":{}}}`,
			first:    "/properties/p type downgraded",
			changes:  []string{"/properties/p allOf dropped"},
		},
		{
			name:     "a property name Gemini parameters reject",
			provider: Gemini,
			in:       `{"type":"object","properties":{"first-name":{"type":"string"}}}`,
			want:     `{"type":"object","properties":{"first-name":{"type":"string"}}}`,
			first:    "/properties/first-name properties downgraded",
		},
		{
			name:     "several types",
			provider: Gemini,
			in:       `{"type":"object","properties":{"v":{"type":["string","integer"]}}}`,
			want:     `{"type":"object","properties":{"v":{"type":["string","integer"]}}}`,
			first:    "/properties/v type downgraded",
		},
		{
			name:     "patternProperties take additionalProperties:false with them",
			provider: Gemini,
			in:       `{"type":"object","properties":{"l":{"type":"object","patternProperties":{"^a":{"type":"string"}},"additionalProperties":false}}}`,
			want:     `{"type":"object","properties":{"l":{"type":"object"}}}`,
			first:    "/properties/l patternProperties downgraded",
			changes:  []string{"/properties/l patternProperties dropped", "/properties/l additionalProperties dropped"},
		},
	})
}

func TestMCPKeepsTheSchema(t *testing.T) {
	in := `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","properties":{"a":{"oneOf":[{"type":"string"},{"const":1}],"x-ui":"y"}},"anyOf":[{"required":["a"]}],"x-atp-inferred":true}`
	runRuleCases(t, []ruleCase{
		{name: "as written", provider: MCP, in: in, want: in},
		{
			name:     "a root $ref is replaced by its target",
			provider: MCP,
			in:       `{"$ref":"#/$defs/P","$defs":{"P":{"type":"object","properties":{"a":{"type":"string"}}}}}`,
			want:     `{"type":"object","properties":{"a":{"type":"string"}},"$defs":{"P":{"type":"object","properties":{"a":{"type":"string"}}}}}`,
			changes:  []string{" $ref rewritten"},
		},
	})
}

func TestRootIsAlwaysAnObjectWithProperties(t *testing.T) {
	for _, p := range Names() {
		for _, in := range []string{``, `{}`, `true`, `{"type":"object"}`, `{"type":["object","null"]}`} {
			out, _, err := ConvertSchema(p, json.RawMessage(in))
			if err != nil {
				t.Fatalf("%s %q: %v", p, in, err)
			}
			root := mustTree(t, out).(*object)
			if !strings.EqualFold(fmt.Sprint(root.vals["type"]), "object") {
				t.Errorf("%s %q: root type %v", p, in, root.vals["type"])
			}
			if props, ok := root.vals["properties"].(*object); !ok || props.len() != 0 {
				t.Errorf("%s %q: properties %s, want {}", p, in, encodeTree(root.vals["properties"]))
			}
		}
	}
}

func TestConvertSchemaErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"not JSON", `{"type":`, "schema is not valid JSON"},
		{"trailing data", `{} {}`, "schema is not valid JSON"},
		{"duplicate keys", `{"type":"object","type":"string"}`, `(root): duplicate key "type"`},
		{"root not an object", `{"type":"string"}`, `tool parameters: expected an object schema, got type "string"`},
		{"root is an array", `[1]`, "expected a schema (a JSON object), got array"},
		{"root false", `false`, "the schema is false"},
		{"unknown type", `{"type":"object","properties":{"a":{"type":"str"}}}`, `/properties/a: type: unknown type "str"`},
		{"required not strings", `{"type":"object","required":[1]}`, "(root): required: expected an array of strings, got [1]"},
		{"properties not an object", `{"type":"object","properties":[]}`, "(root): properties: expected an object of schemas, got array"},
		{"items as an array", `{"type":"object","properties":{"t":{"type":"array","items":[{"type":"string"}]}}}`, "/properties/t: items: expected a schema"},
		{"empty anyOf", `{"type":"object","properties":{"u":{"anyOf":[]}}}`, "/properties/u: anyOf: expected a non-empty array of schemas"},
		{"dangling $ref", `{"type":"object","properties":{"a":{"$ref":"#/$defs/Nope"}}}`, `/properties/a: $ref: "#/$defs/Nope" points to nothing in the schema`},
		{"remote $ref", `{"type":"object","properties":{"a":{"$ref":"https://example.com/s.json"}}}`, `"https://example.com/s.json" is not a local reference`},
		{"anchor $ref", `{"type":"object","properties":{"a":{"$ref":"#node"}}}`, "anchor references are not supported"},
		{"a property schema that is a string", `{"type":"object","properties":{"a":"string"}}`, "/properties/a: expected a schema (an object or a boolean), got string"},
		{"description not a string", `{"type":"object","description":5}`, "(root): description: expected a string, got number"},
	} {
		for _, p := range []string{OpenAI, Gemini, Anthropic} {
			t.Run(p+"/"+tc.name, func(t *testing.T) {
				_, _, err := ConvertSchema(p, json.RawMessage(tc.in))
				if err == nil {
					t.Fatalf("no error for %s", tc.in)
				}
				if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "provider: "+p+": ") {
					t.Fatalf("error %q, want it to start with %q and contain %q", err, "provider: "+p+": ", tc.want)
				}
			})
		}
	}
}

func TestSchemaNodeBudget(t *testing.T) {
	// Each definition refers to the next one twice: inlining doubles at every
	// step, 2^20 copies, which the node budget must stop.
	var defs []string
	for i := 0; i < 20; i++ {
		defs = append(defs, fmt.Sprintf(`"D%d":{"type":"object","properties":{"a":{"$ref":"#/$defs/D%d"},"b":{"$ref":"#/$defs/D%d"}}}`, i, i+1, i+1))
	}
	defs = append(defs, `"D20":{"type":"string"}`)
	in := `{"type":"object","properties":{"x":{"$ref":"#/$defs/D0"}},"$defs":{` + strings.Join(defs, ",") + `}}`
	_, _, err := ConvertSchema(Gemini, json.RawMessage(in))
	if err == nil || !strings.Contains(err.Error(), "grows past") {
		t.Fatalf("err = %v, want the node budget error", err)
	}
	// Providers that keep references are not affected.
	if _, _, err := ConvertSchema(Anthropic, json.RawMessage(in)); err != nil {
		t.Fatal(err)
	}
}

// A small schema whose references fan out to a large target would grow
// into a huge tool list once inlined: the copied values are budgeted too.
func TestInlinedValueBudget(t *testing.T) {
	enum := make([]string, 1000)
	for i := range enum {
		enum[i] = fmt.Sprintf(`"v%d"`, i)
	}
	props := make([]string, 600)
	for i := range props {
		props[i] = fmt.Sprintf(`"p%d":{"$ref":"#/$defs/E"}`, i)
	}
	in := `{"type":"object","properties":{` + strings.Join(props, ",") + `},"$defs":{"E":{"type":"string","enum":[` + strings.Join(enum, ",") + `]}}}`
	_, _, err := ConvertSchema(Mistral, json.RawMessage(in))
	if err == nil || !strings.Contains(err.Error(), "grows past 500000 values once references are inlined") {
		t.Fatalf("err = %v, want the inlined-values budget error", err)
	}
	if _, _, err := ConvertSchema(Anthropic, json.RawMessage(in)); err != nil {
		t.Fatalf("a provider that keeps references: %v", err)
	}
}

func TestCyclicTargets(t *testing.T) {
	edges := map[string][]string{
		"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, // a cycle of three, leading out
		"d": {"e"}, "e": nil, // a chain
		"s": {"s"}, // a self-reference
		"x": {"y", "y"}, "y": {"x"},
	}
	// A long chain that closes on itself at the end only.
	for i := range 5000 {
		edges[fmt.Sprint("n", i)] = []string{fmt.Sprint("n", i+1)}
	}
	edges["n5000"] = []string{"n4999"}
	got := cyclicTargets(edges)
	for node := range edges {
		want := strings.ContainsAny(node, "abcsxy") || node == "n4999" || node == "n5000"
		if got[node] != want {
			t.Errorf("cyclic[%s] = %v, want %v", node, got[node], want)
		}
	}
}

func TestChangeString(t *testing.T) {
	c := Change{In: "input", Pointer: "/properties/a", Keyword: "minLength", Action: Described, Reason: "why"}
	if got, want := c.String(), "input /properties/a minLength described: why"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	c = Change{In: "tool", Keyword: "description", Action: Dropped, Reason: "too long"}
	if got, want := c.String(), "tool description dropped: too long"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
