package store

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
)

func TestMigrateFreshAndReopen(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open(t)
		if db.engine == EngineSQLite {
			if info, err := os.Stat(db.dsn); err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("database file mode = %v, %v; want 0600", info.Mode(), err)
			}
		}
		if s.Engine() != db.engine {
			t.Fatalf("Engine = %q, want %q", s.Engine(), db.engine)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != LatestSchemaVersion {
			t.Fatalf("schema version = %d, %v; want %d", v, err, LatestSchemaVersion)
		}
		if _, _, err := s.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "a"}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		s2 := db.open(t)
		if n, err := s2.CountKeys(ctx); err != nil || n != 1 {
			t.Fatalf("keys after reopen = %d, %v; want 1", n, err)
		}
		if rows := s2.count(t, `SELECT count(*) FROM schema_version`); rows != 1 {
			t.Fatalf("schema_version has %d rows, want 1", rows)
		}
	})
}

// Both engines have the same versions, each a list of statements.
func TestMigrationListsAgree(t *testing.T) {
	if len(sqliteMigrations) != len(postgresMigrations) {
		t.Fatalf("SQLite has %d migrations, PostgreSQL %d: a version must mean the same schema on both", len(sqliteMigrations), len(postgresMigrations))
	}
}

func TestNewerSchemaRefused(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		s := db.open(t)
		s.exec(t, `UPDATE schema_version SET version = ?`, LatestSchemaVersion+1)
		s.Close()
		_, err := Open(context.Background(), db.dsn)
		if err == nil || !strings.Contains(err.Error(), "use a newer atp") {
			t.Fatalf("Open of a newer schema: err = %v, want a refusal", err)
		}
	})
}

func TestMigrationIsAtomic(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		d := &sqliteDialect
		if db.engine == EnginePostgres {
			d = &postgresDialect
		}
		broken := append(append([][]string{}, d.migrations...), []string{`CREATE TABLE extra (x INTEGER)`, `THIS IS NOT SQL`})
		want := fmt.Sprintf("migration %d", len(broken))
		if _, err := open(ctx, db.dsn, broken); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("Open with a broken migration: err = %v, want %s to fail", err, want)
		}
		s := db.open(t)
		if s.hasTable(t, "extra") || !s.hasTable(t, "keys") {
			t.Fatal("after a failed migration: want only keys (from the clean re-open), not extra")
		}
	})
}

// A database at each older version (from none at all) migrates to the
// latest, keeping what it held, and works.
func TestMigrationFromEveryVersion(t *testing.T) {
	for from := range LatestSchemaVersion {
		t.Run(fmt.Sprintf("from%d", from), func(t *testing.T) {
			eachEngine(t, func(t *testing.T, db testDB) {
				ctx := context.Background()
				old := db.openAt(t, from)
				if v, _ := old.SchemaVersion(ctx); v != from {
					t.Fatalf("opened at version %d, want %d", v, from)
				}
				var kept Key
				if from >= 1 {
					k, _, err := old.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "old", Owner: "acme", Toolkit: "crm"})
					if err != nil {
						t.Fatal(err)
					}
					kept = k
				}
				old.Close()
				s := db.open(t)
				if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion {
					t.Fatalf("schema version = %d, %v; want %d", v, err, LatestSchemaVersion)
				}
				if from >= 1 {
					if k, err := s.KeyByID(ctx, kept.ID); err != nil || k.Toolkit != "crm" {
						t.Fatalf("the key of version %d after migrating: %+v, %v", from, k, err)
					}
					if _, err := s.Register(ctx, Registration{KeyID: kept.ID, Toolkit: "crm", Tool: tool("a", "h")}); err != nil {
						t.Fatal(err)
					}
				}
				v, err := s.Vault(ctx, testKey(1))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.CreateWebhook(ctx, "acme", "https://h/x", []string{"connection_success"}); err != nil {
					t.Fatal(err)
				}
				if n, err := v.EnqueueEvent(ctx, WebhookEvent{ID: "evt_1", Name: "connection_success", Owner: "acme", Body: []byte("{}")}); err != nil || n != 1 {
					t.Fatalf("EnqueueEvent = %d, %v", n, err)
				}
			})
		})
	}
}

