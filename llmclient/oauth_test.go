package llmclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

// stubAPI is an httptest server for the LLM-client HTTP endpoints: handle
// answers each request; the requests are recorded.
type stubAPI struct {
	url  string
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, auth string
	body               map[string]any
}

func newStubAPI(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *stubAPI {
	s := &stubAPI{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if data, _ := io.ReadAll(r.Body); len(data) > 0 {
			if err := json.Unmarshal(data, &body); err != nil {
				t.Errorf("%s %s: body is not a JSON object: %s", r.Method, r.URL.Path, data)
			}
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.Header.Get("Authorization"), body})
		n := len(s.reqs)
		s.mu.Unlock()
		handle(n, w, r)
	}))
	t.Cleanup(hs.Close)
	s.url = hs.URL
	return s
}

func (s *stubAPI) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

const stubKey = "atp_llm_stub_secret"

func stubClient(t *testing.T, base string, opts ...llmclient.Option) *llmclient.Client {
	c, err := llmclient.New(stubKey, append([]llmclient.Option{llmclient.WithBaseURL(base), llmclient.WithLogger(discard())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func writeJSON(w http.ResponseWriter, status int, v string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, v)
}

func TestInitiateOAuthConnectionStub(t *testing.T) {
	s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		// An older server: auth_url only, scopes as one string.
		writeJSON(w, 200, `{"auth_url":"https://auth.example/authorize?state=s1","provider_name":"HubSpot","scopes":"crm.read crm.write","auth_mode":"OAuth2"}`)
	})
	c := stubClient(t, s.url+"/base", llmclient.WithTransport("ws")) // OAuth is HTTP whatever the protocol
	conn, err := c.InitiateOAuthConnection(testCtx(t), "hubspot", "user 7", "https://app.example/done")
	if err != nil {
		t.Fatal(err)
	}
	if conn.AuthorizationURL != "https://auth.example/authorize?state=s1" || conn.ProviderName != "HubSpot" ||
		strings.Join(conn.Scopes, ",") != "crm.read,crm.write" || conn.AuthMode != "OAuth2" || !json.Valid(conn.Raw) {
		t.Errorf("conn = %+v", conn)
	}
	r := s.requests()[0]
	if r.method != "POST" || r.path != "/base/api/v1/atp/llm-client/oauth/confirmation/hubspot/" || r.auth != "ApiKey "+stubKey {
		t.Errorf("request %+v", r)
	}
	if r.body["external_user_id"] != "user 7" || r.body["developer_redirect_url"] != "https://app.example/done" || r.body["api_key"] != stubKey {
		t.Errorf("body %v", r.body)
	}

	s = newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, `{"provider_name":"HubSpot"}`) })
	_, err = stubClient(t, s.url).InitiateOAuthConnection(testCtx(t), "hubspot", "u", "")
	if err == nil || !strings.Contains(err.Error(), "neither authorization_url nor auth_url") {
		t.Errorf("no URL: %v", err)
	}
	if _, err := stubClient(t, s.url).InitiateOAuthConnection(testCtx(t), "", "u", ""); err == nil || !strings.Contains(err.Error(), "platformID is empty") {
		t.Errorf("no platform: %v", err)
	}
}

const tokensBody = `{"status":"completed","integration_id":42,"external_user_id":"u1","external_user_email":"ada@example.com",
	"access_token":"at-secret","refresh_token":"rt-secret","expires_at":1893456000,"scope":["a","b"]}`

