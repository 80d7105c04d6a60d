package schemavalidate

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/atpgo/atp/runtime"
)

// problemStrings renders problems as "path: message", one each.
func problemStrings(ps []runtime.Problem) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}

type validateCase struct {
	name   string
	params string
	want   []string // nil: valid
}

func runCases(t *testing.T, schema string, cases []validateCase) {
	t.Helper()
	v, err := Compile(json.RawMessage(schema))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := problemStrings(v.Validate([]byte(tc.params)))
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("Validate(%s)\n got: %q\nwant: %q", tc.params, got, tc.want)
			}
		})
	}
}

// weatherSchema is the reference input's schema in the shape atpgen writes
// (internal/gen/schema.go): pointers as anyOf with null, enums on the type, closed
// objects.
const weatherSchema = `{
  "type": "object",
  "properties": {
    "location": {
      "type": "object",
      "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Paris\"."},
        "country": {"type": "string", "description": "ISO 3166-1 alpha-2 country code."}
      },
      "additionalProperties": false,
      "required": ["city"],
      "description": "Where to forecast."
    },
    "days": {"type": "integer", "description": "How many days ahead."},
    "units": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Temperature scale of the answer."},
    "tags": {"type": "array", "items": {"type": "string"}, "description": "Labels echoed back."},
    "since": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}], "description": "Only observations after this time."}
  },
  "additionalProperties": false,
  "required": ["location", "days"]
}`

const weatherAllowed = "(allowed: location, days, units, tags, since)"

func TestValidateWeather(t *testing.T) {
	runCases(t, weatherSchema, []validateCase{
		{"minimal", `{"location":{"city":"Paris"},"days":3}`, nil},
		{"full", `{"location":{"city":"Paris","country":"FR"},"days":3,"units":"celsius","tags":["a","b"],"since":"2026-11-21T05:05:00Z"}`, nil},
		{"null pointer", `{"location":{"city":"Paris"},"days":3,"since":null}`, nil},
		{"integer with zero fraction", `{"location":{"city":"Paris"},"days":2.0}`, nil},
		{"integer as exponent", `{"location":{"city":"Paris"},"days":1e1}`, nil},
		{"whitespace", " \n{ \"location\" : { \"city\" : \"Paris\" } , \"days\" : 3 }\t", nil},
		{"escaped key", `{"loc\u0061tion":{"city":"Paris"},"days":3}`, nil},
		{"string instead of integer", `{"location":{"city":"Paris"},"days":"three"}`,
			[]string{`days: expected integer, got "three"`}},
		{"fraction", `{"location":{"city":"Paris"},"days":2.5}`,
			[]string{`days: expected integer, got 2.5`}},
		{"beyond int64", `{"location":{"city":"Paris"},"days":9223372036854775808}`,
			[]string{`days: expected integer from -9223372036854775808 to 9223372036854775807, got 9223372036854775808`}},
		{"missing everything", `{}`, []string{
			`location: missing required field (expected object)`,
			`days: missing required field (expected integer)`}},
		{"empty params", ``, []string{
			`location: missing required field (expected object)`,
			`days: missing required field (expected integer)`}},
		{"null params", `null`, []string{
			`location: missing required field (expected object)`,
			`days: missing required field (expected integer)`}},
		{"typo", `{"location":{"city":"Paris"},"dayz":4}`, []string{
			`dayz: unknown field ` + weatherAllowed,
			`days: missing required field (expected integer)`}},
		{"case matters", `{"Location":{"city":"Paris"},"days":3}`, []string{
			`Location: unknown field ` + weatherAllowed,
			`location: missing required field (expected object)`}},
		{"enum", `{"location":{"city":"Paris"},"days":3,"units":"kelvin"}`,
			[]string{`units: expected one of "celsius", "fahrenheit", got "kelvin"`}},
		{"null where not nullable", `{"location":null,"days":3}`,
			[]string{`location: expected object, got null`}},
		{"date-time", `{"location":{"city":"Paris"},"days":3,"since":"yesterday"}`,
			[]string{`since: expected RFC 3339 date-time string, got "yesterday"`}},
		{"nested", `{"location":{"city":42,"zip":"75001"},"days":3}`, []string{
			`location.city: expected string, got 42`,
			`location.zip: unknown field (allowed: city, country)`}},
		{"nested missing", `{"location":{"country":"FR"},"days":3}`,
			[]string{`location.city: missing required field (expected string)`}},
		{"array item", `{"location":{"city":"Paris"},"days":3,"tags":["a",2,null]}`, []string{
			`tags[1]: expected string, got 2`,
			`tags[2]: expected string, got null`}},
		{"array expected", `{"location":{"city":"Paris"},"days":3,"tags":"a"}`,
			[]string{`tags: expected array, got "a"`}},
		{"duplicate", `{"location":{"city":"Paris"},"days":3,"days":4}`,
			[]string{`days: duplicate field`}},
		{"duplicate nested", `{"location":{"city":"Paris","city":"Lyon"},"days":3}`,
			[]string{`location.city: duplicate field`}},
		{"not an object", `[1]`, []string{`params: expected object, got array`}},
		{"a string", `"x"`, []string{`params: expected object, got "x"`}},
		{"all at once", `{"days":"three","dayz":4,"units":"kelvin","location":null,"since":"yesterday","tags":[1]}`, []string{
			`days: expected integer, got "three"`,
			`dayz: unknown field ` + weatherAllowed,
			`units: expected one of "celsius", "fahrenheit", got "kelvin"`,
			`location: expected object, got null`,
			`since: expected RFC 3339 date-time string, got "yesterday"`,
			`tags[0]: expected string, got 1`}},
		{"syntax error", `{"location":`, []string{`location: invalid JSON: unexpected end of input at offset 12`}},
		{"syntax error only", `{"days":"x","location":{"city":}}`, []string{`location.city: invalid JSON: invalid character '}' looking for a value at offset 31`}},
		{"trailing data", `{} x`, []string{`params: invalid JSON: invalid character 'x' after top-level value at offset 3`}},
		{"long string is cut", `{"location":{"city":"Paris"},"days":"` + strings.Repeat("é", 50) + `"}`,
			[]string{`days: expected integer, got "` + strings.Repeat("é", 40) + `…"`}},
	})
}

