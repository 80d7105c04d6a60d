package atpimpl

import (
	"encoding"
	"encoding/json"
	"regexp"
	"time"
)

// Decoder reads one JSON params object for generated code, in one pass over
// the bytes and without reflection. It tracks the JSON path of the value it
// is at and collects every problem (a type mismatch, an unknown or missing
// field, a failed constraint) instead of stopping at the first, so that a
// caller learns everything wrong with its params at once. A syntax error
// stops decoding: it is then the only problem reported.
//
// Every read method consumes exactly one value. On a mismatch it records a
// problem at the current path, skips the value and returns the zero value, so
// generated code never needs to branch on errors while decoding. Text that
// is not UTF-8 is such a problem wherever it is, in a value read or skipped
// ("name: invalid UTF-8 in string") or in a key ("invalid UTF-8 in key",
// and the member is dropped): JSON is UTF-8, and params are never passed on
// altered.
//
// The methods below are for generated code; their messages are written for
// LLMs, never with Go type names: `days: expected integer, got "three"`.
type Decoder struct {
	// Implementation state; see decoder_impl.go.
	decoderState
}

// Reset prepares d to decode data, dropping all state and problems. Empty
// data and "null" decode as an empty object.
func (d *Decoder) Reset(data []byte) { d.reset(data) }

// SetCoercion makes Int, Uint, Float and Bool also accept their value as a
// JSON string ("3", "2.5", "true"), as HTML forms send them.
func (d *Decoder) SetCoercion(on bool) { d.coerce = on }

// Failed reports whether any problem was recorded. Once the params object
// has been read it also reports anything but whitespace after it; params
// that nothing read are checked then to be one JSON object.
func (d *Decoder) Failed() bool { return d.failed() }

// SetLenientUTF8 turns off the problems about invalid UTF-8: such bytes in
// a string become U+FFFD, as encoding/json makes them. It is for reading an
// envelope whose nested values are checked again by their own decoder (a
// tool request frame and its params).
func (d *Decoder) SetLenientUTF8(on bool) { d.lenientUTF8 = on }

// Problems returns the problems recorded so far. The slice is the caller's:
// Reset does not reuse it.
func (d *Decoder) Problems() []Problem { return d.problemList() }

// ---- structure ----

// Object starts reading an object. It returns false, after recording
// "expected object, got X" and skipping the value, when the value is not an
// object (null included: test Null first where null is allowed).
func (d *Decoder) Object() bool { return d.object() }

// Next advances to the next member of the object being read, reading its key
// and colon, and makes the key the last element of the current path. It
// returns false after the closing brace (the path is back at the object) or
// on a syntax error.
func (d *Decoder) Next() bool { return d.next() }

// Key returns the current member's key, unescaped. It is valid until the next
// call to Next. Compare it with switch string(d.Key()), which does not
// allocate.
func (d *Decoder) Key() []byte { return d.key }

// Array starts reading an array, like Object.
func (d *Decoder) Array() bool { return d.array() }

// NextItem advances to the next element of the array being read and makes
// its index the last element of the current path. It returns false after the
// closing bracket or on a syntax error.
func (d *Decoder) NextItem() bool { return d.nextItem() }

// Null consumes the next value and returns true when it is null; otherwise it
// consumes nothing and returns false.
func (d *Decoder) Null() bool { return d.null() }

// Skip consumes the next value, whatever it is.
func (d *Decoder) Skip() { d.skip() }

// ---- scalars ----

// String reads a string.
func (d *Decoder) String() string { return d.str() }

// Bool reads true or false.
func (d *Decoder) Bool() bool { return d.boolean() }

// Int reads an integer that fits in a signed integer of the given size in
// bits (8, 16, 32 or 64; 0 means the size of int). A number with a zero fraction such as
// 2.0 or 1e2 is an integer, as in JSON Schema; 2.5 is not.
func (d *Decoder) Int(bits int) int64 { return d.integer(bits) }

// Uint reads a non-negative integer that fits in bits (0 means the size of
// uint).
func (d *Decoder) Uint(bits int) uint64 { return d.unsigned(bits) }

// Float reads a number; bits is 32 or 64 (0 means 64).
func (d *Decoder) Float(bits int) float64 { return d.float(bits) }

// Bytes reads a string of standard base64 (with padding) and returns the
// decoded bytes, as encoding/json does for []byte.
func (d *Decoder) Bytes() []byte { return d.bytes() }

// Time reads an RFC 3339 date-time string such as "2026-11-21T05:05:00Z".
func (d *Decoder) Time() time.Time { return d.datetime() }

// Duration reads a duration string in Go's syntax: a sequence of decimal
// numbers with a unit suffix, such as "90s", "1h30m" or "250ms".
func (d *Decoder) Duration() time.Duration { return d.duration() }