func TestWaitForConnectionStub(t *testing.T) {
	t.Run("404 then 200", func(t *testing.T) {
		s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n < 3 {
				writeJSON(w, 404, `{"detail":"Not found."}`)
				return
			}
			writeJSON(w, 200, tokensBody)
		})
		tok, err := stubClient(t, s.url).WaitForConnection(testCtx(t), "hubspot", "u1", time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		want := llmclient.UserTokens{Status: "completed", IntegrationID: "42", ExternalUserID: "u1", ExternalUserEmail: "ada@example.com",
			AccessToken: "at-secret", RefreshToken: "rt-secret", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Scope: "a b"}
		if *tok != want {
			t.Errorf("tokens = %#v", *tok)
		}
		reqs := s.requests()
		if len(reqs) != 3 || reqs[2].method != "GET" || reqs[2].path != "/api/v1/atp/llm-client/oauth/tokens/hubspot/u1/" || reqs[2].auth != "ApiKey "+stubKey {
			t.Errorf("requests %+v", reqs)
		}
		// The tokens never print.
		var logged strings.Builder
		slog.New(slog.NewTextHandler(&logged, nil)).Info("got", "tokens", *tok)
		for _, out := range []string{fmt.Sprint(*tok), fmt.Sprintf("%+v", tok), fmt.Sprintf("%#v", *tok), logged.String()} {
			if strings.Contains(out, "at-secret") || strings.Contains(out, "rt-secret") || !strings.Contains(out, "u1") {
				t.Errorf("printed tokens: %s", out)
			}
		}
	})
	t.Run("another error stops the wait", func(t *testing.T) {
		s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 500, `{"error":"database is down"}`)
		})
		_, err := stubClient(t, s.url).WaitForConnection(testCtx(t), "hubspot", "u1", time.Millisecond)
		var apiErr *llmclient.APIError
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 500 || apiErr.Message != "database is down" || errors.Is(err, llmclient.ErrNotConnected) {
			t.Errorf("err = %v", err)
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("%d polls, want 1", n)
		}
	})
	t.Run("a 404 that is not pending stops the wait", func(t *testing.T) {
		s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 404, `{"error":"no OAuth platform \"hubspt\"","status":"error"}`)
		})
		_, err := stubClient(t, s.url).WaitForConnection(testCtx(t), "hubspt", "u1", time.Millisecond)
		if err == nil || errors.Is(err, llmclient.ErrNotConnected) || !strings.Contains(err.Error(), "no OAuth platform") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(testCtx(t))
		s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			if n == 3 {
				cancel()
			}
			writeJSON(w, 404, `{"error":"not connected","status":"pending"}`)
		})
		_, err := stubClient(t, s.url).WaitForConnection(ctx, "hubspot", "u1", time.Millisecond)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v", err)
		}
		if n := len(s.requests()); n != 3 {
			t.Errorf("%d polls, want 3", n)
		}
	})
	t.Run("GetUserTokens", func(t *testing.T) {
		s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 404, `{"error":"not connected","status":"pending"}`)
		})
		_, err := stubClient(t, s.url).GetUserTokens(testCtx(t), "hubspot", "a/b")
		var apiErr *llmclient.APIError
		if !errors.Is(err, llmclient.ErrNotConnected) || !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Errorf("err = %v", err)
		}
		if p := s.requests()[0].path; p != "/api/v1/atp/llm-client/oauth/tokens/hubspot/a/b/" {
			// url.Path is decoded: the escaped slash is a%2Fb on the wire.
			t.Errorf("path %s", p)
		}
	})
}

func TestWebhooksStub(t *testing.T) {
	s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/atp/llm-client/webhooks/register/":
			writeJSON(w, 200, `{"webhook_id":17,"url":"https://app.example/hook","events":["connection_success"]}`)
		case "/api/v1/atp/llm-client/webhooks/":
			writeJSON(w, 200, `{"count":1,"results":[{"id":17,"url":"https://app.example/hook","events":"connection_success"}]}`)
		case "/api/v1/atp/llm-client/webhooks/17/delete/":
			writeJSON(w, 200, `{}`)
		default:
			writeJSON(w, 404, `{"error":"no such endpoint"}`)
		}
	})
	c := stubClient(t, s.url)
	ctx := testCtx(t)
	wh, err := c.RegisterWebhook(ctx, "https://app.example/hook", nil)
	if err != nil || wh.ID != "17" || wh.URL != "https://app.example/hook" || len(wh.Events) != 1 {
		t.Fatalf("register: %+v, %v", wh, err)
	}
	list, err := c.ListWebhooks(ctx)
	if err != nil || len(list) != 1 || list[0].ID != "17" || list[0].Events[0] != llmclient.EventConnectionSuccess {
		t.Errorf("list: %+v, %v", list, err)
	}
	if err := c.DeleteWebhook(ctx, "17"); err != nil {
		t.Error(err)
	}
	reqs := s.requests()
	if reqs[0].method != "POST" || reqs[0].body["url"] != "https://app.example/hook" || fmt.Sprint(reqs[0].body["events"]) != "[connection_success]" || reqs[0].body["api_key"] != stubKey {
		t.Errorf("register request %+v", reqs[0])
	}
	if reqs[2].method != "GET" || reqs[2].path != "/api/v1/atp/llm-client/webhooks/17/delete/" {
		t.Errorf("delete request %+v", reqs[2])
	}
	if _, err := c.RegisterWebhook(ctx, "ftp://x", nil); err == nil || !strings.Contains(err.Error(), "absolute http or https URL") {
		t.Errorf("bad URL: %v", err)
	}
	if err := c.DeleteWebhook(ctx, "18"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown webhook: %v", err)
	}
}

