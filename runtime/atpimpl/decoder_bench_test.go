package atpimpl

import (
	"encoding/json"
	"testing"
	"time"
)

// weatherInJSON is weatherIn with plain fields for encoding/json: what a
// library that only unmarshals (and validates nothing) does per call.
type weatherInJSON struct {
	Location struct {
		City    string `json:"city"`
		Country string `json:"country"`
	} `json:"location"`
	Days  int        `json:"days"`
	Units string     `json:"units"`
	Tags  []string   `json:"tags"`
	Since *time.Time `json:"since"`
}

// BenchmarkDecoderWeather compares the generated-style decoder, which also
// checks required fields, unknown and duplicate keys, the enum and the
// minimum, with a plain json.Unmarshal into the same struct.
func BenchmarkDecoderWeather(b *testing.B) {
	data := []byte(weatherJSON)
	b.Run("decoder", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var d Decoder // reused, as Toolkit.Invoke reuses pooled decoders
		for b.Loop() {
			var v weatherIn
			d.Reset(data)
			atpDecodeWeatherIn(&d, &v)
			if d.Failed() {
				b.Fatal(errOf(&d))
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			var v weatherInJSON
			if err := json.Unmarshal(data, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
	// The error path, for scale: every field wrong, all problems reported.
	bad := []byte(`{"location":{"city":1,"zip":2},"days":"x","units":"k","tags":[1],"since":"y","extra":{}}`)
	b.Run("decoder_bad_params", func(b *testing.B) {
		b.ReportAllocs()
		var d Decoder
		for b.Loop() {
			var v weatherIn
			d.Reset(bad)
			atpDecodeWeatherIn(&d, &v)
			if !d.Failed() {
				b.Fatal("no problem reported")
			}
			_ = errOf(&d)
		}
	})
}
