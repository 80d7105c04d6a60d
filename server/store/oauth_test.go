package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, SecretKeySize) }

func openVault(t *testing.T, db testDB) (*Store, *Vault) {
	t.Helper()
	s := db.open(t)
	v, err := s.Vault(context.Background(), testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func TestVaultKeyCheck(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s := db.open(t)
		if _, err := s.Vault(ctx, make([]byte, 16)); err == nil || !strings.Contains(err.Error(), "expected 32 bytes, got 16") {
			t.Fatalf("a 16-byte key: %v", err)
		}
		if _, err := s.Vault(ctx, testKey(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Vault(ctx, testKey(1)); err != nil {
			t.Fatalf("the same key again: %v", err)
		}
		if _, err := s.Vault(ctx, testKey(2)); !errors.Is(err, ErrWrongSecretKey) {
			t.Fatalf("another key: %v, want ErrWrongSecretKey", err)
		}
		if p, err := s.Path(ctx); err != nil || (db.engine == EngineSQLite) != strings.HasSuffix(p, "atp.db") {
			t.Fatalf("Path = %q, %v", p, err)
		}
		mem, err := Open(ctx, Memory)
		if err != nil {
			t.Fatal(err)
		}
		defer mem.Close()
		if p, err := mem.Path(ctx); err != nil || p != "" {
			t.Fatalf("Path of an in-memory store = %q, %v; want \"\"", p, err)
		}
	})
}

func conn(user, access, refresh string) Connection {
	return Connection{Owner: "default", PlatformID: "hub", ExternalUserID: user, AccessToken: access, RefreshToken: refresh,
		TokenType: "Bearer", Expiry: time.UnixMilli(1_900_000_000_000).UTC(), Scope: "a b", Email: user + "@x"}
}

// A sealed value moved to another row or column does not open.
func TestVaultBindsValuesToTheirPlace(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		for _, c := range []Connection{conn("u1", "access-1", "refresh-1"), conn("u2", "access-2", "refresh-2")} {
			if _, err := v.SaveConnection(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
		}
		var blob []byte
		s.db.QueryRowContext(ctx, `SELECT access_token FROM oauth_connections WHERE external_user_id = 'u1'`).Scan(&blob)
		if bytes.Contains(blob, []byte("access-1")) {
			t.Fatal("the access token is stored in clear")
		}
		// The control: in its own place, the value opens.
		if got, err := v.open(blob, connectionAD("default", "hub", "u1", "access_token")...); err != nil || got != "access-1" {
			t.Fatalf("the value does not open in its own place: %q, %v", got, err)
		}
		// u1's access token copied into u2's row.
		if _, err := s.db.ExecContext(ctx, `UPDATE oauth_connections SET access_token = ? WHERE external_user_id = 'u2'`, blob); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Connection(ctx, "default", "hub", "u2"); err == nil || !strings.Contains(err.Error(), "does not decrypt") {
			t.Fatalf("a token moved to another user's row: %v", err)
		}
		// u1's access and refresh tokens swapped.
		if _, err := s.db.ExecContext(ctx, `UPDATE oauth_connections SET access_token = refresh_token, refresh_token = access_token WHERE external_user_id = 'u1'`); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Connection(ctx, "default", "hub", "u1"); err == nil {
			t.Fatal("swapped access and refresh tokens opened")
		}
		// A client secret moved to another platform.
		for _, id := range []string{"p1", "p2"} {
			if _, err := v.PutPlatform(ctx, Platform{ID: id, ClientID: "c", ClientSecret: "secret-" + id, AuthURL: "https://a/x", TokenURL: "https://a/t", PKCE: true}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.db.ExecContext(ctx, `UPDATE oauth_platforms SET client_secret = (SELECT client_secret FROM oauth_platforms WHERE id = 'p1') WHERE id = 'p2'`); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Platform(ctx, "p2"); err == nil {
			t.Fatal("a client secret moved to another platform opened")
		}
		if p, err := v.Platform(ctx, "p1"); err != nil || p.ClientSecret != "secret-p1" {
			t.Fatalf("p1 = %+v, %v", p, err)
		}
	})
}

func TestConnections(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		if _, err := v.Connection(ctx, "default", "hub", "u1"); !errors.Is(err, ErrConnectionNotFound) {
			t.Fatalf("before saving: %v", err)
		}
		c, err := v.SaveConnection(ctx, conn("u1", "a1", "r1"), nil)
		if err != nil {
			t.Fatal(err)
		}
		if c.AccessToken != "a1" || c.RefreshToken != "r1" || c.Email != "u1@x" || !c.Expiry.Equal(conn("", "", "").Expiry) || !strings.HasPrefix(c.IntegrationID, "int_") {
			t.Fatalf("saved = %+v", c)
		}
		// Refreshed without a new refresh token: the old one stays.
		c.AccessToken, c.RefreshToken, c.Expiry = "a2", "", time.Time{}
		if err := v.UpdateTokens(ctx, c); err != nil {
			t.Fatal(err)
		}
		got, _ := v.Connection(ctx, "default", "hub", "u1")
		if got.AccessToken != "a2" || got.RefreshToken != "r1" || !got.Expiry.IsZero() {
			t.Fatalf("after UpdateTokens = %+v", got)
		}
		// Broken: tokens wiped, reason kept; a new authorization forgets it, and
		// a reconnection keeps the integration id.
		if err := v.MarkConnectionBroken(ctx, "default", "hub", "u1", "revoked", nil); err != nil {
			t.Fatal(err)
		}
		got, _ = v.Connection(ctx, "default", "hub", "u1")
		if got.Broken != "revoked" || got.AccessToken != "" || got.RefreshToken != "" {
			t.Fatalf("broken = %+v", got)
		}
		again, err := v.SaveConnection(ctx, conn("u1", "a3", "r3"), nil)
		if err != nil || again.Broken != "" || again.IntegrationID != c.IntegrationID || again.AccessToken != "a3" {
			t.Fatalf("reconnected = %+v, %v", again, err)
		}
		if err := s.ForgetBrokenConnection(ctx, "default", "hub", "u1"); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Connection(ctx, "default", "hub", "u1"); err != nil {
			t.Fatalf("a working connection was forgotten: %v", err)
		}
		v.MarkConnectionBroken(ctx, "default", "hub", "u1", "revoked", nil)
		s.ForgetBrokenConnection(ctx, "default", "hub", "u1")
		if _, err := v.Connection(ctx, "default", "hub", "u1"); !errors.Is(err, ErrConnectionNotFound) {
			t.Fatalf("a broken connection was kept: %v", err)
		}
		if err := v.UpdateTokens(ctx, conn("ghost", "a", "r")); !errors.Is(err, ErrConnectionNotFound) {
			t.Fatalf("UpdateTokens of no connection: %v", err)
		}
	})
}

func TestStates(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		now := time.UnixMilli(1_900_000_000_000)
		st := OAuthState{Owner: "default", PlatformID: "hub", ExternalUserID: "u1", RedirectURL: "https://dev/back",
			Verifier: "verifier-xyz", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		state, err := v.CreateState(ctx, st)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		rows, _ := s.db.QueryContext(ctx, `SELECT state_hash, verifier FROM oauth_states`)
		for rows.Next() {
			var hash, verifier []byte
			rows.Scan(&hash, &verifier)
			if string(hash) == state || bytes.Contains(verifier, []byte("verifier-xyz")) {
				n++
			}
		}
		rows.Close()
		if len(state) < 43 || n != 0 {
			t.Fatalf("state %q; %d rows hold the state or verifier in clear", state, n)
		}
		// Presented for another platform, the state is refused and not spent.
		for range 2 {
			if got, err := v.ConsumeState(ctx, state, "other", now.Add(time.Minute)); !errors.Is(err, ErrStateWrongPlatform) || got.PlatformID != "hub" || got.Owner != "" {
				t.Fatalf("another platform's callback: %+v, %v; want ErrStateWrongPlatform naming only hub", got, err)
			}
		}
		got, err := v.ConsumeState(ctx, state, "hub", now.Add(time.Minute))
		if err != nil || got.Verifier != "verifier-xyz" || got.RedirectURL != "https://dev/back" || got.ExternalUserID != "u1" {
			t.Fatalf("consume = %+v, %v", got, err)
		}
		if _, err := v.ConsumeState(ctx, state, "hub", now.Add(time.Minute)); !errors.Is(err, ErrStateNotFound) {
			t.Fatalf("second use: %v, want ErrStateNotFound", err)
		}
		state, _ = v.CreateState(ctx, st)
		if _, err := v.ConsumeState(ctx, state, "hub", now.Add(10*time.Minute)); !errors.Is(err, ErrStateExpired) {
			t.Fatalf("at expiry: %v, want ErrStateExpired", err)
		}
		if _, err := v.ConsumeState(ctx, state, "hub", now); !errors.Is(err, ErrStateNotFound) {
			t.Fatalf("an expired state was not consumed: %v", err)
		}
		if _, err := v.ConsumeState(ctx, "never-issued", "hub", now); !errors.Is(err, ErrStateNotFound) {
			t.Fatalf("unknown: %v", err)
		}
	})
}

