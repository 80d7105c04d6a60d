package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/internal/natstest"
	"github.com/atpgo/atp/server/store"
)

var pySlow = pyTool{
	name: "slow", description: "Never answers.", params: []string{}, required: []string{},
	source: "@client.register_tool(...)\ndef slow():\n    time.sleep(1e9)\n",
}

// normalized drops what differs between two runs of the same call: its
// ids.
func normalized(m map[string]any) string {
	delete(m, "request_id")
	delete(m, "tool_call_id")
	b, _ := json.Marshal(m)
	return string(b)
}

// A call that arrives at one replica for a toolkit connected to another
// comes back with what one server answers, byte for byte: results, the
// tool's failure, bad params, an unknown tool and the timeout.
func TestClusterCallAnswersAsOneServer(t *testing.T) {
	single := newEnv(t, Config{})
	reps := newReplicas(t, 2, Config{})
	a, b := reps[0], reps[1]
	ref := toolkitRef{"default", "hello"}

	single.pyRegister(single.tkKey, "hello", pyGreet, pyFail, pySlow)
	go servePy(single.dialPyToolkit(single.tkKey))
	a.pyRegister(a.tkKey, "hello", pyGreet, pyFail, pySlow)
	go servePy(a.dialPyToolkit(a.tkKey))
	b.seesHolder(ref, a, 1)

	calls := []struct {
		tool   string
		params any
		extra  map[string]any
	}{
		{"greet", map[string]any{"name": "Ada"}, nil},
		{"fail", map[string]any{}, nil},
		{"greet", map[string]any{"times": 2}, nil}, // name missing
		{"nope", map[string]any{}, nil},
		{"slow", map[string]any{}, map[string]any{"timeout_ms": 200}},
	}
	one, two := single.dialPyLLM(single.llmKey), b.dialPyLLM(b.llmKey)
	for i, c := range calls {
		req := func(key string) map[string]any {
			m := pyTaskRequest(key, "hello", i, c.tool, c.params)
			for k, v := range c.extra {
				m[k] = v
			}
			return m
		}
		want := normalized(roundTrip(t, one, req(single.llmKey)))
		got := normalized(roundTrip(t, two, req(b.llmKey)))
		if got != want {
			t.Errorf("call %d (%s): across replicas\n%s\nwant, as on one server,\n%s", i, c.tool, got, want)
		}
	}
	// Two calls went across (greet, fail) and the timed-out one; the
	// others failed before routing.
	if n := b.srv.cluster.stats.routedReplica.Load(); n != 3 {
		t.Errorf("replica B forwarded %d calls, want 3", n)
	}
	if n := a.srv.cluster.stats.served.Load(); n != 3 {
		t.Errorf("replica A served %d calls, want 3", n)
	}
	// The timed-out call's place on A is freed within its timeout plus a
	// second, though the toolkit never answers.
	eventually(t, "A to drop the timed-out call", func() bool { return a.inFlight(ref) == 0 })
}

// A call for a toolkit that no replica holds fails at once; so does one
// whose params NATS cannot carry, saying what to raise.
func TestClusterOfflineAndTooLarge(t *testing.T) {
	reps := newReplicas(t, 2, Config{FrameLimit: 8 << 20, MaxPendingBytesPerLLMKey: 64 << 20})
	a, b := reps[0], reps[1]
	a.pyRegister(a.tkKey, "hello", pyGreet)
	b.knows(toolkitRef{"default", "hello"})
	llm := b.dialPyLLM(b.llmKey)
	req := pyTaskRequest(b.llmKey, "hello", 0, "greet", map[string]any{"name": "Ada"})
	m := roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if msg, _ := m["message"].(string); !strings.Contains(msg, `toolkit "hello" is offline`) {
		t.Fatalf("offline: %v", m)
	}

	go servePy(a.dialPyToolkit(a.tkKey))
	b.seesHolder(toolkitRef{"default", "hello"}, a, 1)
	big := strings.Repeat("x", int(b.srv.cluster.maxPayload.Load())+1)
	req = pyTaskRequest(b.llmKey, "hello", 1, "greet", map[string]any{"name": big})
	m = roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "max_payload") {
		t.Fatalf("too large: %.300v", m["message"])
	}
	// The replica goes on.
	req = pyTaskRequest(b.llmKey, "hello", 2, "greet", map[string]any{"name": "Ada"})
	if res := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); res != "Hello, Ada" {
		t.Fatalf("result %v", res)
	}
}

