package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

type testEnv struct {
	env
	out, errOut *bytes.Buffer
	vars        map[string]string
}

func newTestEnv(t *testing.T) *testEnv {
	vars := map[string]string{"ATP_DB": filepath.Join(t.TempDir(), "atp.db"), "HOME": t.TempDir()}
	te := &testEnv{out: &bytes.Buffer{}, errOut: &bytes.Buffer{}, vars: vars}
	te.env = env{stdout: te.out, stderr: te.errOut, getenv: func(k string) string { return vars[k] }}
	return te
}

// atp runs one command line and returns its exit code and output.
func (te *testEnv) atp(args ...string) (int, string, string) {
	te.out.Reset()
	te.errOut.Reset()
	code := run(context.Background(), &te.env, args)
	return code, te.out.String(), te.errOut.String()
}

var apiKeyPattern = regexp.MustCompile(`atp_(tk|llm)_[a-z2-7]+_[a-z2-7]+`)

func TestUsageAndExitCodes(t *testing.T) {
	te := newTestEnv(t)
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, exitUsage, "Usage: atp <command>"},
		{[]string{"help"}, exitOK, "Commands:"},
		{[]string{"frobnicate"}, exitUsage, `unknown command "frobnicate"`},
		{[]string{"keys"}, exitUsage, "missing subcommand"},
		{[]string{"keys", "rename"}, exitUsage, `unknown subcommand "rename"`},
		{[]string{"keys", "rotate"}, exitUsage, "expected exactly one key id"},
		{[]string{"keys", "rotate", "nope"}, exitFailure, `no key with id "nope"`},
		{[]string{"keys", "create", "--kind", "admin", "--name", "x"}, exitUsage, `--kind: expected toolkit or llm, got "admin"`},
		{[]string{"keys", "create", "--kind", "llm"}, exitUsage, "--name is required"},
		{[]string{"keys", "create", "--kind", "llm", "--name", "x", "--toolkit", "t"}, exitUsage, "--toolkit applies to toolkit keys only"},
		{[]string{"keys", "create", "--kind", "llm", "--name", "x", "--owner", "bad owner"}, exitFailure, `owner "bad owner"`},
		{[]string{"keys", "create", "--bogus"}, exitUsage, "flag provided but not defined: -bogus"},
		{[]string{"keys", "revoke"}, exitUsage, "atp keys revoke: expected exactly one key id (see atp keys list), got 0 arguments\nRun 'atp keys revoke -h' for usage.\n"},
		{[]string{"keys", "revoke", "-h"}, exitOK, "Usage: atp keys revoke ID [--json]"},
		{[]string{"version", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"keys", "revoke", "nope"}, exitFailure, `no key with id "nope"`},
		{[]string{"keys", "list", "extra"}, exitUsage, `unexpected argument "extra"`},
		{[]string{"serve", "--call-timeout", "-1s"}, exitUsage, "--call-timeout: expected a positive duration"},
		{[]string{"serve", "--addr"}, exitUsage, "flag needs an argument"},
		{[]string{"serve", "-h"}, exitOK, "atp serve [--addr 127.0.0.1:7777]"},
		{[]string{"serve", "-h"}, exitOK, "-max-conns-per-key int"},
		{[]string{"serve", "--max-conns-per-key", "0"}, exitUsage, "--max-conns-per-key: expected a positive number, got 0"},
		{[]string{"serve", "--pong-timeout", "-1s"}, exitUsage, "--pong-timeout: expected a positive duration, got -1s"},
	} {
		code, _, stderr := te.atp(c.args...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("atp %v: exit %d, stderr %q; want exit %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}

// A flag the command does not know: the error once, then the command's
// own usage, named as the user typed it.
func TestUnknownFlag(t *testing.T) {
	te := newTestEnv(t)
	for _, c := range []struct {
		name string
		args []string
	}{
		{"atp keys revoke", []string{"keys", "revoke", "--bogus", "x"}},
		{"atp serve", []string{"serve", "--bogus"}},
		{"atp doctor", []string{"doctor", "--bogus"}},
		{"atp version", []string{"version", "--bogus"}},
		{"atp platforms remove", []string{"platforms", "remove", "--bogus"}},
	} {
		code, out, stderr := te.atp(c.args...)
		if code != exitUsage || out != "" || strings.Count(stderr, "flag provided but not defined") != 1 ||
			!strings.HasPrefix(stderr, c.name+": flag provided but not defined: -bogus\n\nUsage: "+c.name) || !strings.Contains(stderr, "\nFlags:\n") {
			t.Errorf("atp %q: exit %d, stdout %q, stderr:\n%s", c.args, code, out, stderr)
		}
	}
}

func TestVersion(t *testing.T) {
	te := newTestEnv(t)
	code, out, _ := te.atp("version")
	if code != exitOK || !strings.HasPrefix(out, "atp ") || !strings.Contains(out, "(go1.") {
		t.Fatalf("version: exit %d, %q", code, out)
	}
	code, out, _ = te.atp("version", "--json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != exitOK || err != nil || v.Module != "github.com/atpgo/atp" || v.Version == "" || !strings.HasPrefix(v.GoVersion, "go1.") {
		t.Fatalf("version --json: exit %d, %v: %q", code, err, out)
	}

	// What a release build and a dependency carry.
	modified := true
	for _, c := range []struct {
		info debug.BuildInfo
		want versionInfo
	}{
		{
			debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/atpgo/atp", Version: "v1.2.3"}, Settings: []debug.BuildSetting{
				{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}},
			versionInfo{Module: "github.com/atpgo/atp", Version: "v1.2.3", GoVersion: "go1.26.0", Revision: "abc123", Time: "2026-01-02T03:04:05Z", Modified: &modified},
		},
		{
			debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "example.com/app", Version: "(devel)"}, Deps: []*debug.Module{
				{Path: "github.com/atpgo/atp", Version: "v0.4.0", Replace: &debug.Module{Path: "../atp"}}}},
			versionInfo{Module: "github.com/atpgo/atp", Version: "v0.4.0 => ../atp", GoVersion: "go1.26.0"},
		},
		{
			debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/atpgo/atp"}},
			versionInfo{Module: "github.com/atpgo/atp", Version: "(devel)", GoVersion: "go1.26.0"},
		},
	} {
		if got := buildVersion(&c.info); !reflect.DeepEqual(got, c.want) {
			t.Errorf("buildVersion(%+v) = %+v, want %+v", c.info.Main, got, c.want)
		}
	}
}

