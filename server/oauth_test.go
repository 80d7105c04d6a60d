package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server/store"
)

const platformID = "testidp"

// oauthEnv is a server with the test provider configured as platform
// "testidp", a fake clock and a known secret key.
type oauthEnv struct {
	*testEnv
	idp       *authServer
	clock     *fakeClock
	secretKey []byte
	browser   *browser

	mu      sync.Mutex
	secrets []string // everything that must never be logged
}

func newOAuthEnv(t *testing.T, mod func(*Config)) *oauthEnv {
	t.Helper()
	idp := newAuthServer(t)
	clk := newFakeClock()
	key := make([]byte, store.SecretKeySize)
	rand.Read(key)
	// The test's webhook receivers listen on loopback: opt in.
	cfg := Config{clock: clk, SecretKey: key, Platforms: []store.Platform{idp.platform(platformID)}, AllowPrivateWebhooks: true}
	if mod != nil {
		mod(&cfg)
	}
	e := &oauthEnv{testEnv: newEnv(t, cfg), idp: idp, clock: clk, secretKey: key, browser: newBrowser(t)}
	idp.redirectURI.Store(e.base + callbackPath(platformID))
	e.remember(idpClientSecret, base64.StdEncoding.EncodeToString(key), hex.EncodeToString(key), e.llmKey, e.tkKey)
	return e
}

func (e *oauthEnv) remember(secrets ...string) {
	e.mu.Lock()
	e.secrets = append(e.secrets, secrets...)
	e.mu.Unlock()
}

// checkLogs asserts that no token, code, state, verifier, secret or key
// appears in any log line the server wrote.
func (e *oauthEnv) checkLogs() {
	e.t.Helper()
	e.idp.mu.Lock()
	all := append(append([]string{}, e.idp.issued...), e.idp.verifiers...)
	e.idp.mu.Unlock()
	e.mu.Lock()
	all = append(all, e.secrets...)
	e.mu.Unlock()
	for _, u := range e.browser.visited {
		for _, k := range []string{"code", "state"} {
			if v := u.Query().Get(k); v != "" {
				all = append(all, v)
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "OAuth") {
		e.t.Fatalf("the broker logged nothing; the check would prove nothing:\n%s", logs)
	}
	for _, s := range all {
		if s != "" && strings.Contains(logs, s) {
			e.t.Fatalf("a secret (%.6s...) appears in the logs:\n%s", s, logs)
		}
	}
}

// confirm starts an authorization for user and returns the reply.
func (e *oauthEnv) confirm(user, redirect string) map[string]any {
	e.t.Helper()
	body := map[string]any{"external_user_id": user}
	if redirect != "" {
		body["developer_redirect_url"] = redirect
	}
	status, reply := e.llmPost(e.llmKey, "oauth/confirmation/"+platformID+"/", body)
	if status != http.StatusOK {
		e.t.Fatalf("confirmation: %d %v", status, reply)
	}
	e.remember(reply["state"].(string))
	return reply
}

// connect runs the whole flow for user: confirmation, the provider's
// consent, the callback. It returns the final page.
func (e *oauthEnv) connect(user string) string {
	e.t.Helper()
	reply := e.confirm(user, "")
	status, _, page := e.browser.open(reply["authorization_url"].(string))
	if status != http.StatusOK || !strings.Contains(page, "connected") {
		e.t.Fatalf("after consent: %d %s", status, page)
	}
	return page
}

// tokens reads oauth/tokens for user.
func (e *oauthEnv) tokens(user string) (int, map[string]any) {
	e.t.Helper()
	status, m := e.llmGet(e.llmKey, "oauth/tokens/"+platformID+"/"+url.PathEscape(user)+"/")
	if s, _ := m["access_token"].(string); s != "" {
		e.remember(s, m["refresh_token"].(string))
	}
	return status, m
}

func (e *oauthEnv) registerWebhook(target string, events ...string) string {
	e.t.Helper()
	status, m := e.llmPost(e.llmKey, "webhooks/register/", map[string]any{"url": target, "events": events})
	if status != http.StatusOK {
		e.t.Fatalf("webhooks/register: %d %v", status, m)
	}
	secret := m["secret"].(string)
	e.remember(secret)
	return secret
}

// ---- toolkits ----

// crmToolkit serves "whoami" (needs a testidp token: it asks the provider
// whose token it got) and "ping" (needs none) over WebSocket. calls counts
// the runs of whoami.
func (e *oauthEnv) crmToolkit(calls *atomic.Int32) {
	e.t.Helper()
	tk := runtime.NewToolkit("crm", runtime.WithLogger(discardLogger()))
	err := tk.Add(
		&runtime.Tool{
			Name: "whoami", Description: "Says whose token the call carries.", InputSchema: json.RawMessage(`{"type":"object"}`),
			AuthProvider: platformID, AuthType: "OAuth2", AuthWith: "access_token", NeedsAuthToken: true,
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				calls.Add(1)
				tok := string(call.AuthToken)
				sum := sha256.Sum256([]byte(tok))
				return map[string]string{"email": e.idp.userinfo(tok), "token_sha256": hex.EncodeToString(sum[:])}, nil
			},
		},
		&runtime.Tool{
			Name: "ping", Description: "Needs no token.", InputSchema: json.RawMessage(`{"type":"object"}`),
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				return map[string]bool{"had_token": call.AuthToken != ""}, nil
			},
		},
	)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() {
		served <- tk.Serve(ctx, runtime.ServeConfig{URL: e.base, APIKey: e.tkKey, Transport: runtime.TransportWS, Logger: discardLogger()})
	}()
	e.t.Cleanup(func() {
		cancel()
		<-served
	})
	eventually(e.t, "the toolkit to come online", func() bool {
		k := e.srv.registry.get(toolkitRef{"default", "crm"})
		ws, _ := e.srv.hub.online(toolkitRef{"default", "crm"})
		return ws > 0 && k != nil && k.size() == 2
	})
}

