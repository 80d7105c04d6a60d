package schemavalidate

import (
	"fmt"
	"strconv"

	"github.com/atpgo/atp/internal/jsontree"
)

// Limits bound what a schema may hold, so that no schema a toolkit sends
// costs the server more than they allow, at registration, at start-up or on
// a call. A zero field is no limit.
type Limits struct {
	// MaxBytes bounds the schema's size in bytes.
	MaxBytes int
	// MaxDepth bounds the nesting of objects and arrays in the schema's
	// JSON (a property's schema is two levels below its object's:
	// "properties", then the property).
	MaxDepth int
	// MaxEnum bounds the values of one "enum".
	MaxEnum int
	// MaxProperties bounds the members of one "properties" object and the
	// names of one "required" list.
	MaxProperties int
}

// The limits a LimitError names.
const (
	LimitBytes      = "bytes"
	LimitDepth      = "depth"
	LimitEnum       = "enum"
	LimitProperties = "properties"
)

// LimitError is a schema over one of its Limits.
type LimitError struct {
	Limit string // LimitBytes, LimitDepth, LimitEnum or LimitProperties
	Max   int    // the limit
	Got   int    // what the schema has
	// Pointer is where in the schema (a JSON pointer, cut when very long):
	// the enum's or properties' schema, the first value nested too deep.
	Pointer string
	// Keyword is the keyword over the limit ("enum", "properties",
	// "required"), for LimitEnum and LimitProperties.
	Keyword string
}

func (e *LimitError) Error() string {
	at := e.Pointer
	if at == "" {
		at = "root"
	}
	switch e.Limit {
	case LimitBytes:
		return fmt.Sprintf("the schema is %d bytes, over the limit of %d bytes", e.Got, e.Max)
	case LimitDepth:
		return fmt.Sprintf("the schema nests %d levels deep (objects and arrays), over the limit of %d levels; the first value past it is at %s", e.Got, e.Max, at)
	case LimitEnum:
		return fmt.Sprintf("schema at %s: enum has %d values, over the limit of %d values", at, e.Got, e.Max)
	}
	what := "members"
	if e.Keyword == "required" {
		what = "names"
	}
	return fmt.Sprintf("schema at %s: %s has %d %s, over the limit of %d properties per object", at, e.Keyword, e.Got, what, e.Max)
}

// CheckLimits checks schema, which must be valid JSON, against lim without
// compiling it; its cost is linear in the schema's size. An error for a
// limit is a *LimitError.
func CheckLimits(schema []byte, lim Limits) error {
	var c compiler
	_, err := c.parse(schema, lim)
	return err
}

// check walks the tree for the keywords whose size is limited. Every
// "enum" and "properties" counts, wherever it is (also in keywords this
// package does not evaluate, which providers still get).
func (lim Limits) check(v *jsontree.Value, steps *int) error {
	if lim.MaxEnum <= 0 && lim.MaxProperties <= 0 {
		return nil
	}
	stack := []*jsontree.Value{v}
	for len(stack) > 0 {
		*steps++
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		switch v.Kind {
		case '[':
			stack = append(stack, v.Elems...)
		case '{':
			for _, m := range v.Members {
				stack = append(stack, m.Val)
				n, limit, name := 0, 0, ""
				switch {
				case m.Key == "enum" && m.Val.Kind == '[':
					n, limit, name = len(m.Val.Elems), lim.MaxEnum, LimitEnum
				case m.Key == "properties" && m.Val.Kind == '{':
					n, limit, name = len(m.Val.Members), lim.MaxProperties, LimitProperties
				case m.Key == "required" && m.Val.Kind == '[':
					n, limit, name = len(m.Val.Elems), lim.MaxProperties, LimitProperties
				}
				if limit > 0 && n > limit {
					return &LimitError{Limit: name, Max: limit, Got: n, Pointer: v.Pointer(maxPointerBytes), Keyword: m.Key}
				}
			}
		}
	}
	return nil
}

// String words the limits for a log line.
func (lim Limits) String() string {
	f := func(n int) string {
		if n <= 0 {
			return "none"
		}
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("bytes %s, depth %s, enum %s, properties %s", f(lim.MaxBytes), f(lim.MaxDepth), f(lim.MaxEnum), f(lim.MaxProperties))
}
