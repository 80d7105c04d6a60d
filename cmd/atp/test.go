package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/atpgo/atp/internal/doctor"
	"github.com/atpgo/atp/internal/harness"
	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/internal/model"
	"github.com/atpgo/atp/runtime"
)

var testCommand = &command{
	name:    "test",
	summary: "run the tools of Go packages locally against test cases",
	run:     runTest,
}

const testSynopsis = `atp test [packages] [--tool T] [--params JSON | --file tests.yaml] [--json]

Builds a temporary program around the tools of the packages (default ".")
and calls them: once with --tool and --params, or once per case of a tests
file (YAML or JSON; default: the atp-tests.yaml of each package's
directory):

  shared_receiver: false          # optional, see below
  tests:
    - name: greets Ada              # optional
      tool: greet
      params: {name: Ada, times: 2}
      expect_success: true          # the default
      expect_result: "Hello, Ada! Hello, Ada!"   # optional, exact
    - tool: greet
      params: {name: ""}
      expect_error: name is empty   # a substring of the error
    - tool: greet
      params: {name: Ada, times: 9}
      expect_error: true            # any error

The packages are built as their source is, with freshly generated
registration code: go generate need not have run. Method tools are called
on what their receiver type's //atp:constructor returns, or on a zero value
of it without one; each case gets receivers of its own unless the file says
shared_receiver: true. Exit status 0 when every case passes, 1 when one
fails, 2 for bad arguments.`

// caseResult is one case's outcome, also its --json form.
type caseResult struct {
	Name      string            `json:"name"`
	Tool      string            `json:"tool"`
	Passed    bool              `json:"passed"`
	Detail    string            `json:"detail"`
	Result    json.RawMessage   `json:"result,omitempty"`
	Error     string            `json:"error,omitempty"`
	Kind      string            `json:"error_kind,omitempty"`
	Problems  []runtime.Problem `json:"problems,omitempty"`
	LatencyMs *float64          `json:"latency_ms,omitempty"` // nil when the call never returned
	latency   time.Duration
}

type testReport struct {
	Cases  []*caseResult `json:"cases"`
	Passed int           `json:"passed"`
	Failed int           `json:"failed"`
	P50Ms  float64       `json:"p50_ms"`
	P95Ms  float64       `json:"p95_ms"`
}

func runTest(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "test", testSynopsis)
	tool := fs.String("tool", "", "the `tool` to call (with --file: run only its cases)")
	params := fs.String("params", "", "the params of one call to --tool, a JSON object")
	file := fs.String("file", "", "a tests `file`, YAML or JSON (default: the atp-tests.yaml of each package's directory)")
	authToken := fs.String("auth-token", "", "end user's `token` for tools that need one (default $ATP_AUTH_TOKEN)")
	timeout := fs.Duration("timeout", 30*time.Second, "bound on each call of a tool that declares no timeout")
	asJSON := fs.Bool("json", false, "print the results as one JSON object")
	patterns, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *timeout <= 0 {
		return usagef("--timeout: expected a positive duration, got %s", *timeout)
	}
	if *authToken == "" {
		*authToken = e.getenv("ATP_AUTH_TOKEN")
	}

	cases, err := callCase(*tool, *params, *file)
	if err != nil {
		return err
	}
	pkgs, probs, err := loadTools(e, patterns)
	if err != nil {
		return err
	}
	if len(probs) > 0 {
		return problemsError(probs)
	}
	if cases == nil {
		if cases, err = fileCases(*tool, *file, pkgs); err != nil {
			return err
		}
	}
	if err := checkCaseTools(cases, toolNames(pkgs)); err != nil {
		return err
	}
	h, err := buildHarness(ctx, e, pkgs, harness.Invoke)
	if err != nil {
		return err
	}
	defer h.Close()

	report := &testReport{}
	var proc *harness.Process
	defer func() {
		if proc != nil {
			proc.Close()
		}
	}()
	for _, c := range cases {
		if proc == nil {
			if proc, err = h.Start(ctx, e.stderr); err != nil {
				return err
			}
		}
		token := c.AuthToken
		if token == "" {
			token = *authToken
		}
		resp, err := proc.Invoke(harness.Request{Tool: c.Tool, Params: c.Params, AuthToken: token, TimeoutMs: timeout.Milliseconds(), Fresh: c.fresh})
		var r *caseResult
		switch {
		case errors.Is(err, harness.ErrExited):
			if ctx.Err() != nil {
				return ctx.Err()
			}
			proc = nil // a new one for the next case
			r = &caseResult{Detail: "the tool crashed the test process (" + strings.TrimPrefix(err.Error(), harness.ErrExited.Error()+": ") + "): see its output above"}
		case err != nil:
			return err
		default:
			r = evaluate(c, resp)
		}
		r.Name, r.Tool = c.label(), c.Tool
		if r.Passed {
			report.Passed++
		} else {
			report.Failed++
		}
		report.Cases = append(report.Cases, r)
	}
	p50, p95 := percentiles(report.Cases)
	report.P50Ms, report.P95Ms = ms(p50), ms(p95)

	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		for _, r := range report.Cases {
			mark := "✓"
			if !r.Passed {
				mark = "✗"
			}
			line := fmt.Sprintf("%s %s: %s", mark, r.Name, r.Detail)
			if r.LatencyMs != nil {
				line += " (" + formatLatency(r.latency) + ")"
			}
			fmt.Fprintln(e.stdout, line)
		}
		fmt.Fprintf(e.stdout, "%d passed, %d failed (p50 %s, p95 %s)\n", report.Passed, report.Failed, formatLatency(p50), formatLatency(p95))
	}
	if report.Failed > 0 {
		return fmt.Errorf("%d of %d test cases failed", report.Failed, len(report.Cases))
	}
	return nil
}