// call runs a task_request through process/ and returns the TASK_RESPONSE.
func (e *oauthEnv) call(tool string, extra map[string]any, payloadExtra map[string]any) map[string]any {
	e.t.Helper()
	req := pyTaskRequest(e.llmKey, "crm", 0, tool, map[string]any{})
	for k, v := range extra {
		req[k] = v
	}
	for k, v := range payloadExtra {
		req["payload"].(map[string]any)[k] = v
	}
	status, m := e.llmPost(e.llmKey, "process/", req)
	if status != http.StatusOK {
		e.t.Fatalf("process/: %d %v", status, m)
	}
	return m
}

func tokenSHA(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// ---- the flow ----

// The whole flow against a real authorization server: confirmation,
// consent, callback, tokens, a webhook, and a call that reaches the toolkit
// with the user's token.
func TestOAuthFullFlow(t *testing.T) {
	e := newOAuthEnv(t, nil)
	var runs atomic.Int32
	e.crmToolkit(&runs)
	hooks := newWebhookReceiver(t)
	hookSecret := e.registerWebhook(hooks.http.URL+"/hooks?k=receiver-secret", eventConnectionSuccess, eventConnectionFailed)
	e.remember("receiver-secret")

	if status, m := e.tokens("alice"); status != http.StatusNotFound || m["status"] != "pending" || !strings.Contains(m["error"].(string), "has not connected") {
		t.Fatalf("tokens before connecting = %d %v, want 404 pending", status, m)
	}

	reply := e.confirm("alice", "")
	auth, err := url.Parse(reply["authorization_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	q := auth.Query()
	wantRedirect := e.base + "/api/v1/oauth/callback/testidp/"
	switch {
	case reply["auth_url"] != reply["authorization_url"] || reply["confirmation_url"] != reply["authorization_url"]:
		t.Fatalf("auth_url and confirmation_url must repeat authorization_url: %v", reply)
	case reply["provider_name"] != "Test IdP" || reply["redirect_uri"] != wantRedirect || reply["external_user_id"] != "alice":
		t.Fatalf("confirmation = %v", reply)
	case fmt.Sprint(reply["scopes"]) != "[contacts.read companies.write]":
		t.Fatalf("scopes = %v", reply["scopes"])
	case !strings.HasPrefix(auth.String(), e.idp.http.URL+"/authorize?"):
		t.Fatalf("authorization_url %s is not the provider's", auth)
	case q.Get("state") != reply["state"] || len(q.Get("state")) < 40:
		t.Fatalf("state %q in the URL, %v in the reply", q.Get("state"), reply["state"])
	case q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("redirect_uri") != wantRedirect:
		t.Fatalf("authorization_url lacks PKCE or the redirect_uri: %s", auth)
	case q.Get("client_id") != idpClientID || q.Get("scope") != "contacts.read companies.write" || q.Get("response_type") != "code":
		t.Fatalf("authorization_url = %s", auth)
	}
	exp, _ := time.Parse(time.RFC3339, reply["expires_at"].(string))
	if !exp.Equal(e.clock.Now().Add(10 * time.Minute)) {
		t.Fatalf("state expires_at = %v, want now + 10m", exp)
	}

	status, final, page := e.browser.open(auth.String())
	if status != http.StatusOK || !strings.Contains(page, "Your Test IdP account is connected") || final.Path != "/api/v1/oauth/callback/testidp/" {
		t.Fatalf("callback page: %d %s %s", status, final, page)
	}
	e.idp.checkPKCE(t)

	status, tok := e.tokens("alice")
	if status != http.StatusOK {
		t.Fatalf("tokens after connecting = %d %v", status, tok)
	}
	access := tok["access_token"].(string)
	switch {
	case tok["status"] != "completed" || tok["external_user_id"] != "alice" || tok["platform_id"] != platformID:
		t.Fatalf("tokens = %v", tok)
	case !strings.HasPrefix(tok["integration_id"].(string), "int_") || tok["refresh_token"] == "" || tok["token_type"] != "Bearer":
		t.Fatalf("tokens = %v", tok)
	case tok["external_user_email"] != "user-42@example.com" || tok["scope"] != "contacts.read companies.write":
		t.Fatalf("tokens email/scope = %v", tok)
	case tok["expires_at"] != e.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339):
		t.Fatalf("expires_at = %v, want %v", tok["expires_at"], e.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	case e.idp.userinfo(access) != "user-42@example.com":
		t.Fatal("the access token handed out is not valid at the provider")
	}

	// The webhook: signed, with the connection and no token.
	hit := hooks.next(t)
	if err := VerifyWebhook(hookSecret, hit.header, hit.body, e.clock.Now(), 5*time.Minute); err != nil {
		t.Fatalf("webhook signature: %v", err)
	}
	p := hit.payload(t)
	if p.Event != eventConnectionSuccess || hit.header.Get("X-ATP-Event") != eventConnectionSuccess || hit.header.Get("X-ATP-Delivery") != p.ID ||
		p.Data["external_user_id"] != "alice" || p.Data["integration_id"] != tok["integration_id"] || p.Data["external_user_email"] != "user-42@example.com" {
		t.Fatalf("webhook = %v %s", hit.header, hit.body)
	}
	if strings.Contains(string(hit.body), access) || strings.Contains(string(hit.body), tok["refresh_token"].(string)) {
		t.Fatal("the webhook body carries a token")
	}

	// A call naming the user (in the payload, over the WebSocket) reaches
	// the toolkit with the user's token, which the provider accepts.
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "crm", 0, "whoami", map[string]any{})
	req["payload"].(map[string]any)["external_user_id"] = "alice"
	res := checkTaskResponse(t, roundTrip(t, llm, req), req, "success").(map[string]any)
	if res["email"] != "user-42@example.com" || res["token_sha256"] != tokenSHA(access) {
		t.Fatalf("whoami = %v", res)
	}
	// At top level, over process/.
	m := e.call("whoami", map[string]any{"external_user_id": "alice"}, nil)
	if m["status"] != "success" || m["result"].(map[string]any)["tool"].(map[string]any)["result"].(map[string]any)["token_sha256"] != tokenSHA(access) {
		t.Fatalf("whoami (top-level external_user_id) = %v", m)
	}
	// A token the caller sends wins over the stored one.
	m = e.call("whoami", map[string]any{"external_user_id": "alice"}, map[string]any{"auth_token": "caller-token"})
	if got := m["result"].(map[string]any)["tool"].(map[string]any)["result"].(map[string]any)["token_sha256"]; got != tokenSHA("caller-token") {
		t.Fatalf("an explicit auth_token was replaced: %v", m)
	}
	// A tool without auth gets no token, whoever the call names.
	m = e.call("ping", map[string]any{"external_user_id": "alice"}, nil)
	if m["result"].(map[string]any)["tool"].(map[string]any)["result"].(map[string]any)["had_token"] != false {
		t.Fatalf("ping got a token: %v", m)
	}
	if runs.Load() != 3 {
		t.Fatalf("whoami ran %d times, want 3", runs.Load())
	}
	e.checkLogs()
}

// With developer_redirect_url the browser ends on the developer's page with
// status=success.
func TestOAuthDeveloperRedirect(t *testing.T) {
	e := newOAuthEnv(t, nil)
	dev := newWebhookReceiver(t) // any page will do: it records the hit
	// A user id with a '/' and an '@' travels escaped in the tokens path.
	reply := e.confirm("team/bob@example.com", dev.http.URL+"/done?session=s1")
	status, final, _ := e.browser.open(reply["authorization_url"].(string))
	if status != http.StatusOK || final.Host != strings.TrimPrefix(dev.http.URL, "http://") || final.Path != "/done" {
		t.Fatalf("final page %d %s, want the developer's /done", status, final)
	}
	q := final.Query()
	if q.Get("status") != "success" || q.Get("session") != "s1" || q.Get("platform_id") != platformID || q.Get("code") != "" {
		t.Fatalf("developer redirect query = %v", q)
	}
	if status, m := e.tokens("team/bob@example.com"); status != http.StatusOK || m["external_user_id"] != "team/bob@example.com" {
		t.Fatalf("tokens = %d", status)
	}
}

// A user who declines gets a friendly page, nothing is stored, and the
// owner's webhook hears connection_failed.
func TestOAuthDeniedConsent(t *testing.T) {
	e := newOAuthEnv(t, nil)
	hooks := newWebhookReceiver(t)
	secret := e.registerWebhook(hooks.http.URL, eventConnectionFailed)
	e.idp.deny.Store(true)

	reply := e.confirm("carol", "")
	status, _, page := e.browser.open(reply["authorization_url"].(string))
	if status != http.StatusOK || !strings.Contains(page, "You declined access to your Test IdP account") {
		t.Fatalf("denied page: %d %s", status, page)
	}
	if status, m := e.tokens("carol"); status != http.StatusNotFound {
		t.Fatalf("tokens after a denial = %d %v, want 404", status, m)
	}
	if n := e.idp.grantCount("authorization_code"); n != 0 {
		t.Fatalf("%d code exchanges after a denial, want 0", n)
	}
	hit := hooks.next(t)
	if err := VerifyWebhook(secret, hit.header, hit.body, e.clock.Now(), time.Minute); err != nil {
		t.Fatal(err)
	}
	if p := hit.payload(t); p.Event != eventConnectionFailed || p.Data["error"] != "access_denied" || p.Data["external_user_id"] != "carol" {
		t.Fatalf("webhook = %s", hit.body)
	}

	// With a developer page, the browser lands there with status=error.
	dev := newWebhookReceiver(t)
	reply = e.confirm("carol", dev.http.URL+"/back")
	_, final, _ := e.browser.open(reply["authorization_url"].(string))
	if q := final.Query(); final.Path != "/back" || q.Get("status") != "error" || q.Get("error") != "access_denied" {
		t.Fatalf("developer redirect after a denial = %s", final)
	}
	e.checkLogs()
}

// Callbacks whose state is missing, unknown, used, expired or of another
// platform get a 400 page and store nothing.
func TestOAuthCallbackStateChecks(t *testing.T) {
	other := newAuthServer(t)
	var e *oauthEnv
	e = newOAuthEnv(t, func(c *Config) { c.Platforms = append(c.Platforms, other.platform("other")) })
	other.redirectURI.Store(e.base + callbackPath("other"))
	cb := e.base + callbackPath(platformID)

	expect400 := func(what, rawURL, words string) {
		t.Helper()
		status, _, page := e.browser.open(rawURL)
		if status != http.StatusBadRequest || !strings.Contains(page, words) || !strings.Contains(page, "Nothing was connected") {
			t.Fatalf("%s: %d %s, want 400 saying %q", what, status, page, words)
		}
	}
	expect400("no state", cb+"?code=abc", "no state parameter")
	expect400("unknown state", cb+"?code=abc&state=forged-state-value-0123456789abcdef0123456789", "unknown or was already used")

	// Replayed: the callback URL of a completed flow, loaded again.
	e.connect("dave")
	first := e.browser.callbackURL()
	_, before := e.tokens("dave")
	exchanges := e.idp.grantCount("authorization_code")
	expect400("replayed state", first, "unknown or was already used")
	if n := e.idp.grantCount("authorization_code"); n != exchanges {
		t.Fatalf("a replayed callback exchanged its code again (%d exchanges, was %d)", n, exchanges)
	}
	if _, after := e.tokens("dave"); after["access_token"] != before["access_token"] {
		t.Fatal("a replayed callback changed the stored tokens")
	}

	// Expired: the user comes back 11 minutes later.
	reply := e.confirm("erin", "")
	e.idp.deny.Store(false)
	// Let the provider answer without the browser following, to hold the
	// callback URL.
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Get(reply["authorization_url"].(string))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	late := resp.Header.Get("Location")
	if !strings.HasPrefix(late, cb) {
		t.Fatalf("provider redirected to %q", late)
	}
	e.browser.visited = append(e.browser.visited, mustParse(t, late))
	e.clock.Advance(11 * time.Minute)
	expect400("expired state", late, "has expired")
	if status, _ := e.tokens("erin"); status != http.StatusNotFound {
		t.Fatalf("tokens after an expired state = %d, want 404", status)
	}
	// ... and it was consumed: the same link fails as used.
	expect400("expired state, again", late, "unknown or was already used")

	// Another platform's state at this platform's callback.
	status, m := e.llmPost(e.llmKey, "oauth/confirmation/other/", map[string]any{"external_user_id": "frank"})
	if status != http.StatusOK {
		t.Fatalf("confirmation of other: %d %v", status, m)
	}
	e.remember(m["state"].(string))
	expect400("wrong platform", cb+"?code=abc&state="+url.QueryEscape(m["state"].(string)), "was not started for this service")
	if status, _ := e.llmGet(e.llmKey, "oauth/tokens/other/frank/"); status != http.StatusNotFound {
		t.Fatalf("tokens of other after a wrong-platform callback = %d", status)
	}
	if status, _ := e.tokens("frank"); status != http.StatusNotFound {
		t.Fatalf("tokens of testidp after a wrong-platform callback = %d", status)
	}
	// The wrong callback did not spend the state: the real one still works.
	if status, _, page := e.browser.open(m["authorization_url"].(string)); status != http.StatusOK || !strings.Contains(page, "connected") {
		t.Fatalf("the right callback after a wrong-platform one: %d %s", status, page)
	}
	status, tok := e.llmGet(e.llmKey, "oauth/tokens/other/frank/")
	if status != http.StatusOK || tok["status"] != "completed" {
		t.Fatalf("tokens of other after its own callback = %d %v", status, tok)
	}
	e.remember(tok["access_token"].(string), tok["refresh_token"].(string))
	e.checkLogs()
}

func mustParse(t *testing.T, raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// An access token near its expiry is refreshed before it is handed out:
// once, however many calls want it at the same moment, and the rotated
// refresh token is kept.
func TestOAuthRefreshBeforeExpiry(t *testing.T) {
	e := newOAuthEnv(t, nil)
	var runs atomic.Int32
	e.crmToolkit(&runs)
	e.connect("gina")
	_, old := e.tokens("gina")

	// 59 minutes later: one minute left, more than the margin. No refresh.
	e.clock.Advance(59 * time.Minute)
	if _, m := e.tokens("gina"); m["access_token"] != old["access_token"] || e.idp.grantCount("refresh_token") != 0 {
		t.Fatalf("refreshed with a minute left: %v", m)
	}
	// 30 s left, less than the 60 s margin: eight calls at once share one
	// refresh.
	e.clock.Advance(30 * time.Second)
	var wg sync.WaitGroup
	results := make([]map[string]any, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = e.call("whoami", nil, map[string]any{"external_user_id": "gina"})
		}()
	}
	wg.Wait()
	if n := e.idp.grantCount("refresh_token"); n != 1 {
		t.Fatalf("%d refresh requests for 8 concurrent calls, want 1", n)
	}
	status, fresh := e.tokens("gina")
	if status != http.StatusOK || fresh["access_token"] == old["access_token"] || fresh["refresh_token"] == old["refresh_token"] {
		t.Fatalf("after the refresh: %d %v", status, fresh)
	}
	if want := e.clock.Now().Add(time.Hour).UTC().Format(time.RFC3339); fresh["expires_at"] != want {
		t.Fatalf("expires_at = %v, want %s", fresh["expires_at"], want)
	}
	for i, m := range results {
		res := m["result"].(map[string]any)["tool"].(map[string]any)["result"].(map[string]any)
		if m["status"] != "success" || res["token_sha256"] != tokenSHA(fresh["access_token"].(string)) || res["email"] != "user-42@example.com" {
			t.Fatalf("call %d = %v", i, m)
		}
	}
	// The provider removed the old access token on refresh: the broker
	// never hands it out again.
	if e.idp.userinfo(old["access_token"].(string)) != "" {
		t.Fatal("the provider still accepts the old access token; the test proves less than it claims")
	}
	// The next refresh uses the rotated refresh token, which works.
	e.clock.Advance(time.Hour)
	if status, m := e.tokens("gina"); status != http.StatusOK || m["access_token"] == fresh["access_token"] {
		t.Fatalf("second refresh: %d %v", status, m)
	}
	if n := e.idp.grantCount("refresh_token"); n != 2 {
		t.Fatalf("%d refresh requests, want 2", n)
	}
	e.checkLogs()
}

// A refresh token the provider revoked breaks the connection: calls fail
// with a clear error before reaching the toolkit, oauth/tokens answers 410,
// the webhook hears it, and a new authorization starts over.
func TestOAuthRevokedRefreshToken(t *testing.T) {
	e := newOAuthEnv(t, nil)
	var runs atomic.Int32
	e.crmToolkit(&runs)
	hooks := newWebhookReceiver(t)
	e.registerWebhook(hooks.http.URL, eventConnectionFailed)
	e.connect("hana")
	_, tok := e.tokens("hana")
	e.idp.revokeRefresh(tok["refresh_token"].(string))
	e.clock.Advance(2 * time.Hour)

	m := e.call("whoami", nil, map[string]any{"external_user_id": "hana"})
	msg, _ := m["message"].(string)
	if m["status"] != "error" || !strings.Contains(msg, "no longer works") || !strings.Contains(msg, "invalid_grant") || !strings.Contains(msg, "connect again") {
		t.Fatalf("call with a revoked refresh token = %v", m)
	}
	if runs.Load() != 0 {
		t.Fatal("the tool ran without a token")
	}
	status, body := e.tokens("hana")
	if status != http.StatusGone || body["status"] != "broken" || !strings.Contains(body["error"].(string), "invalid_grant") {
		t.Fatalf("tokens of a broken connection = %d %v, want 410 broken", status, body)
	}
	hit := hooks.next(t)
	if p := hit.payload(t); p.Event != eventConnectionFailed || p.Data["error"] != "refresh_failed" || p.Data["external_user_id"] != "hana" {
		t.Fatalf("webhook = %s", hit.body)
	}
	// A second call does not ask the provider again.
	refreshes := e.idp.grantCount("refresh_token")
	e.call("whoami", nil, map[string]any{"external_user_id": "hana"})
	if e.idp.grantCount("refresh_token") != refreshes {
		t.Fatal("a broken connection was refreshed again")
	}

	// Reconnecting: pending (404) from the confirmation on, then connected.
	reply := e.confirm("hana", "")
	if status, _ := e.tokens("hana"); status != http.StatusNotFound {
		t.Fatalf("tokens after a new confirmation = %d, want 404 while the user reconnects", status)
	}
	e.browser.open(reply["authorization_url"].(string))
	if status, m := e.tokens("hana"); status != http.StatusOK || m["integration_id"] == "" {
		t.Fatalf("tokens after reconnecting = %d %v", status, m)
	}
	if m := e.call("whoami", nil, map[string]any{"external_user_id": "hana"}); m["status"] != "success" || runs.Load() != 1 {
		t.Fatalf("call after reconnecting = %v", m)
	}
	e.checkLogs()
}

// A platform without PKCE, against a provider that requires it: the
// provider refuses the authorization, which proves that the PKCE the other
// tests send is what the provider checks.
func TestOAuthProviderEnforcesPKCE(t *testing.T) {
	e := newOAuthEnv(t, func(c *Config) { c.Platforms[0].PKCE = false })
	reply := e.confirm("ivan", "")
	if q := mustParse(t, reply["authorization_url"].(string)).Query(); q.Has("code_challenge") {
		t.Fatalf("a platform without PKCE sent a code_challenge: %v", q)
	}
	status, final, page := e.browser.open(reply["authorization_url"].(string))
	if status != http.StatusBadRequest || !strings.HasPrefix(final.String(), e.idp.http.URL) || !strings.Contains(page, "invalid_request") {
		t.Fatalf("provider page = %d %s %s, want its 400 invalid_request", status, final, page)
	}
	if status, _ := e.tokens("ivan"); status != http.StatusNotFound || e.idp.grantCount("authorization_code") != 0 {
		t.Fatalf("tokens = %d, want 404 and no exchange", status)
	}
}

// A code exchange the provider refuses (here: a wrong client secret) gives
// an error page and a connection_failed webhook, and stores nothing.
func TestOAuthExchangeFails(t *testing.T) {
	e := newOAuthEnv(t, func(c *Config) { c.Platforms[0].ClientSecret = "not-the-secret-9b2e" })
	e.remember("not-the-secret-9b2e")
	hooks := newWebhookReceiver(t)
	e.registerWebhook(hooks.http.URL, eventConnectionFailed)
	reply := e.confirm("ivy", "")
	status, _, page := e.browser.open(reply["authorization_url"].(string))
	if status != http.StatusBadGateway || !strings.Contains(page, "Test IdP could not be connected") || !strings.Contains(page, "invalid_client") {
		t.Fatalf("page = %d %s", status, page)
	}
	if status, _ := e.tokens("ivy"); status != http.StatusNotFound {
		t.Fatalf("tokens = %d, want 404", status)
	}
	if p := hooks.next(t).payload(t); p.Event != eventConnectionFailed || p.Data["error"] != "exchange_failed" {
		t.Fatalf("webhook = %+v", p)
	}
	e.checkLogs()
}

// rawToolkit registers "whoami" with auth_provider testidp and hands every
// request it gets to the test, answering each with the token it carried.
func (e *oauthEnv) rawToolkit() <-chan pyToolRequest {
	e.t.Helper()
	status, m := e.post("/api/v1/register_tool", map[string]any{
		"function_id": "whoami", "api_key": e.tkKey, "app_name": "crm", "programming_language": "Python",
		"code_hash": "h", "toolkit_hash": "k",
		"metadata": map[string]any{"params": []string{}, "required_params": []string{}, "description": "d",
			"auth_provider": platformID, "auth_type": "OAuth2", "auth_with": "access_token", "sample_response": "", "source_code": ""},
	})
	if status != http.StatusOK {
		e.t.Fatalf("register_tool: %d %v", status, m)
	}
	ws := e.dialPyToolkit(e.tkKey)
	got := make(chan pyToolRequest, 16)
	go func() {
		for {
			var req pyToolRequest
			if err := ws.ReadJSON(&req); err != nil {
				return
			}
			got <- req
			ws.WriteJSON(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": map[string]any{"token": req.Payload.AuthToken}})
		}
	}()
	return got
}

// A tool registered with an auth_provider that would get no token fails
// with a clear error, and the toolkit never sees the call.
func TestOAuthInjectionFailures(t *testing.T) {
	e := newOAuthEnv(t, nil)
	got := e.rawToolkit()
	cases := []struct {
		name         string
		top, payload map[string]any
		words        []string
	}{
		{"neither token nor user", nil, nil, []string{"whoami needs the end user's testidp token", "auth_token", "external_user_id"}},
		{"user never connected", nil, map[string]any{"external_user_id": "nobody"}, []string{`user "nobody" has not connected testidp`, "oauth/confirmation/testidp/"}},
		{"bad user id", map[string]any{"external_user_id": "a\x00b"}, nil, []string{"external_user_id:", "control characters"}},
	}
	for _, c := range cases {
		m := e.call("whoami", c.top, c.payload)
		msg, _ := m["message"].(string)
		if m["status"] != "error" {
			t.Fatalf("%s: status %v, want error: %v", c.name, m["status"], m)
		}
		for _, w := range c.words {
			if !strings.Contains(msg, w) {
				t.Fatalf("%s: message %q lacks %q", c.name, msg, w)
			}
		}
	}
	// The first request the toolkit ever gets is this one.
	m := e.call("whoami", map[string]any{"auth_token": "explicit"}, nil)
	if m["status"] != "success" {
		t.Fatalf("call with a token = %v", m)
	}
	select {
	case req := <-got:
		if req.Payload.AuthToken == nil || *req.Payload.AuthToken != "explicit" {
			t.Fatalf("the toolkit's first request carried %v, want the explicit token: a failed call reached it", req.Payload.AuthToken)
		}
	default:
		t.Fatal("the toolkit got no request")
	}
	select {
	case req := <-got:
		t.Fatalf("the toolkit got another request: %+v", req)
	default:
	}
}

// A tool whose auth_provider the server does not know fails, naming the
// platforms it does know.
func TestOAuthUnknownPlatform(t *testing.T) {
	e := newOAuthEnv(t, func(c *Config) { c.Platforms[0].ID = "elsewhere" })
	e.rawToolkit()
	m := e.call("whoami", map[string]any{"external_user_id": "u"}, nil)
	if msg, _ := m["message"].(string); m["status"] != "error" || !strings.Contains(msg, `no OAuth platform "testidp" (configured: elsewhere)`) {
		t.Fatalf("call = %v", m)
	}
	status, body := e.llmPost(e.llmKey, "oauth/confirmation/testidp/", map[string]any{"external_user_id": "u"})
	if status != http.StatusNotFound || !strings.Contains(body["error"].(string), "configured: elsewhere") {
		t.Fatalf("confirmation of an unknown platform = %d %v", status, body)
	}
}

// The endpoints check the key, the owner and their input.
func TestOAuthEndpointChecks(t *testing.T) {
	e := newOAuthEnv(t, nil)
	path := "oauth/confirmation/" + platformID + "/"
	if status, _ := e.post("/api/v1/atp/llm-client/"+path, map[string]any{"external_user_id": "u"}); status != http.StatusUnauthorized {
		t.Fatalf("confirmation without a key = %d, want 401", status)
	}
	if status, _ := e.llmPost(e.tkKey, path, map[string]any{"external_user_id": "u"}); status != http.StatusForbidden {
		t.Fatalf("confirmation with a toolkit key = %d, want 403", status)
	}
	for _, c := range []struct {
		body  map[string]any
		words string
	}{
		{map[string]any{}, "external_user_id: missing"},
		{map[string]any{"external_user_id": "u", "developer_redirect_url": "javascript:alert(1)"}, "developer_redirect_url: expected an absolute http(s) URL"},
		{map[string]any{"external_user_id": 7}, "external_user_id: expected string, got number"},
	} {
		status, m := e.llmPost(e.llmKey, path, c.body)
		if status != http.StatusBadRequest || !strings.Contains(m["error"].(string), c.words) {
			t.Fatalf("confirmation %v = %d %v, want 400 %q", c.body, status, m, c.words)
		}
	}
	// Connections belong to the owner of the key that started them.
	e.connect("shared-id")
	otherKey := e.key(store.NewKey{Kind: store.KindLLM, Name: "other", Owner: "acme"})
	e.remember(otherKey)
	if status, _ := e.llmGet(otherKey, "oauth/tokens/"+platformID+"/shared-id/"); status != http.StatusNotFound {
		t.Fatalf("another owner's tokens = %d, want 404", status)
	}
	if status, m := e.llmGet(e.llmKey, "oauth/tokens/nope/shared-id/"); status != http.StatusNotFound || m["status"] != "unknown_platform" {
		t.Fatalf("tokens of an unknown platform = %d %v, want 404 unknown_platform", status, m)
	}
}

// Without a secret key the broker is off, with a message saying how to give
// one; configured platforms make that a start-up error.
func TestOAuthNeedsSecretKey(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, Config{DBPath: dir + "/atp.db"})
	status, m := e.post("/api/v1/atp/llm-client/oauth/confirmation/x/", map[string]any{"external_user_id": "u", "api_key": e.llmKey})
	if msg, _ := m["error"].(string); status != http.StatusServiceUnavailable || !strings.Contains(msg, SecretKeyEnv) || !strings.Contains(msg, "--secret-key-file") {
		t.Fatalf("confirmation without a key = %d %v", status, m)
	}
	idp := newAuthServer(t)
	_, err := New(context.Background(), Config{DBPath: dir + "/b.db", Platforms: []store.Platform{idp.platform("p")}, Logger: discardLogger()})
	if err == nil || !strings.Contains(err.Error(), SecretKeyEnv) || !strings.Contains(err.Error(), "--secret-key-file") {
		t.Fatalf("New with platforms and no key: %v", err)
	}
}

// Dev mode keeps a generated key beside the database (0600) and uses it
// again after a restart; another key is refused.
func TestOAuthDevKeyAndRestart(t *testing.T) {
	dir := t.TempDir()
	db := dir + "/atp.db"
	idp := newAuthServer(t)
	clk := newFakeClock()
	cfg := Config{DBPath: db, Dev: true, clock: clk, Platforms: []store.Platform{idp.platform(platformID)}}
	e := &oauthEnv{testEnv: newEnv(t, cfg), idp: idp, clock: clk, browser: newBrowser(t)}
	idp.redirectURI.Store(e.base + callbackPath(platformID))
	info, err := osStat(DevSecretKeyPath(db))
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("dev key file: %v, %v; want mode 0600", info, err)
	}
	if !strings.Contains(e.logs.String(), "dev mode generated a secret key") {
		t.Fatalf("no warning about the generated key:\n%s", e.logs)
	}
	e.connect("jo")
	_, before := e.tokens("jo")
	llmKey := e.llmKey
	e.srv.Close()

	srv2, err := New(context.Background(), Config{DBPath: db, Dev: true, clock: clk, Platforms: cfg.Platforms, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	c, err := srv2.oauth.fresh(context.Background(), "default", platformID, "jo")
	if err != nil || c.AccessToken != before["access_token"] {
		t.Fatalf("after a restart: %v (token equal: %v)", err, c.AccessToken == before["access_token"])
	}
	_ = llmKey
	srv2.Close()

	wrong := make([]byte, store.SecretKeySize)
	if _, err := New(context.Background(), Config{DBPath: db, SecretKey: wrong, Logger: discardLogger()}); err == nil || !strings.Contains(err.Error(), "not the one this database") {
		t.Fatalf("New with another key: %v", err)
	}
}

// Tokens and client secrets are not in the database file in clear.
func TestOAuthNothingInClearOnDisk(t *testing.T) {
	dir := t.TempDir()
	db := dir + "/atp.db"
	e := newOAuthEnv(t, func(c *Config) { c.DBPath = db })
	hooks := newWebhookReceiver(t)
	secret := e.registerWebhook(hooks.http.URL, eventConnectionSuccess)
	e.connect("kim")
	_, tok := e.tokens("kim")
	// A platform stored by atp platforms add, too.
	p := e.idp.platform("stored")
	p.ClientSecret = "stored-client-secret-77aa"
	if _, err := e.srv.oauth.vault.PutPlatform(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	e.srv.Close()
	raw := readAll(t, db, db+"-wal")
	for name, s := range map[string]string{
		"access token": tok["access_token"].(string), "refresh token": tok["refresh_token"].(string),
		"webhook secret": secret, "client secret": "stored-client-secret-77aa",
	} {
		if strings.Contains(raw, s) {
			t.Fatalf("the %s is in the database file in clear", name)
		}
	}
	if !strings.Contains(raw, "kim") {
		t.Fatal("the user id is not in the file either: the check reads the wrong file")
	}
}
