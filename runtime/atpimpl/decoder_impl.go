package atpimpl

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strconv"
	"time"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file holds the Decoder's scanner and state. The scanner is strict
// RFC 8259 JSON and reads the input once, front to back; every exported
// Decoder method forwards to one of the unexported methods below.
//
// The position in the document is a stack of frames, one per open object or
// array. The JSON path of a problem is built from that stack only when a
// problem is recorded, so the hot path never allocates for paths.

const (
	// maxDepth bounds nesting, so that a hostile input cannot make the
	// recursive parts (Any, Skip, Raw) use unbounded stack.
	maxDepth = 1000
	// maxProblems bounds the problems recorded for one params object: past
	// it a caller learns nothing new, and an attacker could make us allocate.
	maxProblems = 50
	// maxPooledScratch and maxPooledFrames bound the buffers a pooled Decoder
	// keeps across Reset, so that one huge call does not pin memory forever.
	maxPooledScratch = 64 << 10
	maxPooledFrames  = 64
)

// emptyObject is what empty params and "null" decode as. It is never written to.
var emptyObject = []byte("{}")

type frameKind uint8

const (
	kindObject frameKind = iota
	kindArray
)

type frameState uint8

const (
	stateOpen  frameState = iota // just opened: no member or item yet
	stateValue                   // the current member's or item's value is next
	stateRead                    // the current member's or item's value was read
)

// frame is one open object or array.
type frame struct {
	key     []byte // current member's key (objects): a view of the input or of keyBuf
	index   int    // current item's index (arrays)
	keyMark int    // len(keyBuf) when the frame opened: its keys' scratch starts there
	kind    frameKind
	state   frameState
}

// decoderState is the Decoder's implementation. Its zero value behaves like a
// Decoder reset with empty data.
type decoderState struct {
	data []byte
	pos  int

	coerce bool   // SetCoercion
	key    []byte // Key(): the current member's key

	frames []frame
	// keyBuf holds the unescaped keys of the members on the frame stack that
	// had escapes; a frame's keys start at its keyMark, so popping a frame
	// truncates keyBuf and the keys below stay valid.
	keyBuf []byte
	// buf holds the last string value read that had escapes, for the
	// read methods that return a string or parse one.
	buf []byte

	problems []Problem
	overflow bool // the "too many problems" entry was added
	// syntax is the fatal problem that stopped decoding: a syntax error, too
	// deep nesting, or a method called out of order. When set it is the only
	// problem reported.
	syntax *Problem

	normalized  bool // empty or "null" params were replaced by {}
	rootStarted bool // the root value is being or was read
	rootDone    bool // the root value was read and trailing data checked
	// lastNumber is the literal of the number just read (a view of data or
	// buf, valid until the next read), for MultipleOf's exact check.
	lastNumber []byte
	// valueBad: the value just read already has a problem (wrong type, out
	// of range), so constraint checks on it and Fail stay silent: one bad
	// value gets one message.
	valueBad bool
	// strInvalid: the string readString just read held invalid UTF-8.
	strInvalid bool
	// lenientUTF8 turns the invalid UTF-8 problems off (U+FFFD replaces the
	// bytes, as in encoding/json): for reading a frame's envelope, whose
	// params are checked again, with their own paths, by the tool's decoder.
	lenientUTF8 bool
}

// The problems of invalid UTF-8: JSON text is UTF-8 (RFC 8259), and a value
// that is not would reach the tool altered (U+FFFD for each bad byte) or,
// passed on raw, break a peer that decodes it strictly.
const (
	invalidUTF8String = "invalid UTF-8 in string"
	invalidUTF8Key    = "invalid UTF-8 in key"
)

// ---- state ----

func (d *decoderState) reset(data []byte) {
	frames := d.frames
	clear(frames) // after a panic mid-decode, frames may hold keys into old input
	if cap(frames) > maxPooledFrames {
		frames = nil
	}
	keyBuf, buf := d.keyBuf[:0], d.buf[:0]
	if cap(keyBuf) > maxPooledScratch {
		keyBuf = nil
	}
	if cap(buf) > maxPooledScratch {
		buf = nil
	}
	// problems is dropped, not truncated: a slice returned by Problems
	// shares its array.
	*d = decoderState{data: data, frames: frames[:0], keyBuf: keyBuf, buf: buf}
}

func (d *decoderState) failed() bool {
	d.finish()
	return len(d.problems) > 0 || d.syntax != nil
}

func (d *decoderState) problemList() []Problem {
	d.finish()
	if d.syntax != nil {
		return []Problem{*d.syntax}
	}
	return slices.Clip(d.problems)
}

