package atpimpl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// ---- the generated-style decoder the tests, fuzz tests and benchmarks use ----

// weatherIn is the reference input type, and the decoders below are
// written exactly as atpgen generates them.
type weatherIn struct {
	Location weatherLocation
	Days     int
	Units    weatherUnit
	Tags     []string
	Since    *time.Time
}

type weatherLocation struct {
	City    string
	Country string
}

type weatherUnit string

func atpDecodeWeatherIn(d *Decoder, v *weatherIn) {
	if !d.Object() {
		return
	}
	var seen [5]bool
	for d.Next() {
		switch string(d.Key()) {
		case "location":
			if d.Repeated(&seen[0]) {
				continue
			}
			atpDecodeWeatherLocation(d, &v.Location)
		case "days":
			if d.Repeated(&seen[1]) {
				continue
			}
			v.Days = int(d.Int(0))
			if v.Days < 1 {
				d.Fail("integer >= 1", GotInt(int64(v.Days)))
			}
		case "units":
			if d.Repeated(&seen[2]) {
				continue
			}
			v.Units = weatherUnit(d.String())
			d.Enum(string(v.Units), "celsius", "fahrenheit")
		case "tags":
			if d.Repeated(&seen[3]) {
				continue
			}
			if d.Array() {
				v.Tags = []string{}
				for d.NextItem() {
					v.Tags = append(v.Tags, d.String())
				}
			}
		case "since":
			if d.Repeated(&seen[4]) {
				continue
			}
			if d.Null() {
				v.Since = nil
			} else {
				t := d.Time()
				v.Since = &t
			}
		default:
			d.Unknown("location, days, units, tags, since")
		}
	}
	if !seen[0] {
		d.Missing("location", "object")
	}
	if !seen[1] {
		d.Missing("days", "integer")
	}
}

func atpDecodeWeatherLocation(d *Decoder, v *weatherLocation) {
	if !d.Object() {
		return
	}
	var seen [2]bool
	for d.Next() {
		switch string(d.Key()) {
		case "city":
			if d.Repeated(&seen[0]) {
				continue
			}
			v.City = d.String()
		case "country":
			if d.Repeated(&seen[1]) {
				continue
			}
			v.Country = d.String()
		default:
			d.Unknown("city, country")
		}
	}
	if !seen[0] {
		d.Missing("city", "string")
	}
}

const weatherJSON = `{"location":{"city":"Paris","country":"FR"},"days":3,"units":"celsius","tags":["a","b"],"since":"2026-11-21T05:00:00Z"}`

// ---- helpers ----

// decode runs fn over input with a fresh Decoder and returns the problems
// Problems reports (checking that Failed and Problems agree, and that
// Problems answers the same twice).
func decode(t *testing.T, input string, coerce bool, fn func(d *Decoder)) []Problem {
	t.Helper()
	var d Decoder
	d.Reset([]byte(input))
	d.SetCoercion(coerce)
	fn(&d)
	failed := d.Failed()
	err := errOf(&d)
	if failed != (err != nil) {
		t.Fatalf("%s: Failed() = %v but Problems() = %v", input, failed, err)
	}
	if err == nil {
		if len(d.Problems()) != 0 {
			t.Fatalf("%s: no problems but Problems() = %v", input, d.Problems())
		}
		return nil
	}
	if !reflect.DeepEqual(err.Problems, d.Problems()) {
		t.Fatalf("%s: Problems() = %v, then %v", input, err.Problems, d.Problems())
	}
	return err.Problems
}

// p builds problems from path, message pairs.
func p(pathMessage ...string) []Problem {
	var ps []Problem
	for i := 0; i < len(pathMessage); i += 2 {
		ps = append(ps, Problem{Path: pathMessage[i], Message: pathMessage[i+1]})
	}
	return ps
}

func checkProblems(t *testing.T, input string, got, want []Problem) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("input %s\n got: %q\nwant: %q", input, got, want)
	}
}

// member decodes {"v": <value>} with read for the value, as generated code
// does for one field.
func member(read func(d *Decoder)) func(d *Decoder) {
	return func(d *Decoder) {
		if d.Object() {
			for d.Next() {
				read(d)
			}
		}
	}
}

// ---- the reference decoder ----

func TestDecoderWeatherValid(t *testing.T) {
	var d Decoder
	d.Reset([]byte(weatherJSON))
	var v weatherIn
	atpDecodeWeatherIn(&d, &v)
	if d.Failed() {
		t.Fatalf("unexpected problems: %v", errOf(&d))
	}
	since := time.Date(2026, 11, 21, 5, 0, 0, 0, time.UTC)
	want := weatherIn{Location: weatherLocation{"Paris", "FR"}, Days: 3, Units: "celsius", Tags: []string{"a", "b"}, Since: &since}
	if !reflect.DeepEqual(v, want) {
		t.Fatalf("got %+v, want %+v", v, want)
	}
}

func TestDecoderWeatherProblems(t *testing.T) {
	tests := []struct {
		name, input string
		want        []Problem
	}{
		{"wrong type for integer", `{"location":{"city":"P"},"days":"three"}`,
			p("days", `expected integer, got "three"`)},
		{"fraction", `{"location":{"city":"P"},"days":2.5}`,
			p("days", `expected integer, got 2.5`)},
		{"missing required", `{"units":"celsius"}`,
			p("location", "missing required field (expected object)", "days", "missing required field (expected integer)")},
		{"missing nested required", `{"location":{},"days":1}`,
			p("location.city", "missing required field (expected string)")},
		{"unknown field", `{"location":{"city":"P"},"dayz":4,"days":1}`,
			p("dayz", "unknown field (allowed: location, days, units, tags, since)")},
		{"keys are case-sensitive", `{"Location":{"city":"P"},"DAYS":3}`,
			p("Location", "unknown field (allowed: location, days, units, tags, since)",
				"DAYS", "unknown field (allowed: location, days, units, tags, since)",
				"location", "missing required field (expected object)",
				"days", "missing required field (expected integer)")},
		{"duplicate field", `{"location":{"city":"P"},"days":1,"days":2}`,
			p("days", "duplicate field")},
		{"a duplicate's value is skipped, not checked", `{"location":{"city":"P"},"days":1,"days":0}`,
			p("days", "duplicate field")},
		{"enum", `{"location":{"city":"P"},"days":1,"units":"kelvin"}`,
			p("units", `expected one of "celsius", "fahrenheit", got "kelvin"`)},
		{"null object", `{"location":null,"days":1}`,
			p("location", "expected object, got null")},
		{"bad time", `{"location":{"city":"P"},"days":1,"since":"yesterday"}`,
			p("since", `expected RFC 3339 date-time string, got "yesterday"`)},
		{"nested wrong type", `{"location":{"city":42},"days":1}`,
			p("location.city", "expected string, got 42")},
		{"array item", `{"location":{"city":"P"},"days":1,"tags":["a",true,"c",null]}`,
			p("tags[1]", "expected string, got true", "tags[3]", "expected string, got null")},
		{"array wanted", `{"location":{"city":"P"},"days":1,"tags":{}}`,
			p("tags", "expected array, got object")},
		{"Fail at the member's path", `{"location":{"city":"P"},"days":0}`,
			p("days", "expected integer >= 1, got 0")},
		{"minus zero is an integer", `{"location":{"city":"P"},"days":-0}`,
			p("days", "expected integer >= 1, got 0")},
		{"one message per bad value", `{"location":{"city":"P"},"days":"three","units":7}`,
			p("days", `expected integer, got "three"`, "units", "expected string, got 7")},
		{"everything at once", `{"location":{"city":1,"zip":2},"days":"x","units":"k","tags":[1],"since":"y","extra":{}}`,
			p("location.city", "expected string, got 1",
				"location.zip", "unknown field (allowed: city, country)",
				"days", `expected integer, got "x"`,
				"units", `expected one of "celsius", "fahrenheit", got "k"`,
				"tags[0]", "expected string, got 1",
				"since", `expected RFC 3339 date-time string, got "y"`,
				"extra", "unknown field (allowed: location, days, units, tags, since)")},
		{"root array", `[1]`, p("", "expected object, got array")},
		{"root string", ` "x" `, p("", `expected object, got "x"`)},
		{"root number", `42`, p("", "expected object, got 42")},
		{"root false", `false`, p("", "expected object, got false")},
		{"empty params are {}", ``,
			p("location", "missing required field (expected object)", "days", "missing required field (expected integer)")},
		{"whitespace params are {}", " \n\t\r ",
			p("location", "missing required field (expected object)", "days", "missing required field (expected integer)")},
		{"null params are {}", ` null `,
			p("location", "missing required field (expected object)", "days", "missing required field (expected integer)")},
		{"trailing data", `{"location":{"city":"P"},"days":1} x`,
			p("", "invalid JSON: invalid character 'x' after top-level value at offset 35")},
		{"trailing second object", `{"location":{"city":"P"},"days":1}{}`,
			p("", "invalid JSON: invalid character '{' after top-level value at offset 34")},
		{"syntax error is the only problem", `{"dayz":1,"days":"x","location":{"city":1,}}`,
			p("location", "invalid JSON: invalid character '}' looking for beginning of object key string at offset 42")},
		{"unexpected end", `{"location":{"city":"P"},"days":1`,
			p("", "invalid JSON: unexpected end of input at offset 33")},
		{"invalid time format from a number", `{"location":{"city":"P"},"days":1,"since":5}`,
			p("since", "expected RFC 3339 date-time string, got 5")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := decode(t, tt.input, false, func(d *Decoder) {
				var v weatherIn
				atpDecodeWeatherIn(d, &v)
			})
			checkProblems(t, tt.input, got, tt.want)
		})
	}
}

