// Package gentest is the user code of gen's compile-and-run test: its
// model is built by hand in models_test.go, atp_gen.go is generated from
// it, and check/main.go calls the tools through runtime.Toolkit.Invoke.
package gentest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"example.com/gentest/sub"
	"github.com/atpgo/atp/runtime"
)

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
	City    string `json:"city"`
	Country string `json:"country,omitempty" jsonschema:"pattern=^[A-Z]{2}$"`
}

// WeatherIn is the forecast request.
type WeatherIn struct {
	Location Location   `json:"location"`
	Days     int        `json:"days" jsonschema:"minimum=1,maximum=14"`
	Units    Units      `json:"units,omitempty" jsonschema:"default=celsius"`
	Tags     []string   `json:"tags,omitempty" jsonschema:"maxItems=3,minLength=1"`
	Since    *time.Time `json:"since,omitempty"`
}

// Forecast is the answer.
type Forecast struct {
	Summary string `json:"summary"`
}

// GetForecast returns a (fake) forecast.
func GetForecast(ctx context.Context, in WeatherIn) (Forecast, error) {
	since := "-"
	if in.Since != nil {
		since = in.Since.UTC().Format(time.RFC3339)
	}
	return Forecast{Summary: fmt.Sprintf("%d days in %s/%s in %s tags=%q since=%s", in.Days, in.Location.City, in.Location.Country, in.Units, in.Tags, since)}, nil
}

// Greet greets someone.
func Greet(ctx context.Context, name string, times int) (string, error) {
	if name == "boom" {
		return "", errors.New("cannot greet boom")
	}
	return strings.TrimSpace(strings.Repeat("hi "+name+" ", times)), nil
}

// Ping checks that the toolkit is alive.
func Ping() {}

// Store's methods are tools too.
type Store struct{ Prefix string }

// Priority orders work.
type Priority int

const (
	Low  Priority = 1 // can wait
	High Priority = 2 // do it now
)

// Node is a tree node.
type Node struct {
	Label    string  `json:"label"`
	Children []*Node `json:"children,omitempty"`
}

// Base is embedded by value.
type Base struct {
	ID string `json:"id"`
}

// Paging is embedded by pointer.
type Paging struct {
	Page int `json:"page,omitempty" jsonschema:"minimum=1"`
}

// Level decodes itself from text.
type Level int

func (l *Level) UnmarshalText(b []byte) error {
	switch string(b) {
	case "low":
		*l = 1
	case "high":
		*l = 2
	default:
		return fmt.Errorf("unknown level %q", b)
	}
	return nil
}

// Money decodes itself from JSON: a number of cents or a "12.50" string.
type Money int64

func (m *Money) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return errors.New("not an amount")
		}
		*m = Money(f*100 + 0.5)
		return nil
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return errors.New("not an amount")
	}
	*m = Money(n)
	return nil
}

// KitchenIn has one field of every kind.
type KitchenIn struct {
	Base
	*Paging
	Priority Priority `json:"priority,omitempty"`
	Tree     Node     `json:"tree"`
	Items    []struct {
		Name string `json:"name"`
		Qty  uint8  `json:"qty"`
	} `json:"items,omitempty"`
	Labels map[Units]int      `json:"labels,omitempty"`
	Point  [2]float32         `json:"point,omitempty"`
	Blob   []byte             `json:"blob,omitempty"`
	Wait   time.Duration      `json:"wait,omitempty" jsonschema:"default=1m"`
	Extra  any                `json:"extra,omitempty"`
	Raw    json.RawMessage    `json:"raw,omitempty"`
	Level  Level              `json:"level,omitempty"`
	Price  Money              `json:"price,omitempty"`
	Limit  *int               `json:"limit,omitempty" jsonschema:"default=20"`
	Note   string             `json:"note,omitempty" jsonschema:"nullable"`
	Where  sub.Point          `json:"where,omitempty"`
	Codes  []string           `json:"codes,omitempty" jsonschema:"uniqueItems,pattern=^[a-z]+$"`
	Ratio  float64            `json:"ratio,omitempty" jsonschema:"exclusiveMinimum=0,maximum=1,multipleOf=0.25"`
	Meta   map[string][]int16 `json:"meta,omitempty"`
}

