package runtime

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// platoolsBenchFrame is a tool_call as a Platos platform sends it: the
// echo call of benchFrame plus the __platos envelope and _context.
func platoolsBenchFrame(i int) []byte {
	id := strconv.Itoa(1000000 + i)
	return []byte(`{"type":"tool_call","call_id":"c-` + id + `","tool_name":"echo","params":{"name":"world",` +
		`"__platos":{"organizationId":"org_1","projectId":"proj_1","environmentId":"prod","entityId":"crm","userId":"u-42",` +
		`"agentId":"agent-7","threadId":"th-1","callId":"c-` + id + `","timestamp":"2026-09-15T00:00:00.000Z",` +
		`"nonce":"0123456789abcdef0123456789abcdef","signature":"sig"},"_context":{"user.id":"u-42"}}}`)
}

// BenchmarkServePlatools measures a tool call over the Platools wire on
// loopback, beside a raw gorilla echo of the same frames and beside the
// ATP v1 toolkit (BenchmarkServeWS's toolkit cases, run here too so that
// the ratio comes from one run). The Platools call does more: it takes the
// envelope out of the params.
func BenchmarkServePlatools(b *testing.B) {
	b.Run("echo/single", func(b *testing.B) { benchFramesSingle(b, dialEcho(b), platoolsBenchFrame) })
	b.Run("atpv1/single", func(b *testing.B) { benchFramesSingle(b, serveForBench(b), benchFrame) })
	b.Run("platools/single", func(b *testing.B) { benchFramesSingle(b, servePlatoolsForBench(b), platoolsBenchFrame) })
	b.Run("echo/64", func(b *testing.B) { benchFramesInFlight(b, dialEcho(b), platoolsBenchFrame, 64) })
	b.Run("atpv1/64", func(b *testing.B) { benchFramesInFlight(b, serveForBench(b), benchFrame, 64) })
	b.Run("platools/64", func(b *testing.B) { benchFramesInFlight(b, servePlatoolsForBench(b), platoolsBenchFrame, 64) })
}

// servePlatoolsForBench serves the test toolkit to a fake Platos platform
// and returns the platform's end of the connection, its tool_register
// read.
func servePlatoolsForBench(b *testing.B) *websocket.Conn {
	f := newFakePlatos(b)
	f.deaf = true
	tk := newServeToolkit(b, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- tk.Serve(ctx, ServeConfig{URL: f.srv.URL, APIKey: platosSecret, Transport: TransportPlatools,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), PingInterval: time.Hour})
	}()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	c := f.conn().ws
	if _, _, err := c.ReadMessage(); err != nil { // tool_register
		b.Fatal(err)
	}
	return c
}

func benchFramesSingle(b *testing.B, c *websocket.Conn, frame func(int) []byte) {
	lat := make([]time.Duration, 0, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f := frame(i)
		start := time.Now()
		if err := c.WriteMessage(websocket.TextMessage, f); err != nil {
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

func benchFramesInFlight(b *testing.B, c *websocket.Conn, frame func(int) []byte, inFlight int) {
	frames := make([][]byte, 1024)
	for i := range frames {
		frames[i] = frame(i)
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
