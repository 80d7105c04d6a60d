// Package oauth runs the reference server's OAuth2 broker against a real
// authorization server library (go-oauth2/oauth2), through the server's
// exported API and the agent-side client: the flow a user goes through in
// a browser, the code exchange with PKCE, the user's tokens, their refresh
// with rotation, and the provider's refusals. Package server's own tests
// cover the broker's timing (state expiry, refresh margins) with a fake
// clock and a small provider of their own.
package oauth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	oauth2srv "github.com/go-oauth2/oauth2/v4"
	oerrors "github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	oserver "github.com/go-oauth2/oauth2/v4/server"
	ostore "github.com/go-oauth2/oauth2/v4/store"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

const (
	clientID     = "atp-interop-client"
	clientSecret = "client-secret-7d1e0c4b2a"
	platformID   = "idp"
)

// provider is go-oauth2's authorization server on loopback, requiring PKCE
// with S256 and rotating refresh tokens.
type provider struct {
	http        *httptest.Server
	srv         *oserver.Server
	redirectURI atomic.Value // string: the only redirect_uri accepted

	mu         sync.Mutex
	challenges []string       // code_challenge of each authorization
	verifiers  []string       // code_verifier of each code exchange
	grants     map[string]int // token requests by grant_type
}

func newProvider(t *testing.T) *provider {
	p := &provider{grants: map[string]int{}}
	p.redirectURI.Store("")
	mgr := manage.NewDefaultManager()
	mgr.SetAuthorizeCodeTokenCfg(&manage.Config{AccessTokenExp: time.Hour, RefreshTokenExp: 30 * 24 * time.Hour, IsGenerateRefresh: true})
	mgr.SetRefreshTokenCfg(&manage.RefreshingConfig{AccessTokenExp: time.Hour, RefreshTokenExp: 30 * 24 * time.Hour,
		IsGenerateRefresh: true, IsRemoveAccess: true, IsRemoveRefreshing: true})
	mgr.MustTokenStorage(ostore.NewMemoryTokenStore())
	mgr.SetValidateURIHandler(func(_, redirect string) error {
		if redirect != p.redirectURI.Load().(string) {
			return oerrors.ErrInvalidRedirectURI
		}
		return nil
	})
	clients := ostore.NewClientStore()
	clients.Set(clientID, &models.Client{ID: clientID, Secret: clientSecret, Domain: "http://127.0.0.1"})
	mgr.MapClientStorage(clients)
	p.srv = oserver.NewServer(oserver.NewConfig(), mgr)
	p.srv.Config.ForcePKCE = true
	p.srv.Config.AllowedCodeChallengeMethods = []oauth2srv.CodeChallengeMethod{oauth2srv.CodeChallengeS256}
	p.srv.SetUserAuthorizationHandler(func(http.ResponseWriter, *http.Request) (string, error) { return "user-7", nil })

	mux := http.NewServeMux()
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.challenges = append(p.challenges, r.FormValue("code_challenge"))
		p.mu.Unlock()
		if err := p.srv.HandleAuthorizeRequest(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		p.mu.Lock()
		p.grants[r.PostForm.Get("grant_type")]++
		if v := r.PostForm.Get("code_verifier"); v != "" {
			p.verifiers = append(p.verifiers, v)
		}
		p.mu.Unlock()
		p.srv.HandleTokenRequest(w, r)
	})
	mux.HandleFunc("/userinfo", func(w http.ResponseWriter, r *http.Request) {
		ti, err := p.srv.ValidationBearerToken(r)
		if err != nil {
			http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"sub": ti.GetUserID(), "email": ti.GetUserID() + "@example.com"})
	})
	p.http = httptest.NewServer(mux)
	t.Cleanup(p.http.Close)
	return p
}

func (p *provider) platform() store.Platform {
	return store.Platform{
		ID: platformID, Name: "Interop IdP", ClientID: clientID, ClientSecret: clientSecret,
		AuthURL: p.http.URL + "/authorize", TokenURL: p.http.URL + "/token", UserinfoURL: p.http.URL + "/userinfo",
		Scopes: []string{"contacts.read"}, PKCE: true,
	}
}

func (p *provider) grantCount(grant string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.grants[grant]
}

// email asks the provider whose access token this is; "" when it is not
// valid.
func (p *provider) email(t *testing.T, token string) string {
	req, _ := http.NewRequest(http.MethodGet, p.http.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]string
	json.NewDecoder(resp.Body).Decode(&m)
	return m["email"]
}

type env struct {
	idp    *provider
	client *llmclient.Client
	// browser follows redirects and keeps cookies, as a user's does.
	browser *http.Client
}

