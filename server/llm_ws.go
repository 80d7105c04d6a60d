package server

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

// maxLLMInFlight bounds the calls one LLM connection has running at once;
// past it the server stops reading the connection until one finishes.
const maxLLMInFlight = 256

// authWait is how long an LLM connection may take to authenticate (the
// Python client itself gives up after 10 s).
const authWait = 10 * time.Second

// llmConn is one LLM-client WebSocket connection (docs/protocol.md §2.1).
type llmConn struct {
	wsSession
	apiKey string    // the key the connection was opened with
	key    store.Key // valid once authed
	authed bool      // only the read loop touches it
	ctx    context.Context
	cancel context.CancelFunc
	slots  chan struct{} // one per call in flight
	budget *keyBudget    // the key's pending calls (Config.MaxPendingPerLLMKey); set once authed
	// unauthSlot gives back the unauthenticated slot of a connection whose
	// key was not valid at the handshake, once it authenticates.
	unauthSlot func()

	mu    sync.Mutex
	calls taskList // the calls in flight
	ended bool     // no more calls: the connection closed
}

// taskList is the calls in flight of an LLM connection.
type taskList = linkedList[task, *task]

func (t *task) listLinks() *links[task] { return &t.onConn }

// checkOrigin accepts a request without Origin (programs), from the
// server's own host, or from Config.AllowedOrigins. Browsers send Origin,
// so a page on another site cannot drive an LLM key through a user's
// browser.
func (s *Server) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, a := range s.cfg.AllowedOrigins {
		if a == "*" || strings.EqualFold(strings.TrimRight(a, "/"), origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

func (s *Server) handleLLMWS(w http.ResponseWriter, r *http.Request) {
	apiKey, err := pickKey(r.PathValue("key"), bearer(r, "Bearer", "ApiKey"))
	if err != nil {
		writeAuthError(w, err)
		return
	}
	// A valid key in the path (or header) authenticates the connection at
	// once; the Python client's auth message is then only confirmed. A bad
	// one is reported in answer to that message, as the client expects, so
	// the connection opens anyway, but as one of the server's few
	// unauthenticated ones, with small messages and a short life.
	k, authErr := s.authenticate(r.Context(), apiKey, store.KindLLM)
	var release func()
	var ok bool
	if authErr == nil {
		release, ok = s.admitWS(w, k)
	} else if release, ok = s.unauth.acquire(); !ok {
		writeBusy(w, fmt.Sprintf("the server has %d connections and requests that have not authenticated yet, its limit (--max-unauth-requests): retry shortly", s.cfg.MaxUnauthRequests))
	}
	if !ok {
		return
	}
	ws, err := s.upgrader(s.checkOrigin).Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader has answered (403 for a bad origin)
	}
	c := &llmConn{apiKey: apiKey, slots: make(chan struct{}, maxLLMInFlight)}
	c.init(s, ws)
	c.peer = "llm"
	c.ctx, c.cancel = context.WithCancel(context.WithoutCancel(r.Context()))
	c.holds(release)
	limit := s.cfg.FrameLimit
	if authErr == nil {
		c.key, c.authed = k, true
		c.keyID.Store(&k.ID)
		c.budget = s.budget(k.ID)
		c.log = s.log.With("remote", r.RemoteAddr, "owner", k.Owner, "key_id", k.ID)
	} else {
		c.log = s.log.With("remote", r.RemoteAddr)
		c.unauthSlot = release
		limit = s.cfg.UnauthBodyLimit
		// Until it authenticates, the connection lives authWait at most,
		// whatever pings it sends.
		c.standingDeadline = time.Now().Add(authWait)
		c.ws.SetReadDeadline(c.standingDeadline)
	}
	c.warns = s.newPeerWarnings(c.log)
	c.onClose = func(cause error) {
		c.cancel()
		c.abandonCalls()
		s.hub.addLLM(-1)
		c.log.Debug("LLM client disconnected", "cause", cause)
	}
	s.hub.addLLM(1)
	if !s.track(c) {
		c.shutdown()
		return
	}
	defer s.untrack(c)
	if s.revokedOnAuth(c) {
		return
	}
	c.start(limit)
	c.readLoop()
}

func (c *llmConn) readLoop() {
	for {
		data, err := c.readMessage()
		if err != nil {
			c.reads.flush()
			code, reason, cause := readErr(err, c.s.cfg.FrameLimit)
			c.closeWith(code, reason, cause)
			return
		}
		c.alive()
		m := llmMessages.Get().(*llmMessage)
		more := c.handle(data, m)
		*m = llmMessage{texts: m.texts} // it holds views of data; its buffers stay
		llmMessages.Put(m)
		if !more {
			return
		}
	}
}

// llmMessages recycles the read loops' decoded messages: one holds views
// of its frame (decodeLLMMessage), which keeps it on the heap.
var llmMessages = sync.Pool{New: func() any { return new(llmMessage) }}

// handle answers one message; false when the connection is closed.
func (c *llmConn) handle(data []byte, m *llmMessage) bool {
	via := c.readFlusher()
	if err := decodeLLMMessage(data, m); err != nil {
		c.sendJSONVia(errorFrame{Type: "error", Error: err.Error()}, via)
		return true
	}
	if m.Type == "auth" || !c.authed {
		return c.auth(m)
	}
	if m.APIKey != "" && subtle.ConstantTimeCompare([]byte(m.APIKey), []byte(c.apiKey)) != 1 {
		c.sendJSONVia(errorFrame{Type: "error", RequestID: m.RequestID, Error: "api_key: differs from the key this connection authenticated with"}, via)
		return true
	}
	if m.Type != "task_request" {
		reply, _ := c.s.llmReply(c.key, m)
		c.sendJSONVia(reply, via)
		return true
	}
	// Calls run concurrently and nothing waits for them here: the call's
	// end (on the toolkit's goroutine, or a timer) writes the answer.
	select {
	case c.slots <- struct{}{}:
	default:
		// Full: the calls that free slots may be among those this loop has
		// yet to flush.
		c.reads.flush()
		select {
		case c.slots <- struct{}{}:
		case <-c.closed:
			return false
		}
	}
	t := c.s.newTask(c.key, m, c)
	if !c.trackCall(t) {
		return false
	}
	c.s.startTask(c.ctx, c.key, m, via, t)
	return true
}

// taskDone writes the answer of a call of this connection (taskWaiter).
func (c *llmConn) taskDone(t *task, resp []byte, via *flusher) {
	c.mu.Lock()
	c.calls.remove(t)
	c.mu.Unlock()
	<-c.slots
	c.sendVia(resp, via)
}

// trackCall registers a call about to start; false once the connection is
// closed.
func (c *llmConn) trackCall(t *task) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return false
	}
	c.calls.add(t)
	return true
}

