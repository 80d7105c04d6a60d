package server

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atpgo/atp/server/store"
)

// Limits on what peers can make the server hold. Each is a Config field;
// hitting one is answered at once with an error that names it.

// gate is a counting semaphore that never waits: a caller past its
// capacity is refused.
type gate struct{ slots chan struct{} }

func newGate(n int) *gate { return &gate{slots: make(chan struct{}, n)} }

// acquire takes a slot, returning its release (safe to call more than
// once), or false when none is free.
func (g *gate) acquire() (release func(), ok bool) {
	select {
	case g.slots <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-g.slots }) }, true
	default:
		return nil, false
	}
}

func (g *gate) inUse() int { return len(g.slots) }

// keyCounts counts what each key holds open (WebSockets, or HTTP requests
// in progress) against a per-key cap.
type keyCounts struct {
	mu sync.Mutex
	n  map[string]int
}

func newKeyCounts() *keyCounts { return &keyCounts{n: map[string]int{}} }

// acquire counts one more for id unless it has max already.
func (c *keyCounts) acquire(id string, max int) (release func(), ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[id] >= max {
		return nil, false
	}
	c.n[id]++
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			if c.n[id]--; c.n[id] <= 0 {
				delete(c.n, id)
			}
			c.mu.Unlock()
		})
	}, true
}

func (c *keyCounts) count(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[id]
}

// admitRequest counts an authenticated HTTP request against its key's
// Config.MaxRequestsPerKey until the request ends. Past it, it answers 429
// and returns false.
func (s *Server) admitRequest(w http.ResponseWriter, k store.Key) bool {
	rec, ok := w.(*statusRecorder)
	if !ok {
		return true // not served through Handler: nothing would release it
	}
	release, ok := s.keyRequests.acquire(k.ID, s.cfg.MaxRequestsPerKey)
	if !ok {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("this key has %d requests in progress, its limit (--max-requests-per-key): wait for one to end", s.cfg.MaxRequestsPerKey))
		return false
	}
	rec.onDone = append(rec.onDone, release)
	return true
}

// admitWS counts a WebSocket about to open against its key's
// Config.MaxConnsPerKey. Past it, it answers 429 (before the upgrade) and
// returns false.
func (s *Server) admitWS(w http.ResponseWriter, k store.Key) (release func(), ok bool) {
	release, ok = s.keyConns.acquire(k.ID, s.cfg.MaxConnsPerKey)
	if !ok {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusTooManyRequests, fmt.Sprintf("this key has %d WebSocket connections open, its limit (--max-conns-per-key): close one first", s.cfg.MaxConnsPerKey))
	}
	return release, ok
}

// keyBudget is what one LLM key's calls hold while they wait for their
// answers: their number and their params' bytes. Budgets are made on a
// key's first call and kept: there is one per LLM key that ever called.
type keyBudget struct {
	calls atomic.Int64
	bytes atomic.Int64
}

func (s *Server) budget(keyID string) *keyBudget {
	if b, ok := s.budgets.Load(keyID); ok {
		return b.(*keyBudget)
	}
	b, _ := s.budgets.LoadOrStore(keyID, new(keyBudget))
	return b.(*keyBudget)
}

// take counts one call of size bytes, or says which limit it would pass.
func (s *Server) take(b *keyBudget, size int) error {
	if n := b.calls.Add(1); n > int64(s.cfg.MaxPendingPerLLMKey) {
		b.calls.Add(-1)
		return fmt.Errorf("this LLM key has %d calls waiting for their answers, its limit (--max-pending-per-llm-key): wait for some to end", s.cfg.MaxPendingPerLLMKey)
	}
	if n := b.bytes.Add(int64(size)); n > s.cfg.MaxPendingBytesPerLLMKey {
		b.bytes.Add(-int64(size))
		b.calls.Add(-1)
		return fmt.Errorf("this LLM key's calls waiting for their answers hold %d bytes of params, and this call's %d would pass its limit of %d (--max-pending-bytes-per-llm-key)",
			n-int64(size), size, s.cfg.MaxPendingBytesPerLLMKey)
	}
	return nil
}

func (b *keyBudget) give(size int) {
	b.bytes.Add(-int64(size))
	b.calls.Add(-1)
}

// limitListener caps the connections open at once. A connection past the
// cap is answered 503 and closed; the Accept loop never waits for it.
type limitListener struct {
	net.Listener
	max  int
	open atomic.Int64
	// refusing bounds the refusals in progress: past it a connection is
	// closed without an answer.
	refusing *gate
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: max, refusing: newGate(64)}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= int64(l.max) {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		if release, ok := l.refusing.acquire(); ok {
			go func() { defer release(); refuseConn(c, l.max) }()
		} else {
			c.Close()
		}
	}
}