// finish checks params that nobody read (a decoder for a tool without
// params may read nothing): they must still be a JSON object with nothing
// after it. Params that were read had their trailing data checked when the
// root value ended.
func (d *decoderState) finish() {
	if d.rootStarted || d.syntax != nil {
		return
	}
	if d.object() {
		for d.next() {
		}
	}
}

// normalizeRoot makes empty params and "null" read as {}.
func (d *decoderState) normalizeRoot() {
	if d.normalized {
		return
	}
	d.normalized = true
	i := skipSpace(d.data, d.pos)
	rest := d.data[i:]
	if len(rest) == 0 || len(rest) >= 4 && string(rest[:4]) == "null" && skipSpace(rest, 4) == len(rest) {
		d.data, d.pos = emptyObject, 0
	}
}

// beginValue checks that a value may be read here and marks it read in its
// frame. op names the Decoder method, for the message when it may not.
func (d *decoderState) beginValue(op string) bool {
	if d.syntax != nil {
		return false
	}
	d.valueBad = false
	d.lastNumber = nil
	if n := len(d.frames); n > 0 {
		f := &d.frames[n-1]
		if f.state != stateValue {
			d.misuse(op)
			return false
		}
		f.state = stateRead
		return true
	}
	if d.rootStarted {
		d.misuse(op)
		return false
	}
	d.normalizeRoot()
	d.rootStarted = true
	return true
}

// endValue is called after a scalar value was consumed; at the root it checks
// what follows. Containers do this when they close.
func (d *decoderState) endValue() {
	if len(d.frames) == 0 {
		d.checkTrailing()
	}
}

// checkTrailing reports anything but whitespace after the root value, once.
// It does not move d.pos, so that Raw at the root returns exactly the value.
func (d *decoderState) checkTrailing() {
	if d.rootDone {
		return
	}
	d.rootDone = true
	if i := skipSpace(d.data, d.pos); i < len(d.data) {
		d.syntaxChar(i, "after top-level value")
	}
}

func (d *decoderState) push(kind frameKind) bool {
	if len(d.frames) >= maxDepth {
		d.syntaxAt(d.pos, "nested deeper than 1000 levels")
		return false
	}
	d.pos++ // the opening brace or bracket
	d.frames = append(d.frames, frame{kind: kind, keyMark: len(d.keyBuf)})
	return true
}

// pop closes the innermost frame at its closing brace or bracket.
func (d *decoderState) pop() {
	d.pos++
	n := len(d.frames) - 1
	f := &d.frames[n]
	d.keyBuf = d.keyBuf[:f.keyMark]
	f.key = nil // no reference to the input stays behind in the spare capacity
	d.frames = d.frames[:n]
	d.valueBad = false
	d.key = nil
	if n == 0 {
		d.checkTrailing()
		return
	}
	if p := &d.frames[n-1]; p.kind == kindObject {
		d.key = p.key
	}
}

// ---- structure ----

func (d *decoderState) object() bool {
	if !d.beginValue("Object") {
		return false
	}
	if d.peek() == '{' {
		return d.push(kindObject)
	}
	d.wrongType("object")
	return false
}

func (d *decoderState) array() bool {
	if !d.beginValue("Array") {
		return false
	}
	if d.peek() == '[' {
		return d.push(kindArray)
	}
	d.wrongType("array")
	return false
}

func (d *decoderState) next() bool {
	for {
		ok, invalid := d.nextKey()
		if !ok || !invalid || d.lenientUTF8 {
			return ok
		}
		// The member is dropped: its key cannot name anything, and its
		// value needs no problem of its own.
		d.report(invalidUTF8Key)
		d.skipQuietly()
	}
}

