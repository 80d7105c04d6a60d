package gen

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestGeneratedCodeRuns compiles the file generated for runModel together
// with the user code it was modelled on (testdata/run) and a program that
// calls every tool through runtime.Toolkit.Invoke with valid and invalid
// params, and compares what the program prints with testdata/run/want.txt
// and the generated file with testdata/run/atp_gen.go.want. ATP_UPDATE=1
// rewrites both.
func TestGeneratedCodeRuns(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	src := filepath.Join("testdata", "run")
	err = filepath.WalkDir(src, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return err
		}
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	gomod := "module example.com/gentest\n\ngo 1.26\n\nrequire github.com/atpgo/atp v0.0.0\n\nreplace github.com/atpgo/atp => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	f, probs := Generate(runModel())
	if len(probs) > 0 {
		t.Fatalf("Generate: %v", probs)
	}
	update := os.Getenv("ATP_UPDATE") == "1"
	// The generated file itself is kept next to the sources, so that a
	// change to what gen writes shows up in review.
	genFile := filepath.Join(src, "atp_gen.go.want")
	if update {
		if err := os.WriteFile(genFile, f.Content, 0o644); err != nil {
			t.Fatal(err)
		}
	} else if want, err := os.ReadFile(genFile); err != nil {
		t.Errorf("%v (run with ATP_UPDATE=1 to create it)", err)
	} else if !bytes.Equal(f.Content, want) {
		t.Errorf("generated file differs from %s (ATP_UPDATE=1 rewrites it):\n%s", genFile, lineDiff(string(want), string(f.Content)))
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), f.Content, 0o644); err != nil {
		t.Fatal(err)
	}

	// Hermetic: github.com/atpgo/atp is this checkout, everything else
	// comes from the module cache.
	t.Setenv("GOFLAGS", "-mod=mod")
	t.Setenv("GOPROXY", "off")
	t.Setenv("GOSUMDB", "off")
	t.Setenv("GOWORK", "off")
	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %s: %v\n%s\ngenerated file:\n%s", strings.Join(args, " "), err, stderr.Bytes(), numbered(f.Content))
		}
		return stdout.Bytes()
	}
	run("vet", "./...")
	got := run("run", "./check")

	wantFile := filepath.Join(src, "want.txt")
	if update {
		if err := os.WriteFile(wantFile, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(wantFile)
	if err != nil {
		t.Fatalf("%v (run with ATP_UPDATE=1 to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("check program output differs from %s (ATP_UPDATE=1 rewrites it):\n%s", wantFile, lineDiff(string(want), string(got)))
	}
}

// numbered prefixes each line of src with its number, for compile errors.
func numbered(src []byte) string {
	var b strings.Builder
	for i, line := range strings.Split(string(src), "\n") {
		b.WriteString(strings.Repeat(" ", 4-len(strconv.Itoa(i+1))))
		b.WriteString(strconv.Itoa(i + 1))
		b.WriteString("  ")
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}

// lineDiff lists the lines that differ between want and got, by position.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}