// TestMigrationNeedsAuthToken opens a database of schema version 2, with
// tools registered before needs_auth_token existed: migration 3 keeps them,
// reads them as not needing a token, forgets the hashes of the Go toolkit
// (so that it registers again and sends the flag) but not of the Python
// one, and lets the Go tool be re-registered with the flag.
func TestMigrationNeedsAuthToken(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		old := db.openAt(t, 2)
		k, _, err := old.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "tk", Owner: "acme", Toolkit: "crm"})
		if err != nil {
			t.Fatal(err)
		}
		// What a version-2 Register wrote, column for column.
		old.exec(t, `INSERT INTO toolkits (owner, name, toolkit_hash, language, updated_at) VALUES ('acme', 'crm', 'h1', 'Go', 1)`)
		old.exec(t, `INSERT INTO tools (owner, toolkit, name, description, params, required_params, input_schema, output_schema,
			inferred, auth_provider, auth_type, auth_with, code_hash, hints, updated_at)
			VALUES ('acme', 'crm', 'whoami', 'd', '[]', '[]', '{"type":"object"}', NULL, ?, '', '', '', 'hw', NULL, 1)`, false)
		old.exec(t, `INSERT INTO toolkits (owner, name, toolkit_hash, language, updated_at) VALUES ('acme', 'py', 'hp', 'Python', 1)`)
		old.exec(t, `INSERT INTO tools (owner, toolkit, name, description, params, required_params, input_schema, output_schema,
			inferred, auth_provider, auth_type, auth_with, code_hash, hints, updated_at)
			VALUES ('acme', 'py', 'greet', 'd', '["name"]', '[]', '{"type":"object"}', NULL, ?, '', '', '', 'hg', NULL, 1)`, true)
		old.Close()

		s := db.open(t)
		if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchemaVersion {
			t.Fatalf("schema version = %d, %v; want %d", v, err, LatestSchemaVersion)
		}
		tk, err := s.Toolkit(ctx, "acme", "crm")
		if err != nil {
			t.Fatal(err)
		}
		if tk.Hash != "" || len(tk.Tools) != 1 || tk.Tools[0].Name != "whoami" || tk.Tools[0].CodeHash != "" || tk.Tools[0].NeedsAuthToken {
			t.Fatalf("Go toolkit after migration = %+v, want whoami with its hashes forgotten, not needing a token", tk)
		}
		if h, ok, _ := s.ToolHash(ctx, "acme", "crm", "whoami"); !ok || h != "" {
			t.Fatalf("ToolHash of the Go tool = %q, %v; want \"\", true (registers again)", h, ok)
		}
		py, err := s.Toolkit(ctx, "acme", "py")
		if err != nil {
			t.Fatal(err)
		}
		if py.Hash != "hp" || len(py.Tools) != 1 || py.Tools[0].CodeHash != "hg" || py.Tools[0].NeedsAuthToken || !py.Tools[0].Inferred {
			t.Fatalf("Python toolkit after migration = %+v, want its hashes kept", py)
		}
		w := Tool{Name: "whoami", InputSchema: json.RawMessage(`{"type":"object"}`), CodeHash: "hw2", NeedsAuthToken: true}
		if _, err := s.Register(ctx, Registration{KeyID: k.ID, Toolkit: "crm", ToolkitHash: "h2", Language: "Go", Tool: w}); err != nil {
			t.Fatal(err)
		}
		if tk, err = s.Toolkit(ctx, "acme", "crm"); err != nil || len(tk.Tools) != 1 || !tk.Tools[0].NeedsAuthToken {
			t.Fatalf("after re-registering with needs_auth_token: %+v, %v", tk.Tools, err)
		}
	})
}

func TestKeys(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open(t)
		k, apiKey, err := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "ci", Owner: "acme"})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(apiKey, "atp_tk_"+k.ID+"_") || len(apiKey) < 60 {
			t.Fatalf("api key %q does not look like atp_tk_<id>_<secret>", apiKey)
		}
		got, err := s.Authenticate(ctx, apiKey)
		if err != nil || got.ID != k.ID || got.Owner != "acme" || got.Kind != KindToolkit {
			t.Fatalf("Authenticate = %+v, %v", got, err)
		}
		// The secret is not stored anywhere in the database.
		var dump strings.Builder
		rows, _ := s.db.QueryContext(ctx, `SELECT id, kind, name, owner, toolkit, secret_hash FROM keys`)
		for rows.Next() {
			var a, b, c, d, e string
			var f []byte
			rows.Scan(&a, &b, &c, &d, &e, &f)
			dump.WriteString(a + b + c + d + e + hex.EncodeToString(f) + string(f))
		}
		rows.Close()
		_, _, secret, _ := ParseKey(apiKey)
		if strings.Contains(dump.String(), secret) {
			t.Fatal("the key's secret is stored in the database")
		}

		llm, llmKey, err := s.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "agent"})
		if err != nil || llm.Owner != DefaultOwner {
			t.Fatalf("llm key: %+v, %v", llm, err)
		}
		bad := []struct{ name, key string }{
			{"empty", ""},
			{"garbage", "hello"},
			{"wrong secret", apiKey[:len(apiKey)-1] + flip(apiKey[len(apiKey)-1])},
			{"unknown id", "atp_tk_aaaaaaaaaaaaaaaa_" + secret},
			{"kind prefix swapped", "atp_llm_" + strings.TrimPrefix(apiKey, "atp_tk_")},
			{"llm prefix swapped", "atp_tk_" + strings.TrimPrefix(llmKey, "atp_llm_")},
		}
		for _, b := range bad {
			if _, err := s.Authenticate(ctx, b.key); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("%s: err = %v, want ErrInvalidKey", b.name, err)
			}
		}
		if err := s.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, apiKey); !errors.Is(err, ErrRevokedKey) {
			t.Fatalf("revoked key: err = %v, want ErrRevokedKey", err)
		}
		if err := s.RevokeKey(ctx, "nope"); !errors.Is(err, ErrKeyNotFound) {
			t.Fatalf("revoke unknown: err = %v", err)
		}
		keys, err := s.ListKeys(ctx)
		if err != nil || len(keys) != 2 || !keys[0].Revoked() || keys[1].Revoked() {
			t.Fatalf("ListKeys = %+v, %v", keys, err)
		}
		for _, nk := range []NewKey{
			{Kind: "admin", Name: "x"},
			{Kind: KindLLM, Name: ""},
			{Kind: KindLLM, Name: "x", Owner: "has space"},
			{Kind: KindLLM, Name: "x", Toolkit: "t"},
			{Kind: KindToolkit, Name: "x", Toolkit: "bad/name"},
		} {
			if _, _, err := s.CreateKey(ctx, nk); err == nil {
				t.Errorf("CreateKey(%+v) succeeded, want an error", nk)
			}
		}
	})
}

