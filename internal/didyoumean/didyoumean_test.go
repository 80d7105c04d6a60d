package didyoumean

import "testing"

func TestSuggest(t *testing.T) {
	for _, c := range []struct {
		s          string
		candidates []string
		want       string
	}{
		{"mesage", []string{"message", "times"}, "message"},
		{"tiems", []string{"message", "times"}, "times"}, // a swap is one edit
		{"Message", []string{"message"}, "message"},      // case is ignored
		{"nmae", []string{"name"}, "name"},
		{"nm", []string{"name"}, ""}, // two edits on a short word: too far
		{"location", []string{"days", "units"}, ""},
		{"exepct_eror", []string{"expect_error"}, "expect_error"}, // a swap and a missing letter
		{"exp_err", []string{"expect_error"}, ""},
		{"expect_eror", []string{"expect_error", "expect_result"}, "expect_error"},
		{"", []string{"a"}, "a"},
	} {
		if got := Suggest(c.s, c.candidates); got != c.want {
			t.Errorf("Suggest(%q, %q) = %q, want %q", c.s, c.candidates, got, c.want)
		}
	}
}

func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"kitten", "sitting", 3}, {"", "abc", 3}, {"héllo", "hello", 1},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