// countingToolkit answers greet on ws and counts the calls it took.
func countingToolkit(ws *websocket.Conn, n *atomic.Int64) {
	for {
		var req pyToolRequest
		if err := ws.ReadJSON(&req); err != nil {
			return
		}
		n.Add(1)
		ws.WriteJSON(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": "hi"})
	}
}

// A toolkit connected to two replicas takes calls from a third on both
// connections, in turn when they are equally busy; one connected to the
// caller's replica and another's takes them on both as well.
func TestClusterLoadBalances(t *testing.T) {
	reps := newReplicas(t, 3, Config{})
	a, b, c := reps[0], reps[1], reps[2]
	ref := toolkitRef{"default", "hello"}
	a.pyRegister(a.tkKey, "hello", pyGreet)
	var onA, onC atomic.Int64
	go countingToolkit(a.dialPyToolkit(a.tkKey), &onA)
	go countingToolkit(c.dialPyToolkit(c.tkKey), &onC)
	b.seesHolder(ref, a, 1)
	b.seesHolder(ref, c, 1)
	llm := b.dialPyLLM(b.llmKey)
	const calls = 40
	for i := range calls {
		req := pyTaskRequest(b.llmKey, "hello", i, "greet", map[string]any{"name": "x"})
		checkTaskResponse(t, roundTrip(t, llm, req), req, "success")
	}
	if onA.Load()+onC.Load() != calls || onA.Load() < calls/4 || onC.Load() < calls/4 {
		t.Fatalf("calls on A %d, on C %d: want %d spread over both", onA.Load(), onC.Load(), calls)
	}

	// The caller's replica holds a connection too: calls go to both.
	var onB atomic.Int64
	go countingToolkit(b.dialPyToolkit(b.tkKey), &onB)
	eventually(t, "B's connection to be routed to", func() bool { ws, _ := b.srv.hub.online(ref); return ws == 1 })
	onA.Store(0)
	onC.Store(0)
	var wg sync.WaitGroup
	for i := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if m := b.srv.runTask(context.Background(), store.Key{Owner: "default", Kind: store.KindLLM}, taskMessage("hello", "greet", i)); !strings.Contains(string(m), `"status":"success"`) {
				t.Errorf("call %d: %s", i, m)
			}
		}()
	}
	wg.Wait()
	if onB.Load() == 0 || onA.Load()+onC.Load() == 0 {
		t.Fatalf("calls on B %d, on A %d, on C %d: want both the local and the remote connections used", onB.Load(), onA.Load(), onC.Load())
	}
}

// taskMessage is a decoded task_request.
func taskMessage(toolkit, tool string, i int) *llmMessage {
	var m llmMessage
	raw, _ := json.Marshal(map[string]any{"type": "task_request", "request_id": fmt.Sprint(i), "toolkit_id": toolkit,
		"payload": map[string]any{"function": tool, "parameters": map[string]any{"name": "x"}}})
	if err := decodeLLMMessage(raw, &m); err != nil {
		panic(err)
	}
	return &m
}

