package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Writers on several stores at once (several servers on one PostgreSQL
// database, the server and atp keys on one SQLite file): each rule that a
// check-then-write enforces holds under the race.

// Servers starting together on an empty database: one migrates, the others
// find it done.
func TestConcurrentMigrations(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				s, err := Open(context.Background(), db.dsn)
				if err != nil {
					t.Error(err)
					return
				}
				defer s.Close()
				if v, err := s.SchemaVersion(context.Background()); err != nil || v != LatestSchemaVersion {
					t.Errorf("version = %d, %v", v, err)
				}
			})
		}
		wg.Wait()
	})
}

// Two servers started with different secret keys on a new database: one
// key wins, the other is refused.
func TestConcurrentVaultKeys(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		var wg sync.WaitGroup
		var ok, wrong atomic.Int32
		for i := range 6 {
			s := db.open(t)
			wg.Go(func() {
				_, err := s.Vault(context.Background(), testKey(byte(1+i%2)))
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, ErrWrongSecretKey):
					wrong.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if ok.Load() != 3 || wrong.Load() != 3 {
			t.Fatalf("%d opened, %d refused; want the three of one key to open", ok.Load(), wrong.Load())
		}
	})
}

// A state presented to several servers at once (a double-clicked link) is
// consumed once.
func TestConcurrentConsumeState(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		_, v := openVault(t, db)
		state, err := v.CreateState(ctx, OAuthState{Owner: "o", PlatformID: "hub", ExternalUserID: "u", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		vaults := []*Vault{v}
		for range 3 {
			ov, err := db.open(t).Vault(ctx, testKey(1))
			if err != nil {
				t.Fatal(err)
			}
			vaults = append(vaults, ov)
		}
		var wg sync.WaitGroup
		var won, lost atomic.Int32
		for i := range 8 {
			wg.Go(func() {
				_, err := vaults[i%len(vaults)].ConsumeState(ctx, state, "hub", t0)
				switch {
				case err == nil:
					won.Add(1)
				case errors.Is(err, ErrStateNotFound):
					lost.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if won.Load() != 1 || lost.Load() != 7 {
			t.Fatalf("%d consumed the state, %d were refused; want exactly one", won.Load(), lost.Load())
		}
	})
}

// An owner's webhook count holds under concurrent registrations.
func TestConcurrentWebhookLimit(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		_, v := openVault(t, db)
		for range MaxWebhooks - 3 {
			if _, err := v.CreateWebhook(ctx, "o", "https://h/x", []string{"connection_success"}); err != nil {
				t.Fatal(err)
			}
		}
		ov, err := db.open(t).Vault(ctx, testKey(1))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var made, refused atomic.Int32
		for i := range 10 {
			wg.Go(func() {
				vault := v
				if i%2 == 1 {
					vault = ov
				}
				_, err := vault.CreateWebhook(ctx, "o", "https://h/x", []string{"connection_success"})
				switch {
				case err == nil:
					made.Add(1)
				case errors.Is(err, ErrTooManyWebhooks):
					refused.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if made.Load() != 3 || refused.Load() != 7 {
			t.Fatalf("%d made, %d refused; want 3 made up to MaxWebhooks", made.Load(), refused.Load())
		}
	})
}

// One holder at a time refreshes a user's token: a second waits until the
// first lets go, or its lease runs out.
func TestLockRefresh(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		_, v := openVault(t, db)
		other := db.open(t)
		ov, err := other.Vault(ctx, testKey(1))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.SaveConnection(ctx, conn("u1", "a", "r"), nil); err != nil {
			t.Fatal(err)
		}
		if _, err := v.LockRefresh(ctx, "default", "hub", "nobody", time.Minute); !errors.Is(err, ErrConnectionNotFound) {
			t.Fatalf("no connection: %v, want ErrConnectionNotFound", err)
		}
		unlock, err := v.LockRefresh(ctx, "default", "hub", "u1", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		// Held: the other server waits, until its context ends.
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		_, err = ov.LockRefresh(short, "default", "hub", "u1", time.Minute)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another server is refreshing") {
			t.Fatalf("while held: %v, want a wait that ends with the context", err)
		}
		// Let go while the other waits: it gets the lease.
		got := make(chan error, 1)
		go func() {
			unlock2, err := ov.LockRefresh(ctx, "default", "hub", "u1", time.Minute)
			if err == nil {
				unlock2()
			}
			got <- err
		}()
		unlock()
		if err := <-got; err != nil {
			t.Fatalf("after the holder let go: %v", err)
		}
		// A holder that never lets go (it died) holds until its lease ends.
		if _, err := v.LockRefresh(ctx, "default", "hub", "u1", time.Minute); err != nil {
			t.Fatal(err)
		}
		other.SetClock(func() time.Time { return time.Now().Add(time.Minute) })
		unlock, err = ov.LockRefresh(ctx, "default", "hub", "u1", time.Minute)
		if err != nil {
			t.Fatalf("after the dead holder's lease: %v", err)
		}
		unlock()
	})
}