func TestKeys(t *testing.T) {
	te := newTestEnv(t)
	code, out, _ := te.atp("keys", "list")
	if code != 0 || !strings.Contains(out, "No keys") {
		t.Fatalf("empty list: %d %q", code, out)
	}
	code, out, _ = te.atp("keys", "create", "--kind", "toolkit", "--name", "ci", "--owner", "acme", "--toolkit", "crm")
	created := apiKeyPattern.FindString(out)
	if code != 0 || !strings.HasPrefix(created, "atp_tk_") || !strings.Contains(out, "shown once") {
		t.Fatalf("create: %d %q", code, out)
	}
	code, out, _ = te.atp("keys", "create", "--kind", "llm", "--name", "agent", "--json")
	var j keyJSON
	if err := json.Unmarshal([]byte(out), &j); code != 0 || err != nil || !strings.HasPrefix(j.APIKey, "atp_llm_") || j.Owner != "default" {
		t.Fatalf("create --json: %d %q %v", code, out, err)
	}

	code, out, _ = te.atp("keys", "list")
	if code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "crm") || strings.Count(out, "active") != 2 {
		t.Fatalf("list: %q", out)
	}
	if apiKeyPattern.MatchString(out) {
		t.Fatalf("list shows a key: %q", out)
	}
	code, out, _ = te.atp("keys", "list", "--json")
	var list []keyJSON
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list) != 2 || list[1].ID != j.ID {
		t.Fatalf("list --json: %q %v", out, err)
	}
	if strings.Contains(out, "api_key") || apiKeyPattern.MatchString(out) {
		t.Fatalf("list --json shows a key: %q", out)
	}

	// Revoking by the whole pasted key revokes by its id and never echoes it.
	code, out, _ = te.atp("keys", "revoke", j.APIKey)
	if code != 0 || !strings.Contains(out, "Revoked key "+j.ID) || strings.Contains(out, j.APIKey) {
		t.Fatalf("revoke: %d %q", code, out)
	}
	code, out, _ = te.atp("keys", "list", "--json")
	json.Unmarshal([]byte(out), &list)
	if list[1].RevokedAt == nil || list[0].RevokedAt != nil {
		t.Fatalf("after revoke: %q", out)
	}

	// keys revoke --json prints the revoked key, never its secret.
	code, out, _ = te.atp("keys", "revoke", "--json", list[0].ID)
	var revoked keyJSON
	if err := json.Unmarshal([]byte(out), &revoked); code != exitOK || err != nil || revoked.ID != list[0].ID || revoked.RevokedAt == nil ||
		revoked.APIKey != "" || apiKeyPattern.MatchString(out) {
		t.Fatalf("revoke --json: exit %d, %v: %q", code, err, out)
	}
}

