package server

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/server/store"
)

// Slow consumers: a peer that stops reading must not make the server
// queue without bound what it has for it (Config.MaxWriteQueueBytes). The
// sockets' kernel buffers are made small and the cap is 64 KiB, so a few
// dozen 16 KiB messages reach it whatever the machine's TCP tuning: the
// tests send until it is hit, never waiting on the clock.

const slowCap = 64 << 10

// smallSendBuffers gives every accepted connection a small kernel send
// buffer: the server's writes to a peer that does not read block early.
func smallSendBuffers(ln net.Listener) net.Listener { return smallBufListener{ln} }

type smallBufListener struct{ net.Listener }

func (l smallBufListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// smallReadDialer dials with a small kernel receive buffer: what the peer
// does not read fills it early.
var smallReadDialer = &websocket.Dialer{
	HandshakeTimeout: 10 * time.Second,
	NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetReadBuffer(4096)
		}
		return c, err
	},
}

func bigName() map[string]any { return map[string]any{"name": strings.Repeat("x", 16<<10)} }

// A toolkit that stops reading: once more than the cap waits for it, its
// connection is closed, counted and logged, and every call sent to it is
// answered once, as an error naming the limit (or, sent after the close,
// saying the toolkit is offline).
func TestToolkitThatDoesNotReadIsDropped(t *testing.T) {
	e := newEnvOn(t, Config{MaxWriteQueueBytes: slowCap, CallTimeout: time.Hour}, smallSendBuffers)
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk, resp, err := smallReadDialer.Dial(e.wsBase+"/ws/v1/atp/toolkit-client/"+e.tkKey+"/", nil)
	if err != nil {
		t.Fatalf("dial toolkit: %v (%v)", err, respStatus(resp))
	}
	defer tk.Close()
	tk.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := tk.ReadMessage(); err != nil { // the greeting; nothing more is read
		t.Fatal(err)
	}
	llm := e.dialPyLLM(e.llmKey)

	type answer struct{ id, status, message string }
	answers := make(chan answer, 4096)
	ids := map[string]int{}
	go func() {
		defer close(answers)
		for {
			var m map[string]any
			llm.SetReadDeadline(time.Now().Add(10 * time.Second))
			if err := llm.ReadJSON(&m); err != nil {
				return
			}
			id, _ := m["request_id"].(string)
			status, _ := m["status"].(string)
			msg, _ := m["message"].(string)
			answers <- answer{id, status, msg}
		}
	}()
	// Send until the first answer: only a failure can answer a call to a
	// toolkit that reads nothing.
	sent := 0
	var got []answer
	for len(got) == 0 {
		if sent == 2000 {
			t.Fatalf("%d calls of 16 KiB to a toolkit that does not read, and the %d-byte cap never hit", sent, slowCap)
		}
		req := pyTaskRequest(e.llmKey, "hello", sent, "greet", bigName())
		llm.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := llm.WriteJSON(req); err != nil {
			t.Fatal(err)
		}
		ids[req["request_id"].(string)] = 0
		sent++
		select {
		case a, ok := <-answers:
			if !ok {
				t.Fatal("the LLM connection closed")
			}
			got = append(got, a)
		default:
		}
	}
	for len(got) < sent {
		a, ok := <-answers
		if !ok {
			t.Fatalf("%d of %d calls answered before the LLM connection ended", len(got), sent)
		}
		got = append(got, a)
	}
	limitNamed := 0
	for _, a := range got {
		id, msg := a.id, a.message
		n, ok := ids[id]
		if !ok || n > 0 {
			t.Fatalf("answer to %q: unknown, or a second one", id)
		}
		ids[id] = 1
		switch {
		case a.status != "error":
			t.Fatalf("call %s to a toolkit that reads nothing: status %q", id, a.status)
		case strings.Contains(msg, "--max-write-queue-bytes") && strings.Contains(msg, "not reading"):
			limitNamed++
		case strings.Contains(msg, "is offline"):
		default:
			t.Fatalf("call %s: %s", id, msg)
		}
	}
	if limitNamed == 0 {
		t.Fatal("no call failed naming --max-write-queue-bytes")
	}
	if n := e.srv.metrics.toolkitOverflows.Load(); n != 1 {
		t.Fatalf("toolkit overflows counted: %d, want 1", n)
	}
	if _, body := e.get("/metrics"); !strings.Contains(string(body), `atp_write_queue_overflows_total{peer="toolkit"} 1`) {
		t.Fatalf("metrics:\n%s", body)
	}
	eventually(t, "the overflow to be logged", func() bool {
		return strings.Contains(e.logs.String(), "closing a WebSocket whose peer does not read")
	})
	eventually(t, "the toolkit's connection to leave the hub", func() bool { return e.srv.hub.gauges().connections == 0 })

	// The server goes on: a toolkit that reads gets the next call (on a
	// connection of its own: the reader above still reads the first).
	good := e.dialPyToolkit(e.tkKey)
	go servePy(good)
	req := pyTaskRequest(e.llmKey, "hello", sent, "greet", map[string]any{"name": "y"})
	if r := checkTaskResponse(t, roundTrip(t, e.dialPyLLM(e.llmKey), req), req, "success"); r != "Hello, y" {
		t.Fatalf("call after the overflow: %v", r)
	}
}

