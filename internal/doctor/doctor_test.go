package doctor

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/atpgo/atp/internal/model"
	"github.com/atpgo/atp/internal/parse"
)

var (
	loadOnce sync.Once
	loaded   []*model.Package
	loadErr  error
)

// fixture loads testdata/tools once: loading type-checks, which is the slow
// part.
func fixture(t *testing.T) []*model.Package {
	t.Helper()
	loadOnce.Do(func() {
		var probs []model.Problem
		loaded, probs, loadErr = parse.Load(parse.Config{Dir: "testdata"}, "./tools")
		if loadErr == nil && len(probs) > 0 {
			loadErr = &problemsError{probs}
		}
	})
	if loadErr != nil {
		t.Fatal(loadErr)
	}
	return loaded
}

type problemsError struct{ probs []model.Problem }

func (e *problemsError) Error() string {
	var b strings.Builder
	for _, p := range e.probs {
		b.WriteString(p.String() + "\n")
	}
	return b.String()
}

// lineOf returns the 1-based line of the fixture that contains text (which
// must occur once).
func lineOf(t *testing.T, text string) int {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "tools", "tools.go"))
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(src), "\n") {
		if strings.Contains(l, text) {
			if line != 0 {
				t.Fatalf("%q is on lines %d and %d of the fixture", text, line, i+1)
			}
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("%q is not in the fixture", text)
	}
	return line
}

// want is what the fixture must report on the line holding a piece of
// source: codes (each once per provider group), the tools concerned, and the
// providers concerned.
type want struct {
	line      string
	code      string
	tools     []string
	providers []string
	message   string // a substring of the message
}

