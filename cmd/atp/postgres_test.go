package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/pgtest"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

// atp keys and atp platforms work on a PostgreSQL database, from --db or
// $ATP_DB, and never print the URL's password.
func TestKeysAndPlatformsOnPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	// A password the server does not ask for (trust), so that it shows
	// where a URL is printed.
	withPassword := strings.Replace(dsn, "://", "://postgres:pw-7f3e9a@", 1)
	if strings.Contains(dsn, "@") {
		withPassword = strings.Replace(dsn, "@", ":pw-7f3e9a@", 1)
	}
	te := newTestEnv(t)
	te.vars["ATP_DB"] = withPassword
	code, out, errOut := te.atp("keys", "create", "--kind", "toolkit", "--name", "ci", "--toolkit", "crm", "--json")
	var k keyJSON
	if code != exitOK || json.Unmarshal([]byte(out), &k) != nil || !strings.HasPrefix(k.APIKey, "atp_tk_") {
		t.Fatalf("create on PostgreSQL: %d %q %q", code, out, errOut)
	}
	code, out, _ = te.atp("keys", "list", "--db", dsn)
	if code != exitOK || !strings.Contains(out, k.ID) || !strings.Contains(out, "crm") {
		t.Fatalf("list with --db: %d %q", code, out)
	}
	if code, out, _ := te.atp("keys", "revoke", k.ID); code != exitOK {
		t.Fatalf("revoke: %d %q", code, out)
	}
	te.vars[server.SecretKeyEnv] = testSecretKey
	te.vars["HUBSPOT_SECRET"] = "hs-secret-4d2a"
	code, out, errOut = te.atp(hubspotArgs("--client-secret-env", "HUBSPOT_SECRET")...)
	if code != exitOK || !strings.Contains(out, "Added OAuth platform hubspot") {
		t.Fatalf("platforms add on PostgreSQL: %d %q %q", code, out, errOut)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got, err := st.KeyByID(ctx, k.ID); err != nil || !got.Revoked() {
		t.Fatalf("the key in PostgreSQL: %+v, %v", got, err)
	}
	if ps, err := st.Platforms(ctx); err != nil || len(ps) != 1 || ps[0].ID != "hubspot" {
		t.Fatalf("platforms in PostgreSQL: %+v, %v", ps, err)
	}

	// A database that does not answer: the error names it, without the
	// password.
	te.vars["ATP_DB"] = "postgres://postgres:pw-7f3e9a@127.0.0.1:1/test?sslmode=disable&connect_timeout=5"
	code, _, errOut = te.atp("keys", "list")
	if code == exitOK || !strings.Contains(errOut, "127.0.0.1:1") || strings.Contains(errOut, "pw-7f3e9a") {
		t.Fatalf("unreachable database: %d %q", code, errOut)
	}
}
