package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/internal/doctor"
	"github.com/atpgo/atp/internal/harness/harnesstest"
)

// toolModule makes a user module holding the harness fixture (packages
// greet and internal/counter, which require this checkout of atp), plus the
// given files, and makes it the working directory, as a user runs atp in
// their module.
func toolModule(t *testing.T, files map[string]string) string {
	t.Helper()
	repo, err := harnesstest.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := harnesstest.Module(t.TempDir(), repo, "example.com/toolmod", filepath.Join(repo, "internal", "harness", "testdata", "toolmod"))
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
	return dir
}

var findingLine = regexp.MustCompile(`^[^:]+\.go:\d+:\d+: (error|warning|info) [a-z_]+: `)

func TestDoctorCommand(t *testing.T) {
	te := newTestEnv(t)
	t.Chdir(filepath.Join("..", "..", "internal", "doctor", "testdata"))

	// The fixture has errors: exit 1, one line per finding.
	code, out, stderr := te.atp("doctor", "./tools")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != exitFailure || len(lines) < 10 || !regexp.MustCompile(`^atp doctor: 16 tools: \d+ errors, \d+ warnings, \d+ infos\n$`).MatchString(stderr) {
		t.Fatalf("doctor ./tools: exit %d\nstdout %s\nstderr %s", code, out, stderr)
	}
	for _, l := range lines {
		if !findingLine.MatchString(l) {
			t.Errorf("finding line %q does not read path:line:col: severity code: message", l)
		}
	}
	if !slices.ContainsFunc(lines, func(l string) bool {
		return strings.HasPrefix(l, "tools/tools.go:19:6: error missing_tool_description: tool undocumented: no description")
	}) {
		t.Errorf("no missing_tool_description line for undocumented:\n%s", out)
	}

	// --json: the same findings, and the counts.
	code, out, _ = te.atp("doctor", "--json", "./tools")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailure {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
	if len(rep.Findings) != len(lines) || rep.Tools != 16 || rep.Errors == 0 || rep.Errors+rep.Warnings+rep.Infos != len(lines) {
		t.Fatalf("--json report: %d findings (text had %d), %+v", len(rep.Findings), len(lines), rep)
	}
	f := rep.Findings[0]
	if f.Pos.File == "" || f.Pos.Line == 0 || f.Code == "" || f.Severity == "" {
		t.Errorf("first finding %+v", f)
	}

	// --min-severity hides findings, not the exit status; flags after the
	// package work too.
	code, out, _ = te.atp("doctor", "./tools", "--min-severity", "error")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if !strings.Contains(l, ": error ") {
			t.Errorf("--min-severity error shows %q", l)
		}
	}
	if code != exitFailure || strings.Count(out, "\n") != rep.Errors {
		t.Errorf("--min-severity error: exit %d, %d lines, want %d errors", code, strings.Count(out, "\n"), rep.Errors)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"doctor", "--min-severity", "fatal"}, `--min-severity: unknown severity "fatal"`},
		{[]string{"doctor", "./nope"}, "nope"},
		{[]string{"doctor", "--bogus"}, "flag provided but not defined: -bogus"},
	} {
		if code, _, stderr := te.atp(c.args...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("atp %v: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

// A package whose tools are all fine: exit 0, only infos.
func TestDoctorCleanPackage(t *testing.T) {
	te := newTestEnv(t)
	t.Chdir(filepath.Join("..", "..", "examples"))
	code, out, stderr := te.atp("doctor", "./hello")
	if code != exitOK || out != "" || stderr != "atp doctor: 2 tools: 0 errors, 0 warnings, 0 infos\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = te.atp("doctor", "--json", "./hello")
	var rep doctorReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK || rep.Findings == nil || len(rep.Findings) != 0 {
		t.Fatalf("--json: exit %d, %v, %s", code, err, out)
	}
	// A source problem is an error finding.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/bad\n\ngo 1.26\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.go"), []byte("package bad\n\n// Hi says hi to the caller.\n//\n//atp:tool name=\"a b\"\nfunc Hi() string { return \"hi\" }\n"), 0o644)
	t.Chdir(dir)
	code, out, _ = te.atp("doctor")
	if code != exitFailure || !strings.Contains(out, "bad.go:5:") || !strings.Contains(out, "error "+doctor.CodeSourceProblem+`: invalid tool name "a b"`) {
		t.Fatalf("source problem: exit %d, %q", code, out)
	}
}

// Progress lines follow the env's clock, never the machine's speed: with a
// clock that has fired, the loading line is there; with none (the other
// tests), it never is.
func TestDoctorProgressLine(t *testing.T) {
	te := newTestEnv(t)
	var delays []time.Duration
	te.env.after = func(d time.Duration) <-chan time.Time {
		delays = append(delays, d)
		fired := make(chan time.Time, 1)
		fired <- time.Now()
		return fired
	}
	t.Chdir(filepath.Join("..", "..", "examples"))
	code, out, stderr := te.atp("doctor", "./hello")
	if code != exitOK || out != "" || stderr != "loading packages…\natp doctor: 2 tools: 0 errors, 0 warnings, 0 infos\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if !slices.Equal(delays, []time.Duration{progressDelay}) {
		t.Errorf("progress asked the clock for %v, want [%s]", delays, progressDelay)
	}
}
