package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// The README's first command, run as a test: server, toolkit, provider
// tool lists and routed calls, end to end on loopback.
func TestQuickstart(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{
		"2. The hello toolkit registered its tools and connected over WebSocket.",
		`"type": "function",`,
		`"input_schema": {`,
		`greet {"name":"Ada","times":2} -> "Hello, Ada! Hello, Ada!"`,
		`add {"a":1.5,"b":"two"} -> error: invalid params for add: b: expected number, got "two"`,
		`nmae: unknown field (allowed: name, times); times: expected integer <= 5, got 9; name: missing required field (expected string)`,
		`"type": "function_call_output",`,
		"5. Toolkit and server shut down cleanly.",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("quickstart output lacks %q:\n%s", want, out.String())
		}
	}
	// The steps are numbered 1 to 5, each once, in order.
	var steps []string
	for _, line := range strings.Split(out.String(), "\n") {
		if len(line) > 1 && line[0] >= '1' && line[0] <= '9' && line[1] == '.' {
			steps = append(steps, line[:1])
		}
	}
	if got := strings.Join(steps, ""); got != "12345" {
		t.Errorf("step numbers %q, want 12345:\n%s", got, out.String())
	}
}
