package llmclient_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
)

// BenchmarkCallTools runs 8 independent calls of a tool that sleeps 50 ms
// through the real server, concurrently (the default) and with Sequential.
// Target: concurrent wall time under 1.5 calls' time (75 ms),
// sequential about 8 (400 ms). "calls/op" is the wall time in units of one
// call's 50 ms.
func BenchmarkCallTools(b *testing.B) {
	e := newEnv(b)
	items := make([]string, 8)
	for i := range items {
		items[i] = fmt.Sprintf(`{"type":"function_call","call_id":"call_%d","name":"nap","arguments":"{}"}`, i)
	}
	calls := json.RawMessage("[" + strings.Join(items, ",") + "]")
	for _, proto := range protocols {
		for _, mode := range []string{"concurrent", "sequential"} {
			b.Run(proto+"/"+mode, func(b *testing.B) {
				c := e.client(llmclient.WithTransport(llmclient.Transport(proto)))
				var opts []llmclient.CallOption
				if mode == "sequential" {
					opts = append(opts, llmclient.Sequential())
				}
				ctx := context.Background()
				if _, err := c.Call(ctx, "kit", "echo", nil); err != nil { // connect first
					b.Fatal(err)
				}
				for b.Loop() {
					out, err := c.CallTools(ctx, "kit", "openai", calls, opts...)
					if err != nil {
						b.Fatal(err)
					}
					if n := strings.Count(string(out), `"output":"rested"`); n != 8 {
						b.Fatalf("%d results, want 8: %s", n, out)
					}
				}
				perOp := b.Elapsed() / time.Duration(b.N)
				b.ReportMetric(float64(perOp)/float64(time.Millisecond), "ms/op")
				b.ReportMetric(float64(perOp)/float64(50*time.Millisecond), "calls/op")
			})
		}
	}
}
