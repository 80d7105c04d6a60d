package gen

import (
	"math/big"
	"regexp"
	"time"

	"github.com/atpgo/atp/internal/model"
)

// jsonNumber matches a JSON number literal: constraint values are copied
// into schemas as they are written, so they must be valid JSON.
var jsonNumber = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// parseNumber parses a JSON number literal exactly.
func parseNumber(s string) (*big.Rat, bool) {
	if !jsonNumber.MatchString(s) {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// intRange returns the bounds of an integer kind; bits 0 (int, uint) uses
// the 32-bit range for int when portable is set, since generated code must
// compile for every GOARCH.
func intRange(kind model.Kind, bits int, portable bool) (lo, hi *big.Int) {
	if bits == 0 {
		if portable {
			bits = 32
		} else {
			bits = 64
		}
	}
	one := big.NewInt(1)
	if kind == model.KindUint {
		hi = new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits)), one)
		return big.NewInt(0), hi
	}
	hi = new(big.Int).Sub(new(big.Int).Lsh(one, uint(bits-1)), one)
	lo = new(big.Int).Neg(new(big.Int).Lsh(one, uint(bits-1)))
	return lo, hi
}

// schemaBounds are the minimum and maximum that a sized integer kind gets in
// its schema: the decoder rejects values outside them, so the schema says so.
// int and int64 get none (JSON numbers beyond 2^53 are rare and LLMs do not
// need the noise); uint and uint64 get minimum 0.
func schemaBounds(kind model.Kind, bits int) (lo, hi string) {
	switch {
	case kind == model.KindUint && (bits == 0 || bits == 64):
		return "0", ""
	case kind == model.KindInt && (bits == 0 || bits == 64):
		return "", ""
	case kind == model.KindInt || kind == model.KindUint:
		l, h := intRange(kind, bits, false)
		return l.String(), h.String()
	}
	return "", ""
}

// ratInt returns r as an integer when it is one.
func ratInt(r *big.Rat) (*big.Int, bool) {
	if !r.IsInt() {
		return nil, false
	}
	return new(big.Int).Set(r.Num()), true
}

// durationPattern matches exactly the strings time.ParseDuration accepts
// (leaving out only values that overflow): an optional sign, then "0" or
// one or more decimal numbers each with a unit.
const durationPattern = `^[-+]?(0|(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$`

// durationNote is appended to the description of every duration property:
// the JSON form of a Go duration is not obvious from "type": "string".
const durationNote = `A Go duration string such as "1h30m", "90s" or "250ms" (units: h, m, s, ms, us, ns).`

// durationOutNote describes a time.Duration in a result, which
// encoding/json writes as an integer.
const durationOutNote = "A duration in nanoseconds."

// durationUnits are the units a generated duration expression uses, largest
// first.
var durationUnits = []struct {
	d    time.Duration
	name string
}{
	{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"},
	{time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}, {time.Nanosecond, "Nanosecond"},
}
