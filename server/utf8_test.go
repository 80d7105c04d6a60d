package server

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// A toolkit whose result holds bytes that are not UTF-8 still gets its
// answer through, with U+FFFD for them; params that are not UTF-8 are
// refused before routing, at their path.
func TestUTF8ThroughTheServer(t *testing.T) {
	e := newEnv(t, Config{})
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	go func() {
		for {
			var req pyToolRequest
			if err := tk.ReadJSON(&req); err != nil {
				return
			}
			id, _ := json.Marshal(req.Payload.RequestID)
			tk.WriteMessage(websocket.TextMessage, []byte(`{"type":"tool_response","request_id":`+string(id)+",\"result\":\"caf\xe9 \xff\"}"))
		}
	}()
	llm := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", 0, "greet", map[string]any{"name": "x"})
	if err := llm.WriteJSON(req); err != nil {
		t.Fatal(err)
	}
	llm.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, raw, err := llm.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(raw) || !strings.Contains(string(raw), "caf\uFFFD \uFFFD") {
		t.Fatalf("task_response %q: want the result, UTF-8, with U+FFFD", raw)
	}

	body, _ := json.Marshal(pyTaskRequest(e.llmKey, "hello", 1, "greet", json.RawMessage("{\"name\":\"\xff\"}")))
	status, reply := e.postRaw("/api/v1/atp/llm-client/process/", body, "Authorization", "ApiKey "+e.llmKey)
	if status != 400 || !strings.Contains(string(reply), "payload.parameters.name: invalid UTF-8 in string") {
		t.Fatalf("params that are not UTF-8: %d %s", status, reply)
	}
}
