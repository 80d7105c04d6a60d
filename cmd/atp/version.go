package main

import (
	"context"
	"fmt"
	"runtime/debug"
	"strings"
)

var versionCommand = &command{
	name:    "version",
	summary: "print atp's module version and the source revision it was built from",
	run:     runVersion,
}

const versionSynopsis = `atp version [--json]

Prints the version of the github.com/atpgo/atp module this binary was built
from ("(devel)" for a build inside a clone), the Go version, and, when the
build recorded them, the VCS revision, its time and whether the tree had
uncommitted changes.`

// versionInfo is what atp version prints, also its --json form.
type versionInfo struct {
	Module    string `json:"module"`
	Version   string `json:"version"`
	GoVersion string `json:"go_version"`
	Revision  string `json:"vcs_revision,omitempty"`
	Time      string `json:"vcs_time,omitempty"`
	Modified  *bool  `json:"vcs_modified,omitempty"`
}

func runVersion(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "version", versionSynopsis)
	asJSON := fs.Bool("json", false, "print the version as one JSON object")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return fmt.Errorf("this binary carries no build information (built without module support)")
	}
	v := buildVersion(info)
	if *asJSON {
		return writeJSON(e, v)
	}
	line := fmt.Sprintf("atp %s (%s)", v.Version, v.GoVersion)
	if v.Revision != "" {
		line += ", revision " + v.Revision
		if v.Time != "" {
			line += " of " + v.Time
		}
		if v.Modified != nil && *v.Modified {
			line += ", with uncommitted changes"
		}
	}
	fmt.Fprintln(e.stdout, line)
	return nil
}

// buildVersion picks atp's version out of the build information: the main
// module's when atp itself was built (go install .../cmd/atp@v1.2.3, or a
// clone), else the version of the atp dependency.
func buildVersion(info *debug.BuildInfo) versionInfo {
	const module = "github.com/atpgo/atp"
	v := versionInfo{Module: module, Version: info.Main.Version, GoVersion: info.GoVersion}
	if info.Main.Path != module {
		v.Version = "(unknown)"
		for _, d := range info.Deps {
			if d.Path == module {
				v.Version = d.Version
				if d.Replace != nil {
					v.Version += " => " + strings.TrimSpace(d.Replace.Path+" "+d.Replace.Version)
				}
			}
		}
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			m := s.Value == "true"
			v.Modified = &m
		}
	}
	return v
}
