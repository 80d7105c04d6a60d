package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	goruntime "runtime"
	"time"

	"github.com/atpgo/atp/internal/harness"
)

var mcpCommand = &command{
	name:    "mcp",
	summary: "serve the tools of Go packages over MCP, for local development",
	run:     runMCP,
}

const mcpSynopsis = `atp mcp [packages] [--http ADDR [--token T]] [--json]

Builds a temporary program around the tools of the packages (default ".")
and serves them over MCP: on stdin and stdout (for hosts that start the
server themselves), or with --http over streamable HTTP at
http://ADDR/mcp. Method tools are called on a zero value of their receiver
type, or on what its //atp:constructor returns (one receiver for the whole
session). Tools that need the end user's token get $ATP_AUTH_TOKEN. Logs
and what the tools print go to stderr. With --json the logs are JSON lines,
and --http prints its address as {"url": ...} on stdout.

Serving beyond loopback needs a bearer token (--token or $ATP_MCP_TOKEN):
the tools would otherwise be open to the network.`

func runMCP(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "mcp", mcpSynopsis)
	addr := fs.String("http", "", "serve streamable HTTP on `host:port` (port 0 picks a free one) instead of stdio")
	token := fs.String("token", "", "bearer `token` HTTP clients must send (default $ATP_MCP_TOKEN; prefer the variable)")
	asJSON := fs.Bool("json", false, "log JSON lines on stderr, and with --http print the address as JSON on stdout")
	patterns, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if *token == "" {
		*token = e.getenv(harness.TokenEnv)
	}
	if *addr == "" && *token != "" && fsSet(fs, "token") {
		return usagef("--token applies to --http only: stdio needs no token")
	}
	if *addr != "" {
		host, _, err := net.SplitHostPort(*addr)
		if err != nil {
			return usagef("--http: expected host:port, got %q: %v", *addr, err)
		}
		if !isLoopback(host) && *token == "" {
			return usagef("--http %s listens beyond loopback: set a bearer token (--token or $%s), or listen on 127.0.0.1", *addr, harness.TokenEnv)
		}
	}

	pkgs, probs, err := loadTools(e, patterns)
	if err != nil {
		return err
	}
	if len(probs) > 0 {
		return problemsError(probs)
	}
	h, err := buildHarness(ctx, e, pkgs, harness.MCP)
	if err != nil {
		return err
	}
	defer h.Close()

	var harnessArgs []string
	transport := "stdio"
	if *addr != "" {
		harnessArgs = []string{"-http", *addr}
		transport = "streamable HTTP"
	}
	if *asJSON {
		harnessArgs = append(harnessArgs, "-json")
	}
	cmd := exec.Command(h.Path, harnessArgs...)
	if *addr == "" {
		// The host talks to the harness directly through our stdin and
		// stdout.
		cmd.Stdin = os.Stdin
	}
	cmd.Stdout = e.stdout
	cmd.Stderr = e.stderr
	// Secrets reach the harness through its environment, never its
	// command line. An empty value clears one inherited from ours.
	cmd.Env = append(os.Environ(), harness.TokenEnv+"="+*token, harness.AuthTokenEnv+"="+e.getenv(harness.AuthTokenEnv))
	cmd.WaitDelay = 5 * time.Second
	if *asJSON {
		slog.New(slog.NewJSONHandler(e.stderr, nil)).Info("atp mcp: serving", "toolkit", h.Name, "tools", h.Tools, "transport", transport)
	} else {
		fmt.Fprintf(e.stderr, "atp mcp: serving %s (%s) over %s\n", plural(len(h.Tools), "tool"), h.Name, transport)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting the MCP server: %w", err)
	}

	// On interrupt, ask the harness to stop and give it time to finish the
	// calls in flight; it exits 0 when it stops that way.
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		stopProcess(cmd.Process)
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			err = <-done
		}
		if err == nil || isSignalExit(err) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("the MCP server stopped: %w", err)
	}
	return nil
}

// fsSet reports whether the flag was given on the command line.
func fsSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// stopProcess asks p to stop: an interrupt where there are signals, else
// (Windows) a kill.
func stopProcess(p *os.Process) {
	if goruntime.GOOS == "windows" || p.Signal(os.Interrupt) != nil {
		p.Kill()
	}
}

func isSignalExit(err error) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && !ee.Exited()
}