func TestValidateStrings(t *testing.T) {
	runCases(t, `{"type":"object","properties":{
		"name": {"type":"string","minLength":2,"maxLength":4},
		"code": {"type":"string","pattern":"^[A-Z]{2}$"},
		"mail": {"type":"string","format":"email"},
		"day":  {"type":"string","format":"date"},
		"id":   {"type":"string","format":"uuid"},
		"at":   {"type":"string","format":"date-time","minLength":1},
		"any":  {"type":"string","format":"no-such-format"},
		"kind": {"type":"string","enum":["ab","cd"],"minLength":2},
		"blob": {"type":"string","contentEncoding":"base64"},
		"wait": {"type":"string","pattern":"^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"}
	}}`, []validateCase{
		{"valid", `{"name":"héé","code":"FR","mail":"a@example.com","day":"2026-02-28","id":"123e4567-e89b-12d3-a456-426614174000","at":"2026-11-21T05:05:00Z","any":"x","kind":"ab","blob":"aGk=","wait":"1h30m"}`, nil},
		{"too short in runes", `{"name":"é"}`, []string{`name: expected string of at least 2 characters, got "é"`}},
		{"too long", `{"name":"abcde"}`, []string{`name: expected string of at most 4 characters, got "abcde" (5 characters)`}},
		{"pattern", `{"code":"fr"}`, []string{`code: expected string matching ^[A-Z]{2}$, got "fr"`}},
		{"email", `{"mail":"nope"}`, []string{`mail: expected email address, got "nope"`}},
		{"date", `{"day":"2026-02-30"}`, []string{`day: expected date (YYYY-MM-DD), got "2026-02-30"`}},
		{"uuid", `{"id":"123"}`, []string{`id: expected UUID, got "123"`}},
		{"date-time beside another keyword is a format check", `{"at":"soon"}`, []string{`at: expected RFC 3339 date-time, got "soon"`}},
		{"enum and length both reported", `{"kind":"c"}`, []string{
			`kind: expected one of "ab", "cd", got "c"`,
			`kind: expected string of at least 2 characters, got "c"`}},
		{"no check after a wrong type", `{"name":5,"code":5,"mail":5,"kind":5}`, []string{
			`name: expected string, got 5`,
			`code: expected string, got 5`,
			`mail: expected string, got 5`,
			`kind: expected string, got 5`}},
		{"base64", `{"blob":"not base64!"}`, []string{`blob: expected base64 string, got "not base64!"`}},
		{"base64 type", `{"blob":1}`, []string{`blob: expected base64 string, got 1`}},
		{"duration", `{"wait":"forever"}`, []string{`wait: expected duration string such as "1h30m" or "90s", got "forever"`}},
		{"open object skips unknown", `{"other":{"deep":[1,2,{"x":null}]}}`, nil},
	})
}

