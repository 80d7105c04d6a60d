package harness

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/harness/harnesstest"
	"github.com/atpgo/atp/internal/parse"
)

const ctorSource = `package db

import (
	"context"
	"errors"
	"os"
)

// DB needs opening.
type DB struct{ rows map[string]string }

// Open opens the database; CTOR_MODE makes it fail in each way a
// constructor can.
//
//atp:constructor
func Open(ctx context.Context) (*DB, error) {
	switch os.Getenv("CTOR_MODE") {
	case "error":
		return nil, errors.New("no database configured")
	case "panic":
		panic("boom")
	case "nil":
		return nil, nil
	}
	return &DB{rows: map[string]string{}}, ctx.Err()
}

// Put stores a row and returns how many there are.
//
// Parameters:
//   - key: the row's key
//
//atp:tool
func (d *DB) Put(key string) int {
	d.rows[key] = "x"
	return len(d.rows)
}
`

// A constructor that fails, panics or returns nil fails the call with a
// "constructor" error naming it; the tool never runs, and the next request
// tries again.
func TestConstructorFailures(t *testing.T) {
	setup(t)
	repo, err := harnesstest.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "db", "db.go"), []byte(ctorSource), 0o644); err != nil {
		t.Fatal(err)
	}
	dir, err := harnesstest.Module(t.TempDir(), repo, "example.com/ctor", src)
	if err != nil {
		t.Fatal(err)
	}
	pkgs, probs, err := parse.Load(parse.Config{Dir: dir}, "./...")
	if err != nil || len(probs) > 0 {
		t.Fatalf("load: %v %v", err, probs)
	}
	h, err := Build(context.Background(), pkgs, Options{Mode: Invoke})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	put := Request{Tool: "put", Params: json.RawMessage(`{"key":"a"}`), Fresh: true}
	for mode, want := range map[string]string{
		"error": "db.Open: no database configured",
		"panic": "db.Open panicked: boom",
		"nil":   "db.Open returned nil and no error",
		"":      "",
	} {
		t.Setenv("CTOR_MODE", mode)
		p, err := h.Start(context.Background(), &syncBuffer{})
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			resp, err := p.Invoke(put)
			if err != nil {
				t.Fatalf("%q: %v", mode, err)
			}
			if want == "" {
				if resp.Error != "" || string(resp.Result) != "1" {
					t.Errorf("a good constructor: %+v", resp)
				}
				continue
			}
			if resp.Kind != "constructor" || resp.Error != want || resp.Result != nil {
				t.Errorf("%q: %+v, want a constructor error %q", mode, resp, want)
			}
		}
		if err := p.Close(); err != nil && !strings.Contains(err.Error(), "signal") {
			t.Errorf("%q: close: %v", mode, err)
		}
	}
}
