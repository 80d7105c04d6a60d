package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// ---- platforms ----

// Platform is an OAuth2 provider end users connect their accounts of, e.g.
// "hubspot". Tools name it in their registration's auth_provider.
type Platform struct {
	// ID is what tools and the oauth/ endpoints name the platform by.
	ID string
	// Name is shown to people (the confirmation's provider_name); the ID
	// when empty.
	Name         string
	ClientID     string
	ClientSecret string
	AuthURL      string
	TokenURL     string
	Scopes       []string
	// PKCE sends an S256 code challenge with every authorization. On
	// unless the provider rejects it.
	PKCE bool
	// UserinfoURL, when set, is read with the new access token after a
	// connection for the user's "email" (OpenID Connect userinfo or alike).
	UserinfoURL string
	// AuthParams are extra query parameters of the authorization URL, such
	// as Google's access_type=offline.
	AuthParams map[string]string
	// AuthStyle is how the client authenticates to the token endpoint:
	// "header" (HTTP Basic), "params" (client_id and client_secret in the
	// form) or "" to find out on first use.
	AuthStyle string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// DisplayName is Name, or ID when Name is empty.
func (p *Platform) DisplayName() string {
	if p.Name != "" {
		return p.Name
	}
	return p.ID
}

var (
	// ErrPlatformNotFound is returned for an unknown platform id.
	ErrPlatformNotFound = errors.New("no such OAuth platform")
	// ErrConnectionNotFound is returned when a user has not connected a
	// platform.
	ErrConnectionNotFound = errors.New("not connected")
	// ErrStateNotFound is returned for an OAuth state that was never issued
	// or was already used.
	ErrStateNotFound = errors.New("unknown or already used OAuth state")
	// ErrStateExpired is returned for an OAuth state used too late.
	ErrStateExpired = errors.New("expired OAuth state")
	// ErrStateWrongPlatform is returned for an OAuth state presented on
	// the callback of a platform other than its own. The state is not
	// spent: the right callback can still use it.
	ErrStateWrongPlatform = errors.New("OAuth state of another platform")
	// ErrTooManyStates is returned when an owner has too many pending
	// authorizations.
	ErrTooManyStates = errors.New("too many pending OAuth authorizations")
)

var platformIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// ValidPlatformID reports why id cannot name a platform, or nil. It is the
// rule atpgen applies to auth=.
func ValidPlatformID(id string) error {
	if !platformIDPattern.MatchString(id) {
		return fmt.Errorf("platform id %q: expected 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit", id)
	}
	return nil
}

// Validate reports the first problem of a platform, naming its field.
func (p *Platform) Validate() error {
	if err := ValidPlatformID(p.ID); err != nil {
		return fmt.Errorf("id: %w", err)
	}
	if strings.TrimSpace(p.ClientID) == "" {
		return errors.New("client_id: missing")
	}
	if p.ClientSecret == "" && !p.PKCE {
		return errors.New("client_secret: missing: a platform without PKCE needs its client secret")
	}
	for _, f := range []struct{ name, value string }{{"auth_url", p.AuthURL}, {"token_url", p.TokenURL}, {"userinfo_url", p.UserinfoURL}} {
		if f.value == "" && f.name == "userinfo_url" {
			continue
		}
		if err := checkEndpointURL(f.value); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	for i, sc := range p.Scopes {
		if sc == "" || strings.ContainsFunc(sc, unicode.IsSpace) {
			return fmt.Errorf("scopes[%d]: %q: a scope is one non-empty word", i, sc)
		}
	}
	switch p.AuthStyle {
	case "", "header", "params":
	default:
		return fmt.Errorf("auth_style: %q: expected header, params or nothing (find out on first use)", p.AuthStyle)
	}
	for k := range p.AuthParams {
		switch k {
		case "", "state", "code_challenge", "code_challenge_method", "redirect_uri", "client_id", "response_type", "scope":
			return fmt.Errorf("auth_params: %q is set by the server and cannot be overridden", k)
		}
	}
	return nil
}

// checkEndpointURL accepts an absolute https URL, or http on a loopback
// host: client secrets and tokens never cross a network in clear.
func checkEndpointURL(raw string) error {
	if raw == "" {
		return errors.New("missing")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("%q is not a URL: %v", raw, err)
	}
	switch {
	case u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		return fmt.Errorf("%q: expected an absolute https:// URL", raw)
	case u.Scheme == "http" && !IsLoopbackHost(u.Hostname()):
		return fmt.Errorf("%q: expected https (plain http is only allowed on a loopback host)", raw)
	}
	return nil
}

// IsLoopbackHost reports whether host (no port) is localhost or a loopback
// address.
func IsLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// PutPlatform creates or replaces a platform (its creation time is kept).
func (v *Vault) PutPlatform(ctx context.Context, p Platform) (Platform, error) {
	if err := p.Validate(); err != nil {
		return Platform{}, err
	}
	now := fromMillis(millis(v.s.now()))
	scopes, _ := json.Marshal(nonNil(p.Scopes))
	params := p.AuthParams
	if params == nil {
		params = map[string]string{}
	}
	paramsJSON, _ := json.Marshal(params)
	err := v.s.tx(ctx, func(tx handle) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_platforms
			(id, name, client_id, client_secret, auth_url, token_url, scopes, pkce, userinfo_url, auth_params, auth_style, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, client_id = excluded.client_id,
				client_secret = excluded.client_secret, auth_url = excluded.auth_url, token_url = excluded.token_url,
				scopes = excluded.scopes, pkce = excluded.pkce, userinfo_url = excluded.userinfo_url,
				auth_params = excluded.auth_params, auth_style = excluded.auth_style, updated_at = excluded.updated_at`,
			p.ID, p.Name, p.ClientID, v.seal(p.ClientSecret, "oauth_platforms", p.ID, "client_secret"),
			p.AuthURL, p.TokenURL, string(scopes), p.PKCE, p.UserinfoURL, string(paramsJSON), p.AuthStyle, millis(now), millis(now))
		return err
	})
	if err != nil {
		return Platform{}, fmt.Errorf("save platform %s: %w", p.ID, err)
	}
	return v.Platform(ctx, p.ID)
}

const platformSelect = `SELECT id, name, client_id, client_secret, auth_url, token_url, scopes, pkce, userinfo_url, auth_params, auth_style, created_at, updated_at FROM oauth_platforms`

// Platform returns a platform with its client secret.
func (v *Vault) Platform(ctx context.Context, id string) (Platform, error) {
	ps, err := v.s.platforms(ctx, v, ` WHERE id = ?`, id)
	if err != nil {
		return Platform{}, err
	}
	if len(ps) == 0 {
		return Platform{}, fmt.Errorf("platform %q: %w", id, ErrPlatformNotFound)
	}
	return ps[0], nil
}

// Platforms returns every stored platform by id, without client secrets
// (no key is needed to list them).
func (s *Store) Platforms(ctx context.Context) ([]Platform, error) {
	return s.platforms(ctx, nil, ` ORDER BY id`)
}

// platforms reads platforms; with a vault it opens their client secrets.
func (s *Store) platforms(ctx context.Context, v *Vault, where string, args ...any) ([]Platform, error) {
	rows, err := s.db.QueryContext(ctx, platformSelect+where, args...)
	if err != nil {
		return nil, fmt.Errorf("read platforms: %w", err)
	}
	defer rows.Close()
	var out []Platform
	for rows.Next() {
		var (
			p                Platform
			secret           []byte
			scopes, params   string
			created, updated int64
		)
		if err := rows.Scan(&p.ID, &p.Name, &p.ClientID, &secret, &p.AuthURL, &p.TokenURL, &scopes, &p.PKCE,
			&p.UserinfoURL, &params, &p.AuthStyle, &created, &updated); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(scopes), &p.Scopes); err != nil {
			return nil, fmt.Errorf("platform %s: stored scopes: %w", p.ID, err)
		}
		if err := json.Unmarshal([]byte(params), &p.AuthParams); err != nil {
			return nil, fmt.Errorf("platform %s: stored auth_params: %w", p.ID, err)
		}
		if len(p.AuthParams) == 0 {
			p.AuthParams = nil
		}
		if v != nil {
			if p.ClientSecret, err = v.open(secret, "oauth_platforms", p.ID, "client_secret"); err != nil {
				return nil, fmt.Errorf("platform %s: client_secret: %w", p.ID, err)
			}
		}
		p.CreatedAt, p.UpdatedAt = fromMillis(created), fromMillis(updated)
		out = append(out, p)
	}
	return out, rows.Err()
}

// DeletePlatform removes a platform with its users' connections and pending
// authorizations, and returns how many connections went with it.
func (s *Store) DeletePlatform(ctx context.Context, id string) (connections int, err error) {
	err = s.tx(ctx, func(tx handle) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM oauth_platforms WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("platform %q: %w", id, ErrPlatformNotFound)
		}
		res, err = tx.ExecContext(ctx, `DELETE FROM oauth_connections WHERE platform_id = ?`, id)
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		connections = int(n)
		_, err = tx.ExecContext(ctx, `DELETE FROM oauth_states WHERE platform_id = ?`, id)
		return err
	})
	return connections, err
}

// ---- connections ----

// Connection is one end user's tokens for one platform, for one owner's
// LLM keys.
type Connection struct {
	Owner          string
	PlatformID     string
	ExternalUserID string
	// IntegrationID names the connection; it stays the same when the user
	// reconnects.
	IntegrationID string
	Email         string
	AccessToken   string
	RefreshToken  string
	TokenType     string
	// Expiry is when the access token expires; zero when the provider did
	// not say.
	Expiry time.Time
	Scope  string
	// Broken says why the connection no longer works (the provider refused
	// its refresh token); "" when it works.
	Broken    string
	CreatedAt time.Time
	UpdatedAt time.Time
}

func connectionAD(owner, platform, user, column string) []string {
	return []string{"oauth_connections", owner, platform, user, column}
}

// SaveConnection stores a user's new tokens, replacing any earlier
// connection of the user to the platform (and clearing Broken). It returns
// the connection as stored. When event is not nil it is called, inside the
// transaction, with the connection as stored (its IntegrationID set), and
// the event it returns is queued for the owner's webhooks in that
// transaction: the connection and its event are committed together.
func (v *Vault) SaveConnection(ctx context.Context, c Connection, event func(Connection) WebhookEvent) (Connection, error) {
	now := fromMillis(millis(v.s.now()))
	err := v.s.tx(ctx, func(tx handle) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_connections
			(owner, platform_id, external_user_id, integration_id, email, access_token, refresh_token, token_type, expires_at, scope, broken, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)
			ON CONFLICT (owner, platform_id, external_user_id) DO UPDATE SET email = excluded.email,
				access_token = excluded.access_token, refresh_token = excluded.refresh_token, token_type = excluded.token_type,
				expires_at = excluded.expires_at, scope = excluded.scope, broken = '', updated_at = excluded.updated_at`,
			c.Owner, c.PlatformID, c.ExternalUserID, "int_"+randomText(16), c.Email,
			v.seal(c.AccessToken, connectionAD(c.Owner, c.PlatformID, c.ExternalUserID, "access_token")...),
			v.seal(c.RefreshToken, connectionAD(c.Owner, c.PlatformID, c.ExternalUserID, "refresh_token")...),
			c.TokenType, nullMillis(c.Expiry), c.Scope, millis(now), millis(now))
		if err != nil || event == nil {
			return err
		}
		stored := c
		if err := tx.QueryRowContext(ctx, `SELECT integration_id FROM oauth_connections WHERE owner = ? AND platform_id = ? AND external_user_id = ?`,
			c.Owner, c.PlatformID, c.ExternalUserID).Scan(&stored.IntegrationID); err != nil {
			return err
		}
		_, _, err = v.s.enqueue(ctx, tx, event(stored))
		return err
	})
	if err != nil {
		return Connection{}, fmt.Errorf("save connection: %w", err)
	}
	return v.Connection(ctx, c.Owner, c.PlatformID, c.ExternalUserID)
}

// UpdateTokens stores refreshed tokens of an existing connection. An empty
// RefreshToken keeps the stored one (providers that do not rotate it send
// none).
func (v *Vault) UpdateTokens(ctx context.Context, c Connection) error {
	now := millis(v.s.now())
	return v.s.tx(ctx, func(tx handle) error {
		var res sql.Result
		var err error
		access := v.seal(c.AccessToken, connectionAD(c.Owner, c.PlatformID, c.ExternalUserID, "access_token")...)
		if c.RefreshToken == "" {
			res, err = tx.ExecContext(ctx, `UPDATE oauth_connections SET access_token = ?, token_type = ?, expires_at = ?, scope = ?, updated_at = ?
				WHERE owner = ? AND platform_id = ? AND external_user_id = ?`,
				access, c.TokenType, nullMillis(c.Expiry), c.Scope, now, c.Owner, c.PlatformID, c.ExternalUserID)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE oauth_connections SET access_token = ?, refresh_token = ?, token_type = ?, expires_at = ?, scope = ?, updated_at = ?
				WHERE owner = ? AND platform_id = ? AND external_user_id = ?`,
				access, v.seal(c.RefreshToken, connectionAD(c.Owner, c.PlatformID, c.ExternalUserID, "refresh_token")...),
				c.TokenType, nullMillis(c.Expiry), c.Scope, now, c.Owner, c.PlatformID, c.ExternalUserID)
		}
		if err != nil {
			return fmt.Errorf("update tokens: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %q of platform %q: %w", c.ExternalUserID, c.PlatformID, ErrConnectionNotFound)
		}
		return nil
	})
}

// Connection returns a user's connection to a platform, tokens opened.
func (v *Vault) Connection(ctx context.Context, owner, platform, user string) (Connection, error) {
	c := Connection{Owner: owner, PlatformID: platform, ExternalUserID: user}
	var (
		access, refresh  []byte
		expires          sql.NullInt64
		created, updated int64
	)
	err := v.s.db.QueryRowContext(ctx, `SELECT integration_id, email, access_token, refresh_token, token_type, expires_at, scope, broken, created_at, updated_at
		FROM oauth_connections WHERE owner = ? AND platform_id = ? AND external_user_id = ?`, owner, platform, user).
		Scan(&c.IntegrationID, &c.Email, &access, &refresh, &c.TokenType, &expires, &c.Scope, &c.Broken, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return Connection{}, fmt.Errorf("user %q of platform %q: %w", user, platform, ErrConnectionNotFound)
	}
	if err != nil {
		return Connection{}, fmt.Errorf("read connection: %w", err)
	}
	if c.AccessToken, err = v.open(access, connectionAD(owner, platform, user, "access_token")...); err != nil {
		return Connection{}, fmt.Errorf("connection of user %q to %s: access_token: %w", user, platform, err)
	}
	if c.RefreshToken, err = v.open(refresh, connectionAD(owner, platform, user, "refresh_token")...); err != nil {
		return Connection{}, fmt.Errorf("connection of user %q to %s: refresh_token: %w", user, platform, err)
	}
	if expires.Valid {
		c.Expiry = fromMillis(expires.Int64)
	}
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	return c, nil
}

// MarkConnectionBroken records why a connection no longer works. Its tokens
// are wiped: they are of no further use. An event, when not nil, is queued
// for the owner's webhooks in the same transaction.
func (v *Vault) MarkConnectionBroken(ctx context.Context, owner, platform, user, reason string, event *WebhookEvent) error {
	if reason == "" {
		return errors.New("mark connection broken: empty reason")
	}
	return v.s.tx(ctx, func(tx handle) error {
		res, err := tx.ExecContext(ctx, `UPDATE oauth_connections SET broken = ?, access_token = ?, refresh_token = ?, expires_at = NULL, updated_at = ?
			WHERE owner = ? AND platform_id = ? AND external_user_id = ?`,
			reason, v.seal("", connectionAD(owner, platform, user, "access_token")...), v.seal("", connectionAD(owner, platform, user, "refresh_token")...),
			millis(v.s.now()), owner, platform, user)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 || event == nil {
			return nil
		}
		_, _, err = v.s.enqueue(ctx, tx, *event)
		return err
	})
}

// refreshPoll bounds the wait between two tries of LockRefresh.
const refreshPoll = 250 * time.Millisecond

// LockRefresh takes the refresh lease of a user's connection for lease,
// waiting while another holder has it, and returns the function that
// lets it go. Servers that share a database refresh a user's token one
// at a time under it: with rotating refresh tokens a second refresh would
// spend a token the first has already replaced. A holder that dies keeps
// the lease until it runs out, so lease must outlast a refresh. The wait
// ends with ctx; ErrConnectionNotFound when there is no connection.
func (v *Vault) LockRefresh(ctx context.Context, owner, platform, user string, lease time.Duration) (unlock func(), err error) {
	holder := "rfl_" + randomText(10)
	wait := 10 * time.Millisecond
	held := false // an attempt found another holder
	for {
		var n int64
		err := v.s.tx(ctx, func(tx handle) error {
			now := millis(v.s.now())
			res, err := tx.ExecContext(ctx, `UPDATE oauth_connections SET refresh_holder = ?, refresh_until = ?
				WHERE owner = ? AND platform_id = ? AND external_user_id = ? AND (refresh_until IS NULL OR refresh_until <= ?)`,
				holder, now+lease.Milliseconds(), owner, platform, user, now)
			if err != nil {
				return err
			}
			if n, _ = res.RowsAffected(); n > 0 {
				return nil
			}
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM oauth_connections WHERE owner = ? AND platform_id = ? AND external_user_id = ?`,
				owner, platform, user).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("user %q of platform %q: %w", user, platform, ErrConnectionNotFound)
			}
			return err
		})
		if err != nil {
			if held && ctx.Err() != nil {
				// The context ended during a retry: as much a wait for the
				// holder as one that ends between retries.
				return nil, fmt.Errorf("lock token refresh: another server is refreshing the token of user %q: %w", user, ctx.Err())
			}
			return nil, fmt.Errorf("lock token refresh: %w", err)
		}
		if n > 0 {
			break
		}
		held = true
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("lock token refresh: another server is refreshing the token of user %q: %w", user, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, refreshPoll)
	}
	return func() {
		// Let go even when the caller's context is done: else the next
		// refresh waits out the lease.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		v.s.tx(ctx, func(tx handle) error {
			_, err := tx.ExecContext(ctx, `UPDATE oauth_connections SET refresh_holder = '', refresh_until = NULL
				WHERE owner = ? AND platform_id = ? AND external_user_id = ? AND refresh_holder = ?`, owner, platform, user, holder)
			return err
		})
	}, nil
}

