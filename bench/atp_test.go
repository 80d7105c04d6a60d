package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

// The ATP benchmarks reproduce, through exported APIs only, the served-call
// benchmark of package runtime and the routed-call benchmark of package
// server, so that their ratios land in the same run as the MCP ones.

// wsConn is one WebSocket end a benchmark drives: it sends frame(i) and
// waits for one reply that check accepts.
type wsConn struct {
	ws    *websocket.Conn
	frame func(i int) []byte
	check func(reply []byte) bool
}

// dialEcho returns a connection to a raw gorilla echo of the same frames:
// the floor, with no JSON, no dispatch and no tool.
func dialEcho(tb testing.TB, frame func(int) []byte) *wsConn {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			mt, data, err := ws.ReadMessage()
			if err != nil || ws.WriteMessage(mt, data) != nil {
				return
			}
		}
	}))
	tb.Cleanup(hs.Close)
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(hs.URL, "http"), nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ws.Close() })
	return &wsConn{ws: ws, frame: frame, check: func([]byte) bool { return true }}
}

// toolRequest is an atp_tool_request for the trivial echo tool.
func toolRequest(i int) []byte {
	return []byte(`{"message_type":"atp_tool_request","payload":{"request_id":"r-` + strconv.Itoa(1000000+i) +
		`","tool_name":"echo","params":{"name":"world"}}}`)
}

// echoToolkit has one trivial tool that reads {"name": string}.
func echoToolkit() *runtime.Toolkit {
	tk := runtime.NewToolkit("bench", runtime.WithLogger(quiet))
	err := tk.Add(&runtime.Tool{
		Name:        "echo",
		Description: "Says hello.",
		Params:      []string{"name"},
		InputSchema: json.RawMessage(`{"type":"object","properties":{"name":{"type":"string"}},"additionalProperties":false}`),
		Run: func(_ context.Context, _ *runtime.Call, d *atpimpl.Decoder) (any, error) {
			var name string
			if d.Object() {
				for d.Next() {
					if string(d.Key()) == "name" {
						name = d.String()
					} else {
						d.Unknown("name")
					}
				}
			}
			if d.Failed() {
				return nil, nil
			}
			return map[string]string{"hello": name}, nil
		},
	})
	if err != nil {
		panic(err)
	}
	return tk
}

// dialServed starts a minimal ATP server (registration accepted, one
// toolkit WebSocket), serves the echo toolkit to it with runtime's Serve,
// and returns the server's end of the toolkit's connection.
func dialServed(tb testing.TB) *wsConn {
	const key = "atp_toolkit_bench"
	conns := make(chan *websocket.Conn, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/ws/v1/atp/toolkit-client/"+key+"/":
			ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err != nil {
				return
			}
			conns <- ws
		case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/api/v1/"):
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			if r.URL.Path == "/api/v1/register_tool" {
				io.WriteString(w, `{"exchange_token":"xt-1"}`)
			} else {
				io.WriteString(w, `{"up_to_date":false}`)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	tb.Cleanup(hs.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- echoToolkit().Serve(ctx, runtime.ServeConfig{URL: hs.URL, APIKey: key, Logger: quiet})
	}()
	tb.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case ws := <-conns:
		tb.Cleanup(func() { ws.Close() })
		return &wsConn{ws: ws, frame: toolRequest, check: func(reply []byte) bool { return bytes.Contains(reply, []byte(`"hello":"world"`)) }}
	case err := <-done:
		tb.Fatalf("Serve ended before connecting: %v", err)
	case <-time.After(10 * time.Second):
		tb.Fatal("the toolkit did not connect within 10s")
	}
	return nil
}

// taskRequest is a task_request as the Python client sends it.
func taskRequest(key string, i int) []byte {
	return []byte(`{"type":"task_request","request_id":"task_bench_` + strconv.Itoa(i) +
		`","toolkit_id":"bench","auth_token":null,"user_prompt":"","api_key":"` + key +
		`","payload":{"function":"echo","parameters":{"text":"hello","n":42},"auth_token":null,"tool_call_id":"call_1"}}`)
}

// dialRouted starts `atp serve` in memory with a toolkit that speaks the
// wire protocol (decodes each request with atpimpl's Decoder and echoes
// its params), and returns an authenticated LLM connection.
func dialRouted(tb testing.TB) *wsConn {
	srv, err := server.New(context.Background(), server.Config{Logger: quiet})
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	tb.Cleanup(func() { srv.Close(); hs.Close() })
	wsBase := "ws" + strings.TrimPrefix(hs.URL, "http")
	newKey := func(kind store.KeyKind) string {
		_, k, err := srv.CreateKey(context.Background(), store.NewKey{Kind: kind, Name: "bench " + string(kind)})
		if err != nil {
			tb.Fatal(err)
		}
		return k
	}
	tkKey, llmKey := newKey(store.KindToolkit), newKey(store.KindLLM)
	body, _ := json.Marshal(map[string]any{
		"function_id": "echo", "api_key": tkKey, "app_name": "bench", "programming_language": "Go",
		"code_hash": "c", "toolkit_hash": "h",
		"metadata": map[string]any{"params": []string{"text", "n"}, "required_params": []string{"text"}, "description": "echo",
			"input_schema": json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"},"n":{"type":"integer"}},"required":["text"],"additionalProperties":false}`)},
	})
	resp, err := http.Post(hs.URL+"/api/v1/register_tool", "application/json", bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		tb.Fatalf("register: %s", resp.Status)
	}
	tk, _, err := websocket.DefaultDialer.Dial(wsBase+"/ws/v1/atp/toolkit-client/"+tkKey+"/", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tk.Close() })
	tk.ReadMessage() // greeting
	go echoParams(tk)

	llm, _, err := websocket.DefaultDialer.Dial(wsBase+"/ws/v1/atp/llm-client/"+llmKey+"/", nil)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { llm.Close() })
	if err := llm.WriteJSON(map[string]any{"type": "auth", "api_key": llmKey}); err != nil {
		tb.Fatal(err)
	}
	if _, _, err := llm.ReadMessage(); err != nil {
		tb.Fatal(err)
	}
	return &wsConn{ws: llm, frame: func(i int) []byte { return taskRequest(llmKey, i) },
		check: func(reply []byte) bool { return bytes.Contains(reply, []byte(`"status":"success"`)) }}
}

