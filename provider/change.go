package provider

import "strings"

// Action says what a conversion did to one keyword.
type Action string

const (
	// Stripped: an annotation or metadata keyword was removed ($schema,
	// $comment, x-* extensions, examples, readOnly ...). Validation is
	// unaffected.
	Stripped Action = "stripped"
	// Dropped: a validation keyword was removed. The provider neither sees
	// nor enforces it; validation against the canonical schema still does.
	Dropped Action = "dropped"
	// Described: a validation keyword was removed from the schema and
	// appended to its description as {keyword: value}, so the model still
	// reads the constraint. Enforced only locally.
	Described Action = "described"
	// Rewritten: the same meaning in a form the provider takes (oneOf to
	// anyOf, const to enum, $ref inlined, a null union to nullable:true).
	Rewritten Action = "rewritten"
	// Added: a keyword the provider requires was added (additionalProperties
	// false and every property required in OpenAI strict mode, a missing
	// type:"object").
	Added Action = "added"
	// Downgraded: the provider's preferred form cannot express the schema, so
	// the tool uses its fallback form: OpenAI strict:false, or Gemini's
	// parametersJsonSchema instead of parameters. Pointer and Keyword name the
	// first construct that forced it. The other changes of the result belong
	// to the fallback form.
	Downgraded Action = "downgraded"
)

// Change records one thing a conversion dropped, rewrote or added, so that
// `atp doctor` can report what a provider cannot take and why.
type Change struct {
	// In says which part of the tool the change is in: "input" (the
	// parameters schema), "output" (the output schema) or "tool" (a field of
	// the definition itself, e.g. a truncated description). ConvertSchema
	// leaves it empty: the caller knows which schema it passed.
	In string `json:"in,omitempty"`
	// Pointer is the RFC 6901 JSON Pointer, in the canonical schema, of the
	// schema object that held Keyword ("" is the root). A keyword inside a
	// $defs entry is reported at its place in $defs, however many times the
	// entry was inlined. Empty for In == "tool".
	Pointer string `json:"pointer"`
	// Keyword is the JSON Schema keyword (or tool field) concerned.
	Keyword string `json:"keyword"`
	Action  Action `json:"action"`
	// Reason says why, in words meant for a developer.
	Reason string `json:"reason"`
}

func (c Change) String() string {
	var b strings.Builder
	if c.In != "" {
		b.WriteString(c.In)
		b.WriteByte(' ')
	}
	if c.In != "tool" {
		b.WriteString(pointerOrRoot(c.Pointer))
		b.WriteByte(' ')
	}
	b.WriteString(c.Keyword)
	b.WriteByte(' ')
	b.WriteString(string(c.Action))
	b.WriteString(": ")
	b.WriteString(c.Reason)
	return b.String()
}

// changeLog collects changes in first-seen order without duplicates: an
// inlined $defs entry would otherwise report the same keyword once per use.
type changeLog struct {
	list []Change
	seen map[Change]bool
}

func (l *changeLog) add(c Change) {
	if l.seen == nil {
		l.seen = map[Change]bool{}
	}
	if l.seen[c] {
		return
	}
	l.seen[c] = true
	l.list = append(l.list, c)
}
