package mcp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestIsObject(t *testing.T) {
	for in, want := range map[string]bool{
		`{}`: true, " \n\t\r{\"a\":1}": true,
		`[]`: false, `"{"`: false, `null`: false, ``: false, "  ": false,
	} {
		if got := isObject([]byte(in)); got != want {
			t.Errorf("isObject(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestAbbreviate(t *testing.T) {
	long := `"` + strings.Repeat("x", 100) + `"`
	if got := abbreviate([]byte(long)); len(got) != 80+len("…") || !strings.HasSuffix(got, "…") {
		t.Errorf("abbreviate(long) = %q", got)
	}
	if got := abbreviate([]byte(" null\n")); got != "null" {
		t.Errorf("abbreviate(null) = %q", got)
	}
}

func TestMinLevelHandler(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(minLevelHandler{slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug}), slog.LevelWarn})
	l = l.WithGroup("sdk").With("k", "v")
	l.Info("dropped")
	l.Warn("kept")
	if out := b.String(); strings.Contains(out, "dropped") || !strings.Contains(out, "msg=kept sdk.k=v") {
		t.Errorf("log output %q", out)
	}
}