// "null x" is not the null document: it reads null at the root, then finds
// trailing data, and the syntax error is the only problem.
func TestDecoderNullWithTrailingData(t *testing.T) {
	got := decode(t, `null x`, false, func(d *Decoder) { d.Object() })
	checkProblems(t, `null x`, got, p("", "invalid JSON: invalid character 'x' after top-level value at offset 5"))
}

func TestDecoderProblemString(t *testing.T) {
	var d Decoder
	d.Reset([]byte(`{"days":"three"}`))
	var v weatherIn
	atpDecodeWeatherIn(&d, &v)
	var got []string
	for _, p := range d.Problems() {
		got = append(got, p.String())
	}
	want := []string{`days: expected integer, got "three"`, `location: missing required field (expected object)`}
	if !slices.Equal(got, want) {
		t.Fatalf("problems = %q, want %q", got, want)
	}
	root := Problem{Message: "expected object, got array"}
	if got, want := root.String(), "params: expected object, got array"; got != want {
		t.Fatalf("root problem = %q, want %q", got, want)
	}
}

// ---- scalar readers ----

func TestDecoderScalarMessages(t *testing.T) {
	var got any
	tests := []struct {
		name, value string
		coerce      bool
		read        func(d *Decoder) any
		want        any
		problem     string // "" for none
	}{
		{"string", `"héllo"`, false, func(d *Decoder) any { return d.String() }, "héllo", ""},
		{"string escapes", `"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"`, false, func(d *Decoder) any { return d.String() }, "a\"\\/\b\f\n\r\té😀", ""},
		{"string from number", `42`, false, func(d *Decoder) any { return d.String() }, "", "expected string, got 42"},
		{"string from object", `{"a":1}`, false, func(d *Decoder) any { return d.String() }, "", "expected string, got object"},
		{"string from array", `[1]`, false, func(d *Decoder) any { return d.String() }, "", "expected string, got array"},
		{"bool", `true`, false, func(d *Decoder) any { return d.Bool() }, true, ""},
		{"bool false", `false`, false, func(d *Decoder) any { return d.Bool() }, false, ""},
		{"bool from string", `"yes"`, false, func(d *Decoder) any { return d.Bool() }, false, `expected boolean, got "yes"`},
		{"number from true", `true`, false, func(d *Decoder) any { return d.Float(64) }, 0.0, "expected number, got true"},
		{"object from null", `null`, false, func(d *Decoder) any { return d.Object() }, false, "expected object, got null"},
		{"array from object", `{}`, false, func(d *Decoder) any { return d.Array() }, false, "expected array, got object"},

		{"int", `-42`, false, func(d *Decoder) any { return d.Int(0) }, int64(-42), ""},
		{"int 2.0", `2.0`, false, func(d *Decoder) any { return d.Int(0) }, int64(2), ""},
		{"int 1e2", `1e2`, false, func(d *Decoder) any { return d.Int(0) }, int64(100), ""},
		{"int 1.5e1", `1.5e1`, false, func(d *Decoder) any { return d.Int(0) }, int64(15), ""},
		{"int 100e-2", `100E-2`, false, func(d *Decoder) any { return d.Int(0) }, int64(1), ""},
		{"int 0e-5", `0e-5`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), ""},
		{"int 0.000e999999999999", `0.000e999999999999`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), ""},
		{"int -0", `-0`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), ""},
		{"int long zero fraction", `7.00000000000000000000000000`, false, func(d *Decoder) any { return d.Int(0) }, int64(7), ""},
		{"int fraction", `2.5`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), "expected integer, got 2.5"},
		{"int 1e-1", `1e-1`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), "expected integer, got 1e-1"},
		{"int tiny fraction", `1.0000000000000000000001`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), "expected integer, got 1.0000000000000000000001"},
		{"int8 max", `127`, false, func(d *Decoder) any { return d.Int(8) }, int64(127), ""},
		{"int8 min", `-128`, false, func(d *Decoder) any { return d.Int(8) }, int64(-128), ""},
		{"int8 over", `300`, false, func(d *Decoder) any { return d.Int(8) }, int64(0), "expected integer from -128 to 127, got 300"},
		{"int8 under", `-129`, false, func(d *Decoder) any { return d.Int(8) }, int64(0), "expected integer from -128 to 127, got -129"},
		{"int16 over", `32768`, false, func(d *Decoder) any { return d.Int(16) }, int64(0), "expected integer from -32768 to 32767, got 32768"},
		{"int32 over", `2147483648`, false, func(d *Decoder) any { return d.Int(32) }, int64(0), "expected integer from -2147483648 to 2147483647, got 2147483648"},
		{"int64 max", `9223372036854775807`, false, func(d *Decoder) any { return d.Int(64) }, int64(math.MaxInt64), ""},
		{"int64 min", `-9223372036854775808`, false, func(d *Decoder) any { return d.Int(64) }, int64(math.MinInt64), ""},
		{"int64 over", `9223372036854775808`, false, func(d *Decoder) any { return d.Int(64) }, int64(0), "expected integer from -9223372036854775808 to 9223372036854775807, got 9223372036854775808"},
		{"int64 far over", `1e20`, false, func(d *Decoder) any { return d.Int(64) }, int64(0), "expected integer from -9223372036854775808 to 9223372036854775807, got 1e20"},
		{"int64 huge exponent", `1e999999999999999999`, false, func(d *Decoder) any { return d.Int(64) }, int64(0), "expected integer from -9223372036854775808 to 9223372036854775807, got 1e999999999999999999"},
		{"int 0 is int size", `9223372036854775808`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), "expected integer from -9223372036854775808 to 9223372036854775807, got 9223372036854775808"},
		{"int long literal cut", `12345678901234567890123456789012345678901234567890`, false, func(d *Decoder) any { return d.Int(64) }, int64(0), "expected integer from -9223372036854775808 to 9223372036854775807, got 1234567890123456789012345678901234567890…"},
		{"int from string", `"three"`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got "three"`},
		{"int from bool", `true`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got true`},
		{"uint8 max", `255`, false, func(d *Decoder) any { return d.Uint(8) }, uint64(255), ""},
		{"uint8 over", `256`, false, func(d *Decoder) any { return d.Uint(8) }, uint64(0), "expected integer from 0 to 255, got 256"},
		{"uint8 negative", `-1`, false, func(d *Decoder) any { return d.Uint(8) }, uint64(0), "expected integer from 0 to 255, got -1"},
		{"uint minus zero", `-0.0`, false, func(d *Decoder) any { return d.Uint(8) }, uint64(0), ""},
		{"uint64 max", `18446744073709551615`, false, func(d *Decoder) any { return d.Uint(64) }, uint64(math.MaxUint64), ""},
		{"uint64 max exp", `1.8446744073709551615e19`, false, func(d *Decoder) any { return d.Uint(64) }, uint64(math.MaxUint64), ""},
		{"uint64 over", `18446744073709551616`, false, func(d *Decoder) any { return d.Uint(64) }, uint64(0), "expected integer from 0 to 18446744073709551615, got 18446744073709551616"},
		{"uint fraction", `0.5`, false, func(d *Decoder) any { return d.Uint(0) }, uint64(0), "expected integer, got 0.5"},

		{"float", `2.5`, false, func(d *Decoder) any { return d.Float(64) }, 2.5, ""},
		{"float 0 is 64", `1e300`, false, func(d *Decoder) any { return d.Float(0) }, 1e300, ""},
		{"float32 rounds", `0.1`, false, func(d *Decoder) any { return d.Float(32) }, float64(float32(0.1)), ""},
		{"float32 over", `1e39`, false, func(d *Decoder) any { return d.Float(32) }, 0.0, "expected number from -3.4028234663852886e+38 to 3.4028234663852886e+38, got 1e39"},
		{"float64 over", `-1e400`, false, func(d *Decoder) any { return d.Float(64) }, 0.0, "expected number from -1.7976931348623157e+308 to 1.7976931348623157e+308, got -1e400"},
		{"float underflow is 0", `1e-400`, false, func(d *Decoder) any { return d.Float(64) }, 0.0, ""},

		{"bytes", `"aGVsbG8="`, false, func(d *Decoder) any { return string(d.Bytes()) }, "hello", ""},
		{"bytes empty", `""`, false, func(d *Decoder) any { return d.Bytes() }, []byte{}, ""},
		{"bytes bad", `"%%%"`, false, func(d *Decoder) any { return d.Bytes() }, []byte(nil), `expected base64 string, got "%%%"`},
		{"bytes unpadded", `"aGVsbG8"`, false, func(d *Decoder) any { return d.Bytes() }, []byte(nil), `expected base64 string, got "aGVsbG8"`},
		{"bytes from number", `1`, false, func(d *Decoder) any { return d.Bytes() }, []byte(nil), `expected base64 string, got 1`},

		{"time", `"2026-11-21T05:05:00+02:00"`, false, func(d *Decoder) any { return d.Time().UTC().Format(time.RFC3339) }, "2026-11-21T03:05:00Z", ""},
		{"time bad", `"yesterday"`, false, func(d *Decoder) any { return d.Time() }, time.Time{}, `expected RFC 3339 date-time string, got "yesterday"`},
		{"time out of range day", `"2026-02-30T00:00:00Z"`, false, func(d *Decoder) any { return d.Time() }, time.Time{}, `expected RFC 3339 date-time string, got "2026-02-30T00:00:00Z"`},
		{"duration", `"1h30m"`, false, func(d *Decoder) any { return d.Duration() }, 90 * time.Minute, ""},
		{"duration bad", `"x"`, false, func(d *Decoder) any { return d.Duration() }, time.Duration(0), `expected duration string such as "1h30m" or "90s", got "x"`},
		{"duration from number", `90`, false, func(d *Decoder) any { return d.Duration() }, time.Duration(0), `expected duration string such as "1h30m" or "90s", got 90`},

		{"coerce int", `"3"`, true, func(d *Decoder) any { return d.Int(0) }, int64(3), ""},
		{"coerce negative int", `"-2"`, true, func(d *Decoder) any { return d.Int(0) }, int64(-2), ""},
		{"coerce uint", `"7"`, true, func(d *Decoder) any { return d.Uint(0) }, uint64(7), ""},
		{"coerce float", `"2.5"`, true, func(d *Decoder) any { return d.Float(64) }, 2.5, ""},
		{"coerce true", `"true"`, true, func(d *Decoder) any { return d.Bool() }, true, ""},
		{"coerce false", `"false"`, true, func(d *Decoder) any { return d.Bool() }, false, ""},
		{"coerce still takes numbers", `4`, true, func(d *Decoder) any { return d.Int(0) }, int64(4), ""},
		{"coerce escaped digits", `"\u0035"`, true, func(d *Decoder) any { return d.Int(0) }, int64(5), ""},
		{"coerce bad int", `"abc"`, true, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got "abc"`},
		{"coerce int fraction", `"2.5"`, true, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got "2.5"`},
		{"coerce int range", `"300"`, true, func(d *Decoder) any { return d.Int(8) }, int64(0), `expected integer from -128 to 127, got "300"`},
		{"coerce not a JSON number", `"+3"`, true, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got "+3"`},
		{"coerce padded", `" 3"`, true, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got " 3"`},
		{"coerce bad float", `""`, true, func(d *Decoder) any { return d.Float(64) }, 0.0, `expected number, got ""`},
		{"coerce bad bool", `"yes"`, true, func(d *Decoder) any { return d.Bool() }, false, `expected boolean, got "yes"`},
		{"coerce off int", `"3"`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got "3"`},
		{"coerce off bool", `"true"`, false, func(d *Decoder) any { return d.Bool() }, false, `expected boolean, got "true"`},
		{"coerce does not touch String", `3`, true, func(d *Decoder) any { return d.String() }, "", `expected string, got 3`},

		{"got string cut after 40 runes", `"` + strings.Repeat("é", 50) + `"`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got "` + strings.Repeat("é", 40) + `…"`},
		{"got string escapes", `"a\"b\nc\u0001"`, false, func(d *Decoder) any { return d.Int(0) }, int64(0), `expected integer, got "a\"b\nc\u0001"`},
		{"got string with invalid UTF-8", "\"a\xffb\"", false, func(d *Decoder) any { return d.Int(0) }, int64(0), "expected integer, got \"a\uFFFDb\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := `{"v":` + tt.value + `}`
			problems := decode(t, input, tt.coerce, member(func(d *Decoder) { got = tt.read(d) }))
			var want []Problem
			if tt.problem != "" {
				want = p("v", tt.problem)
			}
			checkProblems(t, input, problems, want)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("value: got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestDecoderStringsMatchEncodingJSON(t *testing.T) {
	inputs := []string{
		`"plain"`, `""`, `"\u00e9"`, `"\ud83d\ude00"`,
		`"\ud83d"`, `"\ude00"`, `"\ud83dx"`, `"\ud83d\u0041"`, `"\ud83d\ud83d\ude00"`, `"\ude00\ud83d"`,
		`"\u0000"`, "\"\u2028\u2029\"", `"\/\b"`,
	}
	for _, in := range inputs {
		var want string
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatalf("%q: encoding/json: %v", in, err)
		}
		var got string
		problems := decode(t, `{"v":`+in+`}`, false, member(func(d *Decoder) { got = d.String() }))
		if problems != nil || got != want {
			t.Errorf("%q: got %q (%v), want %q", in, got, problems, want)
		}
		// Keys unescape the same way.
		var key string
		decode(t, `{`+in+`:1}`, false, func(d *Decoder) {
			if d.Object() {
				for d.Next() {
					key = string(d.Key())
					d.Skip()
				}
			}
		})
		if key != want {
			t.Errorf("key %q: got %q, want %q", in, key, want)
		}
	}
}

