package provider

import (
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/atpgo/atp/internal/jsontree"
)

// ref handles a non-root object with $ref. handled=false means: keep the
// reference and convert the object's other keywords as usual.
func (c *converter) ref(o *object, ref string) (res any, handled bool, err error) {
	ptr := o.src
	tptr, target, err := c.resolve(ref)
	if err != nil {
		return nil, true, schemaError(ptr, "$ref: %v", err)
	}
	cyclic := c.cyclic[tptr] || c.inlining[tptr] > 0
	canonical := isDefinitionPointer(tptr)

	switch dialectRefs[c.d] {
	case refKeep:
		return nil, false, nil
	case refInlineAll:
		if c.inlining[tptr] >= geminiUnrollDepth {
			return cutMarker, true, nil
		}
		reason := "Gemini parameters take no $ref: the definition is inlined"
		if cyclic {
			reason = fmt.Sprintf("Gemini parameters take no $ref: the recursive definition is inlined up to %d levels deep", geminiUnrollDepth)
		}
		res, err := c.inline(o, tptr, target, reason)
		return res, true, err
	case refInlineAcyclic:
		if cyclic {
			return nil, false, nil
		}
		res, err := c.inline(o, tptr, target, "Mistral does not document $ref: the definition is inlined")
		return res, true, err
	case refInlineSibling:
		if !canonical {
			if cyclic {
				return nil, true, c.downgrade(ptr, "$ref", fmt.Sprintf("OpenAI strict mode cannot inline the recursive reference %q", ref))
			}
			res, err := c.inline(o, tptr, target, "a $ref that does not point into the root $defs is inlined")
			return res, true, err
		}
		if !c.hasSiblings(o, false) {
			return nil, false, nil
		}
		if !cyclic {
			res, err := c.inline(o, tptr, target, "OpenAI strict mode takes no keyword beside $ref: the definition is inlined")
			return res, true, err
		}
		// A recursive definition cannot be inlined; anyOf with one branch
		// carries the sibling keywords instead.
		w := newObject(ptr)
		for _, k := range o.keys {
			if k != "$ref" {
				w.set(k, o.vals[k])
			}
		}
		only := newObject(ptr)
		only.set("$ref", ref)
		w.set("anyOf", []any{only})
		c.change(ptr, "$ref", Rewritten, "OpenAI strict mode takes no keyword beside $ref: the recursive reference is wrapped in a one-branch anyOf")
		res, err := c.object(w, false)
		return res, true, err
	case refGeminiJSON:
		if !c.hasSiblings(o, true) {
			return nil, false, nil
		}
		if !cyclic {
			res, err := c.inline(o, tptr, target, "Gemini allows only description and default beside $ref: the definition is inlined")
			return res, true, err
		}
		for _, k := range append([]string(nil), o.keys...) {
			if k != "$ref" && !geminiRefSibling(k) {
				o.del(k)
				c.change(ptr, k, Dropped, "Gemini allows only description and default beside a $ref, and this recursive one cannot be inlined; enforced locally")
			}
		}
		return nil, false, nil
	}
	return nil, false, nil
}

func geminiRefSibling(k string) bool {
	return k == "description" || k == "default" || strings.HasPrefix(k, "$")
}

// hasSiblings reports whether o has keywords beside $ref that survive the
// dialect (stripped ones do not count). With geminiAllowed, description,
// default and $-keywords are allowed siblings, and so are described ones
// (they become description).
func (c *converter) hasSiblings(o *object, geminiAllowed bool) bool {
	for _, k := range o.keys {
		if k == "$ref" || (geminiAllowed && geminiRefSibling(k)) {
			continue
		}
		switch c.d.action(k) {
		case keep, structural, downgrade:
			return true
		case describe:
			if !geminiAllowed {
				return true
			}
		}
	}
	return false
}

// cloneTarget copies a reference's target for inlining, counting the
// values copied: a schema whose references fan out to a large target (an
// enum of a thousand values used ten thousand times) would otherwise grow
// without bound, in memory and in every tool list sent.
func (c *converter) cloneTarget(t *object, ptr string) (*object, error) {
	c.inlined += countValues(t)
	if c.inlined > maxInlinedValues {
		return nil, schemaError(ptr, "the schema grows past %d values once references are inlined", maxInlinedValues)
	}
	return clone(t).(*object), nil
}

// countValues counts the JSON values in a tree value.
func countValues(v any) int {
	switch t := v.(type) {
	case *object:
		n := 1
		for _, x := range t.vals {
			n += countValues(x)
		}
		return n
	case []any:
		n := 1
		for _, x := range t {
			n += countValues(x)
		}
		return n
	}
	return 1
}