// nextKey is next for one member; invalid reports a key with invalid UTF-8.
func (d *decoderState) nextKey() (ok, invalid bool) {
	if d.syntax != nil {
		return false, false
	}
	n := len(d.frames)
	if n == 0 || d.frames[n-1].kind != kindObject {
		d.misuse("Next")
		return false, false
	}
	d.valueBad = false
	f := &d.frames[n-1]
	switch f.state {
	case stateOpen:
		d.skipSpace()
		if d.pos < len(d.data) && d.data[d.pos] == '}' {
			d.pop()
			return false, false
		}
	default:
		if f.state == stateValue { // the caller did not read the member's value
			f.state = stateRead
			d.skipValue()
			if d.syntax != nil {
				return false, false
			}
			f = &d.frames[n-1] // skipValue may have grown the stack
		}
		// A syntax error between members is reported at the object's path.
		f.state = stateOpen
		d.skipSpace()
		if d.pos >= len(d.data) {
			d.syntaxChar(d.pos, "after object key:value pair")
			return false, false
		}
		switch d.data[d.pos] {
		case ',':
			d.pos++
			d.skipSpace()
		case '}':
			d.pop()
			return false, false
		default:
			d.syntaxChar(d.pos, "after object key:value pair")
			return false, false
		}
	}

	if d.pos >= len(d.data) || d.data[d.pos] != '"' {
		d.syntaxChar(d.pos, "looking for beginning of object key string")
		return false, false
	}
	start := d.pos + 1
	end, plain, invalid := d.scanString(d.pos)
	if end < 0 {
		return false, false
	}
	d.keyBuf = d.keyBuf[:f.keyMark]
	if plain {
		f.key = d.data[start : end-1 : end-1]
	} else {
		d.keyBuf = appendUnescaped(d.keyBuf, d.data[start:end-1])
		f.key = d.keyBuf[f.keyMark:len(d.keyBuf):len(d.keyBuf)]
	}
	d.pos = end
	d.skipSpace()
	if d.pos >= len(d.data) || d.data[d.pos] != ':' {
		d.syntaxChar(d.pos, "after object key")
		return false, false
	}
	d.pos++
	f.state = stateValue
	d.key = f.key
	return true, invalid
}

func (d *decoderState) nextItem() bool {
	if d.syntax != nil {
		return false
	}
	n := len(d.frames)
	if n == 0 || d.frames[n-1].kind != kindArray {
		d.misuse("NextItem")
		return false
	}
	d.valueBad = false
	f := &d.frames[n-1]
	if f.state == stateOpen {
		d.skipSpace()
		if d.pos < len(d.data) && d.data[d.pos] == ']' {
			d.pop()
			return false
		}
		// Whatever follows must be a value; the read method checks it.
		f.index, f.state = 0, stateValue
		return true
	}
	if f.state == stateValue { // the caller did not read the item
		f.state = stateRead
		d.skipValue()
		if d.syntax != nil {
			return false
		}
		f = &d.frames[n-1]
	}
	// A syntax error between items is reported at the array's path.
	f.state = stateOpen
	d.skipSpace()
	if d.pos < len(d.data) {
		switch d.data[d.pos] {
		case ',':
			d.pos++
			f.index++
			f.state = stateValue
			return true
		case ']':
			d.pop()
			return false
		}
	}
	d.syntaxChar(d.pos, "after array element")
	return false
}

func (d *decoderState) null() bool {
	if d.syntax != nil {
		return false
	}
	n := len(d.frames)
	switch {
	case n > 0 && d.frames[n-1].state != stateValue, n == 0 && d.rootStarted:
		d.misuse("Null")
		return false
	case n == 0:
		d.normalizeRoot() // "null" params are {}, so this finds no null at the root
	}
	d.skipSpace()
	if d.pos >= len(d.data) || d.data[d.pos] != 'n' {
		return false
	}
	d.beginValue("Null")
	if d.literal("null") {
		d.endValue()
		return true
	}
	return false
}

func (d *decoderState) skip() {
	if d.beginValue("Skip") {
		d.skipValue()
		d.endValue()
	}
}

// skipPending skips the current member's or item's value when it was not read.
func (d *decoderState) skipPending() {
	if n := len(d.frames); d.syntax == nil && n > 0 && d.frames[n-1].state == stateValue {
		d.frames[n-1].state = stateRead
		d.skipValue()
	}
}

// skipValue consumes the value at d.pos, checking its syntax. Nested values
// go through the frame stack, so that the depth limit holds and a syntax
// error inside them gets its exact path.
func (d *decoderState) skipValue() {
	switch c := d.peek(); {
	case c == '{':
		if d.push(kindObject) {
			for d.next() { // next skips each member's value
			}
		}
	case c == '[':
		if d.push(kindArray) {
			for d.nextItem() {
			}
		}
	case c == '"':
		end, _, invalid := d.scanString(d.pos)
		if end >= 0 {
			d.pos = end
			if invalid && !d.lenientUTF8 {
				d.report(invalidUTF8String)
			}
		}
	case c == '-' || isDigit(c):
		if end := d.scanNumber(d.pos); end >= 0 {
			d.pos = end
		}
	case c == 't':
		d.literal("true")
	case c == 'f':
		d.literal("false")
	case c == 'n':
		d.literal("null")
	default:
		d.syntaxChar(d.pos, "looking for a value")
	}
}

// ---- scalars ----

func (d *decoderState) str() string {
	if !d.beginValue("String") {
		return ""
	}
	if d.peek() != '"' {
		d.wrongType("string")
		return ""
	}
	b, ok := d.text()
	if !ok {
		return ""
	}
	return string(b)
}

