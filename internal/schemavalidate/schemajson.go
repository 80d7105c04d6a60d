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

	"github.com/atpgo/atp/internal/jsontree"
)

// objectMembers returns the members of the object v in order. It fails when
// v is not an object or repeats a key (a schema with a repeated key means
// different things to different parsers).
func objectMembers(v *jsontree.Value) ([]jsontree.Member, error) {
	if v.Kind != '{' {
		return nil, fmt.Errorf("expected an object, got %s", v.KindName())
	}
	if v.Dup != "" {
		return nil, fmt.Errorf("key %q appears twice", v.Dup)
	}
	return v.Members, nil
}

// arrayElements returns the elements of the array v.
func arrayElements(v *jsontree.Value) ([]*jsontree.Value, error) {
	if v.Kind != '[' {
		return nil, fmt.Errorf("expected an array, got %s", v.KindName())
	}
	return v.Elems, nil
}

// jsonString returns the string v.
func jsonString(v *jsontree.Value) (string, error) {
	if v.Kind != '"' {
		return "", fmt.Errorf("expected a string, got %s", v.KindName())
	}
	return v.Str, nil
}

// jsonBool returns the boolean v.
func jsonBool(v *jsontree.Value) (bool, error) {
	switch v.Kind {
	case 't':
		return true, nil
	case 'f':
		return false, nil
	}
	return false, fmt.Errorf("expected true or false, got %s", v.KindName())
}

// jsonNumber returns the text and value of the number v.
func jsonNumber(v *jsontree.Value) (number, error) {
	if v.Kind != '0' {
		return number{}, fmt.Errorf("expected a number, got %s", v.KindName())
	}
	text := string(v.Raw)
	// A number beyond float64 is still a number: ParseFloat's ±Inf for it
	// compares the right way with every value.
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return number{}, fmt.Errorf("expected a number, got %s", text)
	}
	return number{text: text, f: f}, nil
}

// jsonCount reads v as a non-negative integer, as minLength, maxItems and
// the like take. 2.0 counts as 2, as JSON Schema says.
func jsonCount(v *jsontree.Value) (int, error) {
	n, err := jsonNumber(v)
	if err != nil {
		return 0, fmt.Errorf("expected a non-negative integer: %w", err)
	}
	if n.f < 0 || n.f != float64(int64(n.f)) || n.f > 1<<31 {
		return 0, fmt.Errorf("expected a non-negative integer, got %s", n.text)
	}
	return int(n.f), nil
}

// number is a numeric keyword's value: its source text (for exact integer
// bounds beyond float64's precision) and its float64 value.
type number struct {
	text string
	f    float64
}

// canonical writes v so that equal values (in JSON Schema's sense: 1 equals
// 1.0, key order does not matter) have equal text. Of a repeated key the
// last value counts, as JSON decoders keep it.
func appendCanonical(b []byte, v *jsontree.Value, steps *int) []byte {
	*steps++
	switch v.Kind {
	case '{':
		keys := make([]string, 0, len(v.Members))
		last := make(map[string]*jsontree.Value, len(v.Members))
		for _, m := range v.Members {
			if _, ok := last[m.Key]; !ok {
				keys = append(keys, m.Key)
			}
			last[m.Key] = m.Val
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
		for i, el := range v.Elems {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, el, steps)
		}
		return append(b, ']')
	case '0':
		return append(b, canonicalNumber(string(v.Raw))...)
	case '"':
		return strconv.AppendQuote(b, v.Str)
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
	v, _, err := jsontree.Parse(raw, 0, &steps)
	if err != nil {
		return "", err
	}
	return string(appendCanonical(nil, v, &steps)), nil
}

// compactText returns v's text without insignificant whitespace, as the
// schema spells it.
func compactText(v *jsontree.Value) string {
	if v.Kind != '{' && v.Kind != '[' {
		return string(v.Raw)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, v.Raw); err != nil {
		return string(v.Raw) // cannot happen: the document is valid JSON
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
