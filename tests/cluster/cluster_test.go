package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/atpgo/atp/internal/pgtest"
	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

// opsToolkit has echo ({"n": int} back) and hold, which runs until
// release is closed or its call is cancelled.
func opsToolkit(running *atomic.Int64, release <-chan struct{}) *runtime.Toolkit {
	tk := runtime.NewToolkit("ops")
	err := tk.Add(
		&runtime.Tool{Name: "echo", Description: "Returns n.", Params: []string{"n"}, RequiredParams: []string{"n"},
			InputSchema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}`),
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				var n int64
				if d.Object() {
					for d.Next() {
						if string(d.Key()) == "n" {
							n = d.Int(64)
						} else {
							d.Unknown("n")
						}
					}
				}
				if d.Failed() {
					return nil, nil // Invoke reports d's problems
				}
				return map[string]int64{"n": n}, nil
			}},
		&runtime.Tool{Name: "hold", Description: "Waits to be released.",
			InputSchema: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`),
			Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
				if d.Object() {
					for d.Next() {
						d.Unknown("")
					}
				}
				if d.Failed() {
					return nil, nil
				}
				running.Add(1)
				defer running.Add(-1)
				select {
				case <-release:
				case <-ctx.Done():
				}
				return "released", nil
			}},
	)
	if err != nil {
		panic(err)
	}
	return tk
}

// llmWS is an LLM client on one replica's WebSocket that fails the test
// if any call is answered twice.
type llmWS struct {
	t  *testing.T
	ws *websocket.Conn
	wm sync.Mutex

	mu      sync.Mutex
	seq     int
	waiting map[string]chan map[string]any
	done    map[string]bool
}

func dialLLM(t *testing.T, base, key string) *llmWS {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(base, "http")+"/ws/v1/atp/llm-client/"+key+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	ws.WriteJSON(map[string]any{"type": "auth", "api_key": key})
	var ar map[string]any
	if err := ws.ReadJSON(&ar); err != nil || ar["success"] != true {
		t.Fatalf("auth: %v %v", ar, err)
	}
	c := &llmWS{t: t, ws: ws, waiting: map[string]chan map[string]any{}, done: map[string]bool{}}
	go c.read()
	return c
}

