package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/atpgo/atp/server/store"
)

// The OAuth2 broker (docs/protocol.md §3). The server is the OAuth client of each
// configured platform: it sends the end user to the platform's consent
// page, takes the code at its callback, keeps the user's tokens sealed in
// the store (store.Vault), refreshes them before they expire and hands the
// access token to the tools that need it.
//
// Endpoints (under /api/v1/atp/llm-client/, LLM key auth like process/):
//
//	POST oauth/confirmation/{platform_id}/            start: authorization_url with a single-use state
//	GET  oauth/tokens/{platform_id}/{external_user_id}/ 404 until connected, then fresh tokens
//
// and the callback the platform sends the browser to, which needs no key
// (the state is the credential):
//
//	GET /api/v1/oauth/callback/{platform_id}/?code=...&state=...

// callbackPath is the path of a platform's callback; the redirect_uri to
// register with the provider is Config.PublicURL followed by it.
func callbackPath(platformID string) string {
	return "/api/v1/oauth/callback/" + url.PathEscape(platformID) + "/"
}

// clock is the broker's time, replaced in tests: the expiry of states and
// tokens, and the webhook retry delays.
type clock interface {
	Now() time.Time
	// Until returns a channel that receives once the time is at, and a
	// function that releases the timer early. It takes a time, not a
	// duration, so that a timer set just as the clock moves still fires
	// at the time meant.
	Until(at time.Time) (<-chan time.Time, func())
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Until(at time.Time) (<-chan time.Time, func()) {
	t := time.NewTimer(time.Until(at))
	return t.C, func() { t.Stop() }
}

// refreshTimeout bounds one token refresh; it runs apart from any one
// caller's context, since every caller waiting on it shares its result.
const refreshTimeout = 30 * time.Second

// refreshLease is how long a refresh holds its connection's lease in the
// store should its server die before letting go: longer than a refresh.
const refreshLease = 2 * refreshTimeout

type broker struct {
	s     *Server
	vault *store.Vault // nil: no secret key, the broker is off
	clock clock
	// platforms are Config.Platforms by id; they shadow stored ones.
	platforms map[string]store.Platform
	hc        *http.Client
	refreshes singleflight.Group
	hooks     *webhookSender

	configsMu sync.Mutex
	configs   map[string]platformConfig // by platform id
}

func newBroker(ctx context.Context, s *Server) (*broker, error) {
	b := &broker{s: s, clock: s.cfg.clock, platforms: map[string]store.Platform{}, hc: s.cfg.OAuthHTTPClient, configs: map[string]platformConfig{}}
	if b.clock == nil {
		b.clock = realClock{}
	}
	if b.hc == nil {
		b.hc = &http.Client{Timeout: 30 * time.Second}
	}
	if s.cfg.PublicURL != "" {
		if err := checkPublicURL(s.cfg.PublicURL); err != nil {
			return nil, fmt.Errorf("server: PublicURL: %w", err)
		}
	}
	for i, p := range s.cfg.Platforms {
		if err := p.Validate(); err != nil {
			return nil, fmt.Errorf("server: Platforms[%d] (%s): %w", i, p.ID, err)
		}
		if _, dup := b.platforms[p.ID]; dup {
			return nil, fmt.Errorf("server: Platforms[%d]: platform %q is configured twice", i, p.ID)
		}
		b.platforms[p.ID] = p
	}
	v, err := s.openVault(ctx)
	if err != nil {
		return nil, err
	}
	if v == nil && len(b.platforms) > 0 {
		return nil, fmt.Errorf("server: OAuth platforms are configured but %w", ErrNoSecretKey)
	}
	if v == nil {
		// Platforms stored by atp platforms add cannot be used without
		// the key that sealed their client secrets: say so now, not at
		// the first end user's sign-in.
		stored, err := s.store.Platforms(ctx)
		if err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
		if len(stored) > 0 {
			return nil, fmt.Errorf("server: the database holds %d OAuth platform(s) (atp platforms list) but %w", len(stored), ErrNoSecretKey)
		}
	}
	b.vault = v
	b.hooks = newWebhookSender(s.cfg, b.clock, s.log, v)
	return b, nil
}

func (b *broker) close() { b.hooks.close() }

func checkPublicURL(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	case u.Host == "" || (u.Scheme != "http" && u.Scheme != "https"):
		return fmt.Errorf("%q: expected an absolute http:// or https:// URL", raw)
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: expected a base URL without query or fragment", raw)
	}
	return nil
}

