package weather

import "github.com/atpgo/atp/runtime/atpimpl"

// DecodeWeatherIn decodes and validates params held by d into in with the
// generated decoder: what a call of get_forecast does before the function
// runs. It is exported for the side-by-side benchmarks of ../../bench, which
// time this step alone against the Go MCP libraries'.
func DecodeWeatherIn(d *atpimpl.Decoder, in *WeatherIn) { atpDecodeWeatherIn(d, in) }