// text reads the string at d.pos for a method that returns or parses its
// value, and ends the value. Invalid UTF-8 is the value's problem: ok is
// then false, as after a syntax error.
func (d *decoderState) text() (b []byte, ok bool) {
	b, ok = d.readString()
	if !ok {
		return nil, false
	}
	d.endValue()
	if d.strInvalid && !d.lenientUTF8 {
		d.valueBad = true
		d.report(invalidUTF8String)
		return nil, false
	}
	return b, true
}

func (d *decoderState) boolean() bool {
	if !d.beginValue("Bool") {
		return false
	}
	switch d.peek() {
	case 't':
		if d.literal("true") {
			d.endValue()
			return true
		}
		return false
	case 'f':
		if d.literal("false") {
			d.endValue()
		}
		return false
	case '"':
		if d.coerce {
			b, ok := d.readString()
			if !ok {
				return false
			}
			d.endValue()
			switch string(b) {
			case "true":
				return true
			case "false":
				return false
			}
			d.badValue("boolean", gotString(string(b)))
			return false
		}
	}
	d.wrongType("boolean")
	return false
}

// numberLiteral reads a number, or with coercion a string holding one, for
// Int, Uint and Float. It returns the number's text, and whether it was a
// string; ok is false when the value was something else (then it recorded the
// problem and skipped the value) or on a syntax error.
func (d *decoderState) numberLiteral(expected string) (lit []byte, quoted, ok bool) {
	c := d.peek()
	switch {
	case c == '-' || isDigit(c):
		start := d.pos
		end := d.scanNumber(start)
		if end < 0 {
			return nil, false, false
		}
		d.pos = end
		d.endValue()
		d.lastNumber = d.data[start:end]
		return d.lastNumber, false, true
	case c == '"' && d.coerce:
		b, ok := d.readString()
		if !ok {
			return nil, false, false
		}
		d.endValue()
		if !isNumber(b) {
			d.badValue(expected, gotString(string(b)))
			return nil, true, false
		}
		d.lastNumber = b
		return b, true, true
	}
	d.wrongType(expected)
	return nil, false, false
}

func (d *decoderState) integer(bits int) int64 {
	if !d.beginValue("Int") {
		return 0
	}
	lit, quoted, ok := d.numberLiteral("integer")
	if !ok {
		return 0
	}
	bits = intBits(bits)
	neg, mag, res := parseIntLiteral(lit)
	limit := uint64(1)<<(bits-1) - 1 // the largest positive value; negatives go one further
	switch {
	case res == intFraction:
		d.badValue("integer", gotLiteral(lit, quoted))
		return 0
	case res == intTooBig, !neg && mag > limit, neg && mag > limit+1:
		d.badValue("integer from "+strconv.FormatInt(-int64(limit)-1, 10)+" to "+strconv.FormatUint(limit, 10), gotLiteral(lit, quoted))
		return 0
	case neg:
		return -int64(mag) // mag == 1<<63 wraps to the minimum, as it should
	}
	return int64(mag)
}

func (d *decoderState) unsigned(bits int) uint64 {
	if !d.beginValue("Uint") {
		return 0
	}
	lit, quoted, ok := d.numberLiteral("integer")
	if !ok {
		return 0
	}
	bits = intBits(bits)
	neg, mag, res := parseIntLiteral(lit)
	limit := uint64(1)<<(bits-1)<<1 - 1 // two shifts: a shift by 64 would be 0 in Go, not overflow
	switch {
	case res == intFraction:
		d.badValue("integer", gotLiteral(lit, quoted))
		return 0
	case res == intTooBig, neg && mag != 0, mag > limit:
		d.badValue("integer from 0 to "+strconv.FormatUint(limit, 10), gotLiteral(lit, quoted))
		return 0
	}
	return mag
}

func (d *decoderState) float(bits int) float64 {
	if !d.beginValue("Float") {
		return 0
	}
	lit, quoted, ok := d.numberLiteral("number")
	if !ok {
		return 0
	}
	if bits != 32 {
		bits = 64
	}
	f, ok := parseFloat(lit, bits)
	if !ok {
		d.badValue(floatRange(bits), gotLiteral(lit, quoted))
		return 0
	}
	return f
}

func (d *decoderState) bytes() []byte {
	if !d.beginValue("Bytes") {
		return nil
	}
	if d.peek() != '"' {
		d.wrongType("base64 string")
		return nil
	}
	b, ok := d.text()
	if !ok {
		return nil
	}
	// As encoding/json does for []byte: standard encoding, padded; the
	// decoder skips \r and \n.
	out := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	n, err := base64.StdEncoding.Decode(out, b)
	if err != nil {
		d.badValue("base64 string", gotString(string(b)))
		return nil
	}
	return out[:n]
}