func TestValidateIntegers(t *testing.T) {
	runCases(t, `{"type":"object","properties":{
		"i8":   {"type":"integer","minimum":-128,"maximum":127},
		"u8":   {"type":"integer","minimum":0,"maximum":255},
		"i16":  {"type":"integer","minimum":-32768,"maximum":32767},
		"u32":  {"type":"integer","minimum":0,"maximum":4294967295},
		"i64":  {"type":"integer","minimum":-9223372036854775808,"maximum":9223372036854775807},
		"u64":  {"type":"integer","minimum":0,"maximum":18446744073709551615},
		"pos8": {"type":"integer","minimum":1,"maximum":127},
		"lo8":  {"type":"integer","minimum":-128,"maximum":10},
		"ul8":  {"type":"integer","minimum":1,"maximum":255},
		"n":    {"type":"integer","minimum":1,"maximum":10},
		"x":    {"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":5},
		"m":    {"type":"integer","multipleOf":5},
		"e":    {"type":"integer","enum":[1,2,3]},
		"big":  {"type":"integer","minimum":1e500}
	}}`, []validateCase{
		{"valid", `{"i8":-128,"u8":255,"i16":32767,"u32":4294967295,"i64":-9223372036854775808,"u64":18446744073709551615,"pos8":127,"lo8":-128,"ul8":255,"n":10,"x":4,"m":-15,"e":3}`, nil},
		{"int8 range", `{"i8":300}`, []string{`i8: expected integer from -128 to 127, got 300`}},
		{"int8 low", `{"i8":-129}`, []string{`i8: expected integer from -128 to 127, got -129`}},
		{"uint8 range", `{"u8":-1}`, []string{`u8: expected integer from 0 to 255, got -1`}},
		{"int16 range", `{"i16":40000}`, []string{`i16: expected integer from -32768 to 32767, got 40000`}},
		{"uint32 range", `{"u32":4294967296}`, []string{`u32: expected integer from 0 to 4294967295, got 4294967296`}},
		{"uint64 range", `{"u64":18446744073709551616}`, []string{`u64: expected integer from 0 to 18446744073709551615, got 18446744073709551616`}},
		{"int64 range", `{"i64":1e19}`, []string{`i64: expected integer from -9223372036854775808 to 9223372036854775807, got 1e19`}},
		{"int8 tightened from below: range first", `{"pos8":300}`, []string{`pos8: expected integer from -128 to 127, got 300`}},
		{"int8 tightened from below: the bound", `{"pos8":0}`, []string{`pos8: expected integer >= 1, got 0`}},
		{"int8 tightened from above", `{"lo8":11}`, []string{`lo8: expected integer <= 10, got 11`}},
		{"uint8 tightened", `{"ul8":256}`, []string{`ul8: expected integer from 0 to 255, got 256`}},
		{"uint8 tightened: the bound", `{"ul8":0}`, []string{`ul8: expected integer >= 1, got 0`}},
		{"plain bounds", `{"n":0}`, []string{`n: expected integer >= 1, got 0`}},
		{"plain bounds high", `{"n":11}`, []string{`n: expected integer <= 10, got 11`}},
		{"exclusive", `{"x":0}`, []string{`x: expected integer > 0, got 0`}},
		{"exclusive high", `{"x":5}`, []string{`x: expected integer < 5, got 5`}},
		{"multiple", `{"m":7}`, []string{`m: expected multiple of 5, got 7`}},
		{"enum", `{"e":4}`, []string{`e: expected one of 1, 2, 3, got 4`}},
		{"fraction before bounds", `{"n":0.5,"e":1.5}`, []string{
			`n: expected integer, got 0.5`,
			`e: expected integer, got 1.5`}},
		{"huge bound", `{"big":5}`, []string{`big: expected number >= +Inf, got 5`}},
	})
}

