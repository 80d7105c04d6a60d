package schemavalidate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// objectMembers returns the members of the object v in order. It fails when
// v is not an object or repeats a key (a schema with a repeated key means
// different things to different parsers).
func objectMembers(v *value) ([]member, error) {
	if v.kind != '{' {
		return nil, fmt.Errorf("want an object, got %s", v.kindName())
	}
	if v.dup != "" {
		return nil, fmt.Errorf("key %q appears twice", v.dup)
	}
	return v.members, nil
}

// arrayElements returns the elements of the array v.
func arrayElements(v *value) ([]*value, error) {
	if v.kind != '[' {
		return nil, fmt.Errorf("want an array, got %s", v.kindName())
	}
	return v.elems, nil
}

// jsonString returns the string v.
func jsonString(v *value) (string, error) {
	if v.kind != '"' {
		return "", fmt.Errorf("want a string, got %s", v.kindName())
	}
	return v.str, nil
}

// jsonBool returns the boolean v.
func jsonBool(v *value) (bool, error) {
	switch v.kind {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %s", v.kindName())
}

// jsonNumber returns the text and value of the number v.
func jsonNumber(v *value) (number, error) {
	if v.kind != '0' {
		return number{}, fmt.Errorf("want a number, got %s", v.kindName())
	}
	text := string(v.raw)
	// A number beyond float64 is still a number: ParseFloat's ±Inf for it
	// compares the right way with every value.
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return number{}, fmt.Errorf("want a number, got %s", text)
	}
	return number{text: text, f: f}, nil
}

// jsonCount reads v as a non-negative integer, as minLength, maxItems and
// the like take. 2.0 counts as 2, as JSON Schema says.
func jsonCount(v *value) (int, error) {
	n, err := jsonNumber(v)
	if err != nil {
		return 0, fmt.Errorf("want a non-negative integer: %w", err)
	}
	if n.f < 0 || n.f != float64(int64(n.f)) || n.f > 1<<31 {
		return 0, fmt.Errorf("want a non-negative integer, got %s", n.text)
	}
	return int(n.f), nil
}

// number is a numeric keyword's value: its source text (for exact integer
// bounds beyond float64's precision) and its float64 value.
type number struct {
	text string
	f    float64
}

// unescapePointerToken undoes the ~1 and ~0 escapes of a JSON pointer token.
func unescapePointerToken(s string) string {
	if !strings.Contains(s, "~") {
		return s
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
}

// escapePointerToken escapes a key for use in a JSON pointer.
func escapePointerToken(s string) string {
	if !strings.ContainsAny(s, "~/") {
		return s
	}
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// canonical writes v so that equal values (in JSON Schema's sense: 1 equals
// 1.0, key order does not matter) have equal text. Of a repeated key the
// last value counts, as JSON decoders keep it.
func appendCanonical(b []byte, v *value, steps *int) []byte {
	*steps++
	switch v.kind {
	case '{':
		keys := make([]string, 0, len(v.members))
		last := make(map[string]*value, len(v.members))
		for _, m := range v.members {
			if _, ok := last[m.key]; !ok {
				keys = append(keys, m.key)
			}
			last[m.key] = m.val
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k)
			b = append(b, ':')
			b = appendCanonical(b, last[k], steps)
		}
		return append(b, '}')
	case '[':
		b = append(b, '[')
		for i, el := range v.elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, el, steps)
		}
		return append(b, ']')
	case '0':
		return append(b, canonicalNumber(string(v.raw))...)
	case '"':
		return strconv.AppendQuote(b, v.str)
	case 't':
		return append(b, "true"...)
	case 'f':
		return append(b, "false"...)
	}
	return append(b, "null"...)
}

// canonicalJSON is appendCanonical for a value a call sends, which is not
// part of a schema's tree.
func canonicalJSON(raw json.RawMessage) (string, error) {
	if !json.Valid(raw) {
		return "", errors.New("not valid JSON")
	}
	var steps int
	v, _, err := parse(raw, 0, &steps)
	if err != nil {
		return "", err
	}
	return string(appendCanonical(nil, v, &steps)), nil
}

// compactText returns v's text without insignificant whitespace, as the
// schema spells it.
func compactText(v *value) string {
	if v.kind != '{' && v.kind != '[' {
		return string(v.raw)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v.raw); err != nil {
		return string(v.raw) // cannot happen: the document is valid JSON
	}
	return b.String()
}

// canonicalNumber writes a number exactly, in lowest terms, so that 1, 1.0
// and 1e0 compare equal and large integers do not round.
func canonicalNumber(text string) string {
	// big.Rat would build 10^exp digit by digit: bound the work a hostile
	// number can cause, and compare huge exponents as float64s instead.
	if i := strings.IndexAny(text, "eE"); i >= 0 {
		if exp, err := strconv.Atoi(strings.TrimPrefix(text[i+1:], "+")); err != nil || exp > 400 || exp < -400 {
			f, _ := strconv.ParseFloat(text, 64)
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
	}
	r, ok := new(big.Rat).SetString(text)
	if !ok {
		return text
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.RatString()
}
