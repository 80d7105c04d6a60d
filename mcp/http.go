package mcp

import (
	"crypto/subtle"
	"net/http"
	"strings"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// HTTPHandler returns an http.Handler serving the tools over MCP streamable
// HTTP, stateless: every POST is answered on its own, with no session to
// keep, expire or lose (the sessionless direction of protocol 2026-07-28,
// which it also serves). Tools need nothing that only a session gives
// (server-to-client requests, a standalone event stream), so GET and DELETE
// are answered 405. Mount it at the path hosts are given, e.g.
// mux.Handle("/mcp", srv.HTTPHandler()); it answers on any path it gets.
//
// Cancellation: a call's context is cancelled when its HTTP request ends
// (the host gave up or disconnected), since its result can no longer be
// delivered. A notifications/cancelled message arrives on another request
// and so cannot reach a call here; hosts also drop the HTTP request when
// they cancel, which is what cancels the call.
//
// Protection, in order: cross-origin browser requests are refused (403,
// http.CrossOriginProtection), so a web page cannot drive local tools; with
// WithBearerToken, requests without the token get 401; a request that
// reaches a loopback address with a non-loopback Host header is refused
// (403, the SDK's DNS-rebinding guard); bodies are capped at 4 MiB (413).
// Listening beyond loopback without WithBearerToken exposes the tools to
// the network: the CLI should refuse or warn.
func (s *Server) HTTPHandler() http.Handler {
	sdk := mcpsdk.NewStreamableHTTPHandler(
		func(*http.Request) *mcpsdk.Server { return s.sdk },
		&mcpsdk.StreamableHTTPOptions{
			Stateless: true,
			// One application/json body per POST: no tool sends anything
			// before its result, and an event stream costs ~10% more.
			JSONResponse: true,
			Logger:       s.sdkLog,
			// For 2026-07-28 requests the SDK ties the call to its HTTP
			// request itself; withLifetime does it for older versions.
			PropagateRequestCancellation: true,
		})
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sdk.ServeHTTP(w, r.WithContext(withLifetime(r.Context())))
	})
	if s.cfg.bearerToken != "" {
		h = requireBearer(s.cfg.bearerToken, h)
	}
	return http.NewCrossOriginProtection().Handler(h)
}

// requireBearer answers 401 to requests without "Authorization: Bearer
// token". The comparison takes the same time wherever the tokens differ.
func requireBearer(token string, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			challenge := `Bearer realm="mcp"`
			if ok {
				challenge += `, error="invalid_token"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			http.Error(w, "401 Unauthorized: this MCP server needs an Authorization: Bearer <token> header with its token", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
