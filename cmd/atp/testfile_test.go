package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTests(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "tests.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// YAML params reach the tool as JSON, numbers exactly as written.
func TestReadTestFileParams(t *testing.T) {
	p := writeTests(t, `tests:
  - tool: t
    params:
      big: 12345678901234567890
      dec: 0.10
      hex: 0x1F
      neg: -3
      yes: true
      none: null
      text: "007"
      plain: hello world
      list: [1, two, {three: 3}]
      anchor: &a {x: 1}
      alias: *a
  - tool: u
`)
	tf, err := readTestFile(p)
	if err != nil {
		t.Fatal(err)
	}
	cases := tf.Cases
	want := `{"big":12345678901234567890,"dec":0.10,"hex":31,"neg":-3,"yes":true,"none":null,"text":"007","plain":"hello world","list":[1,"two",{"three":3}],"anchor":{"x":1},"alias":{"x":1}}`
	if got := string(cases[0].Params); got != want {
		t.Errorf("params\n got %s\nwant %s", got, want)
	}
	if cases[1].Params != nil || cases[1].label() != "u" || !strings.HasSuffix(cases[1].where, "tests.yaml:15") {
		t.Errorf("second case: %+v", cases[1])
	}
}

// Every problem of the file at once, each with its line.
func TestReadTestFileProblems(t *testing.T) {
	p := writeTests(t, `tests:
  - tool: a
    expect_success: true
    expect_error: x
  - params: {a: 1}
  - tool: b
    expect_success: maybe
  - tool: c
    expect_error: x
    expect_result: 1
  - tool: [d]
  - just a string
  - tool: e
    tool: f
  - tool: g
    params: {k: .inf}
`)
	_, err := readTestFile(p)
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"tests.yaml:2: tests[0]: expect_success: true and expect_error contradict each other",
		"tests.yaml:5: tests[1]: tool is missing",
		"tests.yaml:7: tests[2]: expect_success: expected true or false, got the string \"maybe\"",
		"tests.yaml:8: tests[3]: expect_result goes with a call that succeeds",
		"tests.yaml:11: tests[4]: tool: expected a string, got a list",
		"tests.yaml:12: tests[5]: expected a mapping {tool, params, ...}, got the string \"just a string\"",
		"tests.yaml:14: tests[6]: tool is given twice",
		"tests.yaml:16: tests[7]: params: line 16: .inf is not a JSON number",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	for content, want := range map[string]string{
		"":            "the file is empty",
		"- tool: a\n": "expected a mapping with a tests list, got a list",
		"cases: []\n": `unknown key "cases": the file holds tests and, optionally, shared_receiver`,
		"test: []\n":  `unknown key "test" (did you mean tests?)`,
		"shared_receiver: yes please\ntests: [{tool: a}]\n": `shared_receiver: expected true or false, got the string "yes please"`,
		"tests: {a: 1}\n": "tests: expected a list, got a mapping",
		"tests:\n":        "tests: expected a list, got null",
		"tests: [\n":      "yaml:",
	} {
		if _, err := readTestFile(writeTests(t, content)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", content, err, want)
		}
	}
}

// expect_error takes a boolean (any error, or none) or a substring;
// shared_receiver decides whether cases share method receivers.
func TestReadTestFileExpectations(t *testing.T) {
	tf, err := readTestFile(writeTests(t, `tests:
  - tool: a
    expect_error: true
  - tool: a
    expect_error: "true"
  - tool: a
    expect_error: false
    expect_result: 1
  - tool: a
    expect_error: 404
  - tool: a
`))
	if err != nil {
		t.Fatal(err)
	}
	c := tf.Cases
	if !c[0].ExpectAnyError || c[0].ExpectError != nil || !c[0].expectsError() {
		t.Errorf("expect_error: true = %+v", c[0])
	}
	if c[1].ExpectAnyError || c[1].ExpectError == nil || *c[1].ExpectError != "true" {
		t.Errorf(`expect_error: "true" = %+v`, c[1])
	}
	if c[2].expectsError() || c[2].ExpectSuccess == nil || !*c[2].ExpectSuccess || string(c[2].ExpectResult) != "1" {
		t.Errorf("expect_error: false = %+v", c[2])
	}
	if c[3].ExpectError == nil || *c[3].ExpectError != "404" {
		t.Errorf("expect_error: 404 = %+v", c[3])
	}
	if c[4].expectsError() {
		t.Errorf("no expectation = %+v", c[4])
	}
	if tf.SharedReceiver || !c[0].fresh {
		t.Errorf("default: shared %v, fresh %v", tf.SharedReceiver, c[0].fresh)
	}

	tf, err = readTestFile(writeTests(t, "shared_receiver: true\ntests: [{tool: a}, {tool: b}]\n"))
	if err != nil || !tf.SharedReceiver || tf.Cases[0].fresh || tf.Cases[1].fresh {
		t.Fatalf("shared_receiver: true: %+v, %v", tf, err)
	}

	_, err = readTestFile(writeTests(t, `tests:
  - tool: a
    expect_error: true
    expect_success: true
  - tool: a
    expect_error: false
    expect_success: false
  - tool: a
    expect_error: true
    expect_result: 1
  - tool: a
    expect_eror: x
`))
	for _, want := range []string{
		"tests.yaml:2: tests[0]: expect_success: true and expect_error contradict each other",
		"tests.yaml:5: tests[1]: expect_success: false and expect_error: false contradict each other",
		"tests.yaml:8: tests[2]: expect_result goes with a call that succeeds",
		`tests.yaml:12: tests[3]: unknown field "expect_eror" (did you mean expect_error?)`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}