func TestValidateNumbersAndBooleans(t *testing.T) {
	runCases(t, `{"type":"object","properties":{
		"share": {"type":"number","minimum":0,"maximum":1},
		"temp":  {"type":"number","exclusiveMinimum":-273.15},
		"step":  {"type":"number","multipleOf":0.01},
		"ratio": {"type":"number","enum":[0.5,1]},
		"ok":    {"type":"boolean"},
		"yes":   {"const":true},
		"n":     {"type":["number","integer"]}
	}}`, []validateCase{
		{"valid", `{"share":0.5,"temp":-273,"step":1.23,"ratio":1.0,"ok":false,"yes":true,"n":1.5}`, nil},
		{"above", `{"share":2}`, []string{`share: expected number <= 1, got 2`}},
		{"below", `{"share":-0.5}`, []string{`share: expected number >= 0, got -0.5`}},
		{"exclusive", `{"temp":-273.15}`, []string{`temp: expected number > -273.15, got -273.15`}},
		{"multiple of a decimal", `{"step":1.234}`, []string{`step: expected multiple of 0.01, got 1.234`}},
		{"enum", `{"ratio":0.25}`, []string{`ratio: expected one of 0.5, 1, got 0.25`}},
		{"type", `{"share":"half","ok":"true","n":"1"}`, []string{
			`share: expected number, got "half"`,
			`ok: expected boolean, got "true"`,
			`n: expected number, got "1"`}},
		{"out of float range", `{"share":1e400}`, []string{`share: expected number from -1.7976931348623157e+308 to 1.7976931348623157e+308, got 1e400`}},
		{"const", `{"yes":false}`, []string{`yes: expected one of true, got false`}},
	})
}

func TestValidateArraysAndMaps(t *testing.T) {
	runCases(t, `{"type":"object","properties":{
		"three":  {"type":"array","items":{"type":"integer"},"minItems":3,"maxItems":3},
		"few":    {"type":"array","items":{"type":"string"},"maxItems":2},
		"tags":   {"type":"array","items":{"type":"string","minLength":1},"uniqueItems":true},
		"nums":   {"type":"array","items":{"type":"number"},"uniqueItems":true},
		"pair":   {"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false},
		"labels": {"type":"object","additionalProperties":{"type":"string"},"maxProperties":2},
		"grid":   {"type":"array","items":{"type":"array","items":{"type":"boolean"}}}
	},"additionalProperties":false}`, []validateCase{
		{"valid", `{"three":[1,2,3],"few":["a"],"tags":["a","b"],"nums":[1,1.5],"pair":["a",1],"labels":{"a":"b","c":"d"},"grid":[[true],[]]}`, nil},
		{"fixed length short", `{"three":[1,2]}`, []string{`three: expected array of exactly 3 items, got 2`}},
		{"fixed length long: extra items are not read", `{"three":[1,2,3,"x"]}`, []string{`three: expected array of exactly 3 items, got 4`}},
		{"fixed length items", `{"three":[1,"x",3]}`, []string{`three[1]: expected integer, got "x"`}},
		{"max", `{"few":["a","b","c"]}`, []string{`few: expected at most 2 items, got 3`}},
		{"item checks", `{"tags":[""]}`, []string{`tags[0]: expected string of at least 1 character, got ""`}},
		{"unique", `{"tags":["a","b","a","b"]}`, []string{`tags: expected array of unique items, got repeated item "a"`}},
		{"unique numbers compare by value", `{"nums":[1,1.0]}`, []string{`nums: expected array of unique items, got repeated item 1`}},
		{"unique zero", `{"nums":[0,-0.0]}`, []string{`nums: expected array of unique items, got repeated item -0`}},
		{"no repeat reported beside other problems", `{"tags":[1,"a","a"],"three":[1,1,1,1]}`, []string{
			`tags[0]: expected string, got 1`,
			`three: expected array of exactly 3 items, got 4`}},
		{"tuple", `{"pair":[1,"a"]}`, []string{
			`pair[0]: expected string, got 1`,
			`pair[1]: expected integer, got "a"`}},
		{"tuple too long", `{"pair":["a",1,true]}`, []string{`pair[2]: expected no value, got true`}},
		{"map values", `{"labels":{"a":1,"b c":"x"}}`, []string{`labels.a: expected string, got 1`}},
		{"map key path quoting", `{"labels":{"b c":2}}`, []string{`labels["b c"]: expected string, got 2`}},
		{"map size", `{"labels":{"a":"1","b":"2","c":"3"}}`, []string{`labels: expected at most 2 entries, got 3`}},
		{"nested arrays", `{"grid":[[true,1]]}`, []string{`grid[0][1]: expected boolean, got 1`}},
	})
}

