package parse

import (
	"fmt"
	"go/token"
	"strconv"
	"strings"
	"unicode"
)

// tagKV is one key:"value" pair of a struct tag.
type tagKV struct {
	key, value string
	// off is the byte offset of the value's first character in the tag
	// text; exact says that offsets inside the value map one to one to the
	// source (it has no escapes).
	off   int
	exact bool
}

// parseStructTag splits a struct tag by the reflect.StructTag convention,
// reporting malformed tags (which reflect silently reads as empty).
func parseStructTag(tag string) ([]tagKV, error) {
	var out []tagKV
	i := 0
	for {
		for i < len(tag) && tag[i] == ' ' {
			i++
		}
		if i >= len(tag) {
			return out, nil
		}
		start := i
		for i < len(tag) && tag[i] > ' ' && tag[i] != ':' && tag[i] != '"' && tag[i] != 0x7f {
			i++
		}
		if i == start || i+1 >= len(tag) || tag[i] != ':' || tag[i+1] != '"' {
			return out, fmt.Errorf("malformed struct tag at %q: expected key:\"value\" pairs separated by spaces", tag[start:])
		}
		key := tag[start:i]
		i++ // ':'
		qstart := i
		i++ // '"'
		for i < len(tag) && tag[i] != '"' {
			if tag[i] == '\\' {
				i++
			}
			i++
		}
		if i >= len(tag) {
			return out, fmt.Errorf("malformed struct tag: the value of %s has no closing quote", key)
		}
		quoted := tag[qstart : i+1]
		i++
		value, err := strconv.Unquote(quoted)
		if err != nil {
			return out, fmt.Errorf("malformed struct tag: the value of %s is not a valid Go string", key)
		}
		out = append(out, tagKV{key: key, value: value, off: qstart + 1, exact: !strings.Contains(quoted, `\`)})
	}
}

// lookupTag returns the pair with the key, if any.
func lookupTag(kvs []tagKV, key string) (tagKV, bool) {
	for _, kv := range kvs {
		if kv.key == key {
			return kv, true
		}
	}
	return tagKV{}, false
}

// tagLocator maps offsets in a struct tag's text to source positions.
type tagLocator struct {
	base  token.Position // of the tag text's first byte (or of the tag literal)
	exact bool           // offsets from base are columns on the same line
}

// at is the position of byte off of kv's value.
func (t tagLocator) at(kv tagKV, off int) token.Position {
	p := t.base
	if !t.exact {
		return p
	}
	if !kv.exact {
		off = 0
	}
	p.Column += kv.off + off
	p.Offset += kv.off + off
	return p
}

// keyAt is the position of kv's key.
func (t tagLocator) keyAt(kv tagKV) token.Position {
	p := t.base
	if t.exact {
		d := kv.off - len(kv.key) - 2
		p.Column += d
		p.Offset += d
	}
	return p
}

// tagItem is one comma-separated item of a jsonschema tag value.
type tagItem struct {
	text string // with \, unescaped
	off  int    // byte offset in the value
}

// splitTagItems splits on commas not escaped by a backslash (invopop's
// rule, so that patterns can hold commas: pattern=^a\,b$).
func splitTagItems(s string) []tagItem {
	var items []tagItem
	var cur strings.Builder
	start := 0
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == ',':
			cur.WriteByte(',')
			i++
		case s[i] == ',':
			items = append(items, tagItem{cur.String(), start})
			cur.Reset()
			start = i + 1
		default:
			cur.WriteByte(s[i])
		}
	}
	return append(items, tagItem{cur.String(), start})
}

// isValidJSONName reports whether encoding/json accepts name as a key from
// a json tag (its isValidTag).
func isValidJSONName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range name {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}