// inline replaces o by a copy of the schema at tptr, with o's other keywords
// laid over it (the referring site's description wins).
func (c *converter) inline(o *object, tptr string, target any, reason string) (any, error) {
	c.change(o.src, "$ref", Rewritten, reason)
	var merged *object
	switch t := target.(type) {
	case *object:
		cp, err := c.cloneTarget(t, o.src)
		if err != nil {
			return nil, err
		}
		merged = cp
	case bool:
		if !t {
			return c.schema(false, o.src)
		}
		merged = newObject(o.src)
	default:
		return nil, schemaError(o.src, "$ref points to a %s, not a schema", kindOf(target))
	}
	for _, k := range o.keys {
		if k != "$ref" {
			merged.set(k, clone(o.vals[k]))
		}
	}
	if c.inlining == nil {
		c.inlining = map[string]int{}
	}
	c.inlining[tptr]++
	res, err := c.schema(merged, merged.src)
	c.inlining[tptr]--
	return res, err
}

// resolve finds a local reference in the canonical schema. It returns the
// target's JSON Pointer, decoded.
func (c *converter) resolve(ref string) (string, any, error) {
	return resolveRef(c.orig, ref)
}

func resolveRef(doc any, ref string) (string, any, error) {
	if !strings.HasPrefix(ref, "#") {
		return "", nil, fmt.Errorf("%q is not a local reference: only references within the schema (#...) are supported", ref)
	}
	frag, err := url.PathUnescape(ref[1:])
	if err != nil {
		return "", nil, fmt.Errorf("%q: %v", ref, err)
	}
	if frag != "" && frag[0] != '/' {
		return "", nil, fmt.Errorf("%q: anchor references are not supported, use a JSON Pointer such as #/$defs/Name", ref)
	}
	v, ok := lookupPointer(doc, frag)
	if !ok {
		return "", nil, fmt.Errorf("%q points to nothing in the schema", ref)
	}
	return frag, v, nil
}

func lookupPointer(doc any, ptr string) (any, bool) {
	if ptr == "" {
		return doc, true
	}
	cur := doc
	for _, tok := range strings.Split(ptr[1:], "/") {
		tok = jsontree.UnescapePointer(tok)
		switch t := cur.(type) {
		case *object:
			v, ok := t.vals[tok]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(t) {
				return nil, false
			}
			cur = t[i]
		default:
			return nil, false
		}
	}
	return cur, true
}

// isDefinitionPointer: the root, or one entry of the root $defs/definitions.
func isDefinitionPointer(ptr string) bool {
	if ptr == "" {
		return true
	}
	for _, p := range []string{"/$defs/", "/definitions/"} {
		if rest, ok := strings.CutPrefix(ptr, p); ok && rest != "" && !strings.Contains(rest, "/") {
			return true
		}
	}
	return false
}

// walkSchemas calls visit for every schema object in v, following only
// keywords that hold schemas (never enum, const, default or examples).
func walkSchemas(v any, visit func(o *object)) {
	o, ok := v.(*object)
	if !ok {
		return
	}
	visit(o)
	for _, k := range o.keys {
		switch schemaKeywordKind(k) {
		case oneSchema:
			walkSchemas(o.vals[k], visit)
		case schemaList:
			if arr, ok := o.vals[k].([]any); ok {
				for _, x := range arr {
					walkSchemas(x, visit)
				}
			}
		case schemaMap:
			if m, ok := o.vals[k].(*object); ok {
				for _, name := range m.keys {
					walkSchemas(m.vals[name], visit)
				}
			}
		}
	}
}

// findCycles returns the reference targets from which a chain of references
// leads back to themselves.
func findCycles(doc any) map[string]bool {
	refsIn := func(v any) []string {
		var out []string
		walkSchemas(v, func(o *object) {
			if r, ok := o.vals["$ref"].(string); ok {
				if p, _, err := resolveRef(doc, r); err == nil {
					out = append(out, p)
				}
			}
		})
		return out
	}
	edges := map[string][]string{}
	var pending []string
	for _, t := range refsIn(doc) {
		if _, seen := edges[t]; !seen {
			edges[t] = nil
			pending = append(pending, t)
		}
	}
	for len(pending) > 0 {
		t := pending[0]
		pending = pending[1:]
		v, _ := lookupPointer(doc, t)
		edges[t] = refsIn(v)
		for _, n := range edges[t] {
			if _, seen := edges[n]; !seen {
				edges[n] = nil
				pending = append(pending, n)
			}
		}
	}
	return cyclicTargets(edges)
}