func TestDefaultDBPath(t *testing.T) {
	e := &env{getenv: func(k string) string {
		return map[string]string{"XDG_DATA_HOME": "/data", "HOME": "/home/u"}[k]
	}}
	if p, _ := resolveDB(e, ""); p != "/data/atp/atp.db" {
		t.Fatalf("with XDG_DATA_HOME: %q", p)
	}
	if p, _ := resolveDB(e, "/x.db"); p != "/x.db" {
		t.Fatalf("with --db: %q", p)
	}
	e.getenv = func(k string) string { return map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "relative"}[k] }
	if p, _ := resolveDB(e, ""); p != filepath.Join("/home/u", ".local", "share", "atp", "atp.db") && !strings.Contains(p, "Library") {
		t.Fatalf("with HOME only: %q", p)
	}
	e.getenv = func(k string) string { return map[string]string{"ATP_DB": "/env.db", "HOME": "/home/u"}[k] }
	if p, _ := resolveDB(e, ""); p != "/env.db" {
		t.Fatalf("with ATP_DB: %q", p)
	}
}

// atp serve --dev on an empty database prints a key of each kind once,
// serves, and stops cleanly when its context ends.
func TestServeDev(t *testing.T) {
	te := newTestEnv(t)
	for i, wantKeys := range []int{2, 0} {
		pr, pw := io.Pipe()
		te.env.stdout = pw
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			code := run(ctx, &te.env, []string{"serve", "--addr", "127.0.0.1:0", "--dev"})
			pw.Close()
			done <- code
		}()
		sc := bufio.NewScanner(pr)
		if !sc.Scan() {
			t.Fatalf("start %d: no output; stderr %s", i, te.errOut)
		}
		first := sc.Text()
		url := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(first)
		if url == "" || !strings.Contains(first, te.vars["ATP_DB"]) {
			t.Fatalf("first line = %q", first)
		}
		var keys []string
		if wantKeys > 0 {
			for sc.Scan() && len(keys) < wantKeys {
				if k := apiKeyPattern.FindString(sc.Text()); k != "" {
					keys = append(keys, k)
				}
			}
		}
		if len(keys) != wantKeys {
			t.Fatalf("start %d: printed %d keys, want %d", i, len(keys), wantKeys)
		}
		resp, err := http.Get(url + "/healthz")
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("healthz: %v", err)
		}
		resp.Body.Close()
		cancel()
		go io.Copy(io.Discard, pr)
		if code := <-done; code != exitOK {
			t.Fatalf("serve exited %d: %s", code, te.errOut)
		}
	}
	// The dev keys are real keys of the database.
	te.env.stdout = te.out
	_, out, _ := te.atp("keys", "list")
	if !strings.Contains(out, "dev toolkit key") || !strings.Contains(out, "dev LLM key") {
		t.Fatalf("keys after dev start: %q", out)
	}
}

