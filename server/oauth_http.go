package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/atpgo/atp/server/store"
)

func (s *Server) oauthRoutes(mux *http.ServeMux) {
	const llm = "/api/v1/atp/llm-client/"
	mux.HandleFunc("POST "+llm+"oauth/confirmation/{platform}/{$}", s.handleOAuthConfirmation)
	mux.HandleFunc("GET "+llm+"oauth/tokens/{platform}/{user}/{$}", s.handleOAuthTokens)
	mux.HandleFunc("GET /api/v1/oauth/callback/{platform}/{$}", s.handleOAuthCallback)
	mux.HandleFunc("POST "+llm+"webhooks/register/{$}", s.handleWebhookRegister)
	mux.HandleFunc("GET "+llm+"webhooks/{$}", s.handleWebhookList)
	// The Python SDK deletes with GET (docs/protocol.md §2.2); DELETE is what a
	// REST client tries.
	mux.HandleFunc("GET "+llm+"webhooks/{id}/delete/{$}", s.handleWebhookDelete)
	mux.HandleFunc("DELETE "+llm+"webhooks/{id}/{$}", s.handleWebhookDelete)
}

// llmSchemes are the Authorization schemes an LLM key may come in.
var llmSchemes = []string{"ApiKey", "Bearer"}

// llmKey authenticates an LLM key sent as "Authorization: ApiKey <key>"
// (or Bearer) on a request without a body (POSTs use keyedBody), and counts
// the request against the key's limit. On failure it has answered.
func (s *Server) llmKey(w http.ResponseWriter, r *http.Request, bodyKey string) (store.Key, bool) {
	apiKey, err := pickKey(bodyKey, bearer(r, llmSchemes...))
	if err == nil {
		var k store.Key
		if k, err = s.authenticate(r.Context(), apiKey, store.KindLLM); err == nil {
			return k, s.admitRequest(w, k)
		}
	}
	writeAuthError(w, err)
	return store.Key{}, false
}

// brokerOn answers 503 when the broker has no secret key.
func (s *Server) brokerOn(w http.ResponseWriter) bool {
	if s.oauth.vault == nil {
		writeError(w, http.StatusServiceUnavailable, errBrokerOff.Error())
		return false
	}
	return true
}

