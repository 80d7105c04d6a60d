package main

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"runtime"

	"github.com/atpgo/atp/server/store"
)

// dbFlag adds --db to fs.
func dbFlag(fs *flag.FlagSet, e *env) *string {
	return fs.String("db", "", "the database: a SQLite `file`, or a postgres:// URL that several servers share (default $ATP_DB, else "+describeDefaultDB(e)+")")
}

// resolveDB returns the database to open, a SQLite path or a PostgreSQL
// URL: --db, $ATP_DB or the default file under the user's data directory.
func resolveDB(e *env, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if p := e.getenv("ATP_DB"); p != "" {
		return p, nil
	}
	return defaultDB(e)
}

// defaultDB is atp/atp.db in the user's data directory:
// $XDG_DATA_HOME, else ~/.local/share on Unix, ~/Library/Application
// Support on macOS, %LocalAppData% on Windows. The store creates the
// directories with mode 0700.
func defaultDB(e *env) (string, error) {
	if d := e.getenv("XDG_DATA_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "atp", "atp.db"), nil
	}
	switch runtime.GOOS {
	case "windows":
		if d := e.getenv("LocalAppData"); d != "" {
			return filepath.Join(d, "atp", "atp.db"), nil
		}
	}
	home := e.getenv("HOME")
	if home == "" {
		var err error
		if home, err = os.UserHomeDir(); err != nil || home == "" {
			return "", errors.New("no home directory to keep the database in: pass --db or set ATP_DB")
		}
	}
	if runtime.GOOS == "darwin" {
		return filepath.Join(home, "Library", "Application Support", "atp", "atp.db"), nil
	}
	return filepath.Join(home, ".local", "share", "atp", "atp.db"), nil
}

func describeDefaultDB(e *env) string {
	p, err := defaultDB(e)
	if err != nil {
		return "none: " + err.Error()
	}
	return p
}

// openForList parses the flags of a list command (--json, --db, no
// arguments) and opens the store, which the caller closes.
func openForList(ctx context.Context, e *env, name, synopsis, jsonUsage string, args []string) (st *store.Store, asJSON bool, err error) {
	fs := newFlags(e, name, synopsis)
	j := fs.Bool("json", false, jsonUsage)
	db := dbFlag(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		return nil, false, usagef("unexpected argument %q", fs.Arg(0))
	}
	st, err = openStore(ctx, e, *db)
	return st, *j, err
}