// The whole OAuth flow against the real server: start it, wait while the
// user is not connected, complete it at the server's callback (a loopback
// token endpoint stands in for the provider's), then call a tool with the
// token the server injects for the user.
func TestOAuthFlowRealServer(t *testing.T) {
	var exchanged sync.WaitGroup
	exchanged.Add(1)
	tokenEndpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("grant_type") != "authorization_code" || r.Form.Get("code") != "code-1" || r.Form.Get("code_verifier") == "" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusBadRequest)
			return
		}
		defer exchanged.Done()
		writeJSON(w, 200, `{"access_token":"at-from-hubspot","token_type":"Bearer","refresh_token":"rt-1","expires_in":3600,"scope":"crm.write"}`)
	}))
	defer tokenEndpoint.Close()
	e := newEnv(t, func(cfg *server.Config) {
		cfg.Platforms = []store.Platform{{ID: "hubspot", Name: "HubSpot", ClientID: "client-1", ClientSecret: "client-secret",
			AuthURL: "https://app.hubspot.example/oauth/authorize", TokenURL: tokenEndpoint.URL + "/token",
			Scopes: []string{"crm.write"}, PKCE: true}}
	})
	c := e.client()
	ctx := testCtx(t)

	conn, err := c.InitiateOAuthConnection(ctx, "hubspot", "user-7", "https://app.example/connected")
	if err != nil {
		t.Fatal(err)
	}
	authURL, err := url.Parse(conn.AuthorizationURL)
	if err != nil || !strings.HasPrefix(conn.AuthorizationURL, "https://app.hubspot.example/oauth/authorize?") || conn.ProviderName != "HubSpot" ||
		strings.Join(conn.Scopes, " ") != "crm.write" {
		t.Fatalf("conn = %+v", conn)
	}
	if _, err := c.GetUserTokens(ctx, "hubspot", "user-7"); !errors.Is(err, llmclient.ErrNotConnected) {
		t.Fatalf("before the callback: %v", err)
	}
	if _, err := c.GetUserTokens(ctx, "hubspt", "user-7"); err == nil || !strings.Contains(err.Error(), `no OAuth platform "hubspt"`) {
		t.Errorf("unknown platform: %v", err)
	}

	waited := make(chan error, 1)
	var tokens *llmclient.UserTokens
	go func() {
		var err error
		tokens, err = c.WaitForConnection(ctx, "hubspot", "user-7", 5*time.Millisecond)
		waited <- err
	}()
	// The provider sends the user's browser back to the server.
	browser := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(e.llmURL() + "/api/v1/oauth/callback/hubspot/?code=code-1&state=" + url.QueryEscape(authURL.Query().Get("state")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "https://app.example/connected?") {
		t.Fatalf("callback: %s, Location %q", resp.Status, resp.Header.Get("Location"))
	}
	exchanged.Wait()
	if err := <-waited; err != nil {
		t.Fatal(err)
	}
	if tokens.AccessToken != "at-from-hubspot" || tokens.RefreshToken != "rt-1" || tokens.Status != "completed" || tokens.ExternalUserID != "user-7" ||
		tokens.PlatformID != "hubspot" || time.Until(tokens.ExpiresAt) < 50*time.Minute || tokens.Scope != "crm.write" {
		t.Errorf("tokens = %+v (access %q)", tokens, tokens.AccessToken)
	}

	// The server injects the user's token; the agent never handles it.
	for _, proto := range protocols {
		pc := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
		r, err := pc.Call(ctx, "kit", "whoami", nil, llmclient.WithExternalUserID("user-7"))
		if err != nil || str(r.Value) != "token at-from-hubspot" {
			t.Errorf("%s: whoami for user-7: %+v, %v", proto, r, err)
		}
		r, err = pc.Call(ctx, "kit", "whoami", nil, llmclient.WithExternalUserID("user-8"))
		if err != nil || !r.Failed() || !strings.Contains(r.Error, "user-8") {
			t.Errorf("%s: whoami for a user who never connected: %+v, %v", proto, r, err)
		}
	}
}

func TestWebhooksRealServer(t *testing.T) {
	e := newEnv(t)
	c := e.client(llmclient.WithTransport("ws"))
	ctx := testCtx(t)
	wh, err := c.RegisterWebhook(ctx, "https://hooks.example.com/hooks", []string{llmclient.EventConnectionSuccess, llmclient.EventConnectionFailed})
	if err != nil {
		t.Fatal(err)
	}
	if wh.ID == "" || wh.URL != "https://hooks.example.com/hooks" || len(wh.Events) != 2 || wh.Secret == "" || wh.CreatedAt.IsZero() {
		t.Errorf("registered %+v", wh)
	}
	if strings.Contains(fmt.Sprint(*wh), wh.Secret) || strings.Contains(fmt.Sprintf("%#v", *wh), wh.Secret) {
		t.Errorf("the secret prints: %v", *wh)
	}
	list, err := c.ListWebhooks(ctx)
	if err != nil || len(list) != 1 || list[0].ID != wh.ID || list[0].Secret != "" {
		t.Errorf("list: %+v, %v", list, err)
	}
	if _, err := c.RegisterWebhook(ctx, "https://hooks.example.com/hooks", []string{"connection_lost"}); err == nil || !strings.Contains(err.Error(), `unknown event "connection_lost"`) {
		t.Errorf("unknown event: %v", err)
	}
	if err := c.DeleteWebhook(ctx, wh.ID); err != nil {
		t.Fatal(err)
	}
	if list, err := c.ListWebhooks(ctx); err != nil || len(list) != 0 {
		t.Errorf("after delete: %+v, %v", list, err)
	}
	var apiErr *llmclient.APIError
	if err := c.DeleteWebhook(ctx, wh.ID); !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
		t.Errorf("delete twice: %v", err)
	}
}
