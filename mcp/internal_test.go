package mcp

import (
	"bytes"
	"context"
	"errors"
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

func TestBindLifetime(t *testing.T) {
	life, end := context.WithCancelCause(context.Background())
	ctx, release := bindLifetime(withLifetime(life))
	defer release()
	stop := errors.New("request ended")
	end(stop)
	<-ctx.Done()
	if !errors.Is(context.Cause(ctx), stop) {
		t.Errorf("cause %v, want %v", context.Cause(ctx), stop)
	}

	// Without a lifetime the context is returned as it is.
	plain := context.Background()
	if got, release := bindLifetime(plain); got != plain {
		t.Error("a context without a lifetime was wrapped")
	} else {
		release()
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
