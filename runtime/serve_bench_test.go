package runtime

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// benchFrame is an atp_tool_request for a trivial tool, the size of a
// typical small call. The echo baselines send the same bytes.
func benchFrame(i int) []byte {
	return []byte(`{"message_type":"atp_tool_request","payload":{"request_id":"r-` + strconv.Itoa(1000000+i) +
		`","tool_name":"echo","params":{"name":"world"}}}`)
}

// BenchmarkServeWS measures a tool call over loopback WebSocket, from the
// server's send of atp_tool_request to its receipt of the tool_response,
// beside a raw gorilla echo of the same frames (the floor: no JSON, no
// dispatch, no tool). Targets: toolkit p50 at most 1.2x echo p50
// single-flight; at 64 in flight, at least 65% of the echo's calls/s.
func BenchmarkServeWS(b *testing.B) {
	b.Run("echo/single", func(b *testing.B) { benchSingle(b, dialEcho(b)) })
	b.Run("toolkit/single", func(b *testing.B) { benchSingle(b, serveForBench(b)) })
	b.Run("echo/64", func(b *testing.B) { benchInFlight(b, dialEcho(b), 64) })
	b.Run("toolkit/64", func(b *testing.B) { benchInFlight(b, serveForBench(b), 64) })
}

// dialEcho returns the client end of a connection to a gorilla echo server.
func dialEcho(b *testing.B) *websocket.Conn {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up := websocket.Upgrader{}
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	c, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

// serveForBench serves the test toolkit to a fake ATP server and returns
// the server end of the toolkit's connection.
func serveForBench(b *testing.B) *websocket.Conn {
	f := newFakeATP(b, serveTestKey)
	f.deaf = true // the benchmark reads the connection itself
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	tk := newServeToolkit(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tk.Serve(ctx, ServeConfig{URL: f.URL(), APIKey: f.key, Logger: quiet}) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	return f.conn().ws
}

func benchSingle(b *testing.B, c *websocket.Conn) {
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		frame := benchFrame(i)
		start := time.Now()
		if err := c.WriteMessage(websocket.TextMessage, frame); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds())/1e3, "p50-µs")
}

func benchInFlight(b *testing.B, c *websocket.Conn, inFlight int) {
	frames := make([][]byte, 1024)
	for i := range frames {
		frames[i] = benchFrame(i)
	}
	slots := make(chan struct{}, inFlight)
	readErr := make(chan error, 1)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() {
		for range b.N {
			if _, _, err := c.ReadMessage(); err != nil {
				readErr <- err
				return
			}
			<-slots
		}
		readErr <- nil
	}()
	for i := range b.N {
		slots <- struct{}{}
		if err := c.WriteMessage(websocket.TextMessage, frames[i%len(frames)]); err != nil {
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
