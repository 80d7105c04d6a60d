package gen

import (
	"go/token"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// exportName returns s with its first letter in upper case, for building
// identifiers such as atpDecodeLocation from a type name.
func exportName(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if r == utf8.RuneError {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

// camelName turns a tool name such as "get_weather" or "book-meeting" into
// "GetWeather", for identifiers derived from it.
func camelName(s string) string {
	var b strings.Builder
	up := true
	for _, r := range s {
		if r == '_' || r == '-' || !(unicode.IsLetter(r) || unicode.IsDigit(r)) {
			up = true
			continue
		}
		if up {
			r = unicode.ToUpper(r)
			up = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

// idents hands out identifiers unique within one scope, numbering a name
// that is taken. Callers ask in a deterministic order, so the numbers are
// stable.
type idents struct {
	taken map[string]bool
}

func newIdents(reserved ...string) *idents {
	n := &idents{taken: map[string]bool{}}
	for _, r := range reserved {
		n.taken[r] = true
	}
	return n
}

// get returns base, or base2, base3... when base is taken.
func (n *idents) get(base string) string {
	name := base
	for i := 2; n.taken[name]; i++ {
		name = base + strconv.Itoa(i)
	}
	n.taken[name] = true
	return name
}

// predeclared are Go's predeclared identifiers; generated locals never
// shadow them, since generated code calls len, make, append and converts with
// the basic types.
var predeclared = map[string]bool{}

func init() {
	for _, s := range strings.Fields(`any bool byte comparable complex64 complex128 error float32 float64
		int int8 int16 int32 int64 rune string uint uint8 uint16 uint32 uint64 uintptr
		true false iota nil
		append cap clear close complex copy delete imag len make max min new panic print println real recover`) {
		predeclared[s] = true
	}
}

// isIdent reports whether s is a valid Go identifier that is not a keyword.
func isIdent(s string) bool {
	return token.IsIdentifier(s)
}
