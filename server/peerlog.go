package server

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/time/rate"
)

// A peer must not be able to grow the server's log faster than it grows
// its own traffic: every logged value that came from a peer (a message
// type, a request id, a tool or toolkit name, an error quoting its text)
// goes through peerText, and the warnings one connection causes are
// rate-limited (peerWarnings), as are those requests without a key cause,
// together (Server.anonWarns). The logger's handler caps every other value
// too (maxLogValue), in case a call site forgot.

// maxPeerText is how much of a peer's text a log line keeps.
const maxPeerText = 128

// maxLogValue caps any string in a log record: a backstop for values that
// did not go through peerText.
const maxLogValue = 1024

// peerText returns s cut to maxPeerText bytes (at a character boundary),
// with its original length when it was cut.
func peerText(s string) string { return clip(s, maxPeerText) }

// peerErr is peerText of an error's message, "" for nil.
func peerErr(err error) string {
	if err == nil {
		return ""
	}
	return peerText(err.Error())
}

func clip(s string, max int) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s…(%d bytes)", s[:cut], len(s))
}

// peerWarnings rate-limits the warnings about one connection: a token
// bucket of Config.MaxPeerWarnings per minute (burst as many). What it
// holds back is counted and reported in one line before the next warning
// it lets through, and when the connection ends (flush).
type peerWarnings struct {
	log *slog.Logger
	now func() time.Time

	mu         sync.Mutex
	limiter    *rate.Limiter
	suppressed int
}

func (s *Server) newPeerWarnings(log *slog.Logger) *peerWarnings {
	n := s.cfg.MaxPeerWarnings
	return &peerWarnings{log: log, now: s.now, limiter: rate.NewLimiter(rate.Every(time.Minute/time.Duration(n)), n)}
}

// warn logs at level unless the connection has used up its warnings.
func (p *peerWarnings) warn(level slog.Level, msg string, args ...any) {
	if !p.log.Enabled(context.Background(), level) {
		return
	}
	p.mu.Lock()
	if !p.limiter.AllowN(p.now(), 1) {
		p.suppressed++
		p.mu.Unlock()
		return
	}
	n := p.suppressed
	p.suppressed = 0
	p.mu.Unlock()
	if n > 0 {
		p.log.Warn(fmt.Sprintf("%d similar warnings suppressed", n), "limit_per_minute", p.limiter.Burst())
	}
	p.log.Log(context.Background(), level, msg, args...)
}

// flush reports the warnings still held back, at the end of the connection.
func (p *peerWarnings) flush() {
	p.mu.Lock()
	n := p.suppressed
	p.suppressed = 0
	p.mu.Unlock()
	if n > 0 {
		p.log.Warn(fmt.Sprintf("%d similar warnings suppressed", n), "limit_per_minute", p.limiter.Burst())
	}
}
