package parse

import (
	"strings"
	"unicode"
)

// SnakeCase turns a Go identifier into snake_case, keeping acronyms and
// digits together: CreateCompany → create_company, GetHTTPStatus →
// get_http_status, ID → id, ListV2Items → list_v2_items, userID → user_id.
// An underscore goes before an upper-case letter that follows a lower-case
// letter or a digit, or that starts a word after an acronym (the P of
// HTTPServer is the end of HTTP, the S starts Server).
func SnakeCase(s string) string {
	runes := []rune(s)
	var b strings.Builder
	b.Grow(len(s) + 4)
	for i, r := range runes {
		if unicode.IsUpper(r) && i > 0 {
			prev := runes[i-1]
			startsWord := unicode.IsLower(prev) || unicode.IsDigit(prev) ||
				(unicode.IsUpper(prev) && i+1 < len(runes) && unicode.IsLower(runes[i+1]))
			if startsWord && prev != '_' {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
