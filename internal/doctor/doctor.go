// Package doctor checks the tools of Go packages for what makes them hard for
// a model to use or impossible for a provider to take: missing or short
// descriptions, destructive-sounding tools without the destructive flag,
// tools with too many parameters, names a provider rejects, and schemas a
// provider cannot take or takes only with material changes. It works on
// internal/model (what internal/parse loads) and the canonical schemas gen
// writes, so it sees exactly what atpgen would generate.
//
// Every finding has a code, a severity and the source position of what it is
// about. The severities mean:
//
//   - error: the tool is broken for a model or a provider: no description at
//     all (the model has only the name to decide when to call it), a name a
//     provider rejects, a schema a provider cannot take.
//   - warning: the tool works but a model will use it worse than it could:
//     a terse description, a destructive tool hosts will not ask about,
//     too many parameters, a constraint a provider drops so the model never
//     sees it, OpenAI falling back from strict mode.
//   - info: worth knowing, nothing to fix: a constraint a provider moves into
//     the description, Gemini's JSON Schema form being used.
package doctor

import (
	"cmp"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/atpgo/atp/internal/gen"
	"github.com/atpgo/atp/internal/model"
	"github.com/atpgo/atp/internal/parse"
	"github.com/atpgo/atp/provider"
)

// Severity is how bad a finding is.
type Severity string

const (
	Error   Severity = "error"
	Warning Severity = "warning"
	Info    Severity = "info"
)

// Rank orders severities: Error is 2, Warning 1, Info 0, anything else -1.
func (s Severity) Rank() int {
	switch s {
	case Error:
		return 2
	case Warning:
		return 1
	case Info:
		return 0
	}
	return -1
}

// ParseSeverity accepts "error", "warning" (or "warn") and "info".
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "error":
		return Error, nil
	case "warning", "warn":
		return Warning, nil
	case "info":
		return Info, nil
	}
	return "", fmt.Errorf("unknown severity %q: expected error, warning or info", s)
}

// The finding codes.
const (
	CodeSourceProblem          = "source_problem"           // error: the package does not load or parse (internal/parse)
	CodeGenerateProblem        = "generate_problem"         // error: atpgen cannot generate the tool (gen)
	CodeMissingToolDescription = "missing_tool_description" // error
	CodeShortToolDescription   = "short_tool_description"   // warning
	CodeMissingParamDesc       = "missing_param_description"
	CodeShortParamDesc         = "short_param_description"
	CodeMissingDestructive     = "missing_destructive_hint"
	CodeTooManyParams          = "too_many_params"
	CodeProviderRejectsName    = "provider_rejects_name"
	CodeProviderRejectsProp    = "provider_rejects_property_name"
	CodeProviderRejectsSchema  = "provider_rejects_schema"
	CodeStrictDowngrade        = "provider_strict_downgrade"
	CodeSchemaFallback         = "provider_schema_fallback"
	CodeDropsConstraint        = "provider_drops_constraint"
	CodeDescribesConstraint    = "provider_describes_constraint"
	CodeTruncatesDescription   = "provider_truncates_description"
)

// Codes lists every code with its severity, in the order the checks run.
var Codes = []struct {
	Code     string
	Severity Severity
}{
	{CodeSourceProblem, Error},
	{CodeGenerateProblem, Error},
	{CodeMissingToolDescription, Error},
	{CodeShortToolDescription, Warning},
	{CodeMissingParamDesc, Warning},
	{CodeShortParamDesc, Info},
	{CodeMissingDestructive, Warning},
	{CodeTooManyParams, Warning},
	{CodeProviderRejectsName, Error},
	{CodeProviderRejectsProp, Warning},
	{CodeProviderRejectsSchema, Error},
	{CodeStrictDowngrade, Warning},
	{CodeSchemaFallback, Info},
	{CodeDropsConstraint, Warning},
	{CodeDescribesConstraint, Info},
	{CodeTruncatesDescription, Warning},
}

// Thresholds of the checks.
const (
	// MinDescription is the length (in characters) under which a
	// description is short: "Gets it." says nothing a name does not.
	MinDescription = 10
	// MaxParams is the most top-level parameters a tool may take before
	// too_many_params: models fill large argument lists less reliably, and
	// Platools, the closest peer, draws the line at the same place.
	MaxParams = 10
)

// destructiveWords are the words of a tool name that suggest it destroys or
// irreversibly changes something.
var destructiveWords = []string{
	"archive", "cancel", "clear", "deactivate", "delete", "destroy", "drop", "erase", "expunge",
	"kill", "overwrite", "purge", "remove", "reset", "revoke", "terminate", "truncate",
	"unlink", "unsubscribe", "wipe",
}

