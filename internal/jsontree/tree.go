package schemavalidate

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A schema is parsed once into a tree of values, so that compiling it is
// linear in its size: every keyword reads its value from the tree, a $ref
// walks the tree (with an index for large objects), and no part of the text
// is scanned twice. Each value knows its parent, so that its JSON pointer,
// which only errors and notes need, is built on demand rather than stored
// for every value (which would be quadratic in the nesting depth).

// value is one JSON value of a schema document.
type value struct {
	kind byte // '{', '[', '"', '0' (number), 't', 'f', 'n'
	// raw is the value's text, a view of the document.
	raw []byte
	// str is a string's value (kind '"').
	str string

	members []member // objects, in document order
	// dup is the first key an object repeats ("" when none): an error
	// only where the object is a schema (enum values and annotations may
	// repeat keys, as JSON allows).
	dup   string
	index map[string]int // an object's last member of each key, built on first lookup

	elems []*value // arrays

	parent *value
	token  string // the key or index of this value in its parent
}

// member is one key and value of a JSON object, kept in document order:
// the order of "properties" is the order fields are listed in "allowed: ..."
// messages.
type member struct {
	key string
	val *value
}

// kindName names a value's JSON type, for messages.
func (v *value) kindName() string {
	switch v.kind {
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
	}
	return "number"
}

// get returns the member named key (the last one, as JSON decoders do).
func (v *value) get(key string, steps *int) (*value, bool) {
	if len(v.members) <= 8 {
		for i := len(v.members) - 1; i >= 0; i-- {
			*steps++
			if v.members[i].key == key {
				return v.members[i].val, true
			}
		}
		return nil, false
	}
	if v.index == nil {
		v.index = make(map[string]int, len(v.members))
		for i, m := range v.members {
			*steps++
			v.index[m.key] = i
		}
	}
	i, ok := v.index[key]
	if !ok {
		return nil, false
	}
	return v.members[i].val, true
}

// pointer returns the value's JSON pointer ("" for the root), cut to max
// bytes with "…" when it is longer (max < 0: never cut). It costs the
// value's depth: it is only for errors and notes.
func (v *value) pointer(max int) string {
	var toks []string
	for cur := v; cur.parent != nil; cur = cur.parent {
		toks = append(toks, cur.token)
	}
	var b strings.Builder
	for i := len(toks) - 1; i >= 0; i-- {
		b.WriteByte('/')
		b.WriteString(escapePointerToken(toks[i]))
		if max >= 0 && b.Len() > max {
			s := b.String()[:max]
			for len(s) > 0 && !utf8.RuneStart(s[len(s)-1]) {
				s = s[:len(s)-1]
			}
			return s + "…"
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
	tooDeep *value
}

// parse returns the tree of doc, which must be valid JSON. With maxDepth >
// 0 it stops at the first value nested deeper and returns it as tooDeep.
func parse(doc []byte, maxDepth int, steps *int) (root, tooDeep *value, err error) {
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

func (p *parser) value(parent *value, token string, depth int) (*value, error) {
	*p.steps++
	p.skipSpace()
	if p.pos >= len(p.doc) {
		return nil, fmt.Errorf("unexpected end of JSON")
	}
	v := &value{kind: p.doc[p.pos], parent: parent, token: token}
	start := p.pos
	switch v.kind {
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
		v.str = s
	case 't':
		p.pos += len("true")
	case 'f':
		p.pos += len("false")
	case 'n':
		p.pos += len("null")
	default:
		v.kind = '0'
		for p.pos < len(p.doc) && strings.IndexByte("+-0123456789.eE", p.doc[p.pos]) >= 0 {
			p.pos++
		}
	}
	v.raw = p.doc[start:p.pos:p.pos]
	return v, nil
}

func (p *parser) container(v *value, depth int) error {
	closing := byte('}')
	if v.kind == '[' {
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
		if v.kind == '[' {
			el, err := p.value(v, strconv.Itoa(i), depth+1)
			if err != nil || p.tooDeep != nil {
				return err
			}
			v.elems = append(v.elems, el)
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
		if v.dup == "" {
			// A map only for objects big enough to need one; small ones
			// are checked by a scan of their few members.
			if seen == nil && len(v.members) >= 8 {
				seen = make(map[string]struct{}, 2*len(v.members))
				for _, m := range v.members {
					*p.steps++
					seen[m.key] = struct{}{}
				}
			}
			if seen != nil {
				if _, ok := seen[key]; ok {
					v.dup = key
				}
				seen[key] = struct{}{}
			} else {
				for _, m := range v.members {
					*p.steps++
					if m.key == key {
						v.dup = key
						break
					}
				}
			}
		}
		v.members = append(v.members, member{key, val})
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

// resolve finds the value at the JSON pointer ptr ("" or "/a/b") below v.
// Its cost is the pointer's length: large objects are indexed on first use.
func (v *value) resolve(ptr string, steps *int) (*value, error) {
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
		tok = unescapePointerToken(tok)
		switch cur.kind {
		case '{':
			next, ok := cur.get(tok, steps)
			if !ok {
				return nil, fmt.Errorf("no %q", tok)
			}
			cur = next
		case '[':
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(cur.elems) {
				return nil, fmt.Errorf("no element %q", tok)
			}
			cur = cur.elems[i]
		default:
			return nil, fmt.Errorf("cannot go into a %s with %q", cur.kindName(), tok)
		}
		if !found {
			return cur, nil
		}
		rest = more
	}
}