// knownPlatform returns a platform, answering 404 (or 500) itself when it
// cannot.
func (s *Server) knownPlatform(w http.ResponseWriter, ctx context.Context, id string) (store.Platform, bool) {
	p, err := s.oauth.platform(ctx, id)
	switch {
	case errors.Is(err, store.ErrPlatformNotFound):
		// The status tells a client polling oauth/tokens (which waits while
		// the status is "pending") that waiting will not help.
		writeJSON(w, http.StatusNotFound, map[string]string{"status": "unknown_platform",
			"error": fmt.Sprintf("no OAuth platform %q (configured: %s)", id, s.oauth.platformIDs(ctx))})
		return p, false
	case err != nil:
		s.log.Error("reading an OAuth platform failed", "platform", id, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error reading the OAuth platform")
		return p, false
	}
	return p, true
}

// confirmationReply answers oauth/confirmation (docs/protocol.md §3 step 1). auth_url and
// confirmation_url repeat authorization_url: the Python SDK's example reads
// auth_url, its docstring names confirmation_url.
type confirmationReply struct {
	AuthorizationURL string    `json:"authorization_url"`
	AuthURL          string    `json:"auth_url"`
	ConfirmationURL  string    `json:"confirmation_url"`
	PlatformID       string    `json:"platform_id"`
	ProviderName     string    `json:"provider_name"`
	Scopes           []string  `json:"scopes"`
	AuthMode         string    `json:"auth_mode"`
	ExternalUserID   string    `json:"external_user_id"`
	State            string    `json:"state"`
	ExpiresAt        time.Time `json:"expires_at"`
	RedirectURI      string    `json:"redirect_uri"`
}

func (s *Server) handleOAuthConfirmation(w http.ResponseWriter, r *http.Request) {
	var req struct {
		ExternalUserID       string `json:"external_user_id"`
		DeveloperRedirectURL string `json:"developer_redirect_url"`
		APIKey               string `json:"api_key"`
	}
	key, ok := s.keyedBody(w, r, store.KindLLM, llmSchemes, into(&req), func() string { return req.APIKey })
	if !ok || !s.brokerOn(w) {
		return
	}
	ctx := r.Context()
	p, ok := s.knownPlatform(w, ctx, r.PathValue("platform"))
	if !ok {
		return
	}
	if err := store.ValidExternalUserID(req.ExternalUserID); err != nil {
		writeError(w, http.StatusBadRequest, "external_user_id: "+err.Error())
		return
	}
	if req.DeveloperRedirectURL != "" {
		if u, err := url.Parse(req.DeveloperRedirectURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("developer_redirect_url: expected an absolute http(s) URL, got %q", req.DeveloperRedirectURL))
			return
		}
	}
	b := s.oauth
	var verifier string
	if p.PKCE {
		verifier = oauth2.GenerateVerifier()
	}
	now := b.clock.Now()
	st := store.OAuthState{Owner: key.Owner, PlatformID: p.ID, ExternalUserID: req.ExternalUserID, RedirectURL: req.DeveloperRedirectURL,
		Verifier: verifier, CreatedAt: now, ExpiresAt: now.Add(s.cfg.OAuthStateTTL)}
	state, err := b.vault.CreateState(ctx, st)
	if errors.Is(err, store.ErrTooManyStates) {
		writeError(w, http.StatusTooManyRequests, err.Error())
		return
	}
	if err == nil {
		// A user connecting again after their connection broke starts from
		// "not connected", so that polling oauth/tokens waits for the new one.
		err = s.store.ForgetBrokenConnection(ctx, key.Owner, p.ID, req.ExternalUserID)
	}
	if err != nil {
		s.log.Error("starting an OAuth authorization failed", "platform", p.ID, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error starting the authorization")
		return
	}
	redirectURI := s.publicURL(r) + callbackPath(p.ID)
	opts := make([]oauth2.AuthCodeOption, 0, 2+len(p.AuthParams))
	opts = append(opts, redirectOption(redirectURI))
	if verifier != "" {
		opts = append(opts, oauth2.S256ChallengeOption(verifier))
	}
	names := make([]string, 0, len(p.AuthParams))
	for k := range p.AuthParams {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		opts = append(opts, oauth2.SetAuthURLParam(k, p.AuthParams[k]))
	}
	authURL := s.oauth.config(&p).AuthCodeURL(state, opts...)
	s.log.Info("OAuth authorization started", "owner", key.Owner, "platform", p.ID, "external_user_id", req.ExternalUserID)
	writeJSON(w, http.StatusOK, confirmationReply{
		AuthorizationURL: authURL, AuthURL: authURL, ConfirmationURL: authURL,
		PlatformID: p.ID, ProviderName: p.DisplayName(), Scopes: nonNilStrings(p.Scopes), AuthMode: "OAuth2",
		ExternalUserID: req.ExternalUserID, State: state, ExpiresAt: st.ExpiresAt.UTC(), RedirectURI: redirectURI,
	})
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// tokensReply answers oauth/tokens once connected (docs/protocol.md §3 step 3).
type tokensReply struct {
	Status            string     `json:"status"`
	IntegrationID     string     `json:"integration_id"`
	PlatformID        string     `json:"platform_id"`
	ExternalUserID    string     `json:"external_user_id"`
	ExternalUserEmail string     `json:"external_user_email"`
	AccessToken       string     `json:"access_token"`
	RefreshToken      string     `json:"refresh_token"`
	TokenType         string     `json:"token_type"`
	ExpiresAt         *time.Time `json:"expires_at"` // null when the provider did not say
	Scope             string     `json:"scope"`
}

func (s *Server) handleOAuthTokens(w http.ResponseWriter, r *http.Request) {
	key, ok := s.llmKey(w, r, "")
	if !ok || !s.brokerOn(w) {
		return
	}
	ctx := r.Context()
	p, ok := s.knownPlatform(w, ctx, r.PathValue("platform"))
	if !ok {
		return
	}
	user := r.PathValue("user")
	if err := store.ValidExternalUserID(user); err != nil {
		writeError(w, http.StatusBadRequest, "external_user_id: "+err.Error())
		return
	}
	c, err := s.oauth.fresh(ctx, key.Owner, p.ID, user)
	var ce *connError
	switch {
	case errors.As(err, &ce):
		writeJSON(w, ce.status(), map[string]string{"error": ce.Error(), "status": ce.wireStatus()})
		return
	case err != nil:
		s.log.Error("reading an OAuth connection failed", "platform", p.ID, "external_user_id", user, "err", err)
		writeError(w, http.StatusInternalServerError, "internal error reading the connection")
		return
	}
	reply := tokensReply{
		Status: "completed", IntegrationID: c.IntegrationID, PlatformID: c.PlatformID, ExternalUserID: c.ExternalUserID,
		ExternalUserEmail: c.Email, AccessToken: c.AccessToken, RefreshToken: c.RefreshToken, TokenType: c.TokenType, Scope: c.Scope,
	}
	if !c.Expiry.IsZero() {
		exp := c.Expiry.UTC()
		reply.ExpiresAt = &exp
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, reply)
}

// ---- the callback ----

// oauthFailure is why a callback connected nothing: an OAuth error code
// (the provider's, or one of ours) and words for people.
type oauthFailure struct {
	code        string
	description string
}

func (s *Server) handleOAuthCallback(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the URL holds the code
	if s.oauth.vault == nil {
		writePage(w, http.StatusServiceUnavailable, "Connection unavailable", "This server cannot keep connections right now. Nothing was connected.")
		return
	}
	ctx := r.Context()
	b := s.oauth
	platformID := r.PathValue("platform")
	q := r.URL.Query()
	state := q.Get("state")
	if state == "" {
		writePage(w, http.StatusBadRequest, "Invalid link", "This link has no state parameter. Start again from the application. Nothing was connected.")
		return
	}
	st, err := b.vault.ConsumeState(ctx, state, platformID, b.clock.Now())
	switch {
	case errors.Is(err, store.ErrStateNotFound):
		s.anonWarns.warn(slog.LevelWarn, "OAuth callback with an unknown or used state", "platform", peerText(platformID))
		writePage(w, http.StatusBadRequest, "Link already used or unknown", "This sign-in link is unknown or was already used. Start again from the application. Nothing was connected.")
		return
	case errors.Is(err, store.ErrStateExpired):
		s.log.Info("OAuth callback with an expired state", "owner", st.Owner, "platform", st.PlatformID, "external_user_id", st.ExternalUserID)
		writePage(w, http.StatusBadRequest, "Link expired", "This sign-in link has expired. Start again from the application. Nothing was connected.")
		return
	case errors.Is(err, store.ErrStateWrongPlatform):
		// The state stays usable on its own platform's callback.
		s.log.Warn("OAuth callback on the wrong platform; state left unused", "state_platform", st.PlatformID, "platform", platformID)
		writePage(w, http.StatusBadRequest, "Wrong link", "This sign-in was not started for this service. Nothing was connected.")
		return
	case err != nil:
		s.log.Error("reading an OAuth state failed", "err", err)
		writePage(w, http.StatusInternalServerError, "Something went wrong", "The server could not read this sign-in. Nothing was connected.")
		return
	}
	name := st.PlatformID
	conn, fail := b.complete(ctx, r, &st, q, &name)
	if fail != nil {
		s.log.Info("OAuth connection failed", "owner", st.Owner, "platform", st.PlatformID, "external_user_id", st.ExternalUserID, "error", fail.code)
		b.emit(ctx, st.Owner, eventConnectionFailed, map[string]any{
			"platform_id": st.PlatformID, "external_user_id": st.ExternalUserID, "error": fail.code, "error_description": fail.description,
		})
	} else {
		// Its connection_success event was queued with the connection.
		s.log.Info("OAuth connection made", "owner", st.Owner, "platform", st.PlatformID, "external_user_id", st.ExternalUserID, "integration_id", conn.IntegrationID)
	}
	if st.RedirectURL != "" {
		http.Redirect(w, r, developerRedirect(st.RedirectURL, st.PlatformID, fail), http.StatusSeeOther)
		return
	}
	switch {
	case fail == nil:
		writePage(w, http.StatusOK, "Connected", fmt.Sprintf("Your %s account is connected. You can close this window.", name))
	case fail.code == "access_denied":
		writePage(w, http.StatusOK, "Not connected", fmt.Sprintf("You declined access to your %s account, so nothing was connected. You can close this window.", name))
	default:
		writePage(w, http.StatusBadGateway, "Not connected", fmt.Sprintf("%s could not be connected: %s. Nothing was stored. Start again from the application.", name, fail.description))
	}
}

// complete finishes an authorization whose state checked out: the
// provider's error, or the code exchanged for tokens that are then stored.
func (b *broker) complete(ctx context.Context, r *http.Request, st *store.OAuthState, q url.Values, name *string) (store.Connection, *oauthFailure) {
	p, err := b.platform(ctx, st.PlatformID)
	if err != nil {
		b.s.log.Error("reading an OAuth platform failed", "platform", st.PlatformID, "err", err)
		return store.Connection{}, &oauthFailure{"server_error", "the platform is no longer configured"}
	}
	*name = p.DisplayName()
	if code := q.Get("error"); code != "" {
		desc := q.Get("error_description")
		if desc == "" {
			desc = code
		}
		return store.Connection{}, &oauthFailure{code, desc}
	}
	code := q.Get("code")
	if code == "" {
		return store.Connection{}, &oauthFailure{"invalid_request", "the provider sent neither a code nor an error"}
	}
	opts := []oauth2.AuthCodeOption{redirectOption(b.s.publicURL(r) + callbackPath(p.ID))}
	if st.Verifier != "" {
		opts = append(opts, oauth2.VerifierOption(st.Verifier))
	}
	// The exchange outlives a browser that gives up waiting: the code is
	// spent either way, so the tokens had better be kept.
	xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshTimeout)
	defer cancel()
	tok, err := b.config(&p).Exchange(b.httpCtx(xctx), code, opts...)
	if err != nil {
		desc := describeTokenError(err)
		b.s.log.Warn("OAuth code exchange failed", "platform", p.ID, "err", desc)
		return store.Connection{}, &oauthFailure{"exchange_failed", desc}
	}
	if tok.AccessToken == "" {
		return store.Connection{}, &oauthFailure{"exchange_failed", "the token endpoint answered without an access_token"}
	}
	c := store.Connection{
		Owner: st.Owner, PlatformID: p.ID, ExternalUserID: st.ExternalUserID,
		AccessToken: tok.AccessToken, RefreshToken: tok.RefreshToken, TokenType: tok.TokenType,
		Expiry: b.expiry(tok), Scope: tokenScope(tok),
	}
	if c.Scope == "" {
		c.Scope = strings.Join(p.Scopes, " ")
	}
	c.Email = b.userEmail(xctx, &p, tok)
	c, err = b.vault.SaveConnection(xctx, c, func(stored store.Connection) store.WebhookEvent {
		return b.newEvent(stored.Owner, eventConnectionSuccess, map[string]any{
			"platform_id": stored.PlatformID, "external_user_id": stored.ExternalUserID, "integration_id": stored.IntegrationID,
			"external_user_email": stored.Email, "scope": stored.Scope,
		})
	})
	if err != nil {
		b.s.log.Error("saving an OAuth connection failed", "platform", p.ID, "err", err)
		return store.Connection{}, &oauthFailure{"server_error", "the server could not save the connection"}
	}
	b.hooks.notify()
	return c, nil
}

// userEmail reads the user's e-mail from the platform's userinfo URL, ""
// when it has none or the read fails: it is a courtesy, not a condition.
func (b *broker) userEmail(ctx context.Context, p *store.Platform, tok *oauth2.Token) string {
	if p.UserinfoURL == "" {
		return ""
	}
	client := oauth2.NewClient(b.httpCtx(ctx), oauth2.StaticTokenSource(tok))
	resp, err := client.Get(p.UserinfoURL)
	if err != nil {
		b.s.log.Warn("reading the OAuth userinfo failed", "platform", p.ID, "err", err)
		return ""
	}
	defer resp.Body.Close()
	var info struct {
		Email string `json:"email"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&info) != nil {
		b.s.log.Warn("reading the OAuth userinfo failed", "platform", p.ID, "status", resp.StatusCode)
		return ""
	}
	return info.Email
}

// developerRedirect is the developer's URL with status=success|error (and
// platform_id, and error on failure) added to its query.
func developerRedirect(raw, platformID string, fail *oauthFailure) string {
	u, err := url.Parse(raw) // checked at confirmation
	if err != nil {
		return raw
	}
	q := u.Query()
	q.Set("platform_id", platformID)
	if fail == nil {
		q.Set("status", "success")
	} else {
		q.Set("status", "error")
		q.Set("error", fail.code)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style>
</head><body><h1>{{.Title}}</h1><p>{{.Message}}</p></body></html>
`))

// writePage answers a browser with a small HTML page.
func writePage(w http.ResponseWriter, status int, title, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	w.WriteHeader(status)
	pageTemplate.Execute(w, struct{ Title, Message string }{title, message})
}
