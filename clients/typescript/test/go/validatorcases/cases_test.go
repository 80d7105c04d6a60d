// Package validatorcases holds the cases that keep the TypeScript
// validator's words identical to the Go validator's: each schema with what
// the Go validator (internal/schemavalidate, which the server uses and
// which words problems as the generated decoders do) says of it (Compile's
// error, or its notes) and params checked against it with the problems
// reported for them. This test writes them to testdata/cases.json with
// ATP_UPDATE=1 and otherwise checks that the file is what the Go validator
// says today; the Node tests read the file and expect the same words from
// the TypeScript validator.
package validatorcases

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/atpgo/atp/internal/schemavalidate"
)

type schemaCases struct {
	Name   string
	Schema string
	Params []string
}

// Schema is one schema of the file and what the Go validator says of it.
type Schema struct {
	Name   string `json:"name"`
	Schema string `json:"schema"`
	// Error is Compile's error for a schema it refuses.
	Error string `json:"error,omitempty"`
	// Notes are the keywords Compile accepts and does not evaluate.
	Notes []string `json:"notes,omitempty"`
	Cases []Case   `json:"cases,omitempty"`
}

// Case is params checked against a schema, and the problems reported.
type Case struct {
	Params string `json:"params"`
	// ParamsBytes holds params that are not valid UTF-8, which a JSON
	// string cannot carry (base64); Params then shows them with U+FFFD.
	ParamsBytes []byte   `json:"params_bytes,omitempty"`
	Problems    []string `json:"problems"`
}

const weather = `{
  "type": "object",
  "properties": {
    "location": {"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
      "additionalProperties": false, "required": ["city"]},
    "days": {"type": "integer", "minimum": 1, "maximum": 14},
    "units": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3, "uniqueItems": true},
    "since": {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "null"}]}
  },
  "additionalProperties": false,
  "required": ["location", "days"]
}`

