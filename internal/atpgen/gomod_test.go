package atpgen

import (
	"os"
	"testing"

	"golang.org/x/mod/modfile"
)

// A replace directive in the root go.mod would break
// go run github.com/atpgo/atp/cmd/atpgen@version and go install.
func TestRootGoModHasNoReplace(t *testing.T) {
	data, err := os.ReadFile("../../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	f, err := modfile.Parse("go.mod", data, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range f.Replace {
		t.Errorf("go.mod replaces %s: remove it (it breaks go install and go run with a version)", r.Old.Path)
	}
	found := false
	for _, tool := range f.Tool {
		found = found || tool.Path == "github.com/atpgo/atp/cmd/atpgen"
	}
	if !found {
		t.Error("go.mod lacks `tool github.com/atpgo/atp/cmd/atpgen`, which go:generate go tool atpgen needs")
	}
}
