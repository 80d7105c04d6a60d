package provider

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testTool is one canonical tool of testdata/tools.json, with instances that
// its canonical schema accepts.
type testTool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	ReadOnly     bool            `json:"readonly"`
	Destructive  bool            `json:"destructive"`
	Idempotent   bool            `json:"idempotent"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema"`
	Infer        *struct {
		Params   []string `json:"params"`
		Required []string `json:"required"`
	} `json:"infer"`
	Valid []json.RawMessage `json:"valid"`
}

func (tt testTool) tool() Tool {
	in := tt.InputSchema
	if tt.Infer != nil {
		in = InferSchema(tt.Infer.Params, tt.Infer.Required)
	}
	return Tool{
		Name: tt.Name, Description: tt.Description,
		InputSchema: in, OutputSchema: tt.OutputSchema,
		ReadOnly: tt.ReadOnly, Destructive: tt.Destructive, Idempotent: tt.Idempotent,
	}
}

func loadTools(t testing.TB) []testTool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "tools.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tools []testTool
	if err := json.Unmarshal(data, &tools); err != nil {
		t.Fatalf("testdata/tools.json: %v", err)
	}
	return tools
}

func canonicalTools(tools []testTool) []Tool {
	out := make([]Tool, len(tools))
	for i, tt := range tools {
		out[i] = tt.tool()
	}
	return out
}

// golden compares got with the file, or rewrites the file when ATP_UPDATE=1.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if os.Getenv("ATP_UPDATE") == "1" {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with ATP_UPDATE=1 to create it)", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("%s differs at line %d (run with ATP_UPDATE=1 to accept):\n got: %s\nwant: %s", path, i+1, g, w)
		}
	}
}

func indent(t *testing.T, raw []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		t.Fatalf("output is not valid JSON: %v\n%s", err, raw)
	}
	b.WriteByte('\n')
	return b.Bytes()
}

// TestGoldenTools pins every provider's tool list for the canonical tools
// of testdata/tools.json, and the changes each conversion reports.
func TestGoldenTools(t *testing.T) {
	tools := loadTools(t)
	for _, p := range Names() {
		t.Run(p, func(t *testing.T) {
			out, err := FormatTools(p, canonicalTools(tools))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", p+".json"), indent(t, out))

			again, err := FormatTools(p, canonicalTools(tools))
			if err != nil || !bytes.Equal(out, again) {
				t.Fatalf("a second FormatTools gave different output (err %v)", err)
			}

			var b strings.Builder
			for _, tt := range tools {
				def, changes, err := FormatTool(p, tt.tool())
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Contains(out, def) {
					t.Errorf("%s: FormatTool's definition is not the one in FormatTools' list", tt.Name)
				}
				fmt.Fprintf(&b, "%s:\n", tt.Name)
				for _, c := range changes {
					fmt.Fprintf(&b, "  %s\n", c)
				}
			}
			golden(t, filepath.Join("testdata", "golden", p+".changes.txt"), []byte(b.String()))
		})
	}
}

func TestMistralAliasGivesMistral(t *testing.T) {
	tools := canonicalTools(loadTools(t))
	a, err := FormatTools("mistral", tools)
	if err != nil {
		t.Fatal(err)
	}
	b, err := FormatTools("mistralai", tools)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("mistralai and mistral differ")
	}
}

// Conversions share nothing: many at once give what one alone gives (run
// with -race).
func TestConcurrentFormatTools(t *testing.T) {
	tools := canonicalTools(loadTools(t))
	want := map[string]string{}
	for _, p := range Names() {
		out, err := FormatTools(p, tools)
		if err != nil {
			t.Fatal(err)
		}
		want[p] = string(out)
	}
	errs := make(chan error, 4*len(want))
	for range 4 {
		for _, p := range Names() {
			go func() {
				out, err := FormatTools(p, tools)
				if err == nil && string(out) != want[p] {
					err = fmt.Errorf("%s: concurrent output differs", p)
				}
				errs <- err
			}()
		}
	}
	for range 4 * len(want) {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
