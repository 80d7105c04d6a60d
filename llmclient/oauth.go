package llmclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Webhook events (docs/protocol.md §3, the SDK's register_webhook).
const (
	EventConnectionSuccess = "connection_success"
	EventConnectionFailed  = "connection_failed"
)

// DefaultPollInterval is WaitForConnection's pause between two polls when
// none is given (the Python SDK's).
const DefaultPollInterval = 2 * time.Second

// OAuthConnection is the server's answer to InitiateOAuthConnection: where
// to send the end user.
type OAuthConnection struct {
	// AuthorizationURL is the page the end user opens to grant access
	// (authorization_url, or auth_url which carries the same value).
	AuthorizationURL string
	// The rest is descriptive and may be empty, depending on the server.
	ConfirmationURL  string
	ProviderName     string
	ProviderLogo     string
	DeveloperAppName string
	Scopes           []string
	AuthMode         string
	// Raw is the whole answer, for fields not listed here.
	Raw json.RawMessage
}

// UserTokens are an end user's tokens for one platform (docs/protocol.md §3 step 3).
// They are secrets: String, GoString and LogValue print them redacted.
type UserTokens struct {
	Status            string
	IntegrationID     string
	PlatformID        string
	ExternalUserID    string
	ExternalUserEmail string
	AccessToken       string
	RefreshToken      string
	TokenType         string
	// ExpiresAt is when AccessToken expires; zero when the server does not
	// say.
	ExpiresAt time.Time
	Scope     string
}

func (t UserTokens) redacted() map[string]any {
	red := func(s string) string {
		if s == "" {
			return ""
		}
		return "[REDACTED]"
	}
	return map[string]any{"status": t.Status, "integration_id": t.IntegrationID, "platform_id": t.PlatformID,
		"external_user_id": t.ExternalUserID, "external_user_email": t.ExternalUserEmail,
		"access_token": red(t.AccessToken), "refresh_token": red(t.RefreshToken), "token_type": t.TokenType,
		"expires_at": t.ExpiresAt, "scope": t.Scope}
}

// String describes the tokens without their values.
func (t UserTokens) String() string {
	return fmt.Sprintf("UserTokens{platform %q, user %q, status %q, access_token %q, refresh_token %q, expires_at %s, scope %q}",
		t.PlatformID, t.ExternalUserID, t.Status, t.redacted()["access_token"], t.redacted()["refresh_token"],
		t.ExpiresAt.Format(time.RFC3339), t.Scope)
}

// GoString is String: %#v must not print the tokens either.
func (t UserTokens) GoString() string { return t.String() }

// LogValue keeps the tokens out of slog output.
func (t UserTokens) LogValue() slog.Value {
	m := t.redacted()
	attrs := make([]slog.Attr, 0, len(m))
	for _, k := range []string{"status", "integration_id", "platform_id", "external_user_id", "external_user_email",
		"access_token", "refresh_token", "token_type", "expires_at", "scope"} {
		attrs = append(attrs, slog.Any(k, m[k]))
	}
	return slog.GroupValue(attrs...)
}

// Webhook is a registered webhook.
type Webhook struct {
	ID     string
	URL    string
	Events []string
	// Secret signs the deliveries (`atp serve`: the X-ATP-Signature
	// header, see server.VerifyWebhook). The server shows it once, in the
	// answer to RegisterWebhook; keep it safe.
	Secret string
	// CreatedAt is zero when the server does not say.
	CreatedAt time.Time
	// Raw is the server's description, for fields not listed here.
	Raw json.RawMessage
}

// String describes the webhook without its secret.
func (w Webhook) String() string {
	secret := ""
	if w.Secret != "" {
		secret = ", secret [REDACTED]"
	}
	return fmt.Sprintf("Webhook{%s %s %v%s}", w.ID, w.URL, w.Events, secret)
}

// GoString is String: %#v must not print the secret either.
func (w Webhook) GoString() string { return w.String() }

// InitiateOAuthConnection starts the OAuth flow of platformID (the
// auth_provider a tool registered, e.g. "hubspot") for the end user the
// developer calls externalUserID: the user then opens AuthorizationURL.
// redirectURL, when not empty, is where the server sends the user's
// browser after the flow (developer_redirect_url).
func (c *Client) InitiateOAuthConnection(ctx context.Context, platformID, externalUserID, redirectURL string) (*OAuthConnection, error) {
	op := fmt.Sprintf("initiate the OAuth connection of user %q to %q", externalUserID, platformID)
	if err := checkOAuthIDs(platformID, externalUserID); err != nil {
		return nil, opError(op, err)
	}
	body := map[string]string{"external_user_id": externalUserID, "api_key": c.apiKey}
	if redirectURL != "" {
		body["developer_redirect_url"] = redirectURL
	}
	data, err := c.postJSON(ctx, "oauth/confirmation/"+url.PathEscape(platformID)+"/", body)
	if err != nil {
		return nil, opError(op, err)
	}
	var m struct {
		AuthorizationURL string          `json:"authorization_url"`
		AuthURL          string          `json:"auth_url"`
		ConfirmationURL  string          `json:"confirmation_url"`
		ProviderName     string          `json:"provider_name"`
		ProviderLogo     string          `json:"provider_logo"`
		DeveloperAppName string          `json:"developer_app_name"`
		Scopes           json.RawMessage `json:"scopes"`
		AuthMode         string          `json:"auth_mode"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, opError(op, fmt.Errorf("the reply is not the expected object: %v", jsonProblem(err)))
	}
	conn := &OAuthConnection{AuthorizationURL: m.AuthorizationURL, ConfirmationURL: m.ConfirmationURL,
		ProviderName: m.ProviderName, ProviderLogo: m.ProviderLogo, DeveloperAppName: m.DeveloperAppName,
		Scopes: stringList(m.Scopes), AuthMode: m.AuthMode, Raw: data}
	if conn.AuthorizationURL == "" {
		conn.AuthorizationURL = m.AuthURL
	}
	if conn.AuthorizationURL == "" {
		return nil, opError(op, fmt.Errorf("the reply has neither authorization_url nor auth_url: %.300s", data))
	}
	return conn, nil
}

// GetUserTokens returns the end user's tokens for platformID. Until the
// user has completed the OAuth flow the server answers 404, and the error
// wraps ErrNotConnected (with the *APIError). A 404 whose body has a
// "status" other than "pending" (`atp serve` says "pending" while it waits
// for the user) is another problem, such as an unknown platform, and does
// not wrap it; nor does 410, a connection that broke and must be made
// again.
func (c *Client) GetUserTokens(ctx context.Context, platformID, externalUserID string) (*UserTokens, error) {
	op := fmt.Sprintf("get the %q tokens of user %q", platformID, externalUserID)
	if err := checkOAuthIDs(platformID, externalUserID); err != nil {
		return nil, opError(op, err)
	}
	data, err := c.doHTTP(ctx, http.MethodGet, "oauth/tokens/"+url.PathEscape(platformID)+"/"+url.PathEscape(externalUserID)+"/", nil)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound && (apiErr.Status == "" || apiErr.Status == "pending") {
		return nil, opError(op, fmt.Errorf("%w: %w", ErrNotConnected, err))
	}
	if err != nil {
		return nil, opError(op, err)
	}
	var m struct {
		Status            string          `json:"status"`
		IntegrationID     json.RawMessage `json:"integration_id"`
		PlatformID        string          `json:"platform_id"`
		ExternalUserID    string          `json:"external_user_id"`
		ExternalUserEmail string          `json:"external_user_email"`
		AccessToken       string          `json:"access_token"`
		RefreshToken      string          `json:"refresh_token"`
		TokenType         string          `json:"token_type"`
		ExpiresAt         json.RawMessage `json:"expires_at"`
		Scope             json.RawMessage `json:"scope"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, opError(op, fmt.Errorf("the reply is not the expected object: %v", jsonProblem(err)))
	}
	expires, err := flexTime(m.ExpiresAt)
	if err != nil {
		return nil, opError(op, fmt.Errorf("expires_at: %v", err))
	}
	if m.AccessToken == "" {
		return nil, opError(op, fmt.Errorf("the reply has no access_token (status %q)", m.Status))
	}
	return &UserTokens{Status: m.Status, IntegrationID: flexString(m.IntegrationID), PlatformID: m.PlatformID,
		ExternalUserID: m.ExternalUserID, ExternalUserEmail: m.ExternalUserEmail,
		AccessToken: m.AccessToken, RefreshToken: m.RefreshToken, TokenType: m.TokenType,
		ExpiresAt: expires, Scope: strings.Join(stringList(m.Scope), " ")}, nil
}

// WaitForConnection polls GetUserTokens every poll (DefaultPollInterval
// when poll <= 0) while the server answers 404, and returns the tokens once
// the end user has connected. It stops when ctx ends (give it a deadline:
// the Python SDK waits 300 s) and on any error other than 404.
func (c *Client) WaitForConnection(ctx context.Context, platformID, externalUserID string, poll time.Duration) (*UserTokens, error) {
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	for {
		t, err := c.GetUserTokens(ctx, platformID, externalUserID)
		if err == nil || !errors.Is(err, ErrNotConnected) {
			return t, err
		}
		if err := c.sleep(ctx, poll); err != nil {
			return nil, opError(fmt.Sprintf("wait for user %q to connect %q", externalUserID, platformID), err)
		}
	}
}

// RegisterWebhook asks the server to POST OAuth events (EventConnectionSuccess,
// EventConnectionFailed) to url. No events means EventConnectionSuccess, as
// in the Python SDK.
func (c *Client) RegisterWebhook(ctx context.Context, webhookURL string, events []string) (*Webhook, error) {
	op := fmt.Sprintf("register webhook %q", webhookURL)
	u, err := url.Parse(webhookURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, opError(op, errors.New("url: expected an absolute http or https URL"))
	}
	if len(events) == 0 {
		events = []string{EventConnectionSuccess}
	}
	data, err := c.postJSON(ctx, "webhooks/register/", map[string]any{"url": webhookURL, "events": events, "api_key": c.apiKey})
	if err != nil {
		return nil, opError(op, err)
	}
	var w Webhook
	if err := w.UnmarshalJSON(data); err != nil {
		return nil, opError(op, err)
	}
	if w.ID == "" {
		return nil, opError(op, fmt.Errorf("the reply has no webhook_id: %.300s", data))
	}
	return &w, nil
}

// ListWebhooks returns the webhooks registered with this key's owner.
func (c *Client) ListWebhooks(ctx context.Context) ([]Webhook, error) {
	data, err := c.doHTTP(ctx, http.MethodGet, "webhooks/", nil)
	if err != nil {
		return nil, opError("list webhooks", err)
	}
	// The SDK documents a JSON list; accept a list wrapped in an object
	// too, as paginated APIs send.
	list := json.RawMessage(bytes.TrimSpace(data))
	if len(list) > 0 && list[0] == '{' {
		var wrapped map[string]json.RawMessage
		json.Unmarshal(list, &wrapped)
		for _, k := range []string{"webhooks", "results", "data"} {
			if v, ok := wrapped[k]; ok {
				list = v
				break
			}
		}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(list, &items); err != nil {
		return nil, opError("list webhooks", fmt.Errorf("expected a JSON array of webhooks, got %.300s", data))
	}
	out := make([]Webhook, 0, len(items))
	for i, it := range items {
		var w Webhook
		if err := w.UnmarshalJSON(it); err != nil {
			return nil, opError("list webhooks", fmt.Errorf("[%d]: %w", i, err))
		}
		out = append(out, w)
	}
	return out, nil
}

// DeleteWebhook deletes a webhook.
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	if id == "" {
		return opError("delete webhook", errors.New("id is empty"))
	}
	// The protocol's oddity (docs/protocol.md §2.2), kept for the hosted platform: deletion is a GET
	// of webhooks/{id}/delete/ (the Python SDK sends every non-POST as a
	// GET), not a DELETE.
	if _, err := c.doHTTP(ctx, http.MethodGet, "webhooks/"+url.PathEscape(id)+"/delete/", nil); err != nil {
		return opError(fmt.Sprintf("delete webhook %q", id), err)
	}
	return nil
}

// UnmarshalJSON reads a webhook as servers describe it: webhook_id (or id)
// as a string or a number, url, events, secret, created_at.
func (w *Webhook) UnmarshalJSON(data []byte) error {
	var m struct {
		WebhookID json.RawMessage `json:"webhook_id"`
		ID        json.RawMessage `json:"id"`
		URL       string          `json:"url"`
		Events    json.RawMessage `json:"events"`
		Secret    string          `json:"secret"`
		CreatedAt json.RawMessage `json:"created_at"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		return fmt.Errorf("expected a webhook object: %v", jsonProblem(err))
	}
	created, err := flexTime(m.CreatedAt)
	if err != nil {
		return fmt.Errorf("created_at: %v", err)
	}
	w.Secret, w.CreatedAt = m.Secret, created
	w.ID = flexString(m.WebhookID)
	if w.ID == "" {
		w.ID = flexString(m.ID)
	}
	w.URL, w.Events = m.URL, stringList(m.Events)
	w.Raw = append(json.RawMessage(nil), data...)
	return nil
}

func checkOAuthIDs(platformID, externalUserID string) error {
	switch {
	case platformID == "":
		return errors.New("platformID is empty: name the OAuth platform, e.g. \"hubspot\"")
	case externalUserID == "":
		return errors.New("externalUserID is empty: name the end user with your own id for them")
	}
	return nil
}

// postJSON POSTs body as JSON.
func (c *Client) postJSON(ctx context.Context, endpoint string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	return c.doHTTP(ctx, http.MethodPost, endpoint, b)
}

// flexString reads a string or a number (servers differ on ids) as text;
// null or absent is "".
func flexString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String()
	}
	return ""
}

// stringList reads an array of strings, or one string of space- or
// comma-separated items.
func stringList(raw json.RawMessage) []string {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return strings.FieldsFunc(s, func(r rune) bool { return r == ' ' || r == ',' })
	}
	return nil
}

// flexTime reads an RFC 3339 time or Unix seconds; null or absent is the
// zero time.
func flexTime(raw json.RawMessage) (time.Time, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return time.Time{}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return time.Time{}, nil
		}
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t, nil
		}
		if n, err := strconv.ParseFloat(s, 64); err == nil {
			return unixTime(n), nil
		}
		return time.Time{}, fmt.Errorf("expected an RFC 3339 time or Unix seconds, got %q", s)
	}
	var n float64
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, fmt.Errorf("expected an RFC 3339 time or Unix seconds, got %.40s", raw)
	}
	return unixTime(n), nil
}

func unixTime(sec float64) time.Time {
	return time.Unix(0, int64(sec*1e9)).UTC()
}

// jsonProblem words a decoding error without Go type names.
func jsonProblem(err error) string {
	var typ *json.UnmarshalTypeError
	if errors.As(err, &typ) {
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return fmt.Sprintf("%s: got a JSON %s", field, typ.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}
