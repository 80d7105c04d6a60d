// Package validatorcases holds the cases that keep the TypeScript
// validator's words identical to the Go validator's: each case is a schema
// and params, and the problems the Go validator (internal/schemavalidate,
// which the server uses and which words problems as the generated decoders
// do) reports for them. This test writes them to testdata/cases.json with
// ATP_UPDATE=1 and otherwise checks that the file is what the Go validator
// says today; the Node tests read the file and expect the same problems,
// word for word, from the TypeScript validator.
package validatorcases

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/atpgo/atp/internal/schemavalidate"
)

type schemaCases struct {
	Name   string   `json:"name"`
	Schema string   `json:"schema"`
	Params []string `json:"params"`
}

// Case is one line of the file: params against a schema, and what the Go
// validator says.
type Case struct {
	Name     string   `json:"name"`
	Schema   string   `json:"schema"`
	Params   string   `json:"params"`
	Problems []string `json:"problems"`
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
}

func TestCasesFile(t *testing.T) {
	var cases []Case
	for _, sc := range all {
		v, err := schemavalidate.Compile(json.RawMessage(sc.Schema))
		if err != nil {
			t.Fatalf("%s: Compile: %v", sc.Name, err)
		}
		for _, p := range sc.Params {
			problems := []string{}
			for _, pr := range v.Validate([]byte(p)) {
				problems = append(problems, pr.String())
			}
			cases = append(cases, Case{Name: sc.Name, Schema: sc.Schema, Params: p, Problems: problems})
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(cases); err != nil {
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