// publicURL is the base URL browsers and providers reach the server at:
// Config.PublicURL; else the listen address (an unspecified host such as
// 0.0.0.0 becomes localhost); else, for a server used through Handler
// alone, the host the request came to.
func (s *Server) publicURL(r *http.Request) string {
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/")
	}
	if a, ok := s.Addr().(*net.TCPAddr); ok {
		host := a.IP.String()
		if a.IP == nil || a.IP.IsUnspecified() {
			host = "localhost"
		}
		return "http://" + net.JoinHostPort(host, fmt.Sprint(a.Port))
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

// platform returns a platform, with its client secret: one of
// Config.Platforms, else a stored one (read on each use, so that `atp
// platforms add` takes effect without a restart).
func (b *broker) platform(ctx context.Context, id string) (store.Platform, error) {
	if p, ok := b.platforms[id]; ok {
		return p, nil
	}
	if b.vault == nil {
		return store.Platform{}, errBrokerOff
	}
	return b.vault.Platform(ctx, id)
}

// platformIDs lists the configured platforms, for error messages.
func (b *broker) platformIDs(ctx context.Context) string {
	ids := make([]string, 0, len(b.platforms))
	for id := range b.platforms {
		ids = append(ids, id)
	}
	if stored, err := b.s.store.Platforms(ctx); err == nil {
		for _, p := range stored {
			ids = append(ids, p.ID)
		}
	}
	slices.Sort(ids)
	ids = slices.Compact(ids)
	if len(ids) == 0 {
		return "none (add one with atp platforms add)"
	}
	return strings.Join(ids, ", ")
}

// config returns the oauth2 client of a platform. It is kept per platform
// (until the platform changes) because oauth2 learns, on the first token
// request, whether the provider wants the client credentials in a header
// or in the form: a refresh that had to find out again would turn the
// provider's invalid_grant into the invalid_client of its second try. The
// redirect_uri is passed per request (redirectOption), not kept here.
func (b *broker) config(p *store.Platform) *oauth2.Config {
	style := oauth2.AuthStyleAutoDetect
	switch p.AuthStyle {
	case "header":
		style = oauth2.AuthStyleInHeader
	case "params":
		style = oauth2.AuthStyleInParams
	}
	fingerprint := strings.Join([]string{p.ClientID, p.ClientSecret, p.AuthURL, p.TokenURL, p.AuthStyle, strings.Join(p.Scopes, " ")}, "\x00")
	b.configsMu.Lock()
	defer b.configsMu.Unlock()
	if c, ok := b.configs[p.ID]; ok && c.fingerprint == fingerprint {
		return c.cfg
	}
	cfg := &oauth2.Config{
		ClientID:     p.ClientID,
		ClientSecret: p.ClientSecret,
		Endpoint:     oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, AuthStyle: style},
		Scopes:       p.Scopes,
	}
	b.configs[p.ID] = platformConfig{fingerprint, cfg}
	return cfg
}

type platformConfig struct {
	fingerprint string
	cfg         *oauth2.Config
}

// redirectOption sets the redirect_uri of an authorization URL or a code
// exchange (both must carry the same).
func redirectOption(uri string) oauth2.AuthCodeOption {
	return oauth2.SetAuthURLParam("redirect_uri", uri)
}

// httpCtx makes oauth2 use the broker's HTTP client.
func (b *broker) httpCtx(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, b.hc)
}

// expiry is when a token from the provider expires, on the broker's clock:
// expires_in counts from now. Zero when the provider did not say.
func (b *broker) expiry(tok *oauth2.Token) time.Time {
	if tok.ExpiresIn > 0 {
		return b.clock.Now().Add(time.Duration(tok.ExpiresIn) * time.Second)
	}
	return tok.Expiry // oauth2's reading of a form-encoded reply, or zero
}

func tokenScope(tok *oauth2.Token) string {
	if s, ok := tok.Extra("scope").(string); ok {
		return s
	}
	return ""
}

// ---- connection state, as callers see it ----

type connProblem int

const (
	notConnected connProblem = iota + 1
	connBroken
	refreshFailed
	platformMissing
	brokerOff
)

// connError is why a user's token cannot be had. Its message says what to
// do about it, and never holds a token.
type connError struct {
	problem connProblem
	msg     string
}

func (e *connError) Error() string { return e.msg }