// invalidUTF8 are strings whose bytes are not UTF-8: a lone byte, a cut
// sequence, an encoded surrogate, a code point past U+10FFFF, an overlong
// encoding. (Escaped lone surrogates such as "\ud83d" are valid JSON text
// and decode to U+FFFD, as in encoding/json.)
var invalidUTF8 = []string{"\"\xff\"", "\"a\xc3\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "\"\xc0\xaf\"", "\"ok\\n\xfe\""}

// Invalid UTF-8 is a problem at the path of the string that holds it,
// whichever method reads it (for a key: the member, which is dropped), and
// the value read is the zero value, so nothing altered reaches a tool.
func TestDecoderRejectsInvalidUTF8(t *testing.T) {
	for _, in := range invalidUTF8 {
		reads := map[string]func(d *Decoder) any{
			"String":   func(d *Decoder) any { return d.String() },
			"Bytes":    func(d *Decoder) any { return d.Bytes() },
			"Time":     func(d *Decoder) any { return d.Time() },
			"Duration": func(d *Decoder) any { return d.Duration() },
			"Any":      func(d *Decoder) any { return d.Any() },
			"Raw":      func(d *Decoder) any { d.Raw(); return nil },
			"Skip":     func(d *Decoder) any { d.Skip(); return nil },
			"UnmarshalText": func(d *Decoder) any {
				var ip netip.Addr
				d.UnmarshalText(&ip, "IP address")
				return ip
			},
		}
		for name, read := range reads {
			var got any
			problems := decode(t, `{"v":`+in+`}`, false, member(func(d *Decoder) { got = read(d) }))
			checkProblems(t, name+" "+in, problems, p("v", "invalid UTF-8 in string"))
			if v := reflect.ValueOf(got); got != nil && !v.IsZero() {
				t.Errorf("%s %q: read %#v, want the zero value", name, in, got)
			}
		}
		// Deep inside a value read whole, the path is exact.
		for name, read := range map[string]func(d *Decoder){
			"Raw":  func(d *Decoder) { d.Raw() },
			"Any":  func(d *Decoder) { d.Any() },
			"Skip": func(d *Decoder) { d.Skip() },
			"Unmarshal": func(d *Decoder) {
				var v json.RawMessage
				d.Unmarshal(&v, "anything")
			},
		} {
			problems := decode(t, `{"v":{"list":[1,{"x":`+in+`}]}}`, false, member(read))
			checkProblems(t, name+" nested "+in, problems, p("v.list[1].x", "invalid UTF-8 in string"))
		}
		// A key: the member is dropped, with one problem.
		var keys []string
		problems := decode(t, `{"a":1,`+in+`:"v","b":2}`, false, func(d *Decoder) {
			if d.Object() {
				for d.Next() {
					keys = append(keys, string(d.Key()))
					d.Skip()
				}
			}
		})
		if len(problems) != 1 || problems[0].Message != "invalid UTF-8 in key" || !strings.Contains(problems[0].Path, "\uFFFD") {
			t.Errorf("key %q: problems %v, want one invalid key at a path showing U+FFFD", in, problems)
		}
		if !slices.Equal(keys, []string{"a", "b"}) {
			t.Errorf("key %q: members read %q, want a and b only", in, keys)
		}
	}
	// A member that has a problem already gets no second one for its bytes.
	problems := decode(t, "{\"x\":\"\xff\",\"y\":{\"z\":\"\xff\"},\"y\":1}", false, func(d *Decoder) {
		if d.Object() {
			seen := false
			for d.Next() {
				switch string(d.Key()) {
				case "y":
					if seen {
						d.Duplicate()
						continue
					}
					seen = true
					d.Int(0)
				default:
					d.Unknown("y")
				}
			}
		}
	})
	checkProblems(t, "unknown, wrong type, duplicate", problems, []Problem{
		{Path: "x", Message: "unknown field (allowed: y)"},
		{Path: "y", Message: "expected integer, got object"},
		{Path: "y", Message: "duplicate field"},
	})
	// Valid multi-byte text and escapes pass.
	var got string
	problems = decode(t, `{"v":"é😀\u00e9\ud83d"}`, false, member(func(d *Decoder) { got = d.String() }))
	if problems != nil || got != "é😀é\uFFFD" {
		t.Errorf("valid text: %q, %v", got, problems)
	}
}

