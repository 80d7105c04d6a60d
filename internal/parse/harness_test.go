package parse

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/atpgo/atp/internal/model"
)

// The tests build Go modules from testdata/*.txtar. Each archive holds the
// files of one or more packages (paths relative to the module root, under a
// directory named after the archive) and, in a file named "want", the
// problems expected under that directory, one "file:line:col: message" a
// line. ATP_UPDATE=1 rewrites the want files and the JSON goldens from what
// the loader reports; review the diff before committing it.

var update = os.Getenv("ATP_UPDATE") != ""

// testModulePath is the module path of the generated test modules.
const testModulePath = "example.com/m"

// fixture is one module holding every archive, loaded once with ./... so
// that the go command runs once for most tests.
var fixture struct {
	once     sync.Once
	dir      string
	pkgs     map[string]*model.Package
	problems []model.Problem
	err      error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if fixture.dir != "" {
		os.RemoveAll(fixture.dir)
	}
	os.Exit(code)
}

// loadFixture loads the shared module.
func loadFixture(t *testing.T) (dir string, pkgs map[string]*model.Package, problems []model.Problem) {
	t.Helper()
	fixture.once.Do(func() {
		dir, err := os.MkdirTemp("", "atp-parse-")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.dir = dir
		if fixture.err = writeModule(dir); fixture.err != nil {
			return
		}
		archives, _ := filepath.Glob(filepath.Join("testdata", "*.txtar"))
		for _, a := range archives {
			ar, err := txtar.ParseFile(a)
			if err != nil {
				fixture.err = err
				return
			}
			if fixture.err = extract(ar, dir); fixture.err != nil {
				return
			}
		}
		list, problems, err := Load(Config{Dir: dir, Env: testEnv()}, "./...")
		if err != nil {
			fixture.err = err
			return
		}
		fixture.pkgs = make(map[string]*model.Package)
		for _, p := range list {
			fixture.pkgs[p.Path] = p
		}
		fixture.problems = problems
	})
	if fixture.err != nil {
		t.Fatalf("loading the test module: %v", fixture.err)
	}
	return fixture.dir, fixture.pkgs, fixture.problems
}

// testEnv makes the go command work offline on the test modules: the atp
// module is replaced by this checkout, and -mod=mod lets go.mod and go.sum be
// completed from the module cache.
func testEnv() []string {
	return append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
}

// repoRoot is the root of this checkout (the atp module).
func repoRoot() (string, error) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(gomod, []byte("module github.com/atpgo/atp\n")) {
		return "", fmt.Errorf("%s is not the atp module's root (go.mod: %v)", root, err)
	}
	return root, nil
}

// writeModule writes a go.mod that requires the atp module from this
// checkout, and the checkout's go.sum for the modules it needs.
func writeModule(dir string) error {
	root, err := repoRoot()
	if err != nil {
		return err
	}
	gomod := fmt.Sprintf("module %s\n\ngo 1.26\n\nrequire github.com/atpgo/atp v0.0.0\n\nreplace github.com/atpgo/atp => %s\n", testModulePath, root)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
}

// extract writes the archive's files (not "want") under dir.
func extract(ar *txtar.Archive, dir string) error {
	for _, f := range ar.Files {
		if f.Name == "want" {
			continue
		}
		name := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(name, f.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// problemLines formats the problems under a directory of the module.
func problemLines(problems []model.Problem, under string) []string {
	var out []string
	for _, p := range problems {
		if strings.HasPrefix(p.Pos.File, under+string(filepath.Separator)) {
			out = append(out, p.String())
		}
	}
	return out
}

// checkWant compares the problems under the archive's directory with its
// want file.
func checkWant(t *testing.T, archive string, problems []model.Problem) {
	t.Helper()
	file := filepath.Join("testdata", archive+".txtar")
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	got := problemLines(problems, archive)
	i := slices.IndexFunc(ar.Files, func(f txtar.File) bool { return f.Name == "want" })
	var want []string
	if i >= 0 {
		want = strings.Split(strings.TrimSpace(string(ar.Files[i].Data)), "\n")
		if len(want) == 1 && want[0] == "" {
			want = nil
		}
	}
	if slices.Equal(got, want) {
		return
	}
	if update {
		data := []byte(strings.Join(got, "\n") + "\n")
		if i >= 0 {
			ar.Files[i].Data = data
		} else {
			ar.Files = append(ar.Files, txtar.File{Name: "want", Data: data})
		}
		if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("updated %s", file)
		return
	}
	t.Errorf("problems under %s/ differ from %s (ATP_UPDATE=1 rewrites it)\n%s", archive, file, lineDiff(want, got))
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got []string) string {
	var b strings.Builder
	for _, w := range want {
		if !slices.Contains(got, w) {
			fmt.Fprintf(&b, "- %s\n", w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			fmt.Fprintf(&b, "+ %s\n", g)
		}
	}
	if b.Len() == 0 {
		b.WriteString("(same lines, different order)\n")
	}
	return b.String()
}
