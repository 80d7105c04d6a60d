package jsontree

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// encodingJSON is what AppendString must match: encoding/json without the
// HTML escapes.
func encodingJSON(s string) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `a "quoted" \ back`, "<b> & </b>", "\b\f\n\r\t\x00\x1f\x7f",
		"é ü 日本", "\u2028 and \u2029", "bad \xff byte", "\xc3", "emoji 🎉",
	} {
		if got, want := string(AppendString(nil, s)), encodingJSON(s); got != want {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	f.Add("a<b>\u2028\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := string(AppendString(nil, s)), encodingJSON(s); got != want {
			t.Fatalf("AppendString(%q) = %s, want %s", s, got, want)
		}
	})
}

func TestPointerTokens(t *testing.T) {
	for _, c := range [][2]string{{"a", "a"}, {"a/b", "a~1b"}, {"~x", "~0x"}, {"~/", "~0~1"}, {"~1", "~01"}} {
		if got := EscapePointer(c[0]); got != c[1] {
			t.Errorf("EscapePointer(%q) = %q, want %q", c[0], got, c[1])
		}
		if got := UnescapePointer(c[1]); got != c[0] {
			t.Errorf("UnescapePointer(%q) = %q, want %q", c[1], got, c[0])
		}
	}
}

func TestParse(t *testing.T) {
	doc := []byte(`{"b": [1, {"a/b": "x"}], "a": true, "a": null}`)
	root, tooDeep, err := Parse(doc, 0, nil)
	if err != nil || tooDeep != nil {
		t.Fatal(err, tooDeep)
	}
	if root.Dup != "a" || len(root.Members) != 3 || root.Members[0].Key != "b" || root.Members[1].Key != "a" {
		t.Fatalf("members = %+v, dup %q", root.Members, root.Dup)
	}
	var steps int
	if v, ok := root.Get("a", &steps); !ok || v.Kind != 'n' {
		t.Errorf(`Get("a") = %+v: want the last one, null`, v)
	}
	inner := root.Members[0].Val.Elems[1].Members[0].Val
	if got := inner.Pointer(-1); got != "/b/1/a~1b" {
		t.Errorf("Pointer = %q", got)
	}
	if v, err := root.Resolve("/b/1/a~1b", &steps); err != nil || v != inner {
		t.Errorf("Resolve = %v, %v", v, err)
	}
	if _, tooDeep, _ := Parse([]byte(`[[[1]]]`), 2, nil); tooDeep == nil || tooDeep.Pointer(-1) != "/0/0" {
		t.Errorf("maxDepth 2: tooDeep = %+v", tooDeep)
	}
}

func TestKinds(t *testing.T) {
	for raw, want := range map[string]string{" {": "object", "[]": "array", `"x"`: "string", "true": "boolean", "null": "null", "-1": "number", " ": "nothing"} {
		if got := KindOfText([]byte(raw)); got != want {
			t.Errorf("KindOfText(%q) = %q, want %q", raw, got, want)
		}
	}
	for k, want := range map[reflect.Kind]string{reflect.Int64: "integer", reflect.Uint8: "integer", reflect.Float32: "number",
		reflect.String: "string", reflect.Bool: "boolean", reflect.Slice: "array", reflect.Struct: "object", reflect.Map: "object"} {
		if got := KindOfGo(k); got != want {
			t.Errorf("KindOfGo(%s) = %q, want %q", k, got, want)
		}
	}
}

func TestDepth(t *testing.T) {
	for doc, want := range map[string]int{`1`: 0, `[]`: 1, `{"a":[{"b":"[[[{"}]]}`: 3, `["\\\"[", [[]]]`: 3} {
		if got := Depth([]byte(doc)); got != want {
			t.Errorf("Depth(%s) = %d, want %d", doc, got, want)
		}
	}
}

// A cut pointer is valid UTF-8 wherever max falls inside a multi-byte rune.
func TestPointerCutKeepsRunesWhole(t *testing.T) {
	root, _, err := Parse([]byte(`{"a€€€":{"b":1}}`), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	inner := root.Members[0].Val.Members[0].Val
	full := inner.Pointer(-1)
	for max := 0; max < len(full); max++ {
		got := inner.Pointer(max)
		if !utf8.ValidString(got) || !strings.HasSuffix(got, "…") || !strings.HasPrefix(full, strings.TrimSuffix(got, "…")) {
			t.Errorf("Pointer(%d) = %q, want a valid prefix of %q and …", max, got, full)
		}
	}
}
