// Package schemavalidate checks a tool call's params against the tool's JSON
// Schema before the server routes the call, and words every problem exactly
// as the toolkit's generated decoder would.
//
// It gets the words right by construction: instead of being a general JSON
// Schema validator, it interprets the schema by driving an atpimpl.Decoder
// with the calls atpgen's generated code makes for the Go type behind the
// schema (Object/Next/Unknown/Duplicate/Missing, String/Int/Float/...,
// Enum/MinLength/Pattern/Format/..., Fail with the generator's "expected"
// words). One pass over the params, no intermediate tree, every problem at
// once. The tests hold this to the generated code: the same params through a
// generated decoder and through a Validator on its schema give the same
// problems, word for word (equiv_test.go, internal/equivtools).
//
// # Supported keywords
//
// type (a name or an array, "null" included), properties, required,
// additionalProperties (false, true or a schema: a map's values),
// propertyNames as an enum of strings (a map with enum keys),
// minProperties, maxProperties, items, prefixItems, minItems, maxItems,
// uniqueItems (over strings, numbers and booleans), enum, const, minimum,
// maximum, exclusiveMinimum, exclusiveMaximum, multipleOf, minLength,
// maxLength, pattern (Go regexp syntax), format (date-time, date, time,
// email, hostname, ipv4, ipv6, uri, uuid; others are accepted),
// contentEncoding base64, anyOf of X and {"type":"null"} (nullable X), the
// OpenAPI "nullable": true, $defs/definitions with local $ref (recursion
// allowed; each schema is compiled once), the schemas true, false and {}.
// Annotations (title, description, default, examples, deprecated, readOnly,
// writeOnly, $comment, x-*) are ignored.
//
// # Reading atpgen's shapes as the generated code does
//
//   - "integer" is read with Decoder.Int(64): 2.0 is an integer, 2.5 is not.
//     atpgen writes a sized integer type's range as minimum and maximum,
//     tightened by the field's own bounds. When the two are exactly a Go
//     range (int8 ... int64, uint8 ... uint64), or one of them is the end of
//     an int8/16/32 or uint8/16/32 range and the other lies inside it, the
//     value is read with Int(bits) or Uint(bits), so that 300 for an int8
//     gets "expected integer from -128 to 127, got 300". minimum 0 alone is
//     atpgen's uint and uint64: Uint(64). Other integer bounds are checked
//     after the read as the generated code does ("expected integer >= 1"),
//     fractional ones with MinimumFloat/MaximumFloat.
//   - multipleOf: exact for an integer divisor of an integer; otherwise the
//     generated float64 test (v/m has no fraction), verdict included.
//   - a string with format date-time and no other string keyword is read
//     with Decoder.Time (time.Time), one with atpgen's duration pattern with
//     Decoder.Duration, one with contentEncoding base64 with Decoder.Bytes.
//   - an array with minItems == maxItems is a Go array: items past the
//     length are skipped, and a wrong length is "expected array of exactly
//     3 items, got 4".
//   - uniqueItems compares the values read (an item whose read failed counts
//     as its zero value), only when the array has no other problem, and
//     reports the first repeat: "expected array of unique items, got
//     repeated item "a"".
//   - a map (additionalProperties as a schema) rejects a repeated key, like
//     an object does for its properties.
//   - a nullable value accepts null even when an enum beside it does not
//     list null: a Go pointer decodes null as nil.
//   - {} is read with Decoder.Skip (json.RawMessage semantics).
//
// Where a schema does not say which Go type is behind it, the words (never
// the verdict on a valid call) can differ from the toolkit's:
// TestDocumentedDifferences pins each case. float32 has float64's schema
// (1e39 passes here, the toolkit rejects it); any has json.RawMessage's {}
// (a number beyond float64 passes here); an int with minimum=0 reads as a
// uint (for -1: "expected integer from 0 to 18446744073709551615"); a string
// with format=date-time reads as a time.Time ("RFC 3339 date-time string"
// where the toolkit says "RFC 3339 date-time"); a slice with minItems ==
// maxItems reads as a Go array.
//
// # Best effort
//
// Keywords that this package does not evaluate are left out in the one
// direction that is safe: leaving them out can only make Validate accept
// params that a full validator would reject, never reject valid params (the
// toolkit validates again what it receives). Validator.Notes lists each with
// its JSON pointer. They are: general anyOf, oneOf, allOf, not,
// if/then/else, dependentRequired, dependentSchemas, contains,
// unevaluatedProperties/Items, $dynamicRef, propertyNames other than an
// enum, keywords beside a $ref or a nullable anyOf, type-specific keywords
// in a schema without one type (the value is then not type-checked),
// uniqueItems over objects or arrays, an enum of objects or arrays, and
// unknown keywords (annotations, as JSON Schema says). Compile fails instead
// where leaving a keyword out would reject valid params (patternProperties
// beside additionalProperties), and on a schema it cannot read: invalid
// JSON, a keyword value of the wrong type, a pattern Go cannot compile, a
// $ref that is not local or does not resolve, a $ref loop, a required
// property that additionalProperties false forbids.
//
// # Cost and limits
//
// Compile parses the schema once into a tree and compiles each subschema
// once: its time and memory are linear in the schema's size whatever its
// shape (a long enum, deep nesting, many properties or required names, long
// chains of $ref), and Validate's time is linear in the params' size
// (uniqueItems and long enums use sets). CompileLimited and CheckLimits
// also bound the schema itself (Limits: bytes, nesting depth, values per
// enum, properties per object) and fail with a *LimitError that names the
// limit, what the schema has and where. Problems never list a long enum:
// past ten values they say "one of 20000 values", as atpimpl's Decoder
// and atpgen's generated code do.
//
// # Python toolkits
//
// A schema with "x-atp-inferred": true at its root is the server's inference
// from a Python registration, whose properties are just names. Python calls
// f(**params), which fails on a missing required name and on an unknown
// name, so that is all Validate checks there: values are skipped (whatever
// type the inferred schema guesses), a repeated name is accepted (json.loads
// keeps the last), a missing name is "missing required field" with no type,
// and unknown names are rejected unless the root has additionalProperties
// (true or a schema: the function takes **kwargs).
package schemavalidate