// geminiPropertyName is Gemini's rule for the property names of
// FunctionDeclaration.parameters (see Sources in package provider's doc).
var geminiPropertyName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Finding is one thing doctor found.
type Finding struct {
	Pos      model.Pos `json:"pos"`
	Severity Severity  `json:"severity"`
	Code     string    `json:"code"`
	// Tools names the tools the finding concerns (several when they share
	// the type the finding is about); empty for a package-level problem.
	Tools []string `json:"tools,omitempty"`
	// Providers names the providers concerned, for the provider_* codes.
	Providers []string `json:"providers,omitempty"`
	Message   string   `json:"message"`
}

// String is "path:line:col: severity code: message", the message prefixed
// with the tools it concerns.
func (f Finding) String() string {
	var b strings.Builder
	b.WriteString(f.Pos.String())
	b.WriteString(": ")
	b.WriteString(string(f.Severity))
	b.WriteByte(' ')
	b.WriteString(f.Code)
	b.WriteString(": ")
	switch len(f.Tools) {
	case 0:
	case 1:
		b.WriteString("tool " + f.Tools[0] + ": ")
	default:
		b.WriteString("tools " + strings.Join(f.Tools, ", ") + ": ")
	}
	b.WriteString(f.Message)
	return b.String()
}

// FromProblems turns load problems (internal/parse) into source_problem
// errors.
func FromProblems(probs []model.Problem) []Finding {
	out := make([]Finding, 0, len(probs))
	for _, p := range probs {
		out = append(out, Finding{Pos: p.Pos, Severity: Error, Code: CodeSourceProblem, Message: p.Message})
	}
	return out
}

// Check runs every check on the tools of pkgs and returns the findings sorted
// by position. A finding about a type that several tools share is reported
// once, naming all of them.
func Check(pkgs []*model.Package) []Finding {
	var c checker
	for _, pkg := range pkgs {
		if pkg == nil {
			continue
		}
		_, probs := gen.Generate(pkg)
		for _, p := range probs {
			c.add(Finding{Pos: p.Pos, Severity: Error, Code: CodeGenerateProblem, Message: p.Message})
		}
		for _, t := range Tools(pkg) {
			c.tool(pkg, t)
		}
	}
	return c.result()
}

// Tools returns the tools of pkg: its functions, then its methods, receiver
// by receiver.
func Tools(pkg *model.Package) []*model.Tool {
	tools := slices.Clone(pkg.Tools)
	for _, r := range pkg.Receivers {
		tools = append(tools, r.Tools...)
	}
	return tools
}

// Sort sorts findings by position, then severity (worst first), code and
// message.
func Sort(fs []Finding) {
	slices.SortStableFunc(fs, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col),
			cmp.Compare(b.Severity.Rank(), a.Severity.Rank()),
			cmp.Compare(a.Code, b.Code),
			cmp.Compare(a.Message, b.Message),
		)
	})
}

type checker struct {
	findings []Finding
}

func (c *checker) add(f Finding) { c.findings = append(c.findings, f) }

// result merges the findings that differ only by tool and sorts them.
func (c *checker) result() []Finding {
	type key struct {
		pos     model.Pos
		code    string
		message string
	}
	index := map[key]int{}
	var out []Finding
	for _, f := range c.findings {
		k := key{f.Pos, f.Code, f.Message}
		if i, ok := index[k]; ok {
			for _, t := range f.Tools {
				if !slices.Contains(out[i].Tools, t) {
					out[i].Tools = append(out[i].Tools, t)
				}
			}
			continue
		}
		index[k] = len(out)
		out = append(out, f)
	}
	for i := range out {
		slices.Sort(out[i].Tools)
	}
	Sort(out)
	return out
}

