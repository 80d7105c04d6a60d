// Package store is the reference server's embedded database: API keys,
// toolkits and their tools, in one SQLite file (modernc.org/sqlite, no cgo).
//
// Every write runs in a transaction. The schema is versioned: Open applies
// the numbered migrations the file lacks, all in one transaction, so a file
// is never left half-migrated, and refuses a file written by a newer atp.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

// Memory is the path that opens a private in-memory database, gone on Close.
const Memory = ":memory:"

// Store is an open database. It is safe for concurrent use, and for use by
// several processes at once (the server and `atp keys` against one file).
type Store struct {
	db  *sql.DB
	now func() time.Time
}

// Open opens (creating it when missing) the database at path and migrates
// its schema. Missing parent directories are created with mode 0700 and a
// new file with mode 0600, since the file holds key hashes. path "" or Memory opens an in-memory database.
func Open(ctx context.Context, path string) (*Store, error) {
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
	s := &Store{db: db, now: time.Now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("store: %s: %w", displayPath(path), err)
	}
	return s, nil
}

func displayPath(path string) string {
	if path == "" {
		return Memory
	}
	return path
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

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

// migrations are applied in order; migrations[i] takes the schema from
// version i to i+1. Never edit one that has shipped: append a new one.
var migrations = [][]string{
	{
		`CREATE TABLE keys (
			id          TEXT PRIMARY KEY,
			kind        TEXT NOT NULL CHECK (kind IN ('toolkit', 'llm')),
			name        TEXT NOT NULL,
			owner       TEXT NOT NULL,
			toolkit     TEXT NOT NULL DEFAULT '',
			secret_hash BLOB NOT NULL,
			created_at  INTEGER NOT NULL,
			revoked_at  INTEGER
		)`,
		`CREATE TABLE toolkits (
			owner        TEXT NOT NULL,
			name         TEXT NOT NULL,
			toolkit_hash TEXT NOT NULL DEFAULT '',
			language     TEXT NOT NULL DEFAULT '',
			updated_at   INTEGER NOT NULL,
			PRIMARY KEY (owner, name)
		)`,
		`CREATE TABLE tools (
			owner           TEXT NOT NULL,
			toolkit         TEXT NOT NULL,
			name            TEXT NOT NULL,
			description     TEXT NOT NULL DEFAULT '',
			params          TEXT NOT NULL DEFAULT '[]',
			required_params TEXT NOT NULL DEFAULT '[]',
			input_schema    TEXT NOT NULL,
			output_schema   TEXT,
			inferred        INTEGER NOT NULL DEFAULT 0,
			auth_provider   TEXT NOT NULL DEFAULT '',
			auth_type       TEXT NOT NULL DEFAULT '',
			auth_with       TEXT NOT NULL DEFAULT '',
			code_hash       TEXT NOT NULL DEFAULT '',
			hints           TEXT,
			updated_at      INTEGER NOT NULL,
			PRIMARY KEY (owner, toolkit, name),
			FOREIGN KEY (owner, toolkit) REFERENCES toolkits (owner, name) ON DELETE CASCADE
		)`,
	},
	oauthMigration, // 2: the OAuth broker (oauth.go)
	{
		// 3: metadata.needs_auth_token (docs/extensions.md §4). Tools
		// registered before it (and every Python tool) did not say so: 0.
		`ALTER TABLE tools ADD COLUMN needs_auth_token INTEGER NOT NULL DEFAULT 0`,
		// A Go toolkit may have sent the flag to this server before it
		// stored it, and would now find its hashes up to date and never
		// send it again: forget the hashes of Go toolkits, so that each
		// registers its tools once more. Python toolkits never send it.
		`UPDATE tools SET code_hash = '' WHERE EXISTS (SELECT 1 FROM toolkits k
			WHERE k.owner = tools.owner AND k.name = tools.toolkit AND k.language = 'Go')`,
		`UPDATE toolkits SET toolkit_hash = '' WHERE language = 'Go'`,
	},
	{
		// 4: a toolkit name belongs to the keys bound to it (Register asks
		// which keys of an owner hold a name). Keys keep the bindings they
		// have: two keys that both serve a toolkit today both go on.
		`CREATE INDEX keys_owner_toolkit ON keys (owner, toolkit)`,
	},
}

// LatestSchemaVersion is the schema version this build migrates to.
var LatestSchemaVersion = len(migrations)

func (s *Store) migrate(ctx context.Context) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
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
		if version > len(migrations) {
			return fmt.Errorf("database schema version is %d but this atp knows versions up to %d: use a newer atp", version, len(migrations))
		}
		for v := version; v < len(migrations); v++ {
			for _, stmt := range migrations[v] {
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return fmt.Errorf("migration %d: %w", v+1, err)
				}
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, len(migrations)); err != nil {
			return fmt.Errorf("set schema_version: %w", err)
		}
		return nil
	})
}

// tx runs fn in a write transaction, committing when it returns nil.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.runTx(ctx, &sql.TxOptions{}, fn)
}

// readTx runs fn in a read-only transaction (a consistent snapshot that does
// not take the write lock).
func (s *Store) readTx(ctx context.Context, fn func(*sql.Tx) error) error {
	return s.runTx(ctx, &sql.TxOptions{ReadOnly: true}, fn)
}

func (s *Store) runTx(ctx context.Context, opts *sql.TxOptions, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }
