package gen

import (
	"fmt"

	"github.com/dave/jennifer/jen"
	"regexp"
	"testing"
	"time"
)

func mustCompile(t *testing.T, pattern string) *regexp.Regexp {
	t.Helper()
	re, err := regexp.Compile(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return re
}

func parseDurationStd(s string) (time.Duration, error) { return time.ParseDuration(s) }

// fmtCode renders a jennifer expression as Go source.
func fmtCode(c jen.Code) string { return fmt.Sprintf("%#v", jen.Var().Id("_").Op("=").Add(c)) }
