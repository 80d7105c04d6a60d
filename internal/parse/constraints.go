package parse

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"go/token"
	"math/big"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/atpgo/atp/internal/didyoumean"
	"github.com/atpgo/atp/internal/model"
)

// jsonschemaKeywords are the keywords of the jsonschema tag (invopop syntax).
var jsonschemaKeywords = []string{
	"title", "description", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
	"multipleOf", "minLength", "maxLength", "minItems", "maxItems", "uniqueItems", "pattern",
	"format", "enum", "default", "example", "required", "nullable", "deprecated", "readOnly",
	"writeOnly",
}

// jsonschemaFormats are the formats the decoders check.
var jsonschemaFormats = []string{"date-time", "date", "time", "email", "hostname", "ipv4", "ipv6", "uri", "uuid"}

var jsonNumberRE = regexp.MustCompile(`^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$`)

// valueKind is what a type is in JSON, for checking constraints.
type valueKind int

const (
	vkOpaque valueKind = iota // any JSON value: any, json.RawMessage, a json.Unmarshaler
	vkString
	vkBytes
	vkTime
	vkDuration
	vkBool
	vkInt
	vkUint
	vkFloat
	vkArray
	vkObject
)

// valueInfo describes a type for constraint checks.
type valueInfo struct {
	kind  valueKind
	bits  int
	elem  *model.Type  // vkArray
	named *model.Named // the outermost named type, for its enum constants
	goStr string       // the Go type, for messages
}

func (pl *pkgLoader) valueOf(t *model.Type) valueInfo {
	vi := valueInfo{goStr: pl.typeString(t)}
	for {
		switch t.Kind {
		case model.KindPointer:
			t = t.Elem
			continue
		case model.KindNamed:
			n := pl.mp.Named[t.Ref]
			if n == nil || n.JSONUnmarshaler {
				return vi
			}
			if vi.named == nil {
				vi.named = n
			}
			if n.TextUnmarshaler {
				vi.kind = vkString
				return vi
			}
			t = n.Underlying
			continue
		}
		break
	}
	switch t.Kind {
	case model.KindString:
		vi.kind = vkString
	case model.KindBytes:
		vi.kind = vkBytes
	case model.KindTime:
		vi.kind = vkTime
	case model.KindDuration:
		vi.kind = vkDuration
	case model.KindBool:
		vi.kind = vkBool
	case model.KindInt:
		vi.kind, vi.bits = vkInt, t.Bits
	case model.KindUint:
		vi.kind, vi.bits = vkUint, t.Bits
	case model.KindFloat:
		vi.kind, vi.bits = vkFloat, t.Bits
	case model.KindSlice, model.KindArray:
		vi.kind, vi.elem = vkArray, t.Elem
	case model.KindMap, model.KindStruct:
		vi.kind = vkObject
	}
	return vi
}

func (vi valueInfo) numeric() bool {
	return vi.kind == vkInt || vi.kind == vkUint || vi.kind == vkFloat
}

// typeString writes a model type the way Go code names it.
func (pl *pkgLoader) typeString(t *model.Type) string {
	switch t.Kind {
	case model.KindInt, model.KindUint, model.KindFloat:
		if t.Bits == 0 {
			return string(t.Kind)
		}
		return fmt.Sprintf("%s%d", t.Kind, t.Bits)
	case model.KindBytes:
		return "[]byte"
	case model.KindTime:
		return "time.Time"
	case model.KindDuration:
		return "time.Duration"
	case model.KindRaw:
		return "json.RawMessage"
	case model.KindSlice:
		return "[]" + pl.typeString(t.Elem)
	case model.KindArray:
		return fmt.Sprintf("[%d]%s", t.Len, pl.typeString(t.Elem))
	case model.KindMap:
		return "map[" + pl.typeString(t.Key) + "]" + pl.typeString(t.Elem)
	case model.KindPointer:
		return "*" + pl.typeString(t.Elem)
	case model.KindStruct:
		return "struct{...}"
	case model.KindNamed:
		if n := pl.mp.Named[t.Ref]; n != nil {
			if n.PkgPath == pl.pkg.PkgPath {
				return n.Name
			}
			return n.PkgName + "." + n.Name
		}
		return t.Ref
	}
	return string(t.Kind)
}