// callCase returns the one call --params asks for, or nil when the cases
// come from a tests file. Everything wrong with the flags is a usage error:
// the run has not started.
func callCase(tool, params, file string) ([]*testCase, error) {
	switch {
	case params != "" && file != "":
		return nil, usagef("--params and --file exclude each other: give one call or a tests file")
	case params == "":
		return nil, nil
	case tool == "":
		return nil, usagef("--params needs --tool: name the tool to call")
	}
	raw := json.RawMessage(params)
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	if err := dec.Decode(&v); err != nil {
		return nil, usagef("invalid --params JSON: %v", err)
	}
	if dec.More() {
		return nil, usagef("invalid --params JSON: more than one value")
	}
	if _, ok := v.(map[string]any); !ok {
		return nil, usagef("--params: expected a JSON object, got %s", jsontree.KindOfText(raw))
	}
	return []*testCase{{Tool: tool, Params: raw, where: "--tool", fresh: true}}, nil
}

// fileCases returns the cases of --file, else of the default tests file of
// each package's directory, else the call of --tool with {}.
func fileCases(tool, file string, pkgs []*model.Package) ([]*testCase, error) {
	files := []string{file}
	if file == "" {
		files = defaultFiles(pkgs)
	}
	if len(files) == 0 {
		if tool != "" {
			return []*testCase{{Tool: tool, Params: json.RawMessage("{}"), where: "--tool", fresh: true}}, nil
		}
		var dirs []string
		for _, p := range pkgs {
			dirs = append(dirs, relDir(p.Dir))
		}
		return nil, usagef("nothing to test: pass --tool T [--params JSON], or --file F (no %s in %s)", defaultTestFiles[0], strings.Join(dirs, ", "))
	}
	var cases []*testCase
	for _, f := range files {
		tf, err := readTestFile(f)
		if err != nil {
			return nil, usagef("%v", err)
		}
		cases = append(cases, tf.Cases...)
	}
	if tool != "" {
		cases = slices.DeleteFunc(cases, func(c *testCase) bool { return c.Tool != tool })
		if len(cases) == 0 {
			return nil, usagef("no case of %s calls tool %q", strings.Join(files, ", "), tool)
		}
	}
	return cases, nil
}

// defaultFiles returns, for each package, the first of defaultTestFiles in
// its directory, as paths relative to the current directory when possible.
func defaultFiles(pkgs []*model.Package) []string {
	var files []string
	seen := map[string]bool{}
	for _, p := range pkgs {
		if p.Dir == "" || seen[p.Dir] {
			continue
		}
		seen[p.Dir] = true
		for _, name := range defaultTestFiles {
			path := filepath.Join(p.Dir, name)
			if fi, err := os.Stat(path); err == nil && !fi.IsDir() {
				files = append(files, filepath.Join(relDir(p.Dir), name))
				break
			}
		}
	}
	return files
}

// relDir is dir relative to the current directory when it is below it.
func relDir(dir string) string {
	wd, err := os.Getwd()
	if err != nil {
		return dir
	}
	if rel, err := filepath.Rel(wd, dir); err == nil && (rel == "." || filepath.IsLocal(rel)) {
		return rel
	}
	return dir
}

// toolNames returns the names of the packages' tools, sorted.
func toolNames(pkgs []*model.Package) []string {
	var names []string
	for _, p := range pkgs {
		for _, t := range doctor.Tools(p) {
			names = append(names, t.Name)
		}
	}
	slices.Sort(names)
	return names
}

