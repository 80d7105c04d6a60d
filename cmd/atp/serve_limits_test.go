package main

import (
	"flag"
	"io"
	"strings"
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
		"--max-pending-per-llm-key", "7", "--inbox-lease", "1m", "--platools-registers-per-minute", "2", "--platools-result-limit", "8192"}); err != nil {
		t.Fatal(err)
	}
	var cfg server.Config
	if err := f.apply(&cfg); err != nil {
		t.Fatal(err)
	}
	d := server.Defaults()
	if cfg.MaxConnsPerKey != 3 || cfg.PongTimeout != 2*time.Second || cfg.UnauthBodyLimit != 1024 ||
		cfg.MaxPendingPerLLMKey != 7 || cfg.InboxOnlineWindow != time.Minute || cfg.PlatoolsRegistersPerMinute != 2 || cfg.PlatoolsMaxResultBytes != 8192 {
		t.Fatalf("set flags: %+v", cfg)
	}
	if cfg.MaxConnections != d.MaxConnections || cfg.BodyReadTimeout != d.BodyReadTimeout || cfg.MaxToolsPerToolkit != d.MaxToolsPerToolkit {
		t.Fatalf("unset flags do not keep the defaults: %+v", cfg)
	}
}

func TestSchemaLimitFlags(t *testing.T) {
	parse := func(args ...string) (server.Config, error) {
		fs := newFlags(&env{stdout: io.Discard, stderr: io.Discard}, "serve", "atp serve")
		f := addLimitFlags(fs)
		if err := parseFlags(fs, args); err != nil {
			t.Fatal(err)
		}
		var cfg server.Config
		return cfg, f.apply(&cfg)
	}
	cfg, err := parse()
	if err != nil || cfg.MaxSchemaBytes != 256<<10 || cfg.MaxSchemaDepth != 64 || cfg.MaxSchemaEnum != 1000 || cfg.MaxSchemaProperties != 1000 {
		t.Fatalf("defaults: %+v, %v", cfg, err)
	}
	cfg, err = parse("--max-schema-bytes", "1000", "--max-schema-depth", "8", "--max-schema-enum", "5", "--max-schema-properties", "7")
	if err != nil || cfg.MaxSchemaBytes != 1000 || cfg.MaxSchemaDepth != 8 || cfg.MaxSchemaEnum != 5 || cfg.MaxSchemaProperties != 7 {
		t.Fatalf("set: %+v, %v", cfg, err)
	}
	for _, flag := range []string{"--max-schema-bytes", "--max-schema-depth", "--max-schema-enum", "--max-schema-properties"} {
		if _, err := parse(flag, "0"); err == nil || !strings.Contains(err.Error(), flag+": expected a positive number, got 0") {
			t.Errorf("%s 0: %v", flag, err)
		}
	}
}