// constraints reads the jsonschema and jsonschema_description keys of a
// struct tag for a value of type t. required reports the required keyword.
func (pl *pkgLoader) constraints(kvs []tagKV, loc tagLocator, t *model.Type, what string) (c model.Constraints, required, ok bool) {
	ok = true
	bad := func(p token.Position, format string, args ...any) {
		pl.errorf(p, "%s: %s", what, fmt.Sprintf(format, args...))
		ok = false
	}
	if kv, has := lookupTag(kvs, "jsonschema_description"); has {
		c.Description = kv.value
	}
	kv, has := lookupTag(kvs, "jsonschema")
	if !has {
		return c, false, true
	}

	vi := pl.valueOf(t)
	var ei valueInfo
	if vi.kind == vkArray {
		ei = pl.valueOf(vi.elem)
	}
	items := func() *model.Constraints {
		if c.Items == nil {
			c.Items = &model.Constraints{}
		}
		return c.Items
	}
	// target picks where a keyword for values of a kind goes: the value
	// itself, or each item of an array (invopop's rule).
	target := func(fits func(valueInfo) bool) (*model.Constraints, valueInfo, bool) {
		if fits(vi) {
			return &c, vi, true
		}
		if vi.kind == vkArray && fits(ei) {
			return items(), ei, true
		}
		return nil, valueInfo{}, false
	}
	isString := func(v valueInfo) bool { return v.kind == vkString }
	isNumber := func(v valueInfo) bool { return v.numeric() }
	notFor := func(p token.Position, key, forWhat string) {
		bad(p, "jsonschema keyword %s does not apply to %s: it is for %s", key, vi.goStr, forWhat)
	}

	seen := make(map[string]token.Position) // keyword → position of its value
	var defaults []string
	for _, it := range splitTagItems(kv.value) {
		if strings.TrimSpace(it.text) == "" {
			continue
		}
		key, val, hasVal := strings.Cut(it.text, "=")
		keyPos := loc.at(kv, it.off)
		valPos := loc.at(kv, it.off+len(key)+1)
		if !slices.Contains(jsonschemaKeywords, key) {
			hint := ""
			if s := didyoumean.Suggest(key, jsonschemaKeywords); s != "" {
				hint = fmt.Sprintf("did you mean %s? ", s)
			}
			bad(keyPos, "unknown jsonschema keyword %q: %s(keywords: %s)", key, hint, strings.Join(jsonschemaKeywords, ", "))
			continue
		}
		repeatable := key == "enum" || key == "example" || (key == "default" && vi.kind == vkArray)
		if _, dup := seen[key]; dup && !repeatable {
			bad(keyPos, "jsonschema keyword %s given twice", key)
			continue
		}
		seen[key] = valPos
		needValue := func() bool {
			if !hasVal || val == "" {
				bad(keyPos, "jsonschema keyword %s needs a value: write %s=<value>", key, key)
				return false
			}
			return true
		}

		switch key {
		case "title":
			if needValue() {
				c.Title = val
			}
		case "description":
			if c.Description != "" {
				bad(keyPos, "description given twice: in jsonschema and in jsonschema_description")
			} else if needValue() {
				c.Description = val
			}
		case "required", "nullable", "deprecated", "readOnly", "writeOnly", "uniqueItems":
			on := true
			if hasVal {
				b, err := strconv.ParseBool(val)
				if err != nil || (val != "true" && val != "false") {
					bad(valPos, "jsonschema keyword %s is a flag: write %s, or %s=true or %s=false, not %s=%s", key, key, key, key, key, val)
					continue
				}
				on = b
			}
			switch key {
			case "required":
				required = on
			case "nullable":
				c.Nullable = on
			case "deprecated":
				c.Deprecated = on
			case "readOnly":
				c.ReadOnly = on
			case "writeOnly":
				c.WriteOnly = on
			case "uniqueItems":
				if vi.kind != vkArray {
					notFor(keyPos, key, "arrays")
					continue
				}
				c.UniqueItems = on
			}
		case "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf":
			dst, _, fits := target(isNumber)
			if !fits {
				notFor(keyPos, key, "numbers (or arrays of numbers)")
				continue
			}
			if !needValue() {
				continue
			}
			if !jsonNumberRE.MatchString(val) {
				bad(valPos, "jsonschema keyword %s: expected a number, got %q", key, val)
				continue
			}
			switch key {
			case "minimum":
				dst.Minimum = val
			case "maximum":
				dst.Maximum = val
			case "exclusiveMinimum":
				dst.ExclusiveMinimum = val
			case "exclusiveMaximum":
				dst.ExclusiveMaximum = val
			case "multipleOf":
				if r, _ := new(big.Rat).SetString(val); r == nil || r.Sign() <= 0 {
					bad(valPos, "jsonschema keyword multipleOf: expected a number greater than 0, got %s", val)
					continue
				}
				dst.MultipleOf = val
			}
		case "minLength", "maxLength", "minItems", "maxItems":
			var dst *model.Constraints
			if key == "minItems" || key == "maxItems" {
				if vi.kind != vkArray {
					notFor(keyPos, key, "arrays")
					continue
				}
				dst = &c
			} else {
				var fits bool
				if dst, _, fits = target(isString); !fits {
					notFor(keyPos, key, "strings (or arrays of strings)")
					continue
				}
			}
			if !needValue() {
				continue
			}
			n, err := strconv.Atoi(val)
			if err != nil || n < 0 {
				bad(valPos, "jsonschema keyword %s: expected a whole number of 0 or more, got %q", key, val)
				continue
			}
			switch key {
			case "minLength":
				dst.MinLength = &n
			case "maxLength":
				dst.MaxLength = &n
			case "minItems":
				dst.MinItems = &n
			case "maxItems":
				dst.MaxItems = &n
			}
		case "pattern":
			dst, _, fits := target(isString)
			if !fits {
				notFor(keyPos, key, "strings (or arrays of strings)")
				continue
			}
			if !needValue() {
				continue
			}
			if _, err := regexp.Compile(val); err != nil {
				bad(valPos, "jsonschema pattern %q does not compile: %v", val, strings.TrimPrefix(err.Error(), "error parsing regexp: "))
				continue
			}
			dst.Pattern = val
		case "format":
			dst, _, fits := target(isString)
			if !fits {
				notFor(keyPos, key, "strings (or arrays of strings)")
				continue
			}
			if !needValue() {
				continue
			}
			if !slices.Contains(jsonschemaFormats, val) {
				bad(valPos, "unknown jsonschema format %q (formats: %s)", val, strings.Join(jsonschemaFormats, ", "))
				continue
			}
			dst.Format = val
		case "enum", "example":
			dst, info := &c, vi
			if vi.kind == vkArray {
				dst, info = items(), ei
			}
			if !hasVal {
				needValue()
				continue
			}
			lit, why := literal(val, info)
			if why != "" {
				bad(valPos, "jsonschema %s value %q does not fit %s: %s", key, val, info.goStr, why)
				continue
			}
			if key == "enum" {
				dst.Enum = append(dst.Enum, lit)
			} else {
				dst.Examples = append(dst.Examples, lit)
			}
		case "default":
			info := vi
			if vi.kind == vkArray {
				info = ei
			}
			if !hasVal {
				needValue()
				continue
			}
			lit, why := literal(val, info)
			if why != "" {
				bad(valPos, "jsonschema default %q does not fit %s: %s", val, info.goStr, why)
				continue
			}
			if vi.kind == vkArray {
				defaults = append(defaults, lit)
			} else {
				c.Default = lit
			}
		}
	}
	if len(defaults) > 0 {
		c.Default = "[" + strings.Join(defaults, ",") + "]"
	}
	if !crossCheck(&c, seen, func(p token.Position, msg string) { bad(p, "%s", msg) }) {
		ok = false
	}
	if c.Items != nil && !crossCheck(c.Items, seen, func(p token.Position, msg string) { bad(p, "%s", msg) }) {
		ok = false
	}
	if vi.kind != vkArray && c.Default != "" && len(c.Enum) > 0 && !slices.Contains(c.Enum, c.Default) {
		bad(seen["default"], "jsonschema default %s is not one of the enum values (%s)", c.Default, strings.Join(c.Enum, ", "))
	}
	return c, required, ok
}

