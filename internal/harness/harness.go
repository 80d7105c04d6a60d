// Package harness builds a temporary program around the tools of Go
// packages, for atp test (which calls them) and atp mcp (which serves them
// over MCP).
//
// # How it builds
//
// The harness is a main package that imports the user's packages, so it has
// to be built inside the user's module, with the user's dependencies,
// replace directives and workspace. It is, without writing a single file
// into the user's tree: the build runs with -overlay, which adds the
// harness's main.go in a directory that exists only in the overlay
// (_atpharness, under the deepest directory that holds every package, so
// that internal packages can be imported), and which also replaces each
// package's atp_gen.go with the one atpgen would write now. The tools are
// therefore run as their source is, whether or not go generate has been run
// since the last change.
//
// The go command may need requirements the user's go.mod lacks (atp mcp
// imports github.com/atpgo/atp/mcp and its MCP SDK). Outside a workspace and
// a vendor directory, the build uses a copy of go.mod and go.sum
// (-modfile) with -mod=mod, so the go command adds what it needs to the
// copies and the user's files are never touched.
//
// # Which tools
//
// Every package-level tool (the package's ATPTools) and every method tool.
// Methods are called on what the receiver type's //atp:constructor returns,
// or, without one, on a zero value, new(T). An Invoke harness makes the
// receivers (the whole toolkit) at its first request and again for every
// request that asks for Fresh ones; an MCP harness makes them once, at
// start. Package-level state lives as long as the process.
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/atpgo/atp/internal/gen"
	"github.com/atpgo/atp/internal/model"
)

// Mode says what the harness does with the tools.
type Mode string

const (
	// Invoke: read Requests from stdin, one JSON object a line, and answer
	// each with a Response on stdout (see Process).
	Invoke Mode = "invoke"
	// MCP: serve the tools over MCP, on stdio or, with the flag -http
	// ADDR, over streamable HTTP at http://ADDR/mcp. Secrets come from the
	// environment: TokenEnv, AuthTokenEnv.
	MCP Mode = "mcp"
)

// Environment variables through which an MCP harness gets secrets (the
// command line of a process is visible to other users, its environment is
// not): TokenEnv is the bearer token HTTP clients must present,
// AuthTokenEnv the end user's token passed to tools that need one.
const (
	TokenEnv     = "ATP_MCP_TOKEN"
	AuthTokenEnv = "ATP_AUTH_TOKEN"
)

// ErrNoTools is returned by Build for packages without tools.
var ErrNoTools = errors.New("no //atp:tool functions or methods in the packages")

// Options configure Build.
type Options struct {
	Mode Mode
	// Name is the toolkit's name (the MCP server's name); "" means the
	// packages' names joined with "+".
	Name string
	// BuildFlags are extra go build flags, such as -tags=integration.
	BuildFlags []string
	// Env is the go command's environment; nil means the current process's.
	Env []string
}

// Harness is a built harness: an executable in a temporary directory that
// Close removes.
type Harness struct {
	// Path is the executable.
	Path string
	// Tools are the names of the tools it serves, sorted.
	Tools []string
	// Name is the toolkit's name.
	Name string
	dir  string
}

// Close removes the harness's temporary directory.
func (h *Harness) Close() error { return os.RemoveAll(h.dir) }

