package server

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/internal/pgtest"
	"github.com/atpgo/atp/server/store"
)

// Servers on one PostgreSQL database: none holds a lock the others trip
// on, /healthz names the store, a key made on one works on the other, and
// a key revoked through one (or atp keys) ends its sessions on the other
// within RevocationCheckInterval.
func TestServersShareOnePostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	a := newEnv(t, Config{DBPath: dsn, RevocationCheckInterval: 20 * time.Millisecond})
	b := newEnv(t, Config{DBPath: dsn, RevocationCheckInterval: 20 * time.Millisecond})
	for _, e := range []*testEnv{a, b} {
		status, body := e.get("/healthz")
		var h map[string]any
		json.Unmarshal(body, &h)
		if status != 200 || h["status"] != "ok" || h["store"] != store.EnginePostgres {
			t.Fatalf("healthz: %d %s", status, body)
		}
	}
	// a's toolkit key registers and serves on b.
	b.pyRegister(a.tkKey, "hello", pyGreet)
	tk := b.dialPyToolkit(a.tkKey)
	llm := b.dialPyLLM(a.llmKey)
	if llm == nil {
		t.Fatal("a's LLM key was refused on b")
	}
	other, err := store.Open(context.Background(), dsn) // what atp keys revoke opens
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.RevokeKey(context.Background(), keyID(t, a.tkKey)); err != nil {
		t.Fatal(err)
	}
	closedWith(t, tk, websocket.ClosePolicyViolation)
	// Revoked through a's Server: b's session of that key ends too.
	if err := a.srv.RevokeKey(context.Background(), keyID(t, a.llmKey)); err != nil {
		t.Fatal(err)
	}
	closedWith(t, llm, websocket.ClosePolicyViolation)
}