// tool runs the checks of one tool.
func (c *checker) tool(pkg *model.Package, t *model.Tool) {
	at := func(pos model.Pos, sev Severity, code, format string, args ...any) Finding {
		return Finding{Pos: pos, Severity: sev, Code: code, Tools: []string{t.Name}, Message: fmt.Sprintf(format, args...)}
	}
	fn := t.GoName
	if t.Receiver != "" {
		fn = t.Receiver + "." + t.GoName
	}

	// Descriptions: a model chooses tools by them.
	switch desc := strings.TrimSpace(t.Description); {
	case desc == "":
		c.add(at(t.Pos, Error, CodeMissingToolDescription,
			"no description: models choose tools by their descriptions; write a doc comment on %s saying what it does and when to use it", fn))
	case utf8.RuneCountInString(desc) < MinDescription:
		c.add(at(t.Pos, Warning, CodeShortToolDescription,
			"description %q is shorter than %d characters: say what the tool does, what it returns and when to use it", desc, MinDescription))
	}

	// Destructive-sounding names. A readonly tool has said it only reads,
	// so "list_archive" is not flagged.
	if !t.Destructive && !t.ReadOnly {
		if w := destructiveWord(t.Name, t.GoName); w != "" {
			c.add(at(t.Pos, Warning, CodeMissingDestructive,
				"the name sounds destructive (%q) but the tool is not marked destructive: add destructive to its //atp:tool line so that hosts ask before running it (or readonly if it only reads)", w))
		}
	}

	if n := len(t.Fields); n > MaxParams {
		c.add(at(t.Pos, Warning, CodeTooManyParams,
			"takes %d parameters (more than %d): models fill long argument lists poorly; split the tool or group related options in nested objects", n, MaxParams))
	}

	c.toolName(t, at)

	in, err := gen.InputSchema(pkg, t)
	if err != nil {
		return // gen.Generate reported why, with positions
	}
	out, err := gen.OutputSchema(pkg, t)
	if err != nil {
		return
	}
	r := resolver{pkg: pkg, t: t}
	var tree any
	if err := json.Unmarshal(in, &tree); err != nil {
		c.add(at(t.Pos, Error, CodeGenerateProblem, "internal error: the generated input schema is not JSON: %v", err))
		return
	}
	badNames := map[string]bool{}
	c.properties(tree, "", "", r, at, badNames)
	c.providers(t, in, out, r, at, badNames)
}

// destructiveWord returns the first destructive word among the words of the
// given names ("delete_user", "DeleteUser"), or "".
func destructiveWord(names ...string) string {
	for _, n := range names {
		for _, w := range strings.FieldsFunc(parse.SnakeCase(n), func(r rune) bool { return r == '_' || r == '-' }) {
			if slices.Contains(destructiveWords, strings.ToLower(w)) {
				return strings.ToLower(w)
			}
		}
	}
	return ""
}

// toolName reports the providers that reject the tool's name. internal/parse
// already refuses names outside the portable set, so this fires only for
// models built some other way; it asks provider, the code that formats tool
// definitions, rather than keeping its own copy of the rules.
func (c *checker) toolName(t *model.Tool, at func(model.Pos, Severity, string, string, ...any) Finding) {
	var rejecting []string
	var why []string
	for _, p := range provider.Names() {
		if _, _, err := provider.FormatTool(p, provider.Tool{Name: t.Name}); err != nil {
			rejecting = append(rejecting, p)
			msg := err.Error()
			if i := strings.Index(msg, "name must"); i >= 0 {
				msg = msg[i:]
			}
			msg = p + ": " + msg
			why = append(why, msg)
		}
	}
	if len(rejecting) > 0 {
		f := at(t.Pos, Error, CodeProviderRejectsName, "name %q is rejected by %s (%s): use 1 to 64 letters, digits, _ or -, starting with a letter or _",
			t.Name, strings.Join(rejecting, ", "), strings.Join(why, "; "))
		f.Providers = rejecting
		c.add(f)
	}
}

// properties walks a canonical input schema and checks each property's
// description and name. path is the dotted property path shown to people;
// badNames collects the pointers of properties whose names Gemini rejects.
func (c *checker) properties(node any, ptr, path string, r resolver, at func(model.Pos, Severity, string, string, ...any) Finding, badNames map[string]bool) {
	obj, ok := node.(map[string]any)
	if !ok {
		return
	}
	if props, ok := obj["properties"].(map[string]any); ok {
		for _, name := range sortedKeys(props) {
			p := props[name]
			pptr := ptr + "/properties/" + escapePointer(name)
			display := name
			if path != "" {
				display = path + "." + name
			}
			pos := r.pos("input", pptr)
			desc := ""
			if m, ok := p.(map[string]any); ok {
				desc, _ = m["description"].(string)
			}
			switch desc = strings.TrimSpace(desc); {
			case desc == "" && path == "" && r.t.Input == model.InputPlain:
				c.add(at(pos, Warning, CodeMissingParamDesc,
					"parameter %s has no description: add a line \"- %s: <what it is>\" to the doc comment so that the model knows what to pass", name, name))
			case desc == "":
				c.add(at(pos, Warning, CodeMissingParamDesc,
					"property %s has no description: write a doc comment on its field so that the model knows what to pass", display))
			case utf8.RuneCountInString(desc) < MinDescription:
				c.add(at(pos, Info, CodeShortParamDesc,
					"property %s: description %q is shorter than %d characters: say what the value means, its unit or format, with an example", display, desc, MinDescription))
			}
			if !geminiPropertyName.MatchString(name) {
				badNames[pptr] = true
				f := at(pos, Warning, CodeProviderRejectsProp,
					"property name %q: Gemini's parameters take only names matching %s, so the tool goes to Gemini as parametersJsonSchema, whose rules are not documented; rename it (json:\"...\") to be safe",
					name, geminiPropertyName)
				f.Providers = []string{provider.Gemini}
				c.add(f)
			}
			c.properties(p, pptr, display, r, at, badNames)
		}
	}
	for _, k := range []string{"items", "additionalProperties", "not", "if", "then", "else", "contains"} {
		if v, ok := obj[k]; ok {
			sub := path
			if k == "items" || k == "additionalProperties" {
				sub += "[]"
			}
			c.properties(v, ptr+"/"+k, sub, r, at, badNames)
		}
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf", "prefixItems"} {
		if list, ok := obj[k].([]any); ok {
			for i, v := range list {
				c.properties(v, fmt.Sprintf("%s/%s/%d", ptr, k, i), path, r, at, badNames)
			}
		}
	}
	for _, k := range []string{"$defs", "definitions"} {
		if defs, ok := obj[k].(map[string]any); ok {
			for _, name := range sortedKeys(defs) {
				c.properties(defs[name], ptr+"/"+k+"/"+escapePointer(name), name, r, at, badNames)
			}
		}
	}
}

