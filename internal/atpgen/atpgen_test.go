package atpgen

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/internal/harness/harnesstest"
)

// newModule writes a module requiring this checkout of github.com/atpgo/atp
// and returns its directory.
func newModule(t *testing.T, files map[string]string) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOWORK", "off")
	dir := t.TempDir()
	files["go.mod"] = "module example.com/m\n\ngo 1.26\n\nrequire github.com/atpgo/atp v0.0.0\n\nreplace github.com/atpgo/atp => " + root + "\n"
	for name, content := range files {
		writeFile(t, filepath.Join(dir, name), content)
	}
	return dir
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, dir string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = Main(args, dir, &out, &errOut)
	return code, out.String(), errOut.String()
}

const greetSrc = `package m

// Greet greets.
//
//atp:tool
func Greet(name string) string { return "hi " + name }
`

func TestCheckWritesNothingAndNamesStaleFiles(t *testing.T) {
	dir := newModule(t, map[string]string{"m.go": greetSrc})
	gen := filepath.Join(dir, "atp_gen.go")

	code, _, stderr := run(t, dir, "-check", ".")
	if code != ExitProblem || stderr != "atp_gen.go: stale: run go generate\n" {
		t.Fatalf("-check on a missing file: exit %d, stderr %q", code, stderr)
	}
	if _, err := os.Stat(gen); !os.IsNotExist(err) {
		t.Fatalf("-check wrote %s", gen)
	}

	if code, _, stderr := run(t, dir, "."); code != ExitOK || stderr != "" {
		t.Fatalf("generate: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := run(t, dir, "-check"); code != ExitOK || stderr != "" {
		t.Fatalf("-check on a fresh file: exit %d, stderr %q", code, stderr)
	}

	writeFile(t, filepath.Join(dir, "m.go"), strings.Replace(greetSrc, "Greet greets.", "Greet says hello.", 1))
	before, _ := os.ReadFile(gen)
	code, _, stderr = run(t, dir, "-check")
	if code != ExitProblem || !strings.Contains(stderr, "atp_gen.go: stale") {
		t.Fatalf("-check after an edit: exit %d, stderr %q", code, stderr)
	}
	if after, _ := os.ReadFile(gen); !bytes.Equal(before, after) {
		t.Fatal("-check rewrote the stale file")
	}

	// The package loses its tools: the file is stale, then removed.
	writeFile(t, filepath.Join(dir, "m.go"), "package m\n\nfunc Greet() {}\n")
	code, _, stderr = run(t, dir, "-check")
	if code != ExitProblem || !strings.Contains(stderr, "no tools any more") {
		t.Fatalf("-check with no tools left: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := run(t, dir); code != ExitOK {
		t.Fatalf("generate with no tools left: exit %d", code)
	}
	if _, err := os.Stat(gen); !os.IsNotExist(err) {
		t.Fatal("atp_gen.go survived its package's last tool")
	}
}

func TestUnchangedFileIsNotRewritten(t *testing.T) {
	dir := newModule(t, map[string]string{"m.go": greetSrc})
	gen := filepath.Join(dir, "atp_gen.go")
	if code, _, stderr := run(t, dir); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := os.Chtimes(gen, old, old); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := run(t, dir); code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	fi, err := os.Stat(gen)
	if err != nil {
		t.Fatal(err)
	}
	if !fi.ModTime().Equal(old) {
		t.Errorf("atp_gen.go was rewritten with the same bytes (mtime %v): the build cache and editors see a change", fi.ModTime())
	}
}

// The same declarations spread over files in any order generate the same
// bytes: output order depends on names, never on file order.
func TestDeterministicWhateverTheFileOrder(t *testing.T) {
	parts := []string{
		"package m\n\n// Zeta is last by name.\n//\n//atp:tool\nfunc Zeta(in Shared) string { return in.A }\n",
		"package m\n\n// Alpha is first by name.\n//\n//atp:tool\nfunc Alpha(in Shared, n int) int { return n }\n",
		"package m\n\n// Shared is used by both.\ntype Shared struct {\n\t// A thing.\n\tA string `json:\"a\"`\n}\n\n// Mid is a method tool.\n//\n//atp:tool\nfunc (s *Shared) Mid() string { return s.A }\n",
	}
	orders := [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}}
	var first []byte
	for _, order := range orders {
		files := map[string]string{}
		for i, p := range order {
			files[string(rune('a'+i))+".go"] = parts[p]
		}
		dir := newModule(t, files)
		if code, _, stderr := run(t, dir); code != ExitOK {
			t.Fatalf("order %v: exit %d: %s", order, code, stderr)
		}
		got, err := os.ReadFile(filepath.Join(dir, "atp_gen.go"))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = got
		} else if !bytes.Equal(first, got) {
			t.Fatalf("file order %v changed the output:\n%s\n---\n%s", order, got, first)
		}
	}
}