func TestPendingStatesBounded(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		mem := db.open(t)
		v, _ := mem.Vault(ctx, testKey(3))
		now := time.UnixMilli(1_900_000_000_000)
		st := OAuthState{Owner: "o", PlatformID: "hub", ExternalUserID: "u", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		for range MaxPendingStates {
			if _, err := v.CreateState(ctx, st); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.CreateState(ctx, st); !errors.Is(err, ErrTooManyStates) {
			t.Fatalf("one more: %v, want ErrTooManyStates", err)
		}
		other := st
		other.Owner = "p"
		if _, err := v.CreateState(ctx, other); err != nil {
			t.Fatalf("another owner: %v", err)
		}
		// Once they expire they are swept, and there is room again.
		st.CreatedAt, st.ExpiresAt = now.Add(time.Minute), now.Add(2*time.Minute)
		if _, err := v.CreateState(ctx, st); err != nil {
			t.Fatalf("after expiry: %v", err)
		}
	})
}

func TestPlatformValidate(t *testing.T) {
	good := Platform{ID: "hubspot", ClientID: "c", ClientSecret: "s", AuthURL: "https://a/x", TokenURL: "http://127.0.0.1:9/t", PKCE: true}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		change func(*Platform)
		words  string
	}{
		{func(p *Platform) { p.ID = "hub spot" }, "id: platform id"},
		{func(p *Platform) { p.ClientID = " " }, "client_id: missing"},
		{func(p *Platform) { p.ClientSecret, p.PKCE = "", false }, "client_secret: missing"},
		{func(p *Platform) { p.AuthURL = "" }, "auth_url: missing"},
		{func(p *Platform) { p.TokenURL = "http://example.com/t" }, "token_url: \"http://example.com/t\": expected https"},
		{func(p *Platform) { p.TokenURL = "/t" }, "token_url: \"/t\": expected an absolute https:// URL"},
		{func(p *Platform) { p.UserinfoURL = "ftp://x/y" }, "userinfo_url:"},
		{func(p *Platform) { p.Scopes = []string{"a", "b c"} }, "scopes[1]"},
		{func(p *Platform) { p.AuthParams = map[string]string{"state": "x"} }, `auth_params: "state"`},
		{func(p *Platform) { p.AuthStyle = "basic" }, "auth_style"},
	} {
		p := good
		c.change(&p)
		if err := p.Validate(); err == nil || !strings.Contains(err.Error(), c.words) {
			t.Fatalf("%+v: %v, want %q", p, err, c.words)
		}
	}
	public := good
	public.ClientSecret = ""
	if err := public.Validate(); err != nil {
		t.Fatalf("a public client with PKCE: %v", err)
	}
}

