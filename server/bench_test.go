package server

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

	"github.com/atpgo/atp/internal/natstest"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server/store"
)

// BenchmarkRoutedCall measures a tool call the way an agent makes it: LLM
// WebSocket -> server -> toolkit WebSocket -> server -> LLM WebSocket, with
// a trivial tool, next to a raw gorilla echo of the same frames (the floor:
// a routed call is two such echoes plus the server's work).
//
//	single: one call at a time; reports p50 and p99 latency.
//	inflight64: 64 calls outstanding on one connection; reports calls/s.
//
// Targets, the README's "routed call" figures: routed p50 at most 2.2x
// the echo's; routed throughput at 64 in flight at least 60% of the echo's.
//
// Beside them, the same call across two replicas of a cluster (needs
// ATP_TEST_NATS): the LLM client on one replica, the toolkit on the other,
// the call forwarded over NATS and back.
//
//	replicas/single, replicas/inflight64: as above.
//	nats/single: the floor of that: one request-reply of nats.go through
//	the same NATS server, a 16-byte payload echoed.
//
// Targets, the README's "Running more than one replica" figures: across
// replicas, p50 at most 1.5x the routed p50; throughput at 64 in flight at
// least 50% of the routed one.
func BenchmarkRoutedCall(b *testing.B) {
	b.Run("echo/single", func(b *testing.B) { benchSingle(b, dialEcho(b)) })
	b.Run("routed/single", func(b *testing.B) { benchSingle(b, dialRouted(b)) })
	b.Run("replicas/single", func(b *testing.B) { benchSingle(b, dialReplicas(b)) })
	b.Run("nats/single", benchNATSRequest)
	b.Run("echo/inflight64", func(b *testing.B) { benchInFlight(b, dialEcho(b), 64) })
	b.Run("routed/inflight64", func(b *testing.B) { benchInFlight(b, dialRouted(b), 64) })
	b.Run("replicas/inflight64", func(b *testing.B) { benchInFlight(b, dialReplicas(b), 64) })
}

// taskFrame is a task_request as the Python client sends it, with request
// id i.
func taskFrame(key string, i int) []byte {
	b := make([]byte, 0, 320)
	b = append(b, `{"type":"task_request","request_id":"task_bench_`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `","toolkit_id":"bench","auth_token":null,"user_prompt":"","api_key":"`...)
	b = append(b, key...)
	b = append(b, `","payload":{"function":"echo","parameters":{"text":"hello","n":42},"auth_token":null,"tool_call_id":"call_1"}}`...)
	return b
}

// dialEcho starts a raw gorilla echo server and returns a connection to it
// and the frame maker.
func dialEcho(b *testing.B) *benchConn {
	up := websocket.Upgrader{}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			mt, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if ws.WriteMessage(mt, data) != nil {
				return
			}
		}
	}))
	b.Cleanup(hs.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.Close() })
	return &benchConn{ws: ws, frame: func(i int) []byte { return taskFrame("atp_llm_x_y", i) }, check: func([]byte) bool { return true }}
}

