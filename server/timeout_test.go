package server

import (
	"math"
	"strings"
	"testing"
	"time"
)

// timeout_ms is compared with MaxCallTimeout in milliseconds, so that no
// value overflows a Duration: the largest int64 is capped, not turned into
// a negative timeout; a negative one is refused.
func TestCallTimeoutNeverOverflows(t *testing.T) {
	s := &Server{cfg: Config{CallTimeout: 2 * time.Minute, MaxCallTimeout: 10 * time.Minute}}
	for _, c := range []struct {
		top, payload int64
		want         time.Duration
		capped       bool
		err          string
	}{
		{0, 0, 2 * time.Minute, false, ""},
		{1500, 0, 1500 * time.Millisecond, false, ""},
		{0, 1500, 1500 * time.Millisecond, false, ""},
		{600_000, 0, 10 * time.Minute, false, ""},
		{600_001, 0, 10 * time.Minute, true, ""},
		{math.MaxInt64, 0, 10 * time.Minute, true, ""},
		{0, math.MaxInt64, 10 * time.Minute, true, ""},
		{math.MaxInt64/int64(time.Millisecond) + 1, 0, 10 * time.Minute, true, ""}, // the first that overflows when multiplied
		{-1, 0, 0, false, "expected a positive number of milliseconds, got -1"},
		{math.MinInt64, 0, 0, false, "got -9223372036854775808"},
	} {
		got, capped, err := s.callTimeout(&llmMessage{TimeoutMs: c.top, Payload: taskPayload{TimeoutMs: c.payload}})
		if got != c.want || capped != c.capped || (err == nil) != (c.err == "") || (err != nil && !strings.Contains(err.Error(), c.err)) {
			t.Errorf("timeout_ms %d/%d = %s, %v, %v; want %s, %v, %q", c.top, c.payload, got, capped, err, c.want, c.capped, c.err)
		}
	}
}

// A call asking for the largest timeout_ms waits MaxCallTimeout and says
// that its wish was capped.
func TestHugeTimeoutIsCapped(t *testing.T) {
	e := newEnv(t, Config{MaxCallTimeout: 40 * time.Millisecond})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	req["timeout_ms"] = int64(math.MaxInt64)
	start := time.Now()
	llm.WriteJSON(req)
	readToolRequest(t, tk) // never answered
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	if msg := m["message"].(string); !strings.Contains(msg, "within 40ms") || !strings.Contains(msg, "this server's maximum") {
		t.Fatalf("timeout message = %q, want the 40ms cap named", msg)
	}
	if waited := time.Since(start); waited < 40*time.Millisecond {
		t.Fatalf("the call ended after %s, before the capped timeout", waited)
	}
}