func TestPlatforms(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		p := Platform{ID: "hub", Name: "Hub", ClientID: "c", ClientSecret: "s1", AuthURL: "https://a/x", TokenURL: "https://a/t",
			Scopes: []string{"x", "y"}, PKCE: true, AuthParams: map[string]string{"access_type": "offline"}, AuthStyle: "params"}
		saved, err := v.PutPlatform(ctx, p)
		if err != nil || saved.ClientSecret != "s1" || saved.AuthParams["access_type"] != "offline" || saved.AuthStyle != "params" || len(saved.Scopes) != 2 {
			t.Fatalf("put = %+v, %v", saved, err)
		}
		s.SetClock(func() time.Time { return time.Now().Add(time.Hour) })
		p.ClientSecret, p.PKCE = "s2", false
		updated, err := v.PutPlatform(ctx, p)
		if err != nil || updated.ClientSecret != "s2" || updated.PKCE || !updated.CreatedAt.Equal(saved.CreatedAt) || !updated.UpdatedAt.After(saved.UpdatedAt) {
			t.Fatalf("update = %+v, %v", updated, err)
		}
		list, err := s.Platforms(ctx)
		if err != nil || len(list) != 1 || list[0].ClientSecret != "" || list[0].ClientID != "c" {
			t.Fatalf("list = %+v, %v", list, err)
		}
		if _, err := v.PutPlatform(ctx, Platform{ID: "bad"}); err == nil {
			t.Fatal("an invalid platform was stored")
		}
		v.SaveConnection(ctx, Connection{Owner: "o", PlatformID: "hub", ExternalUserID: "u", AccessToken: "a"}, nil)
		v.CreateState(ctx, OAuthState{Owner: "o", PlatformID: "hub", ExternalUserID: "u", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
		n, err := s.DeletePlatform(ctx, "hub")
		if err != nil || n != 1 {
			t.Fatalf("delete = %d, %v", n, err)
		}
		var left int
		s.db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM oauth_connections) + (SELECT count(*) FROM oauth_states)`).Scan(&left)
		if left != 0 {
			t.Fatalf("%d connections and states outlived their platform", left)
		}
		if _, err := s.DeletePlatform(ctx, "hub"); !errors.Is(err, ErrPlatformNotFound) {
			t.Fatalf("second delete: %v", err)
		}
		if _, err := v.Platform(ctx, "hub"); !errors.Is(err, ErrPlatformNotFound) {
			t.Fatalf("read after delete: %v", err)
		}
	})
}

func TestWebhooks(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		w, err := v.CreateWebhook(ctx, "o", "https://h/x", []string{"connection_success", "connection_failed", "connection_success"})
		if err != nil || !strings.HasPrefix(w.Secret, "whsec_") || len(w.Events) != 2 || w.Events[0] != "connection_failed" {
			t.Fatalf("create = %+v, %v", w, err)
		}
		var blob []byte
		s.db.QueryRowContext(ctx, `SELECT secret FROM webhooks`).Scan(&blob)
		if bytes.Contains(blob, []byte(w.Secret)) {
			t.Fatal("the webhook secret is stored in clear")
		}
		with, _ := v.Webhooks(ctx, "o")
		without, _ := s.WebhookList(ctx, "o")
		if len(with) != 1 || with[0].Secret != w.Secret || len(without) != 1 || without[0].Secret != "" {
			t.Fatalf("with secrets %+v, without %+v", with, without)
		}
		if err := s.DeleteWebhook(ctx, "other", w.ID); !errors.Is(err, ErrWebhookNotFound) {
			t.Fatalf("another owner's delete: %v", err)
		}
		if err := s.DeleteWebhook(ctx, "o", w.ID); err != nil {
			t.Fatal(err)
		}
		for range MaxWebhooks {
			if _, err := v.CreateWebhook(ctx, "o", "https://h/x", []string{"connection_success"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := v.CreateWebhook(ctx, "o", "https://h/x", []string{"connection_success"}); !errors.Is(err, ErrTooManyWebhooks) {
			t.Fatalf("one more: %v", err)
		}
	})
}