func TestValidateRefsAndNullables(t *testing.T) {
	runCases(t, `{
		"type":"object",
		"properties":{
			"root":  {"$ref":"#/$defs/Node","description":"annotations beside $ref are fine"},
			"maybe": {"anyOf":[{"type":"null"},{"$ref":"#/$defs/Node"}]},
			"typed": {"type":["integer","null"]},
			"old":   {"type":"string","nullable":true},
			"self":  {"$ref":"#/properties/typed"}
		},
		"required":["root"],
		"additionalProperties":false,
		"$defs":{
			"Node":{
				"type":"object",
				"properties":{
					"label":{"type":"string"},
					"children":{"type":"array","items":{"anyOf":[{"$ref":"#/$defs/Node"},{"type":"null"}]}}
				},
				"required":["label"],
				"additionalProperties":false
			}
		}
	}`, []validateCase{
		{"valid", `{"root":{"label":"a","children":[{"label":"b","children":[null,{"label":"c"}]}]},"maybe":null,"typed":null,"old":null,"self":null}`, nil},
		{"deep problem", `{"root":{"label":"a","children":[{"label":"b","children":[{"lable":"x"}]}]}}`, []string{
			`root.children[0].children[0].lable: unknown field (allowed: label, children)`,
			`root.children[0].children[0].label: missing required field (expected string)`}},
		{"missing ref target words", `{}`, []string{`root: missing required field (expected object)`}},
		{"nullable ref", `{"root":{"label":"a"},"maybe":{"label":1}}`, []string{`maybe.label: expected string, got 1`}},
		{"type array with null", `{"root":{"label":"a"},"typed":"x","old":1,"self":1.5}`, []string{
			`typed: expected integer, got "x"`,
			`old: expected string, got 1`,
			`self: expected integer, got 1.5`}},
	})
}