// An LLM client that sends calls and never reads the answers: its
// connection is closed once more than the cap waits for it; its calls are
// taken back, and the toolkit and other clients carry on.
func TestLLMClientThatDoesNotReadIsDropped(t *testing.T) {
	e := newEnvOn(t, Config{MaxWriteQueueBytes: slowCap, CallTimeout: time.Hour}, smallSendBuffers)
	e.pyRegister(e.tkKey, "hello", pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	// The toolkit answers each call before the next is sent, so that what
	// piles up is the answers, not the calls (a toolkit slower than its
	// callers meets the cap too).
	served := make(chan struct{}, 4096) // more than the calls sent
	go func() {
		for {
			req := readToolRequestOrEnd(tk)
			if req == nil {
				return
			}
			var p struct{ Name string }
			json.Unmarshal(req.Payload.Params, &p)
			tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": "Hello, " + p.Name})
			served <- struct{}{}
		}
	}()

	llm, resp, err := smallReadDialer.Dial(e.wsBase+"/ws/v1/atp/llm-client/"+e.llmKey+"/", http.Header{"Origin": {e.base}})
	if err != nil {
		t.Fatalf("dial llm: %v (%v)", err, respStatus(resp))
	}
	defer llm.Close()
	// Never read: not even the auth response. The answers (16 KiB each,
	// twice over in TASK_RESPONSE) pile up until the cap.
	for i := 0; e.srv.metrics.llmOverflows.Load() == 0; i++ {
		if i == 2000 {
			t.Fatalf("%d answers of 32 KiB to a client that does not read, and the %d-byte cap never hit", i, slowCap)
		}
		llm.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if err := llm.WriteJSON(pyTaskRequest(e.llmKey, "hello", i, "greet", bigName())); err != nil {
			// The server has closed the connection (a reset): the count
			// below must show why.
			break
		}
		select {
		case <-served:
		case <-time.After(10 * time.Second):
			if e.srv.metrics.llmOverflows.Load() == 0 {
				t.Fatalf("call %d never reached the toolkit", i)
			}
		}
	}
	eventually(t, "the overflow to be counted", func() bool { return e.srv.metrics.llmOverflows.Load() == 1 })
	eventually(t, "the LLM connection to close", func() bool { return e.srv.hub.gauges().llmConnections == 0 })
	eventually(t, "its calls to end", func() bool { return e.srv.hub.gauges().inFlight == 0 })
	if !strings.Contains(e.logs.String(), "closing a WebSocket whose peer does not read") {
		t.Fatalf("no log line:\n%s", e.logs.String())
	}
	if _, body := e.get("/metrics"); !strings.Contains(string(body), `atp_write_queue_overflows_total{peer="llm"} 1`) {
		t.Fatalf("metrics:\n%s", body)
	}
	// The toolkit's connection is untouched, and serves the next client.
	otherKey := e.key(store.NewKey{Kind: store.KindLLM, Name: "other"})
	req := pyTaskRequest(otherKey, "hello", 0, "greet", map[string]any{"name": "z"})
	if r := checkTaskResponse(t, roundTrip(t, e.dialPyLLM(otherKey), req), req, "success"); r != "Hello, z" {
		t.Fatalf("call after the overflow: %v", r)
	}
	if n := e.srv.metrics.toolkitOverflows.Load(); n != 0 {
		t.Fatalf("toolkit overflows: %d", n)
	}
}

// The cap is checked on its own: what waits is what the outbox holds and
// what the socket has behind; a message finding nothing waiting is taken
// whatever its size.
func TestWriteQueueCap(t *testing.T) {
	s := &Server{cfg: Config{MaxWriteQueueBytes: 100}}
	c := &wsSession{s: s, cork: &corkConn{}}
	big := make([]byte, 1000)
	if _, ok := c.enqueue(big); !ok {
		t.Fatal("a message finding nothing waiting was refused")
	}
	if waiting, ok := c.enqueue([]byte("x")); ok || waiting != 1000 {
		t.Fatalf("past the cap: waiting %d, ok %v", waiting, ok)
	}
	c.out.queue, c.out.bytes = nil, 0
	c.cork.behindBytes.Store(60)
	if _, ok := c.enqueue(make([]byte, 40)); !ok {
		t.Fatal("refused at the cap")
	}
	if waiting, ok := c.enqueue([]byte("x")); ok || waiting != 100 {
		t.Fatalf("behind + queued past the cap: waiting %d, ok %v", waiting, ok)
	}
}

// readToolRequestOrEnd reads the next atp_tool_request, nil once the
// connection has ended.
func readToolRequestOrEnd(ws *websocket.Conn) *pyToolRequest {
	for {
		var req pyToolRequest
		if err := ws.ReadJSON(&req); err != nil {
			return nil
		}
		if req.MessageType == "atp_tool_request" {
			return &req
		}
	}
}
