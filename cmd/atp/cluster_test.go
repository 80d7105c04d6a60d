package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/atpgo/atp/internal/natstest"
	"github.com/atpgo/atp/internal/pgtest"
)

// atp serve --nats runs a replica: its start-up line names it and NATS
// (without the password), and /healthz reports NATS. On a SQLite file it
// refuses to start, saying why.
func TestServeAsReplica(t *testing.T) {
	url, prefix := natstest.Prefix(t)
	dsn := pgtest.DSN(t)
	te := newTestEnv(t)
	withUser := strings.Replace(url, "nats://", "nats://atp:pw-51c2@", 1) // the test NATS asks for no password
	base, stop, stderr := startServe(t, te, "--addr", "127.0.0.1:0", "--db", dsn, "--nats", withUser, "--cluster-prefix", prefix)
	if base == "" {
		t.Fatalf("no URL; stderr %s", stderr)
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	json.NewDecoder(resp.Body).Decode(&h)
	resp.Body.Close()
	if resp.StatusCode != 200 || h["nats"] != "ok" || h["replicas"] != float64(1) {
		t.Fatalf("healthz: %d %v", resp.StatusCode, h)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	if strings.Contains(stderr.String(), "pw-51c2") {
		t.Fatalf("the NATS password was logged: %s", stderr)
	}

	code, out, errOut := te.atp("serve", "--addr", "127.0.0.1:0", "--db", t.TempDir()+"/atp.db", "--nats", url)
	if code == exitOK || !strings.Contains(errOut, "share one PostgreSQL database") {
		t.Fatalf("serve --nats on SQLite: %d %q %q", code, out, errOut)
	}
}
