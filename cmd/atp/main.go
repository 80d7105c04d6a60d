// Command atp runs the reference ATP server and manages its keys.
//
//	atp serve [--addr 127.0.0.1:7777] [--db PATH] [--dev]
//	atp keys create --kind toolkit|llm --name N [--owner O] [--toolkit T]
//	atp keys list [--json]
//	atp keys rotate ID [--name N]
//	atp keys revoke ID
//	atp platforms add --id ID --client-id ID --auth-url URL --token-url URL [--scopes a,b] [--no-pkce] ...
//	atp platforms list [--json]
//	atp platforms remove ID
//	atp doctor [--json] [--min-severity S] [packages]
//	atp test [packages] [--tool T] [--params JSON | --file tests.yaml] [--json]
//	atp mcp [packages] [--http ADDR [--token T]]
//	atp call --toolkit T --tool X [--params JSON] [--url URL] [--key KEY] [--json]
//	atp context --toolkit T [--provider P] [--url URL] [--key KEY] [--json]
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
)

// A command is one subcommand. Each lives in its own file; add new ones to
// commands below.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// commands are the subcommands, in the order usage lists them.
var commands = []*command{serveCommand, keysCommand, doctorCommand, testCommand, mcpCommand, callCommand, contextCommand, platformsCommand}

// env is what a command may touch of the process: tests swap every part.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// usageError is bad usage: the command line itself is wrong.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, &env{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}, os.Args[1:]))
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
		err := c.run(ctx, e, args[1:])
		var ue *usageError
		switch {
		case err == nil:
			return exitOK
		case errors.Is(err, flag.ErrHelp):
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(e.stderr, "atp %s: %v\nRun 'atp %s -h' for usage.\n", c.name, err, c.name)
			return exitUsage
		default:
			fmt.Fprintf(e.stderr, "atp %s: %v\n", c.name, err)
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

// newFlags returns a flag set that reports errors instead of exiting, and
// prints its usage to the command's stderr.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: %s\n\nFlags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; a bad flag is a usage error (the flag package has
// already printed why and the usage).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usagef("%v", err)
	}
	return nil
}
