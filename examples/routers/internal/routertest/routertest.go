// Package routertest checks a router that serves the hello example's tools
// under /api with the bearer token Token, through real HTTP requests.
package routertest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
)

// Token is the bearer token the routers under test are built with.
const Token = "router-test-token"

// Check starts a server on router and makes the calls every example must
// answer: a good call, a call with invalid params, an unauthenticated call,
// and the two GET routes.
func Check(t *testing.T, router http.Handler) {
	t.Helper()
	srv := httptest.NewServer(router)
	defer srv.Close()

	status, body := do(t, srv, http.MethodPost, "/api/atp/hello/greet/", "application/json", `{"name":"Ada","times":2}`, Token)
	if status != http.StatusOK || body["result"] != "Hello, Ada! Hello, Ada!" {
		t.Errorf("good JSON call: %d %v", status, body)
	}

	status, body = do(t, srv, http.MethodPost, "/api/atp/hello/add/", "application/x-www-form-urlencoded", "a=1.5&b=2", Token)
	if status != http.StatusOK || body["result"] != 3.5 {
		t.Errorf("good form call: %d %v", status, body)
	}

	status, body = do(t, srv, http.MethodPost, "/api/atp/hello/greet/", "application/json", `{"name":"Ada","times":9,"shout":true}`, Token)
	wantProblems := []any{
		map[string]any{"path": "times", "message": "expected integer <= 5, got 9"},
		map[string]any{"path": "shout", "message": "unknown field (allowed: name, times)"},
	}
	if status != http.StatusBadRequest || !reflect.DeepEqual(body["problems"], wantProblems) {
		t.Errorf("bad call: %d %v, want 400 with problems %v", status, body, wantProblems)
	}

	status, body = do(t, srv, http.MethodPost, "/api/atp/hello/greet/", "application/json", `{"name":"Ada","times":2}`, "")
	if status != http.StatusUnauthorized || body["error"] == nil {
		t.Errorf("unauthenticated call: %d %v, want 401", status, body)
	}

	status, body = do(t, srv, http.MethodGet, "/api/atp/hello/", "", "", Token)
	if tools, _ := body["tools"].([]any); status != http.StatusOK || len(tools) != 2 {
		t.Errorf("GET toolkit: %d %v", status, body)
	}
	status, body = do(t, srv, http.MethodGet, "/api/atp/hello/greet/", "", "", Token)
	if status != http.StatusOK || body["name"] != "greet" || body["input_schema"] == nil {
		t.Errorf("GET tool: %d %v", status, body)
	}
}

func do(t *testing.T, srv *httptest.Server, method, path, contentType, body, token string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json: %s", method, path, ct, raw)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d, body is not a JSON object: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}