func (d *decoderState) datetime() time.Time {
	const expected = "RFC 3339 date-time string"
	if !d.beginValue("Time") {
		return time.Time{}
	}
	if d.peek() != '"' {
		d.wrongType(expected)
		return time.Time{}
	}
	b, ok := d.text()
	if !ok {
		return time.Time{}
	}
	// The same strict parser encoding/json uses for time.Time.
	var t time.Time
	if err := t.UnmarshalText(b); err != nil {
		d.badValue(expected, gotString(string(b)))
		return time.Time{}
	}
	return t
}

func (d *decoderState) duration() time.Duration {
	const expected = `duration string such as "1h30m" or "90s"`
	if !d.beginValue("Duration") {
		return 0
	}
	if d.peek() != '"' {
		d.wrongType(expected)
		return 0
	}
	b, ok := d.text()
	if !ok {
		return 0
	}
	// The unsafe view saves a copy: ParseDuration returns a number and an
	// error, and we drop the error, so nothing keeps a reference to b, which
	// is not changed while ParseDuration runs.
	v, err := time.ParseDuration(unsafe.String(unsafe.SliceData(b), len(b)))
	if err != nil {
		d.badValue(expected, gotString(string(b)))
		return 0
	}
	return v
}

func (d *decoderState) raw() json.RawMessage {
	if !d.beginValue("Raw") {
		return nil
	}
	start, end, ok := d.rawValue()
	if !ok {
		return nil
	}
	return append(json.RawMessage(nil), d.data[start:end]...)
}

// rawValue consumes the value at d.pos and returns where its text is.
func (d *decoderState) rawValue() (start, end int, ok bool) {
	d.skipSpace()
	start = d.pos
	d.skipValue()
	end = d.pos
	d.endValue()
	return start, end, d.syntax == nil
}

func (d *decoderState) unmarshal(v json.Unmarshaler, expected string) {
	if !d.beginValue("Unmarshal") {
		return
	}
	start, end, ok := d.rawValue()
	if !ok || v == nil {
		return
	}
	// Like encoding/json, hand over a view of the input (UnmarshalJSON
	// must copy what it keeps); the capped capacity keeps an append in it
	// from writing over the rest of the input.
	b := d.data[start:end:end]
	if &d.data[0] == &emptyObject[0] {
		b = []byte("{}") // never hand out the shared empty object
	}
	if err := v.UnmarshalJSON(b); err != nil {
		d.badValue(expected, describeRaw(b)+": "+err.Error())
	}
}

func (d *decoderState) unmarshalText(v encoding.TextUnmarshaler, expected string) {
	if !d.beginValue("UnmarshalText") {
		return
	}
	if d.peek() != '"' {
		d.wrongType(expected)
		return
	}
	b, ok := d.text()
	if !ok {
		return
	}
	if v == nil {
		return
	}
	if err := v.UnmarshalText(b); err != nil {
		d.badValue(expected, gotString(string(b))+": "+err.Error())
	}
}

func (d *decoderState) anyValue() any {
	if !d.beginValue("Any") {
		return nil
	}
	return d.readAny()
}

// readAny decodes the value at d.pos as encoding/json decodes into an any.
// Its recursion is bounded by the frame stack's depth limit.
func (d *decoderState) readAny() any {
	switch c := d.peek(); {
	case c == '{':
		if !d.push(kindObject) {
			return nil
		}
		m := map[string]any{}
		for d.next() {
			k := string(d.key)
			d.frames[len(d.frames)-1].state = stateRead
			m[k] = d.readAny() // a repeated key: the last wins, as in encoding/json
		}
		return m
	case c == '[':
		if !d.push(kindArray) {
			return nil
		}
		a := make([]any, 0) // not nil: encoding/json gives [] for []
		for d.nextItem() {
			d.frames[len(d.frames)-1].state = stateRead
			a = append(a, d.readAny())
		}
		return a
	case c == '"':
		b, ok := d.text()
		if !ok {
			return nil
		}
		return string(b)
	case c == '-' || isDigit(c):
		start := d.pos
		end := d.scanNumber(start)
		if end < 0 {
			return nil
		}
		d.pos = end
		d.endValue()
		lit := d.data[start:end]
		f, ok := parseFloat(lit, 64)
		if !ok {
			d.badValue(floatRange(64), gotLiteral(lit, false))
			return nil
		}
		return f
	case c == 't', c == 'f':
		word := "true"
		if c == 'f' {
			word = "false"
		}
		if d.literal(word) {
			d.endValue()
		}
		return c == 't'
	case c == 'n':
		if d.literal("null") {
			d.endValue()
		}
		return nil
	}
	d.syntaxChar(d.pos, "looking for a value")
	return nil
}

