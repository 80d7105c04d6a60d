package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

const passingTests = `# Cases that pass; the receivers live on from case to case.
shared_receiver: true
tests:
  - name: greets Ada twice
    tool: greet
    params: {name: Ada, times: 2}
    expect_result: "Hello, Ada! Hello, Ada!"
  - tool: greet
    params: {name: "", times: 1}
    expect_error: name is empty
  - name: times out of range
    tool: greet
    params: {name: Ada, times: 9}
    expect_success: false
  - tool: shout
    params: {message: hi}
    expect_success: true
  - tool: increment
    params: {by: 2}
    expect_result: 2
  - name: the receiver lives on
    tool: increment
    params: {by: 3}
    expect_result: 5.0
  - tool: whoami
    auth_token: s3cret
    expect_result: 6
  - name: any error will do
    tool: greet
    params: {name: Ada, times: 0}
    expect_error: true
  - name: the constructor made the map
    tool: count
    params: {word: go}
    expect_result: 1
  - name: the tally lives on
    tool: count
    params: {word: go}
    expect_result: 2
`

// freshTests has no shared_receiver: every case gets receivers of its own.
const freshTests = `tests:
  - tool: increment
    params: {by: 2}
    expect_result: 2
  - tool: increment
    params: {by: 3}
    expect_result: 3
  - tool: count
    params: {word: go}
    expect_result: 1
  - tool: count
    params: {word: go}
    expect_result: 1
  - tool: greet
    params: {name: Ada, times: 1}
    expect_error: false
`

const failingTests = `{"tests": [
  {"name": "wrong greeting", "tool": "greet", "params": {"name": "Ada", "times": 1}, "expect_result": "Hi, Ada!"},
  {"name": "expects an error", "tool": "greet", "params": {"name": "Ada", "times": 1}, "expect_error": "boom"},
  {"name": "wrong error", "tool": "greet", "params": {"name": "", "times": 1}, "expect_error": "boom"},
  {"name": "crash", "tool": "crash", "params": {"code": 7}},
  {"name": "after the crash", "tool": "greet", "params": {"name": "Bo", "times": 1}},
  {"name": "no token", "tool": "whoami"},
  {"name": "any error, none came", "tool": "greet", "params": {"name": "Ada", "times": 1}, "expect_error": true}
]}
`

var summaryLine = regexp.MustCompile(`(?m)^(\d+) passed, (\d+) failed \(p50 \S+, p95 \S+\)$`)

