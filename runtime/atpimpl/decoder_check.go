package atpimpl

import (
	"math/big"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// This file holds the Decoder's problem messages and the constraint and
// format checks that generated code runs on a value just read. Messages are
// written for LLMs: what was expected, in JSON Schema's words, and what was
// got, never a Go type name.

// maxGotRunes is where a string is cut in a problem message: enough to
// recognise it, short enough that a huge value does not flood the error.
const maxGotRunes = 40

// maxListed is how many allowed values an enum's problem lists: past it,
// the problem says how many there are ("expected one of 20000 values"), so
// that a huge enum is not echoed back on every bad call. atpgen words the
// enums it checks itself (numbers, and "missing" problems) the same way.
const maxListed = 10

func gotString(s string) string { return string(appendQuoted(nil, s, maxGotRunes)) }

func gotInt(v int64) string { return strconv.FormatInt(v, 10) }

func gotUint(v uint64) string { return strconv.FormatUint(v, 10) }

func gotFloat(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

// gotLiteral describes a number by its text as sent (quoted when it came as
// a string under coercion), cut like a string when it is very long.
func gotLiteral(lit []byte, quoted bool) string {
	if quoted {
		return gotString(string(lit))
	}
	if len(lit) > maxGotRunes {
		return string(lit[:maxGotRunes]) + "…"
	}
	return string(lit)
}

// appendQuoted appends s as a JSON string, cut after limit runes with "…"
// when limit >= 0. Invalid UTF-8 shows as U+FFFD.
func appendQuoted(b []byte, s string, limit int) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	n := 0
	for i := 0; i < len(s); n++ {
		if n == limit {
			b = append(b, "…"...)
			break
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r == '\r':
			b = append(b, `\r`...)
		case r == '\t':
			b = append(b, `\t`...)
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		case r == utf8.RuneError && size == 1:
			b = utf8.AppendRune(b, utf8.RuneError)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// count renders "1 item", "7 items".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

// ---- problems named by generated code ----

func (d *decoderState) unknown(allowed string) {
	if allowed == "" {
		d.report("unknown field (no fields are allowed)")
	} else if d.canReport() {
		d.report("unknown field (allowed: " + shortList(allowed) + ")")
	}
	d.skipQuietly()
}

// maxListedFields is how many names an unknown field's problem lists.
const maxListedFields = 20

// shortList cuts a comma-separated list of field names after
// maxListedFields: "a, b, ..., t, and 980 more". An object with a thousand
// properties then does not put them all in every problem.
func shortList(names string) string {
	i, n := 0, 0
	for n < maxListedFields {
		j := strings.Index(names[i:], ", ")
		if j < 0 {
			return names
		}
		i += j + 2
		n++
	}
	return names[:i] + "and " + strconv.Itoa(strings.Count(names[i:], ", ")+1) + " more"
}

func (d *decoderState) duplicate() {
	d.report("duplicate field")
	d.skipQuietly()
}

// skipQuietly skips the pending value of a member that already has its
// problem: invalid UTF-8 inside it would only repeat that the member is
// refused.
func (d *decoderState) skipQuietly() {
	lenient := d.lenientUTF8
	d.lenientUTF8 = true
	d.skipPending()
	d.lenientUTF8 = lenient
}

func (d *decoderState) missing(name, expected string) {
	if !d.canReport() {
		return
	}
	msg := "missing required field"
	if expected != "" {
		msg += " (expected " + expected + ")"
	}
	path := appendPathKey([]byte(d.path()), []byte(name))
	d.problems = append(d.problems, Problem{Path: string(path), Message: msg})
}

func (d *decoderState) fail(expected, got string) {
	if !d.valueBad {
		d.report("expected " + expected + ", got " + got)
	}
}

// ---- constraints ----
//
// Each check stays silent when the value just read already has a problem
// (its type was wrong, so the zero value it returned means nothing).

func (d *decoderState) enum(s string, allowed []string) {
	if d.valueBad {
		return
	}
	for _, a := range allowed {
		if s == a {
			return
		}
	}
	b := []byte("expected one of ")
	if len(allowed) > maxListed {
		b = strconv.AppendInt(b, int64(len(allowed)), 10)
		b = append(b, " values"...)
	} else {
		for i, a := range allowed {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = appendQuoted(b, a, -1)
		}
	}
	b = append(b, ", got "...)
	b = appendQuoted(b, s, maxGotRunes)
	d.report(string(b))
}

func (d *decoderState) minLength(s string, n int) {
	if d.valueBad || len(s) >= n*utf8.UTFMax { // cheap exit: that many bytes hold n runes
		return
	}
	if utf8.RuneCountInString(s) < n {
		d.report("expected string of at least " + count(n, "character", "characters") + ", got " + gotString(s))
	}
}

func (d *decoderState) maxLength(s string, n int) {
	if d.valueBad || len(s) <= n { // cheap exit: a rune is at least one byte
		return
	}
	if c := utf8.RuneCountInString(s); c > n {
		d.report("expected string of at most " + count(n, "character", "characters") + ", got " + gotString(s) + " (" + count(c, "character", "characters") + ")")
	}
}

func (d *decoderState) minItems(n, min int) {
	if n < min {
		d.report("expected at least " + count(min, "item", "items") + ", got " + strconv.Itoa(n))
	}
}

func (d *decoderState) maxItems(n, max int) {
	if n > max {
		d.report("expected at most " + count(max, "item", "items") + ", got " + strconv.Itoa(n))
	}
}

func (d *decoderState) minProperties(n, min int) {
	if n < min {
		d.report("expected at least " + count(min, "entry", "entries") + ", got " + strconv.Itoa(n))
	}
}

func (d *decoderState) maxProperties(n, max int) {
	if n > max {
		d.report("expected at most " + count(max, "entry", "entries") + ", got " + strconv.Itoa(n))
	}
}

func (d *decoderState) pattern(s string, re *regexp.Regexp, pattern string) {
	if d.valueBad || re == nil || re.MatchString(s) {
		return
	}
	d.report("expected string matching " + pattern + ", got " + gotString(s))
}

// maxExactExponent bounds the decimal exponents MultipleOf compares exactly:
// big.Rat would build 10^exp, and a hostile 1e999999999 must not cost that.
const maxExactExponent = 400

func (d *decoderState) multipleOf(m string) {
	if d.valueBad || d.lastNumber == nil {
		return
	}
	lit := d.lastNumber
	var x, y big.Rat
	if !smallExponent(lit) || !smallExponent([]byte(m)) {
		return // beyond float64's range anyway: the number could not be read
	}
	if _, ok := x.SetString(string(lit)); !ok {
		return
	}
	if _, ok := y.SetString(m); !ok || y.Sign() <= 0 {
		return
	}
	if !x.Quo(&x, &y).IsInt() {
		d.report("expected multiple of " + m + ", got " + gotLiteral(lit, false))
	}
}

// smallExponent reports whether a decimal literal's exponent, if any, is at
// most maxExactExponent in size.
func smallExponent(lit []byte) bool {
	for i, c := range lit {
		if c == 'e' || c == 'E' {
			exp := lit[i+1:]
			if len(exp) > 0 && (exp[0] == '+' || exp[0] == '-') {
				exp = exp[1:]
			}
			n := 0
			for _, c := range exp {
				n = n*10 + int(c-'0')
				if n > maxExactExponent {
					return false
				}
			}
		}
	}
	return true
}

func (d *decoderState) minimum(v, min float64, exclusive bool) {
	if d.valueBad {
		return
	}
	switch {
	case exclusive && !(v > min):
		d.report("expected number > " + gotFloat(min) + ", got " + gotFloat(v))
	case !exclusive && !(v >= min):
		d.report("expected number >= " + gotFloat(min) + ", got " + gotFloat(v))
	}
}

func (d *decoderState) maximum(v, max float64, exclusive bool) {
	if d.valueBad {
		return
	}
	switch {
	case exclusive && !(v < max):
		d.report("expected number < " + gotFloat(max) + ", got " + gotFloat(v))
	case !exclusive && !(v <= max):
		d.report("expected number <= " + gotFloat(max) + ", got " + gotFloat(v))
	}
}

// ---- formats ----

func (d *decoderState) format(s, format string) {
	if d.valueBad {
		return
	}
	if ok, expected := checkFormat(s, format); !ok {
		d.report("expected " + expected + ", got " + gotString(s))
	}
}

// checkFormat reports whether s is valid in the JSON Schema format, and the
// words for what the format wants. Formats it does not know are valid, as
// JSON Schema says of annotations it cannot assert.
func checkFormat(s, format string) (ok bool, expected string) {
	switch format {
	case "date-time":
		return isDateTime(s), "RFC 3339 date-time"
	case "date":
		return isFullDate(s), "date (YYYY-MM-DD)"
	case "time":
		return isFullTime(s), "time (HH:MM:SS with offset)"
	case "email":
		return isEmail(s), "email address"
	case "hostname":
		return isHostname(s), "hostname"
	case "ipv4":
		return isIPv4(s), "IPv4 address"
	case "ipv6":
		return isIPv6(s), "IPv6 address"
	case "uri":
		return isAbsoluteURI(s), "absolute URI"
	case "uuid":
		return isUUID(s), "UUID"
	}
	return true, ""
}

// decimal reads s, all ASCII digits, as a number; ok is false otherwise.
func decimal(s string) (n int, ok bool) {
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

// isDateTime checks RFC 3339's date-time: full-date "T" full-time, with the
// T and Z in either case, as JSON Schema's format says.
func isDateTime(s string) bool {
	return len(s) > 11 && isFullDate(s[:10]) && (s[10] == 'T' || s[10] == 't') && isFullTime(s[11:])
}

// isFullDate checks YYYY-MM-DD, a real calendar date.
func isFullDate(s string) bool {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return false
	}
	y, ok1 := decimal(s[:4])
	m, ok2 := decimal(s[5:7])
	day, ok3 := decimal(s[8:])
	if !ok1 || !ok2 || !ok3 || m < 1 || m > 12 || day < 1 {
		return false
	}
	days := [13]int{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}[m]
	if m == 2 && y%4 == 0 && (y%100 != 0 || y%400 == 0) {
		days = 29
	}
	return day <= days
}

// isFullTime checks RFC 3339's full-time: HH:MM:SS, an optional fraction,
// then Z or a numeric offset. Second 60 is a leap second, valid only as the
// last second of a UTC day.
func isFullTime(s string) bool {
	if len(s) < 9 || s[2] != ':' || s[5] != ':' {
		return false
	}
	h, ok1 := decimal(s[:2])
	m, ok2 := decimal(s[3:5])
	sec, ok3 := decimal(s[6:8])
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || sec > 60 {
		return false
	}
	i := 8
	if s[i] == '.' {
		i++
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return false
		}
	}
	if i >= len(s) {
		return false // RFC 3339 requires the offset
	}
	offset := 0 // minutes east of UTC
	switch s[i] {
	case 'Z', 'z':
		if i+1 != len(s) {
			return false
		}
	case '+', '-':
		rest := s[i+1:]
		if len(rest) != 5 || rest[2] != ':' {
			return false
		}
		oh, ok1 := decimal(rest[:2])
		om, ok2 := decimal(rest[3:])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return false
		}
		offset = oh*60 + om
		if s[i] == '-' {
			offset = -offset
		}
	default:
		return false
	}
	if sec == 60 {
		utc := ((h*60+m-offset)%1440 + 1440) % 1440
		return utc == 23*60+59
	}
	return true
}

// isEmail is a practical check of an RFC 5321 mailbox, as JSON Schema's
// "email" means: a local part of at most 64 characters, either a dot-atom
// (letters, digits and !#$%&'*+-/=?^_`{|}~ separated by single dots) or a
// quoted string of printable ASCII; then one @; then a hostname or an
// address literal ([192.0.2.1], [IPv6:2001:db8::1]). It does not look the
// domain up, and it rejects non-ASCII (RFC 6531 addresses).
func isEmail(s string) bool {
	var local, domain string
	if strings.HasPrefix(s, `"`) {
		i := 1
		for ; i < len(s) && s[i] != '"'; i++ {
			if s[i] == '\\' { // a quoted pair
				i++
			}
			if i >= len(s) || s[i] < 0x20 || s[i] > 0x7e {
				return false
			}
		}
		if i >= len(s) || i+1 >= len(s) || s[i+1] != '@' {
			return false // unclosed, or text after the closing quote
		}
		local, domain = s[:i+1], s[i+2:]
	} else {
		at := strings.IndexByte(s, '@')
		if at < 0 {
			return false
		}
		local, domain = s[:at], s[at+1:]
		if !isDotAtom(local) {
			return false
		}
	}
	if len(local) > 64 || strings.IndexByte(domain, '@') >= 0 {
		return false
	}
	if len(domain) > 2 && domain[0] == '[' && domain[len(domain)-1] == ']' {
		lit := domain[1 : len(domain)-1]
		if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
			return isIPv6(lit[5:])
		}
		return isIPv4(lit)
	}
	return !strings.HasSuffix(domain, ".") && isHostname(domain)
}

func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '.' && strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) < 0 {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// isHostname checks an RFC 1123 host name: dot-separated labels of 1 to 63
// letters, digits and hyphens, not starting or ending with a hyphen, 253
// characters at most (a final dot, naming the root, is allowed).
func isHostname(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			if !isAlnum(label[i]) && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

// isIPv4 checks a dotted quad of decimal octets without leading zeros
// (which some parsers read as octal).
func isIPv4(s string) bool {
	parts := 0
	for part := range strings.SplitSeq(s, ".") {
		parts++
		n, ok := decimal(part)
		if !ok || len(part) > 3 || n > 255 || len(part) > 1 && part[0] == '0' {
			return false
		}
	}
	return parts == 4
}

// isIPv6 checks an IPv6 address (dotted IPv4 tail allowed) without a zone.
func isIPv6(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is6() && a.Zone() == ""
}

// isAbsoluteURI checks a URI with a scheme, as url.Parse reads it.
func isAbsoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.Scheme != ""
}

// isUUID checks the 8-4-4-4-12 hex form, in either case.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch i {
		case 8, 13, 18, 23:
			if s[i] != '-' {
				return false
			}
		default:
			if hexValue(s[i]) < 0 {
				return false
			}
		}
	}
	return true
}