// providers formats the tool for every provider and reports what a provider
// rejects, or changes in a way that matters.
//
// Severity of a provider.Change:
//   - conversion error: error (the provider cannot take the tool).
//   - Downgraded, OpenAI: warning (no strict mode: the model's arguments are
//     no longer guaranteed to match the schema). Gemini: info (its JSON
//     Schema form takes the schema as it is).
//   - Dropped: warning (the model neither sees nor is held to the
//     constraint: calls that break it fail local validation and cost a
//     round trip). Except additionalProperties:false, which only Gemini's
//     parameters lack and which local validation enforces: every tool would
//     report it.
//   - Dropped tool description (OpenAI Chat's 1024 characters): warning.
//   - Described: info (the model still reads the constraint).
//   - Stripped, Rewritten, Added and anything about the output schema: not
//     reported; the meaning is unchanged for the model.
func (c *checker) providers(t *model.Tool, in, out json.RawMessage, r resolver, at func(model.Pos, Severity, string, string, ...any) Finding, badNames map[string]bool) {
	type key struct {
		code string
		pos  model.Pos
		msg  string
	}
	merged := map[key]*Finding{}
	var order []key
	report := func(p string, pos model.Pos, sev Severity, code, msg string) {
		k := key{code, pos, msg}
		if f, ok := merged[k]; ok {
			f.Providers = append(f.Providers, p)
			return
		}
		f := at(pos, sev, code, "%s", msg)
		f.Providers = []string{p}
		merged[k] = &f
		order = append(order, k)
	}
	for _, p := range provider.Names() {
		name := t.Name
		if _, _, err := provider.FormatTool(p, provider.Tool{Name: name}); err != nil {
			name = "tool" // the name is reported on its own; check the rest
		}
		_, changes, err := provider.FormatTool(p, provider.Tool{
			Name: name, Description: t.Description, InputSchema: in, OutputSchema: out,
			ReadOnly: t.ReadOnly, Destructive: t.Destructive, Idempotent: t.Idempotent,
		})
		if err != nil {
			// The error names the provider and the tool, which the finding
			// already does: keep what went wrong.
			msg := strings.TrimPrefix(err.Error(), "provider: "+p+": ")
			msg = strings.TrimPrefix(msg, fmt.Sprintf("tool %q: ", name))
			report(p, t.Pos, Error, CodeProviderRejectsSchema, "cannot take the tool: "+msg)
			continue
		}
		for _, ch := range changes {
			if ch.In == "output" {
				continue
			}
			pos := t.Pos
			if ch.In == "input" {
				pos = r.pos("input", ch.Pointer)
			}
			switch {
			case ch.Action == provider.Downgraded && badNames[ch.Pointer]:
				// Already reported as provider_rejects_property_name.
			case ch.Action == provider.Downgraded && (p == provider.OpenAI || p == provider.OpenAIChat):
				report(p, pos, Warning, CodeStrictDowngrade,
					"strict mode is off for this tool, so the model's arguments are not guaranteed to match the schema: "+ch.String())
			case ch.Action == provider.Downgraded:
				report(p, pos, Info, CodeSchemaFallback, ch.String())
			case ch.Action == provider.Dropped && ch.In == "tool":
				report(p, pos, Warning, CodeTruncatesDescription, ch.String())
			case ch.Action == provider.Dropped && ch.Keyword == "additionalProperties":
			case ch.Action == provider.Dropped:
				report(p, pos, Warning, CodeDropsConstraint, "the model does not see this constraint: "+ch.String())
			case ch.Action == provider.Described:
				report(p, pos, Info, CodeDescribesConstraint, ch.String())
			}
		}
	}
	for _, k := range order {
		f := merged[k]
		f.Message = strings.Join(f.Providers, ", ") + ": " + f.Message
		c.add(*f)
	}
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func escapePointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func unescapePointer(s string) string {
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
}
