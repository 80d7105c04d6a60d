package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/atpgo/atp/server"
)

// lockedBuffer is a stderr that a running serve and the test share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServe runs `atp serve args...` with te's variables until the test
// calls the returned stop, which returns the exit code. It returns the
// server's base URL once it has printed it.
func startServe(t *testing.T, te *testEnv, args ...string) (base string, stop func() int, stderr *lockedBuffer) {
	t.Helper()
	pr, pw := io.Pipe()
	stderr = &lockedBuffer{}
	e := &env{stdout: pw, stderr: stderr, getenv: te.getenv}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code := run(ctx, e, append([]string{"serve"}, args...))
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("atp serve %v: no output; exit %d; stderr %s", args, <-done, stderr)
	}
	base = regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(sc.Text())
	go io.Copy(io.Discard, pr)
	var once sync.Once
	code := 0
	stop = func() int {
		once.Do(func() { cancel(); code = <-done })
		return code
	}
	t.Cleanup(func() { stop() })
	return base, stop, stderr
}

func postJSON(t *testing.T, url, key string, body map[string]any) (int, map[string]any) {
	t.Helper()
	data, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(data))
	req.Header.Set("Authorization", "ApiKey "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m
}

// Without a secret key and with no OAuth platform, atp serve starts; its
// OAuth and webhook endpoints, and atp platforms add, say how to give a
// key. Once the database holds a platform, a start without the key is
// refused, saying why.
func TestServeWithoutSecretKey(t *testing.T) {
	te := newTestEnv(t)
	_, out, _ := te.atp("keys", "create", "--kind", "llm", "--name", "agent", "--json")
	var k keyJSON
	json.Unmarshal([]byte(out), &k)
	base, stop, stderr := startServe(t, te, "--addr", "127.0.0.1:0")
	if base == "" {
		t.Fatal("serve printed no URL")
	}
	for _, path := range []string{"oauth/confirmation/hubspot/", "webhooks/register/"} {
		status, m := postJSON(t, base+"/api/v1/atp/llm-client/"+path, k.APIKey, map[string]any{"external_user_id": "u1", "url": "https://hooks.example.com/"})
		msg, _ := m["error"].(string)
		if status != http.StatusServiceUnavailable || !strings.Contains(msg, server.SecretKeyEnv) || !strings.Contains(msg, "--secret-key-file") {
			t.Errorf("%s without a key = %d %v, want 503 saying how to give a key", path, status, m)
		}
	}
	if !strings.Contains(stderr.String(), "OAuth broker off") {
		t.Errorf("the start did not say the broker is off:\n%s", stderr)
	}
	code, _, errOut := te.atp(hubspotArgs("--client-secret", "s")...)
	if code != exitFailure || !strings.Contains(errOut, server.SecretKeyEnv) || !strings.Contains(errOut, "--secret-key-file") {
		t.Fatalf("platforms add without a key: %d %q", code, errOut)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("serve exited %d: %s", code, stderr)
	}

	te.vars[server.SecretKeyEnv] = testSecretKey
	if code, _, errOut := te.atp(hubspotArgs("--client-secret", "s")...); code != exitOK {
		t.Fatalf("platforms add with a key: %d %q", code, errOut)
	}
	delete(te.vars, server.SecretKeyEnv)
	code, _, errOut = te.atp("serve", "--addr", "127.0.0.1:0")
	if code != exitFailure || !strings.Contains(errOut, "1 OAuth platform(s)") || !strings.Contains(errOut, server.SecretKeyEnv) {
		t.Fatalf("serve without a key on a database with a platform: %d %q", code, errOut)
	}
}

// A failed atp serve --dev (the port is taken) writes nothing, and says
// how to pick another address.
func TestServeDevPortInUse(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	te := newTestEnv(t)
	dir := filepath.Dir(te.vars["ATP_DB"])
	code, out, errOut := te.atp("serve", "--dev", "--addr", taken.Addr().String())
	if code != exitFailure || !strings.Contains(errOut, "address already in use") || !strings.Contains(errOut, "--addr 127.0.0.1:0") {
		t.Fatalf("serve on a taken port: %d %q %q", code, out, errOut)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("a failed start left %v in %s", entries, dir)
	}
}

// A database first used by --dev is sealed with the key kept beside it: a
// later start with the user's own key is refused with that file named.
func TestServeWrongKeyNamesDevKeyFile(t *testing.T) {
	te := newTestEnv(t)
	_, stop, stderr := startServe(t, te, "--dev", "--addr", "127.0.0.1:0")
	if code := stop(); code != exitOK {
		t.Fatalf("dev start: %d %s", code, stderr)
	}
	file := server.DevSecretKeyPath(te.vars["ATP_DB"])
	te.vars[server.SecretKeyEnv] = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	code, _, errOut := te.atp("serve", "--addr", "127.0.0.1:0")
	if code != exitFailure || !strings.Contains(errOut, "not the one") || !strings.Contains(errOut, "--secret-key-file "+file) {
		t.Fatalf("serve with another key after --dev: %d %q, want %s named", code, errOut, file)
	}
	code, _, errOut = te.atp(hubspotArgs("--client-secret", "s")...)
	if code != exitFailure || !strings.Contains(errOut, file) {
		t.Fatalf("platforms add with another key after --dev: %d %q, want %s named", code, errOut, file)
	}
	// With the named file, it starts.
	delete(te.vars, server.SecretKeyEnv)
	_, stop, stderr = startServe(t, te, "--addr", "127.0.0.1:0", "--secret-key-file", file)
	if code := stop(); code != exitOK {
		t.Fatalf("serve with the dev key file: %d %s", code, stderr)
	}
}

// A second atp serve on the same database refuses to start and names the
// lock; atp keys works beside the running one.
func TestServeTwiceOnOneDatabase(t *testing.T) {
	te := newTestEnv(t)
	base, stop, stderr := startServe(t, te, "--addr", "127.0.0.1:0")
	db := te.vars["ATP_DB"]
	code, _, errOut := te.atp("serve", "--addr", "127.0.0.1:0")
	if code != exitFailure || !strings.Contains(errOut, server.LockPath(db)) || !strings.Contains(errOut, "another atp server") {
		t.Fatalf("second serve: %d %q, want the lock %s named", code, errOut, server.LockPath(db))
	}
	code, out, _ := te.atp("keys", "create", "--kind", "llm", "--name", "beside", "--json")
	var k keyJSON
	if err := json.Unmarshal([]byte(out), &k); code != exitOK || err != nil {
		t.Fatalf("keys create beside a running server: %d %q", code, out)
	}
	// The running server takes the new key at once.
	status, _ := postJSON(t, base+"/api/v1/atp/llm-client/process/", k.APIKey, map[string]any{"type": "get_toolkit_context", "toolkit_id": "none", "provider": "openai"})
	if status != http.StatusNotFound {
		t.Fatalf("the new key on the running server: %d, want 404 for the unknown toolkit (not 401)", status)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("first serve exited %d: %s", code, stderr)
	}
}
