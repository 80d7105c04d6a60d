package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/atpgo/atp/internal/pgtest"
	"github.com/atpgo/atp/server/store"
	"github.com/atpgo/atp/tests/weather"
)

// Start-up and registration with many tools, on a SQLite file as `atp
// serve` has by default:
//
//	go test -run '^$' -bench 'BenchmarkColdStart|BenchmarkRegisterTools' -benchtime 5x -count 5 ./server/
//
// (BenchmarkColdStart/postgres needs ATP_TEST_POSTGRES.)
//
// BenchmarkColdStart: a store holding coldKits toolkits of coldTools
// tools each (tests/weather's get_forecast schema under new names), then
// New, Serve on a loopback listener, and a first task_request answered
// over HTTP: looked up, its params validated against the tool's schema,
// and routed (to no connection: the toolkit is offline). Reports ms for
// New alone and for the whole until that answer ("ready-ms"). Target:
// ready in under 1 s.
//
// BenchmarkRegisterTools: register_tool for tools 1..registerTools of one
// toolkit, one after the other; reports the median time of one
// registration among the first 100 and among the last 100, and last /
// first. Target: a ratio of about 1 (a registration costs the same
// whatever the toolkit already has).

const (
	coldKits      = 10
	coldTools     = 1000 // per toolkit: coldKits*coldTools = 10,000
	registerTools = 3000
)

// forecastSchema is the input schema every benchmark tool has.
func forecastSchema() json.RawMessage { return weather.ATPTools()[0].InputSchema }

// forecastParams are valid params for forecastSchema.
var forecastParams = map[string]any{"location": map[string]any{"city": "Paris", "country": "FR"},
	"days": 3, "units": "celsius", "tags": []string{"a", "b"}, "since": "2026-11-21T05:00:00Z"}

func BenchmarkColdStart(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchColdStart(b, b.TempDir()+"/atp.db") })
	b.Run("postgres", func(b *testing.B) { benchColdStart(b, pgtest.DSN(b)) })
}

func benchColdStart(b *testing.B, dsn string) {
	ctx := context.Background()
	llmKey := populateStore(b, dsn)
	task, _ := json.Marshal(pyTaskRequest(llmKey, "kit7", 0, "tool_0777", forecastParams))
	var news, readies []time.Duration
	for b.Loop() {
		start := time.Now()
		srv, err := New(ctx, Config{DBPath: dsn, Logger: discardLogger()})
		if err != nil {
			b.Fatal(err)
		}
		news = append(news, time.Since(start))
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		serveCtx, stop := context.WithCancel(ctx)
		served := make(chan error, 1)
		go func() { served <- srv.Serve(serveCtx, ln) }()
		status, reply := postJSON(b, "http://"+ln.Addr().String()+"/api/v1/atp/llm-client/process/", task)
		readies = append(readies, time.Since(start))
		if status != http.StatusServiceUnavailable && status != http.StatusOK || !bytes.Contains(reply, []byte(`is offline`)) {
			b.Fatalf("first task_request = %d %s, want the toolkit offline (the call looked up, validated and routed)", status, reply)
		}
		stop()
		if err := <-served; err != nil {
			b.Fatal(err)
		}
		srv.Close()
	}
	b.ReportMetric(ms(median(news)), "new-ms")
	b.ReportMetric(ms(median(readies)), "ready-ms")
}

// populateStore stores coldKits toolkits of coldTools tools and returns an
// LLM key of their owner.
func populateStore(b *testing.B, dsn string) string {
	ctx := context.Background()
	st, err := store.Open(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	schema := forecastSchema()
	for k := range coldKits {
		name := "kit" + strconv.Itoa(k)
		key, _, err := st.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: name, Toolkit: name})
		if err != nil {
			b.Fatal(err)
		}
		d := store.Declaration{KeyID: key.ID, Toolkit: name, ToolkitHash: "h", Language: "Go"}
		for i := range coldTools {
			d.Tools = append(d.Tools, store.Tool{Name: fmt.Sprintf("tool_%04d", i), Description: "the forecast",
				Params: []string{"location", "days", "units", "tags", "since"}, RequiredParams: []string{"location", "days"},
				InputSchema: schema, CodeHash: "c"})
		}
		if _, _, err := st.Declare(ctx, d); err != nil {
			b.Fatal(err)
		}
	}
	_, llmKey, err := st.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "agent"})
	if err != nil {
		b.Fatal(err)
	}
	return llmKey
}

func BenchmarkRegisterTools(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) { benchRegisterTools(b, func() string { return b.TempDir() + "/atp.db" }) })
	b.Run("postgres", func(b *testing.B) { benchRegisterTools(b, func() string { return pgtest.DSN(b) }) })
}

// benchRegisterTools registers registerTools tools in a store of dsn()'s,
// a new one each round.
func benchRegisterTools(b *testing.B, dsn func() string) {
	var firsts, lasts []time.Duration
	for b.Loop() {
		b.StopTimer()
		srv, err := New(context.Background(), Config{DBPath: dsn(), Logger: discardLogger(), MaxToolsPerToolkit: registerTools})
		if err != nil {
			b.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		// Warm up the connection, the store and the caches on another
		// toolkit, so that the first 100 are not paying for a first use.
		warmKey := benchKey(b, srv, "toolkit")
		for i := range 50 {
			register(b, hs.URL, warmKey, "warm", i)
		}
		tkKey := benchKey(b, srv, "toolkit")
		b.StartTimer()
		took := make([]time.Duration, registerTools)
		for i := range registerTools {
			start := time.Now()
			register(b, hs.URL, tkKey, "big", i)
			took[i] = time.Since(start)
		}
		b.StopTimer()
		firsts = append(firsts, median(took[:100]))
		lasts = append(lasts, median(took[registerTools-100:]))
		hs.Close()
		srv.Close()
		b.StartTimer()
	}
	first, last := median(firsts), median(lasts)
	b.ReportMetric(ms(first), "first100-ms/tool")
	b.ReportMetric(ms(last), "last100-ms/tool")
	b.ReportMetric(float64(last)/float64(first), "last/first")
}

// register registers tool i of toolkit kit.
func register(b *testing.B, base, key, kit string, i int) {
	body, _ := json.Marshal(map[string]any{"function_id": fmt.Sprintf("tool_%04d", i), "api_key": key, "app_name": kit,
		"programming_language": "Go", "code_hash": "c" + strconv.Itoa(i), "toolkit_hash": "h",
		"metadata": map[string]any{"description": "the forecast", "params": []string{"location", "days", "units", "tags", "since"},
			"required_params": []string{"location", "days"}, "input_schema": forecastSchema()}})
	if status, reply := postJSON(b, base+"/api/v1/register_tool", body); status != http.StatusOK {
		b.Fatalf("register_tool %s/%d = %d %s", kit, i, status, reply)
	}
}

func postJSON(b *testing.B, url string, body []byte) (int, []byte) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	reply, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, reply
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
