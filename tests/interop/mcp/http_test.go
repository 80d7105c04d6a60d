package mcp_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
)

const initialize = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`

// post sends one raw JSON-RPC message as an MCP host would, after edit
// changes the request.
func post(t *testing.T, url, body string, edit func(*http.Request)) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if edit != nil {
		edit(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func newHTTPServer(t *testing.T, opts ...mcp.Option) *httptest.Server {
	t.Helper()
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", newProbe()), append(opts, mcp.WithLogger(quiet))...)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.HTTPHandler())
	t.Cleanup(ts.Close)
	return ts
}

func TestHTTPBearerToken(t *testing.T) {
	ts := newHTTPServer(t, mcp.WithBearerToken("s3cret"))
	for _, c := range []struct {
		name, auth, challenge string
	}{
		{"none", "", `Bearer realm="mcp"`},
		{"wrong", "Bearer s3cres", `Bearer realm="mcp", error="invalid_token"`},
		{"prefix of the token", "Bearer s3c", `Bearer realm="mcp", error="invalid_token"`},
		{"other scheme", "Basic czNjcmV0", `Bearer realm="mcp", error="invalid_token"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, ts.URL, initialize, func(r *http.Request) {
				if c.auth != "" {
					r.Header.Set("Authorization", c.auth)
				}
			})
			if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != c.challenge {
				t.Errorf("status %d, WWW-Authenticate %q; want 401, %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), c.challenge)
			}
			if strings.Contains(body, "s3cret") {
				t.Errorf("body quotes the token: %s", body)
			}
		})
	}
	t.Run("right token, scheme in any case", func(t *testing.T) {
		resp, body := post(t, ts.URL, initialize, func(r *http.Request) { r.Header.Set("Authorization", "bearer s3cret") })
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, `"serverInfo"`) {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
	t.Run("real client", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", newProbe()), mcp.WithBearerToken("s3cret"), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		cs := connectHTTP(t, srv, latest, http.Header{"Authorization": {"Bearer s3cret"}})
		if got := callText(t, cs, "add", map[string]any{"a": 1, "b": 2}, false); got != "3" {
			t.Errorf("add: %q", got)
		}
	})
	t.Run("real client without the token", func(t *testing.T) {
		srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", newProbe()), mcp.WithBearerToken("s3cret"), mcp.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		ts := httptest.NewServer(srv.HTTPHandler())
		defer ts.Close()
		_, err = newClient().Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: ts.URL, MaxRetries: -1}, nil)
		if err == nil || !strings.Contains(err.Error(), "Unauthorized") {
			t.Errorf("connect without the token: %v, want a 401 failure", err)
		}
	})
}

func TestHTTPRefusesBrowsersAndRebinding(t *testing.T) {
	ts := newHTTPServer(t)
	for _, c := range []struct {
		name string
		edit func(*http.Request)
	}{
		// DNS rebinding: evil.example resolved to 127.0.0.1 after the page
		// loaded; the browser still sends the attacker's host name.
		{"rebound host name", func(r *http.Request) { r.Host = "evil.example:8080" }},
		{"cross-site fetch", func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }},
		{"foreign origin", func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, ts.URL, initialize, c.edit)
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403: %s", resp.StatusCode, body)
			}
		})
	}
	t.Run("same-origin browser page", func(t *testing.T) {
		resp, body := post(t, ts.URL, initialize, func(r *http.Request) {
			r.Header.Set("Sec-Fetch-Site", "same-origin")
			r.Header.Set("Origin", ts.URL)
		})
		if resp.StatusCode != http.StatusOK {
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
	})
}

func TestHTTPStatelessMethods(t *testing.T) {
	ts := newHTTPServer(t)
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, err := http.NewRequest(method, ts.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s: status %d, Allow %q; want 405, POST", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	// No session is kept: a call needs no initialize and no session id.
	resp, body := post(t, ts.URL, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"add","arguments":{"a":2,"b":3}}}`,
		func(r *http.Request) { r.Header.Set("Mcp-Protocol-Version", "2025-11-25") })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Mcp-Session-Id") != "" ||
		strings.TrimSpace(body) != `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"5"}]}}` {
		t.Errorf("status %d, session %q: %s", resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), body)
	}
}

func TestHTTPMountedUnderAPath(t *testing.T) {
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", newProbe()), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv.HTTPHandler())
	ts := httptest.NewServer(mux)
	defer ts.Close()
	cs, err := newClient().Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: ts.URL + "/mcp", MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if got := callText(t, cs, "add", map[string]any{"a": 1, "b": 2}, false); got != "3" {
		t.Errorf("add: %q", got)
	}
}