// TestChecks runs every check on the fixture, whose tools come in pairs: one
// that trips a check and one that does not. Every finding must be wanted, so
// each clean twin is a negative case.
func TestChecks(t *testing.T) {
	pkgs := fixture(t)
	wants := []want{
		// Tool descriptions: Undocumented has none, Ping has a short one;
		// Frobnicate (clean) has a good one.
		{line: "func Undocumented(", code: CodeMissingToolDescription, tools: []string{"undocumented"}, message: "write a doc comment on Undocumented"},
		{line: "func Ping(", code: CodeShortToolDescription, tools: []string{"ping"}, message: `"Pings." is shorter than 10 characters`},
		// Parameter descriptions: knob and verbose have none, id a short
		// one; Frobnicate's knob is documented. Struct fields too, nested
		// ones by their path.
		{line: "func Undocumented(", code: CodeMissingParamDesc, tools: []string{"undocumented"}, message: `parameter knob has no description: add a line "- knob: <what it is>"`},
		{line: "func Lookup(", code: CodeShortParamDesc, tools: []string{"lookup"}, message: `property id: description "the id"`},
		{line: "func Lookup(", code: CodeMissingParamDesc, tools: []string{"lookup"}, message: "parameter verbose has no description"},
		{line: "Nickname string", code: CodeMissingParamDesc, tools: []string{"greet", "welcome"}, message: "property nickname has no description: write a doc comment on its field"},
		{line: "Zip  string", code: CodeMissingParamDesc, tools: []string{"greet", "welcome"}, message: "property home.zip has no description"},
		// Destructive names: DeleteUser; not RemoveUser (destructive),
		// ListArchive (readonly) or DropdownOptions ("dropdown").
		{line: "func DeleteUser(", code: CodeMissingDestructive, tools: []string{"delete_user"}, message: `sounds destructive ("delete")`},
		// Parameter count: Big has 11; Ten has 10.
		{line: "func Big(", code: CodeTooManyParams, tools: []string{"big"}, message: "takes 11 parameters (more than 10)"},
		// Property names: first-name is not a Gemini parameters name;
		// last_name is.
		{line: "FirstName string", code: CodeProviderRejectsProp, tools: []string{"greet", "welcome"}, providers: []string{"gemini"}, message: `property name "first-name"`},
		// Constraints a provider only describes: minLength in OpenAI strict
		// and Gemini's JSON Schema form (which first-name forces).
		{line: "LastName string", code: CodeDescribesConstraint, tools: []string{"greet", "welcome"}, providers: []string{"openai", "openai-chat"}, message: "minLength described: OpenAI strict mode does not support minLength"},
		{line: "LastName string", code: CodeDescribesConstraint, tools: []string{"greet", "welcome"}, providers: []string{"gemini"}, message: "minLength described: Gemini (parametersJsonSchema)"},
		// Constraints a provider drops: contains, in OpenAI strict and
		// Gemini parameters; Anthropic, Mistral and MCP keep it.
		{line: "Labels Labels", code: CodeDropsConstraint, tools: []string{"file_ticket"}, providers: []string{"openai", "openai-chat"}, message: "input /properties/labels contains dropped"},
		{line: "Labels Labels", code: CodeDropsConstraint, tools: []string{"file_ticket"}, providers: []string{"gemini"}, message: "Gemini (parameters) does not support contains"},
		// Fallback forms: patternProperties turns OpenAI strict off and
		// sends Gemini the JSON Schema form (which drops it).
		{line: "Headers Headers", code: CodeStrictDowngrade, tools: []string{"fetch"}, providers: []string{"openai", "openai-chat"}, message: "strict mode is off for this tool"},
		{line: "Headers Headers", code: CodeSchemaFallback, tools: []string{"fetch"}, providers: []string{"gemini"}, message: "patternProperties downgraded: Gemini (parameters)"},
		{line: "Headers Headers", code: CodeDropsConstraint, tools: []string{"fetch"}, providers: []string{"gemini"}, message: "patternProperties dropped"},
		// A schema no provider takes: a remote $ref.
		{line: "func TakePayment(", code: CodeProviderRejectsSchema, tools: []string{"take_payment"},
			providers: []string{"openai", "openai-chat", "anthropic", "mistral", "gemini", "mcp"},
			message:   `cannot take the tool: input schema: /properties/amount: $ref: "https://schemas.example.com/money.json" is not a local reference`},
		// A description over OpenAI Chat's 1024 characters; every other
		// description is shorter.
		{line: "func LongDescription(", code: CodeTruncatesDescription, tools: []string{"long_description"}, providers: []string{"openai-chat"}, message: "longer than 1024 characters: truncated"},
	}

	got := Check(pkgs)
	used := make([]bool, len(got))
	for _, w := range wants {
		line := lineOf(t, w.line)
		found := false
		for i, f := range got {
			if f.Pos.Line != line || f.Code != w.code || !slices.Equal(f.Tools, w.tools) || !slices.Equal(f.Providers, w.providers) || !strings.Contains(f.Message, w.message) {
				continue
			}
			if found {
				t.Errorf("line %d (%s): %s reported twice", line, w.line, w.code)
			}
			found, used[i] = true, true
			if f.Pos.File != filepath.Join("tools", "tools.go") || f.Pos.Col == 0 {
				t.Errorf("position %v: want tools/tools.go with a column", f.Pos)
			}
			if sev := severityOf(w.code); f.Severity != sev {
				t.Errorf("%s has severity %s, want %s", w.code, f.Severity, sev)
			}
		}
		if !found {
			t.Errorf("missing: line %d (%s): %s for %v %v, message containing %q", line, w.line, w.code, w.tools, w.providers, w.message)
		}
	}
	for i, f := range got {
		if !used[i] {
			t.Errorf("unexpected finding: %s", f)
		}
	}
}

func severityOf(code string) Severity {
	for _, c := range Codes {
		if c.Code == code {
			return c.Severity
		}
	}
	return ""
}

// The clean tools of the fixture, checked alone, report nothing.
func TestCleanToolsReportNothing(t *testing.T) {
	pkg := *fixture(t)[0]
	keep := []string{"frobnicate", "remove_user", "list_archive", "dropdown_options", "ten"}
	pkg.Tools = slices.DeleteFunc(slices.Clone(pkg.Tools), func(tl *model.Tool) bool { return !slices.Contains(keep, tl.Name) })
	if len(pkg.Tools) != len(keep) {
		t.Fatalf("fixture has %d of the clean tools %v", len(pkg.Tools), keep)
	}
	if got := Check([]*model.Package{&pkg}); len(got) != 0 {
		t.Fatalf("clean tools reported %v", got)
	}
}

