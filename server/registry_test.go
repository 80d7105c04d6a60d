package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/atpgo/atp/internal/schemavalidate"
	"github.com/atpgo/atp/provider"
	"github.com/atpgo/atp/server/store"
)

func registryTool(name string) *toolEntry {
	return &toolEntry{Tool: store.Tool{Name: name, Description: "d " + name,
		InputSchema: json.RawMessage(`{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}`)}}
}

// A registration adds to the toolkit in place: the kit published before it
// and the one after share the tools, the header (hash, language) is the
// new one's, and what is derived from the tools (names, tool lists per
// provider) follows every change.
func TestRegistryPutKeepsDerivedState(t *testing.T) {
	r := newRegistry()
	ref := toolkitRef{"o", "crm"}
	r.put(ref, "h1", "Python", registryTool("b"))
	first := r.get(ref)
	before, err := first.format(provider.OpenAI)
	if err != nil {
		t.Fatal(err)
	}
	r.put(ref, "h2", "Go", registryTool("a"))
	k := r.get(ref)
	if k.hash != "h2" || k.language != "Go" || first.hash != "h1" || first.language != "Python" {
		t.Fatalf("headers: new %q %q, old %q %q; want each as published", k.hash, k.language, first.hash, first.language)
	}
	if k.size() != 2 || k.tool("a") == nil || k.tool("b") == nil || k.tool("c") != nil {
		t.Fatalf("tools after two registrations: %v", k.toolNames())
	}
	if got := k.toolList(); got != "a, b" {
		t.Fatalf("toolList = %q, want a, b", got)
	}
	after, err := k.format(provider.OpenAI)
	if err != nil {
		t.Fatal(err)
	}
	want, err := formatTools(provider.OpenAI, []*toolEntry{k.tool("a"), k.tool("b")})
	if err != nil {
		t.Fatal(err)
	}
	if string(after) != string(want) || string(before) == string(after) {
		t.Fatalf("format after a registration = %s\nwant %s (before: %s)", after, want, before)
	}
	// Replacing a tool changes the list too, and keeps the names.
	changed := registryTool("a")
	changed.Description = "changed"
	r.put(ref, "h3", "Go", changed)
	if b, _ := r.get(ref).format(provider.OpenAI); !strings.Contains(string(b), `"changed"`) {
		t.Fatalf("format after a replacement = %s, want the new description", b)
	}
	if got := r.get(ref).toolNames(); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("names after a replacement = %v", got)
	}
	if r.get(toolkitRef{"other", "crm"}) != nil {
		t.Fatal("another owner's toolkit of the same name exists")
	}
}

// Registrations, lookups, tool lists and provider formats of one toolkit
// at once: -race finds any access of the tools outside their lock, and
// every format is a list of tools the toolkit had.
func TestRegistryConcurrentPutAndRead(t *testing.T) {
	r := newRegistry()
	ref := toolkitRef{"o", "crm"}
	r.put(ref, "h", "Go", registryTool("t000"))
	const n = 200
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 1; i < n; i++ {
			r.put(ref, "h", "Go", registryTool(fmt.Sprintf("t%03d", i)))
		}
	})
	for range 3 {
		wg.Go(func() {
			for i := range n {
				k := r.get(ref)
				if k.tool("t000") == nil {
					t.Error("the first tool went missing")
					return
				}
				k.toolList()
				b, err := k.format(provider.Anthropic)
				if err != nil {
					t.Error(err)
					return
				}
				var list []map[string]any
				if err := json.Unmarshal(b, &list); err != nil || len(list) == 0 || len(list) > n {
					t.Errorf("format %d: %d tools, %v", i, len(list), err)
					return
				}
			}
		})
	}
	wg.Wait()
	k := r.get(ref)
	b, err := k.format(provider.Anthropic)
	if err != nil {
		t.Fatal(err)
	}
	var list []map[string]any
	if err := json.Unmarshal(b, &list); err != nil || len(list) != n || k.size() != n {
		t.Fatalf("after every registration: format has %d tools, the kit %d; want %d", len(list), k.size(), n)
	}
}

// A stored schema is compiled once, at its tool's first call, whatever
// the number of calls racing for it, and checks params as a schema
// compiled at registration does.
func TestStoredSchemaCompiledOnceOnFirstCall(t *testing.T) {
	lim := schemavalidate.Limits{}
	tool := registryTool("t").Tool
	e := storedToolEntry(tool, discardLogger(), toolkitRef{"o", "crm"}, lim)
	compiled, err := schemavalidate.CompileLimited(tool.InputSchema, lim)
	if err != nil {
		t.Fatal(err)
	}
	if e.validator.v != nil {
		t.Fatal("the stored schema was compiled before any call")
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			params := []byte(`{"x":"a"}`)
			if i%2 == 1 {
				params = []byte(`{"x":1}`)
			}
			got, want := e.validator.Validate(params), compiled.Validate(params)
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("Validate(%s) = %v, want %v", params, got, want)
			}
		})
	}
	wg.Wait()
	v := e.validator.v
	e.validator.Validate([]byte(`{"x":"b"}`))
	if v == nil || e.validator.v != v {
		t.Fatal("the schema was compiled again")
	}
}
