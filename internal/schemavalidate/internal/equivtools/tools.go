// Package equivtools holds tools whose generated decoders the schemavalidate
// tests compare with the Validator: one property per shape atpgen maps, so
// that a change in either side's words shows up as a failing test. (The
// weather reference input is tests/weather's.)
package equivtools

import (
	"context"
	"encoding/json"
	"time"
)

//go:generate go tool atpgen

// Tier is a plan.
type Tier string

const (
	TierFree Tier = "free" // no support
	TierPro  Tier = "pro"  // e-mail support
)

// Level is a numeric enum.
type Level int

const (
	LevelLow  Level = 1
	LevelHigh Level = 2
)

// Region has more values than a problem lists.
type Region string

const (
	RegionAF Region = "af"
	RegionAN Region = "an"
	RegionAS Region = "as"
	RegionEU Region = "eu"
	RegionNA Region = "na"
	RegionOC Region = "oc"
	RegionSA Region = "sa"
	RegionME Region = "me"
	RegionCA Region = "ca"
	RegionCB Region = "cb"
	RegionSE Region = "se"
	RegionNE Region = "ne"
)

// Grade is a numeric enum with more values than a problem lists.
type Grade int

const (
	Grade1 Grade = iota + 1
	Grade2
	Grade3
	Grade4
	Grade5
	Grade6
	Grade7
	Grade8
	Grade9
	Grade10
	Grade11
)

// Address is a postal address.
type Address struct {
	Street  string `json:"street,omitempty"`
	City    string `json:"city"`
	Country string `json:"country" jsonschema:"pattern=^[A-Z]{2}$"`
}

// Node is a tree.
type Node struct {
	Label    string  `json:"label"`
	Children []*Node `json:"children,omitempty"`
}

// Audit is embedded in Everything.
type Audit struct {
	RequestedBy string `json:"requested_by,omitempty" jsonschema:"minLength=2"`
}

// Everything has one property per shape that atpgen decodes.
type Everything struct {
	Audit
	Name     string            `json:"name" jsonschema:"minLength=1,maxLength=8"`
	Email    string            `json:"email,omitempty" jsonschema:"format=email"`
	Color    string            `json:"color,omitempty" jsonschema:"enum=red,enum=green"`
	Tier     Tier              `json:"tier,omitempty"`
	Level    Level             `json:"level,omitempty"`
	Region   Region            `json:"region,omitempty"`
	Grade    Grade             `json:"grade,omitempty"`
	Small    int8              `json:"small,omitempty"`
	Short    int16             `json:"short,omitempty" jsonschema:"minimum=0"`
	Byte     uint8             `json:"byte,omitempty"`
	Count    uint              `json:"count,omitempty"`
	Page     int               `json:"page,omitempty" jsonschema:"minimum=1,maximum=100"`
	Odd      int32             `json:"odd,omitempty" jsonschema:"exclusiveMinimum=0,exclusiveMaximum=10"`
	Step     int               `json:"step,omitempty" jsonschema:"multipleOf=5"`
	Half     float64           `json:"half,omitempty" jsonschema:"multipleOf=0.5"`
	Share    float64           `json:"share,omitempty" jsonschema:"minimum=0,maximum=1"`
	Frac     int               `json:"frac,omitempty" jsonschema:"minimum=1.5"`
	OK       bool              `json:"ok,omitempty"`
	Maybe    *int              `json:"maybe,omitempty"`
	Nullable string            `json:"nullable,omitempty" jsonschema:"nullable"`
	When     time.Time         `json:"when,omitempty"`
	Since    *time.Time        `json:"since,omitempty"`
	Wait     time.Duration     `json:"wait,omitempty"`
	Blob     []byte            `json:"blob,omitempty"`
	Tags     []string          `json:"tags,omitempty" jsonschema:"maxItems=3,uniqueItems=true"`
	Scores   []int             `json:"scores,omitempty" jsonschema:"uniqueItems=true"`
	Triple   [3]int            `json:"triple,omitempty"`
	Pair     [2]string         `json:"pair,omitempty" jsonschema:"uniqueItems=true"`
	Levels   []Level           `json:"levels,omitempty"`
	Labels   map[string]int    `json:"labels,omitempty"`
	ByTier   map[Tier]string   `json:"by_tier,omitempty"`
	Home     Address           `json:"home"`
	Work     *Address          `json:"work,omitempty"`
	Offices  []Address         `json:"offices,omitempty"`
	Tree     *Node             `json:"tree,omitempty"`
	Raw      json.RawMessage   `json:"raw,omitempty"`
	Nested   map[string][]bool `json:"nested,omitempty"`
}

// Ambiguous has the shapes whose schema does not tell which Go type is
// behind it, so that the Validator's words can differ from the generated
// decoder's (the verdict does not). TestDocumentedDifferences pins each one.
type Ambiguous struct {
	// float32 has the schema of float64: Float(64) accepts 1e39.
	Ratio float32 `json:"ratio,omitempty"`
	// any and json.RawMessage share {}; Any rejects numbers beyond float64.
	Extra any `json:"extra,omitempty"`
	// An int with minimum=0 has the schema of a uint.
	Offset int `json:"offset,omitempty" jsonschema:"minimum=0"`
	// A string with format=date-time has the schema of a time.Time.
	Stamp string `json:"stamp,omitempty" jsonschema:"format=date-time"`
	// A slice with minItems == maxItems has the schema of a Go array.
	Two []int `json:"two,omitempty" jsonschema:"minItems=2,maxItems=2"`
}

// Guess takes the ambiguous shapes.
//
//atp:tool
func Guess(in Ambiguous) {}

// Needs has one required property per shape, for the words of "missing
// required field (expected ...)".
type Needs struct {
	Tier     Tier              `json:"tier"`
	Level    Level             `json:"level"`
	Region   Region            `json:"region"`
	Grade    Grade             `json:"grade"`
	Color    string            `json:"color" jsonschema:"enum=red,enum=green"`
	Small    int8              `json:"small"`
	Count    uint32            `json:"count"`
	Share    float64           `json:"share"`
	OK       bool              `json:"ok"`
	When     time.Time         `json:"when"`
	Wait     time.Duration     `json:"wait"`
	Blob     []byte            `json:"blob"`
	Tags     []string          `json:"tags"`
	Triple   [3]int            `json:"triple"`
	Labels   map[string]int    `json:"labels"`
	Home     Address           `json:"home"`
	Tree     Node              `json:"tree"`
	Extra    any               `json:"extra"`
	Raw      json.RawMessage   `json:"raw"`
	Nullable string            `json:"nullable" jsonschema:"nullable"`
	Nested   map[string][]Tier `json:"nested"`
}

// Need requires everything.
//
//atp:tool
func Need(in Needs) {}

// Take accepts everything.
//
//atp:tool
func Take(ctx context.Context, in Everything) (string, error) { return in.Name, nil }

// Greet takes plain parameters.
//
// Parameters:
//   - name: who
//   - times: how often `jsonschema:"minimum=1,maximum=3"`
//   - loud: shout
//
//atp:tool
func Greet(name string, times int, loud *bool) string { return name }

// Ping takes nothing.
//
//atp:tool
func Ping() {}
