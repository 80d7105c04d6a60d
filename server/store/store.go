// Package store is the reference server's database: API keys, toolkits and
// their tools, OAuth platforms and tokens, webhooks and their deliveries.
// It runs on SQLite (one file, embedded: modernc.org/sqlite, no cgo), the
// default, or on PostgreSQL (pgx), which several servers share.
//
// Both engines run the same queries through database/sql, so that every
// rule (key binding, sealing, limits) is written once and a conformance
// test suite runs the same cases on both. Every write runs in a
// transaction. The schema is versioned: Open applies the numbered
// migrations the database lacks, all in one transaction, so that a database
// is never left half-migrated, and refuses a database written by a newer
// atp.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Memory is the path that opens a private in-memory SQLite database, gone
// on Close.
const Memory = ":memory:"

// DefaultPostgresConns is the most connections a PostgreSQL Store opens,
// unless its URL says otherwise with pool_max_conns.
const DefaultPostgresConns = 16

// Store is an open database. It is safe for concurrent use, and for use by
// several processes at once: the server and `atp keys` on one SQLite file,
// or any number of servers on one PostgreSQL database.
type Store struct {
	pool *sql.DB
	db   handle // pool, with the engine's placeholders
	d    *dialect
	b    *binder
	name string // the database for people: a path, or a URL without its password
	now  func() time.Time
}

// IsPostgres reports whether dsn names a PostgreSQL database
// (postgres:// or postgresql://) rather than a SQLite file.
func IsPostgres(dsn string) bool {
	l := strings.ToLower(dsn)
	return strings.HasPrefix(l, "postgres://") || strings.HasPrefix(l, "postgresql://")
}

