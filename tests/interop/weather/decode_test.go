// Package weather_test checks the generated decoder of tests/weather against
// a general JSON Schema validator.
package weather_test

import (
	"bytes"
	"encoding/json"
	"io"
	"math"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/tests/weather"
)

// inputSchema is get_forecast's generated input schema.
func inputSchema(tb testing.TB) []byte {
	tb.Helper()
	for _, tool := range weather.ATPTools() {
		if tool.Name == "get_forecast" {
			return tool.InputSchema
		}
	}
	tb.Fatal("tests/weather has no get_forecast tool")
	return nil
}

// reference is the valid 5-field input that the README's side-by-side
// benchmarks (module bench) give every library.
var reference = []byte(`{"location":{"city":"Paris","country":"FR"},"days":3,"units":"celsius","tags":["a","b"],"since":"2026-11-21T05:00:00Z"}`)

// compileSchema compiles the tool's generated input schema with a real JSON
// Schema validator, asserting formats as the generated decoder does.
func compileSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(inputSchema(tb)))
	if err != nil {
		tb.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("weather.json", doc); err != nil {
		tb.Fatal(err)
	}
	sch, err := c.Compile("weather.json")
	if err != nil {
		tb.Fatal(err)
	}
	return sch
}

// BenchmarkDecode compares the generated decode-and-validate with plain
// encoding/json (no checks at all) and with what peers do: encoding/json plus
// a compiled JSON Schema validator.
func BenchmarkDecode(b *testing.B) {
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		var d atpimpl.Decoder
		for b.Loop() {
			var in weather.WeatherIn
			d.Reset(reference)
			weather.DecodeWeatherIn(&d, &in)
			if d.Failed() {
				b.Fatal(d.Problems())
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in weather.WeatherIn
			if err := json.Unmarshal(reference, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json_schema", func(b *testing.B) {
		sch := compileSchema(b)
		b.ReportAllocs()
		for b.Loop() {
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(reference))
			if err != nil {
				b.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				b.Fatal(err)
			}
			var in weather.WeatherIn
			if err := json.Unmarshal(reference, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzDecode checks the generated decoder against an independent oracle on
// random input: encoding/json for syntax and values, santhosh-tekuri's JSON
// Schema validator on the generated schema for validity. It must never panic,
// and it must accept exactly the inputs the oracle accepts, decoding them to
// the same values.
//
// Two rules of the decoder are stricter than JSON Schema and are part of the
// oracle: a key may appear once per object (duplicates are how parameters are
// smuggled past validators that keep the last one), and an integer must fit
// in the Go field's type.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		string(reference),
		`{"location":{"city":"Paris"},"days":1}`,
		`{"location":{"city":"Paris"},"days":2.0,"since":null}`,
		`{"location":{"city":"Paris"},"days":1e2,"units":"fahrenheit","tags":[]}`,
		`{"location":{"city":"Paris","city":"Rome"},"days":1}`,
		`{"location":{"city":"Paris"},"days":1,"DAYS":2}`,
		`{"location":{"city":"Paris"},"days":99999999999999999999}`,
		`{"location":{"city":"Paris"},"days":-0}`,
		`{"location":{"city":"Par\u00efs\ud800"},"days":1,"since":"2026-11-21t05:00:00.5z"}`,
		`{"location":{"city":"Paris"},"days":1,"since":"2026-12-31T23:59:60Z"}`,
		`{"location":{"city":"Paris"},"days":1,"units":"kelvin"}`,
		`{"location":null,"days":"3"}`,
		`{"location":{"city":"Paris"},"days":1,"tags":["\u0000",""]}`,
		`[1,2]`, `null`, ``, `{`, `{"location":{"city":"Paris"},"days":1} x`,
	} {
		f.Add([]byte(s))
	}
	sch := compileSchema(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var d atpimpl.Decoder
		var got weather.WeatherIn
		d.Reset(data)
		weather.DecodeWeatherIn(&d, &got)
		accepted := !d.Failed()

		want, valid := oracle(sch, data)
		if accepted != valid {
			t.Fatalf("input %q: decoder accepted=%v, oracle valid=%v; decoder problems: %v", data, accepted, valid, d.Problems())
		}
		if accepted && !equalWeather(got, want) {
			t.Fatalf("input %q: decoded %+v, encoding/json %+v", data, got, want)
		}
	})
}

// oracle decides validity without the generated code.
func oracle(sch *jsonschema.Schema, data []byte) (weather.WeatherIn, bool) {
	var zero weather.WeatherIn
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		data = []byte("{}") // the runtime's documented reading of absent params
	}
	if !json.Valid(data) || hasDuplicateKeys(data) {
		return zero, false
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil || sch.Validate(v) != nil {
		return zero, false
	}
	// days: JSON Schema's integer (2.0 counts) that must fit in an int.
	days := v.(map[string]any)["days"].(json.Number)
	f, err := strconv.ParseFloat(string(days), 64)
	if err != nil || f != math.Trunc(f) || f < math.MinInt64 || f >= math.MaxInt64 {
		return zero, false
	}
	var loose struct {
		Location weather.Location `json:"location"`
		Days     float64          `json:"days"`
		Units    weather.Units    `json:"units"`
		Tags     []string         `json:"tags"`
		Since    *time.Time       `json:"since"`
	}
	if err := json.Unmarshal(data, &loose); err != nil {
		return zero, false
	}
	return weather.WeatherIn{Location: loose.Location, Days: int(loose.Days), Units: loose.Units, Tags: loose.Tags, Since: loose.Since}, true
}

func equalWeather(a, b weather.WeatherIn) bool {
	if (a.Since == nil) != (b.Since == nil) || a.Since != nil && !a.Since.Equal(*b.Since) {
		return false
	}
	a.Since, b.Since = nil, nil
	if len(a.Tags) == 0 && len(b.Tags) == 0 {
		a.Tags, b.Tags = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

// hasDuplicateKeys reports whether any object in data (valid JSON) repeats a key.
func hasDuplicateKeys(data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	type frame struct {
		keys   map[string]bool
		object bool
		atKey  bool
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false
		}
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{', '[':
				if top != nil && top.object {
					top.atKey = true
				}
				stack = append(stack, &frame{keys: map[string]bool{}, object: tok == '{', atKey: tok == '{'})
			default:
				stack = stack[:len(stack)-1]
			}
		default:
			if top != nil && top.object {
				if top.atKey {
					key := tok.(string)
					if top.keys[key] {
						return true
					}
					top.keys[key] = true
					top.atKey = false
				} else {
					top.atKey = true
				}
			}
		}
	}
}
