// Package hashes records the registration hashes the Go runtime sends for a
// set of tools (testdata/hashes.json; ATP_UPDATE=1 rewrites it, otherwise
// this test checks it), so that the Node tests can require the TypeScript
// toolkit to send the same code_hash and toolkit_hash for the same
// contracts: a server then sees an unchanged tool as unchanged whichever
// language serves it.
package hashes

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// Fixture is one tool as the Node test builds it, and its hash.
type Fixture struct {
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	InputSchema    string          `json:"input_schema,omitempty"`
	OutputSchema   string          `json:"output_schema,omitempty"`
	AuthProvider   string          `json:"auth_provider,omitempty"`
	NeedsAuthToken bool            `json:"needs_auth_token,omitempty"`
	Hints          runtime.Hints   `json:"hints"`
	TimeoutMs      int64           `json:"timeout_ms,omitempty"`
	CodeHash       string          `json:"code_hash"`
	Params         []string        `json:"params"`
	RequiredParams []string        `json:"required_params"`
	Metadata       json.RawMessage `json:"-"`
}

type File struct {
	Toolkit     string    `json:"toolkit"`
	ToolkitHash string    `json:"toolkit_hash"`
	Tools       []Fixture `json:"tools"`
}

var fixtures = []Fixture{
	{Name: "forecast", Description: "Weather for the next days.",
		InputSchema:    `{"type":"object","properties":{"city":{"type":"string","description":"City <name> & \"alias\""},"days":{"type":"integer","minimum":1,"maximum":14}},"required":["city"],"additionalProperties":false}`,
		OutputSchema:   `{"type":"object","properties":{"summary":{"type":"string"}}}`,
		Params:         []string{"city", "days"},
		RequiredParams: []string{"city"},
		Hints:          runtime.Hints{ReadOnly: true, Idempotent: true}, TimeoutMs: 30000},
	{Name: "whoami", Description: "The user's CRM identity — ünïcode\u2028line.",
		AuthProvider: "hubspot", NeedsAuthToken: true, Params: []string{}, RequiredParams: []string{}},
	{Name: "delete_note", Description: "",
		InputSchema:    `{"properties":{"id":{"type":"string","format":"uuid"},"zeta":{"type":"number","multipleOf":0.01},"alpha":{"enum":["a","b"]}},"type":"object","required":["id"]}`,
		Params:         []string{"id", "zeta", "alpha"},
		RequiredParams: []string{"id"},
		Hints:          runtime.Hints{Destructive: true}},
	{Name: "token_only", NeedsAuthToken: true, Params: []string{}, RequiredParams: []string{}},
}

func TestHashesFile(t *testing.T) {
	var mu sync.Mutex
	hashes := map[string]string{}
	kitHash := ""
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(body, &m)
		mu.Lock()
		defer mu.Unlock()
		switch r.URL.Path {
		case "/api/v1/register_tool":
			hashes[m["function_id"].(string)] = m["code_hash"].(string)
			kitHash = m["toolkit_hash"].(string)
			w.Write([]byte(`{"exchange_token":"x"}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()

	tk := runtime.NewToolkit("hashkit", runtime.WithLogger(slog.New(slog.DiscardHandler)))
	for _, f := range fixtures {
		tool := &runtime.Tool{
			Name: f.Name, Description: f.Description, Params: f.Params, RequiredParams: f.RequiredParams,
			AuthProvider: f.AuthProvider, NeedsAuthToken: f.NeedsAuthToken, Hints: f.Hints,
			Timeout: time.Duration(f.TimeoutMs) * time.Millisecond,
			Run:     func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return nil, nil },
		}
		if f.AuthProvider != "" {
			tool.AuthType, tool.AuthWith = "OAuth2", "access_token"
		}
		if f.InputSchema != "" {
			tool.InputSchema = json.RawMessage(f.InputSchema)
		}
		if f.OutputSchema != "" {
			tool.OutputSchema = json.RawMessage(f.OutputSchema)
		}
		if err := tk.Add(tool); err != nil {
			t.Fatal(err)
		}
	}
	// One attempt: registration runs, the WebSocket dial fails, Serve gives up.
	tk.Serve(context.Background(), runtime.ServeConfig{URL: srv.URL, APIKey: "k", MaxAttempts: 1})

	out := File{Toolkit: "hashkit", ToolkitHash: kitHash}
	for _, f := range fixtures {
		f.CodeHash = hashes[f.Name]
		if f.CodeHash == "" {
			t.Fatalf("%s was not registered", f.Name)
		}
		out.Tools = append(out.Tools, f)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "hashes.json")
	if os.Getenv("ATP_UPDATE") != "" {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	have, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with ATP_UPDATE=1 to write it)", err)
	}
	if !bytes.Equal(have, buf.Bytes()) {
		t.Errorf("%s is stale: the Go runtime's hashes changed; run ATP_UPDATE=1 go test ./clients/typescript/test/go/hashes", path)
	}
}