// atp serve --json: the start-up line is one JSON object (with the dev keys
// dev mode made) and the logs are JSON lines.
func TestServeJSON(t *testing.T) {
	te := newTestEnv(t)
	pr, pw := io.Pipe()
	te.env.stdout = pw
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int, 1)
	go func() {
		code := run(ctx, &te.env, []string{"serve", "--addr", "127.0.0.1:0", "--dev", "--json", "--verbose"})
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		t.Fatalf("no output; stderr %s", te.errOut)
	}
	var start struct {
		URL      string `json:"url"`
		Database string `json:"database"`
		DevKeys  []struct {
			Kind, ID string
			APIKey   string `json:"api_key"`
		} `json:"dev_keys"`
	}
	if err := json.Unmarshal(sc.Bytes(), &start); err != nil || !strings.HasPrefix(start.URL, "http://127.0.0.1:") ||
		start.Database != te.vars["ATP_DB"] || len(start.DevKeys) != 2 || !apiKeyPattern.MatchString(start.DevKeys[0].APIKey) {
		t.Fatalf("start-up line %q: %v", sc.Text(), err)
	}
	go io.Copy(io.Discard, pr)
	resp, err := http.Get(start.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("serve exited %d: %s", code, te.errOut)
	}
	lines := strings.Split(strings.TrimSpace(te.errOut.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("no log lines at debug level")
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil || rec["msg"] == nil || rec["level"] == nil {
			t.Errorf("log line %q is not a JSON record: %v", l, err)
		}
	}
}

// atp keys rotate makes a key for the same toolkit and says how to retire
// the old one; atp keys create --toolkit names the keys already serving it.
func TestKeysRotate(t *testing.T) {
	te := newTestEnv(t)
	_, out, _ := te.atp("keys", "create", "--kind", "toolkit", "--name", "prod", "--toolkit", "crm", "--json")
	var old keyJSON
	if err := json.Unmarshal([]byte(out), &old); err != nil {
		t.Fatal(err)
	}
	code, out, _ := te.atp("keys", "rotate", old.APIKey) // a pasted key is read as its id
	newKey := apiKeyPattern.FindString(out)
	if code != exitOK || newKey == "" || newKey == old.APIKey || strings.Contains(out, old.APIKey) ||
		!strings.Contains(out, "toolkit crm") || !strings.Contains(out, "atp keys revoke "+old.ID) {
		t.Fatalf("rotate: %d %q", code, out)
	}
	code, out, _ = te.atp("keys", "create", "--kind", "toolkit", "--name", "spare", "--toolkit", "crm")
	if code != exitOK || !strings.Contains(out, "Toolkit crm is also served by:") || !strings.Contains(out, old.ID+" (prod)") {
		t.Fatalf("create for a served toolkit: %d %q", code, out)
	}
	te.atp("keys", "revoke", old.ID)
	code, out, _ = te.atp("keys", "rotate", old.ID, "--name", "again", "--json")
	var j keyJSON
	if err := json.Unmarshal([]byte(out), &j); code != exitOK || err != nil || j.Toolkit != "crm" || j.Name != "again" || j.APIKey == "" {
		t.Fatalf("rotate a revoked key --json: %d %q", code, out)
	}
	_, out, _ = te.atp("keys", "list", "--json")
	var list []keyJSON
	json.Unmarshal([]byte(out), &list)
	if len(list) != 4 {
		t.Fatalf("keys after two rotations and a create: %q", out)
	}
}
