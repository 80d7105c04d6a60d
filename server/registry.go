package server

import (
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/atpgo/atp/internal/schemavalidate"
	"github.com/atpgo/atp/server/store"
)

// registry is the in-memory copy of the stored toolkits that calls are
// checked against, with each tool's schema compiled once. The store is the
// source of truth: the registry is loaded from it at start and updated after
// each committed registration.
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
	// validator is nil when the stored schema cannot be compiled (a schema
	// from before a stricter compiler): calls then go unchecked to the
	// toolkit, which checks its own params.
	validator *schemavalidate.Validator
}

func newRegistry() *registry { return &registry{kits: map[toolkitRef]*kit{}} }

func newToolEntry(t store.Tool, log *slog.Logger, ref toolkitRef) *toolEntry {
	e := &toolEntry{Tool: t}
	v, err := schemavalidate.Compile(t.InputSchema)
	if err != nil {
		log.Warn("stored input schema does not compile; calls to the tool are not checked", "toolkit", ref.Name, "owner", ref.Owner, "tool", t.Name, "err", err)
		return e
	}
	e.validator = v
	return e
}

// load replaces the registry's content with the stored toolkits.
func (r *registry) load(kits []store.Toolkit, log *slog.Logger) {
	m := make(map[toolkitRef]*kit, len(kits))
	for _, tk := range kits {
		ref := toolkitRef{tk.Owner, tk.Name}
		k := &kit{ref: ref, hash: tk.Hash, language: tk.Language, tools: map[string]*toolEntry{}}
		for _, t := range tk.Tools {
			k.tools[t.Name] = newToolEntry(t, log, ref)
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
