package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	zero := func() float64 { return 0 }
	almostOne := func() float64 { return 0.999999 }
	cases := []struct {
		n      int
		jitter float64
		rnd    func() float64
		want   time.Duration
	}{
		{1, 0, zero, time.Second},
		{2, 0, zero, 2 * time.Second},
		{4, 0, zero, 8 * time.Second},
		{10, 0, zero, 60 * time.Second}, // capped
		{100, 0, zero, 60 * time.Second},
		{3, 0.5, zero, 2 * time.Second},                         // half of 4s is fixed
		{3, 0.5, almostOne, 4*time.Second - 2*time.Microsecond}, // up to the full 4s
		{3, 1, zero, 0},                                         // full jitter
	}
	for _, c := range cases {
		got := Delay(time.Second, time.Minute, c.jitter, c.n, c.rnd)
		if got < c.want-time.Microsecond || got > c.want+time.Microsecond {
			t.Errorf("Delay(n=%d, jitter=%g) = %s, want %s", c.n, c.jitter, got, c.want)
		}
	}
}

func TestNormalize(t *testing.T) {
	got, err := Policy{}.Normalize("B", time.Second, time.Minute)
	if err != nil || got != (Policy{Base: time.Second, Max: time.Minute, Jitter: 0.5}) {
		t.Errorf("zero policy = %+v, %v", got, err)
	}
	got, err = Policy{Base: 2 * time.Minute, Jitter: -1}.Normalize("B", time.Second, time.Minute)
	if err != nil || got != (Policy{Base: 2 * time.Minute, Max: 2 * time.Minute, Jitter: 0}) {
		t.Errorf("large base, no jitter = %+v, %v", got, err)
	}
	for _, c := range []struct {
		p    Policy
		want string
	}{
		{Policy{Base: -1}, "B.Base: expected a positive duration or 0 for the default, got -1ns"},
		{Policy{Max: -1}, "B.Max: expected a positive duration or 0 for the default, got -1ns"},
		{Policy{Jitter: 1.5}, "B.Jitter: expected a fraction at most 1, got 1.5"},
		{Policy{Base: time.Minute, Max: time.Second}, "B.Max (1s) is less than B.Base (1m0s)"},
	} {
		if _, err := c.p.Normalize("B", time.Second, time.Minute); err == nil || err.Error() != c.want {
			t.Errorf("Normalize(%+v) = %v, want %q", c.p, err, c.want)
		}
	}
}