// echoParams answers each atp_tool_request on tk with its params.
func echoParams(tk *websocket.Conn) {
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
}

func (c *wsConn) roundTrip(tb testing.TB, i int) {
	if err := c.ws.WriteMessage(websocket.TextMessage, c.frame(i)); err != nil {
		tb.Fatal(err)
	}
	_, reply, err := c.ws.ReadMessage()
	if err != nil {
		tb.Fatal(err)
	}
	if !c.check(reply) {
		tb.Fatalf("reply: %s", reply)
	}
}

// single reports the p50 latency of one call at a time.
func single(b *testing.B, c *wsConn) {
	for i := range 200 { // warm up connections, pools and caches
		c.roundTrip(b, i)
	}
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		c.roundTrip(b, i)
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
}

// inFlight reports calls/s with n calls outstanding on the connection.
func inFlight(b *testing.B, c *wsConn, n int) {
	frames := make([][]byte, 1024)
	for i := range frames {
		frames[i] = c.frame(i)
	}
	slots := make(chan struct{}, n)
	readErr := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			if _, _, err := c.ws.ReadMessage(); err != nil {
				readErr <- err
				return
			}
			<-slots
		}
		readErr <- nil
	}()
	for i := range b.N {
		slots <- struct{}{}
		if err := c.ws.WriteMessage(websocket.TextMessage, frames[i%len(frames)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-readErr; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
}

func TestATPPaths(t *testing.T) {
	t.Run("served", func(t *testing.T) { dialServed(t).roundTrip(t, 1) })
	t.Run("routed", func(t *testing.T) { dialRouted(t).roundTrip(t, 1) })
}

// BenchmarkServedCall is an ATP call from the server's send of
// atp_tool_request to its receipt of the tool_response, for a toolkit
// running runtime's Serve, beside a raw echo of the same frames.
func BenchmarkServedCall(b *testing.B) {
	b.Run("echo/single", func(b *testing.B) { single(b, dialEcho(b, toolRequest)) })
	b.Run("served/single", func(b *testing.B) { single(b, dialServed(b)) })
	b.Run("echo/inflight64", func(b *testing.B) { inFlight(b, dialEcho(b, toolRequest), 64) })
	b.Run("served/inflight64", func(b *testing.B) { inFlight(b, dialServed(b), 64) })
}

// BenchmarkRoutedCall is an agent's call through `atp serve`: LLM WebSocket
// -> server -> toolkit WebSocket -> back, beside a raw echo.
func BenchmarkRoutedCall(b *testing.B) {
	frame := func(i int) []byte { return taskRequest("atp_llm_x_y", i) }
	b.Run("echo/single", func(b *testing.B) { single(b, dialEcho(b, frame)) })
	b.Run("routed/single", func(b *testing.B) { single(b, dialRouted(b)) })
	b.Run("echo/inflight64", func(b *testing.B) { inFlight(b, dialEcho(b, frame), 64) })
	b.Run("routed/inflight64", func(b *testing.B) { inFlight(b, dialRouted(b), 64) })
}
