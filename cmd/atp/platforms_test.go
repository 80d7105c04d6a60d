package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

var testSecretKey = base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

func hubspotArgs(extra ...string) []string {
	return append([]string{"platforms", "add", "--id", "hubspot", "--name", "HubSpot", "--client-id", "cid-1",
		"--auth-url", "https://app.hubspot.com/oauth/authorize", "--token-url", "https://api.hubapi.com/oauth/v1/token",
		"--scopes", "crm.objects.companies.write, crm.objects.contacts.read"}, extra...)
}

func TestPlatformsAddListRemove(t *testing.T) {
	te := newTestEnv(t)
	te.vars[server.SecretKeyEnv] = testSecretKey
	te.vars["HUBSPOT_SECRET"] = "hs-secret-4d2a"

	code, out, errOut := te.atp(hubspotArgs("--client-secret-env", "HUBSPOT_SECRET", "--auth-param", "access_type=offline")...)
	if code != exitOK || !strings.Contains(out, "Added OAuth platform hubspot (PKCE on)") || !strings.Contains(out, "/api/v1/oauth/callback/hubspot/") {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	// The secret is stored sealed: with the key it opens, and it is nowhere
	// in clear.
	ctx := context.Background()
	st, err := store.Open(ctx, te.vars["ATP_DB"])
	if err != nil {
		t.Fatal(err)
	}
	key, _ := server.ParseSecretKey(testSecretKey)
	v, err := st.Vault(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := v.Platform(ctx, "hubspot")
	st.Close()
	if err != nil || p.ClientSecret != "hs-secret-4d2a" || !p.PKCE || len(p.Scopes) != 2 || p.Scopes[1] != "crm.objects.contacts.read" ||
		p.AuthParams["access_type"] != "offline" || p.Name != "HubSpot" {
		t.Fatalf("stored platform = %+v, %v", p, err)
	}
	if raw := readFiles(t, te.vars["ATP_DB"], te.vars["ATP_DB"]+"-wal"); strings.Contains(raw, "hs-secret-4d2a") {
		t.Fatal("the client secret is in the database file in clear")
	}

	// Again, without PKCE and with the secret from a file: an update.
	secretFile := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(secretFile, []byte("hs-secret-2\n"), 0o600)
	code, out, errOut = te.atp(hubspotArgs("--client-secret-file", secretFile, "--no-pkce")...)
	if code != exitOK || !strings.Contains(out, "Updated OAuth platform hubspot (PKCE off)") {
		t.Fatalf("update: %d %q %q", code, out, errOut)
	}

	code, out, _ = te.atp("platforms", "list")
	if code != exitOK || !regexp.MustCompile(`hubspot\s+HubSpot\s+cid-1\s+crm.objects.companies.write,crm.objects.contacts.read\s+off`).MatchString(out) {
		t.Fatalf("list: %d %q", code, out)
	}
	code, out, _ = te.atp("platforms", "list", "--json")
	var list []map[string]any
	if code != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["client_id"] != "cid-1" || list[0]["pkce"] != false {
		t.Fatalf("list --json: %d %q", code, out)
	}
	if strings.Contains(out, "hs-secret") {
		t.Fatalf("list --json shows the secret: %q", out)
	}

	code, out, _ = te.atp("platforms", "remove", "hubspot")
	if code != exitOK || !strings.Contains(out, "Removed OAuth platform hubspot and the 0 user connection(s)") {
		t.Fatalf("remove: %d %q", code, out)
	}
	code, _, errOut = te.atp("platforms", "remove", "hubspot")
	if code != exitFailure || !strings.Contains(errOut, `no OAuth platform "hubspot"`) {
		t.Fatalf("remove again: %d %q", code, errOut)
	}
	code, out, _ = te.atp("platforms", "list")
	if code != exitOK || !strings.Contains(out, "No OAuth platforms") {
		t.Fatalf("empty list: %d %q", code, out)
	}

	// add and remove --json: the result as JSON, never the secret.
	code, out, _ = te.atp(hubspotArgs("--client-secret-env", "HUBSPOT_SECRET", "--json")...)
	var added struct {
		Action       string
		Platform     map[string]any
		RedirectPath string `json:"redirect_path"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &added) != nil || added.Action != "added" || added.Platform["id"] != "hubspot" ||
		added.RedirectPath != "/api/v1/oauth/callback/hubspot/" || strings.Contains(out, "hs-secret") {
		t.Fatalf("add --json: %d %q", code, out)
	}
	code, out, _ = te.atp("platforms", "remove", "--json", "hubspot")
	var removed struct {
		ID          string
		Removed     bool
		Connections int `json:"connections_removed"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &removed) != nil || removed.ID != "hubspot" || !removed.Removed || removed.Connections != 0 {
		t.Fatalf("remove --json: %d %q", code, out)
	}
}

func readFiles(t *testing.T, paths ...string) string {
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

func TestPlatformsErrors(t *testing.T) {
	te := newTestEnv(t)
	te.vars[server.SecretKeyEnv] = testSecretKey
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"platforms"}, exitUsage, "missing subcommand"},
		{[]string{"platforms", "rename"}, exitUsage, `unknown subcommand "rename"`},
		{[]string{"platforms", "add", "--client-id", "c"}, exitUsage, "--id is required"},
		{hubspotArgs("--client-secret", "a", "--client-secret-env", "B"), exitUsage, "give the client secret once"},
		{hubspotArgs("--client-secret-env", "UNSET"), exitFailure, "environment variable UNSET is not set"},
		{hubspotArgs("--no-pkce"), exitUsage, "--client-secret: missing"},
		{append(hubspotArgs("--client-secret", "s"), "--token-url", "http://example.com/token"), exitUsage, "--token-url: \"http://example.com/token\": expected https"},
		{append(hubspotArgs("--client-secret", "s"), "--id", "hub spot"), exitUsage, "--id: platform id"},
		{hubspotArgs("--client-secret", "s", "--auth-param", "novalue"), exitUsage, "expected key=value"},
		{hubspotArgs("--client-secret", "s", "--auth-param", "state=x"), exitUsage, `--auth-param: "state" is set by the server`},
		{hubspotArgs("--client-secret", "s", "--auth-style", "basic"), exitUsage, "--auth-style:"},
		{[]string{"platforms", "remove"}, exitUsage, "expected exactly one platform id"},
	} {
		code, _, errOut := te.atp(c.args...)
		if code != c.code || !strings.Contains(errOut, c.want) {
			t.Fatalf("atp %s: exit %d %q; want %d and %q", strings.Join(c.args, " "), code, errOut, c.code, c.want)
		}
	}

	// Without a key, add refuses and says how to give one.
	delete(te.vars, server.SecretKeyEnv)
	code, _, errOut := te.atp(hubspotArgs("--client-secret", "s")...)
	if code != exitFailure || !strings.Contains(errOut, server.SecretKeyEnv) || !strings.Contains(errOut, "--secret-key-file") {
		t.Fatalf("add without a key: %d %q", code, errOut)
	}
	te.vars[server.SecretKeyEnv] = "not base64!"
	if code, _, errOut := te.atp(hubspotArgs("--client-secret", "s")...); code != exitFailure || !strings.Contains(errOut, "ATP_SECRET_KEY: secret key: expected 32 bytes in base64") {
		t.Fatalf("add with a bad key: %d %q", code, errOut)
	}
	// A key file works; another key than the database's first is refused.
	keyFile := filepath.Join(t.TempDir(), "key")
	os.WriteFile(keyFile, []byte(testSecretKey+"\n"), 0o600)
	delete(te.vars, server.SecretKeyEnv)
	if code, _, errOut := te.atp(hubspotArgs("--client-secret", "s", "--secret-key-file", keyFile)...); code != exitOK {
		t.Fatalf("add with a key file: %d %q", code, errOut)
	}
	te.vars[server.SecretKeyEnv] = base64.StdEncoding.EncodeToString(make([]byte, 32))
	if code, _, errOut := te.atp(hubspotArgs("--client-secret", "s")...); code != exitFailure || !strings.Contains(errOut, "not the one this database") {
		t.Fatalf("add with another key: %d %q", code, errOut)
	}
}