// Build generates and builds a harness for the tools of pkgs. Packages
// without tools are skipped. The error says what to fix: a source problem
// atpgen reports (with its position), two packages with a tool of the same
// name, a main package, or the go build output.
func Build(ctx context.Context, pkgs []*model.Package, opts Options) (_ *Harness, err error) {
	if opts.Mode != Invoke && opts.Mode != MCP {
		return nil, fmt.Errorf("harness: unknown mode %q", opts.Mode)
	}
	var withTools []*model.Package
	owner := map[string]string{} // tool name -> package path
	var names []string
	for _, p := range pkgs {
		if p == nil {
			continue
		}
		tools := toolsOf(p)
		if len(tools) == 0 {
			continue
		}
		if p.Name == "main" {
			return nil, fmt.Errorf("package %s is a main package, which no program can import: move its tools into a package of their own", p.Path)
		}
		for _, t := range tools {
			if prev, ok := owner[t.Name]; ok {
				return nil, fmt.Errorf("%s: tool name %q is also used in package %s: one toolkit cannot hold both; give one of them another name= or run the packages separately", t.Pos, t.Name, prev)
			}
			owner[t.Name] = p.Path
			names = append(names, t.Name)
		}
		withTools = append(withTools, p)
	}
	if len(withTools) == 0 {
		return nil, ErrNoTools
	}
	slices.Sort(names)

	dir, err := os.MkdirTemp("", "atp-harness-")
	if err != nil {
		return nil, fmt.Errorf("creating the harness directory: %w", err)
	}
	h := &Harness{Tools: names, dir: dir, Name: opts.Name}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	if h.Name == "" {
		var pn []string
		for _, p := range withTools {
			pn = append(pn, p.Name)
		}
		h.Name = strings.Join(pn, "+")
	}

	// Fresh registration code for every package, through the overlay.
	overlay := map[string]string{}
	for i, p := range withTools {
		f, probs := gen.Generate(p)
		if len(probs) > 0 {
			msgs := make([]string, len(probs))
			for j, pr := range probs {
				msgs[j] = pr.String()
			}
			return nil, fmt.Errorf("generating the tools of %s:\n%s", p.Path, strings.Join(msgs, "\n"))
		}
		genPath := filepath.Join(dir, fmt.Sprintf("gen%d.go", i))
		if err := os.WriteFile(genPath, f.Content, 0o600); err != nil {
			return nil, err
		}
		overlay[f.Path] = genPath
	}

	base := commonDir(withTools)
	harnessDir := filepath.Join(base, "_atpharness")
	for i := 2; exists(harnessDir); i++ {
		harnessDir = filepath.Join(base, "_atpharness"+strconv.Itoa(i))
	}
	src, err := mainSource(withTools, opts.Mode, h.Name)
	if err != nil {
		return nil, err
	}
	mainPath := filepath.Join(dir, "main.go")
	if err := os.WriteFile(mainPath, src, 0o600); err != nil {
		return nil, err
	}
	overlay[filepath.Join(harnessDir, "main.go")] = mainPath
	ovl, err := json.Marshal(map[string]any{"Replace": overlay})
	if err != nil {
		return nil, err
	}
	ovlPath := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovlPath, ovl, 0o600); err != nil {
		return nil, err
	}

	h.Path = filepath.Join(dir, "harness")
	if goruntime.GOOS == "windows" {
		h.Path += ".exe"
	}
	args := []string{"build", "-o", h.Path, "-overlay", ovlPath}
	modArgs, err := modfileArgs(ctx, base, dir, opts.Env)
	if err != nil {
		return nil, err
	}
	args = append(args, modArgs...)
	args = append(args, opts.BuildFlags...)
	args = append(args, "./"+filepath.Base(harnessDir))
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = base
	cmd.Env = opts.Env
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("building the harness (go %s in %s): %v\n%s", strings.Join(args, " "), base, err, strings.TrimSpace(string(out)))
	}
	return h, nil
}

func toolsOf(p *model.Package) []*model.Tool {
	tools := slices.Clone(p.Tools)
	for _, r := range p.Receivers {
		tools = append(tools, r.Tools...)
	}
	return tools
}

