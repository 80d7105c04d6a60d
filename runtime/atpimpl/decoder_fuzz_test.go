package atpimpl

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/atpgo/atp/internal/jsontree"
)

// fuzzSeeds are tricky inputs for both fuzz tests: grammar corners, escapes,
// invalid UTF-8, surrogates, numbers at the limits, deep nesting.
var fuzzSeeds = []string{
	weatherJSON,
	``, ` `, `null`, ` null `, `{}`, `[]`, `"x"`, `0`, `-0`, `1e400`, `-1e-400`, `true`, `nul`, `{"a":nul}`,
	`{"a":1,"a":2}`, `{"a":{},"a":[]}`, `{"a":[1,2,]}`, `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":01}`, `{"a":+1}`,
	`{"a":1.}`, `{"a":.1}`, `{"a":1e}`, `{"a":1E+2}`, `{"a":-}`, `{"a":NaN}`, `{"a":Infinity}`,
	`{"a":"\u0000"}`, `{"a":"\ud83d\ude00"}`, `{"a":"\ud83d"}`, `{"a":"\ude00\ud83d"}`, `{"a":"\ud83dx"}`,
	`{"\ud800":1}`, "{\"a\":\"\xff\xfe\"}", "{\"\xed\xa0\x80\":1}", "{\"a\":\"\x01\"}", `{"a":"\x"}`, `{"a":"\u12"}`,
	"\ufeff{}", `{"a":1} x`, `{"a":1}{}`, "{\"a\":1}\n\t ", `{"a":[[[[[[[[[[]]]]]]]]]]}`,
	strings.Repeat("[", 1001) + strings.Repeat("]", 1001),
	`{"a":` + strings.Repeat(`{"a":`, 1000) + `1` + strings.Repeat("}", 1001),
	`{"a":123456789012345678901234567890,"b":1.7976931348623157e308,"c":4.9e-324}`,
	`{"location":{"city":"P"},"days":2.0}`, `{"location":{"city":"P"},"days":1e2,"since":null}`,
	`{"location":{"city":"P","country":"\u0046R"},"days":3,"units":"fahrenheit","tags":[],"since":"2026-11-21T05:00:00+02:00"}`,
	`{"location":{"city":"P"},"days":3,"since":"2026-11-21T05:00:60Z"}`,
	`{"location":{"city":"P"},"days":9223372036854775807}`, `{"location":{"city":"P"},"days":9223372036854775808}`,
	`{"location":{"city":"P"},"days":3,"Days":4}`, `{"location":{"city":"P"},"days":3,"tags":null}`,
	`{"location":{"city":"\u00e9\uD834\uDD1E","city":"x"},"days":3}`,
}

// FuzzDecoderAny checks the scanner against encoding/json: the same inputs
// are valid, and valid inputs decode to the same values.
func FuzzDecoderAny(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var d Decoder
		d.Reset(in)
		got := d.Any()
		failed := d.Failed()
		if failed != (errOf(&d) != nil) {
			t.Fatalf("Failed() = %v, Err() = %v", failed, errOf(&d))
		}

		// Reset reads empty params and null as {}.
		if trimmed := bytes.Trim(in, " \t\r\n"); len(trimmed) == 0 || string(trimmed) == "null" {
			if failed || !reflect.DeepEqual(got, map[string]any{}) {
				t.Fatalf("empty or null params: got %#v, %v", got, errOf(&d))
			}
			return
		}
		if !json.Valid(in) {
			if !failed {
				t.Fatalf("invalid JSON accepted: got %#v", got)
			}
			if msg := errOf(&d).Problems[0].Message; !strings.HasPrefix(msg, "invalid JSON: ") || len(errOf(&d).Problems) != 1 {
				t.Fatalf("invalid JSON reported as %v", errOf(&d))
			}
			return
		}
		if jsontree.Depth(in) > maxDepth {
			if !failed || !strings.Contains(errOf(&d).Error(), "nested deeper than 1000 levels") {
				t.Fatalf("too deep input: %v", errOf(&d))
			}
			return
		}
		if !utf8.Valid(in) {
			// Valid JSON whose strings hold bytes that are not UTF-8:
			// refused, each at its path, never as a syntax error.
			if !failed {
				t.Fatalf("invalid UTF-8 accepted: got %#v", got)
			}
			found := false
			for _, p := range errOf(&d).Problems {
				found = found || p.Message == invalidUTF8String || p.Message == invalidUTF8Key
				if strings.HasPrefix(p.Message, "invalid JSON") {
					t.Fatalf("invalid UTF-8 reported as a syntax error: %v", errOf(&d))
				}
			}
			if !found {
				t.Fatalf("invalid UTF-8 not reported: %v", errOf(&d))
			}
			return
		}
		var want any
		if err := json.Unmarshal(in, &want); err != nil {
			// Valid JSON that encoding/json rejects: a number beyond float64.
			if !failed {
				t.Fatalf("accepted what encoding/json rejects (%v): got %#v", err, got)
			}
			return
		}
		if failed {
			t.Fatalf("valid JSON rejected: %v", errOf(&d))
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("got %#v, want %#v", got, want)
		}
	})
}

// FuzzDecoderWeather runs the generated-style decoder on random input: it
// never panics, and what it accepts, encoding/json accepts too with the
// same values.
func FuzzDecoderWeather(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"location":{"city":"P"},"days":"3"}`), true)
	f.Fuzz(func(t *testing.T, in []byte, coerce bool) {
		var d Decoder
		d.Reset(in)
		d.SetCoercion(coerce)
		var v weatherIn
		atpDecodeWeatherIn(&d, &v)
		if d.Failed() {
			for _, p := range errOf(&d).Problems {
				if p.Message == "" || strings.Contains(p.Message, "internal error") {
					t.Fatalf("bad problem %q", p)
				}
			}
			return
		}
		if !utf8.Valid(in) {
			t.Fatalf("accepted params that are not UTF-8: %+v", v)
		}
		if coerce {
			return // encoding/json has no coercion to compare with
		}
		// days is float64 here because JSON Schema counts 2.0 and 1e2 as
		// integers, which encoding/json refuses for an int.
		var want struct {
			Location struct {
				City    string `json:"city"`
				Country string `json:"country"`
			} `json:"location"`
			Days  float64    `json:"days"`
			Units string     `json:"units"`
			Tags  []string   `json:"tags"`
			Since *time.Time `json:"since"`
		}
		dec := json.NewDecoder(bytes.NewReader(in))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&want); err != nil {
			t.Fatalf("accepted, but encoding/json says %v; decoded %+v", err, v)
		}
		if want.Location.City != v.Location.City || want.Location.Country != v.Location.Country ||
			want.Days != float64(v.Days) || want.Units != string(v.Units) || !reflect.DeepEqual(want.Tags, v.Tags) ||
			(want.Since == nil) != (v.Since == nil) ||
			want.Since != nil && (!want.Since.Equal(*v.Since) || want.Since.Format(time.RFC3339Nano) != v.Since.Format(time.RFC3339Nano)) {
			t.Fatalf("decoded %+v, encoding/json %+v", v, want)
		}
		if v.Days < 1 || v.Units != "" && v.Units != "celsius" && v.Units != "fahrenheit" {
			t.Fatalf("accepted without the checks: %+v", v)
		}
	})
}
