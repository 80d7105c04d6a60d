package schemavalidate

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"sync"

	"github.com/atpgo/atp/runtime"
)

// Validator checks params against one compiled schema. It is safe for
// concurrent use.
type Validator struct {
	root  *node
	notes []string
}

// decoders are shared by every Validator: a server holds one per tool, and a
// Decoder keeps no state between calls.
var decoders = sync.Pool{New: func() any { return new(runtime.Decoder) }}

// Compile prepares a schema for validation. It fails on a schema it cannot
// interpret, naming the keyword and its JSON pointer: malformed JSON, a
// keyword whose value has the wrong type, a pattern Go's regexp cannot
// compile, a $ref that is not local or does not resolve, a $ref loop.
func Compile(schema json.RawMessage) (*Validator, error) {
	if !json.Valid(schema) {
		return nil, &compileError{err: fmt.Errorf("not valid JSON")}
	}
	c := &compiler{doc: schema, nodes: map[string]*node{}}
	root, err := c.compileAt(schema, "")
	if err != nil {
		return nil, err
	}
	ptrs := make([]string, 0, len(c.nodes))
	for ptr := range c.nodes {
		ptrs = append(ptrs, ptr)
	}
	slices.Sort(ptrs) // errors and notes must not depend on map order
	for _, ptr := range ptrs {
		if err := c.checkRefLoop(c.nodes[ptr]); err != nil {
			return nil, err
		}
	}
	for _, ptr := range ptrs {
		n := c.nodes[ptr]
		n.expected = expectedWords(n)
		if n.unique {
			if n.items != nil && len(n.prefix) == 0 && isScalar(n.items) {
				n.uniqueScalars = true
			} else {
				c.note(n.ptr, "uniqueItems", "only items that are strings, numbers or booleans (not null) are compared")
			}
		}
	}
	slices.Sort(c.notes)
	return &Validator{root: root, notes: c.notes}, nil
}

// isScalar reports whether n (through references) reads a string, a number
// or a boolean as generated code compares them for uniqueItems: not null,
// and not a string read as time, duration or bytes.
func isScalar(n *node) bool {
	for n.ref != nil {
		n = n.ref
	}
	if n.nullable || n.nullableOf != nil {
		return false
	}
	switch n.kind {
	case kindString:
		return !n.base64 && !n.goTime && !n.goDuration
	case kindInteger, kindNumber, kindBoolean:
		return true
	}
	return false
}

// Notes lists the keywords of the schema that Validate does not evaluate,
// each with where it is and why. Such keywords can only make Validate accept
// params that a full JSON Schema validator would reject, never the reverse;
// the toolkit that runs the tool validates its params again.
func (v *Validator) Notes() []string { return v.notes }

// checkRefLoop fails when following $ref (and nullable wrappers) from n comes
// back to a node without reading any value: such a schema has no meaning.
func (c *compiler) checkRefLoop(n *node) error {
	seen := map[*node]bool{}
	for cur := n; ; {
		if seen[cur] {
			return c.fail(n.ptr, "$ref", "the reference leads back to itself")
		}
		seen[cur] = true
		switch {
		case cur.ref != nil:
			cur = cur.ref
		case cur.nullableOf != nil:
			cur = cur.nullableOf
		default:
			return nil
		}
	}
}

// Validate returns the problems with params (nil when they are valid), in
// the order and words of the runtime's Decoder. Empty params and null count
// as {}.
func (v *Validator) Validate(params []byte) []runtime.Problem {
	d := decoders.Get().(*runtime.Decoder)
	d.Reset(params)
	v.value(d, v.root)
	var problems []runtime.Problem
	if ps := d.Problems(); len(ps) > 0 {
		problems = slices.Clone(ps) // the caller's to keep: d goes back to the pool
	}
	d.Reset(nil) // the pool keeps no reference to params
	decoders.Put(d)
	return problems
}

// value reads one value described by n, as generated code for the Go type
// behind n would.
func (v *Validator) value(d *runtime.Decoder, n *node) {
	for {
		if n.nullable && d.Null() {
			return
		}
		switch {
		case n.ref != nil:
			n = n.ref
		case n.nullableOf != nil:
			n = n.nullableOf
		default:
			v.read(d, n)
			return
		}
	}
}

