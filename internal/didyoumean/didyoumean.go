// Package didyoumean finds the word a misspelled one was probably meant to
// be, for "did you mean" hints in atpgen's and atp's messages.
package didyoumean

import (
	"strings"
	"unicode/utf8"
)

// Suggest returns the candidate closest to s when it is close enough to be
// a likely typo, else "". Case is ignored; a swap of neighbours counts as
// one edit. Up to two edits are allowed, one for candidates of four letters
// or fewer (where two would match unrelated words).
func Suggest(s string, candidates []string) string {
	best, bestDist := "", 0
	ls := strings.ToLower(s)
	for _, c := range candidates {
		d := Distance(ls, strings.ToLower(c))
		limit := 2
		if utf8.RuneCountInString(c) <= 4 {
			limit = 1
		}
		if d <= limit && (best == "" || d < bestDist) {
			best, bestDist = c, d
		}
	}
	return best
}

// Distance is the optimal string alignment distance between a and b
// (insertions, deletions, substitutions and swaps of neighbours).
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}
