package mcp

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/runtime"
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

// WithCallTimeout: zero is the default (no bound, no option passed to
// Invoke), a negative duration is no bound too (passed on: Invoke reads it
// so), a positive one is passed on.
func TestCallTimeoutOption(t *testing.T) {
	tk := runtime.NewToolkit("kit")
	for _, c := range []struct {
		d    time.Duration
		opts int
	}{{0, 1}, {-1, 2}, {time.Second, 2}} {
		srv, err := NewServer(tk, WithCallTimeout(c.d))
		if err != nil {
			t.Fatalf("WithCallTimeout(%s): %v", c.d, err)
		}
		if got := len(srv.caller.invokeOpts); got != c.opts {
			t.Errorf("WithCallTimeout(%s): %d Invoke options, want %d", c.d, got, c.opts)
		}
		srv.Close()
	}
}