// ---- constraint messages ----

func TestDecoderConstraintMessages(t *testing.T) {
	tests := []struct {
		name, value string
		check       func(d *Decoder)
		problem     string
	}{
		{"enum ok", `"celsius"`, func(d *Decoder) { d.Enum(d.String(), "celsius", "fahrenheit") }, ""},
		{"enum", `"kelvin"`, func(d *Decoder) { d.Enum(d.String(), "celsius", "fahrenheit") }, `expected one of "celsius", "fahrenheit", got "kelvin"`},
		{"enum quoting", `"x"`, func(d *Decoder) { d.Enum(d.String(), `a"b`) }, `expected one of "a\"b", got "x"`},
		{"enum of ten", `"x"`, func(d *Decoder) { d.Enum(d.String(), strings.Split("a b c d e f g h i j", " ")...) },
			`expected one of "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", got "x"`},
		{"unknown among many fields", `1`, func(d *Decoder) {
			names := make([]string, 25)
			for i := range names {
				names[i] = fmt.Sprint("f", i)
			}
			d.Unknown(strings.Join(names, ", "))
		}, "unknown field (allowed: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19, and 5 more)"},
		{"unknown among exactly twenty", `1`, func(d *Decoder) {
			names := make([]string, 20)
			for i := range names {
				names[i] = fmt.Sprint("f", i)
			}
			d.Unknown(strings.Join(names, ", "))
		}, "unknown field (allowed: f0, f1, f2, f3, f4, f5, f6, f7, f8, f9, f10, f11, f12, f13, f14, f15, f16, f17, f18, f19)"},
		{"long enum", `"x"`, func(d *Decoder) { d.Enum(d.String(), strings.Split("a b c d e f g h i j k", " ")...) },
			`expected one of 11 values, got "x"`},
		{"minLength ok", `"abc"`, func(d *Decoder) { d.MinLength(d.String(), 3) }, ""},
		{"minLength", `"ab"`, func(d *Decoder) { d.MinLength(d.String(), 3) }, `expected string of at least 3 characters, got "ab"`},
		{"minLength counts runes", `"éé"`, func(d *Decoder) { d.MinLength(d.String(), 3) }, `expected string of at least 3 characters, got "éé"`},
		{"minLength runes ok", `"ééé"`, func(d *Decoder) { d.MinLength(d.String(), 3) }, ""},
		{"minLength singular", `""`, func(d *Decoder) { d.MinLength(d.String(), 1) }, `expected string of at least 1 character, got ""`},
		{"maxLength ok", `"ééééé"`, func(d *Decoder) { d.MaxLength(d.String(), 5) }, ""},
		{"maxLength", `"abcdefg"`, func(d *Decoder) { d.MaxLength(d.String(), 5) }, `expected string of at most 5 characters, got "abcdefg" (7 characters)`},
		{"maxLength singular", `"ab"`, func(d *Decoder) { d.MaxLength(d.String(), 1) }, `expected string of at most 1 character, got "ab" (2 characters)`},
		{"pattern ok", `"abc"`, func(d *Decoder) { d.Pattern(d.String(), regexp.MustCompile(`^[a-z]+$`), `^[a-z]+$`) }, ""},
		{"pattern", `"ABC"`, func(d *Decoder) { d.Pattern(d.String(), regexp.MustCompile(`^[a-z]+$`), `^[a-z]+$`) }, `expected string matching ^[a-z]+$, got "ABC"`},
		{"minimum ok", `1`, func(d *Decoder) { d.MinimumFloat(d.Float(64), 1, false) }, ""},
		{"minimum", `0`, func(d *Decoder) { d.MinimumFloat(d.Float(64), 1, false) }, "expected number >= 1, got 0"},
		{"exclusive minimum", `1`, func(d *Decoder) { d.MinimumFloat(d.Float(64), 1, true) }, "expected number > 1, got 1"},
		{"maximum ok", `10`, func(d *Decoder) { d.MaximumFloat(d.Float(64), 10, false) }, ""},
		{"maximum", `10.5`, func(d *Decoder) { d.MaximumFloat(d.Float(64), 10, false) }, "expected number <= 10, got 10.5"},
		{"exclusive maximum", `10`, func(d *Decoder) { d.MaximumFloat(d.Float(64), 10, true) }, "expected number < 10, got 10"},
		{"bounds use g format", `1e21`, func(d *Decoder) { d.MaximumFloat(d.Float(64), 2.5e20, false) }, "expected number <= 2.5e+20, got 1e+21"},
		{"minimum from Int", `-3`, func(d *Decoder) { d.MinimumFloat(float64(d.Int(0)), 0.5, false) }, "expected number >= 0.5, got -3"},
		{"Fail", `"x"`, func(d *Decoder) { _ = d.String(); d.Fail("a thing", GotString("x")) }, `expected a thing, got "x"`},
		{"GotUint and GotFloat", `1`, func(d *Decoder) { d.Int(0); d.Fail(GotUint(math.MaxUint64), GotFloat(0.25)) }, "expected 18446744073709551615, got 0.25"},
		{"checks are silent after a type problem", `5`, func(d *Decoder) {
			s := d.String()
			d.Enum(s, "a")
			d.MinLength(s, 1)
			d.MaxLength(s, -1)
			d.Pattern(s, regexp.MustCompile(`x`), `x`)
			d.Format(s, "email")
			d.Fail("x", "y")
		}, "expected string, got 5"},
		{"Int checks are silent after a type problem", `"five"`, func(d *Decoder) {
			v := d.Int(0)
			d.MinimumFloat(float64(v), 1, false)
			d.MaximumFloat(float64(v), -1, false)
		}, `expected integer, got "five"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			input := `{"v":` + tt.value + `}`
			got := decode(t, input, false, member(tt.check))
			var want []Problem
			if tt.problem != "" {
				want = p("v", tt.problem)
			}
			checkProblems(t, input, got, want)
		})
	}
}

func TestDecoderItemAndPropertyCounts(t *testing.T) {
	tests := []struct {
		value   string
		check   func(d *Decoder, n int)
		problem string
	}{
		{`[]`, func(d *Decoder, n int) { d.MinItems(n, 1) }, "expected at least 1 item, got 0"},
		{`[1]`, func(d *Decoder, n int) { d.MinItems(n, 2) }, "expected at least 2 items, got 1"},
		{`[1,2]`, func(d *Decoder, n int) { d.MinItems(n, 2) }, ""},
		{`[1,2,3,4,5,6,7]`, func(d *Decoder, n int) { d.MaxItems(n, 5) }, "expected at most 5 items, got 7"},
		{`[1,2]`, func(d *Decoder, n int) { d.MaxItems(n, 1) }, "expected at most 1 item, got 2"},
		{`[1]`, func(d *Decoder, n int) { d.MaxItems(n, 1) }, ""},
		{`{}`, func(d *Decoder, n int) { d.MinProperties(n, 1) }, "expected at least 1 entry, got 0"},
		{`{"a":1}`, func(d *Decoder, n int) { d.MinProperties(n, 2) }, "expected at least 2 entries, got 1"},
		{`{"a":1,"b":2}`, func(d *Decoder, n int) { d.MaxProperties(n, 1) }, "expected at most 1 entry, got 2"},
		{`{"a":1,"b":2,"c":3}`, func(d *Decoder, n int) { d.MaxProperties(n, 2) }, "expected at most 2 entries, got 3"},
		{`{"a":1}`, func(d *Decoder, n int) { d.MaxProperties(n, 1) }, ""},
	}
	for _, tt := range tests {
		input := `{"v":` + tt.value + `}`
		got := decode(t, input, false, member(func(d *Decoder) {
			n := 0
			if strings.HasPrefix(tt.value, "[") {
				if d.Array() {
					for d.NextItem() {
						d.Int(0)
						n++
					}
				}
			} else if d.Object() {
				for d.Next() {
					d.Int(0)
					n++
				}
			}
			tt.check(d, n) // after the closing bracket the path is the member again
		}))
		var want []Problem
		if tt.problem != "" {
			want = p("v", tt.problem)
		}
		checkProblems(t, input, got, want)
	}
}

func TestDecoderFormats(t *testing.T) {
	tests := []struct {
		format   string
		expected string // the message's words
		valid    []string
		invalid  []string
	}{
		{"date-time", "RFC 3339 date-time",
			[]string{"1963-06-19T08:30:06.283185Z", "1963-06-19t08:30:06z", "1937-01-01T12:00:27.87+00:20", "1998-12-31T23:59:60Z", "1998-12-31T15:59:60.123-08:00", "2020-02-29T00:00:00-23:59", "1985-04-12T00:59:59.999999999999999Z"},
			[]string{"", "yesterday", "1998-12-31T23:59:61Z", "1998-12-31T23:58:60Z", "1998-12-31T22:59:60Z", "1990-02-31T15:59:59.123-08:00", "1990-12-31T15:59:59-24:00", "1963-06-19T08:30:06.Z", "1963-06-19 08:30:06Z", "1963-06-19T08:30:06", "2013-350T01:01:01", "1963-06-1৪T00:00:00Z", "2021-02-29T00:00:00Z", "1963-06-19T08:30:06+0200",
				"1963-06-19T08:30:06.28123+01:00Z", "+11963-06-19T08:30:06.283185Z", "1963-6-19T08:30:06Z", "1963-06-11T0৪:00:00Z", "1990-12-31T10:00:00+10:60"}},
		{"date", "date (YYYY-MM-DD)",
			[]string{"1963-06-19", "2020-02-29", "2000-02-29", "2021-12-31"},
			[]string{"06/19/1963", "2013-350", "1998-1-20", "1998-01-1", "1998-13-01", "1998-04-31", "2021-02-29", "1900-02-29", "1963-06-1৪", "20230328", "2023-W01", "1963-06-19T00:00:00Z", "0000-00-00"}},
		{"time", "time (HH:MM:SS with offset)",
			[]string{"08:30:06Z", "08:30:06.283185Z", "08:30:06z", "23:59:60Z", "23:59:60+00:00", "01:29:60+01:30", "23:29:60+23:30", "15:59:60-08:00", "00:29:60-23:30", "08:30:06-08:00", "12:34:56-00:00", "08:30:06+00:20", "23:20:50.52Z"},
			[]string{"22:59:60Z", "23:58:60Z", "23:59:60+01:00", "08:30:06", "12:00:00.52", "01:02:03+24:00", "01:02:03+00:60", "08:30:06 PST", "01:01:01,1111", "24:00:00Z", "00:60:00Z", "1:2:3Z", "08:30:06.Z", "૪8:30:06Z", "08:30:06+0800",
				"008:030:006Z", "8:3:6Z", "00:00:61Z", "01:02:03Z+00:30", "08:30:06#00:20", "2020-11-28T23:55:45Z", "08:30:06+01", "08:30:06Z\n", "24:59:00+01:00", "23:59:60+00:30", "23:59:60-00:30", "ab:cd:ef"}},
		{"email", "email address",
			[]string{"joe.bloggs@example.com", "te~st@example.com", "~test@example.com", "test~@example.com", "te.s.t@example.com", "a@localhost", "joe@[127.0.0.1]", "joe@[IPv6:::1]", "o'hara+tag@example.co.uk",
				`"joe bloggs"@example.com`, `"joe..bloggs"@example.com`, `"joe@bloggs"@example.com`, `""@iana.org`, `"\a"@iana.org`, `"\""@iana.org`,
				"a@[ipv6:::1]", "test@255.255.255.255", "test@c--n.com", "test@io"},
			[]string{"2962", "@example.com", "joe@", ".test@example.com", "test.@example.com", "te..st@example.com", "a@b@c.com", "joe bloggs@example.com", "joe@invalid=domain.com", "joe@[127.0.0.300]", strings.Repeat("a", 65) + "@example.com",
				"test@iana.org.", `"test@iana.org`, `"test"test@iana.org`, `test"@iana.org`, "a@[]", "a@[1.2.3]", "test@[RFC-5322-domain-literal]",
				"test@a[255.255.255.255]", "aé@iana.org", "a@é.org", "a,b@iana.org", "test(comment)@iana.org", " a@iana.org", "a@iana.org ",
				"\x7f@iana.org", `"test\©"@iana.org`, "a\uff20iana.org", `test\@test@iana.org`, "[1.2.3.4]@iana.org", `"` + strings.Repeat("a", 63) + `"@x.org`}},
		{"hostname", "hostname",
			[]string{"www.example.com", "localhost", "a", "1host", "xn--4gbwdl.xn--wgbh1c", "example.com.", strings.Repeat("a", 63) + ".com"},
			[]string{"", ".", "-a-host-name", "not_a_valid_host_name", "a-host-name-", "hello..world", ".example.com", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "aa", "ex ample.com", "exämple.com"}},
		{"ipv4", "IPv4 address",
			[]string{"192.168.0.1", "0.0.0.0", "255.255.255.255"},
			[]string{"127.0.0.0.1", "256.256.256.256", "127.0", "0x7f000001", "087.10.0.1", "192.168.1.0/24", "1.2.3.", "1..2.3", "1.2.3.4 ", "1.2.3.৪", ""}},
		{"ipv6", "IPv6 address",
			[]string{"::1", "::", "2001:db8::1", "::ffff:192.168.0.1", "1:d6::42", "1:2:3:4:5:6:7:8"},
			[]string{"12345::", "::abcef", "1:1:1:1:1:1:1:1:1", "::laptop", "fe80::1%eth0", "1.2.3.4", ":2:3:4:5:6:7:8", "1:2:3:4:5:6:7:00000", "", " ::1"}},
		{"uri", "absolute URI",
			[]string{"http://foo.bar/?baz=qux#quux", "urn:isbn:0451450523", "mailto:joe@example.com", "file:///etc/passwd", "ftp://ftp.is.co.za/rfc/rfc1808.txt"},
			[]string{"//foo.bar/?baz=qux#quux", "/abc", `\\WINDOWS\fileshare`, "abc", "http:// shouldfail.com", ":// should fail", "bad,scheme://www.example.com", ""}},
		{"uuid", "UUID",
			[]string{"2EB8AA08-AA98-11EA-B4AA-73B441D16380", "2eb8aa08-aa98-11ea-b4aa-73b441d16380", "00000000-0000-0000-0000-000000000000"},
			[]string{"2eb8aa08-aa98-11ea-b4aa-73b441d1638", "2eb8aa08-aa98-11ea-73b441d16380", "2eb8aa08aa9811eab4aa73b441d16380", "2eb8aa08-aa98-11ea-b4ga-73b441d16380", "{2eb8aa08-aa98-11ea-b4aa-73b441d16380}"}},
		{"unknown-format", "", []string{"anything", ""}, nil},
	}
	for _, tt := range tests {
		for _, s := range tt.valid {
			input, _ := json.Marshal(map[string]string{"v": s})
			got := decode(t, string(input), false, member(func(d *Decoder) { d.Format(d.String(), tt.format) }))
			checkProblems(t, string(input), got, nil)
		}
		for _, s := range tt.invalid {
			input, _ := json.Marshal(map[string]string{"v": s})
			got := decode(t, string(input), false, member(func(d *Decoder) { d.Format(d.String(), tt.format) }))
			checkProblems(t, string(input), got, p("v", "expected "+tt.expected+", got "+GotString(s)))
		}
	}
}

// ---- Unknown, Duplicate, Missing ----

func TestDecoderUnknownSkipsAnyValue(t *testing.T) {
	input := `{"a":{"x":[1,{"y":"z"}]},"b":"ok","c":[[]]}`
	var b string
	got := decode(t, input, false, func(d *Decoder) {
		if d.Object() {
			for d.Next() {
				if string(d.Key()) == "b" {
					b = d.String()
					continue
				}
				d.Unknown("b")
			}
		}
	})
	checkProblems(t, input, got, p("a", "unknown field (allowed: b)", "c", "unknown field (allowed: b)"))
	if b != "ok" {
		t.Errorf("b = %q", b)
	}
	got = decode(t, `{"a":1}`, false, func(d *Decoder) {
		if d.Object() {
			for d.Next() {
				d.Unknown("")
			}
		}
	})
	checkProblems(t, `{"a":1}`, got, p("a", "unknown field (no fields are allowed)"))
}

func TestDecoderMissingPaths(t *testing.T) {
	input := `{"o":{"a b":[{}]}}`
	got := decode(t, input, false, func(d *Decoder) {
		if d.Object() {
			for d.Next() {
				if d.Object() {
					for d.Next() {
						if d.Array() {
							for d.NextItem() {
								if d.Object() {
									for d.Next() {
									}
								}
								d.Missing("id", "string")
								d.Missing("x-y", "")
							}
						}
					}
				}
			}
		}
		d.Missing("top", "integer")
	})
	checkProblems(t, input, got, p(
		`o["a b"][0].id`, "missing required field (expected string)",
		`o["a b"][0]["x-y"]`, "missing required field",
		"top", "missing required field (expected integer)"))
}

// ---- paths ----

// walk reads any value, requiring strings at the leaves, so that a problem
// lands at a leaf's path.
func walk(d *Decoder, depth int) {
	switch {
	case depth%2 == 0 && d.Object():
		for d.Next() {
			walk(d, depth+1)
		}
	case depth%2 == 1 && d.Null():
	default:
		_ = d.String()
	}
}

func TestDecoderPaths(t *testing.T) {
	nestedObjects := func(d *Decoder) {
		var rec func()
		rec = func() {
			if d.Object() {
				for d.Next() {
					switch string(d.Key()) {
					case "arr":
						if d.Array() {
							for d.NextItem() {
								rec()
							}
						}
					case "leaf":
						_ = d.String()
					default:
						rec()
					}
				}
			}
		}
		rec()
	}
	tests := []struct {
		input, path string
	}{
		{`{"leaf":1}`, "leaf"},
		{`{"location":{"leaf":1}}`, "location.leaf"},
		{`{"a":{"arr":[{"leaf":"x"},{"leaf":"y"},{"leaf":3}]}}`, "a.arr[2].leaf"},
		{`{"meta":{"x-y":{"leaf":1}}}`, `meta["x-y"].leaf`},
		{`{"a b":{"leaf":1}}`, `["a b"].leaf`},
		{`{"_ok9":{"9no":{"leaf":1}}}`, `_ok9["9no"].leaf`},
		{`{"":{"leaf":1}}`, `[""].leaf`},
		{`{"q\"k":{"leaf":1}}`, `["q\"k"].leaf`},
		{`{"\u0061bc":{"leaf":1}}`, "abc.leaf"},
		{`{"k\u00e9":{"leaf":1}}`, `["ké"].leaf`},
		{`{"\u0061":{"\u0062":{"\u0063":{"arr":[{"le\u0061f":1}]}}}}`, "a.b.c.arr[0].leaf"},
		{`{"é":{"leaf":1}}`, `["é"].leaf`},
		{`{"a\nb":{"leaf":1}}`, `["a\nb"].leaf`},
	}
	for _, tt := range tests {
		got := decode(t, tt.input, false, nestedObjects)
		checkProblems(t, tt.input, got, p(tt.path, "expected string, got "+gotOf(tt.input)))
	}
}

// gotOf returns the text of the last scalar value in a test input.
func gotOf(input string) string {
	i := strings.LastIndex(input, ":")
	return strings.TrimRight(input[i+1:], "}]")
}

func TestDecoderEscapedKeysStayValid(t *testing.T) {
	// Keys with escapes live in scratch that later keys must not overwrite
	// while they are on the path: build a deep path of escaped keys, long
	// enough to make the scratch grow, then fail at the bottom.
	var in, want strings.Builder
	const depth = 40
	for i := range depth {
		fmt.Fprintf(&in, `{"k\u00e9%d_%s":`, i, strings.Repeat("x", 30))
		fmt.Fprintf(&want, `["ké%d_%s"]`, i, strings.Repeat("x", 30))
	}
	in.WriteString("1")
	in.WriteString(strings.Repeat("}", depth))
	var keys []string
	var rec func(d *Decoder, level int)
	rec = func(d *Decoder, level int) {
		if level == depth {
			_ = d.String()
			return
		}
		if d.Object() {
			for d.Next() {
				key := d.Key()
				rec(d, level+1)
				// Key is still this member's after its value was read.
				keys = append(keys, string(key), string(d.Key()))
			}
		}
	}
	got := decode(t, in.String(), false, func(d *Decoder) { rec(d, 0) })
	checkProblems(t, "deep escaped keys", got, p(want.String(), "expected string, got 1"))
	for i := 0; i < len(keys); i += 2 {
		level := depth - 1 - i/2
		wantKey := fmt.Sprintf("ké%d_%s", level, strings.Repeat("x", 30))
		if keys[i] != wantKey || keys[i+1] != wantKey {
			t.Fatalf("level %d: key %q, Key() after the value %q, want %q", level, keys[i], keys[i+1], wantKey)
		}
	}
}

// ---- syntax ----

func TestDecoderSyntaxErrors(t *testing.T) {
	tests := []struct {
		input, path, message string
	}{
		{`{"a":1`, "", "unexpected end of input at offset 6"},
		{`{"a":`, "a", "unexpected end of input at offset 5"},
		{`{"a"`, "", "unexpected end of input at offset 4"},
		{`{`, "", "unexpected end of input at offset 1"},
		{`{"a":"abc`, "a", "unexpected end of input at offset 9"},
		{`{"a":tru}`, "a", "invalid character '}' in literal true (expecting 'e') at offset 8"},
		{`{"a":nul`, "a", "unexpected end of input at offset 8"},
		{`{"a":01}`, "", "invalid character '1' after object key:value pair at offset 6"},
		{`{"a":+1}`, "a", "invalid character '+' looking for a value at offset 5"},
		{`{"a":NaN}`, "a", "invalid character 'N' looking for a value at offset 5"},
		{`{"a":Infinity}`, "a", "invalid character 'I' looking for a value at offset 5"},
		{`{"a":-Infinity}`, "a", "invalid character 'I' in numeric literal at offset 6"},
		{`{"a":.5}`, "a", "invalid character '.' looking for a value at offset 5"},
		{`{"a":1.}`, "a", "invalid character '}' after decimal point in numeric literal at offset 7"},
		{`{"a":1e}`, "a", "invalid character '}' in exponent of numeric literal at offset 7"},
		{`{"a":1e+}`, "a", "invalid character '}' in exponent of numeric literal at offset 8"},
		{`{"a":-}`, "a", "invalid character '}' in numeric literal at offset 6"},
		{`{"a":1,}`, "", "invalid character '}' looking for beginning of object key string at offset 7"},
		{`{"a":1 "b":2}`, "", "invalid character '\"' after object key:value pair at offset 7"},
		{`{"a" 1}`, "", "invalid character '1' after object key at offset 5"},
		{`{a:1}`, "", "invalid character 'a' looking for beginning of object key string at offset 1"},
		{`{'a':1}`, "", `invalid character '\'' looking for beginning of object key string at offset 1`},
		{"{\"a\":\"x\x01\"}", "a", `invalid character '\x01' in string literal at offset 7`},
		{"{\"a\":\"x\ty\"}", "a", `invalid character '\t' in string literal at offset 7`},
		{`{"a":"\x"}`, "a", "invalid character 'x' in string escape code at offset 7"},
		{`{"a":"\u12G4"}`, "a", `invalid character 'G' in \u hexadecimal character escape at offset 10`},
		{`{"a":"\u12"}`, "a", `invalid character '"' in \u hexadecimal character escape at offset 10`},
		{"{\"a\":\xff}", "a", `invalid character '\xff' looking for a value at offset 5`},
		{"{\"a\":é}", "a", "invalid character 'é' looking for a value at offset 5"},
		{"{\"a\":\x00}", "a", `invalid character '\x00' looking for a value at offset 5`},
		{`{"a":[1,]}`, "a[1]", "invalid character ']' looking for a value at offset 8"},
		{`{"a":[1 2]}`, "a", "invalid character '2' after array element at offset 8"},
		{`{"a":[1`, "a", "unexpected end of input at offset 7"},
		{`{"a":[`, "a[0]", "unexpected end of input at offset 6"},
		{`{"a":{"b":[{"c":}]}}`, "a.b[0].c", "invalid character '}' looking for a value at offset 16"},
		{`{"a":1}}`, "", "invalid character '}' after top-level value at offset 7"},
		{`{"a":1} {"a":1}`, "", "invalid character '{' after top-level value at offset 8"},
		{"\ufeff{}", "", `invalid character '\ufeff' looking for a value at offset 0`},
		{`nul`, "", "unexpected end of input at offset 3"},
	}
	for _, tt := range tests {
		// The value is read with Any, Skip, Raw and the walk decoder: the
		// error must be the same through each, and be the only problem.
		readers := map[string]func(d *Decoder){
			"Any":  func(d *Decoder) { d.Any() },
			"Skip": func(d *Decoder) { d.Skip() },
			"Raw":  func(d *Decoder) { d.Raw() },
			"members": func(d *Decoder) {
				if d.Object() {
					for d.Next() {
						d.Any()
					}
				}
			},
		}
		for name, read := range readers {
			got := decode(t, tt.input, false, read)
			want := p(tt.path, "invalid JSON: "+tt.message)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %q\n got: %q\nwant: %q", name, tt.input, got, want)
			}
		}
	}
}

func TestDecoderSyntaxErrorStopsDecoding(t *testing.T) {
	var d Decoder
	d.Reset([]byte(`{"a":"x","b":[1,2 3],"c":"y"}`))
	var calls []string
	if !d.Object() {
		t.Fatal("Object() = false")
	}
	for d.Next() {
		calls = append(calls, string(d.Key()))
		if string(d.Key()) == "b" {
			d.Array()
			for d.NextItem() {
				_ = d.String() // type problems before the syntax error are dropped
			}
			continue
		}
		d.Int(0)
	}
	if strings.Join(calls, ",") != "a,b" {
		t.Errorf("members read: %v", calls)
	}
	// Every later call does nothing.
	if d.Object() || d.Next() || d.Array() || d.NextItem() || d.Null() || d.String() != "" || d.Int(0) != 0 || d.Any() != nil || d.Raw() != nil {
		t.Error("a call after a syntax error returned something")
	}
	d.Missing("z", "string")
	d.Fail("x", "y")
	want := p("b", "invalid JSON: invalid character '3' after array element at offset 18")
	checkProblems(t, "syntax", d.Problems(), want)
}

func TestDecoderDepthLimit(t *testing.T) {
	nest := func(n int) string { // root object + n arrays
		return `{"a":` + strings.Repeat("[", n) + strings.Repeat("]", n) + `}`
	}
	readers := map[string]func(d *Decoder){
		"Any":  func(d *Decoder) { d.Any() },
		"Skip": func(d *Decoder) { d.Skip() },
		"Raw":  func(d *Decoder) { d.Raw() },
		"Unknown": func(d *Decoder) {
			if d.Object() {
				for d.Next() {
					d.Unknown("")
				}
			}
		},
		"Unmarshal": func(d *Decoder) {
			if d.Object() {
				for d.Next() {
					d.Unmarshal(&rawSink{}, "x")
				}
			}
		},
		"Array": func(d *Decoder) {
			var rec func()
			rec = func() {
				if d.Array() {
					for d.NextItem() {
						rec()
					}
				}
			}
			if d.Object() {
				for d.Next() {
					rec()
				}
			}
		},
	}
	for name, read := range readers {
		if got := decode(t, nest(maxDepth-1), false, read); name != "Unknown" && got != nil {
			t.Errorf("%s: 1000 levels: %v", name, got)
		}
		want := p("a"+strings.Repeat("[0]", maxDepth-1), "invalid JSON: nested deeper than 1000 levels at offset 1004")
		checkProblems(t, name+" 1001 levels", decode(t, nest(maxDepth), false, read), want)
		// Far deeper input stops at the limit too, without exhausting the stack.
		checkProblems(t, name+" 1000000 levels", decode(t, nest(1000000), false, read), want)
	}
}

type rawSink struct{ b []byte }

func (r *rawSink) UnmarshalJSON(b []byte) error {
	r.b = append(r.b[:0], b...)
	return nil
}

func TestDecoderProblemCap(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 60 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"f%d":1`, i)
	}
	b.WriteString("}")
	var d Decoder
	d.Reset([]byte(b.String()))
	if d.Object() {
		for d.Next() {
			d.Unknown("x")
		}
	}
	d.Missing("x", "string")
	got := d.Problems()
	if len(got) != 51 {
		t.Fatalf("%d problems, want 51", len(got))
	}
	if got[49] != (Problem{"f49", "unknown field (allowed: x)"}) {
		t.Errorf("50th problem: %v", got[49])
	}
	if got[50] != (Problem{"", "too many problems; the first 50 are shown"}) {
		t.Errorf("last problem: %v", got[50])
	}
}

// ---- Failed, Problems and Reset ----

func TestDecoderFailedIsIdempotent(t *testing.T) {
	var d Decoder
	d.Reset([]byte(`{"days":1}  x`))
	var v weatherIn
	atpDecodeWeatherIn(&d, &v)
	for range 3 {
		if !d.Failed() {
			t.Fatal("Failed() = false")
		}
	}
	want := p("", "invalid JSON: invalid character 'x' after top-level value at offset 12")
	checkProblems(t, "first Problems", errOf(&d).Problems, want)
	checkProblems(t, "second Problems", errOf(&d).Problems, want)
}

func TestDecoderUnreadParams(t *testing.T) {
	// A decoder that reads nothing (a tool without params) still gets its
	// params checked when it asks Failed.
	tests := []struct {
		input string
		want  []Problem
	}{
		{`{"a":[1,{"b":null}]}`, nil},
		{``, nil},
		{`null`, nil},
		{`[1]`, p("", "expected object, got array")},
		{`{"a":1} x`, p("", "invalid JSON: invalid character 'x' after top-level value at offset 8")},
		{`{"a":[1,}`, p("a[1]", "invalid JSON: invalid character '}' looking for a value at offset 8")},
	}
	for _, tt := range tests {
		checkProblems(t, tt.input, decode(t, tt.input, false, func(*Decoder) {}), tt.want)
	}
}

func TestDecoderReset(t *testing.T) {
	var d Decoder
	d.Reset([]byte(`{"location":{"city":1},"days":"x"} trailing`))
	d.SetCoercion(true)
	var v weatherIn
	atpDecodeWeatherIn(&d, &v)
	if !d.Failed() {
		t.Fatal("Failed() = false")
	}
	err := errOf(&d)
	saved := fmt.Sprint(err.Problems)

	// Abandon a decode half way, as a panic would.
	d.Reset([]byte(`{"a":{"b\u00e9":[{"c":`))
	d.Object()
	d.Next()
	d.Object()
	d.Next()
	d.Array()
	d.NextItem()

	d.Reset([]byte(weatherJSON))
	v = weatherIn{}
	atpDecodeWeatherIn(&d, &v)
	if d.Failed() || errOf(&d) != nil || len(d.Problems()) != 0 {
		t.Fatalf("state leaked through Reset: %v", errOf(&d))
	}
	if v.Days != 3 || v.Location.City != "Paris" {
		t.Fatalf("decoded %+v", v)
	}
	if d.coerce {
		t.Error("Reset left coercion on")
	}
	// Coercion is off after Reset.
	d.Reset([]byte(`{"v":"3"}`))
	checkProblems(t, "coercion after Reset", func() []Problem {
		member(func(d *Decoder) { d.Int(0) })(&d)
		return d.Problems()
	}(), p("v", `expected integer, got "3"`))
	// A ValidationError handed out before Reset is not changed by later use.
	d.Reset([]byte(`{"a":1,"b":2}`))
	if d.Object() {
		for d.Next() {
			d.Unknown("")
		}
	}
	if got := fmt.Sprint(err.Problems); got != saved {
		t.Errorf("earlier error changed: %s, was %s", got, saved)
	}
	if d.Key() != nil {
		t.Errorf("Key() after the end = %q", d.Key())
	}
}

func TestDecoderZeroValue(t *testing.T) {
	var d Decoder // never Reset: behaves as empty params
	if !d.Object() || d.Next() || d.Failed() {
		t.Fatalf("zero Decoder: %v", errOf(&d))
	}
}

// ---- Any, Raw, Unmarshal ----

func TestDecoderAnyMatchesEncodingJSON(t *testing.T) {
	inputs := []string{
		`{}`, `{"a":1,"b":[true,false,null,"s",{"c":-2.5e3}],"d":{}}`, `{"a":1,"a":2}`, `{"a":{"x":1},"a":[]}`,
		`[]`, `[[],[{}]]`, `"x"`, `1e-400`, `-0`, `123456789012345678901234567890`, `{"\ud800":"\udc00x"}`,
	}
	for _, in := range inputs {
		var want any
		if err := json.Unmarshal([]byte(in), &want); err != nil {
			t.Fatal(err)
		}
		var got any
		problems := decode(t, in, false, func(d *Decoder) { got = d.Any() })
		if problems != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %#v (%v), want %#v", in, got, problems, want)
		}
	}
	got := decode(t, `{"a":[1,1e400]}`, false, func(d *Decoder) { d.Any() })
	checkProblems(t, "1e400", got, p("a[1]", "expected number from -1.7976931348623157e+308 to 1.7976931348623157e+308, got 1e400"))
}

func TestDecoderRaw(t *testing.T) {
	input := []byte(`{"a": [1, {"b" : "\u00e9"}] , "c":true}`)
	var raws []string
	var keep []byte
	got := decode(t, string(input), false, func(d *Decoder) {
		d.Reset(input)
		if d.Object() {
			for d.Next() {
				r := d.Raw()
				if keep == nil {
					keep = r
				}
				raws = append(raws, string(r))
			}
		}
	})
	if got != nil || strings.Join(raws, "|") != `[1, {"b" : "\u00e9"}]|true` {
		t.Fatalf("raws %q, problems %v", raws, got)
	}
	input[7] = 'X' // the caller owns a copy
	if string(keep) != `[1, {"b" : "\u00e9"}]` {
		t.Errorf("Raw shares the input: %s", keep)
	}
	var root json.RawMessage
	decode(t, " [1] \n", false, func(d *Decoder) { root = d.Raw() })
	if string(root) != "[1]" {
		t.Errorf("root Raw = %q", root)
	}
}

type point struct{ X, Y int }

func (pt *point) UnmarshalJSON(b []byte) error {
	var v [2]int
	if err := json.Unmarshal(b, &v); err != nil {
		return errors.New("want [x, y]")
	}
	pt.X, pt.Y = v[0], v[1]
	return nil
}

type color string

func (c *color) UnmarshalText(b []byte) error {
	switch string(b) {
	case "red", "green":
		*c = color(b)
		return nil
	}
	return errors.New("unknown color")
}

func TestDecoderUnmarshal(t *testing.T) {
	tests := []struct {
		value   string
		want    any
		problem string
	}{
		{`[1, 2]`, point{1, 2}, ""},
		{`{"x":1}`, point{}, "expected point, got object: want [x, y]"},
		{`"here"`, point{}, `expected point, got "here": want [x, y]`},
		{`3.5`, point{}, `expected point, got 3.5: want [x, y]`},
	}
	for _, tt := range tests {
		input := `{"v":` + tt.value + `}`
		var pt point
		got := decode(t, input, false, member(func(d *Decoder) { d.Unmarshal(&pt, "point") }))
		var want []Problem
		if tt.problem != "" {
			want = p("v", tt.problem)
		}
		checkProblems(t, input, got, want)
		if tt.problem == "" && pt != tt.want {
			t.Errorf("%s: got %+v", input, pt)
		}
	}
	textTests := []struct {
		value, want, problem string
	}{
		{`"red"`, "red", ""},
		{`"gr\u0065en"`, "green", ""},
		{`"mauve"`, "", `expected color, got "mauve": unknown color`},
		{`42`, "", "expected color, got 42"},
		{`null`, "", "expected color, got null"},
	}
	for _, tt := range textTests {
		input := `{"v":` + tt.value + `}`
		var c color
		got := decode(t, input, false, member(func(d *Decoder) { d.UnmarshalText(&c, "color") }))
		var want []Problem
		if tt.problem != "" {
			want = p("v", tt.problem)
		}
		checkProblems(t, input, got, want)
		if string(c) != tt.want {
			t.Errorf("%s: got %q", input, c)
		}
	}
}

// ---- misuse never panics ----

func TestDecoderMisuse(t *testing.T) {
	const order = "internal error: Decoder.%s called out of order; run go generate with the atpgen that matches this runtime"
	tests := []struct {
		name, input string
		calls       func(d *Decoder)
		want        []Problem
	}{
		{"Next without Object", `{"a":1}`, func(d *Decoder) { d.Next() }, p("", fmt.Sprintf(order, "Next"))},
		{"NextItem in an object", `{"a":1}`, func(d *Decoder) { d.Object(); d.NextItem() }, p("", fmt.Sprintf(order, "NextItem"))},
		{"Next in an array", `{"a":[1]}`, func(d *Decoder) { d.Object(); d.Next(); d.Array(); d.Next() }, p("a", fmt.Sprintf(order, "Next"))},
		{"value without Next", `{"a":1}`, func(d *Decoder) { d.Object(); _ = d.String() }, p("", fmt.Sprintf(order, "String"))},
		{"two values for a member", `{"a":1}`, func(d *Decoder) { d.Object(); d.Next(); d.Int(0); d.Int(0) }, p("a", fmt.Sprintf(order, "Int"))},
		{"second root", `{}`, func(d *Decoder) { d.Object(); d.Next(); d.Object() }, p("", fmt.Sprintf(order, "Object"))},
		{"Next after the end", `{}`, func(d *Decoder) { d.Object(); d.Next(); d.Next() }, p("", fmt.Sprintf(order, "Next"))},
		{"Null after the end", `{}`, func(d *Decoder) { d.Object(); d.Next(); d.Null() }, p("", fmt.Sprintf(order, "Null"))},
		{"unread values are skipped", `{"a":{"b":[1,2]},"c":[{"d":1}]}`, func(d *Decoder) {
			d.Object()
			d.Next()
			d.Next()
			d.Array()
			d.NextItem()
			d.NextItem()
			d.Next()
		}, nil},
		{"nil Unmarshaler and regexp", `{"a":1,"b":"x","c":"s"}`, func(d *Decoder) {
			d.Object()
			d.Next()
			d.Unmarshal(nil, "x")
			d.Next()
			d.UnmarshalText(nil, "x")
			d.Next()
			d.Pattern(d.String(), nil, "")
			d.Next()
		}, nil},
		{"checks before anything", `{}`, func(d *Decoder) {
			d.Enum("x")
			d.Format("x", "email")
			d.Unknown("a")
			d.Duplicate()
			d.MinItems(0, 1)
		}, p("", `expected one of , got "x"`, "", `expected email address, got "x"`, "", "unknown field (allowed: a)", "", "duplicate field", "", "expected at least 1 item, got 0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkProblems(t, tt.input, decode(t, tt.input, false, tt.calls), tt.want)
		})
	}
}

// TestDecoderRandomCallsNeverPanic drives the Decoder with random call
// sequences over valid and broken inputs.
func TestDecoderRandomCallsNeverPanic(t *testing.T) {
	inputs := []string{
		weatherJSON, `{}`, ``, `null`, `[1,[2,{"a":"b"}]]`, `{"a":{"b":[1,2,{"c":null}]},"d":"e\u00e9"}`,
		`{"a":[1,`, `{"a":"\ud800"}`, `"x"`, `{"a":1} x`, `{"a":[[[[[[]]]]]]}`, "{\"a\":\"\xff\"}",
	}
	ops := []func(d *Decoder){
		func(d *Decoder) { d.Object() }, func(d *Decoder) { d.Next() }, func(d *Decoder) { d.Array() },
		func(d *Decoder) { d.NextItem() }, func(d *Decoder) { d.Null() }, func(d *Decoder) { d.Skip() },
		func(d *Decoder) { _ = d.String() }, func(d *Decoder) { d.Bool() }, func(d *Decoder) { d.Int(8) },
		func(d *Decoder) { d.Uint(0) }, func(d *Decoder) { d.Float(32) }, func(d *Decoder) { d.Bytes() },
		func(d *Decoder) { d.Time() }, func(d *Decoder) { d.Duration() }, func(d *Decoder) { d.Raw() },
		func(d *Decoder) { d.Any() }, func(d *Decoder) { d.Unmarshal(&rawSink{}, "x") },
		func(d *Decoder) { var c color; d.UnmarshalText(&c, "color") }, func(d *Decoder) { d.Unknown("a") },
		func(d *Decoder) { d.Duplicate() }, func(d *Decoder) { d.Missing("m", "string") },
		func(d *Decoder) { d.Fail("x", "y") }, func(d *Decoder) { _ = d.Key() },
		func(d *Decoder) { d.Failed() }, func(d *Decoder) { errOf(d) }, func(d *Decoder) { d.Problems() },
		func(d *Decoder) { d.SetCoercion(true) }, func(d *Decoder) { d.Format("x", "date") },
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var d Decoder
	for range 20000 {
		d.Reset([]byte(inputs[rng.IntN(len(inputs))]))
		for range rng.IntN(30) {
			ops[rng.IntN(len(ops))](&d)
		}
		d.Failed()
		errOf(&d)
	}
}

// scribbler writes over the bytes it is handed, as a careless UnmarshalJSON
// may.
type scribbler struct{}

func (scribbler) UnmarshalJSON(b []byte) error {
	for i := range b {
		b[i] = 'x'
	}
	return nil
}

func TestDecoderUnmarshalAtEmptyRoot(t *testing.T) {
	// Empty params read as {} from a shared buffer, which must not be handed
	// to code that could change it.
	if got := decode(t, "", false, func(d *Decoder) { d.Unmarshal(scribbler{}, "x") }); got != nil {
		t.Fatal(got)
	}
	var sink rawSink
	if got := decode(t, "null", false, func(d *Decoder) { d.Unmarshal(&sink, "x") }); got != nil || string(sink.b) != "{}" {
		t.Fatalf("got %q, %v", sink.b, got)
	}
}

func TestMultipleOfIsExactOnDecimals(t *testing.T) {
	cases := []struct {
		params, m string
		coerce    bool
		want      string
	}{
		{`{"v":0.29}`, "0.01", false, ""},
		{`{"v":0.3}`, "0.1", false, ""},
		{`{"v":1e2}`, "0.5", false, ""},
		{`{"v":0.295}`, "0.01", false, "v: expected multiple of 0.01, got 0.295"},
		{`{"v":7}`, "2.5", false, "v: expected multiple of 2.5, got 7"},
		{`{"v":"0.29"}`, "0.01", true, ""},
		{`{"v":1e300}`, "0.01", false, ""},
		{`{"v":"x"}`, "0.01", false, "v: expected number, got \"x\""}, // one message per bad value
	}
	for _, c := range cases {
		var d Decoder
		d.Reset([]byte(c.params))
		d.SetCoercion(c.coerce)
		if d.Object() {
			for d.Next() {
				d.Float(64)
				d.MultipleOf(c.m)
			}
		}
		got := ""
		if err := errOf(&d); err != nil {
			got = err.Problems[0].String()
		}
		if got != c.want {
			t.Errorf("%s multipleOf %s: got %q, want %q", c.params, c.m, got, c.want)
		}
	}
}

// problemsError is what package runtime makes of a Decoder's problems, for
// tests that check or print them as one error.
type problemsError struct{ Problems []Problem }

func (e *problemsError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.String()
	}
	return "invalid params: " + strings.Join(parts, "; ")
}

// errOf returns d's problems as one error, nil when there are none.
func errOf(d *Decoder) *problemsError {
	ps := d.Problems()
	if len(ps) == 0 {
		return nil
	}
	return &problemsError{Problems: ps}
}
