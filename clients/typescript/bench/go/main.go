// Command bench measures one served call of a Node toolkit next to the same
// call of a Go toolkit, on the same `atp serve`, in the same run: it serves
// the Go toolkit itself (runtime.Serve, a trivial echo tool), then drives
// both toolkits as an agent over one llmclient WebSocket and prints, per
// toolkit, the p50 latency of one call at a time and the calls/s with 64
// calls in flight, as JSON. The rounds alternate between the toolkits, and
// the medians over the rounds are reported.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

const echoSchema = `{"type":"object","properties":{"msg":{"type":"string"}},"required":["msg"],"additionalProperties":false}`

func main() {
	url := flag.String("url", "", "the ATP server's base URL")
	goKey := flag.String("go-key", "", "toolkit key for the Go toolkit this program serves")
	nodeToolkit := flag.String("node-toolkit", "nodebench", "the Node toolkit's name")
	rounds := flag.Int("rounds", 5, "rounds per toolkit")
	serial := flag.Int("serial", 400, "calls one at a time per round")
	parallel := flag.Int("parallel", 4000, "calls per round with 64 in flight")
	flag.Parse()
	if err := run(*url, *goKey, *nodeToolkit, *rounds, *serial, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

type result struct {
	P50us      float64 `json:"p50_us"`
	CallsPerS  float64 `json:"calls_per_s"`
	P50Rounds  []int64 `json:"p50_rounds_ns"`
	RateRounds []int64 `json:"rate_rounds"`
}

func run(url, goKey, nodeToolkit string, rounds, serial, parallel int) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tk := runtime.NewToolkit("gobench", runtime.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	tk.Add(&runtime.Tool{
		Name: "echo", Description: "Echoes msg.", Params: []string{"msg"}, RequiredParams: []string{"msg"},
		InputSchema: json.RawMessage(echoSchema),
		Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
			var msg string
			if d.Object() {
				for d.Next() {
					switch string(d.Key()) {
					case "msg":
						msg = d.String()
					default:
						d.Unknown("msg")
					}
				}
			}
			if d.Failed() {
				return nil, nil
			}
			return map[string]string{"msg": msg}, nil
		},
	})
	connected := make(chan struct{}, 1)
	go tk.Serve(ctx, runtime.ServeConfig{URL: url, APIKey: goKey, OnState: func(s runtime.State) {
		if s.Kind == runtime.StateConnected {
			select {
			case connected <- struct{}{}:
			default:
			}
		}
	}})
	select {
	case <-connected:
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the Go toolkit did not connect")
	}
	c, err := llmclient.New(os.Getenv("ATP_API_KEY"), llmclient.WithBaseURL(url), llmclient.WithTransport(llmclient.TransportWS))
	if err != nil {
		return err
	}
	defer c.Close()
	params := json.RawMessage(`{"msg":"hello"}`)
	call := func(toolkit string) error {
		r, err := c.Call(ctx, toolkit, "echo", params)
		if err != nil {
			return err
		}
		if r.Failed() {
			return fmt.Errorf("%s: %s", toolkit, r.Error)
		}
		return nil
	}
	toolkits := []string{"gobench", nodeToolkit}
	// Warm up both (JIT, connections, inline fast path).
	for _, t := range toolkits {
		for range 300 {
			if err := call(t); err != nil {
				return err
			}
		}
	}
	out := map[string]*result{}
	for _, t := range toolkits {
		out[t] = &result{}
	}
	for range rounds {
		for _, t := range toolkits {
			lat := make([]time.Duration, serial)
			for i := range lat {
				start := time.Now()
				if err := call(t); err != nil {
					return err
				}
				lat[i] = time.Since(start)
			}
			slices.Sort(lat)
			out[t].P50Rounds = append(out[t].P50Rounds, int64(lat[len(lat)/2]))

			var next atomic.Int64
			var wg sync.WaitGroup
			var firstErr atomic.Value
			start := time.Now()
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(parallel) {
						if err := call(t); err != nil {
							firstErr.CompareAndSwap(nil, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if e := firstErr.Load(); e != nil {
				return e.(error)
			}
			out[t].RateRounds = append(out[t].RateRounds, int64(float64(parallel)/time.Since(start).Seconds()))
		}
	}
	for _, r := range out {
		p := slices.Clone(r.P50Rounds)
		slices.Sort(p)
		q := slices.Clone(r.RateRounds)
		slices.Sort(q)
		r.P50us = float64(p[len(p)/2]) / 1e3
		r.CallsPerS = float64(q[len(q)/2])
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{"go": out["gobench"], "node": out[nodeToolkit]})
}
