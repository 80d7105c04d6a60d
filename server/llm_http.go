package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/atpgo/atp/server/store"
)

// handleProcess serves POST /api/v1/atp/llm-client/process/ (docs/protocol.md §2.2):
// the WebSocket's get_toolkit_context and task_request as one request each,
// answered with the message the WebSocket would send, or as server-sent
// events with Accept: text/event-stream.
func (s *Server) handleProcess(w http.ResponseWriter, r *http.Request) {
	var m llmMessage
	// The Python client sends "Authorization: ApiKey <key>" and the key in
	// the body; older clients sent Bearer, or the body alone.
	key, ok := s.keyedBody(w, r, store.KindLLM, llmSchemes, func(b []byte) error { return decodeLLMMessage(b, &m) },
		func() string { return m.APIKey })
	if !ok {
		return
	}
	status := http.StatusOK
	var body []byte
	var err error
	if m.Type == "task_request" {
		// A failed call is a TASK_RESPONSE with status "error", sent with
		// 200: the request itself was fine.
		if body = s.runTask(r.Context(), key, &m); body == nil {
			return // the client went away
		}
	} else {
		var reply any
		reply, status = s.llmReply(key, &m)
		if body, err = json.Marshal(reply); err != nil {
			writeError(w, http.StatusInternalServerError, "internal error encoding the reply")
			return
		}
	}
	if strings.Contains(r.Header.Get("Accept"), "text/event-stream") {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Cache-Control", "no-cache")
		w.WriteHeader(status)
		w.Write([]byte("data: "))
		w.Write(body)
		w.Write([]byte("\n\n"))
		http.NewResponseController(w).Flush()
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