func (c *llmWS) read() {
	for {
		var m map[string]any
		if err := c.ws.ReadJSON(&m); err != nil {
			return
		}
		id, _ := m["request_id"].(string)
		c.mu.Lock()
		if c.done[id] {
			c.t.Errorf("request %s answered twice; again with %v", id, m)
		}
		c.done[id] = true
		ch := c.waiting[id]
		delete(c.waiting, id)
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
}

// call sends a task_request and returns where its answer will come.
func (c *llmWS) call(tool string, params any, timeoutMs int) <-chan map[string]any {
	c.mu.Lock()
	c.seq++
	id := fmt.Sprintf("task_%d", c.seq)
	ch := make(chan map[string]any, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	c.wm.Lock()
	defer c.wm.Unlock()
	c.ws.WriteJSON(map[string]any{"type": "task_request", "request_id": id, "toolkit_id": "ops", "timeout_ms": timeoutMs,
		"payload": map[string]any{"function": tool, "parameters": params}})
	return ch
}

func answer(t *testing.T, ch <-chan map[string]any) map[string]any {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no answer in 30s")
		return nil
	}
}

// echoOK calls echo until it succeeds, for up to 10s; each failure on the
// way must be a clear error of the failover (the toolkit is offline for a
// moment, the replica lost NATS for a moment), never a hang.
func echoOK(t *testing.T, c *llmWS, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := answer(t, c.call("echo", map[string]any{"n": n}, 10000))
		if m["status"] == "success" {
			if b, _ := json.Marshal(m["payload"]); !strings.Contains(string(b), fmt.Sprintf(`"n":%d`, n)) {
				t.Fatalf("echo %d: %s", n, b)
			}
			return
		}
		msg, _ := m["message"].(string)
		if !strings.Contains(msg, "offline") && !strings.Contains(msg, "NATS") && !strings.Contains(msg, "replica") {
			t.Fatalf("echo %d failed with %q", n, msg)
		}
		if time.Now().After(deadline) {
			t.Fatalf("echo %d still fails after 10s: %q", n, msg)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Three replicas on one PostgreSQL and one NATS, a round-robin load
// balancer in front. A Go toolkit (runtime.Serve) connects through the
// balancer; LLM clients call through the other replicas. Then, in turn:
// the replica holding the toolkit dies (the calls in flight through it
// fail at once, each answered once; the toolkit reconnects elsewhere
// within its backoff; calls succeed again), NATS restarts (calls across
// replicas fail clearly meanwhile; everything comes back, the inbox queue
// included), PostgreSQL's connections drop (clear errors; recovery), and
// the replica an llmclient is on dies (it reconnects and goes on).
func TestReplicasFailover(t *testing.T) {
	dsn := pgtest.DSN(t)
	nats := startNATS(t)
	rs := startReplicas(t, 3, nats, dsn, server.Config{
		PresenceTTL: 3 * time.Second, ReplicaProbeInterval: 20 * time.Millisecond,
		InboxOnlineWindow: 5 * time.Second,
	})
	ctx := context.Background()
	_, tkKey, err := rs.replicas[0].srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	_, llmKey, err := rs.replicas[0].srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "agent"})
	if err != nil {
		t.Fatal(err)
	}

	var running atomic.Int64
	release := make(chan struct{})
	defer close(release)
	var status runtime.Status
	tctx, stopToolkit := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- opsToolkit(&running, release).Serve(tctx, runtime.ServeConfig{
			URL: "http://" + rs.lb.addr(), APIKey: tkKey, Status: &status,
			Backoff: runtime.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond},
		})
	}()
	defer func() { stopToolkit(); <-served }()
	rs.eventually("the toolkit to connect", func() bool { return status.Online() && rs.holder() != nil })
	holder := rs.holder()
	var others []*replica
	for _, r := range rs.replicas {
		if r != holder {
			others = append(others, r)
		}
	}

	// ---- calls through the other replicas ----
	clients := []*llmWS{dialLLM(t, others[0].url, llmKey), dialLLM(t, others[1].url, llmKey)}
	var wg sync.WaitGroup
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 20 {
				echoOK(t, c, i*100+j)
			}
		}()
	}
	wg.Wait()
	for _, r := range others {
		if v := r.metric(`atp_cluster_calls_routed_total{route="replica"}`); v != "20" {
			t.Errorf("replica %s forwarded %s calls, want 20", r.name, v)
		}
	}

	// ---- the holder dies with calls in flight ----
	var inflight []<-chan map[string]any
	for _, c := range clients {
		for range 3 {
			inflight = append(inflight, c.call("hold", map[string]any{}, 60000))
		}
	}
	rs.eventually("the six calls to run", func() bool { return running.Load() == 6 })
	killed := time.Now()
	holder.kill()
	for _, ch := range inflight {
		m := answer(t, ch)
		msg, _ := m["message"].(string)
		if m["status"] != "error" || !strings.Contains(msg, "replica "+holder.srv.ReplicaID()) || !strings.Contains(msg, "while the call was in flight") {
			t.Fatalf("a call in flight on the dead replica ended with %v", m)
		}
	}
	if took := time.Since(killed); took > 20*time.Second {
		t.Fatalf("the calls in flight failed %s after the kill: not at once", took)
	}
	rs.eventually("the toolkit to reconnect to another replica", func() bool {
		h := rs.holder()
		return status.Online() && h != nil && h != holder
	})
	for i, c := range clients {
		echoOK(t, c, 1000+i)
	}

	// ---- NATS restarts ----
	holder = rs.holder()
	caller := clients[0]
	if others[0] == holder {
		caller = clients[1]
	}
	nats.stop()
	for _, r := range rs.replicas {
		if !r.dead {
			rs.eventually(r.name+" to report NATS down", func() bool { return r.health()["status"] == "unavailable" })
		}
	}
	m := answer(t, caller.call("echo", map[string]any{"n": 1}, 10000))
	if msg, _ := m["message"].(string); m["status"] != "error" || !strings.Contains(msg, "NATS") {
		t.Fatalf("a call across replicas without NATS: %v", m)
	}
	nats.start()
	for _, r := range rs.replicas {
		if !r.dead {
			rs.eventually(r.name+" to reconnect to NATS", func() bool { return r.health()["status"] == "ok" })
		}
	}
	echoOK(t, caller, 2000)
	// The inbox queue, which lived in NATS's memory, is back: an inbox
	// poll on one replica takes a call made on another.
	inboxRoundTrip(t, holder, caller, tkKey)

	// ---- PostgreSQL's connections drop ----
	rs.db.cut(true)
	rs.eventually("the store's loss to show at /healthz", func() bool {
		h := holder.health()
		d, _ := h["database"].(string)
		return h["status"] == "unavailable" && d != "ok" && d != ""
	})
	body := `{"function_id":"later","api_key":"` + tkKey + `","app_name":"ops","programming_language":"Go","metadata":{"params":[]}}`
	resp, err := http.Post(holder.url+"/api/v1/register_tool", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 500 || !bytes.Contains(msg, []byte("internal error")) {
		t.Fatalf("registration without the database: %d %s", resp.StatusCode, msg)
	}
	// Sessions already open go on: a call needs no database.
	echoOK(t, caller, 3000)
	rs.db.reopen()
	rs.eventually("the store to come back", func() bool { return holder.health()["status"] == "ok" })
	resp, err = http.Post(holder.url+"/api/v1/register_tool", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("registration after the database came back: %d", resp.StatusCode)
	}

	// ---- the replica an llmclient is on dies ----
	agent, err := llmclient.New(llmKey, llmclient.WithBaseURL("http://"+rs.lb.addr()), llmclient.WithTransport(llmclient.TransportWS),
		llmclient.WithBackoff(llmclient.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	defer agent.Close()
	call := func(n int) (*llmclient.Result, error) {
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		return agent.Call(cctx, "ops", "echo", json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)))
	}
	if r, err := call(4000); err != nil || r.Failed() {
		t.Fatalf("llmclient: %+v %v", r, err)
	}
	var on *replica
	for _, r := range rs.replicas {
		if !r.dead && r.metric("atp_llm_connections") == "1" {
			on = r
		}
	}
	if on == nil {
		t.Fatal("no replica holds the llmclient's connection")
	}
	on.kill()
	deadline := time.Now().Add(15 * time.Second)
	for n := 4001; ; n++ {
		r, err := call(n)
		if err == nil && !r.Failed() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("llmclient after its replica died: %+v %v", r, err)
		}
	}
}