// Kitchen echoes what it got, in a stable form.
func (s *Store) Kitchen(ctx context.Context, call *runtime.Call, token runtime.AuthToken, in *KitchenIn) (map[string]any, error) {
	page := 0
	if in.Paging != nil {
		page = in.Page
	}
	var labels []string
	for k, v := range in.Labels {
		labels = append(labels, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(labels)
	limit := -1
	if in.Limit != nil {
		limit = *in.Limit
	}
	return map[string]any{
		"prefix": s.Prefix, "tool": call.Tool, "token": string(token),
		"id": in.ID, "page": page, "priority": in.Priority, "tree": countNodes(&in.Tree),
		"items": fmt.Sprint(in.Items), "labels": labels, "point": fmt.Sprint(in.Point),
		"blob": string(in.Blob), "wait": in.Wait.String(), "extra": in.Extra, "raw": string(in.Raw),
		"level": int(in.Level), "price": int64(in.Price), "limit": limit, "note": in.Note,
		"where": fmt.Sprint(in.Where), "codes": in.Codes, "ratio": in.Ratio, "meta": fmt.Sprint(in.Meta),
	}, nil
}

func countNodes(n *Node) int {
	c := 1
	for _, ch := range n.Children {
		if ch != nil {
			c += countNodes(ch)
		}
	}
	return c
}

// Echo repeats a note; a value receiver.
func (s Store) Echo(note string, count uint16) string {
	return s.Prefix + strings.Repeat(note, int(count))
}

// Fail always fails.
func (s *Store) Fail(ctx context.Context) error {
	return errors.New("it failed")
}

// Code is a named string without constants.
type Code string

// Tags is a named slice.
type Tags []string

// LimitsIn exercises the integer, float and named-type checks.
type LimitsIn struct {
	Tiny   int8      `json:"tiny,omitempty" jsonschema:"exclusiveMaximum=100"`
	Count  uint      `json:"count,omitempty"`
	Big    int       `json:"big,omitempty" jsonschema:"maximum=1099511627776"`
	Half   int       `json:"half,omitempty" jsonschema:"minimum=1.5"`
	Step   int       `json:"step,omitempty" jsonschema:"multipleOf=5"`
	Scale  float32   `json:"scale,omitempty" jsonschema:"enum=0.5,enum=1"`
	Mode   uint8     `json:"mode,omitempty" jsonschema:"enum=1,enum=3"`
	Code   Code      `json:"code,omitempty" jsonschema:"pattern=^[A-Z]+$,minLength=2"`
	On     bool      `json:"on,omitempty" jsonschema:"default=true"`
	Factor float64   `json:"factor,omitempty" jsonschema:"default=2.5"`
	Grid   [2][2]int `json:"grid,omitempty"`
	Tags   Tags      `json:"tags,omitempty" jsonschema:"minItems=1"`
	Words  Tags      `json:"words,omitempty"`
	When   string    `json:"when,omitempty" jsonschema:"format=date"`

	// Constraints on items (internal/parse puts them in Constraints.Items).

	Picks  []string        `json:"picks,omitempty" jsonschema:"maxItems=3,pattern=^[a-z]+$,maxLength=3"`
	Scores []int           `json:"scores,omitempty" jsonschema:"minimum=1,maximum=5,default=2,default=3"`
	Refs   []*string       `json:"refs,omitempty" jsonschema:"minLength=2"`
	Units  []Units         `json:"units,omitempty" jsonschema:"enum=celsius"`
	Pair   [2]float64      `json:"pair,omitempty" jsonschema:"exclusiveMinimum=0"`
	Labels Tags            `json:"labels,omitempty" jsonschema:"pattern=^#"`
	Waits  []time.Duration `json:"waits,omitempty" jsonschema:"default=1m,default=90s"`
	Codes  []Code          `json:"codes,omitempty" jsonschema:"enum=AA,enum=BB,default=AA"`
	Box    [2]int8         `json:"box,omitempty" jsonschema:"minimum=0,default=1,default=2"`
}

// Limits returns its input.
func Limits(in LimitsIn) LimitsIn { return in }
