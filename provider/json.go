package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/atpgo/atp/internal/jsontree"
)

// Schemas are rewritten as an ordered tree rather than map[string]any so that
// output keeps the author's key order (OpenAI's strict mode emits properties
// in schema order, and golden files must be stable) and so that every schema
// object remembers where it came from in the canonical schema: a Change can
// then name the keyword by its JSON Pointer even after $ref inlining copied it.
//
// Values in the tree are *object, []any, string, json.Number, bool or nil.

// object is a JSON object that keeps its key order.
type object struct {
	keys []string
	vals map[string]any
	// src is the RFC 6901 pointer of this object in the document it was
	// parsed from ("" for the root and for objects built in code).
	src string
}

func newObject(src string) *object {
	return &object{vals: map[string]any{}, src: src}
}

func (o *object) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

func (o *object) has(k string) bool {
	_, ok := o.vals[k]
	return ok
}

func (o *object) str(k string) (string, bool) {
	s, ok := o.vals[k].(string)
	return s, ok
}

// set replaces the value of k in place, or appends k.
func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

// setAfter inserts k right after the key after (or at the end when after is
// absent); when k exists its value is replaced in place.
func (o *object) setAfter(after, k string, v any) {
	if o.has(k) {
		o.vals[k] = v
		return
	}
	o.vals[k] = v
	for i, key := range o.keys {
		if key == after {
			o.keys = append(o.keys[:i+1], append([]string{k}, o.keys[i+1:]...)...)
			return
		}
	}
	o.keys = append(o.keys, k)
}

// setFirst inserts k as the first key (or replaces it in place).
func (o *object) setFirst(k string, v any) {
	if o.has(k) {
		o.vals[k] = v
		return
	}
	o.vals[k] = v
	o.keys = append([]string{k}, o.keys...)
}

func (o *object) del(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i], o.keys[i+1:]...)
			return
		}
	}
}

func (o *object) len() int { return len(o.keys) }

// clone deep-copies a tree value, keeping source pointers.
func clone(v any) any {
	switch t := v.(type) {
	case *object:
		c := &object{keys: append([]string(nil), t.keys...), vals: make(map[string]any, len(t.vals)), src: t.src}
		for k, x := range t.vals {
			c.vals[k] = clone(x)
		}
		return c
	case []any:
		c := make([]any, len(t))
		for i, x := range t {
			c[i] = clone(x)
		}
		return c
	default:
		return v
	}
}

// equalJSON reports whether two tree values are the same JSON value (object
// key order does not matter; numbers compare by value when both parse).
func equalJSON(a, b any) bool {
	switch x := a.(type) {
	case *object:
		y, ok := b.(*object)
		if !ok || len(x.keys) != len(y.keys) {
			return false
		}
		for k, xv := range x.vals {
			yv, ok := y.vals[k]
			if !ok || !equalJSON(xv, yv) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equalJSON(x[i], y[i]) {
				return false
			}
		}
		return true
	case json.Number:
		y, ok := b.(json.Number)
		if !ok {
			return false
		}
		if x == y {
			return true
		}
		fx, err1 := strconv.ParseFloat(string(x), 64)
		fy, err2 := strconv.ParseFloat(string(y), 64)
		return err1 == nil && err2 == nil && fx == fy
	default:
		return a == b
	}
}

// parseTree decodes one JSON value into the ordered tree. Duplicate object
// keys are an error: which of two "type"s a provider would honour is not ours
// to guess.
func parseTree(data []byte) (any, error) {
	if !json.Valid(data) {
		// Let encoding/json say what is wrong, and where.
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, err
		}
		return nil, errors.New("invalid JSON")
	}
	root, _, err := jsontree.Parse(data, 0, nil)
	if err != nil {
		return nil, err
	}
	return fromTree(root, "")
}

// duplicateKeyError is parseTree's error for an object with a key twice;
// ptr is the object's JSON Pointer.
type duplicateKeyError struct{ ptr, key string }

func (e *duplicateKeyError) Error() string {
	return fmt.Sprintf("%s: duplicate key %q", pointerOrRoot(e.ptr), e.key)
}

// fromTree builds the tree value of v, whose JSON Pointer is ptr. The first
// repeated key in document order is the error, wherever it is nested.
func fromTree(v *jsontree.Value, ptr string) (any, error) {
	switch v.Kind {
	case '{':
		o := &object{keys: make([]string, 0, len(v.Members)), vals: make(map[string]any, len(v.Members)), src: ptr}
		for _, m := range v.Members {
			if _, dup := o.vals[m.Key]; dup {
				return nil, &duplicateKeyError{ptr: ptr, key: m.Key}
			}
			x, err := fromTree(m.Val, ptr+"/"+jsontree.EscapePointer(m.Key))
			if err != nil {
				return nil, err
			}
			o.keys = append(o.keys, m.Key)
			o.vals[m.Key] = x
		}
		return o, nil
	case '[':
		arr := make([]any, len(v.Elems))
		for i, el := range v.Elems {
			x, err := fromTree(el, ptr+"/"+strconv.Itoa(i))
			if err != nil {
				return nil, err
			}
			arr[i] = x
		}
		return arr, nil
	case '"':
		return v.Str, nil
	case 't':
		return true, nil
	case 'f':
		return false, nil
	case 'n':
		return nil, nil
	}
	return json.Number(v.Raw), nil
}

// encodeTree writes a tree value as compact JSON. HTML characters are not
// escaped: descriptions such as "a < b" stay readable in golden files and
// in what the model is shown.
func encodeTree(v any) []byte {
	var b bytes.Buffer
	appendTree(&b, v)
	return b.Bytes()
}

func appendTree(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case *object:
		b.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(jsontree.AppendString(b.AvailableBuffer(), k))
			b.WriteByte(':')
			appendTree(b, t.vals[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, x := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			appendTree(b, x)
		}
		b.WriteByte(']')
	case string:
		b.Write(jsontree.AppendString(b.AvailableBuffer(), t))
	case json.Number:
		b.WriteString(string(t))
	case json.RawMessage:
		if len(t) == 0 {
			b.WriteString("null")
			return
		}
		if err := json.Compact(b, t); err != nil {
			// Callers validate raw values before building trees with them.
			panic("provider: invalid raw JSON in tree: " + err.Error())
		}
	case bool:
		if t {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case nil:
		b.WriteString("null")
	default:
		panic(fmt.Sprintf("provider: unexpected tree value %T", v))
	}
}

func pointerOrRoot(ptr string) string {
	if ptr == "" {
		return "(root)"
	}
	return ptr
}

// kindOf names the JSON type of a tree value for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case *object:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// stringList reads an array of strings.
func stringList(v any) ([]string, bool) {
	arr, ok := v.([]any)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, ok := x.(string)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func anyList(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