// The replica holding a toolkit leaves NATS (its process dies, its
// machine is lost): the calls in flight through it fail at once, saying
// so, never at their timeout and never twice; the toolkit, connected
// again to another replica, takes the next calls.
func TestClusterHolderLostFailsCallsAtOnce(t *testing.T) {
	reps := newReplicas(t, 3, Config{})
	a, b, c := reps[0], reps[1], reps[2]
	ref := toolkitRef{"default", "hello"}
	a.pyRegister(a.tkKey, "hello", pyGreet, pySlow)
	tkA := a.dialPyToolkit(a.tkKey)
	go servePy(tkA)
	b.seesHolder(ref, a, 1)
	llm := b.dialPyLLM(b.llmKey)
	sent := map[string]bool{}
	for i := range 3 {
		req := pyTaskRequest(b.llmKey, "hello", i, "slow", map[string]any{})
		req["timeout_ms"] = 120000
		sent[req["request_id"].(string)] = true
		if err := llm.WriteJSON(req); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the calls to reach the toolkit on A", func() bool { return a.inFlight(ref) == 3 })

	start := time.Now()
	a.nats.cut(true) // A is gone from NATS, as when its process dies
	for range 3 {
		m := readMsg(t, llm)
		id, _ := m["request_id"].(string)
		if !sent[id] || m["status"] != "error" {
			t.Fatalf("answer %v: want an error for one of the calls sent", m)
		}
		delete(sent, id)
		if msg, _ := m["message"].(string); !strings.Contains(msg, "replica "+a.srv.cluster.id) || !strings.Contains(msg, "while the call was in flight") {
			t.Fatalf("message %q: want it to say the replica holding the toolkit went away", msg)
		}
	}
	// Well under the calls' two minutes: the probe found A gone.
	if took := time.Since(start); took > 30*time.Second {
		t.Fatalf("the calls failed after %s", took)
	}

	// The toolkit comes back through another replica.
	tkA.Close()
	go servePy(c.dialPyToolkit(c.tkKey))
	b.seesHolder(ref, c, 1)
	req := pyTaskRequest(b.llmKey, "hello", 9, "greet", map[string]any{"name": "Ada"})
	m := roundTrip(t, llm, req)
	if res := checkTaskResponse(t, m, req, "success"); res != "Hello, Ada" {
		t.Fatalf("after failover: %v", m)
	}
	// Nothing else came: each failed call was answered once (the greet's
	// answer is the next message).
}

// A replica that loses NATS fails at once the calls it had forwarded
// (their answers cannot reach it), reports it at /healthz, and routes
// again once NATS is back.
func TestClusterLostNATSFailsForwardedCalls(t *testing.T) {
	reps := newReplicas(t, 2, Config{})
	a, b := reps[0], reps[1]
	ref := toolkitRef{"default", "hello"}
	a.pyRegister(a.tkKey, "hello", pyGreet, pySlow)
	go servePy(a.dialPyToolkit(a.tkKey))
	b.seesHolder(ref, a, 1)
	llm := b.dialPyLLM(b.llmKey)
	req := pyTaskRequest(b.llmKey, "hello", 0, "slow", map[string]any{})
	req["timeout_ms"] = 120000
	if err := llm.WriteJSON(req); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the call to reach the toolkit", func() bool { return a.inFlight(ref) == 1 })
	b.nats.cut(true)
	m := readMsg(t, llm)
	checkTaskResponse(t, m, req, "error")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "lost its connection to NATS") {
		t.Fatalf("message %q", msg)
	}
	status, body := b.get("/healthz")
	if status != http.StatusServiceUnavailable || !strings.Contains(string(body), `"nats":"NATS at nats://127.0.0.1:`) {
		t.Fatalf("healthz without NATS: %d %s", status, body)
	}
	req = pyTaskRequest(b.llmKey, "hello", 1, "greet", map[string]any{"name": "Ada"})
	m = roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if msg, _ := m["message"].(string); !strings.Contains(msg, "lost its connection to NATS") {
		t.Fatalf("call without NATS: %q", msg)
	}

	b.nats.reopen()
	eventually(t, "B to reconnect", func() bool { s, _ := b.get("/healthz"); return s == http.StatusOK })
	b.seesHolder(ref, a, 1)
	req = pyTaskRequest(b.llmKey, "hello", 2, "greet", map[string]any{"name": "Ada"})
	if res := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); res != "Hello, Ada" {
		t.Fatalf("after reconnecting: %v", res)
	}
}

// A key revoked on one replica loses its sessions on every replica at
// once, without waiting for the store's periodic check.
func TestClusterRevocationReachesEveryReplica(t *testing.T) {
	reps := newReplicas(t, 2, Config{RevocationCheckInterval: time.Hour})
	a, b := reps[0], reps[1]
	a.pyRegister(a.tkKey, "hello", pyGreet)
	tk := b.dialPyToolkit(b.tkKey)
	llm := b.dialPyLLM(b.llmKey)
	if err := a.srv.RevokeKey(context.Background(), keyID(t, b.tkKey)); err != nil {
		t.Fatal(err)
	}
	closedWith(t, tk, websocket.ClosePolicyViolation)
	if err := a.srv.RevokeKey(context.Background(), keyID(t, b.llmKey)); err != nil {
		t.Fatal(err)
	}
	closedWith(t, llm, websocket.ClosePolicyViolation)
}

