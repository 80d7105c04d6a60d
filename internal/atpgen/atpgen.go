// Package atpgen is the atpgen command: load packages, report source
// problems, generate and write (or check) each package's atp_gen.go. It lives
// outside cmd/atpgen so that tests drive exactly what the command does.
package atpgen

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/atpgo/atp/internal/gen"
	"github.com/atpgo/atp/internal/model"
	"github.com/atpgo/atp/internal/parse"
)

const usage = `usage: atpgen [-check] [-json] [-tags list] [packages]

atpgen reads the //atp:tool directives of the Go packages named (default ".")
and writes each package's atp_gen.go: tool registration, JSON Schemas and
params decoders. A package without tools loses its stale atp_gen.go.

Use it from go generate:

	//go:generate go tool atpgen

Flags:
`

// runtimePackage is what generated code imports.
const runtimePackage = "github.com/atpgo/atp/runtime"

// Exit codes.
const (
	ExitOK      = 0
	ExitProblem = 1 // source problems, or -check found stale files
	ExitUsage   = 2
)

// Main runs atpgen with args (without the program name) in dir ("" for the
// current directory) and returns the exit code.
func Main(args []string, dir string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("atpgen", flag.ContinueOnError)
	fset.SetOutput(stderr)
	check := fset.Bool("check", false, "write nothing; exit 1 naming each file that is stale")
	dump := fset.Bool("json", false, "print the parsed model as JSON instead of generating")
	tags := fset.String("tags", "", "comma-separated build tags, as for go build")
	version := fset.Bool("version", false, "print the version and exit")
	fset.Usage = func() {
		fmt.Fprint(stderr, usage)
		fset.PrintDefaults()
	}
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *version {
		fmt.Fprintln(stdout, "atpgen", moduleVersion())
		return ExitOK
	}
	patterns := fset.Args()
	if len(patterns) == 0 {
		patterns = []string{"."}
	}
	cfg := parse.Config{Dir: dir}
	if *tags != "" {
		cfg.BuildFlags = []string{"-tags=" + *tags}
	}

	pkgs, problems, err := parse.Load(cfg, patterns...)
	if err != nil {
		fmt.Fprintf(stderr, "atpgen: %v\n", err)
		return ExitProblem
	}
	if *dump {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(pkgs); err != nil {
			fmt.Fprintf(stderr, "atpgen: %v\n", err)
			return ExitProblem
		}
	}

	type output struct {
		path    string
		content []byte // nil: the file must not exist
	}
	var outputs []output
	for _, pkg := range pkgs {
		file, genProblems := gen.Generate(pkg)
		problems = append(problems, genProblems...)
		if file != nil {
			outputs = append(outputs, output{file.Path, file.Content})
		} else if pkg.Dir != "" {
			outputs = append(outputs, output{filepath.Join(pkg.Dir, gen.FileName), nil})
		}
	}
	if len(problems) > 0 {
		printProblems(stderr, problems)
		return ExitProblem
	}
	if *dump {
		return ExitOK
	}

	code := ExitOK
	var written []string
	for _, o := range outputs {
		stale, err := isStale(o.path, o.content)
		if err != nil {
			fmt.Fprintf(stderr, "atpgen: %v\n", err)
			code = ExitProblem
			continue
		}
		if !stale {
			continue
		}
		rel := relPath(dir, o.path)
		if *check {
			if o.content == nil {
				fmt.Fprintf(stderr, "%s: stale: the package has no tools any more; run go generate\n", rel)
			} else {
				fmt.Fprintf(stderr, "%s: stale: run go generate\n", rel)
			}
			code = ExitProblem
			continue
		}
		if err := write(o.path, o.content); err != nil {
			fmt.Fprintf(stderr, "atpgen: %v\n", err)
			code = ExitProblem
			continue
		}
		if o.content != nil {
			written = append(written, o.path)
		}
	}
	if len(written) > 0 {
		// Fresh generated code imports the runtime, which a new module's
		// go.mod and go.sum may not cover yet: go vet and go build would
		// then fail on a missing go.sum entry. Say so now, with the fix.
		if why := runtimeUnresolved(filepath.Dir(written[0]), cfg); why != "" {
			fmt.Fprintf(stderr, "atpgen: wrote %s, but this module cannot build it yet:\n\t%s\nRun this once:\n\n\tgo mod tidy\n\n", relPath(dir, written[0]), why)
		}
	}
	return code
}

// runtimeUnresolved reports why the runtime package, which generated code
// imports, does not resolve from dir with the module's go.mod and go.sum
// as they are ("" when it does). It asks the go command, as the build will.
func runtimeUnresolved(dir string, cfg parse.Config) string {
	args := append([]string{"list", "-deps", "-f", "{{.ImportPath}}"}, cfg.BuildFlags...)
	cmd := exec.Command("go", append(args, runtimePackage)...)
	cmd.Dir = dir
	cmd.Env = cfg.Env
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err == nil {
		return ""
	} else if errOut.Len() == 0 {
		return err.Error()
	}
	// The go command's first line is the reason; what follows is its own
	// advice, which the caller replaces with one command.
	first, _, _ := strings.Cut(strings.TrimSpace(errOut.String()), "\n")
	first, _, _ = strings.Cut(first, "; to ")
	first = strings.TrimPrefix(first, "go: ")
	return goPosPrefix.ReplaceAllString(first, "")
}

// goPosPrefix is the position the go command puts before an import error:
// it points into the atp module, not at anything the user wrote.
var goPosPrefix = regexp.MustCompile(`^\S+\.go:\d+:\d+: `)

func printProblems(w io.Writer, problems []model.Problem) {
	slices.SortStableFunc(problems, func(a, b model.Problem) int {
		switch {
		case a.Pos.File != b.Pos.File:
			if a.Pos.File < b.Pos.File {
				return -1
			}
			return 1
		case a.Pos.Line != b.Pos.Line:
			return a.Pos.Line - b.Pos.Line
		default:
			return a.Pos.Col - b.Pos.Col
		}
	})
	problems = slices.Compact(problems)
	for _, p := range problems {
		fmt.Fprintln(w, p.String())
	}
}

// isStale reports whether the file at path differs from want (nil: should
// not exist). A file atpgen did not write is never deleted.
func isStale(path string, want []byte) (bool, error) {
	have, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return want != nil, nil
	}
	if err != nil {
		return false, err
	}
	if want == nil {
		return isGenerated(have), nil
	}
	return !bytes.Equal(have, want), nil
}

func isGenerated(src []byte) bool {
	first, _, _ := bytes.Cut(src, []byte("\n"))
	return string(bytes.TrimRight(first, "\r")) == gen.Header
}

// write replaces path with content atomically, or removes it when content is
// nil, so that an interrupted run never leaves half a file.
func write(path string, content []byte) error {
	if content == nil {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".atp_gen-*.go.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(content); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

func relPath(dir, path string) string {
	base := dir
	if base == "" {
		base, _ = os.Getwd()
	}
	if rel, err := filepath.Rel(base, path); err == nil && filepath.IsLocal(rel) {
		return rel
	}
	return path
}

func moduleVersion() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	for _, dep := range info.Deps {
		if dep.Path == "github.com/atpgo/atp" {
			return dep.Version
		}
	}
	return info.Main.Version
}