// ForgetBrokenConnection deletes a user's connection to a platform if it is
// broken, so that a new authorization starts from "not connected".
func (s *Store) ForgetBrokenConnection(ctx context.Context, owner, platform, user string) error {
	return s.tx(ctx, func(tx handle) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM oauth_connections WHERE owner = ? AND platform_id = ? AND external_user_id = ? AND broken != ''`, owner, platform, user)
		return err
	})
}

func nullMillis(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return millis(t)
}

// ValidExternalUserID reports why id cannot name an end user, or nil: the
// developer picks these ids, so the rule is loose (1 to 256 bytes of UTF-8
// without control characters).
func ValidExternalUserID(id string) error {
	switch {
	case id == "":
		return errors.New("missing")
	case len(id) > 256:
		return fmt.Errorf("%.20q... is %d bytes long: at most 256 are allowed", id, len(id))
	case !utf8.ValidString(id):
		return fmt.Errorf("%q is not valid UTF-8", id)
	case strings.ContainsFunc(id, unicode.IsControl):
		return fmt.Errorf("%q: control characters are not allowed", id)
	}
	return nil
}

// ---- pending authorizations ----

// OAuthState is a pending authorization: what a callback carrying its state
// may complete.
type OAuthState struct {
	Owner          string
	PlatformID     string
	ExternalUserID string
	// RedirectURL is the developer_redirect_url to send the browser to
	// afterwards, "" for none.
	RedirectURL string
	// Verifier is the PKCE code verifier, "" without PKCE.
	Verifier  string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// MaxPendingStates bounds the pending authorizations of one owner, so that a
// client looping on oauth/confirmation cannot fill the database.
const MaxPendingStates = 1000

func stateHash(state string) []byte {
	h := sha256.Sum256([]byte(state))
	return h[:]
}

// CreateState records a pending authorization and returns its state: 256
// random bits, URL-safe. Only its hash is stored. Expired states of the
// owner are swept on the way.
func (v *Vault) CreateState(ctx context.Context, st OAuthState) (string, error) {
	b := make([]byte, 32)
	rand.Read(b)
	state := base64.RawURLEncoding.EncodeToString(b)
	hash := stateHash(state)
	err := v.s.tx(ctx, func(tx handle) error {
		if err := v.s.lock(ctx, tx, "atp/states", st.Owner); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM oauth_states WHERE owner = ? AND expires_at <= ?`, st.Owner, millis(st.CreatedAt)); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM oauth_states WHERE owner = ?`, st.Owner).Scan(&n); err != nil {
			return err
		}
		if n >= MaxPendingStates {
			return fmt.Errorf("%w: owner %q has %d; they expire within minutes", ErrTooManyStates, st.Owner, n)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO oauth_states (state_hash, owner, platform_id, external_user_id, redirect_url, verifier, created_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			hash, st.Owner, st.PlatformID, st.ExternalUserID, st.RedirectURL, v.seal(st.Verifier, "oauth_states", string(hash), "verifier"),
			millis(st.CreatedAt), millis(st.ExpiresAt))
		return err
	})
	if err != nil {
		return "", fmt.Errorf("save OAuth state: %w", err)
	}
	return state, nil
}

// ConsumeState takes a pending authorization of platformID out of the
// store: a state works once, whatever happens next. It fails with
// ErrStateNotFound for a state never issued or already used,
// ErrStateExpired (the state still consumed) for one used at or after its
// expiry, and ErrStateWrongPlatform for one issued for another platform,
// which it leaves in place: a state that reaches the wrong callback
// (a misconfigured redirect URI, a link opened in the wrong tab) must not
// be spent, or the real callback would then fail. The OAuthState returned
// with ErrStateWrongPlatform holds only PlatformID.
func (v *Vault) ConsumeState(ctx context.Context, state, platformID string, now time.Time) (OAuthState, error) {
	hash := stateHash(state)
	var (
		st               OAuthState
		verifier         []byte
		created, expires int64
	)
	err := v.s.tx(ctx, func(tx handle) error {
		err := tx.QueryRowContext(ctx, `DELETE FROM oauth_states WHERE state_hash = ? AND platform_id = ?
			RETURNING owner, platform_id, external_user_id, redirect_url, verifier, created_at, expires_at`, hash, platformID).
			Scan(&st.Owner, &st.PlatformID, &st.ExternalUserID, &st.RedirectURL, &verifier, &created, &expires)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		switch err := tx.QueryRowContext(ctx, `SELECT platform_id FROM oauth_states WHERE state_hash = ?`, hash).Scan(&st.PlatformID); {
		case errors.Is(err, sql.ErrNoRows):
			return ErrStateNotFound
		case err != nil:
			return err
		}
		return ErrStateWrongPlatform
	})
	switch {
	case errors.Is(err, ErrStateNotFound):
		return OAuthState{}, err
	case errors.Is(err, ErrStateWrongPlatform):
		return OAuthState{PlatformID: st.PlatformID}, err
	case err != nil:
		return OAuthState{}, fmt.Errorf("read OAuth state: %w", err)
	}
	st.CreatedAt, st.ExpiresAt = fromMillis(created), fromMillis(expires)
	if !now.Before(st.ExpiresAt) {
		return st, ErrStateExpired
	}
	if st.Verifier, err = v.open(verifier, "oauth_states", string(hash), "verifier"); err != nil {
		return OAuthState{}, fmt.Errorf("OAuth state: verifier: %w", err)
	}
	return st, nil
}

// sortedCopy returns a sorted copy of s without duplicates.
func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}
