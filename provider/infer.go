package provider

import (
	"encoding/json"

	"github.com/atpgo/atp/internal/jsontree"
)

// InferredKeyword marks a schema that InferSchema built from parameter names
// alone. It stays in MCP output; every other provider gets extension
// keywords stripped.
const InferredKeyword = "x-atp-inferred"

// InferSchema builds an input schema for a toolkit that registers only
// parameter names (the Python SDK sends params and required_params, no
// types): every parameter is {"type":"string"}, required lists the required
// ones, and the root carries "x-atp-inferred": true. Empty and repeated names
// are skipped; a required name missing from params is added as a parameter.
// No additionalProperties is set: the function may take other keywords.
func InferSchema(params, required []string) json.RawMessage {
	root := newObject("")
	root.set("type", "object")
	props := newObject("/properties")
	add := func(name string) {
		if name == "" || props.has(name) {
			return
		}
		s := newObject("/properties/" + jsontree.EscapePointer(name))
		s.set("type", "string")
		props.set(name, s)
	}
	for _, p := range params {
		add(p)
	}
	var req []string
	seen := make(map[string]bool, len(required))
	for _, r := range required {
		if r == "" || seen[r] {
			continue
		}
		seen[r] = true
		add(r)
		req = append(req, r)
	}
	root.set("properties", props)
	if len(req) > 0 {
		root.set("required", anyList(req))
	}
	root.set(InferredKeyword, true)
	return encodeTree(root)
}
