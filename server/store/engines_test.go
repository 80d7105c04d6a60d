package store

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/pgtest"
)

// The conformance suite: each test that calls eachEngine runs its cases on
// a SQLite file and on a PostgreSQL schema of its own (see pgtest), the
// same code on both, so that the two stores keep one contract.

// testDB is an empty database of one engine, which a test opens as often
// as it likes (a second Store on it is another process, or replica).
type testDB struct {
	engine string
	dsn    string
}

func eachEngine(t *testing.T, fn func(t *testing.T, db testDB)) {
	t.Helper()
	for _, engine := range []string{EngineSQLite, EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			fn(t, newTestDB(t, engine))
		})
	}
}

func newTestDB(t *testing.T, engine string) testDB {
	t.Helper()
	if engine == EnginePostgres {
		return testDB{engine, pgtest.DSN(t)}
	}
	return testDB{engine, filepath.Join(t.TempDir(), "sub", "atp.db")}
}

// open opens the database, migrated to the latest version.
func (db testDB) open(t *testing.T) *Store {
	t.Helper()
	return db.openAt(t, -1)
}

// openAt opens the database migrated to version (-1: the latest).
func (db testDB) openAt(t *testing.T, version int) *Store {
	t.Helper()
	d := &sqliteDialect
	if db.engine == EnginePostgres {
		d = &postgresDialect
	}
	migs := d.migrations
	if version >= 0 {
		migs = migs[:version]
	}
	s, err := open(context.Background(), db.dsn, migs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// exec runs a statement of a test ('?' placeholders on both engines).
func (s *Store) exec(t *testing.T, query string, args ...any) {
	t.Helper()
	if _, err := s.db.ExecContext(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// count runs a query of a test that returns one number.
func (s *Store) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func (s *Store) hasTable(t *testing.T, name string) bool {
	t.Helper()
	return s.count(t, s.d.tableExists, name) == 1
}

func TestNumberPlaceholders(t *testing.T) {
	for in, want := range map[string]string{
		`SELECT 1`:                           `SELECT 1`,
		`a = ? AND b = ?`:                    `a = $1 AND b = $2`,
		`x = '?' AND y = ? AND z = "w?" , ?`: `x = '?' AND y = $1 AND z = "w?" , $2`,
	} {
		if got := numberPlaceholders(in); got != want {
			t.Errorf("numberPlaceholders(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDescribe(t *testing.T) {
	for dsn, want := range map[string]string{
		"":                    Memory,
		"/var/lib/atp/atp.db": "/var/lib/atp/atp.db",
		"postgres://atp:s3cret@db:5432/atp?sslmode=require":   "postgres://atp:xxxxx@db:5432/atp?sslmode=require",
		"postgresql://db/atp?password=s3cret&sslmode=disable": "postgresql://db/atp?password=xxxxx&sslmode=disable",
	} {
		if got := Describe(dsn); got != want {
			t.Errorf("Describe(%q) = %q, want %q", dsn, got, want)
		}
		if IsPostgres(dsn) != strings.HasPrefix(want, "postgres") {
			t.Errorf("IsPostgres(%q) = %v", dsn, IsPostgres(dsn))
		}
	}
	// A URL that does not work: the error names it without its password.
	_, err := Open(context.Background(), "postgres://atp:s3cret@127.0.0.1:1/atp?connect_timeout=5&sslmode=disable")
	if err == nil || strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Fatalf("unreachable: %v", err)
	}
	_, err = Open(context.Background(), "postgres://db/atp?pool_max_conns=zero")
	if err == nil || !strings.Contains(err.Error(), "pool_max_conns") {
		t.Fatalf("bad pool_max_conns: %v", err)
	}
}