func TestValidateInferredPython(t *testing.T) {
	schema := `{"type":"object","x-atp-inferred":true,"properties":{"query":{},"limit":{}},"required":["query"]}`
	runCases(t, schema, []validateCase{
		{"valid", `{"query":"x","limit":5}`, nil},
		{"values are not checked", `{"query":{"any":[1,true,null]},"limit":"lots"}`, nil},
		{"repeated name is fine for json.loads", `{"query":"x","query":"y"}`, nil},
		{"missing", `{"limit":5}`, []string{`query: missing required field`}},
		{"unknown", `{"query":"x","qeury":"y"}`, []string{`qeury: unknown field (allowed: query, limit)`}},
		{"not an object", `"x"`, []string{`params: expected object, got "x"`}},
		{"syntax still checked", `{"query":tru}`, []string{`query: invalid JSON: invalid character '}' in literal true (expecting 'e') at offset 12`}},
	})
	t.Run("typed properties", func(t *testing.T) {
		// provider.InferSchema gives every name {"type":"string"}: a guess
		// for the LLM, not a type the tool checks.
		runCases(t, `{"type":"object","properties":{"query":{"type":"string"}},"required":["query"],"x-atp-inferred":true}`, []validateCase{
			{"any value", `{"query":[1]}`, nil},
			{"missing says no type", `{}`, []string{`query: missing required field`}},
		})
	})
	t.Run("kwargs", func(t *testing.T) {
		runCases(t, `{"type":"object","x-atp-inferred":true,"properties":{"query":{}},"required":["query"],"additionalProperties":true}`, []validateCase{
			{"extra names go to **kwargs", `{"query":"x","other":1}`, nil},
		})
	})
	t.Run("no properties", func(t *testing.T) {
		runCases(t, `{"type":"object","x-atp-inferred":true}`, []validateCase{
			{"empty", `{}`, nil},
			{"unknown", `{"a":1}`, []string{`a: unknown field (no fields are allowed)`}},
		})
	})
}

func TestValidateOther(t *testing.T) {
	t.Run("true schema", func(t *testing.T) {
		runCases(t, `true`, []validateCase{
			{"anything that is JSON", `[1,{"a":null}]`, nil},
			{"syntax", `[1,]`, []string{`[1]: invalid JSON: invalid character ']' looking for a value at offset 3`}},
		})
	})
	t.Run("false schema", func(t *testing.T) {
		runCases(t, `{"type":"object","properties":{"never":false}}`, []validateCase{
			{"absent", `{}`, nil},
			{"present", `{"never":{"a":1}}`, []string{`never: expected no value, got object`}},
		})
	})
	t.Run("enum without type", func(t *testing.T) {
		runCases(t, `{"type":"object","properties":{"color":{"enum":["red","green",null]},"mixed":{"enum":[1,"a",{"b":[1]}]}}}`, []validateCase{
			{"valid", `{"color":null,"mixed":{"b":[1.0]}}`, nil},
			{"valid string", `{"color":"red","mixed":"a"}`, nil},
			{"string enum", `{"color":"blue"}`, []string{`color: expected one of "red", "green", got "blue"`}},
			{"not a string", `{"color":1}`, []string{`color: expected string, got 1`}},
			{"mixed", `{"mixed":{"b":[2]}}`, []string{`mixed: expected one of 1, "a", {"b":[1]}, got object`}},
			{"mixed number", `{"mixed":1.5}`, []string{`mixed: expected one of 1, "a", {"b":[1]}, got 1.5`}},
		})
	})
	t.Run("general anyOf is not evaluated", func(t *testing.T) {
		runCases(t, `{"type":"object","properties":{"v":{"anyOf":[{"type":"string"},{"type":"integer"}]},"w":{"type":["string","integer"]}}}`, []validateCase{
			{"anything goes", `{"v":[true],"w":{}}`, nil},
		})
	})
	t.Run("required not in properties", func(t *testing.T) {
		runCases(t, `{"type":"object","properties":{"a":{"type":"string"}},"required":["b","a"]}`, []validateCase{
			{"present", `{"a":"x","b":1}`, nil},
			{"missing", `{}`, []string{
				`a: missing required field (expected string)`,
				`b: missing required field (expected any value)`}},
		})
	})
	t.Run("min properties", func(t *testing.T) {
		runCases(t, `{"type":"object","minProperties":1}`, []validateCase{
			{"one", `{"a":1}`, nil},
			{"none", `{}`, []string{`params: expected at least 1 entry, got 0`}},
		})
	})
}