// crossCheck reports bounds that contradict each other.
func crossCheck(c *model.Constraints, seen map[string]token.Position, bad func(token.Position, string)) bool {
	ok := true
	num := func(s string) *big.Rat {
		if s == "" {
			return nil
		}
		r, _ := new(big.Rat).SetString(s)
		return r
	}
	type bound struct {
		key, src  string
		inclusive bool
	}
	lower := []bound{{"minimum", c.Minimum, true}, {"exclusiveMinimum", c.ExclusiveMinimum, false}}
	upper := []bound{{"maximum", c.Maximum, true}, {"exclusiveMaximum", c.ExclusiveMaximum, false}}
	for _, lo := range lower {
		for _, hi := range upper {
			l, h := num(lo.src), num(hi.src)
			if l == nil || h == nil {
				continue
			}
			d := l.Cmp(h)
			if d > 0 || (d == 0 && !(lo.inclusive && hi.inclusive)) {
				bad(seen[hi.key], fmt.Sprintf("jsonschema %s=%s leaves no valid value with %s=%s", hi.key, hi.src, lo.key, lo.src))
				ok = false
			}
		}
	}
	pairs := []struct {
		lo, hi   string
		min, max *int
	}{{"minLength", "maxLength", c.MinLength, c.MaxLength}, {"minItems", "maxItems", c.MinItems, c.MaxItems}}
	for _, p := range pairs {
		if p.min != nil && p.max != nil && *p.min > *p.max {
			bad(seen[p.hi], fmt.Sprintf("jsonschema %s=%d is less than %s=%d", p.hi, *p.max, p.lo, *p.min))
			ok = false
		}
	}
	return ok
}

