package server

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/atpgo/atp/internal/schemavalidate"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/server/store"
)

// registry is the in-memory copy of the stored toolkits that calls are
// checked against. The store is the source of truth: the registry is loaded
// from it at start and updated after each committed registration.
type registry struct {
	mu   sync.RWMutex
	kits map[toolkitRef]*kit
}

// kit is one toolkit. Its header (ref, hash, language) is never changed
// once published: a registration that changes it publishes a new kit. Its
// tools are shared with the kits that replace it for a registration of one
// tool, and changed in place (toolSet), so that a registration costs the
// same whatever the toolkit already has.
type kit struct {
	ref      toolkitRef
	hash     string
	language string
	set      *toolSet
}

// toolSet is the tools of a toolkit, with what is derived from them (the
// sorted names, the tool list per provider) built when first asked for
// after a change rather than at each registration.
type toolSet struct {
	mu    sync.RWMutex
	tools map[string]*toolEntry
	names []string // sorted; nil while a tool added since is missing
	gen   uint64   // counts changes, so a format built meanwhile is not kept

	// formatted caches the tool list per provider: building it is pure.
	// fmtMu keeps two requests of a toolkit's context from building it
	// twice; lookups (mu) are not held up meanwhile.
	fmtMu     sync.Mutex
	formatted map[string]json.RawMessage
}

func newToolSet(tools []*toolEntry) *toolSet {
	ts := &toolSet{tools: make(map[string]*toolEntry, len(tools))}
	for _, t := range tools {
		ts.tools[t.Name] = t
	}
	return ts
}

// tool returns the named tool, nil when the kit has none.
func (k *kit) tool(name string) *toolEntry {
	k.set.mu.RLock()
	defer k.set.mu.RUnlock()
	return k.set.tools[name]
}

// size is the number of the kit's tools.
func (k *kit) size() int {
	k.set.mu.RLock()
	defer k.set.mu.RUnlock()
	return len(k.set.tools)
}

// add adds or replaces one tool.
func (ts *toolSet) add(t *toolEntry) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if _, ok := ts.tools[t.Name]; !ok {
		ts.names = nil
	}
	ts.tools[t.Name] = t
	ts.gen++
	ts.formatted = nil
}

// sortedLocked returns the tools in name order. ts.mu is held for writing.
func (ts *toolSet) sortedLocked() []*toolEntry {
	if ts.names == nil {
		ts.names = make([]string, 0, len(ts.tools))
		for name := range ts.tools {
			ts.names = append(ts.names, name)
		}
		slices.Sort(ts.names)
	}
	tools := make([]*toolEntry, len(ts.names))
	for i, n := range ts.names {
		tools[i] = ts.tools[n]
	}
	return tools
}

type toolEntry struct {
	store.Tool
	// validator checks a call's params against the tool's input schema.
	validator *validator
}

// validator checks calls against one tool's input schema. A registration
// compiles the schema at once (register_tool refuses what does not
// compile); a stored schema is compiled at its tool's first call instead,
// so that start-up takes no longer with thousands of tools, and a schema
// stored before a limit was lowered, or before a stricter compiler, does
// not stop the server: it is logged, and its calls are only checked to be a
// JSON object of UTF-8 text (the toolkit checks its own params).
type validator struct {
	once    sync.Once
	v       *schemavalidate.Validator
	compile func() *schemavalidate.Validator // for a stored schema; nil once compiled
}

// objectOnly is the check of a tool whose schema is not used: params must
// be a JSON object of UTF-8 text, whatever its members.
var objectOnly = func() *schemavalidate.Validator {
	v, err := schemavalidate.Compile(json.RawMessage(`{"type":"object"}`))
	if err != nil {
		panic(err)
	}
	return v
}()

func compiledValidator(v *schemavalidate.Validator) *validator { return &validator{v: v} }

// Validate returns the problems with params, nil when they are valid.
func (va *validator) Validate(params []byte) []runtime.Problem {
	if va.compile != nil {
		va.once.Do(func() { va.v = va.compile() })
	}
	return va.v.Validate(params)
}

func newRegistry() *registry { return &registry{kits: map[toolkitRef]*kit{}} }

