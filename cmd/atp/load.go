package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/atpgo/atp/internal/doctor"
	"github.com/atpgo/atp/internal/model"
	"github.com/atpgo/atp/internal/parse"
)

// parseArgs parses flags that may come before, between or after the
// positional arguments (atp test ./tools --tool greet), as users write
// them; "--" ends the flags. It returns the positional arguments.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(positional, rest...), nil
		}
		if len(rest) == 0 {
			return positional, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}

// loadTools loads the Go packages that patterns name (default ".", resolved
// in the current directory) with a progress line. A loader failure (a
// pattern that matches nothing, no go.mod) is a usage error: the patterns
// are the command's arguments.
func loadTools(e *env, patterns []string) ([]*model.Package, []model.Problem, error) {
	for _, p := range patterns {
		if dir, local := localDir(p); local {
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return nil, nil, usagef("no such package: %s (there is no directory %s)", p, dir)
			}
		}
	}
	s := newProgress(e).start("loading packages")
	pkgs, probs, err := parse.Load(parse.Config{}, patterns...)
	s.end()
	if err != nil {
		if msg := err.Error(); strings.Contains(msg, "no required module provides package") || strings.Contains(msg, "is not in std") ||
			strings.Contains(msg, "cannot find package") {
			return nil, nil, usagef("no such package: %v", err)
		}
		return nil, nil, usagef("%v", err)
	}
	return pkgs, probs, nil
}

// localDir returns the directory a pattern that is a file system path
// (./x, ../x/..., /abs/x) names; local is false for import paths.
func localDir(pattern string) (dir string, local bool) {
	if pattern != "." && pattern != ".." && !strings.HasPrefix(pattern, "./") && !strings.HasPrefix(pattern, "../") &&
		!filepath.IsAbs(pattern) && !strings.HasPrefix(pattern, "."+string(filepath.Separator)) {
		return "", false
	}
	dir = strings.TrimSuffix(strings.TrimSuffix(pattern, "..."), "/")
	if dir == "" {
		dir = "/"
	}
	if strings.HasSuffix(dir, ".go") {
		dir = filepath.Dir(dir) // a file list
	}
	return filepath.Clean(dir), true
}

// countTools returns the number of tools and of packages that have some.
func countTools(pkgs []*model.Package) (tools, withTools int) {
	for _, p := range pkgs {
		if n := len(doctor.Tools(p)); n > 0 {
			tools += n
			withTools++
		}
	}
	return tools, withTools
}

// problemsError reports the source problems of the packages, all of them,
// one a line.
func problemsError(probs []model.Problem) error {
	msg := fmt.Sprintf("the packages have %s:", plural(len(probs), "source problem"))
	for _, p := range probs {
		msg += "\n" + p.String()
	}
	return fmt.Errorf("%s", msg)
}

// plural is "1 tool", "2 tools".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
