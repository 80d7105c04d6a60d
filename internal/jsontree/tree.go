// Package jsontree is this module's one JSON tree that keeps object members
// in document order: the schema validator compiles from it, package
// provider builds its ordered schema objects from it, and atpgen orders the
// keywords of the schemas it writes with it. It also holds the JSON text
// helpers those packages share: JSON Pointer tokens, a JSON string encoder
// without HTML escapes, and the names of JSON types in messages.
//
// A document is parsed once, so that what reads it is linear in its size:
// every read takes its value from the tree, a JSON Pointer walks the tree
// (with an index for large objects), and no part of the text is scanned
// twice. Each value knows its parent, so that its JSON Pointer, which only
// errors and notes need, is built on demand rather than stored for every
// value (which would be quadratic in the nesting depth). Standard library
// only: package runtime may import it.
package jsontree

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Value is one JSON value of a document.
type Value struct {
	Kind byte // '{', '[', '"', '0' (number), 't', 'f', 'n'
	// Raw is the value's text, a view of the document.
	Raw []byte
	// Str is a string's value (kind '"').
	Str string

	Members []Member // objects, in document order
	// Dup is the first key an object repeats ("" when none). Whether that
	// is an error is the reader's call: a schema object must not repeat a
	// key, while an enum value or an annotation may, as JSON allows.
	Dup   string
	index map[string]int // an object's last member of each key, built on first lookup

	Elems []*Value // arrays

	Parent *Value
	Token  string // the key or index of this value in its parent
}

// Member is one key and value of a JSON object. Members keep their
// document order: the order of a schema's "properties" is the order its
// fields are listed in "allowed: ..." messages and in every provider's
// schema.
type Member struct {
	Key string
	Val *Value
}

// Get returns the member named key (the last one, as JSON decoders do).
func (v *Value) Get(key string, steps *int) (*Value, bool) {
	if len(v.Members) <= 8 {
		for i := len(v.Members) - 1; i >= 0; i-- {
			*steps++
			if v.Members[i].Key == key {
				return v.Members[i].Val, true
			}
		}
		return nil, false
	}
	if v.index == nil {
		v.index = make(map[string]int, len(v.Members))
		for i, m := range v.Members {
			*steps++
			v.index[m.Key] = i
		}
	}
	i, ok := v.index[key]
	if !ok {
		return nil, false
	}
	return v.Members[i].Val, true
}

// Pointer returns the value's JSON Pointer ("" for the root), cut to max
// bytes with "…" when it is longer (max < 0: never cut). It costs the
// value's depth: it is only for errors and notes.
func (v *Value) Pointer(max int) string {
	var toks []string
	for cur := v; cur.Parent != nil; cur = cur.Parent {
		toks = append(toks, cur.Token)
	}
	var b strings.Builder
	for i := len(toks) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(EscapePointer(toks[i]))
		if max >= 0 && b.Len() > max {
			// Cut before the rune that straddles max, never inside it.
			s := b.String()
			for max > 0 && !utf8.RuneStart(s[max]) {
				max--
			}
			return s[:max] + "…"
		}
	}
	return b.String()
}

// parser builds the tree of a document that json.Valid accepted.
type parser struct {
	doc      []byte
	pos      int
	maxDepth int // 0: no limit
	steps    *int
	// tooDeep is the first value nested past maxDepth.
	tooDeep *Value
}

// Parse returns the tree of doc, which must be valid JSON (check it with
// json.Valid first: Parse only builds the tree). With maxDepth > 0 it stops
// at the first value nested deeper and returns it as tooDeep. steps, when
// not nil, counts the work done, for callers that bound it.
func Parse(doc []byte, maxDepth int, steps *int) (root, tooDeep *Value, err error) {
	if steps == nil {
		steps = new(int)
	}
	p := &parser{doc: doc, maxDepth: maxDepth, steps: steps}
	root, err = p.value(nil, "", 1)
	if err != nil || p.tooDeep != nil {
		return nil, p.tooDeep, err
	}
	return root, nil, nil
}

