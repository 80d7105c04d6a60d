package runtime_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Users import runtime into their binaries: it must not drag the generator's
// dependencies along.
func TestRuntimeDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := []string{"github.com/atpgo/atp/runtime", "github.com/atpgo/atp/internal/backoff", "github.com/gorilla/websocket"}
	for _, dep := range strings.Fields(string(out)) {
		if !strings.Contains(strings.SplitN(dep, "/", 2)[0], ".") {
			continue // standard library
		}
		ok := false
		for _, a := range allowed {
			if dep == a || strings.HasPrefix(dep, a+"/") {
				ok = true
			}
		}
		if !ok {
			t.Errorf("runtime depends on %s; only the standard library, gorilla/websocket and the stdlib-only internal/backoff are allowed", dep)
		}
	}
}
