package mcp

import (
	"context"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	mcpserver "github.com/mark3labs/mcp-go/server"
)

// HTTPHandler returns an http.Handler serving the tools over MCP streamable
// HTTP, stateless: every POST is answered on its own, with no session to
// keep, expire or lose (the sessionless direction of protocol 2026-07-28,
// which it also serves). Tools need nothing that only a session gives
// (server-to-client requests, a standalone event stream), so GET and DELETE
// are answered 405; a host re-reads tools/list when it wants the current
// list, as no list-change notification can reach it. Mount it at the path
// hosts are given, e.g. mux.Handle("/mcp", srv.HTTPHandler()); it answers
// on any path it gets.
//
// An answer is one application/json body, except for a call whose host
// asked for progress (a progressToken) and got a report: that answer is an
// event stream carrying the notifications/progress messages, then the
// result.
//
// Cancellation: a call's context is cancelled when its HTTP request ends
// (the host gave up or disconnected), since its result can no longer be
// delivered. A notifications/cancelled message arrives on another request
// and so cannot reach a call here; hosts also drop the HTTP request when
// they cancel, which is what cancels the call.
//
// Protection, in order: cross-origin browser requests are refused (403,
// http.CrossOriginProtection), so a web page cannot drive local tools; with
// WithBearerToken, requests without the token get 401; bodies larger than
// WithMaxBodyBytes (4 MiB) get 413; a request that reaches a loopback
// address with a non-loopback Host header is refused (403, DNS-rebinding
// protection). Listening beyond loopback without WithBearerToken exposes
// the tools to the network: the CLI should refuse or warn.
func (s *Server) HTTPHandler() http.Handler {
	streamable := mcpserver.NewStreamableHTTPServer(s.mcp,
		mcpserver.WithStateLess(true),
		mcpserver.WithStreamableHTTPLogger(s.libraryLogger()))
	limit := s.cfg.maxBodyBytes
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodPost:
		case http.MethodGet, http.MethodDelete:
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "405 Method Not Allowed: this MCP server is stateless; send each JSON-RPC message in a POST", http.StatusMethodNotAllowed)
			return
		default:
			w.Header().Set("Allow", http.MethodPost)
			http.Error(w, "405 Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		if r.ContentLength > limit {
			http.Error(w, fmt.Sprintf("413 Request Entity Too Large: the body is %d bytes; this server takes at most %d", r.ContentLength, limit), http.StatusRequestEntityTooLarge)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		if _, ok := w.(http.Flusher); !ok {
			streamable.ServeHTTP(w, r)
			return
		}
		fw := &flushWatcher{ResponseWriter: w, flushed: make(chan struct{})}
		streamable.ServeHTTP(fw, r.WithContext(context.WithValue(r.Context(), flushWatcherKey{}, fw)))
	})
	if s.cfg.bearerToken != "" {
		h = requireBearer(s.cfg.bearerToken, h)
	}
	return http.NewCrossOriginProtection().Handler(h)
}

// flushWatcher counts the flushes of a response, each of which ends one
// event mcp-go wrote on the response's stream. A call that sent progress
// notifications waits, before it answers, until they are out: mcp-go's
// streamable HTTP (v1.2.1) writes a notification from another goroutine and
// drops it when the answer closes the request first.
type flushWatcher struct {
	http.ResponseWriter
	mu      sync.Mutex
	sent    int           // notifications handed to mcp-go
	written int           // flushes seen
	flushed chan struct{} // closed and replaced at each flush
}

type flushWatcherKey struct{}

func (f *flushWatcher) Flush() {
	f.ResponseWriter.(http.Flusher).Flush()
	f.mu.Lock()
	f.written++
	close(f.flushed)
	f.flushed = make(chan struct{})
	f.mu.Unlock()
}

func (f *flushWatcher) Unwrap() http.ResponseWriter { return f.ResponseWriter }

// expect records one notification handed to mcp-go.
func (f *flushWatcher) expect() {
	f.mu.Lock()
	f.sent++
	f.mu.Unlock()
}

// wait returns when every notification handed over was flushed, ctx ended,
// or a second passed (a bound against a library change, never reached
// while mcp-go writes them).
func (f *flushWatcher) wait(ctx context.Context) {
	timeout := time.NewTimer(time.Second)
	defer timeout.Stop()
	for {
		f.mu.Lock()
		done, next := f.written >= f.sent, f.flushed
		f.mu.Unlock()
		if done {
			return
		}
		select {
		case <-next:
		case <-ctx.Done():
			return
		case <-timeout.C:
			return
		}
	}
}

// libraryLogger gets mcp-go's own messages: only its warnings and errors
// pass, as it logs routine events at Info.
func (s *Server) libraryLogger() *slog.Logger {
	return slog.New(minLevelHandler{s.cfg.logger.Handler(), slog.LevelWarn}).With("toolkit", s.caller.tk.Name(), "transport", "mcp")
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

// minLevelHandler drops records below min.
type minLevelHandler struct {
	slog.Handler
	min slog.Level
}

func (h minLevelHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevelHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevelHandler{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevelHandler) WithGroup(name string) slog.Handler {
	return minLevelHandler{h.Handler.WithGroup(name), h.min}
}