// dialRouted starts the server with a minimal toolkit that speaks the wire
// protocol (echoes params), and returns an authenticated LLM connection.
func dialRouted(b *testing.B) *benchConn {
	srv, err := New(context.Background(), Config{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	b.Cleanup(func() { srv.Close(); hs.Close() })
	return dialVia(b, srv, hs.URL, hs.URL)
}

// dialReplicas starts two replicas of a cluster on one store and the test
// NATS, connects the toolkit to the first and the LLM client to the
// second.
func dialReplicas(b *testing.B) *benchConn {
	url, prefix := natstest.Prefix(b)
	st, err := store.Open(b.Context(), store.Memory)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	secret := make([]byte, 32)
	var urls [2]string
	var first, second *Server
	for i := range urls {
		srv, err := New(b.Context(), Config{Logger: discardLogger(), Store: st, SecretKey: secret, NATSURL: url, ClusterPrefix: prefix})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		b.Cleanup(func() { srv.Close(); hs.Close() })
		urls[i] = hs.URL
		if i == 0 {
			first = srv
		} else {
			second = srv
		}
	}
	c := dialVia(b, first, urls[0], urls[1])
	ref := toolkitRef{"default", "bench"}
	deadline := time.Now().Add(10 * time.Second)
	for len(second.cluster.holders(ref)) == 0 {
		if time.Now().After(deadline) {
			b.Fatal("the second replica never saw the toolkit's connection on the first")
		}
		time.Sleep(time.Millisecond)
	}
	return c
}

// dialVia registers and connects a minimal toolkit that speaks the wire
// protocol (echoes params) at tkURL, and returns an authenticated LLM
// connection at llmURL. srv makes the keys.
func dialVia(b *testing.B, srv *Server, tkURL, llmURL string) *benchConn {
	tkKey, llmKey := benchKey(b, srv, "toolkit"), benchKey(b, srv, "llm")
	hs := struct{ URL string }{tkURL}
	wsBase := "ws" + strings.TrimPrefix(tkURL, "http")
	body, _ := json.Marshal(map[string]any{
		"function_id": "echo", "api_key": tkKey, "app_name": "bench", "programming_language": "Go",
		"code_hash": "c", "toolkit_hash": "h",
		"metadata": map[string]any{"params": []string{"text", "n"}, "required_params": []string{"text"}, "description": "echo",
			"input_schema": json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"integer"}},"required":["text"],"additionalProperties":false}`)},
	})
	resp, err := http.Post(hs.URL+"/api/v1/register_tool", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		b.Fatalf("register: %v %v", err, resp.Status)
	}
	resp.Body.Close()

	tk, _, err := websocket.DefaultDialer.Dial(wsBase+"/ws/v1/atp/toolkit-client/"+tkKey+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tk.Close() })
	tk.ReadMessage() // greeting
	// The toolkit: reads each request with atpimpl's Decoder, as a Go
	// toolkit does, and answers at once with the params as the result.
	go func() {
		var d atpimpl.Decoder
		out := make([]byte, 0, 256)
		for {
			_, data, err := tk.ReadMessage()
			if err != nil {
				return
			}
			var id, params []byte
			d.Reset(data)
			if d.Object() {
				for d.Next() {
					if string(d.Key()) != "payload" || !d.Object() {
						d.Skip()
						continue
					}
					for d.Next() {
						switch string(d.Key()) {
						case "request_id":
							id = d.Raw()
						case "params":
							params = d.Raw()
						default:
							d.Skip()
						}
					}
				}
			}
			out = append(out[:0], `{"type":"tool_response","request_id":`...)
			out = append(out, id...)
			out = append(out, `,"result":`...)
			out = append(out, params...)
			out = append(out, '}')
			if tk.WriteMessage(websocket.TextMessage, out) != nil {
				return
			}
		}
	}()

	llm, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(llmURL, "http")+"/ws/v1/atp/llm-client/"+llmKey+"/", nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { llm.Close() })
	llm.WriteJSON(map[string]any{"type": "auth", "api_key": llmKey})
	llm.ReadMessage()
	return &benchConn{ws: llm, frame: func(i int) []byte { return taskFrame(llmKey, i) },
		check: func(reply []byte) bool { return bytes.Contains(reply, []byte(`"status":"success"`)) }}
}

func benchKey(b *testing.B, srv *Server, kind string) string {
	_, k, err := srv.store.CreateKey(b.Context(), newKeyOf(kind))
	if err != nil {
		b.Fatal(err)
	}
	return k
}

type benchConn struct {
	ws    *websocket.Conn
	frame func(i int) []byte
	check func(reply []byte) bool
}

func benchSingle(b *testing.B, c *benchConn) {
	// Warm up: connections, pools, the server's caches.
	for i := range 200 {
		c.roundTrip(b, i)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		c.roundTrip(b, i)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}

func (c *benchConn) roundTrip(b *testing.B, i int) {
	if err := c.ws.WriteMessage(websocket.TextMessage, c.frame(i)); err != nil {
		b.Fatal(err)
	}
	_, reply, err := c.ws.ReadMessage()
	if err != nil {
		b.Fatal(err)
	}
	if !c.check(reply) {
		b.Fatalf("reply: %s", reply)
	}
}

func benchInFlight(b *testing.B, c *benchConn, inFlight int) {
	for i := range 200 {
		c.roundTrip(b, i)
	}
	slots := make(chan struct{}, inFlight)
	failed := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() {
		for i := 0; i < b.N; i++ {
			slots <- struct{}{}
			if err := c.ws.WriteMessage(websocket.TextMessage, c.frame(i)); err != nil {
				failed <- err
				return
			}
		}
	}()
	for i := 0; i < b.N; i++ {
		_, reply, err := c.ws.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		if !c.check(reply) {
			b.Fatalf("reply: %s", reply)
		}
		<-slots
	}
	elapsed := time.Since(start)
	b.StopTimer()
	select {
	case err := <-failed:
		b.Fatal(err)
	default:
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

func newKeyOf(kind string) store.NewKey {
	return store.NewKey{Kind: store.KeyKind(kind), Name: "bench " + kind}
}

// benchNATSRequest measures one nats.go request-reply through the test
// NATS server, between two connections of this process.
func benchNATSRequest(b *testing.B) {
	url, prefix := natstest.Prefix(b)
	responder, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer responder.Close()
	requester, err := nats.Connect(url)
	if err != nil {
		b.Fatal(err)
	}
	defer requester.Close()
	subj := prefix + ".echo"
	if _, err := responder.Subscribe(subj, func(m *nats.Msg) { m.Respond(m.Data) }); err != nil {
		b.Fatal(err)
	}
	responder.Flush()
	payload := []byte("0123456789abcdef")
	for range 200 {
		if _, err := requester.Request(subj, payload, 5*time.Second); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if _, err := requester.Request(subj, payload, 5*time.Second); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds())/1e3, "p99-µs")
}
