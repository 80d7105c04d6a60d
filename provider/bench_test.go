package provider

import (
	"encoding/json"
	"testing"
)

// BenchmarkFormatTools converts the nine canonical tools of
// testdata/tools.json, as a server does for each get_toolkit_context.
func BenchmarkFormatTools(b *testing.B) {
	canon := canonicalTools(loadTools(b))
	for _, p := range Names() {
		b.Run(p, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := FormatTools(p, canon); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseToolCalls(b *testing.B) {
	raw := json.RawMessage(`{"role":"assistant","content":null,"tool_calls":[
	  {"id":"call_abc123","type":"function","function":{"name":"get_weather","arguments":"{\"location\":\"Paris\",\"unit\":null}"}},
	  {"id":"call_def456","type":"function","function":{"name":"get_time","arguments":"{\"tz\":\"Europe/Paris\"}"}}]}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseToolCalls(OpenAIChat, raw); err != nil {
			b.Fatal(err)
		}
	}
}