func (v *Validator) read(d *runtime.Decoder, n *node) {
	switch n.kind {
	case kindObject:
		v.object(d, n)
	case kindArray:
		v.array(d, n)
	case kindString:
		readString(d, n)
	case kindInteger:
		readInteger(d, n, false)
	case kindNumber:
		readNumber(d, n)
	case kindBoolean:
		readBool(d, n)
	case kindNull:
		if !d.Null() {
			d.Fail("null", describe(d.Raw()))
		}
	case kindNever:
		d.Fail("no value", describe(d.Raw()))
	default:
		if n.enumRaw != nil {
			raw := d.Raw()
			if raw == nil {
				return // a syntax error, already recorded
			}
			canon, err := canonicalJSON(raw)
			if err != nil || !containsString(n.enumRaw, canon) {
				d.Fail(n.expected, describe(raw))
			}
			return
		}
		d.Skip()
	}
}

// object reads an object member by member: known properties by their
// schema, others by additionalProperties, each property at most once.
func (v *Validator) object(d *runtime.Decoder, n *node) {
	if !d.Object() {
		return
	}
	seen := newSeenSet(len(n.props))
	var extraSeen []bool
	if len(n.extraReq) > 0 {
		extraSeen = make([]bool, len(n.extraReq))
	}
	var mapKeys map[string]struct{}
	count := 0
	for d.Next() {
		count++
		i, known := n.propIndex[string(d.Key())]
		switch {
		case known && n.inferred:
			// Python reads the params with json.loads, where a repeated
			// name is no error, and checks the values itself.
			seen.set(i)
			d.Skip()
			continue
		case known && seen.has(i):
			d.Duplicate()
			continue
		case known:
			seen.set(i)
			v.value(d, n.props[i].node)
			continue
		}
		for j, name := range n.extraReq {
			if name == string(d.Key()) {
				extraSeen[j] = true
			}
		}
		switch {
		case n.additional != nil:
			// A map to generated code: a repeated key is a problem, and an
			// enum key type limits the keys.
			if mapKeys == nil {
				mapKeys = map[string]struct{}{}
			}
			if _, dup := mapKeys[string(d.Key())]; dup {
				d.Duplicate()
				continue
			}
			k := string(d.Key())
			mapKeys[k] = struct{}{}
			if n.keyEnum != nil {
				d.Enum(k, n.keyEnum...)
			}
			v.value(d, n.additional)
		case n.closed:
			d.Unknown(n.allowed)
		default:
			d.Skip()
		}
	}
	for _, i := range n.required {
		if !seen.has(i) {
			p := n.props[i]
			d.Missing(p.name, n.missingWords(p.node))
		}
	}
	for j, name := range n.extraReq {
		if !extraSeen[j] {
			d.Missing(name, n.missingWords(anyNode))
		}
	}
	if n.minProps >= 0 {
		d.MinProperties(count, n.minProps)
	}
	if n.maxProps >= 0 {
		d.MaxProperties(count, n.maxProps)
	}
}

// seenSet marks the properties of an object that were read. A bit set for
// up to 64 properties keeps the common case free of allocation.
type seenSet struct {
	bits uint64
	more []bool // for objects with more properties
}

func newSeenSet(n int) seenSet {
	if n > 64 {
		return seenSet{more: make([]bool, n)}
	}
	return seenSet{}
}

func (s *seenSet) has(i int) bool {
	if s.more != nil {
		return s.more[i]
	}
	return s.bits&(1<<i) != 0
}

func (s *seenSet) set(i int) {
	if s.more != nil {
		s.more[i] = true
	} else {
		s.bits |= 1 << i
	}
}

