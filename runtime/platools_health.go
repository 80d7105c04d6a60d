package runtime

import (
	"errors"
	"sync"
	"time"
)

// Health thresholds of the Platools heartbeat (docs/protocol.md §4.6). The
// status of a tool is computed from its calls of the last hour:
//
//   - "down" when its last healthDownAfter calls all failed;
//   - "degraded" when more than healthDegradedErrors of its calls failed,
//     or they took healthDegradedLatency or more on average;
//   - "healthy" otherwise, and for a tool that has not been called.
//
// Only what the tool is answerable for counts: a result, an error it
// returned, a panic, a timeout. Calls refused before the tool ran (invalid
// params, a missing end-user token) and calls cut short by the toolkit
// (shutdown, a lost connection) are left out: they say nothing about the
// tool.
const (
	healthWindow          = time.Hour
	healthDownAfter       = 5
	healthDegradedErrors  = 0.1
	healthDegradedLatency = 10 * time.Second
	// maxLastError bounds the last_error a heartbeat reports, in bytes.
	maxLastError = 500
)

// healthBuckets is the number of one-minute buckets of the window: memory
// per tool is constant whatever the call rate.
const healthBuckets = int(healthWindow / time.Minute)

// toolHealth keeps the health of each tool of one Serve, across its
// sessions.
type toolHealth struct {
	mu    sync.Mutex
	tools map[string]*healthStats
}

type healthStats struct {
	buckets [healthBuckets]healthBucket
	// last holds the latest healthDownAfter outcomes, a ring.
	last    [healthDownAfter]healthOutcome
	lastN   int // outcomes in last (up to its size)
	lastPos int // where the next outcome goes

	lastError string
}

type healthBucket struct {
	minute  int64 // minutes since the Unix epoch; the bucket is stale when old
	calls   int64
	errors  int64
	latency time.Duration // sum
}

type healthOutcome struct {
	at     time.Time
	failed bool
}

// healthEntry is one tool's entry in a heartbeat's tools_health.
type healthEntry struct {
	Status       string `json:"status"`
	AvgLatencyMs int64  `json:"avg_latency_ms"`
	ErrorCount1h int64  `json:"error_count_1h"`
	LastError    string `json:"last_error,omitempty"`
}

func newToolHealth() *toolHealth { return &toolHealth{tools: map[string]*healthStats{}} }

// countsForHealth reports whether a call's outcome says something about the
// tool (see the thresholds above).
func countsForHealth(err error) bool {
	if err == nil {
		return true
	}
	var (
		te *ToolError
		pe *PanicError
		to *TimeoutError
	)
	return errors.As(err, &te) || errors.As(err, &pe) || errors.As(err, &to)
}

// record adds one call of tool that ended at now after latency; errText is
// the failure's message ("" for a success).
func (h *toolHealth) record(tool string, now time.Time, latency time.Duration, failed bool, errText string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.tools[tool]
	if st == nil {
		st = &healthStats{}
		h.tools[tool] = st
	}
	minute := now.Unix() / 60
	b := &st.buckets[minute%int64(healthBuckets)]
	if b.minute != minute {
		*b = healthBucket{minute: minute}
	}
	b.calls++
	b.latency += latency
	if failed {
		b.errors++
		st.lastError = truncate(errText, maxLastError)
	}
	st.last[st.lastPos] = healthOutcome{at: now, failed: failed}
	st.lastPos = (st.lastPos + 1) % healthDownAfter
	st.lastN = min(st.lastN+1, healthDownAfter)
}

// report returns the heartbeat entry of each named tool at now.
func (h *toolHealth) report(names []string, now time.Time) map[string]healthEntry {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string]healthEntry, len(names))
	for _, name := range names {
		out[name] = h.tools[name].entry(now)
	}
	return out
}

func (st *healthStats) entry(now time.Time) healthEntry {
	e := healthEntry{Status: "healthy"}
	if st == nil {
		return e
	}
	minute := now.Unix() / 60
	var calls int64
	var latency time.Duration
	for _, b := range st.buckets {
		// A bucket counts while its minute is within the last hour.
		if b.minute > minute-int64(healthBuckets) && b.minute <= minute {
			calls += b.calls
			e.ErrorCount1h += b.errors
			latency += b.latency
		}
	}
	if calls > 0 {
		e.AvgLatencyMs = (latency / time.Duration(calls)).Milliseconds()
	}
	if e.ErrorCount1h > 0 {
		e.LastError = st.lastError
	}
	down := st.lastN == healthDownAfter
	for _, o := range st.last[:st.lastN] {
		if !o.failed || now.Sub(o.at) >= healthWindow {
			down = false
		}
	}
	switch {
	case down:
		e.Status = "down"
	case calls > 0 && float64(e.ErrorCount1h) > healthDegradedErrors*float64(calls),
		calls > 0 && latency/time.Duration(calls) >= healthDegradedLatency:
		e.Status = "degraded"
	}
	return e
}
