package server

import (
	"math"
	"math/rand/v2"
	"slices"
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

// The server's one timer over the calls' deadlines moves to a call whose
// timeout_ms ends before the calls already waiting: it times out on time,
// while the one before it, with the default timeout, still waits for its
// answer.
func TestShorterTimeoutAfterLongerOne(t *testing.T) {
	e := newEnv(t, Config{CallTimeout: time.Hour})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	llm := e.dialPyLLM(e.llmKey)
	long := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	llm.WriteJSON(long)
	first := readToolRequest(t, tk)
	short := pyTaskRequest(e.llmKey, "hello", 1, "greet", map[string]any{"name": "y"})
	short["timeout_ms"] = 20
	llm.WriteJSON(short)
	readToolRequest(t, tk) // never answered
	m := readMsg(t, llm)
	checkTaskResponse(t, m, short, "error")
	if msg := m["message"].(string); !strings.Contains(msg, "within 20ms") {
		t.Fatalf("timeout message = %q", msg)
	}
	tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": first.Payload.RequestID, "result": "Hello, x"})
	if got := checkTaskResponse(t, readMsg(t, llm), long, "success"); got != "Hello, x" {
		t.Fatalf("the long call's answer = %v", got)
	}
}

// The deadlines' heap keeps the earliest first, and each task's slot is
// its index, through adds and removes in any order.
func TestTaskDeadlinesHeap(t *testing.T) {
	d := &taskDeadlines{stopped: true} // no timer: only the heap is tested
	rng := rand.New(rand.NewPCG(1, 2))
	var live []*task
	check := func() {
		t.Helper()
		if len(d.heap) != len(live) {
			t.Fatalf("heap holds %d tasks, want %d", len(d.heap), len(live))
		}
		for i, x := range d.heap {
			if x.slot != i {
				t.Fatalf("task in slot %d says %d", i, x.slot)
			}
			if i > 0 && x.deadline < d.heap[(i-1)/2].deadline {
				t.Fatalf("slot %d is due before its parent", i)
			}
		}
	}
	for range 2000 {
		if len(live) > 0 && rng.IntN(3) == 0 {
			i := rng.IntN(len(live))
			d.remove(live[i])
			if live[i].slot != -1 {
				t.Fatal("a removed task keeps a slot")
			}
			d.remove(live[i]) // twice: nothing
			live = append(live[:i], live[i+1:]...)
		} else {
			x := &task{slot: -1}
			d.add(x, time.Hour+time.Duration(rng.IntN(100))*time.Millisecond)
			live = append(live, x)
		}
		check()
	}
	for len(d.heap) > 0 {
		first := d.heap[0]
		for _, x := range live {
			if x.deadline < first.deadline {
				t.Fatal("the heap's first is not the earliest")
			}
		}
		d.remove(first)
		live = slices.DeleteFunc(live, func(x *task) bool { return x == first })
		check()
	}
}

// A timeout as long as a Duration goes (a server configured never to time
// out a call) is a deadline far away, not one that overflows into the past
// and ends the call at once.
func TestTaskDeadlineOfLargestTimeout(t *testing.T) {
	d := &taskDeadlines{stopped: true} // no timer: sweep is called by hand
	never := &task{slot: -1}
	d.add(never, math.MaxInt64)
	if never.deadline <= time.Since(d.base) {
		t.Fatalf("a task with the largest timeout is due at once (deadline %d)", never.deadline)
	}
	d.add(&task{slot: -1}, time.Hour)
	d.sweep() // nothing due: no task's expire runs (its server is nil)
	if never.slot < 0 || len(d.heap) != 2 {
		t.Fatalf("a task with the largest timeout was taken as due (deadline %d)", never.deadline)
	}
	if d.heap[0] == never {
		t.Fatal("the largest timeout comes before an hour")
	}
}
