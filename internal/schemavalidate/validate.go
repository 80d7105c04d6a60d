package schemavalidate

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"slices"
	"strconv"
	"sync"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// Validator checks params against one compiled schema. It is safe for
// concurrent use.
type Validator struct {
	root  *node
	notes []string
	steps int // the compiler's units of work, for the tests
}

// decoders are shared by every Validator: a server holds one per tool, and a
// Decoder keeps no state between calls.
var decoders = sync.Pool{New: func() any { return new(atpimpl.Decoder) }}

// Compile prepares a schema for validation. It fails on a schema it cannot
// interpret, naming the keyword and its JSON pointer: malformed JSON, a
// keyword whose value has the wrong type, a pattern Go's regexp cannot
// compile, a $ref that is not local or does not resolve, a $ref loop. Its
// work is linear in the schema's size, whatever its shape (enums, nesting,
// properties, chains of references); it bounds nothing: see
// CompileLimited.
func Compile(schema json.RawMessage) (*Validator, error) {
	return CompileLimited(schema, Limits{})
}

// CompileLimited is Compile for a schema that must stay within lim; an
// error for a limit is a *LimitError.
func CompileLimited(schema json.RawMessage, lim Limits) (*Validator, error) {
	c := &compiler{}
	root, err := c.parse(schema, lim)
	if err != nil {
		return nil, err
	}
	c.root = root
	c.nodes = map[*jsontree.Value]*node{}
	rootNode, err := c.compileAt(root)
	if err != nil {
		return nil, err
	}
	// In the order the nodes were made, which follows the document: errors
	// and notes do not depend on map order.
	for _, n := range c.order {
		if err := c.resolveTarget(n); err != nil {
			return nil, err
		}
	}
	for _, n := range c.order {
		n.enumSeen = nil // only needed while compiling
		n.expected = expectedWords(n.target)
		if n.unique {
			if n.items != nil && len(n.prefix) == 0 && isScalar(n.items) {
				n.uniqueScalars = true
			} else {
				c.note(n.src, "uniqueItems", "only items that are strings, numbers or booleans (not null) are compared")
			}
		}
	}
	slices.Sort(c.notes)
	if c.moreNotes > 0 {
		c.notes = append(c.notes, fmt.Sprintf("and %d more notes", c.moreNotes))
	}
	return &Validator{root: rootNode, notes: c.notes, steps: c.steps}, nil
}

// parse checks schema against lim and returns its tree.
func (c *compiler) parse(schema json.RawMessage, lim Limits) (*jsontree.Value, error) {
	if lim.MaxBytes > 0 && len(schema) > lim.MaxBytes {
		return nil, &LimitError{Limit: LimitBytes, Max: lim.MaxBytes, Got: len(schema)}
	}
	if !json.Valid(schema) {
		return nil, &compileError{err: fmt.Errorf("not valid JSON")}
	}
	root, tooDeep, err := jsontree.Parse(schema, lim.MaxDepth, &c.steps)
	if err != nil {
		return nil, &compileError{err: err}
	}
	if tooDeep != nil {
		return nil, &LimitError{Limit: LimitDepth, Max: lim.MaxDepth, Got: jsontree.Depth(schema), Pointer: tooDeep.Pointer(maxPointerBytes)}
	}
	if err := lim.check(root, &c.steps); err != nil {
		return nil, err
	}
	return root, nil
}