func flip(c byte) string {
	if c == 'a' {
		return "b"
	}
	return "a"
}

func tool(name, hash string) Tool {
	return Tool{
		Name: name, Description: "d " + name, Params: []string{"x"}, RequiredParams: []string{"x"},
		InputSchema: json.RawMessage(`{"type":"object","properties":{"x":{"type":"string"}},"required":["x"]}`),
		Inferred:    true, CodeHash: hash,
	}
}

func TestRegisterBindsAndPersists(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open(t)
		k, _, _ := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "tk", Owner: "acme"})
		got, err := s.Register(ctx, Registration{KeyID: k.ID, Toolkit: "crm", ToolkitHash: "h1", Language: "Python", Tool: tool("b", "hb")})
		if err != nil || got.Toolkit != "crm" {
			t.Fatalf("first registration: %+v, %v", got, err)
		}
		hints := json.RawMessage(`{"readOnlyHint":true}`)
		a := tool("a", "ha")
		a.Hints, a.OutputSchema, a.Inferred = hints, json.RawMessage(`{"type":"string"}`), false
		a.NeedsAuthToken = true
		if _, err := s.Register(ctx, Registration{KeyID: k.ID, Toolkit: "crm", ToolkitHash: "h2", Language: "Go", Tool: a}); err != nil {
			t.Fatal(err)
		}
		// An update replaces the tool.
		b2 := tool("b", "hb2")
		b2.Description = "new"
		if _, err := s.Register(ctx, Registration{KeyID: k.ID, Toolkit: "crm", ToolkitHash: "h3", Language: "Go", Tool: b2}); err != nil {
			t.Fatal(err)
		}
		_, err = s.Register(ctx, Registration{KeyID: k.ID, Toolkit: "other", Tool: tool("c", "")})
		if !errors.Is(err, ErrKeyBoundElsewhere) {
			t.Fatalf("register another toolkit: err = %v, want ErrKeyBoundElsewhere", err)
		}
		s.Close()

		s = db.open(t)
		tk, err := s.Toolkit(ctx, "acme", "crm")
		if err != nil {
			t.Fatal(err)
		}
		if tk.Hash != "h3" || tk.Language != "Go" || len(tk.Tools) != 2 {
			t.Fatalf("toolkit after reopen = %+v", tk)
		}
		ta, tb := tk.Tools[0], tk.Tools[1]
		if ta.Name != "a" || string(ta.Hints) != string(hints) || string(ta.OutputSchema) != `{"type":"string"}` || ta.Inferred || !ta.NeedsAuthToken {
			t.Fatalf("tool a = %+v", ta)
		}
		if tb.Name != "b" || tb.Description != "new" || tb.CodeHash != "hb2" || !tb.Inferred || tb.OutputSchema != nil || tb.NeedsAuthToken ||
			len(tb.Params) != 1 || tb.RequiredParams[0] != "x" {
			t.Fatalf("tool b = %+v", tb)
		}
		if _, err := s.Toolkit(ctx, "other-owner", "crm"); !errors.Is(err, ErrToolkitNotFound) {
			t.Fatalf("other owner's view: err = %v", err)
		}
		if _, err := s.Toolkit(ctx, "acme", "other"); !errors.Is(err, ErrToolkitNotFound) {
			t.Fatalf("the refused registration created a toolkit: err = %v", err)
		}
		if h, ok, _ := s.ToolHash(ctx, "acme", "crm", "b"); !ok || h != "hb2" {
			t.Fatalf("ToolHash = %q, %v", h, ok)
		}
		if h, ok, _ := s.ToolkitHash(ctx, "acme", "crm"); !ok || h != "h3" {
			t.Fatalf("ToolkitHash = %q, %v", h, ok)
		}
		if _, ok, _ := s.ToolHash(ctx, "acme", "crm", "zz"); ok {
			t.Fatal("ToolHash of a missing tool says it exists")
		}
		// One tool of a toolkit, with the toolkit's own fields: b as updated.
		one, err := s.ToolkitTool(ctx, "acme", "crm", "b")
		if err != nil || one.Hash != "h3" || one.Language != "Go" || len(one.Tools) != 1 || one.Tools[0].Description != "new" || one.Tools[0].CodeHash != "hb2" {
			t.Fatalf("ToolkitTool(b) = %+v, %v", one, err)
		}
		if one, err := s.ToolkitTool(ctx, "acme", "crm", "zz"); err != nil || one.Name != "crm" || len(one.Tools) != 0 {
			t.Fatalf("ToolkitTool of a missing tool = %+v, %v, want the toolkit without tools", one, err)
		}
		if _, err := s.ToolkitTool(ctx, "other-owner", "crm", "b"); !errors.Is(err, ErrToolkitNotFound) {
			t.Fatalf("ToolkitTool, other owner: err = %v", err)
		}
		all, err := s.Toolkits(ctx)
		if err != nil || len(all) != 1 || len(all[0].Tools) != 2 {
			t.Fatalf("Toolkits = %+v, %v", all, err)
		}
		if k2, _ := s.KeyByID(ctx, k.ID); k2.Toolkit != "crm" {
			t.Fatalf("key binding after reopen = %q", k2.Toolkit)
		}
	})
}

