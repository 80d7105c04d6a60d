// Package counter has method tools in an internal package: one on a
// zero-value receiver, one on a receiver its constructor makes.
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

// Tally counts words. Its map must be made: a zero Tally would panic, so
// atp test and atp mcp make one with NewTally.
type Tally struct{ seen map[string]int }

// NewTally makes an empty Tally.
//
//atp:constructor
func NewTally() *Tally { return &Tally{seen: map[string]int{}} }

// Count counts one more use of word and returns how many there were.
//
// Parameters:
//   - word: the word, e.g. "go"
//
//atp:tool
func (t *Tally) Count(word string) int {
	t.seen[word]++
	return t.seen[word]
}
