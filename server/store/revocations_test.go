package store

import (
	"context"
	"slices"
	"testing"
)

// The revoked-key count only grows, and RevokedKeyIDs names them; a second
// Store on the same file (another process) sees what the first revoked.
func TestRevokedKeys(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open(t)
		a, _, _ := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "a"})
		b, _, _ := s.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "b"})
		other := db.open(t)
		if n, err := s.RevokedKeyCount(ctx); n != 0 || err != nil {
			t.Fatalf("count = %d, %v", n, err)
		}
		other.RevokeKey(ctx, b.ID)
		other.RevokeKey(ctx, b.ID) // again: no change
		if n, _ := s.RevokedKeyCount(ctx); n != 1 {
			t.Fatalf("count after one revocation = %d", n)
		}
		s.RevokeKey(ctx, a.ID)
		ids, err := s.RevokedKeyIDs(ctx)
		slices.Sort(ids)
		want := []string{a.ID, b.ID}
		slices.Sort(want)
		if err != nil || !slices.Equal(ids, want) {
			t.Fatalf("revoked ids = %v, %v; want %v", ids, err, want)
		}
	})
}

// CheckWritable fails when the database takes reads but no writes.
func TestCheckWritable(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open(t)
		if err := s.CheckWritable(ctx); err != nil {
			t.Fatal(err)
		}
		s.Close()
		var ro *Store
		if db.engine == EngineSQLite {
			// An in-memory store has one connection: this makes it read-only.
			ro = openMemory(t)
			ro.exec(t, "PRAGMA query_only = ON")
		} else {
			// One connection, made read-only (as a hot standby is).
			ro = testDB{db.engine, db.dsn + "&pool_max_conns=1"}.open(t)
			ro.exec(t, "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
		}
		if err := ro.Ping(ctx); err != nil {
			t.Fatalf("reads fail too: %v", err)
		}
		if err := ro.CheckWritable(ctx); err == nil {
			t.Fatal("a read-only database passed the write check")
		}
	})
}

func openMemory(t *testing.T) *Store {
	t.Helper()
	s, err := Open(context.Background(), Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