// storedToolEntry is a tool loaded from the store, its schema to be
// compiled at its first call.
func storedToolEntry(t store.Tool, log *slog.Logger, ref toolkitRef, lim schemavalidate.Limits) *toolEntry {
	e := &toolEntry{Tool: t}
	e.validator = &validator{compile: func() *schemavalidate.Validator {
		v, err := schemavalidate.CompileLimited(t.InputSchema, lim)
		if err != nil {
			log.Warn("stored input schema refused; calls to the tool are only checked to be a JSON object",
				"toolkit", ref.Name, "owner", ref.Owner, "tool", t.Name, "err", truncateErr(err))
			return objectOnly
		}
		return v
	}}
	return e
}

// truncateErr keeps a log line short whatever an error quotes from a
// schema.
func truncateErr(err error) string {
	const max = 512
	s := err.Error()
	if len(s) <= max {
		return s
	}
	return strings.ToValidUTF8(s[:max], "") + "…"
}

// load replaces the registry's content with the stored toolkits. It does not
// compile their schemas (see validator).
func (r *registry) load(kits []store.Toolkit, log *slog.Logger, lim schemavalidate.Limits) {
	m := make(map[toolkitRef]*kit, len(kits))
	for _, tk := range kits {
		k := storedKit(tk, log, lim)
		m[k.ref] = k
	}
	r.mu.Lock()
	r.kits = m
	r.mu.Unlock()
}

// storedKit is a toolkit loaded from the store. Its schemas are compiled
// at their tools' first calls (see validator).
func storedKit(tk store.Toolkit, log *slog.Logger, lim schemavalidate.Limits) *kit {
	ref := toolkitRef{tk.Owner, tk.Name}
	entries := make([]*toolEntry, len(tk.Tools))
	for i, t := range tk.Tools {
		entries[i] = storedToolEntry(t, log, ref, lim)
	}
	return &kit{ref: ref, hash: tk.Hash, language: tk.Language, set: newToolSet(entries)}
}

// loadOne replaces one toolkit with its stored version.
func (r *registry) loadOne(tk store.Toolkit, log *slog.Logger, lim schemavalidate.Limits) {
	k := storedKit(tk, log, lim)
	r.mu.Lock()
	r.kits[k.ref] = k
	r.mu.Unlock()
}

// replace publishes a toolkit with exactly tools.
func (r *registry) replace(ref toolkitRef, hash, language string, tools []*toolEntry) {
	k := &kit{ref: ref, hash: hash, language: language, set: newToolSet(tools)}
	r.mu.Lock()
	r.kits[ref] = k
	r.mu.Unlock()
}

func (r *registry) get(ref toolkitRef) *kit {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.kits[ref]
}

// put publishes a toolkit with one tool added or replaced. The tools of
// the kit it replaces are kept, not copied: the cost does not grow with
// the toolkit.
func (r *registry) put(ref toolkitRef, hash, language string, tool *toolEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := &kit{ref: ref, hash: hash, language: language}
	if old := r.kits[ref]; old != nil {
		k.set = old.set
	} else {
		k.set = newToolSet(nil)
	}
	k.set.add(tool)
	r.kits[ref] = k
}

// toolList names a kit's tools for an error message.
func (k *kit) toolList() string {
	k.set.mu.Lock()
	defer k.set.mu.Unlock()
	if len(k.set.tools) == 0 {
		return "none"
	}
	k.set.sortedLocked()
	return strings.Join(k.set.names, ", ")
}

// toolNames returns the names of the kit's tools, sorted.
func (k *kit) toolNames() []string {
	k.set.mu.Lock()
	defer k.set.mu.Unlock()
	k.set.sortedLocked()
	return slices.Clone(k.set.names)
}

// format returns the kit's tools in the provider's format, built once
// after each change of the tools.
func (k *kit) format(provider string) (json.RawMessage, error) {
	ts := k.set
	ts.fmtMu.Lock()
	defer ts.fmtMu.Unlock()
	ts.mu.Lock()
	if b, ok := ts.formatted[provider]; ok {
		ts.mu.Unlock()
		return b, nil
	}
	gen, tools := ts.gen, ts.sortedLocked()
	ts.mu.Unlock()
	b, err := formatTools(provider, tools)
	if err != nil {
		return nil, err
	}
	ts.mu.Lock()
	if ts.gen == gen {
		if ts.formatted == nil {
			ts.formatted = map[string]json.RawMessage{}
		}
		ts.formatted[provider] = b
	}
	ts.mu.Unlock()
	return b, nil
}
