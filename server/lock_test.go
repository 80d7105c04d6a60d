package server

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/atpgo/atp/server/store"
)

// A second server on the same database file refuses to start, naming the
// lock file and the process that holds it, whether it opens the file or is
// handed a store of it; plain store users (atp keys) work beside the first
// one; once the first closes, the next starts.
func TestSecondServerOnOneDatabaseRefused(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "data", "atp.db")
	first, err := New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(LockPath(path)); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v, %v; want mode 0600", info, err)
	}
	_, err = New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if !errors.Is(err, ErrDatabaseInUse) || !strings.Contains(err.Error(), LockPath(path)) ||
		!strings.Contains(err.Error(), "process "+strconv.Itoa(os.Getpid())) || !strings.Contains(err.Error(), "--db") {
		t.Fatalf("second server: %v, want ErrDatabaseInUse naming %s and this process", err, LockPath(path))
	}
	// Through another spelling of the path, and through a symbolic link.
	if _, err := New(context.Background(), Config{DBPath: filepath.Join(dir, "data", ".", "atp.db"), Logger: discardLogger()}); !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("second server, path spelt otherwise: %v", err)
	}
	link := filepath.Join(dir, "link.db")
	if err := os.Symlink(path, link); err != nil {
		t.Fatal(err)
	}
	if _, err := New(context.Background(), Config{DBPath: link, Logger: discardLogger()}); !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("second server through a symbolic link: %v", err)
	}
	// Handed an open store of the same file.
	st, err := store.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := New(context.Background(), Config{Store: st, Logger: discardLogger()}); !errors.Is(err, ErrDatabaseInUse) {
		t.Fatalf("second server on a store of the file: %v", err)
	}
	// What atp keys does works beside the running server, which sees it.
	_, apiKey, err := st.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "beside"})
	if err != nil {
		t.Fatalf("creating a key beside a running server: %v", err)
	}
	if _, err := first.store.Authenticate(ctx, apiKey); err != nil {
		t.Fatalf("the server does not see a key created beside it: %v", err)
	}

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	next, err := New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if err != nil {
		t.Fatalf("a server after the first closed: %v", err)
	}
	next.Close()
	// In-memory servers share nothing and take no lock.
	a, err := New(context.Background(), Config{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(context.Background(), Config{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	b.Close()
}

// A dev start that cannot use the key it would generate (the database is
// sealed with the user's) leaves no key file behind; a keyless start on a
// database that holds OAuth platforms is refused, saying why.
func TestSecretKeyStartFailuresLeaveNothing(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "atp.db")
	userKey := make([]byte, store.SecretKeySize)
	userKey[0] = 1
	srv, err := New(context.Background(), Config{DBPath: path, SecretKey: userKey, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p := store.Platform{ID: "hub", ClientID: "c", ClientSecret: "s", AuthURL: "https://a.example/auth", TokenURL: "https://a.example/token", PKCE: true}
	if _, err := srv.oauth.vault.PutPlatform(ctx, p); err != nil {
		t.Fatal(err)
	}
	srv.Close()

	_, err = New(context.Background(), Config{DBPath: path, Dev: true, Logger: discardLogger()})
	if !errors.Is(err, store.ErrWrongSecretKey) || !strings.Contains(err.Error(), "first used with") {
		t.Fatalf("dev start on a database sealed with another key: %v", err)
	}
	if _, err := os.Stat(DevSecretKeyPath(path)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the failed dev start left its key file: %v", err)
	}
	_, err = New(context.Background(), Config{DBPath: path, Logger: discardLogger()})
	if !errors.Is(err, ErrNoSecretKey) || !strings.Contains(err.Error(), "1 OAuth platform(s)") {
		t.Fatalf("keyless start on a database with a platform: %v", err)
	}
}