// isScalar reports whether n (through references) reads a string, a number
// or a boolean as generated code compares them for uniqueItems: not null,
// and not a string read as time, duration or bytes.
func isScalar(n *node) bool {
	if n.nullChain {
		return false
	}
	switch n = n.target; n.kind {
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

// resolveTarget sets n.target, the node that reads n's value through $ref
// and nullable wrappers, and fails when following them comes back to a node
// without reading any value: such a schema has no meaning. A chain is
// followed once: the nodes on it get their target from its end.
func (c *compiler) resolveTarget(n *node) error {
	var chain []*node
	cur := n
	for cur.target == nil {
		c.steps++
		if cur.resolving {
			for _, m := range chain {
				m.resolving = false
			}
			return c.fail(n.src, "$ref", "the reference leads back to itself")
		}
		cur.resolving = true
		chain = append(chain, cur)
		switch {
		case cur.ref != nil:
			cur = cur.ref
		case cur.nullableOf != nil:
			cur = cur.nullableOf
		default:
			cur.target, cur.nullChain = cur, cur.nullable
		}
	}
	// cur ends the chain: from the back, each node gets its target and
	// whether null is valid somewhere between it and the target.
	null := cur.nullChain
	for i := len(chain) - 1; i >= 0; i-- {
		m := chain[i]
		m.resolving = false
		if m == cur {
			continue
		}
		null = null || m.nullable
		m.target, m.nullChain = cur.target, null
	}
	return nil
}

// Validate returns the problems with params (nil when they are valid), in
// the order and words of atpimpl's Decoder. Empty params and null count
// as {}.
func (v *Validator) Validate(params []byte) []runtime.Problem {
	d := decoders.Get().(*atpimpl.Decoder)
	d.Reset(params)
	v.value(d, v.root)
	var problems []runtime.Problem
	if ps := d.Problems(); len(ps) > 0 {
		// A copy, the caller's to keep: d goes back to the pool.
		problems = make([]runtime.Problem, len(ps))
		for i, p := range ps {
			problems[i] = runtime.Problem(p)
		}
	}
	d.Reset(nil) // the pool keeps no reference to params
	decoders.Put(d)
	return problems
}

// value reads one value described by n, as generated code for the Go type
// behind n would.
func (v *Validator) value(d *atpimpl.Decoder, n *node) {
	if n.nullChain && d.Null() {
		return // null is valid somewhere on the way to the target
	}
	v.read(d, n.target)
}

func (v *Validator) read(d *atpimpl.Decoder, n *node) {
	switch n.kind {
	case kindObject:
		v.object(d, n)
	case kindArray:
		v.array(d, n)
	case kindString:
		checkString(d, n)
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
func (v *Validator) object(d *atpimpl.Decoder, n *node) {
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
		if n.extraIndex != nil {
			if j, ok := n.extraIndex[string(d.Key())]; ok {
				extraSeen[j] = true
			}
		} else {
			for j, name := range n.extraReq {
				if name == string(d.Key()) {
					extraSeen[j] = true
				}
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
				checkEnum(d, k, n.keyEnum, n.keySet)
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
func (v *Validator) array(d *atpimpl.Decoder, n *node) {
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
			d.Fail(n.fixedWords, atpimpl.GotInt(int64(count)))
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

var neverNode = func() *node {
	n := &node{kind: kindNever, expected: "no value"}
	n.target = n
	return n
}()

// checkString reads a string and checks it, as readString, without a copy
// of it when no keyword needs its value (a call's params are checked on
// every call).
func checkString(d *atpimpl.Decoder, n *node) {
	if n.base64 || n.goTime || n.goDuration || n.enumStrings != nil || n.minLen >= 0 || n.maxLen >= 0 || n.pattern != nil || n.format != "" {
		readString(d, n)
		return
	}
	d.UnmarshalText(nil, "string") // checks it is a string of UTF-8, and hands it to no one
}

// readString reads a string and checks it; it returns the string, or ""
// for one read as bytes, a time or a duration (which uniqueItems does not
// compare, see isScalar).
func readString(d *atpimpl.Decoder, n *node) string {
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
		checkEnum(d, s, n.enumStrings, n.enumSet)
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
func readInteger(d *atpimpl.Decoder, n *node, words bool) string {
	if n.unsigned {
		u := d.Uint(n.bits)
		if n.enumInts != nil && (u > math.MaxInt64 || !containsInt(n.enumInts, int64(u))) {
			d.Fail(n.expected, atpimpl.GotUint(u))
		}
		for k := range n.bounds {
			switch b := &n.bounds[k]; {
			case !b.set:
			case b.intVal == nil:
				b.checkFloat(d, float64(u))
			case !b.allowsUint(u):
				d.Fail(intBoundWords(boundOps[k], b.intVal), atpimpl.GotUint(u))
			}
		}
		if m := &n.multiple; m.set && m.i == 0 {
			d.MultipleOf(m.num.text)
		} else if m.set && !m.ofUint(u) {
			d.Fail(multipleWords+m.num.text, atpimpl.GotUint(u))
		}
		if words {
			return atpimpl.GotUint(u)
		}
		return ""
	}
	i := d.Int(n.bits)
	if n.enumInts != nil && !containsInt(n.enumInts, i) {
		d.Fail(n.expected, atpimpl.GotInt(i))
	}
	for k := range n.bounds {
		switch b := &n.bounds[k]; {
		case !b.set:
		case b.intVal == nil:
			b.checkFloat(d, float64(i))
		case !b.allowsInt(i):
			d.Fail(intBoundWords(boundOps[k], b.intVal), atpimpl.GotInt(i))
		}
	}
	if m := &n.multiple; m.set && m.i == 0 {
		d.MultipleOf(m.num.text)
	} else if m.set && !m.ofInt(i) {
		d.Fail(multipleWords+m.num.text, atpimpl.GotInt(i))
	}
	if words {
		return atpimpl.GotInt(i)
	}
	return ""
}

// readNumber reads a number and checks it; it returns the number.
func readNumber(d *atpimpl.Decoder, n *node) float64 {
	f := d.Float(64)
	if n.enumNums != nil && !containsFloat(n.enumNums, f) {
		d.Fail(n.expected, atpimpl.GotFloat(f))
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
func readBool(d *atpimpl.Decoder, n *node) bool {
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
		return atpimpl.GotString(s)
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
// zero value. A few items are compared directly; past them, a set keeps the
// check linear in the array's length.
type uniqueItems struct {
	keys     []string
	set      map[string]struct{}
	repeated bool
	got      string // the words for the first repeated item
}

func (u *uniqueItems) add(key, got string) {
	if u.repeated {
		return
	}
	if u.set != nil {
		if _, ok := u.set[key]; ok {
			u.repeated, u.got = true, got
			return
		}
		u.set[key] = struct{}{}
		return
	}
	if slices.Contains(u.keys, key) {
		u.repeated, u.got = true, got
		return
	}
	u.keys = append(u.keys, key)
	if len(u.keys) > 16 {
		u.set = make(map[string]struct{}, 2*len(u.keys))
		for _, k := range u.keys {
			u.set[k] = struct{}{}
		}
	}
}

// checkEnum is d.Enum(s, allowed...), with a set to find s in a long list.
func checkEnum(d *atpimpl.Decoder, s string, allowed []string, set map[string]struct{}) {
	if set != nil {
		if _, ok := set[s]; ok {
			return
		}
	}
	d.Enum(s, allowed...)
}

// readKey reads a scalar item (n resolves to a string, number or boolean
// node) and returns a key that is equal for equal Go values, and its words.
func readKey(d *atpimpl.Decoder, n *node) (key, got string) {
	switch n = n.target; n.kind {
	case kindString:
		s := readString(d, n)
		return "s" + s, atpimpl.GotString(s)
	case kindInteger:
		got = readInteger(d, n, true)
		return got, got
	case kindNumber:
		f := readNumber(d, n)
		if f == 0 {
			return "0", atpimpl.GotFloat(f) // -0 == 0 in Go
		}
		return atpimpl.GotFloat(f), atpimpl.GotFloat(f)
	default: // kindBoolean
		b := readBool(d, n)
		return strconv.FormatBool(b), strconv.FormatBool(b)
	}
}

// checkFloat checks a number against the bound with the Decoder's float
// comparisons, as generated code does for floats and for fractional bounds.
func (b *bound) checkFloat(d *atpimpl.Decoder, v float64) {
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