var all = []schemaCases{
	{"weather", weather, []string{
		`{"location":{"city":"Paris"},"days":3}`,
		`{"location":{"city":"Paris","country":"FR"},"days":3,"units":"celsius","tags":["a","b"],"since":"2026-11-21T05:05:00Z"}`,
		`{"location":{"city":"Paris"},"days":2.0}`,
		`{"location":{"city":"Paris"},"days":1e1}`,
		" \n{ \"location\" : { \"city\" : \"Paris\" } , \"days\" : 3 }\t",
		`{"loc\u0061tion":{"city":"Paris"},"days":3}`,
		`{"location":{"city":"Paris"},"days":"three"}`,
		`{"location":{"city":"Paris"},"days":2.5}`,
		`{"location":{"city":"Paris"},"days":9223372036854775808}`,
		`{"location":{"city":"Paris"},"days":0}`,
		`{"location":{"city":"Paris"},"days":15}`,
		`{}`, ``, `null`, `[]`, `"x"`, `42`,
		`{"location":{"city":"Paris"},"dayz":4}`,
		`{"Location":{"city":"Paris"},"days":3}`,
		`{"location":{"city":"Paris"},"days":3,"units":"kelvin"}`,
		`{"location":null,"days":3}`,
		`{"location":{"city":"Paris"},"days":3,"since":"yesterday"}`,
		`{"location":{"city":"Paris"},"days":3,"since":"2026-02-30T00:00:00Z"}`,
		`{"location":{"city":42,"zip":"75001"},"days":3}`,
		`{"location":{"country":"FR"},"days":3}`,
		`{"location":{"city":"Paris"},"days":3,"tags":["a",2,null]}`,
		`{"location":{"city":"Paris"},"days":3,"tags":"a"}`,
		`{"location":{"city":"Paris"},"days":3,"tags":["a","b","a"]}`,
		`{"location":{"city":"Paris"},"days":3,"tags":["a","b","c","d"]}`,
		`{"location":{"city":"Paris"},"days":3,"days":4}`,
		`{"location":{"city":"Paris","city":"Lyon"},"days":3}`,
		`{"location":{"city":"Paris"},"days":3,}`,
		`{"location":{"city":"Paris"},"days":3} x`,
		`{"location":{"city":"Paris"},"days":01}`,
		`{"location":{"city":"Paris"},"days":3`,
		`{"location":{"city":"Par\is"},"days":3}`,
		`{"location":{"city":"Paris"},"days":-}`,
		`{"location":{"city":"Paris"},"days":1.}`,
		`{"location":{"city":"Paris"},"days":1e}`,
		`{"location":{"city":"Paris"},"days":tru}`,
		`{"location":{"city":"Pa` + "\x01" + `ris"},"days":3}`,
		`{"location":{"city":"Paris"},"dayz":"` + "ééééééééééééééééééééééééééééééééééééééééééé" + `"}`,
		`{"a":1,"b":2,"c":3,"location":{"city":"x"},"days":"many"}`,
		`{"location":{"city":"Paris"},"days":3,"units":"` + "a\"b\\c\nd\te\u0001" + `"}`,
		`{"location":{"city":"Paris"},"days":1e400}`,
		`{"location":{"city":"Paris"},"days":-9223372036854775809}`,
		`{"location":{"city":"Paris"},"days":{"n":3}}`,
		`{"location":{"city":"Paris"},"days":true}`,
		`{"location":{"city":"Paris"},"days":3,"since":"2026-11-21 05:05:00Z"}`,
		`{"location":{"city":"Paris"},"days":3,"since":"2026-11-21T05:05:00.123+01:00"}`,
		`{"location":{"city":"Paris"},"days":3,"since":null}`,
		`{"location":{"city":"Paris"},"days":3,"since":5}`,
	}},
	{"sized integers", `{"type":"object","properties":{
		"i8":{"type":"integer","minimum":-128,"maximum":127},
		"u8":{"type":"integer","minimum":0,"maximum":255},
		"u":{"type":"integer","minimum":0},
		"i32":{"type":"integer","minimum":-2147483648,"maximum":100},
		"ex":{"type":"integer","exclusiveMinimum":0,"exclusiveMaximum":10},
		"fr":{"type":"integer","minimum":0.5},
		"m":{"type":"integer","multipleOf":5},
		"mf":{"type":"integer","multipleOf":0.5},
		"e":{"type":"integer","enum":[1,2,3]}
	},"additionalProperties":false}`, []string{
		`{"i8":127,"u8":255,"u":18446744073709551615,"i32":-5,"ex":5,"fr":1,"m":10,"mf":3,"e":2}`,
		`{"i8":300}`, `{"i8":-129}`, `{"u8":-1}`, `{"u8":256}`, `{"u":-1}`, `{"u":18446744073709551616}`,
		`{"i32":101}`, `{"i32":-2147483649}`, `{"ex":0}`, `{"ex":10}`, `{"fr":0}`, `{"m":7}`, `{"m":-15}`,
		`{"e":4}`, `{"e":2.0}`, `{"e":"2"}`, `{"i8":1.5,"u8":2.5e0}`, `{"i8":1e2}`, `{"i8":1e3}`,
		`{"i8":1.0e-1}`, `{"u":123456789012345678901234567890}`,
	}},
	{"numbers", `{"type":"object","properties":{
		"price":{"type":"number","minimum":0,"exclusiveMaximum":1000000},
		"ratio":{"type":"number","exclusiveMinimum":0.5,"maximum":2.5},
		"cents":{"type":"number","multipleOf":0.01},
		"pick":{"type":"number","enum":[1.5,2,1e-7]}
	}}`, []string{
		`{"price":10.5,"ratio":1,"cents":0.29,"pick":1.5}`,
		`{"price":-0.000001}`, `{"price":1000000}`, `{"price":12345678901}`, `{"ratio":0.5}`, `{"ratio":2.6}`,
		`{"cents":0.291}`, `{"pick":3}`, `{"pick":2.0}`, `{"pick":1e-8}`, `{"price":"12"}`, `{"price":1e309}`,
		`{"price":-1e-7}`, `{"ratio":123456789}`, `{"ratio":1e21}`, `{"price":-0.0001}`, `{"ratio":0.000123}`,
		`{"cents":1e-5}`,
	}},
	{"strings", `{"type":"object","properties":{
		"code":{"type":"string","minLength":2,"maxLength":4,"pattern":"^[A-Z]+$"},
		"mail":{"type":"string","format":"email"},
		"host":{"type":"string","format":"hostname"},
		"v4":{"type":"string","format":"ipv4"},
		"v6":{"type":"string","format":"ipv6"},
		"site":{"type":"string","format":"uri"},
		"id":{"type":"string","format":"uuid"},
		"day":{"type":"string","format":"date"},
		"at":{"type":"string","format":"time"},
		"when":{"type":"string","format":"date-time","minLength":1},
		"blob":{"type":"string","contentEncoding":"base64"},
		"wait":{"type":"string","pattern":"^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"},
		"other":{"type":"string","format":"color"}
	},"additionalProperties":false}`, []string{
		`{"code":"AB","mail":"a.b@example.com","host":"example.com","v4":"192.0.2.1","v6":"2001:db8::1","site":"https://example.com/x?y#z","id":"123e4567-e89b-12d3-a456-426614174000","day":"2024-02-29","at":"23:59:60Z","when":"2026-01-01T00:00:00Z","blob":"aGVsbG8=","wait":"1h30m","other":"red"}`,
		`{"code":"A"}`, `{"code":"ABCDE"}`, `{"code":"ab"}`, `{"code":"ÄÖÜß€"}`, `{"code":"` + "😀😀😀😀😀" + `"}`,
		`{"mail":"not-an-email"}`, `{"mail":"a@b..c"}`, `{"mail":"\"quoted\"@example.com"}`, `{"mail":"a@[192.0.2.1]"}`, `{"mail":"a@[IPv6:::1]"}`,
		`{"host":"-bad.example"}`, `{"host":"a_b.example"}`, `{"host":"example.com."}`,
		`{"v4":"01.2.3.4"}`, `{"v4":"1.2.3"}`, `{"v4":"256.1.1.1"}`,
		`{"v6":"::ffff:192.0.2.1"}`, `{"v6":"1::2::3"}`, `{"v6":"fe80::1%eth0"}`, `{"v6":"1:2:3:4:5:6:7:8"}`, `{"v6":"12345::"}`, `{"v6":"::"}`,
		`{"site":"example.com"}`, `{"site":"mailto:a@b.c"}`, `{"site":"http://[::1]:80/"}`, `{"site":"http://a b"}`, `{"site":"http://x/%zz"}`, `{"site":"1http://x"}`, `{"site":":x"}`,
		`{"id":"123e4567e89b12d3a456426614174000"}`, `{"day":"2023-02-29"}`, `{"day":"2024-13-01"}`,
		`{"at":"12:00:60Z"}`, `{"at":"12:00:00"}`, `{"at":"12:00:00+25:00"}`, `{"at":"23:59:60+01:00"}`, `{"at":"00:59:60+01:00"}`,
		`{"when":"2026-01-01"}`, `{"when":"2026-01-01t00:00:00z"}`,
		`{"blob":"aGVsbG8"}`, `{"blob":"!!!!"}`, `{"blob":5}`,
		`{"wait":"90"}`, `{"wait":"1.5h"}`, `{"wait":"3d"}`, `{"wait":""}`,
		`{"code":"\ud800AB"}`, `{"code":"\ud83d\ude00"}`,
	}},
	{"time and duration", `{"type":"object","properties":{
		"at":{"type":"string","format":"date-time"},
		"wait":{"type":"string","pattern":"^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"}
	}}`, []string{
		`{"at":"2026-11-21T05:05:00Z","wait":"90s"}`, `{"at":"2026-11-21T05:05:00.5-07:00","wait":"-1.5h"}`,
		`{"at":"yesterday"}`, `{"at":"2026-11-21T25:00:00Z"}`, `{"at":"2026-11-21T05:05:00"}`, `{"at":7}`,
		`{"wait":"1x"}`, `{"wait":"1h30"}`, `{"wait":"9999999999h"}`, `{"wait":".5s"}`, `{"wait":"0"}`, `{"wait":"+0"}`, `{"wait":"1µs"}`,
	}},
	{"arrays", `{"type":"object","properties":{
		"pair":{"type":"array","items":{"type":"integer"},"minItems":2,"maxItems":2},
		"few":{"type":"array","items":{"type":"number"},"minItems":1,"maxItems":3,"uniqueItems":true},
		"tuple":{"type":"array","prefixItems":[{"type":"string"},{"type":"boolean"}],"items":false},
		"flags":{"type":"array","items":{"type":"boolean"},"uniqueItems":true},
		"any":{"type":"array"}
	}}`, []string{
		`{"pair":[1,2],"few":[1.5],"tuple":["a",true],"flags":[true,false],"any":[1,"a",null]}`,
		`{"pair":[1]}`, `{"pair":[1,2,3]}`, `{"pair":[1,"x",3]}`, `{"few":[]}`, `{"few":[1,2,3,4]}`, `{"few":[1,2,1.0]}`,
		`{"few":[0,-0]}`, `{"few":["a","a"]}`, `{"tuple":["a",true,3]}`, `{"tuple":[1,"x"]}`, `{"flags":[true,true]}`, `{"any":{}}`,
	}},
	{"maps, enums and nulls", `{"type":"object","properties":{
		"scores":{"type":"object","additionalProperties":{"type":"integer"},"propertyNames":{"enum":["a","b"]},"maxProperties":2,"minProperties":1},
		"color":{"enum":["red","green",null]},
		"level":{"type":["integer","null"]},
		"ptr":{"anyOf":[{"$ref":"#/$defs/Point"},{"type":"null"}]},
		"mixed":{"enum":[1,"one",true,{"a":1}]},
		"fixed":{"const":"x"},
		"never":false,
		"opt":{"type":"string","nullable":true},
		"nul":{"type":"null"}
	},"required":["color"],"additionalProperties":false,"$defs":{"Point":{"type":"object","properties":{"x":{"type":"number"},"y":{"type":"number"}},"required":["x","y"],"additionalProperties":false}}}`, []string{
		`{"scores":{"a":1},"color":"red","level":null,"ptr":{"x":1,"y":2},"mixed":1,"fixed":"x","opt":null,"nul":null}`,
		`{"color":null}`, `{"color":"blue"}`, `{"color":1}`, `{"scores":{}}`, `{"scores":{"a":1,"b":2,"c":3}}`, `{"scores":{"a":1,"a":2}}`,
		`{"scores":{"a":"x"}}`, `{"color":"red","level":"x"}`, `{"color":"red","ptr":{"x":1}}`, `{"color":"red","ptr":{"x":1,"y":2,"z":3}}`,
		`{"color":"red","mixed":{"a":1.0}}`, `{"color":"red","mixed":2}`, `{"color":"red","fixed":"y"}`, `{"color":"red","never":1}`,
		`{"color":"red","opt":5}`, `{"color":"red","nul":0}`, `{"color":"red","mixed":"two"}`,
	}},
	{"recursive", `{"$defs":{"Node":{"type":"object","properties":{"name":{"type":"string"},"children":{"type":"array","items":{"$ref":"#/$defs/Node"}}},"required":["name"],"additionalProperties":false}},"$ref":"#/$defs/Node"}`, []string{
		`{"name":"root","children":[{"name":"a","children":[{"name":"b"}]}]}`,
		`{"name":"root","children":[{"name":"a","children":[{"nam":"b"}]}]}`,
		`{"children":[{}]}`,
	}},
	{"open object and odd keys", `{"type":"object","properties":{"x-y":{"type":"string"},"1":{"type":"integer"},"é":{"type":"boolean"}},"required":["x-y","1","é"]}`, []string{
		`{"x-y":"a","1":1,"é":true,"extra":[1,2]}`,
		`{}`, `{"x-y":1,"1":"a","é":"no"}`,
	}},
	{"no params", `{"type":"object","additionalProperties":false}`, []string{
		`{}`, ``, `{"a":1}`, `{"a":1,"b":2}`,
	}},
	{"inferred python", `{"type":"object","x-atp-inferred":true,"properties":{"query":{"type":"string"},"limit":{"type":"string"}},"required":["query"]}`, []string{
		`{"query":"a","limit":5}`, `{"query":"a","query":"b"}`, `{}`, `{"q":"a"}`,
	}},
	{"too many problems", `{"type":"object","properties":{"a":{"type":"array","items":{"type":"integer"}}}}`, []string{
		`{"a":["x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x","x"]}`,
	}},
	// JSON is UTF-8: a string or key that is not is a problem wherever it
	// is, in a value read or skipped; a key that is not is dropped, and
	// the value of a member that already has a problem (unknown,
	// duplicate) gets none of its own.
	{"invalid UTF-8", `{"type":"object","properties":{
		"s":{"type":"string"},
		"e":{"type":"string","enum":["a","b"]},
		"n":{"type":"integer"},
		"b":{"type":"string","contentEncoding":"base64"},
		"t":{"type":"string","format":"date-time"},
		"w":{"type":"string","pattern":"^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$"},
		"list":{"type":"array","items":{"type":"object","properties":{"x":{"type":"string","minLength":3}},"additionalProperties":false}},
		"m":{"type":"object","additionalProperties":{"type":"string"}},
		"mixed":{"enum":[1,"one",true]},
		"any":{},
		"obj":{"type":"object"}
	},"additionalProperties":false}`, []string{
		"{\"s\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}",
		"{\"s\":\"\xff\"}", "{\"s\":\"a\xc3\"}", "{\"s\":\"\xed\xa0\x80\"}", "{\"s\":\"\xf4\x90\x80\x80\"}",
		"{\"s\":\"\xe2\x82\"}", "{\"s\":\"\xc0\xaf\"}", "{\"s\":\"ok\\n\xfe\"}", "{\"s\":\"\xf8\x88\x80\x80\x80\"}",
		"{\"e\":\"\xff\"}", "{\"n\":\"\xff\"}", "{\"n\":\"a\xffb\",\"s\":7}",
		"{\"b\":\"\xff\"}", "{\"t\":\"2026-01-01T00:00:00Z\xff\"}", "{\"w\":\"1s\xff\"}",
		"{\"list\":[{\"x\":\"abc\"},{\"x\":\"\xff\"}]}", "{\"list\":[{\"x\":\"ab\",\"y\":\"\xff\"}]}",
		"{\"m\":{\"k\":\"\xff\",\"k\":\"\xff\"}}", "{\"m\":{\"k\xff\":\"v\"}}",
		"{\"mixed\":\"\xff\"}", "{\"any\":\"\xff\"}", "{\"any\":[\"ok\",{\"deep\":\"\xff\"}]}", "{\"obj\":{\"x\xff\":{\"y\":\"\xff\"}}}",
		"{\"nope\":\"\xff\"}", "{\"s\":\"a\",\"s\":\"\xff\"}", "{\"s\\u00e9\xff\":1,\"s\":\"ok\"}", "{\"\xff\":\"\xff\"}",
		"{\"s\":[\"\xff\"]}", "{\"s\":{\"k\":\"\xff\"}}", "{\"s\":\"\xff\",\"n\":\"three\"}",
		"{\"s\":\"\xff\",\"s\":1", "\"\xff\"",
	}},
	{"invalid UTF-8, open object", `{"type":"object","properties":{"a":{"type":"integer"}},"required":["a"]}`, []string{
		"{\"a\":1,\"z\":\"\xff\"}", "{\"a\xff\":1}", "{\"z\xff\":{\"y\xff\":[\"\xff\"]}}",
	}},
	// Past ten values, an enum is worded by its size: a long enum is never
	// echoed back on every call.
	{"long enums", `{"type":"object","properties":{
		"ten":{"type":"string","enum":["a","b","c","d","e","f","g","h","i","j"]},
		"eleven":{"type":"string","enum":["a","b","c","d","e","f","g","h","i","j","k"]},
		"ints":{"type":"integer","enum":[1,2,3,4,5,6,7,8,9,10,11,12]},
		"nums":{"type":"number","enum":[0.5,1.5,2.5,3.5,4.5,5.5,6.5,7.5,8.5,9.5,10.5]},
		"mixed":{"enum":[1,"one",true,2,"two",false,3,"three",4,"four",null,{"a":1}]},
		"dup":{"type":"string","enum":["a","b","c","d","e","f","g","h","i","j","a","b"]},
		"keys":{"type":"object","additionalProperties":{"type":"integer"},"propertyNames":{"enum":["k1","k2","k3","k4","k5","k6","k7","k8","k9","k10","k11"]}},
		"req":{"type":"object","properties":{"color":{"type":"string","enum":["c1","c2","c3","c4","c5","c6","c7","c8","c9","c10","c11","c12","c13"]},"n":{"type":"integer","enum":[1,2,3,4,5,6,7,8,9,10,11]}},"required":["color","n"]}
	},"additionalProperties":false}`, []string{
		`{"ten":"j","eleven":"k","ints":12,"nums":10.5,"mixed":"four","dup":"j","keys":{"k11":1},"req":{"color":"c13","n":11}}`,
		`{"ten":"z"}`, `{"eleven":"z"}`, `{"ints":13}`, `{"nums":11}`, `{"mixed":"five"}`, `{"mixed":{"a":2}}`, `{"dup":"z"}`,
		`{"keys":{"k12":1}}`, `{"req":{}}`, `{"eleven":"` + strings.Repeat("z", 60) + `"}`,
	}},
	// An unknown field's problem lists at most twenty allowed names.
	{"many properties", manyProps(25), []string{`{"p1":1}`, `{"p0":1}`, `{"p1":1,"zz":2}`}},
	{"twenty properties", manyProps(20), []string{`{"p0":1}`}},
	{"twenty-one properties", manyProps(21), []string{`{"p0":1}`}},
}

