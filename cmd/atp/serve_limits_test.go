package main

import (
	"io"
	"strings"
	"testing"

	"github.com/atpgo/atp/server"
)

func TestSchemaLimitFlags(t *testing.T) {
	parse := func(args ...string) (server.Config, error) {
		fs := newFlags(&env{stdout: io.Discard, stderr: io.Discard}, "serve", "atp serve")
		f := addSchemaLimitFlags(fs)
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
		if _, err := parse(flag, "0"); err == nil || !strings.Contains(err.Error(), flag+" must be positive, got 0") {
			t.Errorf("%s 0: %v", flag, err)
		}
	}
}
