package llmclient

import (
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b, err := Backoff{Base: 100 * time.Millisecond, Max: time.Second}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if b.Jitter != 0.5 || b.MaxAttempts != 6 {
		t.Fatalf("defaults: %+v", b)
	}
	for _, tc := range []struct {
		n        int
		low, top time.Duration // rnd 0 and rnd ~1
	}{
		{1, 50 * time.Millisecond, 100 * time.Millisecond},
		{2, 100 * time.Millisecond, 200 * time.Millisecond},
		{4, 400 * time.Millisecond, 800 * time.Millisecond},
		{5, 500 * time.Millisecond, time.Second}, // capped
		{60, 500 * time.Millisecond, time.Second},
	} {
		if got := b.delay(tc.n, func() float64 { return 0 }); got != tc.low {
			t.Errorf("delay(%d) low = %s, want %s", tc.n, got, tc.low)
		}
		if got := b.delay(tc.n, func() float64 { return 0.999999 }); got > tc.top || got < tc.top-time.Millisecond {
			t.Errorf("delay(%d) top = %s, want %s", tc.n, got, tc.top)
		}
	}
	noJitter, _ := Backoff{Base: time.Second, Jitter: -1}.withDefaults()
	if got := noJitter.delay(3, func() float64 { return 0.7 }); got != 4*time.Second {
		t.Errorf("no jitter: %s", got)
	}
}
