package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

// tkConn is one toolkit WebSocket connection (spec §1.2).
type tkConn struct {
	wsSession
	key store.Key
	// ref is the toolkit it serves, zero until its key is bound. Guarded by
	// hub.mu after addConn.
	ref toolkitRef
	// calls in flight on this connection, by request id. Guarded by hub.mu.
	calls map[string]*call
}

func (s *Server) handleToolkitWS(w http.ResponseWriter, r *http.Request) {
	k, ok := s.pathKeyAuth(w, r, store.KindToolkit)
	if !ok {
		return
	}
	// A toolkit is a program, not a page: there is no origin to check, and
	// the key in the path is the credential.
	ws, err := s.upgrader(func(*http.Request) bool { return true }).Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	c := &tkConn{key: k, calls: map[string]*call{}}
	c.init(s, ws)
	c.log = s.log.With("toolkit", k.Toolkit, "owner", k.Owner, "key_id", k.ID, "remote", r.RemoteAddr)
	c.keyID.Store(&k.ID)
	if k.Toolkit != "" {
		c.ref = toolkitRef{k.Owner, k.Toolkit}
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
	defer s.untrack(c)
	if err := s.hub.addConn(c); err != nil {
		c.closeWith(websocket.CloseGoingAway, "server shutting down", err)
		return
	}
	c.start()
	greeting := fmt.Sprintf("connected to the ATP server as toolkit %q", k.Toolkit)
	if k.Toolkit == "" {
		greeting = "connected to the ATP server; register a tool to bind this key to its toolkit"
	}
	c.log.Info("toolkit connected")
	c.sendJSON(map[string]any{"message_type": "atp_client_connected", "payload": map[string]string{"message": greeting}})
	c.readLoop()
}

func (c *tkConn) readLoop() {
	for {
		data, err := c.readMessage()
		if err != nil {
			c.reads.flush()
			code, reason, cause := readErr(err, c.s.cfg.FrameLimit)
			c.closeWith(code, reason, cause)
			return
		}
		c.alive()
		var rep toolReply
		if err := decodeToolReply(data, &rep); err != nil {
			c.log.Warn("toolkit sent a malformed frame; ignored", "err", err)
			continue
		}
		if rep.Type != "tool_response" {
			c.log.Warn("toolkit sent an unknown message type; ignored", "type", rep.Type)
			continue
		}
		if len(rep.RequestID) == 0 {
			c.log.Warn("toolkit sent a tool_response without request_id; ignored")
			continue
		}
		result := rep.Result
		if len(result) == 0 {
			result = json.RawMessage("null")
		}
		id := requestIDString(rep.RequestID)
		if !c.s.hub.completeFrom(c, id, reply{result: result, isError: rep.IsError}) {
			c.s.metrics.lateReplies.Add(1)
			c.log.Info("dropped a reply to a call that is no longer waiting (timed out, or unknown)", "request_id", id)
		}
	}
}

// sendRequest sends an atp_tool_request.
func (c *tkConn) sendRequest(cl *call, via *flusher) {
	c.sendVia(appendToolRequest(make([]byte, 0, 128+len(cl.params)), cl), via)
}