// inboxRoundTrip makes a call on caller's replica for an inbox toolkit
// polled on poller, answered on poller.
func inboxRoundTrip(t *testing.T, poller *replica, caller *llmWS, tkKey string) {
	t.Helper()
	// The toolkit's WebSocket must not take the call: use a toolkit of its
	// own, served by inbox only.
	_, key, err := poller.srv.CreateKey(context.Background(), store.NewKey{Kind: store.KindToolkit, Name: "mail", Toolkit: "mail"})
	if err != nil {
		t.Fatal(err)
	}
	body := `{"function_id":"send","api_key":"` + key + `","app_name":"mail","programming_language":"Go","metadata":{"params":[]}}`
	resp, err := http.Post(poller.url+"/api/v1/register_tool", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("register mail: %v %v", err, resp)
	}
	resp.Body.Close()
	got := make(chan []byte, 1)
	go func() {
		// A first, empty poll marks the inbox online; the second waits.
		for i := 0; ; i++ {
			resp, err := http.Get(poller.url + "/api/v1/toolkit/" + key + "/inbox?wait=1")
			if err != nil {
				got <- nil
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != "{}" || i > 50 {
				got <- b
				return
			}
		}
	}()
	var ch <-chan map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		caller.mu.Lock()
		caller.seq++
		id := fmt.Sprintf("task_%d", caller.seq)
		c := make(chan map[string]any, 1)
		caller.waiting[id] = c
		caller.mu.Unlock()
		caller.wm.Lock()
		caller.ws.WriteJSON(map[string]any{"type": "task_request", "request_id": id, "toolkit_id": "mail", "timeout_ms": 10000,
			"payload": map[string]any{"function": "send", "parameters": map[string]any{}}})
		caller.wm.Unlock()
		ch = c
		// Until the caller's replica has heard of the registration, then
		// of the first poll, the toolkit is unknown, then offline there.
		select {
		case m := <-c:
			if msg, _ := m["message"].(string); !strings.Contains(msg, "offline") && !strings.Contains(msg, "not found") || time.Now().After(deadline) {
				t.Fatalf("inbox call: %v", m)
			}
			time.Sleep(10 * time.Millisecond)
			continue
		case b := <-got:
			var req struct {
				RequestID string `json:"request_id"`
				ToolName  string `json:"tool_name"`
			}
			if json.Unmarshal(b, &req) != nil || req.ToolName != "send" {
				t.Fatalf("inbox poll: %s", b)
			}
			resp, err := http.Post(poller.url+"/api/v1/toolkit/"+key+"/inbox/respond", "application/json",
				strings.NewReader(`{"request_id":"`+req.RequestID+`","response":"sent"}`))
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("respond: %v %v", err, resp)
			}
			resp.Body.Close()
		}
		break
	}
	if m := answer(t, ch); m["status"] != "success" {
		t.Fatalf("inbox call: %v", m)
	}
}

// A NATS without JetStream cannot hold the replicas' shared inbox queue:
// the replica refuses to start, saying how to fix it.
func TestNATSWithoutJetStream(t *testing.T) {
	ns, err := natsserver.NewServer(&natsserver.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	defer ns.Shutdown()
	st, err := store.Open(context.Background(), store.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = server.New(context.Background(), server.Config{Store: st, SecretKey: make([]byte, 32), NATSURL: ns.ClientURL(), Logger: discard()})
	if err == nil || !strings.Contains(err.Error(), "no JetStream (start nats-server with -js)") {
		t.Fatalf("New on a NATS without JetStream: %v", err)
	}
}