// abandonCalls takes back the calls of a closed connection: nobody is left
// to read their answers.
func (c *llmConn) abandonCalls() {
	c.mu.Lock()
	c.ended = true
	calls := c.calls.takeAll()
	c.mu.Unlock()
	for _, t := range calls {
		t.cancel()
	}
}

// auth answers the auth handshake. A message other than auth before a
// successful one fails the handshake too. It returns false when the
// connection has been closed.
func (c *llmConn) auth(m *llmMessage) bool {
	failed := func(msg string) bool {
		c.sendJSON(map[string]any{"type": "auth_response", "success": false, "error": msg})
		c.closeWith(websocket.ClosePolicyViolation, "authentication failed", errors.New(msg))
		return false
	}
	if m.Type != "auth" {
		// Only a connection whose URL key failed gets here: say why.
		reason := "not authenticated"
		if _, err := c.s.authenticate(c.ctx, c.apiKey, store.KindLLM); err != nil {
			reason = err.Error()
		}
		return failed(fmt.Sprintf(`%s: a %q message came before a successful {"type":"auth"}`, reason, m.Type))
	}
	apiKey := m.APIKey
	if apiKey == "" {
		apiKey = c.apiKey
	}
	if subtle.ConstantTimeCompare([]byte(apiKey), []byte(c.apiKey)) != 1 {
		return failed("the api_key of the auth message differs from the key in the URL")
	}
	k, err := c.s.authenticate(c.ctx, apiKey, store.KindLLM)
	if err != nil {
		return failed(err.Error())
	}
	if !c.authed {
		// The key was not valid when the connection opened (a database
		// hiccup): it is now. It counts as the key's connection from now on.
		release, ok := c.s.keyConns.acquire(k.ID, c.s.cfg.MaxConnsPerKey)
		if !ok {
			return failed(fmt.Sprintf("this key has %d WebSocket connections open, its limit (--max-conns-per-key): close one first", c.s.cfg.MaxConnsPerKey))
		}
		c.holds(release)
		c.unauthSlot()
		c.key, c.authed = k, true
		c.keyID.Store(&k.ID)
		c.budget = c.s.budget(k.ID)
		c.standingDeadline = time.Time{}
		c.ws.SetReadDeadline(c.standingDeadline)
		c.setReadLimit(c.s.cfg.FrameLimit)
		if c.s.revokedOnAuth(c) {
			return false
		}
	}
	c.sendJSON(map[string]any{"type": "auth_response", "success": true})
	return true
}
