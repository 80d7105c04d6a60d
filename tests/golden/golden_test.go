// Package golden runs atpgen on the txtar cases in testdata/ and compares
// what it writes and prints with the cases' want/ sections. A case is a
// small module (a go.mod requiring github.com/atpgo/atp is added when the
// case has none) with these optional sections:
//
//	want/<dir>/atp_gen.go  the file atpgen must write in <dir>; no other
//	                       atp_gen.go may appear
//	want/stderr            what atpgen prints; its presence means exit 1
//	check/main.go          a program run after generation (go run ./check)
//	want/stdout            what that program must print
//	args                   atpgen's arguments, one line (default: ./...)
//
// ATP_UPDATE=1 go test ./tests/golden rewrites the want/ sections from what
// atpgen and the check program actually did.
package golden

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/tools/txtar"

	"github.com/atpgo/atp/internal/atpgen"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// hermeticEnv makes the go command resolve github.com/atpgo/atp to this
// checkout and everything else from the module cache only.
func hermeticEnv(t *testing.T) {
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOWORK", "off")
}

func TestGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/*.txtar")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases in testdata/")
	}
	root := repoRoot(t)
	hermeticEnv(t)
	update := os.Getenv("ATP_UPDATE") == "1"
	for _, file := range cases {
		name := strings.TrimSuffix(filepath.Base(file), ".txtar")
		t.Run(name, func(t *testing.T) {
			runCase(t, root, file, update)
		})
	}
}

func runCase(t *testing.T, root, file string, update bool) {
	ar, err := txtar.ParseFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	want := map[string][]byte{}
	args := []string{"./..."}
	hasGoMod := false
	for _, f := range ar.Files {
		switch {
		case strings.HasPrefix(f.Name, "want/"):
			want[strings.TrimPrefix(f.Name, "want/")] = f.Data
			continue
		case f.Name == "args":
			args = strings.Fields(string(f.Data))
			continue
		case f.Name == "go.mod":
			hasGoMod = true
		}
		writeFile(t, filepath.Join(dir, f.Name), f.Data)
	}
	if !hasGoMod {
		writeFile(t, filepath.Join(dir, "go.mod"), []byte("module example.com/golden\n\ngo 1.26\n\nrequire github.com/atpgo/atp v0.0.0\n\nreplace github.com/atpgo/atp => "+root+"\n"))
	}

	var stdout, stderr bytes.Buffer
	code := atpgen.Main(args, dir, &stdout, &stderr)
	got := map[string][]byte{}
	if stderr.Len() > 0 || code != 0 {
		got["stderr"] = stderr.Bytes()
	}
	if (code != 0) != (stderr.Len() > 0) {
		t.Errorf("exit code %d with stderr %q: a failure must say why, and output on stderr means failure", code, stderr.String())
	}
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "atp_gen.go" {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		data, err := os.ReadFile(path)
		got[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fileData(ar, "check/main.go"); ok && code == 0 {
		cmd := exec.Command("go", "run", "./check")
		cmd.Dir = dir
		var errOut bytes.Buffer
		cmd.Stderr = &errOut // logs (a panic's stack, say) vary from run to run
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go run ./check: %v\n%s%s", err, out, errOut.Bytes())
		}
		got["stdout"] = out
	}

	if update {
		rewrite(t, file, ar, got)
		return
	}
	names := func(m map[string][]byte) []string {
		var s []string
		for k := range m {
			s = append(s, k)
		}
		slices.Sort(s)
		return s
	}
	if !slices.Equal(names(got), names(want)) {
		t.Errorf("atpgen produced %v, want %v", names(got), names(want))
	}
	for name, w := range want {
		if g, ok := got[name]; ok && !bytes.Equal(g, w) {
			t.Errorf("%s differs (ATP_UPDATE=1 to accept):\n--- got ---\n%s\n--- want ---\n%s", name, g, w)
		}
	}
}

func fileData(ar *txtar.Archive, name string) ([]byte, bool) {
	for _, f := range ar.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// rewrite replaces the archive's want/ sections with got, keeping the rest.
func rewrite(t *testing.T, file string, ar *txtar.Archive, got map[string][]byte) {
	var files []txtar.File
	for _, f := range ar.Files {
		if !strings.HasPrefix(f.Name, "want/") {
			files = append(files, f)
		}
	}
	var names []string
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		data := got[name]
		if len(data) > 0 && data[len(data)-1] != '\n' {
			data = append(data, '\n')
		}
		files = append(files, txtar.File{Name: "want/" + name, Data: data})
	}
	ar.Files = files
	if err := os.WriteFile(file, txtar.Format(ar), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
