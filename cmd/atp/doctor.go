package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/atpgo/atp/internal/doctor"
)

var doctorCommand = &command{
	name:    "doctor",
	summary: "check the tools of Go packages for problems models and providers will have",
	run:     runDoctor,
}

const doctorSynopsis = `atp doctor [--json] [--min-severity info|warning|error] [packages]

Checks the //atp:tool functions of the packages (default ".") and prints one
line per finding: path:line:col: severity code: message. Exit status 1 when
there is an error, 0 otherwise, 2 for bad usage.`

// doctorReport is the --json output.
type doctorReport struct {
	Findings []doctor.Finding `json:"findings"`
	Tools    int              `json:"tools"`
	Errors   int              `json:"errors"`
	Warnings int              `json:"warnings"`
	Infos    int              `json:"infos"`
}

func runDoctor(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "doctor", doctorSynopsis)
	asJSON := fs.Bool("json", false, "print the findings as one JSON object")
	minSeverity := fs.String("min-severity", "info", "show findings of this `severity` and worse: info, warning or error (the exit status counts errors either way)")
	patterns, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	min, err := doctor.ParseSeverity(*minSeverity)
	if err != nil {
		return usagef("--min-severity: %v", err)
	}
	pkgs, probs, err := loadTools(e, patterns)
	if err != nil {
		return err
	}
	findings := append(doctor.FromProblems(probs), doctor.Check(pkgs)...)
	doctor.Sort(findings)

	report := doctorReport{Findings: []doctor.Finding{}}
	report.Tools, _ = countTools(pkgs)
	for _, f := range findings {
		switch f.Severity {
		case doctor.Error:
			report.Errors++
		case doctor.Warning:
			report.Warnings++
		default:
			report.Infos++
		}
		if f.Severity.Rank() >= min.Rank() {
			report.Findings = append(report.Findings, f)
		}
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else {
		for _, f := range report.Findings {
			fmt.Fprintln(e.stdout, f)
		}
	}

	summary := fmt.Sprintf("%s: %s, %s, %s", plural(report.Tools, "tool"),
		plural(report.Errors, "error"), plural(report.Warnings, "warning"), plural(report.Infos, "info"))
	if report.Tools == 0 && len(probs) == 0 {
		summary = "no //atp:tool functions or methods in the packages"
	}
	if report.Errors > 0 {
		return errors.New(summary)
	}
	fmt.Fprintf(e.stderr, "atp doctor: %s\n", summary)
	return nil
}
