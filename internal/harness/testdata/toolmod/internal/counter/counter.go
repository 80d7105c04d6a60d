// Package counter has a method tool, called on a zero-value receiver, in an
// internal package.
package counter

// Counter counts.
type Counter struct{ n int }

// Increment adds by to the counter and returns the new count.
//
// Parameters:
//   - by: how much to add, e.g. 2
//
//atp:tool
func (c *Counter) Increment(by int) int {
	c.n += by
	return c.n
}