// checkCaseTools reports the cases whose tool the packages do not have.
func checkCaseTools(cases []*testCase, tools []string) error {
	var bad []string
	for _, c := range cases {
		if !slices.Contains(tools, c.Tool) {
			bad = append(bad, fmt.Sprintf("%s: unknown tool %q", c.where, c.Tool))
		}
	}
	if len(bad) > 0 && len(tools) == 0 {
		return fmt.Errorf("%w: mark functions with //atp:tool", harness.ErrNoTools)
	}
	if len(bad) > 0 {
		return usagef("%s\nthe packages' tools are: %s", strings.Join(bad, "\n"), strings.Join(tools, ", "))
	}
	return nil
}

// buildHarness builds the harness with a progress line, the failure to do
// so is a failure of the run (exit 1).
func buildHarness(ctx context.Context, e *env, pkgs []*model.Package, mode harness.Mode) (*harness.Harness, error) {
	n, _ := countTools(pkgs)
	what := "test"
	if mode == harness.MCP {
		what = "MCP"
	}
	s := newProgress(e).start(fmt.Sprintf("building the %s harness for %s", what, plural(n, "tool")))
	h, err := harness.Build(ctx, pkgs, harness.Options{Mode: mode})
	s.end()
	if errors.Is(err, harness.ErrNoTools) {
		return nil, fmt.Errorf("%w: mark functions with //atp:tool", err)
	}
	return h, err
}

// evaluate checks a response against the case's expectations.
func evaluate(c *testCase, resp *harness.Response) *caseResult {
	lat := resp.Latency()
	latMs := ms(lat)
	r := &caseResult{Result: resp.Result, Error: resp.Error, Kind: resp.Kind, Problems: resp.Problems, LatencyMs: &latMs, latency: lat}
	failed := resp.Error != ""
	switch {
	case resp.Kind == "constructor":
		r.Detail = "the receiver could not be made, so the tool was not called: " + resp.Error
		r.LatencyMs, r.latency = nil, 0
	case c.ExpectError != nil:
		switch {
		case !failed:
			r.Detail = fmt.Sprintf("expected an error containing %q, got the result %s", *c.ExpectError, brief(resp.Result))
		case !strings.Contains(resp.Error, *c.ExpectError):
			r.Detail = fmt.Sprintf("expected an error containing %q, got %s: %s", *c.ExpectError, kindWords(resp.Kind), resp.Error)
		default:
			r.Passed = true
			r.Detail = "failed as expected: " + resp.Error
		}
	case c.expectsError():
		if failed {
			r.Passed = true
			r.Detail = "failed as expected: " + resp.Error
		} else {
			r.Detail = "expected an error, got the result " + brief(resp.Result)
		}
	case failed:
		r.Detail = fmt.Sprintf("expected success, got %s: %s", kindWords(resp.Kind), resp.Error)
	case c.ExpectResult != nil && !jsonEqual(c.ExpectResult, resp.Result):
		r.Detail = fmt.Sprintf("expected the result %s, got %s", brief(c.ExpectResult), brief(resp.Result))
	default:
		r.Passed = true
		r.Detail = brief(resp.Result)
	}
	return r
}

func kindWords(kind string) string {
	switch kind {
	case "invalid_params":
		return "invalid params"
	case "tool_error":
		return "a tool error"
	case "missing_auth_token":
		return "no auth token (pass --auth-token or set ATP_AUTH_TOKEN)"
	case "panic":
		return "a panic"
	case "timeout":
		return "a timeout"
	}
	return "an error"
}

// jsonEqual compares two JSON values by meaning: key order and number
// spelling (1, 1.0) do not matter.
func jsonEqual(a, b json.RawMessage) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return bytes.Equal(a, b)
	}
	return reflect.DeepEqual(va, vb)
}

// brief is a JSON value on one line, cut to 120 characters.
func brief(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		b.Reset()
		b.Write(raw)
	}
	s := b.String()
	if utf8.RuneCountInString(s) > 120 {
		s = string([]rune(s)[:119]) + "…"
	}
	return s
}

// percentiles returns the nearest-rank p50 and p95 of the latencies of the
// calls that returned.
func percentiles(cases []*caseResult) (p50, p95 time.Duration) {
	var lat []time.Duration
	for _, c := range cases {
		if c.LatencyMs != nil {
			lat = append(lat, c.latency)
		}
	}
	if len(lat) == 0 {
		return 0, 0
	}
	slices.Sort(lat)
	rank := func(q float64) time.Duration {
		i := int(q*float64(len(lat))+0.999999999) - 1
		return lat[max(0, min(i, len(lat)-1))]
	}
	return rank(0.50), rank(0.95)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// formatLatency rounds to three significant digits: 412µs, 1.23ms, 2.5s.
func formatLatency(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(10 * time.Millisecond).String()
}
