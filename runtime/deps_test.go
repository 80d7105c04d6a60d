package runtime_test

import (
	"os/exec"
	"strings"
	"testing"
)

// Users import runtime into their binaries: it must not drag the generator's
// dependencies along. Packages of this module (runtime/atpimpl, the
// internal helpers) are allowed; go list -deps lists what they import in
// turn, so a module they would bring in is still caught.
func TestRuntimeDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	allowed := []string{"github.com/atpgo/atp/runtime", "github.com/atpgo/atp/internal", "github.com/gorilla/websocket"}
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
			t.Errorf("runtime depends on %s; only the standard library, gorilla/websocket and this module's runtime and internal packages are allowed", dep)
		}
	}
}