// Describe returns dsn as it can be shown: a path as it is, a PostgreSQL
// URL without its password.
func Describe(dsn string) string {
	if dsn == "" {
		return Memory
	}
	if !IsPostgres(dsn) {
		return dsn
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "a PostgreSQL URL that does not parse"
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// Open opens the database dsn names and migrates its schema:
//   - a postgres:// or postgresql:// URL opens that PostgreSQL database,
//     in the schema its search_path names (the user's default otherwise).
//     Its query may set pool_max_conns (default DefaultPostgresConns);
//     every other parameter is pgx's (sslmode, connect_timeout, ...);
//   - "" or Memory opens a private in-memory SQLite database;
//   - anything else is the path of a SQLite file, created when missing:
//     missing parent directories with mode 0700, the file with mode 0600,
//     since it holds key hashes.
func Open(ctx context.Context, dsn string) (*Store, error) {
	return open(ctx, dsn, nil)
}

// open is Open with the migrations to apply (nil: the engine's own), so
// that tests can stop a database at an older version.
func open(ctx context.Context, dsn string, migs [][]string) (*Store, error) {
	if IsPostgres(dsn) {
		return openPostgres(ctx, dsn, migs)
	}
	return openSQLite(ctx, dsn, migs)
}

func openSQLite(ctx context.Context, path string, migs [][]string) (*Store, error) {
	memory := path == "" || path == Memory
	var dsn string
	if memory {
		dsn = Memory
	} else {
		if strings.ContainsRune(path, '?') {
			return nil, fmt.Errorf("store: database path %q: a '?' is not allowed in the path", path)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("store: create the database directory: %w", err)
		}
		// Create the file private before SQLite does with the umask's mode;
		// its -wal and -shm files take the same mode.
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("store: %w", err)
		}
		f.Close()
		dsn = path
	}
	// busy_timeout lets a second process (atp keys beside atp serve) wait for
	// the write lock instead of failing; _txlock=immediate takes that lock at
	// BEGIN, so two writers never deadlock upgrading read locks; WAL lets
	// readers run beside the writer.
	dsn += "?_busy_timeout=5000&_foreign_keys=on&_txlock=immediate"
	if !memory {
		dsn += "&_journal_mode=WAL&_synchronous=NORMAL"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if memory {
		// Each connection to :memory: is a separate empty database: keep
		// exactly one, forever.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	}
	return newStore(ctx, db, &sqliteDialect, Describe(path), migs)
}

func openPostgres(ctx context.Context, dsn string, migs [][]string) (*Store, error) {
	name := Describe(dsn)
	u, err := url.Parse(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %s: not a valid URL", name)
	}
	conns := DefaultPostgresConns
	q := u.Query()
	if v := q.Get("pool_max_conns"); v != "" {
		if conns, err = strconv.Atoi(v); err != nil || conns < 1 {
			return nil, fmt.Errorf("store: %s: pool_max_conns: expected a positive number of connections, got %q", name, v)
		}
		q.Del("pool_max_conns")
		u.RawQuery = q.Encode()
	}
	cfg, err := pgx.ParseConfig(u.String())
	if err != nil {
		return nil, fmt.Errorf("store: %s: %s", name, scrub(err.Error(), u))
	}
	db := stdlib.OpenDB(*cfg)
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	db.SetConnMaxIdleTime(5 * time.Minute)
	// Connections are renewed now and then, so that a server failed over
	// or a pooler's rebalancing reaches this process too.
	db.SetConnMaxLifetime(30 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %s", name, scrub(err.Error(), u))
	}
	return newStore(ctx, db, &postgresDialect, name, migs)
}

// scrub removes the URL's password from a driver's message, should the
// driver have quoted it.
func scrub(msg string, u *url.URL) string {
	if pw, ok := u.User.Password(); ok && pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	if pw := u.Query().Get("password"); pw != "" {
		msg = strings.ReplaceAll(msg, pw, "xxxxx")
	}
	return msg
}

func newStore(ctx context.Context, db *sql.DB, d *dialect, name string, migs [][]string) (*Store, error) {
	b := &binder{numbered: d.numbered}
	s := &Store{pool: db, db: handle{db, b}, d: d, b: b, name: name, now: time.Now}
	if migs == nil {
		migs = d.migrations
	}
	if err := s.migrate(ctx, migs); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", name, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error { return s.pool.Close() }

// Engine returns the engine the store runs on: EngineSQLite or
// EnginePostgres.
func (s *Store) Engine() string { return s.d.engine }

// Name returns the database as it can be shown: a SQLite path, Memory, or
// a PostgreSQL URL without its password.
func (s *Store) Name() string { return s.name }

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// SetClock replaces the clock used for timestamps, for tests.
func (s *Store) SetClock(now func() time.Time) { s.now = now }

// SchemaVersion returns the schema version the database is at.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.db.QueryRowContext(ctx, "SELECT version FROM schema_version").Scan(&v)
	return v, err
}

func (s *Store) migrate(ctx context.Context, migs [][]string) error {
	return s.tx(ctx, func(tx handle) error {
		// Several servers may start at once on a new database: one
		// migrates, the others then find it done.
		if err := s.lock(ctx, tx, "atp/migrate"); err != nil {
			return fmt.Errorf("lock the schema: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var version int
		switch err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&version); {
		case errors.Is(err, sql.ErrNoRows):
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (0)`); err != nil {
				return fmt.Errorf("init schema_version: %w", err)
			}
		case err != nil:
			return fmt.Errorf("read schema_version: %w", err)
		}
		if version > len(s.d.migrations) {
			return fmt.Errorf("database schema version is %d but this atp knows versions up to %d: use a newer atp", version, len(s.d.migrations))
		}
		if version >= len(migs) {
			return nil
		}
		for v := version; v < len(migs); v++ {
			for _, stmt := range migs[v] {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", v+1, err)
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migs)); err != nil {
			return fmt.Errorf("set schema_version: %w", err)
		}
		return nil
	})
}

// lock takes the dialect's lock on the name parts make for the rest of the
// transaction (nothing on SQLite, whose write transactions are
// serialized). The parts may hold any text: they are hashed into the name.
func (s *Store) lock(ctx context.Context, tx handle, parts ...string) error {
	if s.d.lockName == "" {
		return nil
	}
	h := sha256.New()
	for _, p := range parts {
		h.Write(binary.AppendUvarint(nil, uint64(len(p))))
		h.Write([]byte(p))
	}
	_, err := tx.ExecContext(ctx, s.d.lockName, hex.EncodeToString(h.Sum(nil)))
	return err
}

// tx runs fn in a write transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(handle) error) error {
	return s.runTx(ctx, &sql.TxOptions{}, fn)
}

// readTx runs fn in a read-only transaction that reads one snapshot and
// does not take the write lock.
func (s *Store) readTx(ctx context.Context, fn func(handle) error) error {
	return s.runTx(ctx, &s.d.readTx, fn)
}

// txAttempts bounds the runs of a transaction that PostgreSQL aborted to
// break a deadlock or a serialization conflict with another one.
const txAttempts = 3

func (s *Store) runTx(ctx context.Context, opts *sql.TxOptions, fn func(handle) error) error {
	for attempt := 1; ; attempt++ {
		err := s.runTxOnce(ctx, opts, fn)
		if err == nil || attempt == txAttempts || !retryable(err) || ctx.Err() != nil {
			return err
		}
	}
}

func (s *Store) runTxOnce(ctx context.Context, opts *sql.TxOptions, fn func(handle) error) error {
	tx, err := s.pool.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(handle{tx, s.b}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// retryable reports whether PostgreSQL aborted a transaction that may
// succeed when run again: a serialization failure or a deadlock.
func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