// ---- problems ----

// report records a problem at the current path.
func (d *decoderState) report(msg string) {
	if d.canReport() {
		d.problems = append(d.problems, Problem{Path: d.path(), Message: msg})
	}
}

// canReport says whether one more problem may be recorded, adding the "too
// many problems" entry when the cap is reached.
func (d *decoderState) canReport() bool {
	if d.syntax != nil || d.overflow {
		return false
	}
	if len(d.problems) < maxProblems {
		return true
	}
	d.overflow = true
	d.problems = append(d.problems, Problem{Message: "too many problems; the first " + strconv.Itoa(maxProblems) + " are shown"})
	return false
}

// badValue records "expected X, got Y" for the value just read.
func (d *decoderState) badValue(expected, got string) {
	d.valueBad = true
	d.report("expected " + expected + ", got " + got)
}

// wrongType records that the value at d.pos is not what was expected, and
// skips it.
func (d *decoderState) wrongType(expected string) {
	got := d.describeAndSkip()
	if d.syntax != nil {
		return
	}
	d.endValue()
	d.badValue(expected, got)
}

// describeAndSkip consumes the value at d.pos and returns the words for it
// in a problem.
func (d *decoderState) describeAndSkip() string {
	switch c := d.peek(); {
	case c == '"':
		b, ok := d.readString()
		if ok {
			return gotString(string(b))
		}
	case c == '{', c == '[':
		// The value has its problem already: strings inside it need none.
		lenient := d.lenientUTF8
		d.lenientUTF8 = true
		d.skipValue()
		d.lenientUTF8 = lenient
		if c == '{' {
			return "object"
		}
		return "array"
	case c == '-' || isDigit(c):
		start := d.pos
		if end := d.scanNumber(start); end >= 0 {
			d.pos = end
			return gotLiteral(d.data[start:end], false)
		}
	case c == 't':
		d.literal("true")
		return "true"
	case c == 'f':
		d.literal("false")
		return "false"
	case c == 'n':
		d.literal("null")
		return "null"
	default:
		d.syntaxChar(d.pos, "looking for a value")
	}
	return ""
}

// describeRaw returns the words for a valid JSON value's text.
func describeRaw(b []byte) string {
	switch b[0] {
	case '"':
		return gotString(string(appendUnescaped(nil, b[1:len(b)-1])))
	case '{':
		return "object"
	case '[':
		return "array"
	}
	return gotLiteral(b, false)
}

// misuse stops decoding when generated code calls the Decoder in an order
// that does not match the JSON grammar: a generator/runtime mismatch, which
// must never let params through unchecked.
func (d *decoderState) misuse(op string) {
	if d.syntax == nil {
		d.syntax = &Problem{Path: d.path(), Message: "internal error: Decoder." + op + " called out of order; run go generate with the atpgen that matches this runtime"}
	}
}

// syntaxChar reports the byte at i as unexpected in context, or the end of
// input when i is past it.
func (d *decoderState) syntaxChar(i int, context string) {
	if i >= len(d.data) {
		d.syntaxAt(len(d.data), "unexpected end of input")
		return
	}
	d.syntaxAt(i, "invalid character "+quoteChar(d.data[i:])+" "+context)
}

func (d *decoderState) syntaxAt(offset int, what string) {
	if d.syntax == nil {
		d.syntax = &Problem{Path: d.path(), Message: "invalid JSON: " + what + " at offset " + strconv.Itoa(offset)}
	}
}

// quoteChar quotes the character starting b for a syntax error message.
func quoteChar(b []byte) string {
	r, size := utf8.DecodeRune(b)
	if r == utf8.RuneError && size == 1 {
		return `'\x` + strconv.FormatUint(uint64(b[0])|0x100, 16)[1:] + `'`
	}
	return strconv.QuoteRune(r)
}

// path renders the current JSON path: location.city, tags[2], meta["x-y"].
func (d *decoderState) path() string {
	var b []byte
	for i := range d.frames {
		f := &d.frames[i]
		switch {
		case f.state == stateOpen:
			// no member or item yet: the path is the container's own
		case f.kind == kindArray:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(f.index), 10)
			b = append(b, ']')
		default:
			b = appendPathKey(b, f.key)
		}
	}
	return string(b)
}

// appendPathKey appends one key to a path: .name for identifiers, else
// ["quoted"].
func appendPathKey(b, key []byte) []byte {
	if isIdentifier(key) {
		if len(b) > 0 {
			b = append(b, '.')
		}
		return append(b, key...)
	}
	b = append(b, '[')
	b = appendQuoted(b, string(key), -1)
	return append(b, ']')
}

