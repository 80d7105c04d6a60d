// Package backoff computes reconnect delays for runtime.Serve and llmclient:
// exponential growth, a cap, and jitter. Standard library only, since the
// runtime uses it.
package backoff

import "time"

// Delay returns the wait after the n-th failure in a row (n >= 1): base
// doubled n-1 times, capped at max, with the fraction jitter of it (0 to 1)
// random, so that clients dropped together do not return together: the
// delay d becomes d·(1-jitter) + rnd()·d·jitter. rnd returns a number in
// [0, 1).
func Delay(base, max time.Duration, jitter float64, n int, rnd func() float64) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if jitter == 0 {
		return d
	}
	fixed := time.Duration(float64(d) * (1 - jitter))
	return fixed + time.Duration(rnd()*float64(d-fixed))
}