// atp serve with --platforms refuses to start without a secret key
// outside dev mode, and takes one from the environment or a file.
func TestServeSecretKey(t *testing.T) {
	te := newTestEnv(t)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"platforms":[{"id":"hubspot","client_id":"c","client_secret_env":"HS","auth_url":"https://a/x","token_url":"https://a/t"}]}`), 0o600)
	code, _, errOut := te.atp("serve", "--addr", "127.0.0.1:0", "--platforms", good)
	if code != exitFailure || !strings.Contains(errOut, server.SecretKeyEnv) || !strings.Contains(errOut, "--secret-key-file") {
		t.Fatalf("serve --platforms without a key: %d %q", code, errOut)
	}
	bad := filepath.Join(dir, "platforms.json")
	os.WriteFile(bad, []byte(`{"platforms":[{"id":"hubspot","client_id":"c","client_secret_env":"HS","auth_url":"https://a/x","tokn_url":"https://a/t"}]}`), 0o600)
	te.vars[server.SecretKeyEnv] = testSecretKey
	code, _, errOut = te.atp("serve", "--addr", "127.0.0.1:0", "--platforms", bad)
	if code != exitFailure || !strings.Contains(errOut, bad) || !strings.Contains(errOut, `unknown field "tokn_url"`) {
		t.Fatalf("serve with a misspelt platforms file: %d %q", code, errOut)
	}
	code, _, errOut = te.atp("serve", "--addr", "127.0.0.1:0", "--platforms", good)
	if code != exitFailure || !strings.Contains(errOut, "client_secret_env: environment variable HS is not set") {
		t.Fatalf("serve with an unset secret variable: %d %q", code, errOut)
	}

	// With the key and the secret set, it serves, and the platform is live.
	te.vars["HS"] = "hs-secret"
	_, out, _ := te.atp("keys", "create", "--kind", "llm", "--name", "agent", "--json")
	var k struct {
		APIKey string `json:"api_key"`
	}
	json.Unmarshal([]byte(out), &k)
	pr, pw := io.Pipe()
	te.env.stdout = pw
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() {
		code := run(ctx, &te.env, []string{"serve", "--addr", "127.0.0.1:0", "--platforms", good, "--public-url", "https://atp.example.com"})
		pw.Close()
		done <- code
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() || !strings.Contains(sc.Text(), "ATP server on http://127.0.0.1:") {
		t.Fatal("serve did not start")
	}
	base := regexp.MustCompile(`http://127\.0\.0\.1:\d+`).FindString(sc.Text())
	go io.Copy(io.Discard, pr)
	req, _ := http.NewRequest(http.MethodPost, base+"/api/v1/atp/llm-client/oauth/confirmation/hubspot/", strings.NewReader(`{"external_user_id":"u1"}`))
	req.Header.Set("Authorization", "ApiKey "+k.APIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var conf map[string]any
	json.NewDecoder(resp.Body).Decode(&conf)
	resp.Body.Close()
	authURL, _ := conf["authorization_url"].(string)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(authURL, "https://a/x?") ||
		conf["redirect_uri"] != "https://atp.example.com/api/v1/oauth/callback/hubspot/" {
		t.Fatalf("confirmation on the served platform: %d %v", resp.StatusCode, conf)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("serve exited %d: %s", code, te.errOut)
	}
}