// refuseConn answers 503 to a connection that has sent nothing yet (every
// HTTP client reads the response to the request it is sending), then
// closes it the way net/http does: its side first, then, after a moment to
// let the request arrive, the socket, so that the unread request does not
// turn the close into a reset that loses the answer.
func refuseConn(c net.Conn, max int) {
	body := fmt.Sprintf(`{"error":"the server has %d connections open, its limit (--max-connections): retry shortly"}`+"\n", max)
	c.SetDeadline(time.Now().Add(500 * time.Millisecond))
	c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body))
	if tc, ok := c.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}
	c.Close()
}

func (l *limitListener) openConns() int { return int(l.open.Load()) }

// limitedConn gives its slot back when closed, once.
type limitedConn struct {
	net.Conn
	l      *limitListener
	closed atomic.Bool
}

func (c *limitedConn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.l.open.Add(-1)
	}
	return c.Conn.Close()
}

// checkLimits refuses a limit set below what the server can work with
// (after setDefaults: zero means the default).
func (c *Config) checkLimits() error {
	ints := []struct {
		name string
		v    int64
		min  int64
	}{
		{"MaxConnections", int64(c.MaxConnections), 1},
		{"MaxHeaderBytes", int64(c.MaxHeaderBytes), 1024},
		{"UnauthBodyLimit", c.UnauthBodyLimit, 256},
		{"MaxUnauthRequests", int64(c.MaxUnauthRequests), 1},
		{"MaxConnsPerKey", int64(c.MaxConnsPerKey), 1},
		{"MaxRequestsPerKey", int64(c.MaxRequestsPerKey), 1},
		{"MaxPendingPerToolkit", int64(c.MaxPendingPerToolkit), 1},
		{"MaxPendingPerLLMKey", int64(c.MaxPendingPerLLMKey), 1},
		{"MaxPendingBytesPerLLMKey", c.MaxPendingBytesPerLLMKey, 1024},
		{"MaxWriteQueueBytes", c.MaxWriteQueueBytes, 4096},
		{"MaxToolsPerToolkit", int64(c.MaxToolsPerToolkit), 1},
		{"MaxPeerWarnings", int64(c.MaxPeerWarnings), 1},
		{"PlatoolsRegistersPerMinute", int64(c.PlatoolsRegistersPerMinute), 1},
		{"PlatoolsMaxResultBytes", int64(c.PlatoolsMaxResultBytes), 4096},
	}
	for _, l := range ints {
		if l.v < l.min {
			return fmt.Errorf("server: %s: expected at least %d, or 0 for the default, got %d", l.name, l.min, l.v)
		}
	}
	durations := []struct {
		name string
		v    time.Duration
	}{
		{"ReadHeaderTimeout", c.ReadHeaderTimeout}, {"BodyReadTimeout", c.BodyReadTimeout},
		{"WriteTimeout", c.WriteTimeout}, {"IdleTimeout", c.IdleTimeout},
		{"UnauthReadTimeout", c.UnauthReadTimeout}, {"PongTimeout", c.PongTimeout},
		{"RevocationCheckInterval", c.RevocationCheckInterval},
		// A routed call always ends: the LLM client is waiting for it.
		{"CallTimeout", c.CallTimeout}, {"MaxCallTimeout", c.MaxCallTimeout},
	}
	for _, d := range durations {
		if d.v <= 0 {
			return fmt.Errorf("server: %s: expected a positive duration, or 0 for the default, got %s", d.name, d.v)
		}
	}
	return nil
}

// toolkitFull answers 409 when registering tool would give the toolkit more
// than Config.MaxToolsPerToolkit tools. Replacing a tool it has is always
// allowed. Registrations racing for the last places may pass the cap by
// as many as race; the cap bounds the work each call and each
// get_toolkit_context does, which a few more do not change.
func (s *Server) toolkitFull(w http.ResponseWriter, ref toolkitRef, tool string) bool {
	k := s.registry.get(ref)
	if k == nil || k.tool(tool) != nil || k.size() < s.cfg.MaxToolsPerToolkit {
		return false
	}
	writeError(w, http.StatusConflict, fmt.Sprintf("register_tool: toolkit %q has %d tools, its limit (--max-tools-per-toolkit): tool %q was not added",
		ref.Name, k.size(), tool))
	return true
}

// CloseWrite passes net/http's half-close through (it sends the FIN of a
// response with "Connection: close" before closing the socket).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// Defaults returns a Config with every field that has a default set to it:
// what New uses for a zero field. atp serve shows these in its flags' help.
func Defaults() Config {
	var c Config
	c.setDefaults()
	c.Logger = nil
	return c
}