func TestValidateManyProperties(t *testing.T) {
	// Over 64 properties, seen fields are tracked without the bit set.
	var props, req []string
	for i := range 70 {
		props = append(props, fmt.Sprintf(`"p%d":{"type":"integer"}`, i))
		req = append(req, fmt.Sprintf(`"p%d"`, i))
	}
	schema := `{"type":"object","properties":{` + strings.Join(props, ",") + `},"required":[` + strings.Join(req[65:], ",") + `]}`
	var params []string
	for i := range 66 {
		params = append(params, fmt.Sprintf(`"p%d":%d`, i, i))
	}
	runCases(t, schema, []validateCase{
		{"dup and missing", `{` + strings.Join(params, ",") + `,"p65":"x","p69":1}`, []string{
			`p65: duplicate field`,
			`p66: missing required field (expected integer)`,
			`p67: missing required field (expected integer)`,
			`p68: missing required field (expected integer)`}},
	})
}

func TestValidateTooManyProblems(t *testing.T) {
	v, err := Compile(json.RawMessage(`{"type":"array","items":{"type":"string"}}`))
	if err != nil {
		t.Fatal(err)
	}
	got := v.Validate([]byte("[" + strings.Repeat("1,", 99) + "1]"))
	if len(got) != 51 || got[50].Message != "too many problems; the first 50 are shown" {
		t.Fatalf("got %d problems, last %v", len(got), got[len(got)-1])
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		schema, want string
	}{
		{`{`, `schema at root: not valid JSON`},
		{`[]`, `schema at root: expected a schema (an object or a boolean), got array`},
		{`{"type":"strin"}`, `schema at root: type: unknown type "strin" (expected object, array, string, integer, number, boolean or null)`},
		{`{"type":5}`, `schema at root: type: expected a type name or an array of them: expected an array, got number`},
		{`{"properties":{"a":{"pattern":"(?<=a)b"}}}`, "schema at /properties/a: pattern: Go cannot compile \"(?<=a)b\": error parsing regexp: invalid named capture: `(?<=a)b`"},
		{`{"properties":{"a":{"minLength":-1}}}`, `schema at /properties/a: minLength: expected a non-negative integer, got -1`},
		{`{"properties":{"a":{"maxItems":1.5}}}`, `schema at /properties/a: maxItems: expected a non-negative integer, got 1.5`},
		{`{"properties":{"a":{"minimum":"1"}}}`, `schema at /properties/a: minimum: expected a number, got string`},
		{`{"properties":{"a":{"multipleOf":0}}}`, `schema at /properties/a: multipleOf: expected a number above 0, got 0`},
		{`{"properties":{"a":{"$ref":"other.json#/x"}}}`, `schema at /properties/a: $ref: only local references (#/...) are supported, got "other.json#/x"`},
		{`{"properties":{"a":{"$ref":"#/$defs/Nope"}}}`, `schema at /properties/a: $ref: cannot resolve "#/$defs/Nope": no "$defs"`},
		{`{"properties":{"a":{"$ref":"#anchor"}}}`, `schema at /properties/a: $ref: anchors are not supported, got "#anchor"`},
		{`{"$defs":{"A":{"$ref":"#/$defs/B"},"B":{"$ref":"#/$defs/A"}}}`, `schema at /$defs/A: $ref: the reference leads back to itself`},
		{`{"$defs":{"A":{"type":"string","pattern":"["}}}`, "schema at /$defs/A: pattern: Go cannot compile \"[\": error parsing regexp: missing closing ]: `[`"},
		{`{"properties":{"a":{"type":"string","type":"integer"}}}`, `schema at /properties/a: key "type" appears twice`},
		{`{"properties":[]}`, `schema at root: properties: expected an object, got array`},
		{`{"required":"a"}`, `schema at root: required: expected an array, got string`},
		{`{"type":"object","patternProperties":{"^x":{}},"additionalProperties":false}`, `schema at root: patternProperties: not supported together with additionalProperties`},
		{`{"type":"object","required":["a"],"additionalProperties":false}`, `schema at root: required: "a" is required but not in properties, and additionalProperties is false: no value is valid`},
		{`{"items":{"uniqueItems":"yes"}}`, `schema at /items: uniqueItems: expected true or false, got string`},
		{`{"x-atp-inferred":"yes"}`, `schema at root: x-atp-inferred: expected true or false, got string`},
	} {
		_, err := Compile(json.RawMessage(tc.schema))
		if err == nil || err.Error() != tc.want {
			t.Errorf("Compile(%s)\n got: %v\nwant: %s", tc.schema, err, tc.want)
		}
	}
}

