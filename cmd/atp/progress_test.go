package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"slices"
	"testing"
	"time"
)

// fakeTimer gives a progress a timer the test fires.
func fakeTimer(p *progress) chan time.Time {
	c := make(chan time.Time)
	p.after = func(d time.Duration) <-chan time.Time {
		if d != progressDelay {
			panic("unexpected delay")
		}
		return c
	}
	return c
}

func TestProgress(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&env{stderr: &buf})
	timer := fakeTimer(p)

	// A step that ends before its second prints nothing.
	p.start("quick").end()
	if buf.Len() != 0 {
		t.Fatalf("quick step printed %q", buf.String())
	}

	// A slow one prints its line once, and it stays off a terminal.
	s := p.start("building the harness")
	timer <- time.Now() // unbuffered: the step has taken it when this returns
	s.end()
	if got := buf.String(); got != "building the harness…\n" {
		t.Fatalf("slow step printed %q", got)
	}

	// On a terminal the line has no newline and is erased at the end.
	buf.Reset()
	p.tty = true
	s = p.start("loading")
	timer <- time.Now()
	s.end()
	if got := buf.String(); got != "loading…\r\x1b[K" {
		t.Fatalf("terminal: %q", got)
	}
	if isTerminal(&buf) {
		t.Error("a buffer is not a terminal")
	}

	// A step whose delay passed before it ended shows its line, even when
	// the end came first to the reporting goroutine.
	buf.Reset()
	p.tty = false
	fired := make(chan time.Time, 1)
	fired <- time.Now()
	p.after = func(time.Duration) <-chan time.Time { return fired }
	p.start("slow").end()
	if got := buf.String(); got != "slow…\n" {
		t.Fatalf("fired before the end: %q", got)
	}

	// Without a clock, never a line.
	buf.Reset()
	newProgress(&env{stderr: &buf}).start("never").end()
	if buf.Len() != 0 {
		t.Fatalf("no clock: %q", buf.String())
	}
}

func TestParseArgs(t *testing.T) {
	for _, c := range []struct {
		args      []string
		pos       []string
		tool      string
		asJSON    bool
		wantUsage bool
	}{
		{[]string{"./a", "--tool", "x", "./b", "--json"}, []string{"./a", "./b"}, "x", true, false},
		{[]string{"--tool=x"}, nil, "x", false, false},
		{[]string{"./a", "--", "--json"}, []string{"./a", "--json"}, "", false, false},
		{[]string{"./a", "--nope"}, nil, "", false, true},
	} {
		fs := flag.NewFlagSet("t", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		tool := fs.String("tool", "", "")
		asJSON := fs.Bool("json", false, "")
		pos, err := parseArgs(fs, c.args)
		if c.wantUsage {
			if _, ok := err.(*usageError); !ok {
				t.Errorf("%q: err %v, want a usage error", c.args, err)
			}
			continue
		}
		if err != nil || !slices.Equal(pos, c.pos) || *tool != c.tool || *asJSON != c.asJSON {
			t.Errorf("%q: %q tool=%q json=%v err=%v", c.args, pos, *tool, *asJSON, err)
		}
	}
}

func TestPercentilesAndLatency(t *testing.T) {
	var cases []*caseResult
	for i := 1; i <= 20; i++ {
		v := float64(i)
		cases = append(cases, &caseResult{latency: time.Duration(i) * time.Millisecond, LatencyMs: &v})
	}
	cases = append(cases, &caseResult{}) // a crash: no latency
	p50, p95 := percentiles(cases)
	if p50 != 10*time.Millisecond || p95 != 19*time.Millisecond {
		t.Errorf("p50 %s p95 %s", p50, p95)
	}
	if p50, p95 := percentiles(nil); p50 != 0 || p95 != 0 {
		t.Errorf("no cases: %s %s", p50, p95)
	}
	for d, want := range map[time.Duration]string{
		412345 * time.Nanosecond:    "412µs",
		1234567 * time.Nanosecond:   "1.23ms",
		2512345678:                  "2.51s",
		999 * time.Nanosecond:       "1µs",
		123456789 * time.Nanosecond: "123.46ms",
	} {
		if got := formatLatency(d); got != want {
			t.Errorf("formatLatency(%d) = %q, want %q", d, got, want)
		}
	}
}

func TestJSONEqualAndBrief(t *testing.T) {
	if !jsonEqual(json.RawMessage(`{"a":1,"b":[1.0]}`), json.RawMessage(`{"b":[1],"a":1.0}`)) {
		t.Error("same meaning, different spelling")
	}
	if jsonEqual(json.RawMessage(`{"a":1}`), json.RawMessage(`{"a":"1"}`)) {
		t.Error("number vs string")
	}
	long := json.RawMessage(`"` + string(bytes.Repeat([]byte("é"), 200)) + `"`)
	if got := []rune(brief(long)); len(got) != 120 || got[119] != '…' {
		t.Errorf("brief of a long value: %d runes", len(got))
	}
	if got := brief(json.RawMessage("{\n  \"a\": 1\n}")); got != `{"a":1}` {
		t.Errorf("brief compacts: %q", got)
	}
}
