package server

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gofrs/flock"
)

// A server keeps its routing state in memory: the registry of toolkits
// loaded at start and updated with each registration, and the live
// connections. Two servers on one database file would each see their own
// (a tool registered on one is "not found" on the other, while verify_hash
// says the toolkit is up to date), so a server holds an exclusive OS file
// lock on <db>.lock for as long as it runs, and a second one refuses to
// start. The lock is the server's alone: `atp keys` and `atp platforms`
// only write rows, which SQLite serializes, and the server reads keys and
// platforms from the store when it uses them, so they work beside it. The
// OS releases the lock when the process dies, however it dies: there is no
// stale lock to clean up.

// ErrDatabaseInUse is returned by New when another server holds the
// database's lock.
var ErrDatabaseInUse = errors.New("the database is in use by another atp server")

// LockPath is the lock file a server holds for the database at dbPath.
func LockPath(dbPath string) string { return dbPath + ".lock" }

// lockDatabase takes the database's lock, creating the lock file (mode
// 0600, in a directory created 0700 like the database's) when missing.
func lockDatabase(dbPath string) (*flock.Flock, error) {
	if resolved, err := filepath.EvalSymlinks(dbPath); err == nil {
		dbPath = resolved // one file, one lock, whatever the link
	}
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o700); err != nil {
		return nil, fmt.Errorf("server: create the database directory: %w", err)
	}
	path := LockPath(dbPath)
	lock := flock.New(path, flock.SetPermissions(0o600))
	ok, err := lock.TryLock()
	if err != nil {
		return nil, fmt.Errorf("server: lock %s: %w", path, err)
	}
	if !ok {
		holder := ""
		if pid := readPID(path); pid > 0 {
			holder = fmt.Sprintf(" (process %d)", pid)
		}
		return nil, fmt.Errorf("server: %s: %w%s, which holds its lock file %s. Stop that server, or give this one another database (--db); "+
			"atp keys and atp platforms work beside a running server", dbPath, ErrDatabaseInUse, holder, path)
	}
	// Say who holds it, for the next one that tries. Best effort: where
	// the lock also stops writes (Windows), the error says less.
	os.WriteFile(path, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600)
	return lock, nil
}

func readPID(path string) int {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	return pid
}
