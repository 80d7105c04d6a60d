package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"

	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

// BenchmarkReplicas is server's BenchmarkRoutedCall with NATS in this
// process (nats-server, this module's version) rather than the test
// NATS: one server routing a trivial call from an LLM WebSocket to a
// toolkit WebSocket and back, the same call across two replicas (LLM
// client on one, toolkit on the other), and one bare nats.go
// request-reply through the same NATS.
//
//	go test -run '^$' -bench . ./tests/cluster/
func BenchmarkReplicas(b *testing.B) {
	b.Run("routed/single", func(b *testing.B) { benchSingle(b, dialBench(b, 1, nil)) })
	b.Run("replicas/single", func(b *testing.B) { benchSingle(b, dialBench(b, 2, startNATS(b))) })
	b.Run("nats/single", func(b *testing.B) { benchNATS(b, startNATS(b)) })
	b.Run("routed/inflight64", func(b *testing.B) { benchInFlight(b, dialBench(b, 1, nil), 64) })
	b.Run("replicas/inflight64", func(b *testing.B) { benchInFlight(b, dialBench(b, 2, startNATS(b)), 64) })
}

// dialBench starts n servers (replicas of a cluster on n's NATS when
// n > 1) on one in-memory store, a toolkit echoing params on the first and
// an LLM connection on the last.
func dialBench(b *testing.B, n int, ns *natsNode) *websocket.Conn {
	ctx := context.Background()
	st, err := store.Open(ctx, store.Memory)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	var urls []string
	var first *server.Server
	for i := range n {
		cfg := server.Config{Store: st, SecretKey: make([]byte, 32), Logger: discard()}
		if ns != nil {
			cfg.NATSURL = "nats://" + ns.addr()
		}
		srv, err := server.New(context.Background(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		b.Cleanup(func() { srv.Close(); hs.Close() })
		urls = append(urls, hs.URL)
		if i == 0 {
			first = srv
		}
	}
	_, tkKey, _ := first.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "bench"})
	_, llmKey, _ := first.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "bench"})
	body, _ := json.Marshal(map[string]any{"function_id": "echo", "api_key": tkKey, "app_name": "bench", "programming_language": "Go",
		"metadata": map[string]any{"params": []string{"text", "n"}, "required_params": []string{"text"},
			"input_schema": json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"integer"}},"required":["text"],"additionalProperties":false}`)}})
	resp, err := http.Post(urls[0]+"/api/v1/register_tool", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("register: %v %v", err, resp)
	}
	resp.Body.Close()
	tk, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(urls[0], "http")+"/ws/v1/atp/toolkit-client/"+tkKey+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tk.Close() })
	tk.ReadMessage() // greeting
	go func() {
		for {
			_, data, err := tk.ReadMessage()
			if err != nil {
				return
			}
			var req struct {
				Payload struct {
					RequestID string          `json:"request_id"`
					Params    json.RawMessage `json:"params"`
				} `json:"payload"`
			}
			json.Unmarshal(data, &req)
			out, _ := json.Marshal(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": req.Payload.Params})
			if tk.WriteMessage(websocket.TextMessage, out) != nil {
				return
			}
		}
	}()
	llm, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(urls[n-1], "http")+"/ws/v1/atp/llm-client/"+llmKey+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { llm.Close() })
	llm.WriteJSON(map[string]any{"type": "auth", "api_key": llmKey})
	llm.ReadMessage()
	// Until the last replica has heard of the toolkit on the first, the
	// toolkit is offline there.
	deadline := time.Now().Add(10 * time.Second)
	for !roundTripOK(b, llm, 0) {
		if time.Now().After(deadline) {
			b.Fatal("the toolkit never became reachable from the LLM's replica")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return llm
}

func taskFrame(i int) []byte {
	b := []byte(`{"type":"task_request","request_id":"task_bench_`)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, `","toolkit_id":"bench","payload":{"function":"echo","parameters":{"text":"hello","n":42},"tool_call_id":"call_1"}}`...)
}

func roundTripOK(b *testing.B, ws *websocket.Conn, i int) bool {
	if err := ws.WriteMessage(websocket.TextMessage, taskFrame(i)); err != nil {
		b.Fatal(err)
	}
	_, reply, err := ws.ReadMessage()
	if err != nil {
		b.Fatal(err)
	}
	return bytes.Contains(reply, []byte(`"status":"success"`))
}

func benchSingle(b *testing.B, ws *websocket.Conn) {
	for i := range 200 {
		roundTripOK(b, ws, i)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if !roundTripOK(b, ws, i) {
			b.Fatal("a call failed")
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	report(b, lat)
}

func benchInFlight(b *testing.B, ws *websocket.Conn, inFlight int) {
	for i := range 200 {
		roundTripOK(b, ws, i)
	}
	slots := make(chan struct{}, inFlight)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := range b.N {
			slots <- struct{}{}
			if ws.WriteMessage(websocket.TextMessage, taskFrame(i)) != nil {
				return
			}
		}
	}()
	for range b.N {
		_, reply, err := ws.ReadMessage()
		if err != nil || !bytes.Contains(reply, []byte(`"status":"success"`)) {
			b.Fatalf("%v %s", err, reply)
		}
		<-slots
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
}

func benchNATS(b *testing.B, ns *natsNode) {
	responder, err := nats.Connect("nats://" + ns.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer responder.Close()
	requester, err := nats.Connect("nats://" + ns.addr())
	if err != nil {
		b.Fatal(err)
	}
	defer requester.Close()
	responder.Subscribe("echo", func(m *nats.Msg) { m.Respond(m.Data) })
	responder.Flush()
	payload := []byte("0123456789abcdef")
	for range 200 {
		requester.Request("echo", payload, 5*time.Second)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := requester.Request("echo", payload, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	report(b, lat)
}

func report(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}
