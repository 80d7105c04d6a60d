// Package weather holds the reference tool of the decoder benchmarks and fuzz
// tests: the input shape that published measurements of the Go MCP libraries
// use, so that the numbers compare.
package weather

import (
	"context"
	"fmt"
	"time"
)

//go:generate go tool atpgen

// Units is a temperature scale.
type Units string

const (
	// Degrees Celsius.
	Celsius Units = "celsius"
	// Degrees Fahrenheit.
	Fahrenheit Units = "fahrenheit"
)

// Location is where the forecast is for.
type Location struct {
	// City name, e.g. "Paris".
	City string `json:"city"`
	// ISO 3166-1 alpha-2 country code.
	Country string `json:"country,omitempty"`
}

// WeatherIn is the forecast request.
type WeatherIn struct {
	// Where to forecast.
	Location Location `json:"location"`
	// How many days ahead.
	Days int `json:"days"`
	// Temperature scale of the answer.
	Units Units `json:"units,omitempty"`
	// Labels echoed back.
	Tags []string `json:"tags,omitempty"`
	// Only observations after this time.
	Since *time.Time `json:"since,omitempty"`
}

// Forecast is the answer.
type Forecast struct {
	Summary string `json:"summary"`
}

// GetForecast returns a (fake) forecast.
//
//atp:tool readonly idempotent
func GetForecast(ctx context.Context, in WeatherIn) (Forecast, error) {
	return Forecast{Summary: fmt.Sprintf("%d days of sun in %s", in.Days, in.Location.City)}, nil
}
