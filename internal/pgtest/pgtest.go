// Package pgtest gives a test a PostgreSQL schema of its own, so that tests
// run in parallel on one database and leave nothing behind.
//
// The database is the one $ATP_TEST_POSTGRES names, e.g.
// postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Without it a test
// that asks for one is skipped, saying so, except under CI (CI set), where
// it fails: a CI run must not pass by skipping the PostgreSQL cases. A
// database that does not answer fails the test, CI or not.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Env is the variable that names the test database.
const Env = "ATP_TEST_POSTGRES"

// Example is what Env is set to on a machine with a local PostgreSQL.
const Example = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// DSN creates an empty schema in the test database and returns the
// database's URL with that schema as its search_path. The schema is dropped,
// with everything in it, when the test ends: close what uses it in a
// cleanup registered after DSN returns (cleanups run last first).
func DSN(t testing.TB) string {
	t.Helper()
	base := URL(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("%s: PostgreSQL does not answer: %v", Env, err)
	}
	defer conn.Close(context.Background())
	b := make([]byte, 8)
	rand.Read(b)
	schema := "atp_test_" + hex.EncodeToString(b)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("%s: create schema %s: %v", Env, schema, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("%s: drop schema %s: %v", Env, schema, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("%s: drop schema %s: %v", Env, schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", Env, err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// URL returns $ATP_TEST_POSTGRES, skipping the test without it (failing it
// under CI).
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(Env)
	if base == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set under CI: the PostgreSQL cases must run there (e.g. %s=%s)", Env, Env, Example)
		}
		t.Skipf("PostgreSQL case skipped: set %s to run it (e.g. %s=%s)", Env, Env, Example)
	}
	return base
}