// A tool registered on one replica is what every replica serves next, and
// a connection waiting on another replica for its key's first
// registration is bound by it.
func TestClusterRegistrationReachesEveryReplica(t *testing.T) {
	reps := newReplicas(t, 2, Config{})
	a, b := reps[0], reps[1]
	ref := toolkitRef{"default", "hello"}
	tk := b.dialPyToolkit(b.tkKey) // unbound: no tool registered yet
	go servePy(tk)
	a.pyRegister(a.tkKey, "hello", pyGreet)
	eventually(t, "B to load the toolkit", func() bool { k := b.srv.registry.get(ref); return k != nil && k.tool("greet") != nil })
	eventually(t, "B to bind the waiting connection", func() bool { ws, _ := b.srv.hub.online(ref); return ws == 1 })
	llm := b.dialPyLLM(b.llmKey)
	req := pyTaskRequest(b.llmKey, "hello", 0, "greet", map[string]any{"name": "Ada"})
	if res := checkTaskResponse(t, roundTrip(t, llm, req), req, "success"); res != "Hello, Ada" {
		t.Fatalf("result %v", res)
	}

	// Registered again, with a changed description and a new tool.
	greet2 := pyGreet
	greet2.description, greet2.source = "Greets someone warmly.", pyGreet.source+"# v2\n"
	a.pyRegister(a.tkKey, "hello", pyFail, greet2)
	eventually(t, "B to serve the new registration", func() bool {
		k := b.srv.registry.get(ref)
		return k != nil && k.tool("fail") != nil && k.tool("greet").Description == "Greets someone warmly."
	})
	m := roundTrip(t, llm, pyContextRequest(b.llmKey, "hello", "openai"))
	if b, _ := json.Marshal(m); !strings.Contains(string(b), "Greets someone warmly.") || !strings.Contains(string(b), `"fail"`) {
		t.Fatalf("context on B: %s", b)
	}
}

// An inbox toolkit's call, made on one replica, is taken by a poll on
// another, once, and its answer, sent to a third, ends it.
func TestClusterInbox(t *testing.T) {
	reps := newReplicas(t, 3, Config{})
	a, b, c := reps[0], reps[1], reps[2]
	a.pyRegister(a.tkKey, "hello", pyGreet)
	b.knows(toolkitRef{"default", "hello"})
	// A poll on C marks the inbox online everywhere.
	status, body := c.get("/api/v1/toolkit/" + c.tkKey + "/inbox")
	if status != 200 || string(body) != "{}\n" && string(body) != "{}" {
		t.Fatalf("first poll: %d %s", status, body)
	}
	eventually(t, "B to see the inbox poll", func() bool {
		b.srv.hub.mu.Lock()
		defer b.srv.hub.mu.Unlock()
		return b.srv.hub.inboxOnlineRef(toolkitRef{"default", "hello"}, nil)
	})
	answer := make(chan []byte, 1)
	go func() {
		answer <- b.srv.runTask(context.Background(), store.Key{Owner: "default", Kind: store.KindLLM}, taskMessage("hello", "greet", 1))
	}()
	// Two polls wait, on A and C: one gets the call, the other nothing.
	type polled struct {
		on   string
		body []byte
	}
	got := make(chan polled, 2)
	for _, e := range []*testEnv{a, c} {
		go func() {
			_, body := e.get("/api/v1/toolkit/" + e.tkKey + "/inbox?wait=2")
			got <- polled{e.srv.cluster.id, body}
		}()
	}
	var call struct {
		RequestID string          `json:"request_id"`
		ToolName  string          `json:"tool_name"`
		Params    json.RawMessage `json:"params"`
	}
	calls := 0
	for range 2 {
		p := <-got
		if strings.TrimSpace(string(p.body)) == "{}" {
			continue
		}
		calls++
		if err := json.Unmarshal(p.body, &call); err != nil || call.ToolName != "greet" {
			t.Fatalf("poll: %s", p.body)
		}
	}
	if calls != 1 {
		t.Fatalf("the call was handed out %d times", calls)
	}
	// The answer goes to a replica the call did not come from.
	status, reply := a.post("/api/v1/toolkit/"+a.tkKey+"/inbox/respond", map[string]any{"request_id": call.RequestID, "response": "Hello, x"})
	if status != 200 || reply["ok"] != true {
		t.Fatalf("respond: %d %v", status, reply)
	}
	if m := <-answer; !strings.Contains(string(m), `"status":"success"`) || !strings.Contains(string(m), "Hello, x") {
		t.Fatalf("answer: %s", m)
	}
	// Answered again: gone.
	status, reply = c.post("/api/v1/toolkit/"+c.tkKey+"/inbox/respond", map[string]any{"request_id": call.RequestID, "response": "again"})
	if status != http.StatusGone {
		t.Fatalf("second answer: %d %v", status, reply)
	}
}