// array reads an array item by item: prefixItems first, then items. An
// array of fixed length (minItems == maxItems) is a Go array to generated
// code: items past the length are skipped, and a wrong length gets one
// problem.
func (v *Validator) array(d *runtime.Decoder, n *node) {
	if !d.Array() {
		return
	}
	var uniq uniqueItems
	problems := 0
	if n.uniqueScalars {
		problems = len(d.Problems())
	}
	count := 0
	for d.NextItem() {
		if n.fixedLen >= 0 && count >= n.fixedLen {
			d.Skip()
			count++
			continue
		}
		var item *node
		switch {
		case count < len(n.prefix):
			item = n.prefix[count]
		case n.noExtra:
			item = neverNode
		case n.items != nil:
			item = n.items
		default:
			item = anyNode
		}
		count++
		if n.uniqueScalars {
			uniq.add(readKey(d, item))
			continue
		}
		v.value(d, item)
	}
	if n.fixedLen >= 0 {
		if count != n.fixedLen {
			d.Fail(n.fixedWords, runtime.GotInt(int64(count)))
			return
		}
	} else {
		if n.minItems >= 0 {
			d.MinItems(count, n.minItems)
		}
		if n.maxItems >= 0 {
			d.MaxItems(count, n.maxItems)
		}
	}
	// Generated code compares the items only when the array had no other
	// problem: a repeat among values that are wrong anyway says nothing.
	if uniq.repeated && len(d.Problems()) == problems {
		d.Fail(uniqueWords, repeatedWords+uniq.got)
	}
}

var neverNode = &node{kind: kindNever, expected: "no value"}

// readString reads a string and checks it; it returns the string, or ""
// for one read as bytes, a time or a duration (which uniqueItems does not
// compare, see isScalar).
func readString(d *runtime.Decoder, n *node) string {
	switch {
	case n.base64:
		d.Bytes()
		return ""
	case n.goTime:
		d.Time()
		return ""
	case n.goDuration:
		d.Duration()
		return ""
	}
	s := d.String()
	if n.enumStrings != nil {
		d.Enum(s, n.enumStrings...)
	}
	if n.minLen >= 0 {
		d.MinLength(s, n.minLen)
	}
	if n.maxLen >= 0 {
		d.MaxLength(s, n.maxLen)
	}
	if n.pattern != nil {
		d.Pattern(s, n.pattern, n.patternSrc)
	}
	if n.format != "" {
		d.Format(s, n.format)
	}
	return s
}

// readInteger reads an integer and checks it; with words set it returns the
// integer's text, for uniqueItems.
func readInteger(d *runtime.Decoder, n *node, words bool) string {
	if n.unsigned {
		u := d.Uint(n.bits)
		if n.enumInts != nil && (u > math.MaxInt64 || !containsInt(n.enumInts, int64(u))) {
			d.Fail(n.expected, runtime.GotUint(u))
		}
		for k := range n.bounds {
			switch b := &n.bounds[k]; {
			case !b.set:
			case b.intVal == nil:
				b.checkFloat(d, float64(u))
			case !b.allowsUint(u):
				d.Fail(intBoundWords(boundOps[k], b.intVal), runtime.GotUint(u))
			}
		}
		if m := &n.multiple; m.set && m.i == 0 {
			d.MultipleOf(m.num.text)
		} else if m.set && !m.ofUint(u) {
			d.Fail(multipleWords+m.num.text, runtime.GotUint(u))
		}
		if words {
			return runtime.GotUint(u)
		}
		return ""
	}
	i := d.Int(n.bits)
	if n.enumInts != nil && !containsInt(n.enumInts, i) {
		d.Fail(n.expected, runtime.GotInt(i))
	}
	for k := range n.bounds {
		switch b := &n.bounds[k]; {
		case !b.set:
		case b.intVal == nil:
			b.checkFloat(d, float64(i))
		case !b.allowsInt(i):
			d.Fail(intBoundWords(boundOps[k], b.intVal), runtime.GotInt(i))
		}
	}
	if m := &n.multiple; m.set && m.i == 0 {
		d.MultipleOf(m.num.text)
	} else if m.set && !m.ofInt(i) {
		d.Fail(multipleWords+m.num.text, runtime.GotInt(i))
	}
	if words {
		return runtime.GotInt(i)
	}
	return ""
}

// readNumber reads a number and checks it; it returns the number.
func readNumber(d *runtime.Decoder, n *node) float64 {
	f := d.Float(64)
	if n.enumNums != nil && !containsFloat(n.enumNums, f) {
		d.Fail(n.expected, runtime.GotFloat(f))
	}
	for k := range n.bounds {
		if b := &n.bounds[k]; b.set {
			b.checkFloat(d, f)
		}
	}
	if m := &n.multiple; m.set {
		d.MultipleOf(m.num.text)
	}
	return f
}

