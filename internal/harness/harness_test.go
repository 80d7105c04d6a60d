package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/atpgo/atp/internal/harness/harnesstest"
	"github.com/atpgo/atp/internal/model"
	"github.com/atpgo/atp/internal/parse"
)

// The fixture module is made and loaded once, and the Invoke harness built
// once: building is the slow part.
var (
	tmpRoot   string
	setupOnce sync.Once
	modDir    string
	modPkgs   []*model.Package
	invokeH   *Harness
	setupErr  error
)

func TestMain(m *testing.M) {
	var err error
	tmpRoot, err = os.MkdirTemp("", "harness-test-")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	if invokeH != nil {
		invokeH.Close()
	}
	os.RemoveAll(tmpRoot)
	os.Exit(code)
}

func setup(t *testing.T) {
	t.Helper()
	setupOnce.Do(func() {
		repo, err := harnesstest.RepoRoot(".")
		if err != nil {
			setupErr = err
			return
		}
		modDir, err = harnesstest.Module(tmpRoot, repo, "example.com/toolmod", filepath.Join("testdata", "toolmod"))
		if err != nil {
			setupErr = err
			return
		}
		var probs []model.Problem
		modPkgs, probs, err = parse.Load(parse.Config{Dir: modDir}, "./...")
		if err == nil && len(probs) > 0 {
			err = errors.New(probs[0].String())
		}
		if err != nil {
			setupErr = err
			return
		}
		invokeH, setupErr = Build(context.Background(), modPkgs, Options{Mode: Invoke})
	})
	if setupErr != nil {
		t.Fatal(setupErr)
	}
}

func pkgNamed(t *testing.T, name string) *model.Package {
	t.Helper()
	for _, p := range modPkgs {
		if p.Name == name {
			return p
		}
	}
	t.Fatalf("no package %s", name)
	return nil
}

func listFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		files[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestInvoke(t *testing.T) {
	setup(t)
	if want := []string{"count", "crash", "greet", "increment", "shout", "whoami"}; !slices.Equal(invokeH.Tools, want) {
		t.Fatalf("tools %v, want %v", invokeH.Tools, want)
	}
	if invokeH.Name != "greet+counter" {
		t.Errorf("name %q", invokeH.Name)
	}
	var stderr syncBuffer
	p, err := invokeH.Start(context.Background(), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	for _, c := range []struct {
		req        Request
		result     string
		kind, err  string
		problemsIn string
	}{
		{req: Request{Tool: "greet", Params: json.RawMessage(`{"name":"Ada","times":2}`)}, result: `"Hello, Ada! Hello, Ada!"`},
		{req: Request{Tool: "greet", Params: json.RawMessage(`{"name":" ","times":1}`)}, kind: "tool_error", err: "name is empty"},
		{req: Request{Tool: "greet", Params: json.RawMessage(`{"name":"Ada","times":0}`)}, kind: "invalid_params", err: "times", problemsIn: "times"},
		{req: Request{Tool: "nope", Params: json.RawMessage(`{}`)}, kind: "unknown_tool", err: "nope"},
		// What a tool prints goes to stderr: the protocol stays intact.
		{req: Request{Tool: "shout", Params: json.RawMessage(`{"message":"hi"}`)}, result: `"HI"`},
		{req: Request{Tool: "whoami"}, kind: "missing_auth_token", err: "auth token"},
		{req: Request{Tool: "whoami", AuthToken: "s3cret"}, result: `6`},
		// A method tool runs on a zero-value receiver, from an internal
		// package; receivers live on across calls unless one asks for
		// fresh ones.
		{req: Request{Tool: "increment", Params: json.RawMessage(`{"by":2}`)}, result: `2`},
		{req: Request{Tool: "increment", Params: json.RawMessage(`{"by":3}`)}, result: `5`},
		{req: Request{Tool: "increment", Params: json.RawMessage(`{"by":3}`), Fresh: true}, result: `3`},
		// A receiver with a map, made by its //atp:constructor (a zero
		// value would panic).
		{req: Request{Tool: "count", Params: json.RawMessage(`{"word":"go"}`)}, result: `1`},
		{req: Request{Tool: "count", Params: json.RawMessage(`{"word":"go"}`)}, result: `2`},
		{req: Request{Tool: "count", Params: json.RawMessage(`{"word":"go"}`), Fresh: true}, result: `1`},
	} {
		resp, err := p.Invoke(c.req)
		if err != nil {
			t.Fatalf("%s: %v", c.req.Tool, err)
		}
		if string(resp.Result) != c.result || resp.Kind != c.kind || !strings.Contains(resp.Error, c.err) || (c.err == "") != (resp.Error == "") {
			t.Errorf("%s %s: got result %s, %s error %q; want %s, %s %q", c.req.Tool, c.req.Params, resp.Result, resp.Kind, resp.Error, c.result, c.kind, c.err)
		}
		if c.problemsIn != "" && (len(resp.Problems) == 0 || resp.Problems[0].Path != c.problemsIn) {
			t.Errorf("%s: problems %v, want one at %q", c.req.Tool, resp.Problems, c.problemsIn)
		}
		if resp.Nanos <= 0 {
			t.Errorf("%s: latency %d", c.req.Tool, resp.Nanos)
		}
	}

	// A tool that kills the process: Invoke says so, and a new process
	// serves on.
	_, err = p.Invoke(Request{Tool: "crash", Params: json.RawMessage(`{"code":3}`)})
	if !errors.Is(err, ErrExited) || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("crash: %v", err)
	}
	if _, err := p.Invoke(Request{Tool: "greet"}); !errors.Is(err, ErrExited) {
		t.Fatalf("after the crash: %v", err)
	}
	p2, err := invokeH.Start(context.Background(), &stderr)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := p2.Invoke(Request{Tool: "increment", Params: json.RawMessage(`{"by":1}`)})
	if err != nil || string(resp.Result) != "1" {
		t.Fatalf("new process: %v %+v", err, resp)
	}
	if err := p2.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if !strings.Contains(stderr.String(), "shouting hi") {
		t.Errorf("stderr %q lacks the tool's output", stderr.String())
	}
}

// Building writes nothing into the module: the harness and the fresh
// registration code live in the overlay, go.mod changes go to a copy.
func TestBuildLeavesModuleAlone(t *testing.T) {
	setup(t)
	before := listFiles(t, modDir)
	h, err := Build(context.Background(), []*model.Package{pkgNamed(t, "counter")}, Options{Mode: Invoke, Name: "solo"})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	after := listFiles(t, modDir)
	if len(before) != len(after) {
		t.Fatalf("files before %d, after %d", len(before), len(after))
	}
	for f, b := range before {
		if after[f] != b {
			t.Errorf("%s changed", f)
		}
	}
	if h.Name != "solo" {
		t.Errorf("name %q", h.Name)
	}
	if _, err := os.Stat(h.Path); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if _, err := os.Stat(h.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Close: %v", err)
	}
}

func TestBuildErrors(t *testing.T) {
	setup(t)
	ctx := context.Background()
	if _, err := Build(ctx, nil, Options{Mode: Invoke}); !errors.Is(err, ErrNoTools) {
		t.Errorf("no packages: %v", err)
	}
	if _, err := Build(ctx, modPkgs, Options{Mode: "grpc"}); err == nil || !strings.Contains(err.Error(), `unknown mode "grpc"`) {
		t.Errorf("bad mode: %v", err)
	}
	greet := *pkgNamed(t, "greet")
	dup := greet
	dup.Path = "example.com/toolmod/greet2"
	if _, err := Build(ctx, []*model.Package{&greet, &dup}, Options{Mode: Invoke}); err == nil ||
		!strings.Contains(err.Error(), `tool name "crash" is also used in package example.com/toolmod/greet`) {
		t.Errorf("duplicate names: %v", err)
	}
	mainPkg := greet
	mainPkg.Name = "main"
	if _, err := Build(ctx, []*model.Package{&mainPkg}, Options{Mode: Invoke}); err == nil || !strings.Contains(err.Error(), "is a main package") {
		t.Errorf("main package: %v", err)
	}
	// A package that does not compile: the go build output comes back.
	broken := greet
	broken.Tools = slices.Clone(greet.Tools)
	renamed := *broken.Tools[0]
	renamed.GoName = "NoSuchFunc"
	broken.Tools[0] = &renamed
	if _, err := Build(ctx, []*model.Package{&broken}, Options{Mode: Invoke}); err == nil ||
		!strings.Contains(err.Error(), "building the harness") || !strings.Contains(err.Error(), "NoSuchFunc") {
		t.Errorf("broken package: %v", err)
	}
	// Outside any module.
	outside := greet
	outside.Dir = t.TempDir()
	if _, err := Build(ctx, []*model.Package{&outside}, Options{Mode: Invoke, Env: append(os.Environ(), "GO111MODULE=on", "GOFLAGS=")}); err == nil ||
		!strings.Contains(err.Error(), "is not in a Go module") {
		t.Errorf("outside a module: %v", err)
	}
}

func TestCommonDir(t *testing.T) {
	sep := string(filepath.Separator)
	p := func(dirs ...string) []*model.Package {
		var out []*model.Package
		for _, d := range dirs {
			out = append(out, &model.Package{Dir: filepath.FromSlash(d)})
		}
		return out
	}
	for _, c := range []struct {
		dirs []string
		want string
	}{
		{[]string{"/m/a"}, "/m/a"},
		{[]string{"/m/a/b", "/m/a/c"}, "/m/a"},
		{[]string{"/m/a", "/m/a/internal/x"}, "/m/a"},
		{[]string{"/m/ab", "/m/a"}, "/m"},
		{[]string{"/m/a/b/c", "/m/x"}, "/m"},
	} {
		if got := commonDir(p(c.dirs...)); got != filepath.FromSlash(c.want) {
			t.Errorf("commonDir(%v) = %q, want %q (sep %q)", c.dirs, got, c.want, sep)
		}
	}
}

// Both modes render a main.go that parses (format.Source checks it) and
// names every tool source.
func TestMainSource(t *testing.T) {
	setup(t)
	for _, mode := range []Mode{Invoke, MCP} {
		src, err := mainSource(modPkgs, mode, "kit")
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		for _, want := range []string{`p0 "example.com/toolmod/greet"`, `p1 "example.com/toolmod/internal/counter"`, "new(p1.Counter).ATPTools()", "p0.ATPTools()", `runtime.NewToolkit("kit"`} {
			if !bytes.Contains(src, []byte(want)) {
				t.Errorf("%s: main.go lacks %q:\n%s", mode, want, src)
			}
		}
		if mcp := bytes.Contains(src, []byte(`"github.com/atpgo/atp/mcp"`)); mcp != (mode == MCP) {
			t.Errorf("%s: imports mcp: %v", mode, mcp)
		}
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