func isIdentifier(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for i, c := range s {
		if !(c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || i > 0 && isDigit(c)) {
			return false
		}
	}
	return true
}

// ---- scanner ----

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func isSpace(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func skipSpace(data []byte, i int) int {
	for i < len(data) && isSpace(data[i]) {
		i++
	}
	return i
}

func (d *decoderState) skipSpace() {
	for d.pos < len(d.data) && isSpace(d.data[d.pos]) {
		d.pos++
	}
}

// peek skips whitespace and returns the next byte, or 0 at the end of input
// (every caller treats 0 as "not a value": a NUL byte is not one either).
func (d *decoderState) peek() byte {
	d.skipSpace()
	if d.pos < len(d.data) {
		return d.data[d.pos]
	}
	return 0
}

// literal consumes word (true, false or null) at d.pos.
func (d *decoderState) literal(word string) bool {
	for k := 0; k < len(word); k++ {
		i := d.pos + k
		if i >= len(d.data) || d.data[i] != word[k] {
			d.syntaxChar(i, "in literal "+word+" (expecting "+strconv.QuoteRune(rune(word[k]))+")")
			return false
		}
	}
	d.pos += len(word)
	return true
}

// plainStringByte marks the bytes that a string can hold as they are:
// printable ASCII but the quote and the backslash.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the string whose opening quote is at i and returns the
// index just after its closing quote, or -1 after a syntax error. plain
// reports a string that has no escapes and is valid UTF-8: its text is its
// value. invalid reports bytes that are not UTF-8.
func (d *decoderState) scanString(i int) (end int, plain, invalid bool) {
	data := d.data
	plain = true
	i++
	for {
		for i < len(data) && plainStringByte[data[i]] {
			i++
		}
		if i >= len(data) {
			d.syntaxAt(len(data), "unexpected end of input")
			return -1, false, false
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, plain, invalid
		case c == '\\':
			plain = false
			i++
			if i >= len(data) {
				d.syntaxAt(len(data), "unexpected end of input")
				return -1, false, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				i++
				for k := 0; k < 4; k++ {
					if i >= len(data) || hexValue(data[i]) < 0 {
						d.syntaxChar(i, `in \u hexadecimal character escape`)
						return -1, false, false
					}
					i++
				}
			default:
				d.syntaxChar(i, "in string escape code")
				return -1, false, false
			}
		case c < 0x20:
			d.syntaxChar(i, "in string literal")
			return -1, false, false
		default:
			r, size := utf8.DecodeRune(data[i:])
			if r == utf8.RuneError && size == 1 {
				plain, invalid = false, true // the value gets U+FFFD
			}
			i += size
		}
	}
}

// readString reads the string at d.pos and returns its value: a view of the
// input when it has no escapes, else of d.buf, valid until the next read.
func (d *decoderState) readString() ([]byte, bool) {
	start := d.pos + 1
	end, plain, invalid := d.scanString(d.pos)
	d.strInvalid = invalid
	if end < 0 {
		return nil, false
	}
	d.pos = end
	if plain {
		return d.data[start : end-1 : end-1], true
	}
	d.buf = appendUnescaped(d.buf[:0], d.data[start:end-1])
	return d.buf, true
}

func hexValue(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// hex4 decodes the \uXXXX escape at the start of s, or returns -1.
func hex4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		v := hexValue(c)
		if v < 0 {
			return -1
		}
		r = r<<4 | rune(v)
	}
	return r
}

// appendUnescaped appends the value of a string's text s (without quotes,
// already checked by scanString) to dst. Invalid UTF-8 and unpaired
// surrogates become U+FFFD, exactly as encoding/json does.
func appendUnescaped(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			switch e := s[i+1]; e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i:])
				i += 6
				if utf16.IsSurrogate(r) {
					if r2 := utf16.DecodeRune(r, hex4(s[i:])); r2 != utf8.RuneError {
						dst = utf8.AppendRune(dst, r2)
						i += 6
						continue
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
				continue
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = utf8.AppendRune(dst, utf8.RuneError)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// scanNumber checks the number starting at i and returns the index after
// it, or -1 after a syntax error.
func (d *decoderState) scanNumber(i int) int {
	end, bad := scanNumber(d.data, i)
	if bad >= 0 {
		switch {
		case bad > i && d.data[bad-1] == '.':
			d.syntaxChar(bad, "after decimal point in numeric literal")
		case bad > i && (d.data[bad-1]|0x20) == 'e', bad > i+1 && (d.data[bad-1] == '+' || d.data[bad-1] == '-') && (d.data[bad-2]|0x20) == 'e':
			d.syntaxChar(bad, "in exponent of numeric literal")
		default:
			d.syntaxChar(bad, "in numeric literal")
		}
		return -1
	}
	return end
}

// scanNumber returns the end of the JSON number starting at data[i], or
// bad >= 0, the index of the first byte that breaks the grammar.
func scanNumber(data []byte, i int) (end, bad int) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return 0, i
	case data[i] == '0':
		i++
	case '1' <= data[i] && data[i] <= '9':
		i++
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	default:
		return 0, i
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return 0, i
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return 0, i
		}
		for i < len(data) && isDigit(data[i]) {
			i++
		}
	}
	return i, -1
}

