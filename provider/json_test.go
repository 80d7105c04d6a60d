package provider

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/jsontree"
)

func TestTreeRoundTripKeepsOrderAndText(t *testing.T) {
	in := `{ "z": 1, "a": [true, false, null, -1.5e3, 12345678901234567890],
	  "m": {"b": "x\u00e9\n\"q\" \\ \/", "a": {}}, "e": [] , "s": "<b> & </b>"}`
	v, err := parseTree([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	got := string(encodeTree(v))
	want := `{"z":1,"a":[true,false,null,-1.5e3,12345678901234567890],"m":{"b":"xé\n\"q\" \\ /","a":{}},"e":[],"s":"<b> & </b>"}`
	if got != want {
		t.Errorf("\n got: %s\nwant: %s", got, want)
	}
	// What encoding/json reads back is the same value.
	var a, b any
	if err := json.Unmarshal([]byte(in), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(got), &b); err != nil {
		t.Fatal(err)
	}
	if ja, _ := json.Marshal(a); string(ja) != string(mustMarshal(t, b)) {
		t.Errorf("values differ: %s vs %s", ja, mustMarshal(t, b))
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestAppendStringEscapes(t *testing.T) {
	for in, want := range map[string]string{
		"plain":         `"plain"`,
		"tab\tcr\r\x01": `"tab\tcr\r\u0001"`,
		"line\u2028sep": `"line\u2028sep"`,
		"para\u2029sep": `"para\u2029sep"`,
		"bad\xffbyte":   `"bad\ufffdbyte"`,
		"<html> & 'x'":  `"<html> & 'x'"`,
		"quote\"back\\": `"quote\"back\\"`,
		"émoji 🙂 done":  `"émoji 🙂 done"`,
	} {
		if got := string(encodeTree(in)); got != want {
			t.Errorf("%q: got %s, want %s", in, got, want)
		}
		var back string
		if err := json.Unmarshal(encodeTree(in), &back); err != nil {
			t.Errorf("%q: output is not valid JSON: %v", in, err)
		}
	}
}

func TestParseTreeErrors(t *testing.T) {
	for in, want := range map[string]string{
		`{"a":{"b":1,"b":2}}`:    `/a: duplicate key "b"`,
		`{"a/b~":{"x":1,"x":1}}`: `/a~1b~0: duplicate key "x"`,
		`{"a":`:                  "unexpected end of JSON input",
		`{"a" 1}`:                "invalid character '1'",
		`{} x`:                   "invalid character 'x' after top-level value",
	} {
		_, err := parseTree([]byte(in))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", in, err, want)
		}
	}
}

func TestPointers(t *testing.T) {
	doc := mustTree(t, []byte(`{"$defs":{"a/b":{"type":"string"},"c~d":{"type":"integer"},"e f":{"type":"boolean"}},"arr":[{"k":1}]}`))
	for ref, want := range map[string]string{
		"#/$defs/a~1b":  `{"type":"string"}`,
		"#/$defs/c~0d":  `{"type":"integer"}`,
		"#/$defs/e%20f": `{"type":"boolean"}`,
		"#/arr/0":       `{"k":1}`,
	} {
		_, v, err := resolveRef(doc, ref)
		if err != nil || string(encodeTree(v)) != want {
			t.Errorf("%s: %s, %v; want %s", ref, encodeTree(v), err, want)
		}
	}
	for _, ref := range []string{"#/arr/1", "#/arr/x", "#/$defs/nope", "#/$defs/a~1b/type/deeper"} {
		if _, _, err := resolveRef(doc, ref); err == nil {
			t.Errorf("%s resolved", ref)
		}
	}
	if got := jsontree.EscapePointer("a/b~c"); got != "a~1b~0c" || jsontree.UnescapePointer(got) != "a/b~c" {
		t.Errorf("escape round trip: %s", got)
	}
}

func TestEqualJSON(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		eq   bool
	}{
		{`{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, true},
		{`1`, `1.0`, true},
		{`1e2`, `100`, true},
		{`1`, `2`, false},
		{`[1,2]`, `[2,1]`, false},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`{"a":1}`, `{"b":1}`, false},
		{`"x"`, `"x"`, true},
		{`null`, `false`, false},
		{`[1]`, `{"0":1}`, false},
	} {
		a, b := mustTree(t, []byte(tc.a)), mustTree(t, []byte(tc.b))
		if equalJSON(a, b) != tc.eq || equalJSON(b, a) != tc.eq {
			t.Errorf("equalJSON(%s, %s) != %v", tc.a, tc.b, tc.eq)
		}
	}
}

func TestMergeAllOfRules(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"properties and required are unions; the outer description wins",
			`{"type":"object","properties":{"p":{"description":"outer","allOf":[
				{"type":"object","description":"inner","properties":{"a":{"type":"string"}},"required":["a"]},
				{"properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a","b"]}]}}}`,
			`{"type":"object","properties":{"p":{"description":"outer","type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a","b"]}}}`},
		{"integer and number give integer",
			`{"type":"object","properties":{"p":{"allOf":[{"type":"number","minimum":0},{"type":"integer"}]}}}`,
			`{"type":"object","properties":{"p":{"type":"integer","minimum":0}}}`},
		{"a non-recursive $ref branch is resolved",
			`{"type":"object","properties":{"p":{"allOf":[{"$ref":"#/$defs/B"},{"required":["x"]}]}},"$defs":{"B":{"type":"object","properties":{"x":{"type":"string"}}}}}`,
			`{"type":"object","properties":{"p":{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}}}`},
		{"a true branch adds nothing; nested allOf is flattened",
			`{"type":"object","properties":{"p":{"allOf":[true,{"allOf":[{"type":"string"},{"maxLength":3}]}]}}}`,
			`{"type":"object","properties":{"p":{"type":"string","maxLength":3}}}`},
		{"a conflicting property keeps allOf (as a hint)",
			`{"type":"object","properties":{"p":{"allOf":[{"properties":{"a":{"type":"string"}}},{"properties":{"a":{"type":"integer"}}}]}}}`,
			`{"type":"object","properties":{"p":{"allOf":[{"type":"object","properties":{"a":{"type":"string"}}},{"type":"object","properties":{"a":{"type":"integer"}}}]}}}`},
		{"a false branch keeps allOf",
			`{"type":"object","properties":{"p":{"allOf":[false,{"type":"string"}]}}}`,
			`{"type":"object","properties":{"p":{"allOf":[false,{"type":"string"}]}}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := ConvertSchema(Mistral, json.RawMessage(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			if want := compact(t, tc.want); string(out) != want {
				t.Errorf("\n got: %s\nwant: %s", out, want)
			}
		})
	}
}
