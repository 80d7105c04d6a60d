package schemavalidate

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

// This file holds the words that problems use which generated code, not the
// runtime, chooses: the "expected" of Missing and of the Fail calls that
// check enums and integer bounds. They are copied from atpgen (internal/gen/types.go,
// expected) so that a call the server rejects reads exactly as the toolkit
// would have rejected it; the equivalence tests hold the two together.

// goDurationPattern is the pattern atpgen gives time.Duration properties
// (internal/gen/numbers.go): a string schema with exactly this pattern is read with
// Decoder.Duration, as the generated decoder does.
const goDurationPattern = `^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// expectedWords describes the value n (a target: see resolveTarget) wants,
// as atpgen's expected does for the Go type behind it.
func expectedWords(n *node) string {
	if len(n.enumLits) > 0 {
		return oneOf(n.enumLits)
	}
	switch n.kind {
	case kindObject:
		return "object"
	case kindArray:
		return "array"
	case kindString:
		switch {
		case n.base64:
			return "base64 string"
		case n.goTime:
			return "RFC 3339 date-time string"
		case n.goDuration:
			return "duration string"
		}
		return "string"
	case kindInteger:
		return "integer"
	case kindNumber:
		return "number"
	case kindBoolean:
		return "boolean"
	case kindNull:
		return "null"
	case kindNever:
		return "no value"
	}
	return "any value"
}

// expectedWord returns n's words, through references.
func (n *node) expectedWord() string { return n.target.expected }

// maxListed is how many allowed values a problem lists: past it, a problem
// says how many there are ("one of 20000 values"), so that a huge enum is
// never echoed back on every call. atpgen (internal/gen/types.go) and the runtime's
// Decoder.Enum word enums the same way.
const maxListed = 10

// oneOf words an enum's values, each as the schema spells it.
func oneOf(lits []string) string {
	if len(lits) > maxListed {
		return "one of " + strconv.Itoa(len(lits)) + " values"
	}
	return "one of " + strings.Join(lits, ", ")
}

// The words of the checks that generated code makes with Fail
// (internal/gen/decode.go): Fail(expected, got) reads "expected <expected>, got
// <got>".
const (
	// uniqueWords and repeatedWords: "expected array of unique items, got
	// repeated item "a"".
	uniqueWords   = "array of unique items"
	repeatedWords = "repeated item "
	// multipleWords: "expected multiple of 5, got 7".
	multipleWords = "multiple of "
)

// fixedLenWords is the expected of a Go array of n items: "expected array of
// exactly 3 items, got 4".
func fixedLenWords(n int) string { return fmt.Sprintf("array of exactly %d items", n) }

// intBoundWords is the expected of an integer bound: "integer >= 1".
func intBoundWords(op string, bound *big.Int) string { return "integer " + op + " " + bound.String() }

// missingWords is the "expected" of a missing property p of object n. A
// Python tool's inferred schema knows names, not types: it says nothing.
func (n *node) missingWords(p *node) string {
	if n.inferred {
		return ""
	}
	return p.expectedWord()
}
