package schemavalidate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"strconv"
	"strings"
)

// member is one key and raw value of a JSON object, kept in document order:
// the order of "properties" is the order fields are listed in "allowed: ..."
// messages, so a map would lose information the messages need.
type member struct {
	key string
	val json.RawMessage
}

// objectMembers returns the members of the JSON object raw in order. It
// fails when raw is not an object or repeats a key (a schema with a repeated
// key means different things to different parsers).
func objectMembers(raw json.RawMessage) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, fmt.Errorf("want an object, got %s", jsonKind(raw))
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		key := tok.(string) // object keys are always strings after '{'
		for _, m := range out {
			if m.key == key {
				return nil, fmt.Errorf("key %q appears twice", key)
			}
		}
		var val json.RawMessage
		if err := dec.Decode(&val); err != nil {
			return nil, err
		}
		out = append(out, member{key, val})
	}
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("data after the end of the object")
	}
	return out, nil
}

// arrayElements returns the raw elements of the JSON array raw.
func arrayElements(raw json.RawMessage) ([]json.RawMessage, error) {
	if jsonKind(raw) != "array" {
		return nil, fmt.Errorf("want an array, got %s", jsonKind(raw))
	}
	var out []json.RawMessage
	if err := json.Unmarshal(raw, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// jsonKind names the JSON type of raw by its first byte, for messages.
func jsonKind(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	default:
		return "number"
	}
}

// jsonString decodes raw as a JSON string.
func jsonString(raw json.RawMessage) (string, error) {
	var s string
	if jsonKind(raw) != "string" {
		return "", fmt.Errorf("want a string, got %s", jsonKind(raw))
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", err
	}
	return s, nil
}

// jsonBool decodes raw as a JSON boolean.
func jsonBool(raw json.RawMessage) (bool, error) {
	switch string(bytes.TrimSpace(raw)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("want true or false, got %s", jsonKind(raw))
}

// jsonNumber returns the text and value of the JSON number raw.
func jsonNumber(raw json.RawMessage) (number, error) {
	if jsonKind(raw) != "number" {
		return number{}, fmt.Errorf("want a number, got %s", jsonKind(raw))
	}
	text := string(bytes.TrimSpace(raw))
	// A number beyond float64 is still a number: ParseFloat's ±Inf for it
	// compares the right way with every value.
	f, err := strconv.ParseFloat(text, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return number{}, fmt.Errorf("want a number, got %s", text)
	}
	return number{text: text, f: f}, nil
}

// jsonCount decodes raw as a non-negative integer, as minLength, maxItems and
// the like take. 2.0 counts as 2, as JSON Schema says.
func jsonCount(raw json.RawMessage) (int, error) {
	n, err := jsonNumber(raw)
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

// resolvePointer finds the value at the JSON pointer ptr ("" or "/a/b") in
// doc.
func resolvePointer(doc json.RawMessage, ptr string) (json.RawMessage, error) {
	if ptr == "" {
		return doc, nil
	}
	if ptr[0] != '/' {
		return nil, fmt.Errorf("JSON pointer %q does not start with /", ptr)
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = unescapePointerToken(tok)
		switch jsonKind(cur) {
		case "object":
			ms, err := objectMembers(cur)
			if err != nil {
				return nil, err
			}
			found := false
			for _, m := range ms {
				if m.key == tok {
					cur, found = m.val, true
					break
				}
			}
			if !found {
				return nil, fmt.Errorf("no %q", tok)
			}
		case "array":
			els, err := arrayElements(cur)
			if err != nil {
				return nil, err
			}
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(els) {
				return nil, fmt.Errorf("no element %q", tok)
			}
			cur = els[i]
		default:
			return nil, fmt.Errorf("cannot go into a %s with %q", jsonKind(cur), tok)
		}
	}
	return cur, nil
}

// canonicalJSON re-encodes a JSON value so that equal values (in JSON
// Schema's sense: 1 equals 1.0, key order does not matter) have equal text.
func canonicalJSON(raw json.RawMessage) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	var b []byte
	b = appendCanonical(b, v)
	return string(b), nil
}

func appendCanonical(b []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, k)
			b = append(b, ':')
			b = appendCanonical(b, v[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, el := range v {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendCanonical(b, el)
		}
		return append(b, ']')
	case json.Number:
		return append(b, canonicalNumber(string(v))...)
	case string:
		return strconv.AppendQuote(b, v)
	case bool:
		return strconv.AppendBool(b, v)
	default:
		return append(b, "null"...)
	}
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
