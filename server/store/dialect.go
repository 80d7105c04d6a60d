package store

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
	"sync"
)

// Engines a Store runs on, as Engine reports them.
const (
	EngineSQLite   = "sqlite"
	EnginePostgres = "postgres"
)

// dialect is what differs between the engines. The queries themselves are
// shared: they are written with '?' placeholders and in the SQL both
// engines speak (INSERT ... ON CONFLICT, DELETE ... RETURNING, partial
// indexes), and a PostgreSQL Store rewrites the placeholders to $1, $2, ...
// once per query text.
type dialect struct {
	engine     string
	migrations [][]string
	// numbered: placeholders are $1, $2, ... rather than '?'.
	numbered bool
	// keyOrder breaks ties between keys created in one millisecond: the
	// order they were inserted in.
	keyOrder string
	// forUpdate locks the rows a read inside a write transaction returns,
	// until the transaction ends. SQLite needs none: a write transaction
	// holds the database's one write lock from BEGIN (_txlock=immediate).
	forUpdate string
	// skipLocked is forUpdate for a claim: rows another transaction is
	// claiming are passed over instead of waited for.
	skipLocked string
	// lockName is a statement taking a lock on a name for the rest of the
	// transaction (one '?' parameter), "" where writers are serialized
	// anyway. It guards a check that precedes an insert (an owner's count
	// of webhooks, whether a toolkit name is free), which row locks cannot
	// guard since the row does not exist yet.
	lockName string
	// readTx are the options of a read-only transaction that reads one
	// snapshot across its statements.
	readTx sql.TxOptions
	// tableExists counts the tables of a name (one '?' parameter): 0 or 1.
	tableExists string
}

var sqliteDialect = dialect{
	engine:      EngineSQLite,
	migrations:  sqliteMigrations,
	keyOrder:    "rowid",
	readTx:      sql.TxOptions{ReadOnly: true},
	tableExists: `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?`,
}

var postgresDialect = dialect{
	engine:     EnginePostgres,
	migrations: postgresMigrations,
	numbered:   true,
	keyOrder:   "seq",
	forUpdate:  " FOR UPDATE",
	skipLocked: " FOR UPDATE SKIP LOCKED",
	// Advisory locks are per database: the schema's name is part of the
	// lock's, so that two deployments in two schemas of one database (or
	// two tests) do not wait on each other.
	lockName: `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || '/' || ?, 0))`,
	// Read committed, the default, takes a snapshot per statement:
	// toolkits read apart from their tools could miss a registration's
	// half.
	readTx:      sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead},
	tableExists: `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?`,
}

// querier is what *sql.DB, *sql.Tx and *sql.Conn have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// handle runs the store's queries on a database or in a transaction,
// rewriting their placeholders for the engine.
type handle struct {
	q querier
	b *binder
}

func (h handle) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return h.q.ExecContext(ctx, h.b.bind(query), args...)
}

func (h handle) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return h.q.QueryContext(ctx, h.b.bind(query), args...)
}

func (h handle) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return h.q.QueryRowContext(ctx, h.b.bind(query), args...)
}

// binder rewrites '?' placeholders to $n, remembering each query it did.
type binder struct {
	numbered bool
	cache    sync.Map // query -> rewritten query
}

func (b *binder) bind(query string) string {
	if !b.numbered {
		return query
	}
	if q, ok := b.cache.Load(query); ok {
		return q.(string)
	}
	q := numberPlaceholders(query)
	b.cache.Store(query, q)
	return q
}

// numberPlaceholders turns each '?' outside quotes into $1, $2, ... The
// store's queries use no '?' operator (jsonb's), and no '?' in literals;
// quotes are skipped all the same.
func numberPlaceholders(query string) string {
	var out strings.Builder
	out.Grow(len(query) + 8)
	n := 0
	var quote byte
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			out.WriteByte('$')
			out.WriteString(strconv.Itoa(n))
			continue
		}
		out.WriteByte(c)
	}
	return out.String()
}
