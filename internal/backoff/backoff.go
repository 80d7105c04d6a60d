// Package backoff computes reconnect delays for runtime.Serve and llmclient:
// exponential growth, a cap, and jitter. Standard library only, since the
// runtime uses it.
package backoff

import (
	"fmt"
	"time"
)

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

// Policy is what runtime.Backoff and llmclient.Backoff have in common: the
// first delay, the cap and the random fraction of each delay.
type Policy struct {
	Base, Max time.Duration
	Jitter    float64
}

// Normalize checks p and replaces its zero values with the defaults: Base
// defBase, Max the larger of defMax and Base, Jitter 0.5 ("equal jitter");
// a negative Jitter turns jitter off. name prefixes the errors, e.g.
// "ServeConfig.Backoff".
func (p Policy) Normalize(name string, defBase, defMax time.Duration) (Policy, error) {
	switch {
	case p.Base < 0:
		return p, fmt.Errorf("%s.Base: expected a positive duration or 0 for the default, got %s", name, p.Base)
	case p.Max < 0:
		return p, fmt.Errorf("%s.Max: expected a positive duration or 0 for the default, got %s", name, p.Max)
	case p.Jitter > 1:
		return p, fmt.Errorf("%s.Jitter: expected a fraction at most 1, got %g", name, p.Jitter)
	}
	if p.Base == 0 {
		p.Base = defBase
	}
	if p.Max == 0 {
		p.Max = max(defMax, p.Base)
	}
	if p.Max < p.Base {
		return p, fmt.Errorf("%s.Max (%s) is less than %s.Base (%s)", name, p.Max, name, p.Base)
	}
	switch {
	case p.Jitter == 0:
		p.Jitter = 0.5
	case p.Jitter < 0:
		p.Jitter = 0
	}
	return p, nil
}
