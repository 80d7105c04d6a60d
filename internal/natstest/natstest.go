// Package natstest gives a test a NATS cluster prefix of its own, so that
// tests run in parallel on one NATS server and leave nothing behind.
//
// The server is the one $ATP_TEST_NATS names, e.g. nats://127.0.0.1:4222,
// with JetStream. Without it a test that asks for one is skipped, saying
// so, except under CI (CI set), where it fails: a CI run must not pass by
// skipping the NATS cases. A server that does not answer fails the test,
// CI or not.
package natstest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Env is the variable that names the test NATS server.
const Env = "ATP_TEST_NATS"

// Example is what Env is set to on a machine with a local NATS.
const Example = "nats://127.0.0.1:4222"

// URL returns $ATP_TEST_NATS once NATS answers there, skipping the test
// without it (failing it under CI).
func URL(t testing.TB) string {
	t.Helper()
	u := os.Getenv(Env)
	if u == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set under CI: the NATS cases must run there (e.g. %s=%s)", Env, Env, Example)
		}
		t.Skipf("NATS case skipped: set %s to run it (e.g. %s=%s)", Env, Env, Example)
	}
	nc, err := nats.Connect(u, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("%s: NATS does not answer at %s: %v", Env, u, err)
	}
	nc.Close()
	return u
}

// Prefix returns $ATP_TEST_NATS and a cluster prefix (server.Config's
// ClusterPrefix) no other test uses. When the test ends, the JetStream
// streams under the prefix are deleted: call it before starting what uses
// it, so that its cleanup runs after theirs.
func Prefix(t testing.TB) (url, prefix string) {
	t.Helper()
	url = URL(t)
	b := make([]byte, 6)
	rand.Read(b)
	prefix = "atptest" + hex.EncodeToString(b)
	t.Cleanup(func() { DeleteStreams(t, url, prefix) })
	return url, prefix
}

// DeleteStreams deletes the JetStream streams whose names start with
// prefix + "_".
func DeleteStreams(t testing.TB, url, prefix string) {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Errorf("%s: deleting the streams of %s: %v", Env, prefix, err)
		return
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Errorf("%s: %v", Env, err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	names := js.StreamNames(ctx)
	var mine []string
	for name := range names.Name() {
		if strings.HasPrefix(name, prefix+"_") {
			mine = append(mine, name)
		}
	}
	if err := names.Err(); err != nil {
		t.Errorf("%s: listing streams: %v", Env, err)
	}
	for _, name := range mine {
		if err := js.DeleteStream(ctx, name); err != nil {
			t.Errorf("%s: deleting stream %s: %v", Env, name, err)
		}
	}
}
