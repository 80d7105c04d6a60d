// Command atp runs the reference ATP server and manages its keys.
//
//	atp serve [--addr 127.0.0.1:7777] [--db PATH] [--dev] [--json]
//	atp keys create --kind toolkit|llm --name N [--owner O] [--toolkit T] [--json]
//	atp keys list [--json]
//	atp keys rotate ID [--name N] [--json]
//	atp keys revoke ID [--json]
//	atp platforms add --id ID --client-id ID --auth-url URL --token-url URL [--scopes a,b] [--no-pkce] ... [--json]
//	atp platforms list [--json]
//	atp platforms remove ID [--json]
//	atp doctor [--json] [--min-severity S] [packages]
//	atp test [packages] [--tool T] [--params JSON | --file tests.yaml] [--json]
//	atp mcp [packages] [--http ADDR [--token T]] [--json]
//	atp call --toolkit T --tool X [--params JSON] [--url URL] [--key KEY] [--json]
//	atp context --toolkit T [--provider P] [--url URL] [--key KEY] [--json]
//	atp version [--json]
//
// Every command takes --json (results as JSON on stdout; for serve and mcp,
// the start-up line and the logs) and -h.
//
// Exit codes: 0 success, 1 failure, 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// A command is one subcommand. Each lives in its own file; add new ones to
// commands below.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// commands are the subcommands, in the order usage lists them.
var commands = []*command{serveCommand, keysCommand, doctorCommand, testCommand, mcpCommand, callCommand, contextCommand, platformsCommand, versionCommand}

// env is what a command may touch of the process: tests swap every part.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	// after is the clock of progress lines (time.After): tests pass one
	// that fires when they say, so that no output depends on how fast the
	// machine happens to be.
	after func(time.Duration) <-chan time.Time

	// cmd is the command being run as its messages name it ("keys
	// revoke"), set by run and refined by newFlags.
	cmd string
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is bad usage: the command line itself is wrong. usage, when
// set, prints the command's flags (for a flag the command does not know).
type usageError struct {
	msg   string
	usage func()
}

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv, after: time.After}, os.Args[1:]))
}

// run runs one command line and returns the exit code.
func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		printUsage(e.stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		e.cmd = c.name
		err := c.run(ctx, e, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "atp %s: %v\n", e.cmd, err)
			if ue.usage != nil {
				// A bad flag: the error once, then what the flags are.
				fmt.Fprintln(e.stderr)
				ue.usage()
			} else {
				fmt.Fprintf(e.stderr, "Run 'atp %s -h' for usage.\n", e.cmd)
			}
			return exitUsage
		default:
			fmt.Fprintf(e.stderr, "atp %s: %v\n", e.cmd, err)
			return exitFailure
		}
	}
	fmt.Fprintf(e.stderr, "atp: unknown command %q\n\n", args[0])
	printUsage(e.stderr)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, "Usage: atp <command> [flags]\n\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'atp <command> -h' for a command's flags.")
}

// newFlags returns the flag set of the command name ("keys revoke"): it
// reports errors instead of exiting or printing them (run prints them once),
// and its Usage prints the synopsis and the flags to the command's stderr.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	e.cmd = name
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.SetOutput(e.stderr)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	return fs
}

// parseFlags parses args. -h prints the usage and returns flag.ErrHelp; a
// bad flag is a usage error that carries the usage, for run to print after
// the error.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {} // the flag package calls it on errors too
	err := fs.Parse(args)
	fs.Usage = usage
	switch {
	case errors.Is(err, flag.ErrHelp):
		usage()
		return err
	case err != nil:
		return &usageError{msg: err.Error(), usage: usage}
	}
	return nil
}
