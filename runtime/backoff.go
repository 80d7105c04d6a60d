package runtime

import (
	"context"
	"fmt"
	"github.com/atpgo/atp/internal/backoff"
	"time"
)

// Backoff is Serve's reconnect policy. After the n-th consecutive failed
// attempt (a refused registration, a failed dial, a dropped session) Serve
// waits Base·2^(n-1), capped at Max, with part of the delay randomised so
// that many toolkits dropped by one server restart do not return in step.
// The zero value means the defaults below.
type Backoff struct {
	// Base is the first delay (default 1s).
	Base time.Duration
	// Max caps every delay (default 60s).
	Max time.Duration
	// Jitter is the fraction of each delay that is random: the delay d
	// becomes d·(1-Jitter) + rand[0, d·Jitter). Zero means the default 0.5,
	// "equal jitter": delays stay between d/2 and d, spread enough to break
	// up a stampede yet never near zero, so a toolkit never reconnects in
	// the tight loop the Python SDK falls into. 1 is "full jitter"; a
	// negative value turns jitter off.
	Jitter float64
	// ResetAfter is how long a session must stay up to count as healthy
	// (default 30s, one keepalive period): when a healthy session ends, the
	// next delay starts again from Base. A server that accepts and then
	// drops the connection at once keeps the delays growing.
	ResetAfter time.Duration
}

func (b Backoff) withDefaults() (Backoff, error) {
	p, err := backoff.Policy{Base: b.Base, Max: b.Max, Jitter: b.Jitter}.Normalize("ServeConfig.Backoff", time.Second, 60*time.Second)
	if err != nil {
		return b, err
	}
	b.Base, b.Max, b.Jitter = p.Base, p.Max, p.Jitter
	if b.ResetAfter < 0 {
		return b, fmt.Errorf("ServeConfig.Backoff.ResetAfter: expected a positive duration or 0 for the default, got %s", b.ResetAfter)
	}
	if b.ResetAfter == 0 {
		b.ResetAfter = 30 * time.Second
	}
	return b, nil
}

// delay returns the wait after the n-th consecutive failure (n ≥ 1). rnd
// returns a number in [0, 1).
func (b Backoff) delay(n int, rnd func() float64) time.Duration {
	return backoff.Delay(b.Base, b.Max, b.Jitter, n, rnd)
}

// clock is the time source of Serve's waits: the reconnect backoff, the
// inbox poll interval, the healthy-session measure and the grace before a
// session that was never greeted counts as connected. Tests swap it to
// observe and skip the waits. Network deadlines (keepalive, drain) use real
// time because the network does.
type clock interface {
	Now() time.Time
	// Sleep waits for d, or returns ctx's error once ctx is done.
	Sleep(ctx context.Context, d time.Duration) error
	// AfterFunc calls f on its own goroutine once d has passed, unless
	// stop is called first; stop reports whether it prevented the call.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