func TestUsageAndModelDump(t *testing.T) {
	if code, _, stderr := run(t, "", "-nope"); code != ExitUsage || !strings.Contains(stderr, "usage: atpgen") {
		t.Errorf("bad flag: exit %d, stderr %q", code, stderr)
	}
	dir := newModule(t, map[string]string{"m.go": greetSrc})
	code, stdout, stderr := run(t, dir, "-json")
	if code != ExitOK {
		t.Fatalf("-json: exit %d: %s", code, stderr)
	}
	var pkgs []struct {
		Tools []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(stdout), &pkgs); err != nil || len(pkgs) != 1 || len(pkgs[0].Tools) != 1 || pkgs[0].Tools[0].Name != "greet" {
		t.Fatalf("-json printed %s (err %v)", stdout, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "atp_gen.go")); !os.IsNotExist(err) {
		t.Error("-json wrote atp_gen.go")
	}
}

func TestSourceProblemsExitOne(t *testing.T) {
	dir := newModule(t, map[string]string{"m.go": "package m\n\n// atp:tool\nfunc A() {}\n\n//atp:tool bogus\nfunc B() {}\n"})
	code, _, stderr := run(t, dir)
	want := "m.go:3:1: \"// atp:tool\" is not a directive: write //atp:tool with no space after //\n" +
		"m.go:6:12: unknown //atp:tool option \"bogus\" (options: name, auth, auth_type, auth_with, readonly, destructive, idempotent, timeout)\n"
	if code != ExitProblem || stderr != want {
		t.Fatalf("exit %d, stderr:\n%s\nwant:\n%s", code, stderr, want)
	}
	if _, err := os.Stat(filepath.Join(dir, "atp_gen.go")); !os.IsNotExist(err) {
		t.Error("a run with problems wrote atp_gen.go")
	}
}

// In a new module whose go.sum does not cover the runtime's dependencies
// yet, go vet would fail on the fresh atp_gen.go: atpgen says so, with the
// one command to run, and still succeeds. Once go.sum is complete, it says
// nothing.
func TestMissingGoSumEntries(t *testing.T) {
	newModule(t, map[string]string{})    // the hermetic environment
	t.Setenv("GOFLAGS", "-mod=readonly") // as a user's build runs
	root, err := harnesstest.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	writeFile(t, filepath.Join(src, "m.go"), greetSrc)
	// A module listing every requirement, with its go.sum: tidy.
	dir, err := harnesstest.Module(t.TempDir(), root, "example.com/m", src)
	if err != nil {
		t.Fatal(err)
	}
	goMod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	goSum, _ := os.ReadFile(filepath.Join(dir, "go.sum"))
	gen := filepath.Join(dir, "atp_gen.go")

	for _, c := range []struct {
		name, goMod, goSum, why string
	}{
		{"no go.sum", string(goMod), "", "missing go.sum entry for module providing package"},
		{"no requirement", "module example.com/m\n\ngo 1.26\n", "", "module providing package github.com/atpgo/atp/runtime"},
		{"tidy", string(goMod), string(goSum), ""},
	} {
		writeFile(t, filepath.Join(dir, "go.mod"), c.goMod)
		writeFile(t, filepath.Join(dir, "go.sum"), c.goSum)
		os.Remove(gen)
		code, _, stderr := run(t, dir)
		if _, err := os.Stat(gen); code != ExitOK || err != nil {
			t.Fatalf("%s: exit %d, %v: %s", c.name, code, err, stderr)
		}
		if c.why == "" {
			if stderr != "" {
				t.Errorf("%s: stderr %q", c.name, stderr)
			}
			continue
		}
		if !strings.HasPrefix(stderr, "atpgen: wrote atp_gen.go, but this module cannot build it yet:\n\t") || !strings.Contains(stderr, c.why) ||
			!strings.HasSuffix(stderr, "\nRun this once:\n\n\tgo mod tidy\n\n") || strings.Count(stderr, "go mod tidy") != 1 {
			t.Errorf("%s: stderr:\n%s", c.name, stderr)
		}
	}
}