// manyProps is a closed object of n integer properties p1..pn.
func manyProps(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := 1; i <= n; i++ {
		if i > 1 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%d":{"type":"integer"}`, i)
	}
	b.WriteString(`},"additionalProperties":false}`)
	return b.String()
}

// bad are schemas Compile refuses, each with the keyword and JSON pointer
// of what it cannot interpret. An error quotes at most 300 bytes of the
// schema, and a pointer at most 200. (Patterns are left out: Go's RE2 and
// JavaScript's engine word their refusals differently.)
var bad = []schemaCases{
	{"not JSON", `{`, nil},
	{"not a schema", `[]`, nil},
	{"unknown type", `{"type":"strin"}`, nil},
	{"type not a name", `{"type":5}`, nil},
	{"no type names", `{"type":[]}`, nil},
	{"type name quoted as Go quotes it", `{"type":"a\u0001b\u00e9\u00a0\"c"}`, nil},
	{"negative count", `{"properties":{"a":{"minLength":-1}}}`, nil},
	{"fractional count", `{"properties":{"a":{"maxItems":1.5}}}`, nil},
	{"count not a number", `{"properties":{"a":{"minItems":"2"}}}`, nil},
	{"bound not a number", `{"properties":{"a":{"minimum":"1"}}}`, nil},
	{"zero multipleOf", `{"properties":{"a":{"multipleOf":0}}}`, nil},
	{"remote reference", `{"properties":{"a":{"$ref":"other.json#/x"}}}`, nil},
	{"unresolved reference", `{"properties":{"a":{"$ref":"#/$defs/Nope"}}}`, nil},
	{"reference into a string", `{"$defs":{"s":"x"},"properties":{"a":{"$ref":"#/$defs/s/y"}}}`, nil},
	{"reference past an array", `{"$defs":{"l":[{}]},"properties":{"a":{"$ref":"#/$defs/l/3"}}}`, nil},
	{"bad escape in a reference", `{"properties":{"a":{"$ref":"#/$defs/a%zz"}}}`, nil},
	{"anchor", `{"properties":{"a":{"$ref":"#anchor"}}}`, nil},
	{"reference loop", `{"$defs":{"A":{"$ref":"#/$defs/B"},"B":{"$ref":"#/$defs/A"}}}`, nil},
	{"reference loop, reported where the document first meets it", `{"$defs":{"b":{"$ref":"#/$defs/a"},"a":{"$ref":"#/$defs/b"}}}`, nil},
	{"self reference", `{"$ref":"#"}`, nil},
	{"repeated key", `{"properties":{"a":{"type":"string","type":"integer"}}}`, nil},
	{"properties not an object", `{"properties":[]}`, nil},
	{"required not an array", `{"required":"a"}`, nil},
	{"required name not a string", `{"required":[1]}`, nil},
	{"patternProperties with additionalProperties", `{"type":"object","patternProperties":{"^x":{}},"additionalProperties":false}`, nil},
	{"required but forbidden", `{"type":"object","required":["a"],"additionalProperties":false}`, nil},
	{"uniqueItems not a boolean", `{"items":{"uniqueItems":"yes"}}`, nil},
	{"x-atp-inferred not a boolean", `{"x-atp-inferred":"yes"}`, nil},
	{"nullable not a boolean", `{"type":"string","nullable":1}`, nil},
	{"anyOf not an array", `{"anyOf":{}}`, nil},
	{"$defs not an object", `{"$defs":[]}`, nil},
	{"prefixItems not an array", `{"prefixItems":{}}`, nil},
	{"enum not an array", `{"enum":"a"}`, nil},
	{"long unknown type, cut at 300 bytes", `{"type":"` + strings.Repeat("t", 400) + `"}`, nil},
	{"long reference, cut at 300 bytes", `{"$ref":"http://example.com/` + strings.Repeat("r", 400) + `"}`, nil},
	{"long repeated key, cut on a character boundary", `{"` + strings.Repeat("é", 200) + `":1,"` + strings.Repeat("é", 200) + `":2}`, nil},
	{"long required name, cut on a character boundary", `{"type":"object","required":["x` + strings.Repeat("€", 150) + `"],"additionalProperties":false}`, nil},
	{"long pointer, cut at 200 bytes", `{"properties":{"` + strings.Repeat("k", 250) + `":{"minLength":-1}}}`, nil},
	{"pointer tokens escaped", `{"properties":{"a/b~c":{"minLength":-1}}}`, nil},
}

