package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/atpgo/atp/server"
)

// Every limit flag reaches its Config field; unset ones keep the server's
// default.
func TestLimitFlags(t *testing.T) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := addLimitFlags(fs)
	if err := fs.Parse([]string{"--max-conns-per-key", "3", "--pong-timeout", "2s", "--unauth-body-limit", "1024",
		"--max-pending-per-llm-key", "7", "--inbox-lease", "1m"}); err != nil {
		t.Fatal(err)
	}
	var cfg server.Config
	if err := f.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	d := server.Defaults()
	if cfg.MaxConnsPerKey != 3 || cfg.PongTimeout != 2*time.Second || cfg.UnauthBodyLimit != 1024 ||
		cfg.MaxPendingPerLLMKey != 7 || cfg.InboxOnlineWindow != time.Minute {
		t.Fatalf("set flags: %+v", cfg)
	}
	if cfg.MaxConnections != d.MaxConnections || cfg.BodyReadTimeout != d.BodyReadTimeout || cfg.MaxToolsPerToolkit != d.MaxToolsPerToolkit {
		t.Fatalf("unset flags do not keep the defaults: %+v", cfg)
	}
}