func (p *parser) skipSpace() {
	for p.pos < len(p.doc) {
		switch p.doc[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value(parent *Value, token string, depth int) (*Value, error) {
	*p.steps++
	p.skipSpace()
	if p.pos >= len(p.doc) {
		return nil, fmt.Errorf("unexpected end of JSON")
	}
	v := &Value{Kind: p.doc[p.pos], Parent: parent, Token: token}
	start := p.pos
	switch v.Kind {
	case '{', '[':
		if p.maxDepth > 0 && depth > p.maxDepth {
			p.tooDeep = v
			return v, nil
		}
		if err := p.container(v, depth); err != nil || p.tooDeep != nil {
			return v, err
		}
	case '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		v.Str = s
	case 't':
		p.pos += len("true")
	case 'f':
		p.pos += len("false")
	case 'n':
		p.pos += len("null")
	default:
		v.Kind = '0'
		for p.pos < len(p.doc) && strings.IndexByte("+-0123456789.eE", p.doc[p.pos]) >= 0 {
			p.pos++
		}
	}
	v.Raw = p.doc[start:p.pos:p.pos]
	return v, nil
}

func (p *parser) container(v *Value, depth int) error {
	closing := byte('}')
	if v.Kind == '[' {
		closing = ']'
	}
	p.pos++ // the opening brace or bracket
	var seen map[string]struct{}
	for i := 0; ; i++ {
		p.skipSpace()
		if p.pos < len(p.doc) && p.doc[p.pos] == closing {
			p.pos++
			return nil
		}
		if i > 0 {
			p.pos++ // the comma
			p.skipSpace()
		}
		if v.Kind == '[' {
			el, err := p.value(v, strconv.Itoa(i), depth+1)
			if err != nil || p.tooDeep != nil {
				return err
			}
			v.Elems = append(v.Elems, el)
			continue
		}
		key, err := p.string()
		if err != nil {
			return err
		}
		p.skipSpace()
		p.pos++ // the colon
		val, err := p.value(v, key, depth+1)
		if err != nil || p.tooDeep != nil {
			return err
		}
		if v.Dup == "" {
			// A map only for objects big enough to need one; small ones
			// are checked by a scan of their few members.
			if seen == nil && len(v.Members) >= 8 {
				seen = make(map[string]struct{}, 2*len(v.Members))
				for _, m := range v.Members {
					*p.steps++
					seen[m.Key] = struct{}{}
				}
			}
			if seen != nil {
				if _, ok := seen[key]; ok {
					v.Dup = key
				}
				seen[key] = struct{}{}
			} else {
				for _, m := range v.Members {
					*p.steps++
					if m.Key == key {
						v.Dup = key
						break
					}
				}
			}
		}
		v.Members = append(v.Members, Member{key, val})
	}
}

// string reads the string at p.pos and returns its value.
func (p *parser) string() (string, error) {
	start := p.pos
	p.pos++
	escaped, nonASCII := false, false
	for p.pos < len(p.doc) {
		switch c := p.doc[p.pos]; {
		case c == '"':
			p.pos++
			text := p.doc[start+1 : p.pos-1]
			if !escaped && (!nonASCII || utf8.Valid(text)) {
				return string(text), nil
			}
			// Escapes, or invalid UTF-8 (which becomes U+FFFD).
			var s string
			if err := json.Unmarshal(p.doc[start:p.pos], &s); err != nil {
				return "", err
			}
			return s, nil
		case c == '\\':
			escaped = true
			p.pos += 2
		case c >= utf8.RuneSelf:
			nonASCII = true
			p.pos++
		default:
			p.pos++
		}
	}
	return "", fmt.Errorf("unexpected end of JSON")
}

// Resolve finds the value at the JSON pointer ptr ("" or "/a/b") below v.
// Its cost is the pointer's length: large objects are indexed on first use.
func (v *Value) Resolve(ptr string, steps *int) (*Value, error) {
	if ptr == "" {
		return v, nil
	}
	if ptr[0] != '/' {
		return nil, fmt.Errorf("JSON pointer %q does not start with /", ptr)
	}
	cur := v
	for rest := ptr[1:]; ; {
		*steps++
		tok, more, found := strings.Cut(rest, "/")
		tok = UnescapePointer(tok)
		switch cur.Kind {
		case '{':
			next, ok := cur.Get(tok, steps)
			if !ok {
				return nil, fmt.Errorf("no %q", tok)
			}
			cur = next
		case '[':
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur.Elems) {
				return nil, fmt.Errorf("no element %q", tok)
			}
			cur = cur.Elems[i]
		default:
			return nil, fmt.Errorf("cannot go into a %s with %q", cur.KindName(), tok)
		}
		if !found {
			return cur, nil
		}
		rest = more
	}
}
