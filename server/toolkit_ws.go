package server

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

// tkConn is one toolkit WebSocket connection (docs/protocol.md §1.2).
type tkConn struct {
	wsSession
	key store.Key
	// ref is the toolkit it serves, zero until its key is bound. Guarded by
	// hub.mu after addConn.
	ref toolkitRef
	// calls in flight on this connection. Guarded by hub.mu.
	calls callList
	// pt is the state of a Platools SDK connection (platools.go), nil for
	// an ATP v1 one.
	pt *ptConn
	// draining: the toolkit said it is shutting down (hub.drainConn).
	// Guarded by hub.mu.
	draining bool

	// The poller the connection parks on while idle (wspoll_linux.go),
	// nil when it has none; raw is its socket, pollID its name there.
	poll   *poller
	raw    syscall.RawConn
	pollID uint64
	// lingerUntil is the linger wait's deadline (lingerRead), since born,
	// while it is on the socket.
	lingerUntil time.Duration
}

func (s *Server) handleToolkitWS(w http.ResponseWriter, r *http.Request) {
	k, ok := s.pathKeyAuth(w, r, store.KindToolkit)
	if !ok {
		return
	}
	release, ok := s.admitWS(w, k)
	if !ok {
		return
	}
	// A toolkit is a program, not a page: there is no origin to check, and
	// the key in the path is the credential.
	ws, err := s.upgrader(func(*http.Request) bool { return true }).Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader has answered
	}
	c := &tkConn{key: k}
	c.init(s, ws)
	c.peer = "toolkit"
	c.holds(release)
	c.log = s.log.With("toolkit", k.Toolkit, "owner", k.Owner, "key_id", k.ID, "remote", r.RemoteAddr)
	c.warns = s.newPeerWarnings(c.log)
	c.keyID.Store(&k.ID)
	if k.Toolkit != "" {
		c.ref = toolkitRef{k.Owner, k.Toolkit}
	}
	c.answersPings = func() bool {
		// Our runtime registers as Go and answers pings from a read loop
		// that never runs a tool; the Python SDK runs tools on its reading
		// thread.
		kit := s.registry.get(s.hub.refOf(c))
		return kit != nil && strings.EqualFold(kit.language, "Go")
	}
	c.onClose = func(cause error) {
		calls := s.hub.removeConn(c)
		if len(calls) > 0 {
			fail(calls, fmt.Sprintf("the toolkit's connection closed while the call was in flight (%v)", cause), reasonDisconnected)
		}
		c.log.Info("toolkit disconnected", "cause", cause, "failed_calls", len(calls))
	}
	if !s.track(c) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down", errShutdown)
		return
	}
	// The session may outlive this handler (serveReads): it is untracked
	// when it closes.
	c.holds(func() { s.untrack(c) })
	if s.revokedOnAuth(c) {
		return
	}
	greeting := fmt.Sprintf("connected to the ATP server as toolkit %q", k.Toolkit)
	if k.Toolkit == "" {
		greeting = "connected to the ATP server; register a tool to bind this key to its toolkit"
	}
	// The greeting is what tells the toolkit it is connected, so it goes
	// out only once calls can be routed here, and before any of them: it
	// is queued first, with the outbox held, and the hold is let go once
	// the connection is in the hub. A call routed in between queues behind
	// it.
	c.out.hold(encodeGreeting(greeting))
	if err := s.hub.addConn(c); err != nil {
		c.closeWith(websocket.CloseGoingAway, err.Error(), err)
		return
	}
	c.start(s.cfg.FrameLimit)
	c.log.Info("toolkit connected")
	c.unhold()
	c.serveReads()
}

func encodeGreeting(msg string) []byte {
	b, _ := json.Marshal(map[string]any{"message_type": "atp_client_connected", "payload": map[string]string{"message": msg}})
	return b
}

// readLoop reads and handles messages until the connection ends.
func (c *tkConn) readLoop() {
	for c.readOne() {
	}
}

// toolReplies recycles the read loops' decoded replies: one holds views of
// its frame (decodeToolReply), which keeps it on the heap.
var toolReplies = sync.Pool{New: func() any { return new(toolReply) }}

// readOne reads and handles the next message; false once the connection
// has ended.
func (c *tkConn) readOne() bool {
	data, err := c.readMessage()
	if err != nil {
		c.reads.flush()
		code, reason, cause := readErr(err, c.s.cfg.FrameLimit)
		c.closeWith(code, reason, cause)
		return false
	}
	c.alive()
	// A result goes out in text frames and JSON replies: invalid UTF-8
	// from the toolkit becomes U+FFFD here, once.
	rep := toolReplies.Get().(*toolReply)
	c.handle(validUTF8(data), rep)
	*rep = toolReply{} // it holds views of data
	toolReplies.Put(rep)
	return true
}

// handle takes one frame of the toolkit, UTF-8.
func (c *tkConn) handle(data []byte, rep *toolReply) {
	if err := decodeValidToolReply(data, rep); err != nil {
		c.malformed(rep, err)
		return
	}
	switch {
	case rep.Type == "draining":
		// The toolkit is shutting down (docs/extensions.md): it answers
		// the calls it has, and refuses new ones.
		c.s.hub.drainConn(c)
		c.log.Info("toolkit draining: no new calls are routed to this connection")
		return
	case rep.Type != "tool_response":
		c.warns.warn(slog.LevelWarn, "toolkit sent an unknown message type; ignored", "type", peerText(rep.Type))
		return
	case len(rep.RequestID) == 0:
		c.warns.warn(slog.LevelWarn, "toolkit sent a tool_response without request_id; ignored")
		return
	}
	result := rep.Result
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	id := requestIDKey(rep.RequestID)
	if !c.s.hub.completeFrom(c, id, reply{result: result, isError: rep.IsError}) {
		c.s.metrics.lateReplies.Add(1)
		c.warns.warn(slog.LevelInfo, "dropped a reply to a call that is no longer waiting (timed out, or unknown)", "request_id", peerText(string(id)))
	}
}

// malformed handles a frame that does not decode. When it names a call of
// this toolkit, the call fails now, saying why, rather than at its
// timeout; otherwise the frame is only logged.
func (c *tkConn) malformed(rep *toolReply, err error) {
	if rep.Type == "tool_response" && len(rep.RequestID) > 0 {
		id := requestIDString(rep.RequestID)
		msg := fmt.Sprintf("the toolkit's reply could not be read: %s", peerText(err.Error()))
		if c.s.hub.completeFrom(c, []byte(id), reply{failure: msg, reason: reasonToolError}) {
			c.warns.warn(slog.LevelWarn, "toolkit sent a malformed reply; its call failed", "request_id", peerText(id), "err", peerErr(err))
			return
		}
	}
	c.warns.warn(slog.LevelWarn, "toolkit sent a malformed frame; ignored", "err", peerErr(err))
}

// sendRequest sends an atp_tool_request.
func (c *tkConn) sendRequest(cl *call, via *flusher) {
	if c.pt != nil {
		c.sendToolCall(cl, via)
		return
	}
	c.sendVia(appendToolRequest(newFrame(128+len(cl.params)), cl), via)
}