func (e *connError) status() int {
	switch e.problem {
	case notConnected, platformMissing:
		return http.StatusNotFound
	case connBroken:
		return http.StatusGone
	case brokerOff:
		return http.StatusServiceUnavailable
	}
	return http.StatusBadGateway
}

func (e *connError) wireStatus() string {
	switch e.problem {
	case notConnected:
		return "pending"
	case connBroken:
		return "broken"
	}
	return "error"
}

var errBrokerOff = &connError{brokerOff, "the OAuth broker is off: the server started with " + ErrNoSecretKey.Error() + "; then restart the server"}

func notConnectedError(platformID, user string) error {
	return &connError{notConnected, fmt.Sprintf("user %q has not connected %s: start with POST oauth/confirmation/%s/ and send the user to its authorization_url",
		user, platformID, platformID)}
}

func brokenError(platformID, user, reason string) error {
	return &connError{connBroken, fmt.Sprintf("the %s connection of user %q no longer works (%s): the user must connect again through POST oauth/confirmation/%s/",
		platformID, user, reason, platformID)}
}

// needsRefresh reports whether a connection's access token expires within
// the refresh margin.
func (b *broker) needsRefresh(c *store.Connection) bool {
	return !c.Expiry.IsZero() && c.Expiry.Sub(b.clock.Now()) < b.s.cfg.TokenRefreshMargin
}

// fresh returns a user's connection with an access token that is good for
// at least the refresh margin, refreshing it first when needed. Concurrent
// callers for one user share one refresh: with rotating refresh tokens a
// second refresh would spend a token the first has already replaced.
func (b *broker) fresh(ctx context.Context, owner, platformID, user string) (store.Connection, error) {
	if b.vault == nil {
		return store.Connection{}, errBrokerOff
	}
	c, err := b.connection(ctx, owner, platformID, user)
	if err != nil || !b.needsRefresh(&c) {
		return c, err
	}
	key := owner + "\x00" + platformID + "\x00" + user
	ch := b.refreshes.DoChan(key, func() (any, error) { return b.refresh(owner, platformID, user) })
	select {
	case res := <-ch:
		if res.Err != nil {
			return store.Connection{}, res.Err
		}
		return res.Val.(store.Connection), nil
	case <-ctx.Done():
		return store.Connection{}, ctx.Err()
	}
}

func (b *broker) connection(ctx context.Context, owner, platformID, user string) (store.Connection, error) {
	c, err := b.vault.Connection(ctx, owner, platformID, user)
	switch {
	case errors.Is(err, store.ErrConnectionNotFound):
		return c, notConnectedError(platformID, user)
	case err != nil:
		return c, err
	case c.Broken != "":
		return c, brokenError(platformID, user, c.Broken)
	}
	return c, nil
}

// refresh renews a connection's access token with its refresh token. A
// provider that refuses the refresh token (invalid_grant: revoked, expired)
// breaks the connection for good; any other failure leaves it as it was, and
// the old access token is still returned while it has not expired.
func (b *broker) refresh(owner, platformID, user string) (store.Connection, error) {
	ctx, cancel := context.WithTimeout(context.Background(), refreshTimeout)
	defer cancel()
	// One server at a time refreshes a user's token (the others sharing
	// the database wait here); then read again: a refresh that ended just
	// before this one started, here or on another server, has already
	// done the work.
	unlock, err := b.vault.LockRefresh(ctx, owner, platformID, user, refreshLease)
	if errors.Is(err, store.ErrConnectionNotFound) {
		return store.Connection{}, notConnectedError(platformID, user)
	}
	if err != nil {
		return store.Connection{}, err
	}
	defer unlock()
	c, err := b.connection(ctx, owner, platformID, user)
	if err != nil || !b.needsRefresh(&c) {
		return c, err
	}
	now := b.clock.Now()
	expired := !now.Before(c.Expiry)
	if c.RefreshToken == "" {
		if !expired {
			return c, nil
		}
		return c, b.breakConnection(ctx, &c, "the access token expired and the provider gave no refresh token")
	}
	p, err := b.platform(ctx, platformID)
	if errors.Is(err, store.ErrPlatformNotFound) {
		return c, &connError{platformMissing, fmt.Sprintf("the token of user %q needs a refresh but OAuth platform %q is no longer configured", user, platformID)}
	}
	if err != nil {
		return c, err
	}
	// An empty access token makes the token source refresh at once: the
	// broker, not oauth2's wall clock, decides when that is due.
	tok, err := b.config(&p).TokenSource(b.httpCtx(ctx), &oauth2.Token{RefreshToken: c.RefreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			return c, b.breakConnection(ctx, &c, "the provider refused the refresh token (invalid_grant): access was revoked or has expired")
		}
		b.s.log.Warn("OAuth token refresh failed", "owner", owner, "platform", platformID, "external_user_id", user, "err", describeTokenError(err))
		if !expired {
			return c, nil
		}
		return c, &connError{refreshFailed, fmt.Sprintf("the %s token of user %q expired and refreshing it failed: %s; it is tried again on the next call",
			platformID, user, describeTokenError(err))}
	}
	c.AccessToken, c.TokenType, c.Expiry = tok.AccessToken, tok.TokenType, b.expiry(tok)
	if tok.RefreshToken != "" {
		c.RefreshToken = tok.RefreshToken
	}
	if sc := tokenScope(tok); sc != "" {
		c.Scope = sc
	}
	if err := b.vault.UpdateTokens(ctx, c); err != nil {
		return c, err
	}
	b.s.log.Info("OAuth token refreshed", "owner", owner, "platform", platformID, "external_user_id", user, "expires_at", c.Expiry)
	return c, nil
}