// Raw returns a copy of the next value's bytes, whatever valid JSON it is.
func (d *Decoder) Raw() json.RawMessage { return d.raw() }

// Unmarshal hands the next value's raw JSON to v.UnmarshalJSON, for types
// that decode themselves. An error from it is recorded as "expected
// <expected>, got <value>: <error>".
func (d *Decoder) Unmarshal(v json.Unmarshaler, expected string) { d.unmarshal(v, expected) }

// UnmarshalText reads a string and hands it to v.UnmarshalText, for types
// that parse themselves from text (as encoding/json does for them). An error
// is recorded like Unmarshal's.
func (d *Decoder) UnmarshalText(v encoding.TextUnmarshaler, expected string) {
	d.unmarshalText(v, expected)
}

// Any reads any JSON value the way encoding/json decodes into an interface
// value: map[string]any, []any, float64, string, bool or nil.
func (d *Decoder) Any() any { return d.anyValue() }

// ---- problems ----

// Unknown records that the current member is not a known field, naming the
// allowed ones (a comma-separated list), and skips its value.
func (d *Decoder) Unknown(allowed string) { d.unknown(allowed) }

// Duplicate records that the current member's key appeared before in the
// same object, and skips its value.
func (d *Decoder) Duplicate() { d.duplicate() }

// Repeated is the duplicate check of a known field: seen is the field's
// flag in the object being read. The first time, it sets *seen and returns
// false, and the caller reads the value; after that it records the
// duplicate, skips the value and returns true. Generated code writes one
// line per field: if d.Repeated(&seen[i]) { continue }.
func (d *Decoder) Repeated(seen *bool) bool {
	if *seen {
		d.duplicate()
		return true
	}
	*seen = true
	return false
}

// Missing records, after an object's closing brace, that its required field
// name is absent; expected describes the value the field wants ("integer").
func (d *Decoder) Missing(name, expected string) { d.missing(name, expected) }

// Fail records a problem with the value just read, at the current path:
// "expected <expected>, got <got>". Build got with GotString, GotInt, GotUint
// or GotFloat.
func (d *Decoder) Fail(expected, got string) { d.fail(expected, got) }

// ---- constraint checks on the value just read ----
//
// They, and Fail, record nothing when the value just read already has a
// problem (a wrong type or an out-of-range number): one bad value gets one
// message, not a second one about the zero value the read returned.

// Enum records a problem unless s is one of allowed.
func (d *Decoder) Enum(s string, allowed ...string) { d.enum(s, allowed) }

// MinLength and MaxLength check a string's length in characters (Unicode
// code points, as JSON Schema counts them).
func (d *Decoder) MinLength(s string, n int) { d.minLength(s, n) }
func (d *Decoder) MaxLength(s string, n int) { d.maxLength(s, n) }

// MinItems and MaxItems check an array's length; n is the number of items
// read.
func (d *Decoder) MinItems(n, min int) { d.minItems(n, min) }
func (d *Decoder) MaxItems(n, max int) { d.maxItems(n, max) }

// MinProperties and MaxProperties check a map's size.
func (d *Decoder) MinProperties(n, min int) { d.minProperties(n, min) }
func (d *Decoder) MaxProperties(n, max int) { d.maxProperties(n, max) }

// Pattern records a problem unless re (compiled from pattern) matches s.
func (d *Decoder) Pattern(s string, re *regexp.Regexp, pattern string) { d.pattern(s, re, pattern) }

// Format records a problem unless s is valid in the named JSON Schema format:
// date-time, date, time, email, hostname, ipv4, ipv6, uri, uuid.
// Unknown formats are accepted.
func (d *Decoder) Format(s string, format string) { d.format(s, format) }

// MultipleOf records a problem unless the number just read with Int, Uint or
// Float is a multiple of m, a positive decimal such as "0.01". The check is
// exact on the decimal values, as JSON Schema defines multipleOf: 0.29 is a
// multiple of 0.01 although 0.29/0.01 is not a whole number in float64.
func (d *Decoder) MultipleOf(m string) { d.multipleOf(m) }

// MinimumFloat, MaximumFloat and their Exclusive forms check a number read
// with Int, Uint or Float against a bound, converted to float64. Generated
// code uses integer comparisons where the bound is an integer.
func (d *Decoder) MinimumFloat(v, min float64, exclusive bool) { d.minimum(v, min, exclusive) }
func (d *Decoder) MaximumFloat(v, max float64, exclusive bool) { d.maximum(v, max, exclusive) }

// ---- words for "got" ----

// GotString describes a string value in a problem: quoted, cut when long.
func GotString(s string) string { return gotString(s) }

// GotInt, GotUint and GotFloat describe a number in a problem.
func GotInt(v int64) string     { return gotInt(v) }
func GotUint(v uint64) string   { return gotUint(v) }
func GotFloat(v float64) string { return gotFloat(v) }
