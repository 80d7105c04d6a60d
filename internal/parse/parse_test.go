package parse

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/internal/model"
)

func TestSnakeCase(t *testing.T) {
	for in, want := range map[string]string{
		"CreateCompany": "create_company",
		"GetHTTPStatus": "get_http_status",
		"ID":            "id",
		"ListV2Items":   "list_v2_items",
		"userID":        "user_id",
		"HTTPServer":    "http_server",
		"Base64Encode":  "base64_encode",
		"already_snake": "already_snake",
		"My_Func":       "my_func",
		"x":             "x",
		"":              "",
	} {
		if got := SnakeCase(in); got != want {
			t.Errorf("SnakeCase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNearMissMessage(t *testing.T) {
	for in, want := range map[string]string{
		"// atp:tool":     `"// atp:tool" is not a directive: write //atp:tool with no space after //`,
		"//atp: tool x=1": `"//atp: tool" is not a directive: write //atp:tool with no space after the colon`,
		"//atp:tools":     `unknown directive "//atp:tools": did you mean //atp:tool?`,
		"//atp:Tool":      `"//atp:Tool" is not a directive: write //atp:tool in lower case`,
		"//ATP:schema {}": `"//ATP:schema" is not a directive: write //atp:schema in lower case`,
		"//atp:toolname":  `unknown directive "//atp:toolname": did you mean //atp:tool?`,
		"//atp:schemaa":   `unknown directive "//atp:schemaa": did you mean //atp:schema?`,
		"//atp:x":         `unknown directive "//atp:x": the atp directives are //atp:tool (on a func or method), //atp:constructor (on a func) and //atp:schema (on a type)`,
		"// atp : tol":    `"// atp : tol" is not a directive: did you mean //atp:tool?`,
	} {
		if got := nearMissMessage(in); got != want {
			t.Errorf("nearMissMessage(%q)\n got %s\nwant %s", in, got, want)
		}
	}
	// Prose that mentions ATP is not a near-miss; typos of the directive are.
	for line, want := range map[string]bool{
		"// ATP: the Agent Tool Protocol": false,
		"// atp is fine":                  false,
		"// see //atp:tool":               false,
		"// atp:tool":                     true,
		"//ATP:tool":                      true,
		"// ATP:tool":                     true,
		"//atp :tool":                     true,
	} {
		if got := looksLikeDirective.MatchString(line); got != want {
			t.Errorf("looksLikeDirective(%q) = %v, want %v", line, got, want)
		}
	}
}

func TestParsePosString(t *testing.T) {
	for in, want := range map[string][3]any{
		"/a/b.go:3:4":    {"/a/b.go", 3, 4},
		"/a/b.go:3":      {"/a/b.go", 3, 0},
		"C:\\x.go:1:2":   {"C:\\x.go", 1, 2},
		"":               {"", 0, 0},
		"-":              {"", 0, 0},
		"dir/with:colon": {"dir/with:colon", 0, 0},
	} {
		p := parsePosString(in)
		if got := [3]any{p.Filename, p.Line, p.Column}; got != want {
			t.Errorf("parsePosString(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSplitTagItems(t *testing.T) {
	got := splitTagItems(`pattern=^a\,b$,minLength=1,,enum=x`)
	want := []tagItem{{`pattern=^a,b$`, 0}, {"minLength=1", 15}, {"", 27}, {"enum=x", 28}}
	if !slices.Equal(got, want) {
		t.Errorf("splitTagItems = %+v, want %+v", got, want)
	}
}

func TestParseStructTag(t *testing.T) {
	kvs, err := parseStructTag(`json:"a,omitempty"  jsonschema:"minimum=1"`)
	if err != nil {
		t.Fatal(err)
	}
	want := []tagKV{{"json", "a,omitempty", 6, true}, {"jsonschema", "minimum=1", 32, true}}
	if !slices.Equal(kvs, want) {
		t.Errorf("parseStructTag = %+v, want %+v", kvs, want)
	}
	for _, bad := range []string{`json:"x`, `json:x`, `json "x"`, `:"x"`} {
		if _, err := parseStructTag(bad); err == nil {
			t.Errorf("parseStructTag(%q) succeeded, want an error", bad)
		}
	}
}

// tool finds a tool by name among the package's functions and receivers.
func tool(t *testing.T, p *model.Package, name string) *model.Tool {
	t.Helper()
	if p == nil {
		t.Fatalf("package not loaded")
	}
	all := slices.Clone(p.Tools)
	for _, r := range p.Receivers {
		all = append(all, r.Tools...)
	}
	for _, tl := range all {
		if tl.Name == name {
			return tl
		}
	}
	t.Fatalf("no tool %q in %s", name, p.Path)
	return nil
}

func toolNames(p *model.Package) []string {
	var names []string
	for _, t := range p.Tools {
		names = append(names, t.Name)
	}
	return names
}

func pkg(t *testing.T, path string) *model.Package {
	t.Helper()
	_, pkgs, _ := loadFixture(t)
	p := pkgs[testModulePath+"/"+path]
	if p == nil {
		t.Fatalf("package %s not loaded", path)
	}
	return p
}

func TestDirectives(t *testing.T) {
	_, _, problems := loadFixture(t)
	checkWant(t, "directives", problems)

	opts := pkg(t, "directives/opts")
	if got := toolNames(opts); !slices.Equal(got, []string{"a-b_C9", "auth_defaults", "quoted_name"}) {
		t.Errorf("tools = %v", got)
	}
	q := tool(t, opts, "quoted_name")
	if q.GoName != "Quoted" || q.Timeout != 90*time.Second || q.Description != "Quoted takes a quoted name." {
		t.Errorf("quoted_name = %+v", q)
	}
	a := tool(t, opts, "auth_defaults")
	if a.AuthProvider != "hubspot" || a.AuthType != "OAuth2" || a.AuthWith != "access_token" || !a.NeedsAuthToken {
		t.Errorf("auth defaults = %q %q %q %v", a.AuthProvider, a.AuthType, a.AuthWith, a.NeedsAuthToken)
	}
	f := tool(t, opts, "a-b_C9")
	if !f.ReadOnly || !f.Destructive || !f.Idempotent || f.NeedsAuthToken || f.AuthType != "" {
		t.Errorf("flags = %+v", f)
	}
	// Tools with problems are left out; the first of two duplicates stays.
	bad := pkg(t, "directives/bad")
	if got := toolNames(bad); !slices.Equal(got, []string{"dup", "ping"}) {
		t.Errorf("tools without problems = %v, want [dup ping]", got)
	}
	if d := tool(t, bad, "dup"); d.GoName != "Dup1" {
		t.Errorf("dup is %s, want Dup1", d.GoName)
	}
	// //atp:schema on a type in a parenthesized group.
	schema := pkg(t, "directives/schema")
	e := schema.Named[testModulePath+"/directives/schema.E"]
	if e == nil || e.SchemaJSON != `{"type":"string","format":"email"}` || e.Doc != "E is in a group." {
		t.Errorf("E = %+v", e)
	}
}

func TestSignatures(t *testing.T) {
	_, _, problems := loadFixture(t)
	checkWant(t, "signatures", problems)

	ok := pkg(t, "signatures/ok")
	in := testModulePath + "/signatures/ok.In"
	byValue := tool(t, ok, "by_value")
	if byValue.Input != model.InputStruct || byValue.InputType.Kind != model.KindNamed || byValue.InputType.Ref != in {
		t.Errorf("by_value input = %s %+v", byValue.Input, byValue.InputType)
	}
	if len(byValue.Fields) != 1 || byValue.Fields[0].JSONName != "A" ||
		byValue.Fields[0] != ok.Named[in].Underlying.Fields[0] {
		t.Errorf("by_value fields are not the struct's: %+v", byValue.Fields)
	}
	if byValue.Result == nil || byValue.Result.Ref != in || byValue.ReturnsError {
		t.Errorf("by_value result = %+v, returns error %v", byValue.Result, byValue.ReturnsError)
	}
	byPtr := tool(t, ok, "by_pointer")
	if byPtr.Input != model.InputStructPtr || byPtr.InputType.Kind != model.KindPointer ||
		byPtr.InputType.Elem.Ref != testModulePath+"/signatures/ok.Alias" || byPtr.Result != nil || !byPtr.ReturnsError {
		t.Errorf("by_pointer = %s %+v", byPtr.Input, byPtr.InputType)
	}
	unnamed := tool(t, ok, "unnamed")
	if unnamed.Input != model.InputStruct || unnamed.Args[0].Kind != model.ArgContext || unnamed.Args[1].Kind != model.ArgInput {
		t.Errorf("unnamed = %s %+v", unnamed.Input, unnamed.Args)
	}

	inj := tool(t, ok, "injected_anywhere")
	var kinds []model.ArgKind
	for _, a := range inj.Args {
		kinds = append(kinds, a.Kind)
	}
	wantKinds := []model.ArgKind{model.ArgContext, model.ArgParam, model.ArgCall, model.ArgParam, model.ArgAuthToken}
	if !slices.Equal(kinds, wantKinds) || inj.Args[1].Field != 0 || inj.Args[3].Field != 1 || !inj.NeedsAuthToken {
		t.Errorf("injected_anywhere args = %+v", inj.Args)
	}
	if inj.Input != model.InputPlain || len(inj.Fields) != 2 || inj.Fields[1].JSONName != "b" || !inj.Fields[1].Required {
		t.Errorf("injected_anywhere fields = %+v", inj.Fields)
	}
	if got := inj.Args[4].Pos.String(); got != "signatures/ok/ok.go:25:81" {
		t.Errorf("tok position = %s", got)
	}

	only := tool(t, ok, "only_injected")
	if only.Input != model.InputNone || only.Result.Kind != model.KindInt || !only.ReturnsError || !only.NeedsAuthToken {
		t.Errorf("only_injected = %+v", only)
	}
	two := tool(t, ok, "two_structs")
	if two.Input != model.InputPlain || len(two.Fields) != 2 || two.Fields[0].Type.Kind != model.KindNamed ||
		two.Fields[1].Type.Kind != model.KindPointer || two.Fields[1].Required {
		t.Errorf("two_structs = %s %+v", two.Input, two.Fields)
	}
	anon := tool(t, ok, "anon_struct")
	if anon.Input != model.InputPlain || anon.Fields[0].Type.Kind != model.KindStruct {
		t.Errorf("anon_struct = %s %+v", anon.Input, anon.Fields)
	}
	timePlain := tool(t, pkg(t, "signatures/bad"), "time_is_plain")
	if timePlain.Input != model.InputPlain || timePlain.Fields[0].Type.Kind != model.KindTime {
		t.Errorf("time_is_plain = %s %+v", timePlain.Input, timePlain.Fields)
	}
}

func TestTypes(t *testing.T) {
	_, _, problems := loadFixture(t)
	checkWant(t, "types", problems)

	kinds := pkg(t, "types/kinds")
	use := tool(t, kinds, "use")
	got := make(map[string]string)
	for _, f := range use.Fields {
		b, _ := json.Marshal(f.Type)
		got[f.JSONName] = string(b)
	}
	for name, want := range map[string]string{
		"B":      `{"kind":"bool"}`,
		"I":      `{"kind":"int"}`,
		"I8":     `{"kind":"int","bits":8}`,
		"I16":    `{"kind":"int","bits":16}`,
		"I32":    `{"kind":"int","bits":32}`,
		"I64":    `{"kind":"int","bits":64}`,
		"U":      `{"kind":"uint"}`,
		"U8":     `{"kind":"uint","bits":8}`,
		"U16":    `{"kind":"uint","bits":16}`,
		"U32":    `{"kind":"uint","bits":32}`,
		"U64":    `{"kind":"uint","bits":64}`,
		"F32":    `{"kind":"float","bits":32}`,
		"F64":    `{"kind":"float","bits":64}`,
		"S":      `{"kind":"string"}`,
		"Bs":     `{"kind":"bytes"}`,
		"U8s":    `{"kind":"bytes"}`,
		"T":      `{"kind":"time"}`,
		"D":      `{"kind":"duration"}`,
		"A":      `{"kind":"any"}`,
		"E":      `{"kind":"any"}`,
		"Raw":    `{"kind":"raw"}`,
		"Sl":     `{"kind":"slice","elem":{"kind":"string"}}`,
		"Arr":    `{"kind":"array","elem":{"kind":"int"},"len":2}`,
		"M":      `{"kind":"map","elem":{"kind":"int"},"key":{"kind":"string"}}`,
		"MK":     `{"kind":"map","elem":{"kind":"int"},"key":{"kind":"named","ref":"example.com/m/types/kinds.Key"}}`,
		"P":      `{"kind":"pointer","elem":{"kind":"int"}}`,
		"PP":     `{"kind":"pointer","elem":{"kind":"pointer","elem":{"kind":"int"}}}`,
		"St":     `{"kind":"struct","fields":[{"pos":{"file":"types/kinds/kinds.go","line":39,"col":15},"go_path":["X"],"json_name":"X","type":{"kind":"int"},"required":true,"constraints":{}}]}`,
		"Addr":   `{"kind":"named","ref":"net/netip.Addr"}`,
		"Cookie": `{"kind":"named","ref":"net/http.Cookie"}`,
		"R":      `{"kind":"int","bits":32}`,
		"By":     `{"kind":"uint","bits":8}`,
	} {
		if got[name] != want {
			t.Errorf("field %s: type %s, want %s", name, got[name], want)
		}
	}
	if len(got) != 32 {
		t.Errorf("%d fields, want 32", len(got))
	}
	for _, f := range use.Fields {
		if wantReq := f.Type.Kind != model.KindPointer; f.Required != wantReq {
			t.Errorf("field %s: required %v, want %v", f.JSONName, f.Required, wantReq)
		}
	}

	// Types of dependencies: comments, exact positions and enums come from
	// their source; methods decide how they are decoded.
	addr := kinds.Named["net/netip.Addr"]
	if !addr.TextUnmarshaler || addr.JSONUnmarshaler || !addr.TextMarshaler || addr.Underlying.Kind != model.KindAny {
		t.Errorf("netip.Addr = %+v", addr)
	}
	if !strings.HasPrefix(addr.Doc, "Addr represents an IPv4 or IPv6 address") {
		t.Errorf("netip.Addr doc = %q", addr.Doc)
	}
	cookie := kinds.Named["net/http.Cookie"]
	if cookie == nil || cookie.Underlying.Kind != model.KindStruct || !filepath.IsAbs(cookie.Pos.File) || cookie.Pos.Col != 6 {
		t.Fatalf("http.Cookie = %+v", cookie)
	}
	sameSite := kinds.Named["net/http.SameSite"]
	var enum []string
	for _, e := range sameSite.Enum {
		enum = append(enum, e.GoName+"="+e.Value)
	}
	if want := []string{"SameSiteDefaultMode=1", "SameSiteLaxMode=2", "SameSiteStrictMode=3", "SameSiteNoneMode=4"}; !slices.Equal(enum, want) {
		t.Errorf("http.SameSite enum = %v, want %v", enum, want)
	}

	recursive := func(name string) bool { return kinds.Named[testModulePath+"/types/kinds."+name].Recursive }
	for name, want := range map[string]bool{"Tree": true, "Ping": true, "Pong": true, "Leaf": false, "Twice": false, "Kinds": false} {
		if recursive(name) != want {
			t.Errorf("%s: recursive %v, want %v", name, !want, want)
		}
	}
	// A result type that marshals itself is not analysed field by field.
	opaque := kinds.Named[testModulePath+"/types/kinds.Opaque"]
	if !opaque.JSONMarshaler || opaque.Underlying.Kind != model.KindAny || tool(t, kinds, "opaque_result").Result.Kind != model.KindNamed {
		t.Errorf("Opaque = %+v", opaque)
	}
	generic := tool(t, pkg(t, "types/bad"), "generic")
	if generic.InputType.Ref != testModulePath+"/types/bad.Page["+testModulePath+"/types/bad.Item]" ||
		generic.Result.Ref != testModulePath+"/types/bad.Page[int]" {
		t.Errorf("generic: input %+v, result %+v", generic.InputType, generic.Result)
	}
}

func TestTags(t *testing.T) {
	_, _, problems := loadFixture(t)
	checkWant(t, "tags", problems)

	ok := pkg(t, "tags/ok")
	fields := func(typ string) map[string]*model.Field {
		m := make(map[string]*model.Field)
		for _, f := range ok.Named[testModulePath+"/tags/ok."+typ].Underlying.Fields {
			m[f.JSONName] = f
		}
		return m
	}
	c := fields("Constrained")
	constraints := func(name string) string {
		f := c[name]
		if f == nil {
			return "<missing>"
		}
		b, _ := json.Marshal(f.Constraints)
		return string(b)
	}
	for name, want := range map[string]string{
		"name":   `{"title":"The name","description":"Who","min_length":1,"max_length":10,"pattern":"^a,b$","format":"email","enum":["\"a,b\"","\"x\""],"default":"\"x\"","examples":["\"x\""],"deprecated":true,"read_only":true}`,
		"count":  `{"minimum":"0","maximum":"255","exclusive_minimum":"-1","exclusive_maximum":"300","multiple_of":"5","enum":["5","10"],"default":"5","examples":["10"]}`,
		"ratio":  `{"minimum":"-1.5e2","maximum":"0.5","default":"0.25"}`,
		"on":     `{"default":"true","nullable":true}`,
		"when":   `{"default":"\"2024-01-02T15:04:05Z\""}`,
		"wait":   `{"default":"\"1h30m\""}`,
		"data":   `{"default":"\"aGk=\""}`,
		"any":    `{"default":"{\"a\":1,\"b\":[2]}"}`,
		"units":  `{"enum":["\"celsius\""],"default":"\"celsius\""}`,
		"list":   `{"min_items":1,"max_items":3,"unique_items":true,"default":"[1,2]","items":{"minimum":"1"}}`,
		"opt":    `{}`,
		"desc":   `{"description":"from the other tag"}`,
		"quoted": `{"min_length":2}`,
		"-":      `{}`,
	} {
		if got := constraints(name); got != want {
			t.Errorf("%s: constraints\n got %s\nwant %s", name, got, want)
		}
	}
	if len(c) != 14 {
		t.Errorf("Constrained has %d properties, want 14 (Skip is left out)", len(c))
	}
	for name, want := range map[string]bool{"name": false, "count": false, "opt": true, "desc": true, "-": true} {
		if c[name].Required != want {
			t.Errorf("%s: required %v, want %v", name, c[name].Required, want)
		}
	}

	e := ok.Named[testModulePath+"/tags/ok.Embedding"].Underlying.Fields
	var paths []string
	for _, f := range e {
		paths = append(paths, f.JSONName+"="+strings.Join(f.GoPath, "."))
	}
	if want := []string{"id=Base.ID", "Note=Tagged.Note", "name=Name", "named=Named", "visible=hidden.Visible"}; !slices.Equal(paths, want) {
		t.Errorf("Embedding properties = %v, want %v", paths, want)
	}
}

func TestParamDoc(t *testing.T) {
	_, _, problems := loadFixture(t)
	checkWant(t, "paramdoc", problems)

	// Outside a list and before any heading, a line like "Mesage: ..."
	// is prose, typo or not.
	if n := tool(t, pkg(t, "paramdoc/bad"), "note"); !strings.Contains(n.Description, "Mesage: left alone.") {
		t.Errorf("note's description lost its prose: %q", n.Description)
	}

	ok := pkg(t, "paramdoc/ok")
	f := tool(t, ok, "forecast")
	wantDesc := "Forecast tells the weather.\n\n  - unknown: not a parameter, so it stays\n\nThe forecast is free. Some code in backquotes stays: `x`."
	if f.Description != wantDesc {
		t.Errorf("description:\n got %q\nwant %q", f.Description, wantDesc)
	}
	type prop struct {
		doc, constraints string
		required         bool
	}
	got := make(map[string]prop)
	for _, fl := range f.Fields {
		b, _ := json.Marshal(fl.Constraints)
		got[fl.JSONName] = prop{fl.Doc, string(b), fl.Required}
	}
	want := map[string]prop{
		"location": {"the city, or a region", "{}", true},
		"days":     {"how many days", `{"minimum":"1","maximum":"14"}`, true},
		"units":    {"celsius or fahrenheit", `{"enum":["\"celsius\"","\"fahrenheit\""],"default":"\"celsius\""}`, false},
	}
	if len(got) != len(want) {
		t.Errorf("properties = %v", got)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s = %+v, want %+v", name, got[name], w)
		}
	}

	s := tool(t, ok, "snake")
	if s.Description != "Snake documents parameters by their property names, without a heading." ||
		s.Fields[0].Doc != "the user" || s.Fields[1].Doc != "only pretend" {
		t.Errorf("snake = %q %+v %+v", s.Description, s.Fields[0], s.Fields[1])
	}
	h := tool(t, ok, "heading")
	if h.Description != "Parameters:\n\nThe heading stays when no parameter line follows it." {
		t.Errorf("heading description = %q", h.Description)
	}
}

func TestStaleGeneratedFile(t *testing.T) {
	_, pkgs, problems := loadFixture(t)
	// The stale atp_gen.go files and the calls of ATPTools cause no
	// problem; a broken file of another generator and syntax errors do.
	checkWant(t, "stale", problems)

	tools := pkg(t, "stale/tools")
	if got := toolNames(tools); !slices.Equal(got, []string{"ping"}) {
		t.Errorf("functions = %v", got)
	}
	if len(tools.Receivers) != 1 || tools.Receivers[0].TypeName != "Service" || tools.Receivers[0].Tools[0].Name != "hello" ||
		!tools.Receivers[0].Tools[0].PtrReceiver || tools.Receivers[0].Pos.String() != "stale/tools/tools.go:4:6" {
		t.Errorf("receivers = %+v", tools.Receivers)
	}
	notools := pkg(t, "stale/notools")
	if notools.Tools != nil || notools.Receivers != nil || notools.Named != nil || notools.Name != "notools" {
		t.Errorf("a package without tools = %+v", notools)
	}
	if pkgs[testModulePath+"/stale/main"] == nil {
		t.Errorf("the package that calls tools.ATPTools was not loaded")
	}
}

func TestProblemsSortedAndUnique(t *testing.T) {
	_, _, problems := loadFixture(t)
	if len(problems) < 100 {
		t.Fatalf("only %d problems in the fixture", len(problems))
	}
	for i := 1; i < len(problems); i++ {
		a, b := problems[i-1], problems[i]
		if a == b {
			t.Errorf("duplicate problem %s", a)
		}
		if a.Pos.File > b.Pos.File || (a.Pos.File == b.Pos.File && (a.Pos.Line > b.Pos.Line || (a.Pos.Line == b.Pos.Line && a.Pos.Col > b.Pos.Col))) {
			t.Errorf("problems out of order: %s before %s", a, b)
		}
	}
}

// TestRichGolden compares the model of a package using every feature with
// testdata/rich.golden.json.
func TestRichGolden(t *testing.T) {
	dir, _, _ := loadFixture(t)
	p := pkg(t, "rich")
	if p.Dir != filepath.Join(dir, "rich") {
		t.Errorf("Dir = %s", p.Dir)
	}
	scrubbed := *p
	scrubbed.Dir = "$WORK/rich"
	got, err := json.MarshalIndent(&scrubbed, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	golden := filepath.Join("testdata", "rich.golden.json")
	if update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("model of rich differs from %s (ATP_UPDATE=1 rewrites it); got:\n%s", golden, got)
	}
}

// TestLoadDependencyAndPositions loads one package whose input type comes
// from a package that is not loaded from source (export data), from a
// directory that is not the module root.
func TestLoadDependencyAndPositions(t *testing.T) {
	dir, _, _ := loadFixture(t)
	pkgs, problems, err := Load(Config{Dir: filepath.Join(dir, "rich"), Env: testEnv()}, ".", "../stale/syntax")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 2 || pkgs[0].Path != testModulePath+"/rich" {
		t.Fatalf("loaded %d packages", len(pkgs))
	}
	// Positions are relative to Dir when below it, else absolute.
	if got := tool(t, pkgs[0], "create_company").Pos.String(); got != "crm.go:107:6" {
		t.Errorf("create_company at %s", got)
	}
	syntaxFile := filepath.Join(dir, "stale", "syntax", "syntax.go")
	if len(problems) == 0 || problems[0].String() != syntaxFile+":3:14: expected ')', found '{'" {
		t.Errorf("problems = %v", problems)
	}

	addr := pkgs[0].Named[testModulePath+"/rich/shared.Address"]
	if addr == nil || addr.Doc != "Address is declared in another package of the module." || addr.Pos.String() != "shared/shared.go:4:6" {
		t.Fatalf("shared.Address = %+v", addr)
	}
	var props []string
	for _, f := range addr.Underlying.Fields {
		b, _ := json.Marshal(f.Constraints)
		props = append(props, f.Pos.String()+" "+f.JSONName+" "+f.Doc+" "+string(b))
	}
	wantProps := []string{
		`shared/shared.go:6:2 street Street and number. {"min_length":1}`,
		`shared/shared.go:7:2 zip postal code {}`,
		`shared/shared.go:8:2 status  {}`,
	}
	if !slices.Equal(props, wantProps) {
		t.Errorf("shared.Address properties:\n got %q\nwant %q", props, wantProps)
	}
	status := pkgs[0].Named[testModulePath+"/rich/shared.Status"]
	var enum []string
	for _, e := range status.Enum {
		enum = append(enum, e.Pos.String()+" "+e.GoName+"="+e.Value+" "+e.Doc)
	}
	wantEnum := []string{
		`shared/shared.go:18:2 Active="active" Active is in use.`,
		`shared/shared.go:19:2 Inactive="inactive" Inactive is retired.`,
	}
	if !slices.Equal(enum, wantEnum) {
		t.Errorf("shared.Status enum:\n got %q\nwant %q", enum, wantEnum)
	}
	if want := `{"type":"string","enum":["active","inactive"]}`; status.SchemaJSON != want || status.Doc != "Status of an address." {
		t.Errorf("shared.Status schema %s, doc %q", status.SchemaJSON, status.Doc)
	}
}

func TestLoadErrors(t *testing.T) {
	_, _, _ = loadFixture(t) // builds the test module
	empty := t.TempDir()
	if _, _, err := Load(Config{Dir: empty, Env: testEnv()}); err == nil {
		t.Errorf("Load in a directory without go.mod succeeded")
	}
	if _, _, err := Load(Config{Dir: fixture.dir, Env: testEnv()}, "./nothing/..."); err == nil || !strings.Contains(err.Error(), "./nothing/") {
		t.Errorf("Load of a pattern naming no directory: err = %v", err)
	}
	if _, _, err := Load(Config{Dir: fixture.dir, Env: testEnv()}, "./stale"); err == nil || !strings.Contains(err.Error(), "no Go files") {
		t.Errorf("Load of a directory without Go files: err = %v", err)
	}
	if err := os.WriteFile(filepath.Join(empty, "go.mod"), []byte("module example.com/empty\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Load(Config{Dir: empty, Env: testEnv()}, "./..."); err == nil || !strings.Contains(err.Error(), "no packages matched") {
		t.Errorf("Load of ./... in an empty module: err = %v", err)
	}
}

func TestConstructors(t *testing.T) {
	_, _, problems := loadFixture(t)
	checkWant(t, "constructors", problems)

	ok := pkg(t, "constructors/ok")
	byType := map[string]*model.Constructor{}
	for _, r := range ok.Receivers {
		byType[r.TypeName] = r.Constructor
	}
	if c := byType["Store"]; c == nil || c.GoName != "NewStore" || c.TakesContext || c.ReturnsError || c.Pos.Line != 14 {
		t.Errorf("Store's constructor = %+v", c)
	}
	if c := byType["Client"]; c == nil || c.GoName != "Dial" || !c.TakesContext || !c.ReturnsError {
		t.Errorf("Client's constructor = %+v", c)
	}
	if c, found := byType["Plain"]; !found || c != nil {
		t.Errorf("Plain: found %v, constructor %+v; want a receiver without one", found, c)
	}
	// The bad package keeps its receiver, with the one good constructor.
	bad := pkg(t, "constructors/bad")
	if len(bad.Receivers) != 1 || bad.Receivers[0].Constructor == nil || bad.Receivers[0].Constructor.GoName != "NewT" {
		t.Errorf("bad receivers = %+v", bad.Receivers)
	}
}
