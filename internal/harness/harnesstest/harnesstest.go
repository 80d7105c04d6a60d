// Package harnesstest makes temporary Go modules that use this checkout of
// github.com/atpgo/atp, for tests that build harnesses around tools the way
// a user's module would.
package harnesstest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/modfile"
)

// RepoRoot returns the directory of the github.com/atpgo/atp module that
// holds dir (the test's working directory).
func RepoRoot(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && modfile.ModulePath(b) == "github.com/atpgo/atp" {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no github.com/atpgo/atp go.mod above the working directory")
		}
		dir = parent
	}
}

// Module creates, in a new directory under parent, a module named modPath
// holding a copy of the files under src, whose go.mod requires and replaces
// github.com/atpgo/atp with the checkout at repo. Its go.mod lists every
// requirement of the checkout's go.mod and its go.sum is the checkout's, so
// that the go command needs nothing from the network and the module's
// go.mod never needs an update. It returns the module's directory.
func Module(parent, repo, modPath, src string) (string, error) {
	dir, err := os.MkdirTemp(parent, "mod-")
	if err != nil {
		return "", err
	}
	err = filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dir, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, rel), b, 0o644)
	})
	if err != nil {
		return "", err
	}

	data, err := os.ReadFile(filepath.Join(repo, "go.mod"))
	if err != nil {
		return "", err
	}
	atp, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "module %s\n\ngo %s\n\nrequire github.com/atpgo/atp v0.0.0\n\nrequire (\n", modPath, atp.Go.Version)
	for _, r := range atp.Require {
		fmt.Fprintf(&b, "\t%s %s // indirect\n", r.Mod.Path, r.Mod.Version)
	}
	fmt.Fprintf(&b, ")\n\nreplace github.com/atpgo/atp => %s\n", repo)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		return "", err
	}
	return dir, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644)
}
