package runtime

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// redactor hides one API key. The ATP v1 protocol puts the key in URL paths
// (the WebSocket and inbox URLs), so any text that may quote a URL — an error
// from net/http or gorilla, a server's error body, a log line — passes
// through it before it leaves Serve.
type redactor struct {
	// forms are the spellings of the key that can appear in text: raw, path-
	// and query-escaped, and JSON-escaped. Longest first, so that a longer
	// escaped form is replaced whole before a shorter one could split it.
	forms []string
}

func newRedactor(key string) redactor {
	var forms []string
	add := func(f string) {
		if f == "" {
			return
		}
		for _, g := range forms {
			if g == f {
				return
			}
		}
		forms = append(forms, f)
	}
	quoted, _ := json.Marshal(key)
	add(strings.Trim(string(quoted), `"`))
	add(url.PathEscape(key))
	add(url.QueryEscape(key))
	add(key)
	for i := 1; i < len(forms); i++ {
		for j := i; j > 0 && len(forms[j]) > len(forms[j-1]); j-- {
			forms[j], forms[j-1] = forms[j-1], forms[j]
		}
	}
	return redactor{forms: forms}
}

// leaks reports whether s holds the key in any spelling.
func (r redactor) leaks(s string) bool {
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			return true
		}
	}
	return false
}

// str returns s with every spelling of the key replaced by [REDACTED].
func (r redactor) str(s string) string {
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, redacted)
		}
	}
	return s
}

// err returns err unchanged when its message does not hold the key, and
// otherwise an error with the redacted message whose chain holds the
// redacted causes: errors.Is still finds sentinels such as
// context.DeadlineExceeded, but no error reachable from the result prints
// the key. (errors.As for the concrete type that held the key, typically
// *url.Error, no longer matches: that type is what carried the secret.)
func (r redactor) err(err error) error {
	if err == nil || !r.leaks(err.Error()) {
		return err
	}
	re := &redactedError{msg: r.str(err.Error())}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		if inner := u.Unwrap(); inner != nil {
			re.causes = []error{r.err(inner)}
		}
	case interface{ Unwrap() []error }:
		for _, inner := range u.Unwrap() {
			re.causes = append(re.causes, r.err(inner))
		}
	}
	return re
}

type redactedError struct {
	msg    string
	causes []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.causes }

// redactHandler is a slog.Handler that scrubs the key from a record's
// message and attributes. Serve's own code never logs the key, and never
// logs a URL or error unredacted; this handler is the second line of
// defence, for texts Serve does not control (error strings of the standard
// library and gorilla, close reasons sent by the server).
type redactHandler struct {
	inner slog.Handler
	r     redactor
}

func (h redactHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.inner.Enabled(ctx, l)
}

func (h redactHandler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.str(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h redactHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		clean[i] = h.attr(a)
	}
	return redactHandler{inner: h.inner.WithAttrs(clean), r: h.r}
}

func (h redactHandler) WithGroup(name string) slog.Handler {
	return redactHandler{inner: h.inner.WithGroup(name), r: h.r}
}

func (h redactHandler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		if h.r.leaks(v.String()) {
			return slog.String(a.Key, h.r.str(v.String()))
		}
	case slog.KindGroup:
		group := v.Group()
		clean := make([]any, len(group))
		for i, g := range group {
			clean[i] = h.attr(g)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		// Errors and Stringers are printed by the inner handler through
		// their methods; print them here instead so the text can be checked.
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, h.r.str(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, h.r.str(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

// redactedLogger returns l with its handler wrapped by redactHandler.
func redactedLogger(l *slog.Logger, r redactor) *slog.Logger {
	return slog.New(redactHandler{inner: l.Handler(), r: r})
}