// A call queued for an inbox toolkit whose polls stopped, on whichever
// replica, fails when the lease runs out, as on one server.
func TestClusterInboxLease(t *testing.T) {
	reps := newReplicas(t, 2, Config{InboxOnlineWindow: 300 * time.Millisecond})
	a, b := reps[0], reps[1]
	a.pyRegister(a.tkKey, "hello", pyGreet)
	b.knows(toolkitRef{"default", "hello"})
	a.get("/api/v1/toolkit/" + a.tkKey + "/inbox")
	eventually(t, "B to see the inbox poll", func() bool {
		b.srv.hub.mu.Lock()
		defer b.srv.hub.mu.Unlock()
		return b.srv.hub.inboxOnlineRef(toolkitRef{"default", "hello"}, nil)
	})
	m := b.srv.runTask(context.Background(), store.Key{Owner: "default", Kind: store.KindLLM}, taskMessage("hello", "greet", 1))
	if !strings.Contains(string(m), `stopped polling its inbox`) {
		t.Fatalf("answer: %s", m)
	}
}

// /healthz names the replica and NATS; /metrics carries the replica's
// figures.
func TestClusterHealthAndMetrics(t *testing.T) {
	reps := newReplicas(t, 2, Config{})
	status, body := reps[0].get("/healthz")
	var h map[string]any
	json.Unmarshal(body, &h)
	if status != 200 || h["nats"] != "ok" || h["replica"] != reps[0].srv.cluster.id || h["replicas"] != float64(2) {
		t.Fatalf("healthz: %d %s", status, body)
	}
	_, body = reps[0].get("/metrics")
	for _, want := range []string{`atp_cluster_calls_routed_total{route="replica"} 0`, "atp_nats_connected 1", "atp_cluster_replicas 2", "atp_cluster_forward_seconds_count 0"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// A server of another cluster on the same NATS sees none of these.
	url, prefix := natstest.Prefix(t)
	st, err := store.Open(context.Background(), store.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() }) // after the server's own cleanup
	other := newEnv(t, Config{NATSURL: url, ClusterPrefix: prefix, Store: st})
	if n := other.srv.cluster.replicas(); n != 1 {
		t.Fatalf("another cluster's replica sees %d replicas", n)
	}
}

// Bad configurations and an unreachable NATS fail New, saying why, with
// no password in the message.
func TestClusterConfigErrors(t *testing.T) {
	st, err := store.Open(context.Background(), store.Memory)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{NATSURL: "nats://127.0.0.1:1", Store: st, ClusterPrefix: "a.b"}, `ClusterPrefix "a.b"`},
		{Config{NATSURL: "nats://127.0.0.1:1", Store: st, PresenceTTL: time.Millisecond}, "PresenceTTL"},
		{Config{NATSURL: "nats://user:s3cret@127.0.0.1:1", Store: st}, "NATS at nats://user:xxxxx@127.0.0.1:1"},
		{Config{NATSURL: "nats://127.0.0.1:1", DBPath: t.TempDir() + "/atp.db"}, "share one PostgreSQL database"},
	} {
		c.cfg.SecretKey = make([]byte, 32)
		_, err := New(context.Background(), c.cfg)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "s3cret") {
			t.Errorf("New(%+v) = %v, want an error with %q", c.cfg.NATSURL, err, c.want)
		}
	}
}

