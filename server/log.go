package server

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// API keys travel in URL paths (the ATP v1 toolkit WebSocket and inbox, the
// LLM WebSocket) and in JSON bodies. The server never logs a body, and every
// path it logs goes through redactPath. As a second line of defence, the
// server's logger scrubs anything shaped like one of our keys from every
// message and string attribute (redactingHandler).

const redacted = "[REDACTED]"

// keyPathPrefixes are the paths whose next segment is an API key.
var keyPathPrefixes = []string{
	"/ws/v1/atp/toolkit-client/",
	"/ws/v1/atp/llm-client/",
	"/api/v1/toolkit/",
	"/api/v1/atp/toolkit-client/", // legacy Python long-poll path
}

// toolkitAPIPaths are the /api/v1/toolkit/ endpoints whose segment after
// the prefix is a name, not a key.
var toolkitAPIPaths = map[string]bool{"verify_hash": true, "verify_tool_hash": true}

// redactPath replaces the API key segment of an ATP path (wherever a prefix
// of the server's sits in front of it, in any letter case) with
// [REDACTED], and then every key-shaped text left. It redacts the key
// position whatever the segment holds, so a malformed or foreign key is
// hidden too. Letter case is ignored throughout: a key sent in capitals is
// not a valid key, but it is still the secret, spelt differently.
func redactPath(p string) string {
	lower := asciiLower(p) // same length as p: only A-Z change
	for _, prefix := range keyPathPrefixes {
		i := strings.Index(lower, prefix)
		if i < 0 {
			continue
		}
		start := i + len(prefix)
		end := strings.IndexByte(p[start:], '/')
		if end < 0 {
			end = len(p) - start
		}
		if seg := lower[start : start+end]; seg == "" || (prefix == "/api/v1/toolkit/" && toolkitAPIPaths[seg]) {
			continue
		}
		return redactKeys(p[:start]) + redacted + redactKeys(p[start+end:])
	}
	return redactKeys(p)
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// keyPattern matches API keys of the format store.CreateKey makes, in any
// letter case.
var keyPattern = regexp.MustCompile(`(?i)atp_(?:tk|llm)_[a-z2-7]+_[a-z2-7]+`)

// redactKeys replaces every substring shaped like one of our API keys, in
// any letter case.
func redactKeys(s string) string {
	if !mayHoldKey(s) {
		return s
	}
	return keyPattern.ReplaceAllString(s, redacted)
}

// mayHoldKey reports whether s holds "atp_" in any letter case: the
// regular expression runs only then, as almost no log text does.
func mayHoldKey(s string) bool {
	for i := strings.IndexByte(s, '_'); i >= 0; {
		if i >= 3 && s[i-3]|0x20 == 'a' && s[i-2]|0x20 == 't' && s[i-1]|0x20 == 'p' {
			return true
		}
		next := strings.IndexByte(s[i+1:], '_')
		if next < 0 {
			return false
		}
		i += next + 1
	}
	return false
}

// redactingHandler scrubs key-shaped text from log records before passing
// them on.
type redactingHandler struct{ next slog.Handler }

func newRedactingHandler(next slog.Handler) slog.Handler {
	if _, ok := next.(*redactingHandler); ok {
		return next
	}
	return &redactingHandler{next: next}
}

func (h *redactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

func (h *redactingHandler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, clip(redactKeys(r.Message), maxLogValue), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *redactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = redactAttr(a)
	}
	return &redactingHandler{next: h.next.WithAttrs(clean)}
}

func (h *redactingHandler) WithGroup(name string) slog.Handler {
	return &redactingHandler{next: h.next.WithGroup(name)}
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, clip(redactKeys(v.String()), maxLogValue))
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = redactAttr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, clip(redactKeys(err.Error()), maxLogValue))
		}
		return slog.String(a.Key, clip(redactKeys(v.String()), maxLogValue))
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// logRequests logs one line per request: method, redacted path, status,
// duration. The query is left out (it is not needed, and a client may put
// anything there) and so is the body. It also bounds the request's I/O:
// reading a body (until a handler knows better, see readBodyFrom) and writing
// the response (Config.WriteTimeout from its first byte), and releases
// what the request held (admitRequest) when it ends.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, writeTimeout: s.cfg.WriteTimeout, hasBody: r.ContentLength != 0}
		if rec.hasBody {
			// Bounds every read of the body, net/http's own included (it
			// discards what a handler left unread).
			http.NewResponseController(w).SetReadDeadline(start.Add(s.cfg.BodyReadTimeout))
		}
		next.ServeHTTP(rec, r)
		for _, release := range rec.onDone {
			release()
		}
		if !rec.hijacked && !rec.armed {
			rec.armWrite() // net/http writes an empty 200 for a handler that wrote nothing
		}
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		if rec.hijacked {
			status = http.StatusSwitchingProtocols
		}
		level := slog.LevelDebug
		if status >= 500 {
			level = slog.LevelWarn
		}
		s.log.Log(r.Context(), level, "http request",
			"method", peerText(r.Method), "path", peerText(redactPath(r.URL.Path)), "status", status,
			"duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

// statusRecorder remembers the status code, and passes through the
// optional interfaces the WebSocket upgrade (Hijacker) and SSE (Flusher)
// need. It is also the request's state for the server: what to release
// when the request ends.
type statusRecorder struct {
	http.ResponseWriter
	status       int
	hijacked     bool
	writeTimeout time.Duration
	armed        bool     // the write deadline is set
	wroteHeader  bool     // WriteHeader has run
	hasBody      bool     // the request has a body
	bodyRead     bool     // a handler read all of it (bodyDone)
	onDone       []func() // run when the handler returns
}

// armWrite sets the response's write deadline, once, as its first byte is
// about to go: net/http keeps a connection's last deadline, so every
// response sets its own.
func (r *statusRecorder) armWrite() {
	if r.armed || r.writeTimeout <= 0 {
		return
	}
	r.armed = true
	http.NewResponseController(r.ResponseWriter).SetWriteDeadline(time.Now().Add(r.writeTimeout))
}

func (r *statusRecorder) WriteHeader(code int) {
	r.armWrite()
	if r.hasBody && !r.bodyRead && code >= 400 && !r.wroteHeader {
		// The body was refused unread: rather than have net/http read and
		// discard it, drop the connection.
		r.Header().Set("Connection", "close")
	}
	r.wroteHeader = true
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.armWrite()
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Flush() { r.FlushError() }

// FlushError is what http.ResponseController.Flush calls: it reports a
// client that is gone.
func (r *statusRecorder) FlushError() error {
	r.armWrite()
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *statusRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the response writer cannot be hijacked")
	}
	c, rw, err := h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	r.hijacked = true
	// Only WebSocket upgrades hijack: hand gorilla a connection whose
	// writes the session can batch (see corkConn), and a small reader of
	// ours to read frames with (gorilla keeps the hijacked one): the
	// connection's bytes wait in a pooled buffer under it (corkConn.Read),
	// which an idle connection gives back. Bytes the client sent early
	// stay where they are: gorilla refuses the upgrade for them.
	cc := newCorkConn(c)
	if rw.Reader.Buffered() == 0 {
		cc.br = bufio.NewReaderSize(cc, frameReaderSize)
		rw = bufio.NewReadWriter(cc.br, rw.Writer)
	}
	return cc, rw, nil
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