// newEnv starts the provider and an atp server that knows it as a
// platform, with refreshMargin as Config.TokenRefreshMargin.
func newEnv(t *testing.T, refreshMargin time.Duration, edit func(*store.Platform)) *env {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	idp := newProvider(t)
	platform := idp.platform()
	if edit != nil {
		edit(&platform)
	}
	key := make([]byte, store.SecretKeySize)
	rand.Read(key)
	srv, err := server.New(ctx, server.Config{Addr: "127.0.0.1:0", SecretKey: key, Platforms: []store.Platform{platform},
		TokenRefreshMargin: refreshMargin, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		srv.Close()
	})
	idp.redirectURI.Store(srv.URL() + "/api/v1/oauth/callback/" + platformID + "/")
	_, llmKey, err := srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := llmclient.New(llmKey, llmclient.WithBaseURL(srv.URL()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	jar, _ := cookiejar.New(nil)
	return &env{idp: idp, client: c, browser: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
}

// open loads rawURL in the browser and returns the final status, URL and
// page.
func (e *env) open(t *testing.T, rawURL string) (int, *url.URL, string) {
	resp, err := e.browser.Get(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Request.URL, string(body)
}

// The whole flow: the user authorizes in the browser, the server exchanges
// the code with PKCE, and the tokens it hands out are valid at the
// provider; with a refresh margin longer than the tokens' life, each
// request for them refreshes them, rotating the refresh token.
func TestConnectAndRefresh(t *testing.T) {
	e := newEnv(t, 2*time.Hour, nil)
	ctx := context.Background()
	if _, err := e.client.GetUserTokens(ctx, platformID, "alice"); !errors.Is(err, llmclient.ErrNotConnected) {
		t.Fatalf("tokens before connecting: %v, want ErrNotConnected", err)
	}
	conn, err := e.client.InitiateOAuthConnection(ctx, platformID, "alice", "")
	if err != nil {
		t.Fatal(err)
	}
	status, final, page := e.open(t, conn.AuthorizationURL)
	if status != http.StatusOK || !strings.Contains(page, "Your Interop IdP account is connected") || !strings.HasSuffix(final.Path, "/oauth/callback/"+platformID+"/") {
		t.Fatalf("after authorizing: %d %s %s", status, final, page)
	}
	// PKCE: the verifier of the exchange matches the S256 challenge of the
	// authorization (go-oauth2 checked it; the test checks it was sent).
	e.idp.mu.Lock()
	challenges, verifiers := e.idp.challenges, e.idp.verifiers
	e.idp.mu.Unlock()
	if len(verifiers) != 1 || len(challenges) != 1 {
		t.Fatalf("%d verifiers, %d challenges, want one each", len(verifiers), len(challenges))
	}
	if sum := sha256.Sum256([]byte(verifiers[0])); base64.RawURLEncoding.EncodeToString(sum[:]) != challenges[0] {
		t.Fatal("the code_verifier does not match the code_challenge")
	}

	first, err := e.client.GetUserTokens(ctx, platformID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if e.idp.email(t, first.AccessToken) != "user-7@example.com" || first.ExternalUserEmail != "user-7@example.com" || first.Scope != "contacts.read" {
		t.Fatalf("tokens = %+v: not valid at the provider, or not the user's", first)
	}
	if n := e.idp.grantCount("refresh_token"); n != 1 {
		t.Fatalf("%d refreshes after the first tokens request, want 1 (the margin is longer than the token's life)", n)
	}
	second, err := e.client.GetUserTokens(ctx, platformID, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken || second.RefreshToken == first.RefreshToken || e.idp.grantCount("refresh_token") != 2 {
		t.Fatal("the second request did not refresh and rotate the tokens")
	}
	if e.idp.email(t, second.AccessToken) == "" || e.idp.email(t, first.AccessToken) != "" {
		t.Fatal("the provider should accept the new access token only")
	}
}

// The provider's refusals: a platform without PKCE is refused at the
// authorization (so the PKCE the server sends is what the provider
// checks), and a wrong client secret fails the exchange; neither stores a
// connection.
func TestProviderRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("no PKCE", func(t *testing.T) {
		e := newEnv(t, 0, func(p *store.Platform) { p.PKCE = false })
		conn, err := e.client.InitiateOAuthConnection(ctx, platformID, "bob", "")
		if err != nil {
			t.Fatal(err)
		}
		status, final, page := e.open(t, conn.AuthorizationURL)
		if status != http.StatusBadRequest || !strings.HasPrefix(final.String(), e.idp.http.URL) || !strings.Contains(page, "invalid_request") {
			t.Fatalf("provider page = %d %s %s, want its 400 invalid_request", status, final, page)
		}
		if _, err := e.client.GetUserTokens(ctx, platformID, "bob"); !errors.Is(err, llmclient.ErrNotConnected) || e.idp.grantCount("authorization_code") != 0 {
			t.Fatalf("tokens: %v, want ErrNotConnected and no exchange", err)
		}
	})
	t.Run("wrong client secret", func(t *testing.T) {
		e := newEnv(t, 0, func(p *store.Platform) { p.ClientSecret = "not-the-secret" })
		conn, err := e.client.InitiateOAuthConnection(ctx, platformID, "carol", "")
		if err != nil {
			t.Fatal(err)
		}
		status, _, page := e.open(t, conn.AuthorizationURL)
		if status != http.StatusBadGateway || !strings.Contains(page, "invalid_client") {
			t.Fatalf("callback page = %d %s, want 502 naming invalid_client", status, page)
		}
		if _, err := e.client.GetUserTokens(ctx, platformID, "carol"); err == nil {
			t.Fatal("tokens stored after a failed exchange")
		}
	})
}