// cyclicTargets returns the nodes of a graph that lie on a cycle: those in
// a strongly connected component of more than one node, or with an edge to
// themselves. Tarjan's algorithm, iterative, keeps it linear in the graph's
// size (a per-node search would be quadratic on a long chain).
func cyclicTargets(edges map[string][]string) map[string]bool {
	nodes := make([]string, 0, len(edges))
	for t := range edges {
		nodes = append(nodes, t)
	}
	slices.Sort(nodes) // the result does not depend on it; the work order does
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	cyclic := map[string]bool{}
	type frame struct {
		node string
		next int // the next edge to follow
	}
	for _, start := range nodes {
		if _, seen := index[start]; seen {
			continue
		}
		work := []frame{{node: start}}
		index[start], low[start] = len(index), len(index)
		stack = append(stack, start)
		onStack[start] = true
		for len(work) > 0 {
			f := &work[len(work)-1]
			if f.next < len(edges[f.node]) {
				n := edges[f.node][f.next]
				f.next++
				if n == f.node {
					cyclic[n] = true
				}
				if _, seen := index[n]; !seen {
					index[n], low[n] = len(index), len(index)
					stack = append(stack, n)
					onStack[n] = true
					work = append(work, frame{node: n})
				} else if onStack[n] {
					low[f.node] = min(low[f.node], index[n])
				}
				continue
			}
			v := f.node
			work = work[:len(work)-1]
			if len(work) > 0 {
				parent := work[len(work)-1].node
				low[parent] = min(low[parent], low[v])
			}
			if low[v] == index[v] {
				i := len(stack) - 1
				for stack[i] != v {
					i--
				}
				if len(stack)-i > 1 {
					for _, m := range stack[i:] {
						cyclic[m] = true
					}
				}
				for _, m := range stack[i:] {
					onStack[m] = false
				}
				stack = stack[:i]
			}
		}
	}
	return cyclic
}

// definitions converts the root $defs/definitions entries that the converted
// schema still refers to, and removes the others (their uses were inlined).
func (c *converter) definitions(root *object) error {
	for _, key := range []string{"$defs", "definitions"} {
		v, ok := root.get(key)
		if !ok {
			continue
		}
		if _, ok := v.(*object); !ok {
			return schemaError("", "%s: expected an object of schemas, got %s", key, kindOf(v))
		}
	}
	done := map[string]any{} // "/$defs/Name" -> converted schema
	var queue []string
	enqueue := func(v any) {
		walkSchemas(v, func(o *object) {
			r, ok := o.vals["$ref"].(string)
			if !ok {
				return
			}
			p, _, err := resolveRef(c.orig, r)
			if err != nil {
				return
			}
			for _, key := range []string{"/$defs/", "/definitions/"} {
				if rest, ok := strings.CutPrefix(p, key); ok {
					name, _, _ := strings.Cut(rest, "/")
					entry := key + name
					if _, seen := done[entry]; !seen {
						done[entry] = nil
						queue = append(queue, entry)
					}
				}
			}
		})
	}
	body := newObject("")
	for _, k := range root.keys {
		if k != "$defs" && k != "definitions" {
			body.set(k, root.vals[k])
		}
	}
	enqueue(body)
	if c.d == dMCP {
		// MCP keeps the schema as written, unused definitions included.
		for _, key := range []string{"$defs", "definitions"} {
			if m, ok := root.vals[key].(*object); ok {
				for _, name := range m.keys {
					entry := "/" + key + "/" + jsontree.EscapePointer(name)
					if _, seen := done[entry]; !seen {
						done[entry] = nil
						queue = append(queue, entry)
					}
				}
			}
		}
	}
	for len(queue) > 0 {
		entry := queue[0]
		queue = queue[1:]
		orig, ok := lookupPointer(c.orig, entry)
		if !ok {
			return schemaError("", "%s points to nothing in the schema", entry)
		}
		conv, err := c.schema(clone(orig), entry)
		if err != nil {
			return err
		}
		if conv == cutMarker {
			return schemaError(entry, "internal error: a definition was cut")
		}
		done[entry] = conv
		enqueue(conv)
	}
	for _, key := range []string{"$defs", "definitions"} {
		m, ok := root.vals[key].(*object)
		if !ok {
			continue
		}
		out := newObject("/" + key)
		for _, name := range m.keys {
			entry := "/" + key + "/" + jsontree.EscapePointer(name)
			if conv, ok := done[entry]; ok {
				out.set(name, conv)
			} else {
				c.change("", key, Stripped, fmt.Sprintf("entry %q is no longer referenced once references are inlined", name))
			}
		}
		if out.len() == 0 {
			root.del(key)
		} else {
			root.vals[key] = out
		}
	}
	return nil
}
