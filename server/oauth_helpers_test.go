package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atpgo/atp/server/store"
)

// ---- a fake clock ----

// fakeClock is the broker's time in tests: it moves only when told, and
// reports the timers waiting on it, so that a test advances time exactly
// when a worker is waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]bool
	added  chan struct{} // a token whenever a timer is added
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), timers: map[*fakeTimer]bool{}, added: make(chan struct{}, 1)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Until(at time.Time) (<-chan time.Time, func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: at, ch: make(chan time.Time, 1)}
	if !at.After(c.now) {
		t.ch <- c.now
		return t.ch, func() {}
	}
	c.timers[t] = true
	select {
	case c.added <- struct{}{}:
	default:
	}
	return t.ch, func() {
		c.mu.Lock()
		delete(c.timers, t)
		c.mu.Unlock()
	}
}

// Advance moves the time and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for t := range c.timers {
		if !t.at.After(c.now) {
			t.ch <- c.now
			delete(c.timers, t)
		}
	}
}

// nextTimer waits (up to 10 s) until a timer is pending and returns the
// earliest deadline.
func (c *fakeClock) nextTimer(t *testing.T) time.Time {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		var first time.Time
		for tm := range c.timers {
			if first.IsZero() || tm.at.Before(first) {
				first = tm.at
			}
		}
		c.mu.Unlock()
		if !first.IsZero() {
			return first
		}
		select {
		case <-c.added:
		case <-deadline:
			t.Fatal("timed out waiting for a timer on the fake clock")
		}
	}
}

// ---- an OAuth2 authorization server ----
//
// A small provider written for these tests, so that they can drive the
// broker with the server's unexported clock. It follows RFC 6749 and RFC
// 7636 where the broker relies on them: PKCE required, S256 only; codes
// used once; refresh tokens rotated, the old access and refresh tokens
// removed; errors as the RFC's JSON. Module tests/interop runs the broker
// against a real provider library (go-oauth2/oauth2) through the server's
// exported API.

const (
	idpClientID     = "atp-test-client"
	idpClientSecret = "client-secret-3c1f9a7e5d"
	idpUser         = "user-42"
)

// authServer is an OAuth2 provider on loopback. Its consent is decided by
// the test (deny), and it records what the PKCE check needs.
type authServer struct {
	t    *testing.T
	http *httptest.Server

	deny        atomic.Bool
	redirectURI atomic.Value // string: the only redirect_uri accepted

	mu         sync.Mutex
	challenges map[string]string // code_challenge by state
	methods    map[string]string // code_challenge_method by state
	verifiers  []string          // code_verifier of each code exchange
	grants     map[string]int    // token requests by grant_type
	issued     []string          // every access and refresh token handed out
	codes      map[string]idpCode
	access     map[string]bool   // valid access tokens
	refresh    map[string]string // valid refresh tokens, with their access token
	scopes     map[string]string // scope of each refresh token
}

// idpCode is an authorization code not yet exchanged.
type idpCode struct {
	challenge, redirectURI, scope string
}

// newAuthServer starts the provider. PKCE is required, with S256 only: an
// authorization without it, or an exchange with the wrong verifier, fails.
func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	a := &authServer{t: t, challenges: map[string]string{}, methods: map[string]string{}, grants: map[string]int{},
		codes: map[string]idpCode{}, access: map[string]bool{}, refresh: map[string]string{}, scopes: map[string]string{}}
	a.redirectURI.Store("")
	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", a.authorize)
	mux.HandleFunc("/token", a.token)
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		a.mu.Lock()
		valid := ok && a.access[tok]
		a.mu.Unlock()
		if !valid {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"sub": idpUser, "email": idpUser + "@example.com"})
	})
	a.http = httptest.NewServer(mux)
	t.Cleanup(a.http.Close)
	return a
}