// noted are schemas Compile accepts with keywords it does not evaluate.
var noted = []schemaCases{
	{"notes", `{"type":"object","properties":{
		"a":{"oneOf":[{"type":"string"},{"type":"integer"}]},
		"b":{"$ref":"#/$defs/B","description":"ok","minLength":1},
		"c":{"type":["string","integer"],"minLength":1},
		"d":{"type":"string","contentEncoding":"base32"},
		"e":{"type":"array","items":{"type":"object"},"uniqueItems":true},
		"f":{"type":"object","patternProperties":{"^x":{}}},
		"g":{"type":"object","propertyNames":{"pattern":"^x"}},
		"h":{"type":"array","additionalItems":false},
		"i":{"frobnicate":true},
		"j":{"anyOf":[{"$ref":"#/$defs/B"},{"type":"null"}],"maxLength":3},
		"k":{"type":"object","enum":[{"a":1}]},
		"a/b":{"not":{}}
	},"$defs":{"B":{"type":"string"}}}`, []string{`{"a":1,"b":"x"}`}},
	{"a hundred notes at most", manyNotes(120), nil},
}

// manyNotes is a schema with n properties whose one keyword is not
// evaluated.
func manyNotes(n int) string {
	var b strings.Builder
	b.WriteString(`{"type":"object","properties":{`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"p%03d":{"allOf":[]}`, i)
	}
	b.WriteString(`}}`)
	return b.String()
}

func TestCasesFile(t *testing.T) {
	var schemas []Schema
	for _, sc := range append(append(all, noted...), bad...) {
		s := Schema{Name: sc.Name, Schema: sc.Schema}
		v, err := schemavalidate.Compile(json.RawMessage(sc.Schema))
		if err != nil {
			if len(sc.Params) > 0 {
				t.Fatalf("%s: Compile: %v", sc.Name, err)
			}
			s.Error = err.Error()
			schemas = append(schemas, s)
			continue
		}
		s.Notes = v.Notes()
		for _, p := range sc.Params {
			c := Case{Params: p, Problems: []string{}}
			if !utf8.ValidString(p) {
				c.ParamsBytes = []byte(p)
			}
			for _, pr := range v.Validate([]byte(p)) {
				c.Problems = append(c.Problems, pr.String())
			}
			s.Cases = append(s.Cases, c)
		}
		schemas = append(schemas, s)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(schemas); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "cases.json")
	if os.Getenv("ATP_UPDATE") != "" {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with ATP_UPDATE=1 to write it)", err)
	}
	if !bytes.Equal(have, buf.Bytes()) {
		t.Errorf("%s is stale: the Go validator's words changed; run ATP_UPDATE=1 go test ./clients/typescript/test/go/validatorcases and check the Node tests", path)
	}
}