// literal turns a tag value into a JSON literal of the value's type, or
// says why it does not fit.
func literal(val string, vi valueInfo) (lit, why string) {
	switch vi.kind {
	case vkString:
		lit = jsonString(val)
	case vkTime:
		if _, err := time.Parse(time.RFC3339, val); err != nil {
			return "", "expected an RFC 3339 date-time such as 2024-01-02T15:04:05Z"
		}
		lit = jsonString(val)
	case vkDuration:
		if _, err := time.ParseDuration(val); err != nil {
			return "", "expected a Go duration such as 1h30m"
		}
		lit = jsonString(val)
	case vkBytes:
		if _, err := base64.StdEncoding.DecodeString(val); err != nil {
			return "", "expected standard base64"
		}
		lit = jsonString(val)
	case vkBool:
		if val != "true" && val != "false" {
			return "", "expected true or false"
		}
		lit = val
	case vkInt:
		n, err := strconv.ParseInt(val, 10, bitsOr64(vi.bits))
		if err != nil {
			return "", "expected a whole number in its range"
		}
		lit = strconv.FormatInt(n, 10)
	case vkUint:
		n, err := strconv.ParseUint(val, 10, bitsOr64(vi.bits))
		if err != nil {
			return "", "expected a whole number of 0 or more in its range"
		}
		lit = strconv.FormatUint(n, 10)
	case vkFloat:
		if !jsonNumberRE.MatchString(val) {
			return "", "expected a JSON number"
		}
		if _, err := strconv.ParseFloat(val, bitsOr64(vi.bits)); err != nil {
			return "", "out of range"
		}
		lit = val
	default:
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(val)); err != nil {
			return "", "expected a JSON value (quote strings, escape commas as \\,)"
		}
		lit = buf.String()
	}
	if n := vi.named; n != nil && len(n.Enum) > 0 {
		var allowed []string
		for _, e := range n.Enum {
			if e.Value == lit {
				return lit, ""
			}
			allowed = append(allowed, e.Value)
		}
		return "", fmt.Sprintf("%s is not one of the constants of %s (%s)", lit, n.Name, strings.Join(allowed, ", "))
	}
	return lit, ""
}

func bitsOr64(bits int) int {
	if bits == 0 {
		return 64
	}
	return bits
}