func TestNotes(t *testing.T) {
	v, err := Compile(json.RawMessage(`{
		"type":"object",
		"properties":{
			"a":{"oneOf":[{"type":"string"}]},
			"b":{"$ref":"#/$defs/B","minimum":1},
			"c":{"type":"array","items":{"type":"object"},"uniqueItems":true},
			"d":{"type":["string","integer"]},
			"e":{"discriminator":"x"},
			"f":{"properties":{"x":{}},"minLength":1},
			"g":{"type":"object","enum":[{"a":1}]}
		},
		"$defs":{"B":{"type":"integer"}}
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`discriminator at /properties/e: unknown keyword, ignored`,
		`enum at /properties/g: an enum of objects or arrays is not evaluated`,
		`minLength at /properties/f: the schema has no single type, so this keyword is not evaluated`,
		`minimum at /properties/b: keywords beside $ref are not evaluated`,
		`oneOf at /properties/a: general oneOf is not evaluated`,
		`properties at /properties/f: the schema has no single type, so this keyword is not evaluated`,
		`type at /properties/d: a value of several types is not type-checked`,
		`uniqueItems at /properties/c: only items that are strings, numbers or booleans (not null) are compared`,
	}
	if got := v.Notes(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Notes()\n got: %q\nwant: %q", got, want)
	}
}

// A Validator is shared by every call to its tool.
func TestValidateConcurrent(t *testing.T) {
	v, err := Compile(json.RawMessage(weatherSchema))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				params := fmt.Sprintf(`{"location":{"city":"c%d"},"days":%d}`, g, i)
				bad := fmt.Sprintf(`{"location":{"city":%d},"days":3}`, i)
				if ps := v.Validate([]byte(params)); ps != nil {
					errs <- fmt.Sprintf("%s: %v", params, ps)
					return
				}
				want := fmt.Sprintf("location.city: expected string, got %d", i)
				if ps := problemStrings(v.Validate([]byte(bad))); len(ps) != 1 || ps[0] != want {
					errs <- fmt.Sprintf("%s: %v", bad, ps)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// FuzzCompile feeds schemas from toolkits (which the server does not trust
// to be well formed) to Compile and the result to Validate: no panic, and
// the same schema always compiles to the same verdict and notes.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		weatherSchema, `true`, `false`, `{}`,
		`{"type":"object","x-atp-inferred":true,"properties":{"q":{}},"required":["q"]}`,
		`{"$defs":{"N":{"type":"object","properties":{"c":{"type":"array","items":{"$ref":"#/$defs/N"}}}}},"$ref":"#/$defs/N"}`,
		`{"type":"array","prefixItems":[{"const":1}],"items":false,"uniqueItems":true,"minItems":1}`,
		`{"type":["integer","null"],"minimum":-128,"maximum":127,"multipleOf":3,"enum":[3,6,null]}`,
		`{"type":"object","additionalProperties":{"type":"string","pattern":"^a"},"propertyNames":{"enum":["a"]}}`,
		`{"anyOf":[{"type":"string","format":"date-time"},{"type":"null"}]}`,
	} {
		f.Add(s, `{"q":1,"c":[{"c":[]}],"a":"ab"}`)
	}
	f.Fuzz(func(t *testing.T, schema, params string) {
		v, err := Compile(json.RawMessage(schema))
		v2, err2 := Compile(json.RawMessage(schema))
		if fmt.Sprint(err) != fmt.Sprint(err2) {
			t.Fatalf("Compile(%s) is not deterministic: %v, then %v", schema, err, err2)
		}
		if err != nil {
			return
		}
		if strings.Join(v.Notes(), "\n") != strings.Join(v2.Notes(), "\n") {
			t.Fatalf("Compile(%s): notes differ between runs", schema)
		}
		ps := v.Validate([]byte(params))
		if fmt.Sprint(ps) != fmt.Sprint(v2.Validate([]byte(params))) {
			t.Fatalf("Validate(%s) against %s is not deterministic", params, schema)
		}
	})
}