// isNumber reports whether all of b is one JSON number (for coercion).
func isNumber(b []byte) bool {
	end, bad := scanNumber(b, 0)
	return bad < 0 && end == len(b)
}

func intBits(bits int) int {
	if bits == 0 {
		return strconv.IntSize
	}
	if bits < 1 || bits > 64 {
		return 64
	}
	return bits
}

type intResult uint8

const (
	intOK       intResult = iota
	intFraction           // not an integer: 2.5
	intTooBig             // an integer beyond uint64
)

// parseIntLiteral reads a valid JSON number as an integer's sign and
// magnitude, exactly: 2.0, 1e2 and -0 are integers, as JSON Schema counts
// them.
func parseIntLiteral(lit []byte) (neg bool, mag uint64, res intResult) {
	i := 0
	if lit[0] == '-' {
		neg, i = true, 1
	}
	// Fast path: up to 19 plain digits fit in a uint64.
	if n := len(lit) - i; n <= 19 {
		var v uint64
		j := i
		for ; j < len(lit) && isDigit(lit[j]); j++ {
			v = v*10 + uint64(lit[j]-'0')
		}
		if j == len(lit) {
			return neg, v, intOK
		}
	}
	mag, res = parseIntSlow(lit[i:])
	return neg, mag, res
}

// parseIntSlow handles fractions, exponents and long digit strings with
// decimal arithmetic, never floats, so that no large integer is rounded.
func parseIntSlow(lit []byte) (uint64, intResult) {
	// digits: the significant digits, integer part then fraction; exp: the
	// power of ten that scales them.
	i := 0
	for i < len(lit) && isDigit(lit[i]) {
		i++
	}
	intPart := lit[:i]
	var frac []byte
	if i < len(lit) && lit[i] == '.' {
		j := i + 1
		for j < len(lit) && isDigit(lit[j]) {
			j++
		}
		frac = lit[i+1 : j]
		i = j
	}
	exp := 0
	if i < len(lit) { // exponent
		i++
		expNeg := false
		if lit[i] == '+' || lit[i] == '-' {
			expNeg = lit[i] == '-'
			i++
		}
		for ; i < len(lit); i++ {
			if exp < 1e9 { // saturate: any exponent that large decides the answer alone
				exp = exp*10 + int(lit[i]-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}
	exp -= len(frac)

	// Drop the leading zeros of intPart+frac and the trailing zeros (each
	// raising exp), reading the two parts as one digit string.
	digit := func(k int) byte {
		if k < len(intPart) {
			return intPart[k]
		}
		return frac[k-len(intPart)]
	}
	lo, hi := 0, len(intPart)+len(frac)
	for lo < hi && digit(lo) == '0' {
		lo++
	}
	if lo == hi {
		return 0, intOK // zero, whatever its exponent
	}
	for digit(hi-1) == '0' {
		hi--
		exp++
	}
	switch {
	case exp < 0:
		return 0, intFraction // the last significant digit is after the point
	case hi-lo+exp > 20:
		return 0, intTooBig // at least 10^20, beyond uint64
	}
	var v uint64
	for k := lo; k < hi; k++ {
		n := uint64(digit(k) - '0')
		if v > (1<<64-1-n)/10 {
			return 0, intTooBig
		}
		v = v*10 + n
	}
	for ; exp > 0; exp-- {
		if v > (1<<64-1)/10 {
			return 0, intTooBig
		}
		v *= 10
	}
	return v, intOK
}

// parseFloat reads a valid JSON number; ok is false when it is out of the
// range of a float of bits (32 or 64).
func parseFloat(lit []byte, bits int) (float64, bool) {
	// The unsafe view saves a copy of the literal: ParseFloat only reads its
	// argument during the call, and lit is not changed while it runs. The
	// error, which could keep a reference, is only tested and dropped.
	f, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(lit), len(lit)), bits)
	return f, err == nil
}

// floatRange is the "expected" words for a number out of a float's range.
func floatRange(bits int) string {
	if bits == 32 {
		return "number from -3.4028234663852886e+38 to 3.4028234663852886e+38"
	}
	return "number from -1.7976931348623157e+308 to 1.7976931348623157e+308"
}