func idpToken() string {
	b := make([]byte, 18)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

func (a *authServer) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state, challenge, method := q.Get("state"), q.Get("code_challenge"), q.Get("code_challenge_method")
	a.mu.Lock()
	a.challenges[state], a.methods[state] = challenge, method
	a.mu.Unlock()
	redirect := q.Get("redirect_uri")
	switch {
	case q.Get("client_id") != idpClientID:
		http.Error(w, "invalid_client: unknown client_id", http.StatusBadRequest)
		return
	case redirect == "" || redirect != a.redirectURI.Load().(string):
		http.Error(w, "invalid_request: redirect_uri is not registered", http.StatusBadRequest)
		return
	case q.Get("response_type") != "code":
		http.Error(w, "unsupported_response_type", http.StatusBadRequest)
		return
	case challenge == "" || method != "S256":
		http.Error(w, "invalid_request: PKCE with S256 is required", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(redirect)
	v := back.Query()
	v.Set("state", state)
	if a.deny.Load() {
		v.Set("error", "access_denied")
	} else {
		code := idpToken()
		a.mu.Lock()
		a.codes[code] = idpCode{challenge: challenge, redirectURI: redirect, scope: q.Get("scope")}
		a.mu.Unlock()
		v.Set("code", code)
	}
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (a *authServer) token(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	grant := r.PostForm.Get("grant_type")
	a.mu.Lock()
	defer a.mu.Unlock()
	a.grants[grant]++
	fail := func(status int, code string) { writeJSON(w, status, map[string]string{"error": code}) }
	id, secret, basic := r.BasicAuth()
	if basic {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != idpClientID || secret != idpClientSecret {
		fail(http.StatusUnauthorized, "invalid_client")
		return
	}
	var scope string
	switch grant {
	case "authorization_code":
		code, ok := a.codes[r.PostForm.Get("code")]
		delete(a.codes, r.PostForm.Get("code")) // used once, whatever happens
		verifier := r.PostForm.Get("code_verifier")
		if verifier != "" {
			a.verifiers = append(a.verifiers, verifier)
		}
		sum := sha256.Sum256([]byte(verifier))
		if !ok || code.redirectURI != r.PostForm.Get("redirect_uri") || code.challenge != base64.RawURLEncoding.EncodeToString(sum[:]) {
			fail(http.StatusBadRequest, "invalid_grant")
			return
		}
		scope = code.scope
	case "refresh_token":
		old := r.PostForm.Get("refresh_token")
		access, ok := a.refresh[old]
		if !ok {
			fail(http.StatusBadRequest, "invalid_grant")
			return
		}
		scope = a.scopes[old]
		delete(a.refresh, old)
		delete(a.scopes, old)
		delete(a.access, access)
	default:
		fail(http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	access, refresh := idpToken(), idpToken()
	a.access[access] = true
	a.refresh[refresh] = access
	a.scopes[refresh] = scope
	a.issued = append(a.issued, access, refresh)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access, "refresh_token": refresh, "token_type": "Bearer", "expires_in": 3600, "scope": scope,
	})
}

// revokeRefresh makes the provider forget a refresh token, as a user who
// disconnects the app at the provider does.
func (a *authServer) revokeRefresh(token string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.refresh, token)
}

// platform is the provider as an ATP OAuth platform.
func (a *authServer) platform(id string) store.Platform {
	return store.Platform{
		ID: id, Name: "Test IdP", ClientID: idpClientID, ClientSecret: idpClientSecret,
		AuthURL: a.http.URL + "/authorize", TokenURL: a.http.URL + "/token", UserinfoURL: a.http.URL + "/userinfo",
		Scopes: []string{"contacts.read", "companies.write"}, PKCE: true,
	}
}

func (a *authServer) grantCount(grant string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.grants[grant]
}

// userinfo asks the provider whose token this is; "" when it is not valid.
func (a *authServer) userinfo(token string) string {
	req, _ := http.NewRequest(http.MethodGet, a.http.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	json.NewDecoder(resp.Body).Decode(&m)
	return m["email"]
}

// checkPKCE asserts that every code exchange sent the verifier of an S256
// challenge the authorization sent.
func (a *authServer) checkPKCE(t *testing.T) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.verifiers) == 0 {
		t.Fatal("no code exchange sent a code_verifier")
	}
	for _, v := range a.verifiers {
		sum := sha256.Sum256([]byte(v))
		challenge := base64.RawURLEncoding.EncodeToString(sum[:])
		found := false
		for state, c := range a.challenges {
			if c == challenge && a.methods[state] == "S256" {
				found = true
			}
		}
		if !found {
			t.Fatalf("code_verifier %q matches no S256 challenge sent to /authorize (%v)", v, a.challenges)
		}
	}
}

// ---- a browser ----

// browser follows redirects as a user's browser does, keeping cookies, and
// records every URL it was sent to.
type browser struct {
	t       *testing.T
	client  *http.Client
	mu      sync.Mutex
	visited []*url.URL
}

func newBrowser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.client = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		b.mu.Lock()
		b.visited = append(b.visited, req.URL)
		b.mu.Unlock()
		return nil
	}}
	return b
}

// open loads a URL to the end of its redirects: the final status, URL and
// body.
func (b *browser) open(rawURL string) (int, *url.URL, string) {
	b.t.Helper()
	resp, err := b.client.Get(rawURL)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL, string(body)
}

// callbackURL is the last callback URL the browser was sent to.
func (b *browser) callbackURL() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.visited) - 1; i >= 0; i-- {
		if strings.Contains(b.visited[i].Path, "/api/v1/oauth/callback/") {
			return b.visited[i].String()
		}
	}
	b.t.Fatal("the browser was never sent to the callback")
	return ""
}

// ---- LLM-side calls ----

// llmGet sends a GET with "Authorization: ApiKey", as the Python SDK does.
func (e *testEnv) llmGet(key, path string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+"/api/v1/atp/llm-client/"+path, nil)
	req.Header.Set("Authorization", "ApiKey "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		e.t.Fatalf("GET %s: %d, reply is not a JSON object: %s", path, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// llmPost sends a JSON body with the key in the header and the body.
func (e *testEnv) llmPost(key, path string, body map[string]any) (int, map[string]any) {
	e.t.Helper()
	body["api_key"] = key
	return e.post("/api/v1/atp/llm-client/"+path, body, "Authorization", "ApiKey "+key)
}

// ---- a webhook receiver ----

type webhookHit struct {
	header http.Header
	body   []byte
}

// webhookReceiver answers deliveries with the statuses given in turn (200
// once they run out) and hands each one to the test.
type webhookReceiver struct {
	http     *httptest.Server
	hits     chan webhookHit
	mu       sync.Mutex
	statuses []int
}

func newWebhookReceiver(t *testing.T, statuses ...int) *webhookReceiver {
	r := &webhookReceiver{hits: make(chan webhookHit, 64), statuses: statuses}
	r.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
		r.hits <- webhookHit{req.Header.Clone(), body}
	}))
	t.Cleanup(r.http.Close)
	return r
}

func (r *webhookReceiver) next(t *testing.T) webhookHit {
	t.Helper()
	select {
	case h := <-r.hits:
		return h
	case <-time.After(10 * time.Second):
		t.Fatal("timed out waiting for a webhook delivery")
		return webhookHit{}
	}
}

func (h webhookHit) payload(t *testing.T) webhookPayload {
	t.Helper()
	var p webhookPayload
	if err := json.Unmarshal(h.body, &p); err != nil {
		t.Fatalf("webhook body: %v: %s", err, h.body)
	}
	return p
}

// readAll returns the content of the files that exist among paths.
func readAll(t *testing.T, paths ...string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

var osStat = os.Stat
