package provider

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestDropNullOptionals(t *testing.T) {
	schema := `{"type":"object","properties":{
		"city":{"type":"string"},
		"unit":{"type":"string","enum":["c","f"]},
		"when":{"anyOf":[{"type":"string"},{"type":"null"}]},
		"must":{"type":"string"},
		"addr":{"anyOf":[{"$ref":"#/$defs/Addr"},{"type":"null"}]},
		"list":{"type":"array","items":{"$ref":"#/$defs/Addr"}},
		"free":{}},
		"required":["city","must"],
		"$defs":{"Addr":{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"string"}},"required":["street"]}}}`
	for _, tc := range []struct{ name, args, want string }{
		{"optional nulls go, nullable and required ones stay",
			`{"city":"Oslo","unit":null,"when":null,"must":null,"free":null}`,
			`{"city":"Oslo","when":null,"must":null,"free":null}`},
		{"nested through a nullable $ref and array items",
			`{"city":"Oslo","addr":{"street":"Main","zip":null},"list":[{"street":"A","zip":null},{"street":"B","zip":"1"}]}`,
			`{"city":"Oslo","addr":{"street":"Main"},"list":[{"street":"A"},{"street":"B","zip":"1"}]}`},
		{"null nullable object stays", `{"addr":null,"unit":"c"}`, `{"addr":null,"unit":"c"}`},
		{"unknown keys and numbers kept as they are", `{"x":null,"n":12345678901234567890,"city":"a"}`, `{"x":null,"n":12345678901234567890,"city":"a"}`},
		{"not an object", `[null]`, `[null]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DropNullOptionals(json.RawMessage(schema), json.RawMessage(tc.args))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("\n got: %s\nwant: %s", got, tc.want)
			}
		})
	}
	if _, err := DropNullOptionals(json.RawMessage(schema), json.RawMessage(`{"a":`)); err == nil || !strings.Contains(err.Error(), "arguments are not valid JSON") {
		t.Errorf("err = %v", err)
	}
	if _, err := DropNullOptionals(json.RawMessage(`{`), json.RawMessage(`{}`)); err == nil || !strings.Contains(err.Error(), "schema is not valid JSON") {
		t.Errorf("err = %v", err)
	}
}