func TestRegisterRefusals(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open(t)
		llm, _, _ := s.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "llm"})
		if _, err := s.Register(ctx, Registration{KeyID: llm.ID, Toolkit: "t", Tool: tool("a", "")}); !errors.Is(err, ErrWrongKind) {
			t.Fatalf("llm key: err = %v", err)
		}
		k, _, _ := s.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "tk", Toolkit: "t"})
		s.RevokeKey(ctx, k.ID)
		if _, err := s.Register(ctx, Registration{KeyID: k.ID, Toolkit: "t", Tool: tool("a", "")}); !errors.Is(err, ErrRevokedKey) {
			t.Fatalf("revoked key: err = %v", err)
		}
		if _, err := s.Register(ctx, Registration{KeyID: "missing", Toolkit: "t", Tool: tool("a", "")}); !errors.Is(err, ErrInvalidKey) {
			t.Fatalf("unknown key: err = %v", err)
		}
		if _, err := s.Register(ctx, Registration{KeyID: k.ID, Toolkit: " padded", Tool: tool("a", "")}); err == nil {
			t.Fatal("bad toolkit name accepted")
		}
		if all, _ := s.Toolkits(ctx); len(all) != 0 {
			t.Fatalf("refused registrations left toolkits: %+v", all)
		}
	})
}

// The server and `atp keys` open the same file from two processes, and
// servers share one PostgreSQL database; two Stores in one process
// exercise the same locking.
func TestTwoStoresOneDatabase(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s1, s2 := db.open(t), db.open(t)
		k, _, _ := s1.CreateKey(ctx, NewKey{Kind: KindToolkit, Name: "tk"})
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 50 {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, _, err := s2.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "k"})
				errs <- err
			}()
			go func() {
				defer wg.Done()
				_, err := s1.Register(ctx, Registration{KeyID: k.ID, Toolkit: "t", Tool: tool("t"+string(rune('a'+i%26)), "")})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := s1.CountKeys(ctx); n != 51 {
			t.Fatalf("keys = %d, want 51", n)
		}
		if err := s2.RevokeKey(ctx, k.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s1.Register(ctx, Registration{KeyID: k.ID, Toolkit: "t", Tool: tool("z", "")}); !errors.Is(err, ErrRevokedKey) {
			t.Fatalf("revocation through the other store not seen: %v", err)
		}
	})
}

func TestMemoryStore(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, key, err := s.CreateKey(ctx, NewKey{Kind: KindLLM, Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	// Several goroutines share the single connection of an in-memory store.
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := s.Authenticate(ctx, key); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if _, err := Open(ctx, "/x?y"); err == nil {
		t.Fatal("a path with '?' was accepted")
	}
}