// commonDir is the deepest directory that holds every package: the harness
// there may import each of them, internal ones included (an internal
// package is importable from the tree rooted at its internal directory's
// parent, which holds the package and so this directory too).
func commonDir(pkgs []*model.Package) string {
	dir := filepath.Clean(pkgs[0].Dir)
	for _, p := range pkgs[1:] {
		d := filepath.Clean(p.Dir)
		for !within(d, dir) {
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return dir
}

func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// modfileArgs returns -modfile and -mod=mod flags pointing at copies of the
// module's go.mod and go.sum in tmp, or nothing in workspace or vendor mode
// (where -modfile is not allowed or would bypass vendor/).
func modfileArgs(ctx context.Context, dir, tmp string, env []string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "env", "-json", "GOMOD", "GOWORK", "GOFLAGS")
	cmd.Dir = dir
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go env in %s: %v: %s", dir, err, strings.TrimSpace(stderr.String()))
	}
	var goenv struct{ GOMOD, GOWORK, GOFLAGS string }
	if err := json.Unmarshal(out, &goenv); err != nil {
		return nil, fmt.Errorf("go env in %s: %w", dir, err)
	}
	if goenv.GOMOD == "" || goenv.GOMOD == os.DevNull {
		return nil, fmt.Errorf("%s is not in a Go module: the tools' packages must be in a module that requires github.com/atpgo/atp", dir)
	}
	if goenv.GOWORK != "" && goenv.GOWORK != "off" {
		return nil, nil
	}
	for _, f := range strings.Fields(goenv.GOFLAGS) {
		if f = strings.TrimLeft(f, "-"); strings.HasPrefix(f, "mod=") || strings.HasPrefix(f, "modfile") {
			return nil, nil // the user chose how modules resolve
		}
	}
	modDir := filepath.Dir(goenv.GOMOD)
	if exists(filepath.Join(modDir, "vendor", "modules.txt")) {
		return nil, nil
	}
	if err := copyFile(goenv.GOMOD, filepath.Join(tmp, "go.mod")); err != nil {
		return nil, err
	}
	sum := filepath.Join(modDir, "go.sum")
	if exists(sum) {
		if err := copyFile(sum, filepath.Join(tmp, "go.sum")); err != nil {
			return nil, err
		}
	}
	return []string{"-modfile", filepath.Join(tmp, "go.mod"), "-mod=mod"}, nil
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// source is one call that returns tools, in the harness's main.
type source struct {
	What string // for error messages: the package path, or path.Type
	Expr string // e.g. p0.ATPTools() or new(p0.Client).ATPTools()

	// For a receiver with a constructor: the call, its name in messages,
	// the receiver type, and the constructor's shape.
	Ctor, CtorName, Type string
	CtorCtx, CtorErr     bool
}

type importSpec struct{ Alias, Path string }

// mainSource renders the harness's main.go.
func mainSource(pkgs []*model.Package, mode Mode, name string) ([]byte, error) {
	data := struct {
		Imports      []importSpec
		Sources      []source
		Name         string
		MCP          bool
		Ctors        bool
		TokenEnv     string
		AuthTokenEnv string
	}{Name: name, MCP: mode == MCP, TokenEnv: TokenEnv, AuthTokenEnv: AuthTokenEnv}
	for i, p := range pkgs {
		alias := "p" + strconv.Itoa(i)
		data.Imports = append(data.Imports, importSpec{alias, p.Path})
		if len(p.Tools) > 0 {
			data.Sources = append(data.Sources, source{What: p.Path, Expr: alias + ".ATPTools()"})
		}
		for _, r := range p.Receivers {
			if len(r.Tools) == 0 {
				continue
			}
			src := source{What: p.Path + "." + r.TypeName, Expr: "new(" + alias + "." + r.TypeName + ").ATPTools()"}
			if c := r.Constructor; c != nil {
				src.Ctor, src.CtorName, src.Type = alias+"."+c.GoName, p.Name+"."+c.GoName, alias+"."+r.TypeName
				src.CtorCtx, src.CtorErr = c.TakesContext, c.ReturnsError
				data.Ctors = true
			}
			data.Sources = append(data.Sources, src)
		}
	}
	var b bytes.Buffer
	if err := mainTemplate.Execute(&b, data); err != nil {
		return nil, fmt.Errorf("harness: rendering main.go: %w", err)
	}
	src, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("harness: main.go does not parse (a bug in atp): %w\n%s", err, b.Bytes())
	}
	return src, nil
}