// A Platools toolkit connected to one replica takes calls made on another,
// with the envelope it would get on one server (the agent and the end
// user), and its declaration is what the other replica serves.
func TestClusterPlatools(t *testing.T) {
	reps := newReplicas(t, 2, Config{})
	a, b := reps[0], reps[1]
	c := a.dialSDK(a.tkKey, "crm", "prod")
	echo := sdkTool("echo", "q")
	c.mustRegister(echo, sdkTool("fail"))
	calls := make(chan map[string]any, 4)
	go serveSDK(c.ws, calls)
	ref := toolkitRef{store.DefaultOwner, "crm"}
	eventually(t, "B to load the declaration", func() bool { k := b.srv.registry.get(ref); return k != nil && k.tool("echo") != nil })
	b.seesHolder(ref, a, 1)

	llm := b.dialPyLLM(b.llmKey)
	req := pyTaskRequest(b.llmKey, "crm", 0, "echo", map[string]any{"q": "orders"})
	req["payload"].(map[string]any)["external_user_id"] = "u-42"
	result := checkTaskResponse(t, roundTrip(t, llm, req), req, "success").(map[string]any)
	<-calls
	envelope := result["__platos"].(map[string]any)
	if envelope["userId"] != "u-42" || envelope["agentId"] != keyID(t, b.llmKey) || envelope["entityId"] != "crm" || result["q"] != "orders" {
		t.Fatalf("params across replicas = %v", result)
	}
	req = pyTaskRequest(b.llmKey, "crm", 1, "fail", nil)
	m := roundTrip(t, llm, req)
	checkTaskResponse(t, m, req, "error")
	if m["message"] != "the weather service is down" {
		t.Fatalf("tool_error across replicas: %v", m)
	}
}

// A poll on one replica that took a call and could not hand it on gives it
// back to the replica that waits for it: the next poll, anywhere, gets it.
// A key revoked after its poll took a call fails that call on the replica
// waiting for it.
func TestClusterInboxReleaseAndRevoke(t *testing.T) {
	reps := newReplicas(t, 3, Config{})
	a, b, c := reps[0], reps[1], reps[2]
	ref := toolkitRef{"default", "hello"}
	a.pyRegister(a.tkKey, "hello", pyGreet)
	b.knows(ref)
	a.get("/api/v1/toolkit/" + a.tkKey + "/inbox")
	eventually(t, "B to see the inbox poll", func() bool {
		b.srv.hub.mu.Lock()
		defer b.srv.hub.mu.Unlock()
		return b.srv.hub.inboxOnlineRef(ref, nil)
	})
	answer := make(chan []byte, 1)
	go func() {
		answer <- b.srv.runTask(context.Background(), store.Key{Owner: "default", Kind: store.KindLLM}, taskMessage("hello", "greet", 1))
	}()
	kid := keyID(t, a.tkKey)
	taken, err := a.srv.cluster.poll(nil, ref, kid, 5*time.Second)
	if err != nil || taken == nil || taken.origin != b.srv.cluster.id {
		t.Fatalf("poll on A: %+v, %v", taken, err)
	}
	// A cannot hand it on: it gives it back.
	a.srv.cluster.release(taken, kid)
	_, body := c.get("/api/v1/toolkit/" + c.tkKey + "/inbox?wait=5")
	var flat map[string]any
	if json.Unmarshal(body, &flat); flat["request_id"] != taken.id {
		t.Fatalf("the next poll, on C, got %s; want call %s again", body, taken.id)
	}
	// Its key is revoked on A: B fails the call it waits for.
	if err := a.srv.RevokeKey(context.Background(), kid); err != nil {
		t.Fatal(err)
	}
	if m := <-answer; !strings.Contains(string(m), "revoked") {
		t.Fatalf("answer: %s", m)
	}
}

// A toolkit that shuts down releases its held inbox polls through any
// replica: a poll held on another ends at once.
func TestClusterInboxReleaseReachesEveryReplica(t *testing.T) {
	reps := newReplicas(t, 2, Config{})
	a, b := reps[0], reps[1]
	ref := toolkitRef{"default", "hello"}
	a.pyRegister(a.tkKey, "hello", pyGreet)
	got := make(chan string, 1)
	go func() {
		_, body := a.get("/api/v1/toolkit/" + a.tkKey + "/inbox?wait=60")
		got <- strings.TrimSpace(string(body))
	}()
	eventually(t, "a poll held on A", func() bool { return a.srv.hub.waiters(ref) == 1 })
	status, reply := b.post("/api/v1/toolkit/"+b.tkKey+"/inbox/release", map[string]any{})
	if status != 200 {
		t.Fatalf("release: %d %v", status, reply)
	}
	select {
	case body := <-got:
		if body != "{}" {
			t.Fatalf("released poll: %s", body)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the poll held on A was not released")
	}
}