func TestTestCommand(t *testing.T) {
	te := newTestEnv(t)
	toolModule(t, map[string]string{"passing.yaml": passingTests, "failing.json": failingTests, "fresh.yaml": freshTests,
		"greet/atp-tests.yaml": "tests: [{tool: shout, params: {message: hey}, expect_result: HEY}]\n"})

	code, out, stderr := te.atp("test", "./...", "--file", "passing.yaml")
	if code != exitOK {
		t.Fatalf("passing file: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		"✓ greets Ada twice: \"Hello, Ada! Hello, Ada!\" (",
		"✓ greet: failed as expected: name is empty: give the name of the person to greet (",
		"✓ times out of range: failed as expected: invalid params for greet: times: ",
		"✓ shout: \"HI\" (",
		"✓ the receiver lives on: 5 (",
		"✓ whoami: 6 (",
		"✓ any error will do: failed as expected: invalid params for greet: times: ",
		"✓ the constructor made the map: 1 (",
		"✓ the tally lives on: 2 (",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if m := summaryLine.FindStringSubmatch(out); m == nil || m[1] != "10" || m[2] != "0" {
		t.Errorf("summary: %q", out)
	}
	// What the tools print goes to stderr.
	if strings.Contains(out, "shouting") || !strings.Contains(stderr, "shouting hi") {
		t.Errorf("tool output: stdout %q, stderr %q", out, stderr)
	}

	code, out, stderr = te.atp("test", "--file", "fresh.yaml", "./...")
	if code != exitOK || !strings.Contains(out, "5 passed, 0 failed") {
		t.Fatalf("fresh receivers: exit %d\n%s\n%s", code, out, stderr)
	}

	code, out, stderr = te.atp("test", "--file", "failing.json", "./...")
	if code != exitFailure || !strings.Contains(stderr, "atp test: 6 of 7 test cases failed") {
		t.Fatalf("failing file: exit %d\n%s\n%s", code, out, stderr)
	}
	for _, want := range []string{
		`✗ wrong greeting: expected the result "Hi, Ada!", got "Hello, Ada!" (`,
		`✗ expects an error: expected an error containing "boom", got the result "Hello, Ada!" (`,
		`✗ wrong error: expected an error containing "boom", got a tool error: name is empty`,
		`✗ crash: the tool crashed the test process (exit status 7): see its output above`,
		`✓ after the crash: "Hello, Bo!" (`,
		`✗ no token: expected success, got no auth token (pass --auth-token or set ATP_AUTH_TOKEN): `,
		`✗ any error, none came: expected an error, got the result "Hello, Ada!" (`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if m := summaryLine.FindStringSubmatch(out); m == nil || m[1] != "1" || m[2] != "6" {
		t.Errorf("summary: %q", out)
	}

	// --json, the token from the environment, --tool filtering the file.
	te.vars["ATP_AUTH_TOKEN"] = "abc"
	code, out, _ = te.atp("test", "--json", "--file", "failing.json", "--tool", "whoami", "./...")
	var rep testReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitOK {
		t.Fatalf("--json: exit %d, %v: %s", code, err, out)
	}
	if len(rep.Cases) != 1 || !rep.Cases[0].Passed || string(rep.Cases[0].Result) != "3" || rep.Passed != 1 || rep.Failed != 0 ||
		rep.Cases[0].LatencyMs == nil || rep.P50Ms <= 0 || rep.P95Ms < rep.P50Ms {
		t.Fatalf("--json report: %s", out)
	}
	delete(te.vars, "ATP_AUTH_TOKEN")

	// One call with --params; the default file when no --file is given.
	code, out, _ = te.atp("test", "./greet", "--tool", "greet", "--params", `{"name":"Cy","times":1}`)
	if code != exitOK || !strings.Contains(out, `✓ greet: "Hello, Cy!"`) {
		t.Fatalf("--params: exit %d: %s", code, out)
	}
	code, out, _ = te.atp("test", "--json", "--params", `{"name":"Cy","times":0}`, "--tool", "greet", "./greet")
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != exitFailure || rep.Cases[0].Kind != "invalid_params" ||
		len(rep.Cases[0].Problems) != 1 || rep.Cases[0].Problems[0].Path != "times" {
		t.Fatalf("--params failing: exit %d, %s", code, out)
	}
	// Without --file: the atp-tests.yaml of each package's directory, not
	// the current one's.
	code, out, _ = te.atp("test", "./...")
	if code != exitOK || !strings.Contains(out, "✓ shout: \"HEY\"") || !strings.Contains(out, "1 passed, 0 failed") {
		t.Fatalf("greet/atp-tests.yaml: exit %d: %s", code, out)
	}
	t.Chdir("greet")
	code, out, _ = te.atp("test")
	if code != exitOK || !strings.Contains(out, "1 passed, 0 failed") {
		t.Fatalf("atp test in greet/: exit %d: %s", code, out)
	}
}

func TestTestCommandBadArguments(t *testing.T) {
	te := newTestEnv(t)
	toolModule(t, map[string]string{
		"typo.yaml":    "tests:\n  - tool: greet\n    params: {name: Ada, times: 1}\n    expect_eror: x\n  - tool: greet\n    params: [1]\n",
		"unknown.yaml": "tests:\n  - tool: greet\n    params: {name: Ada, times: 1}\n  - tool: frobnicate\n",
		"empty.yaml":   "tests: []\n",
		"bad.yaml":     "tests: [\n",
	})
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"test", "./...", "--tool", "greet", "--params", "{name:"}, "invalid --params JSON: invalid character 'n'"},
		{[]string{"test", "./...", "--tool", "greet", "--params", "[1, 2]"}, "--params: expected a JSON object, got array"},
		{[]string{"test", "./...", "--tool", "greet", "--params", "{} {}"}, "invalid --params JSON: more than one value"},
		{[]string{"test", "./...", "--params", "{}"}, "--params needs --tool"},
		{[]string{"test", "./...", "--tool", "greet", "--params", "{}", "--file", "x.yaml"}, "--params and --file exclude each other"},
		{[]string{"test", "./...", "--tool", "nope", "--params", "{}"}, "--tool: unknown tool \"nope\"\nthe packages' tools are: count, crash, greet, increment, shout, whoami"},
		{[]string{"test", "./...", "--file", "missing.yaml"}, "reading the tests file: open missing.yaml: no such file or directory"},
		{[]string{"test", "./...", "--file", "typo.yaml"}, "typo.yaml:4: tests[0]: unknown field \"expect_eror\" (did you mean expect_error?): expected one of name, tool, params"},
		{[]string{"test", "./...", "--file", "typo.yaml"}, "typo.yaml:6: tests[1]: params: expected an object (a mapping), got a list"},
		{[]string{"test", "./...", "--file", "unknown.yaml"}, "unknown.yaml:4: unknown tool \"frobnicate\""},
		{[]string{"test", "./...", "--file", "unknown.yaml", "--tool", "add"}, "no case of unknown.yaml calls tool \"add\""},
		{[]string{"test", "./...", "--file", "empty.yaml"}, "empty.yaml:1: tests is empty"},
		{[]string{"test", "./...", "--file", "bad.yaml"}, "bad.yaml: yaml: line"},
		{[]string{"test", "./internal/..."}, "nothing to test: pass --tool T [--params JSON], or --file F (no atp-tests.yaml in internal/counter)"},
		{[]string{"test", "./nope"}, "no such package: ./nope (there is no directory nope)"},
		{[]string{"test", "./nope/...", "--tool", "greet"}, "no such package: ./nope/... (there is no directory nope)"},
		{[]string{"test", "example.com/toolmod/nope", "--tool", "greet"}, "no such package: loading example.com/toolmod/nope"},
		{[]string{"test", "--bogus"}, "atp test: flag provided but not defined: -bogus\n\nUsage: atp test [packages]"},
		{[]string{"test", "./...", "--tool", "greet", "--params", "{}", "--timeout", "0s"}, "--timeout: expected a positive duration"},
	} {
		code, _, stderr := te.atp(c.args...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("atp %q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