// internal/parse refuses tool names outside the portable set, so the name
// check is exercised on a model built by hand: a dot is fine for Gemini and
// MCP and rejected by the others; the fixture's names pass everywhere.
func TestToolNameCheck(t *testing.T) {
	pkg := *fixture(t)[0]
	var frob model.Tool
	for _, tl := range pkg.Tools {
		if tl.Name == "frobnicate" {
			frob = *tl
		}
	}
	dotted := frob
	dotted.Name = "widgets.frobnicate"
	long := frob
	long.Name = strings.Repeat("x", 65)
	pkg.Tools = []*model.Tool{&frob, &dotted, &long}

	got := Check([]*model.Package{&pkg})
	byTool := map[string][]Finding{}
	for _, f := range got {
		if f.Code == CodeProviderRejectsName {
			byTool[f.Tools[0]] = append(byTool[f.Tools[0]], f)
		} else if f.Code != CodeProviderRejectsName {
			t.Errorf("unexpected finding: %s", f)
		}
	}
	if len(byTool["frobnicate"]) != 0 {
		t.Errorf("frobnicate: %v", byTool["frobnicate"])
	}
	d := byTool["widgets.frobnicate"]
	if len(d) != 1 || !slices.Equal(d[0].Providers, []string{"openai", "openai-chat", "anthropic", "mistral"}) || d[0].Severity != Error ||
		!strings.Contains(d[0].Message, "openai: name must match ^[a-zA-Z0-9_-]{1,64}$") {
		t.Errorf("widgets.frobnicate: %v", d)
	}
	l := byTool[long.Name]
	if len(l) != 1 || !slices.Equal(l[0].Providers, []string{"openai", "openai-chat", "anthropic", "mistral", "gemini"}) {
		t.Errorf("65-character name: %v", l)
	}
}

func TestFindingString(t *testing.T) {
	f := Finding{Pos: model.Pos{File: "a/b.go", Line: 3, Col: 7}, Severity: Warning, Code: CodeTooManyParams, Tools: []string{"x", "y"}, Message: "m"}
	if got, want := f.String(), "a/b.go:3:7: warning too_many_params: tools x, y: m"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	f.Tools = []string{"x"}
	if got, want := f.String(), "a/b.go:3:7: warning too_many_params: tool x: m"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	f.Tools = nil
	if got, want := f.String(), "a/b.go:3:7: warning too_many_params: m"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFromProblemsAndSeverity(t *testing.T) {
	fs := FromProblems([]model.Problem{{Pos: model.Pos{File: "x.go", Line: 1, Col: 2}, Message: "bad"}})
	if len(fs) != 1 || fs[0].Severity != Error || fs[0].Code != CodeSourceProblem || fs[0].String() != "x.go:1:2: error source_problem: bad" {
		t.Fatalf("FromProblems: %v", fs)
	}
	for in, want := range map[string]Severity{"error": Error, "WARN": Warning, " warning": Warning, "info": Info} {
		if got, err := ParseSeverity(in); err != nil || got != want {
			t.Errorf("ParseSeverity(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseSeverity("fatal"); err == nil || !strings.Contains(err.Error(), `unknown severity "fatal": expected error, warning or info`) {
		t.Errorf("ParseSeverity(fatal): %v", err)
	}
	if !(Error.Rank() > Warning.Rank() && Warning.Rank() > Info.Rank() && Info.Rank() > Severity("x").Rank()) {
		t.Error("ranks out of order")
	}
}

// A problem atpgen reports while generating becomes a generate_problem error
// at its position.
func TestGenerateProblem(t *testing.T) {
	pkg := *fixture(t)[0]
	var frob model.Tool
	for _, tl := range pkg.Tools {
		if tl.Name == "frobnicate" {
			frob = *tl
		}
	}
	field := *frob.Fields[0]
	field.Constraints.Default = `volume` // not JSON: strings need quotes
	frob.Fields = []*model.Field{&field}
	pkg.Tools = []*model.Tool{&frob}
	got := Check([]*model.Package{&pkg})
	if len(got) != 1 || got[0].Code != CodeGenerateProblem || got[0].Severity != Error || got[0].Pos != field.Pos ||
		!strings.Contains(got[0].Message, "default volume of knob is not a JSON value") {
		t.Fatalf("got %v", got)
	}
}