// readBool reads a boolean and checks it; it returns the boolean.
func readBool(d *runtime.Decoder, n *node) bool {
	b := d.Bool()
	if n.enumBools != nil && !containsBool(n.enumBools, b) {
		d.Fail(n.expected, strconv.FormatBool(b))
	}
	return b
}

// multipleOf is a compiled multipleOf.
type multipleOf struct {
	set bool
	num number
	i   int64 // the divisor when it is an integer that fits int64, else 0
}

func newMultipleOf(num number) multipleOf {
	m := multipleOf{set: true, num: num}
	if r := exactRat(num); r != nil && r.IsInt() && r.Num().IsInt64() {
		m.i = r.Num().Int64()
	}
	return m
}

// ofInt and ofUint check an integer against an integer divisor (m.i > 0), as
// generated code does; other divisors go through Decoder.MultipleOf.
func (m *multipleOf) ofInt(v int64) bool { return v%m.i == 0 }

func (m *multipleOf) ofUint(v uint64) bool { return v%uint64(m.i) == 0 }

func containsBool(s []bool, b bool) bool {
	for _, x := range s {
		if x == b {
			return true
		}
	}
	return false
}

func containsInt(s []int64, i int64) bool {
	for _, x := range s {
		if x == i {
			return true
		}
	}
	return false
}

func containsFloat(s []float64, f float64) bool {
	for _, x := range s {
		if x == f {
			return true
		}
	}
	return false
}

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// describe words a raw value for a problem as the runtime does for the value
// it got: strings quoted and cut, numbers as sent, "object", "array".
func describe(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	switch raw[0] {
	case '"':
		var s string
		_ = json.Unmarshal(raw, &s)
		return runtime.GotString(s)
	case '{':
		return "object"
	case '[':
		return "array"
	}
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}

// uniqueItems finds the first item of an array that equals an earlier one,
// as generated code does for arrays of strings, numbers and booleans: it
// compares the Go values read, so an item whose read failed counts as its
// zero value.
type uniqueItems struct {
	keys     []string
	repeated bool
	got      string // the words for the first repeated item
}

func (u *uniqueItems) add(key, got string) {
	if u.repeated {
		return
	}
	if slices.Contains(u.keys, key) {
		u.repeated, u.got = true, got
		return
	}
	u.keys = append(u.keys, key)
}

// readKey reads a scalar item (n resolves to a string, number or boolean
// node) and returns a key that is equal for equal Go values, and its words.
func readKey(d *runtime.Decoder, n *node) (key, got string) {
	for n.ref != nil {
		n = n.ref
	}
	switch n.kind {
	case kindString:
		s := readString(d, n)
		return "s" + s, runtime.GotString(s)
	case kindInteger:
		got = readInteger(d, n, true)
		return got, got
	case kindNumber:
		f := readNumber(d, n)
		if f == 0 {
			return "0", runtime.GotFloat(f) // -0 == 0 in Go
		}
		return runtime.GotFloat(f), runtime.GotFloat(f)
	default: // kindBoolean
		b := readBool(d, n)
		return strconv.FormatBool(b), strconv.FormatBool(b)
	}
}

// checkFloat checks a number against the bound with the Decoder's float
// comparisons, as generated code does for floats and for fractional bounds.
func (b *bound) checkFloat(d *runtime.Decoder, v float64) {
	if b.isMin {
		d.MinimumFloat(v, b.num.f, b.exc)
	} else {
		d.MaximumFloat(v, b.num.f, b.exc)
	}
}

// allowsInt reports whether the integer v meets the integer bound.
func (b *bound) allowsInt(v int64) bool {
	if !b.lim.IsInt64() { // beyond int64: everything or nothing is allowed
		return b.isMin == (b.lim.Sign() < 0)
	}
	if b.isMin {
		return v >= b.lim.Int64()
	}
	return v <= b.lim.Int64()
}

// allowsUint reports whether the unsigned integer v meets the integer bound.
func (b *bound) allowsUint(v uint64) bool {
	if v <= math.MaxInt64 {
		return b.allowsInt(int64(v))
	}
	c := new(big.Int).SetUint64(v).Cmp(b.lim)
	if b.isMin {
		return c >= 0
	}
	return c <= 0
}