// breakConnection records that a connection no longer works, tells the
// owner's webhooks (connection_failed) and returns the error callers see.
func (b *broker) breakConnection(ctx context.Context, c *store.Connection, reason string) error {
	ev := b.newEvent(c.Owner, eventConnectionFailed, map[string]any{
		"platform_id": c.PlatformID, "external_user_id": c.ExternalUserID, "integration_id": c.IntegrationID,
		"error": "refresh_failed", "error_description": reason,
	})
	if err := b.vault.MarkConnectionBroken(ctx, c.Owner, c.PlatformID, c.ExternalUserID, reason, &ev); err != nil {
		return err
	}
	b.hooks.notify()
	b.s.log.Warn("OAuth connection broken", "owner", c.Owner, "platform", c.PlatformID, "external_user_id", c.ExternalUserID, "reason", reason)
	return brokenError(c.PlatformID, c.ExternalUserID, reason)
}

// describeTokenError says why a token request failed without the reply's
// body (which a provider might fill with anything).
func describeTokenError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		s := "the token endpoint answered"
		if re.Response != nil {
			s += " " + re.Response.Status
		}
		if re.ErrorCode != "" {
			s += " " + re.ErrorCode
		}
		if re.ErrorDescription != "" {
			s += ": " + re.ErrorDescription
		}
		return s
	}
	return err.Error()
}

// ---- injection ----

// injectedToken is the auth_token for a call that brought none: the access
// token of the end user it names, for the platform the tool authenticates
// with. A tool registered with an auth_provider gets a token or an error:
// it is never called without one.
func (b *broker) injectedToken(ctx context.Context, owner string, tool *toolEntry, user string) (string, error) {
	platformID := tool.AuthProvider
	if platformID == "" {
		return "", nil // the tool takes no user token; external_user_id means nothing to it
	}
	if user == "" {
		return "", fmt.Errorf("tool %s needs the end user's %s token: send auth_token, or external_user_id naming a user who connected %s (POST oauth/confirmation/%s/)",
			tool.Name, platformID, platformID, platformID)
	}
	if err := store.ValidExternalUserID(user); err != nil {
		return "", fmt.Errorf("external_user_id: %w", err)
	}
	if b.vault != nil {
		if _, err := b.platform(ctx, platformID); errors.Is(err, store.ErrPlatformNotFound) {
			return "", fmt.Errorf("tool %s needs a %s token but the server has no OAuth platform %q (configured: %s)",
				tool.Name, platformID, platformID, b.platformIDs(ctx))
		}
	}
	c, err := b.fresh(ctx, owner, platformID, user)
	if err != nil {
		var ce *connError
		if errors.As(err, &ce) {
			return "", fmt.Errorf("tool %s needs the %s token of user %q: %w", tool.Name, platformID, user, err)
		}
		b.s.log.Error("reading an OAuth connection failed", "owner", owner, "platform", platformID, "external_user_id", user, "err", err)
		return "", fmt.Errorf("tool %s needs the %s token of user %q: internal error reading it", tool.Name, platformID, user)
	}
	return c.AccessToken, nil
}
