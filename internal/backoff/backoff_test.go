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
