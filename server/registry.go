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

// kit is one toolkit. It is never changed once published: an update
// publishes a new kit, so readers need no lock once they hold one.
type kit struct {
	ref      toolkitRef
	hash     string
	language string
	tools    map[string]*toolEntry
	names    []string // sorted

	// formatted caches the tool list per provider: building it is pure.
	fmtMu     sync.Mutex
	formatted map[string]json.RawMessage
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
		ref := toolkitRef{tk.Owner, tk.Name}
		k := &kit{ref: ref, hash: tk.Hash, language: tk.Language, tools: map[string]*toolEntry{}}
		for _, t := range tk.Tools {
			k.tools[t.Name] = storedToolEntry(t, log, ref, lim)
			k.names = append(k.names, t.Name)
		}
		slices.Sort(k.names)
		m[ref] = k
	}
	r.mu.Lock()
	r.kits = m
	r.mu.Unlock()
}

func (r *registry) get(ref toolkitRef) *kit {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.kits[ref]
}

// put publishes a toolkit with one tool added or replaced.
func (r *registry) put(ref toolkitRef, hash, language string, tool *toolEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.kits[ref]
	k := &kit{ref: ref, hash: hash, language: language, tools: map[string]*toolEntry{}}
	if old != nil {
		for name, t := range old.tools {
			k.tools[name] = t
		}
	}
	k.tools[tool.Name] = tool
	k.names = make([]string, 0, len(k.tools))
	for name := range k.tools {
		k.names = append(k.names, name)
	}
	slices.Sort(k.names)
	r.kits[ref] = k
}

// toolList names a kit's tools for an error message.
func (k *kit) toolList() string {
	if len(k.names) == 0 {
		return "none"
	}
	return strings.Join(k.names, ", ")
}
