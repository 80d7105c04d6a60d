// Package fault runs the reference server with real runtime toolkits
// (WebSocket and HTTP inbox) and real LLM clients (HTTP and WebSocket), all
// on loopback, under faults, and checks what the server promises about
// calls:
//
//   - every call gets exactly one answer: a result, or an error that says
//     what happened; none is left waiting;
//   - no call runs twice: a result means the tool ran once, an error that
//     says the call was not sent or not run means it never ran, and any
//     other error means it ran at most once (server/doc.go, "Calls");
//   - a toolkit connection is dropped for a missed pong only when that
//     toolkit stopped answering, never for the fault of another peer;
//   - after the faults, everything recovers, the server holds nothing for
//     the peers that left, and goroutines and heap go back to their
//     baseline.
//
// Every peer reaches the server through a TCP proxy the test controls, so
// that a fault is what a real one is: a reset, a refused connection, a
// stalled socket. The faults' choices come from one seed, logged;
// ATP_FAULT_SEED=<n> replays them (timing, being real, still varies).
package fault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	goruntime "runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

const (
	// inFlight is how many calls are in flight at all times: each worker
	// makes its next call as soon as the last one is answered.
	inFlight = 64
	// faultCount is how many faults the storm applies, one every 30 to
	// 230 ms: it lasts about eight seconds.
	faultCount = 60
	// maxCalls bounds the calls of the storm, should it outlast them.
	maxCalls = 50000
	// callTimeout is the server's timeout for a routed call: the longest a
	// call whose toolkit died holding it waits for its answer.
	callTimeout = 3 * time.Second
	// lostAfter: a call still waiting this long after it was made was lost.
	// The server answers every call within callTimeout of routing it.
	lostAfter = 20 * time.Second
	// hardDeadline bounds the whole test, whatever happens: every wait
	// ends by then.
	hardDeadline = 55 * time.Second

	kitWS    = "fault_ws"    // served by WebSocket toolkits
	kitInbox = "fault_inbox" // served by HTTP inbox toolkits
)

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// pongDrops is a log handler that collects the toolkit connections the
// server dropped for a missed pong, by the address it saw them come from.
// It reads the server's log line "toolkit disconnected" and its "remote"
// and "cause" attributes.
type pongDrops struct {
	mu      *sync.Mutex
	remotes *[]string
	seen    *int // "toolkit disconnected" lines, to show the line is still there
	attrs   []slog.Attr
}

func newPongDrops() pongDrops {
	return pongDrops{mu: new(sync.Mutex), remotes: new([]string), seen: new(int)}
}

func (h pongDrops) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h pongDrops) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "toolkit disconnected" {
		return nil
	}
	var remote, cause string
	for _, a := range h.attrs {
		if a.Key == "remote" {
			remote = a.Value.String()
		}
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "cause" {
			cause = a.Value.String()
		}
		return true
	})
	h.mu.Lock()
	defer h.mu.Unlock()
	*h.seen++
	if strings.Contains(cause, "no pong") {
		*h.remotes = append(*h.remotes, remote)
	}
	return nil
}

func (h pongDrops) WithAttrs(as []slog.Attr) slog.Handler {
	h.attrs = append(slices.Clip(h.attrs), as...)
	return h
}

func (h pongDrops) WithGroup(string) slog.Handler { return h }

func (h pongDrops) get() (remotes []string, seen int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(*h.remotes), *h.seen
}

// faultSeed is ATP_FAULT_SEED, or a new seed.
func faultSeed(t *testing.T) uint64 {
	if v := os.Getenv("ATP_FAULT_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ATP_FAULT_SEED=%q: want a decimal number: %v", v, err)
		}
		t.Logf("seed %d (from ATP_FAULT_SEED)", s)
		return s
	}
	s := rand.Uint64()
	t.Logf("seed %d; replay the same faults with ATP_FAULT_SEED=%d", s, s)
	return s
}

// executions counts the tool's runs by call id: the id is unique to one
// call, so a count above one is a call that ran twice.
type executions struct {
	mu sync.Mutex
	n  map[string]int
}

func (e *executions) record(id string) {
	e.mu.Lock()
	e.n[id]++
	e.mu.Unlock()
}

// reset forgets every run.
func (e *executions) reset() {
	e.mu.Lock()
	e.n = map[string]int{}
	e.mu.Unlock()
}

func (e *executions) snapshot() map[string]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]int, len(e.n))
	for k, v := range e.n {
		m[k] = v
	}
	return m
}

// echoTool records its run, sleeps sleep_ms (or until its call is
// cancelled) and returns {"id": id, "pad": "xxx..."} with pad bytes of
// padding, so that an answer shows which call it belongs to. running counts
// the runs in progress.
func echoTool(ex *executions, running *atomic.Int32) *runtime.Tool {
	return &runtime.Tool{
		Name:           "echo",
		Description:    "Returns its id after sleep_ms milliseconds.",
		Params:         []string{"id", "sleep_ms", "pad"},
		RequiredParams: []string{"id"},
		InputSchema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string","minLength":1},` +
			`"sleep_ms":{"type":"integer","minimum":0,"maximum":5000},"pad":{"type":"integer","minimum":0,"maximum":1048576}},` +
			`"required":["id"],"additionalProperties":false}`),
		Run: func(ctx context.Context, _ *runtime.Call, d *atpimpl.Decoder) (any, error) {
			var id string
			var sleep, pad int64
			seen := false
			if d.Object() {
				for d.Next() {
					switch string(d.Key()) {
					case "id":
						id, seen = d.String(), true
					case "sleep_ms":
						sleep = d.Int(64)
					case "pad":
						pad = d.Int(64)
					default:
						d.Unknown("id, sleep_ms, pad")
					}
				}
				if !seen {
					d.Missing("id", "string")
				}
			}
			if d.Failed() {
				return nil, nil // the toolkit answers with the problems
			}
			ex.record(id)
			running.Add(1)
			defer running.Add(-1)
			if sleep > 0 {
				t := time.NewTimer(time.Duration(sleep) * time.Millisecond)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
					return nil, ctx.Err()
				}
			}
			return map[string]string{"id": id, "pad": strings.Repeat("x", int(pad))}, nil
		},
	}
}

// kitInstance is one toolkit process: a runtime.Toolkit serving through its
// own proxy. Restarting it cancels its Serve and starts another, as a
// redeploy does; killing it is its proxy's kill.
type kitInstance struct {
	t         *testing.T
	name      string // for the log: "fault_ws#1"
	kit       string
	transport runtime.Transport
	key       string
	px        *proxy
	retired   []*proxy // proxies of earlier lives, killed
	tk        *runtime.Toolkit
	hc        *http.Client
	running   atomic.Int32 // calls its tool is running

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
	busy   bool // a fault is being applied to it
	killed bool
}

func (k *kitInstance) start() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	cfg := runtime.ServeConfig{
		URL: k.px.url(), APIKey: k.key, Transport: k.transport, Logger: discard(),
		HTTPClient:   k.hc,
		DrainTimeout: time.Second,
		PingInterval: time.Second,
		PongTimeout:  2 * time.Second,
		InboxWait:    time.Second,
		Backoff:      runtime.Backoff{Base: 20 * time.Millisecond, Max: 250 * time.Millisecond},
	}
	go func() { done <- k.tk.Serve(ctx, cfg) }()
	k.cancel, k.done = cancel, done
}

// stop cancels Serve and waits for it to return, until ctx ends. Serve
// returns nil after a cancel: an error is a toolkit that gave up on its own.
func (k *kitInstance) stop(ctx context.Context) {
	k.cancel()
	select {
	case err := <-k.done:
		if err != nil {
			k.t.Errorf("%s: Serve returned %v", k.name, err)
		}
	case <-ctx.Done():
		k.t.Errorf("%s: Serve did not return after its cancel", k.name)
	}
}

// wasStalled reports whether the connection the server sees coming from
// remote was one of k's, and stalled.
func (k *kitInstance) wasStalled(remote string) bool {
	return k.px.wasStalled(remote) || slices.ContainsFunc(k.retired, func(p *proxy) bool { return p.wasStalled(remote) })
}

// claim marks k busy for one fault, unless it is busy or killed.
func (k *kitInstance) claim() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.busy || k.killed {
		return false
	}
	k.busy = true
	return true
}

func (k *kitInstance) release() {
	k.mu.Lock()
	k.busy = false
	k.mu.Unlock()
}

// clientSlot is one LLM agent: a client reaching the server through its own
// proxy, replaced by a new one when a fault closes it.
type clientSlot struct {
	t        *testing.T
	name     string
	protocol llmclient.Transport
	key      string
	px       *proxy

	mu      sync.Mutex
	c       *llmclient.Client
	stalled bool // a stall fault is under way
}

// claim marks the slot's proxy stalled for one fault, unless it is.
func (s *clientSlot) claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stalled {
		return false
	}
	s.stalled = true
	return true
}

func (s *clientSlot) release() {
	s.mu.Lock()
	s.stalled = false
	s.mu.Unlock()
}

func (s *clientSlot) newClient() *llmclient.Client {
	c, err := llmclient.New(s.key, llmclient.WithBaseURL(s.px.url()), llmclient.WithTransport(s.protocol),
		llmclient.WithLogger(discard()),
		llmclient.WithBackoff(llmclient.Backoff{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond, MaxAttempts: 8}))
	if err != nil {
		s.t.Fatal(err)
	}
	return c
}

func (s *clientSlot) client() *llmclient.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c
}

// replace closes the client, failing its calls in flight, and puts a new
// one in its place.
func (s *clientSlot) replace() {
	s.mu.Lock()
	old := s.c
	s.c = s.newClient()
	s.mu.Unlock()
	old.Close()
}

func (s *clientSlot) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.c.Close()
}

// verdict is what an answer says about whether the tool ran.
type verdict uint8

const (
	ranOnce    verdict = iota + 1 // a result: the tool ran exactly once
	notRun                        // an error saying the call never reached the tool
	mayHaveRun                    // an error that leaves it open: at most once
)

// outcome is one call's answer.
type outcome struct {
	id      string
	kit     string
	slot    string
	verdict verdict
	class   string // for the tally: "ok", "offline", "timeout", ...
	problem string // a broken promise: lost, unclear, or the wrong answer
}

// gaveUp is the cause of an LLM client's own cancellation of a call.
var gaveUp = errors.New("the agent gave up on the call")

// Errors the server and the toolkit answer a call with, and what each
// says about the tool having run. Every error must be one of these (or one
// of the client's own, in classifyErr): anything else is not a clear answer.
var resultErrors = []struct {
	text, class string
	v           verdict
}{
	{"is offline: it has no WebSocket connection", "offline", notRun},
	{"is offline: its connections are shutting down", "offline (draining)", notRun},
	{"calls waiting for their answers, its limit", "limit", notRun},
	{"the call was never delivered", "inbox lease", notRun},
	{"the toolkit is shutting down; the call was not run", "toolkit draining", notRun},
	{"connection closed while the call was in flight", "toolkit connection lost", mayHaveRun},
	{"did not answer the call to echo within", "timeout", mayHaveRun},
	{"call to echo cancelled: ", "cancelled by the toolkit", mayHaveRun},
	{"the server is shutting down", "server shutdown", mayHaveRun},
}

// classify reads one call's answer; cause is the cause of the call's
// context, protocol the agent's transport.
func classify(o *outcome, res *llmclient.Result, err, cause error, protocol llmclient.Transport) {
	if err != nil {
		classifyErr(o, err, cause, protocol)
		return
	}
	if res.Error == "" {
		o.verdict, o.class = ranOnce, "ok"
		var got struct{ ID string }
		if json.Unmarshal(res.Value, &got) != nil || got.ID != o.id {
			o.problem = fmt.Sprintf("the result %s is not this call's", res.Value)
		}
		return
	}
	for _, e := range resultErrors {
		if strings.Contains(res.Error, e.text) {
			o.verdict, o.class = e.v, e.class
			return
		}
	}
	o.verdict, o.class = mayHaveRun, "unclear"
	o.problem = "unclear error result: " + res.Error
}

// classifyErr reads a Go error from Call: the call got no answer from the
// server, for one of the reasons the faults cause.
func classifyErr(o *outcome, err, cause error, protocol llmclient.Transport) {
	var apiErr *llmclient.APIError
	var netErr net.Error
	o.verdict = mayHaveRun
	switch {
	case (errors.Is(err, context.Canceled) || errors.Is(err, gaveUp)) && errors.Is(cause, gaveUp):
		// net/http fails a reply's read cut by the cancellation with the
		// context's cause itself, not context.Canceled.
		o.class = "agent gave up"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		o.class = "lost"
		o.problem = fmt.Sprintf("no answer within %s: %v", lostAfter, err)
	case errors.Is(err, llmclient.ErrClosed):
		o.class = "agent closed its client"
	case errors.Is(err, llmclient.ErrConnectionLost):
		o.class = "agent connection lost"
	case errors.As(err, &apiErr) && (apiErr.StatusCode == http.StatusTooManyRequests || apiErr.StatusCode == http.StatusServiceUnavailable):
		o.verdict, o.class = notRun, "refused by a limit"
	case protocol == llmclient.TransportWS && (strings.Contains(err.Error(), ": connect to ") || errors.As(err, &netErr)):
		// The WebSocket could not be opened, or the request could not be
		// written on it, attempt after attempt: it never left.
		o.verdict, o.class = notRun, "agent could not send"
	case protocol == llmclient.TransportHTTP && (errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)):
		// An HTTP request whose connection was reset under it.
		o.class = "agent connection reset"
	default:
		o.class = "unclear"
		o.problem = "unclear error: " + err.Error()
	}
}

// env is the server and its peers.
type env struct {
	t     *testing.T
	seed  uint64
	ctx   context.Context // the hard deadline
	srv   *server.Server
	url   string
	execs *executions
	kits  []*kitInstance
	slots []*clientSlot
	// problems counts the broken promises reported (the first 20 are).
	problems int
}

// report reports a broken promise.
func (e *env) report(format string, args ...any) {
	e.t.Helper()
	if e.problems++; e.problems <= 20 {
		e.t.Errorf(format, args...)
	}
}

// startPeers starts three WebSocket and two inbox toolkits and four
// agents (two over HTTP, two over WebSocket), each behind its proxy, and
// waits until both toolkits answer.
func (e *env) startPeers() {
	e.addKits(kitWS, runtime.TransportWS, 3)
	e.addKits(kitInbox, runtime.TransportHTTP, 2)
	e.addSlots(llmclient.TransportHTTP, 2)
	e.addSlots(llmclient.TransportWS, 2)
	for _, k := range e.kits {
		k.start()
	}
	if !waitFor(e.ctx, 10*time.Second, func() bool {
		for _, kit := range []string{kitWS, kitInbox} {
			res, err := e.slots[0].client().Call(e.ctx, kit, "echo", json.RawMessage(`{"id":"warm-up"}`))
			if err != nil || res.Failed() {
				return false
			}
		}
		return true
	}) {
		e.t.Fatal("the toolkits did not come online within 10s")
	}
}

// stopPeers stops the toolkits (their Serve must return nil), closes the
// agents and the proxies, and forgets them all.
func (e *env) stopPeers() {
	var stopping sync.WaitGroup
	for _, k := range e.kits {
		stopping.Go(func() {
			k.stop(e.ctx)
			k.hc.CloseIdleConnections()
			k.px.close()
		})
	}
	stopping.Wait()
	for _, s := range e.slots {
		s.close()
		s.px.close()
	}
	e.kits, e.slots = nil, nil
}

// checkRuns checks each answer against the tool's runs, once no tool runs
// any more: no call ran twice, none whose answer says it did not run ran,
// each result was one run. It returns the runs of ids not in outcomes.
func (e *env) checkRuns(outcomes []outcome) map[string]int {
	runs := e.execs.snapshot()
	for _, o := range outcomes {
		n := runs[o.id]
		delete(runs, o.id)
		switch {
		case n > 1:
			e.report("call %s ran %d times (answer: %s)", o.id, n, o.class)
		case o.verdict == ranOnce && n != 1:
			e.report("call %s has a result but ran %d times", o.id, n)
		case o.verdict == notRun && n != 0:
			e.report("call %s ran, but its answer says it did not (%s)", o.id, o.class)
		}
	}
	return runs
}

// tally counts outcomes by toolkit and class, for the log, and reports the
// answers that broke a promise on their own (lost, unclear, not the call's).
func (e *env) tally(outcomes []outcome) (map[string]int, string) {
	tally := map[string]int{}
	for _, o := range outcomes {
		tally[o.kit+": "+o.class]++
		if o.problem != "" {
			e.report("call %s (%s, %s): %s", o.id, o.kit, o.slot, o.problem)
		}
	}
	classes := make([]string, 0, len(tally))
	for c := range tally {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var sb strings.Builder
	for _, c := range classes {
		fmt.Fprintf(&sb, "\n  %-45s %5d", c, tally[c])
	}
	return tally, sb.String()
}

func (e *env) key(nk store.NewKey) string {
	_, k, err := e.srv.CreateKey(context.Background(), nk)
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

func (e *env) addKits(kit string, transport runtime.Transport, n int) {
	key := e.key(store.NewKey{Kind: store.KindToolkit, Name: kit, Toolkit: kit})
	for i := range n {
		k := &kitInstance{t: e.t, name: fmt.Sprintf("%s#%d", kit, i), kit: kit, transport: transport, key: key,
			px: newProxy(e.t, e.srv.Addr().String()), tk: runtime.NewToolkit(kit, runtime.WithLogger(discard())),
			hc: &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}}
		if err := k.tk.Add(echoTool(e.execs, &k.running)); err != nil {
			e.t.Fatal(err)
		}
		e.kits = append(e.kits, k)
	}
}

func (e *env) addSlots(protocol llmclient.Transport, n int) {
	for i := range n {
		name := fmt.Sprintf("%s-agent#%d", protocol, i)
		s := &clientSlot{t: e.t, name: name, protocol: protocol,
			key: e.key(store.NewKey{Kind: store.KindLLM, Name: name}),
			px:  newProxy(e.t, e.srv.Addr().String())}
		s.c = s.newClient()
		e.slots = append(e.slots, s)
	}
}

// call makes one call of the storm and reads its answer. Most calls are
// quick; some, and every one when slow is set, are long enough to be caught
// by a fault.
func (e *env) call(rnd *rand.Rand, id string, slow bool) outcome {
	kit := kitWS
	if rnd.IntN(10) < 3 {
		kit = kitInbox
	}
	slot := e.slots[rnd.IntN(len(e.slots))]
	sleep := rnd.IntN(20)
	if slow || rnd.IntN(8) == 0 {
		sleep = 200 + rnd.IntN(500)
	}
	ctx, cancel := context.WithCancelCause(e.ctx)
	defer cancel(nil)
	ctx, stop := context.WithTimeout(ctx, lostAfter)
	defer stop()
	if rnd.IntN(20) == 0 {
		// The agent gives up on this call midway.
		t := time.AfterFunc(time.Duration(rnd.IntN(sleep+50))*time.Millisecond, func() { cancel(gaveUp) })
		defer t.Stop()
	}
	// Some answers are large, so that an agent that stops reading fills
	// its socket and the server's writes to it must wait.
	pad := 0
	if rnd.IntN(32) == 0 {
		pad = 128 << 10
	}
	params := fmt.Appendf(nil, `{"id":%q,"sleep_ms":%d,"pad":%d}`, id, sleep, pad)
	res, err := slot.client().Call(ctx, kit, "echo", params)
	o := outcome{id: id, kit: kit, slot: slot.name}
	classify(&o, res, err, context.Cause(ctx), slot.protocol)
	return o
}

// faultLog counts the faults applied, by kind.
type faultLog struct {
	mu sync.Mutex
	n  map[string]int
}

// add counts one fault of kind, or n when given.
func (f *faultLog) add(kind string, n ...int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(n) == 0 {
		f.n[kind]++
		return
	}
	f.n[kind] += n[0]
}

// faults applies faultCount faults, one every 30 to 230 ms, unless ctx
// ends first. Once, between a third and two thirds of the way, it kills one
// toolkit of each transport while a call runs on it; they stay dead until
// the storm is over. It returns when the faults it started have ended.
func (e *env) faults(ctx context.Context, log *faultLog) {
	rnd := rand.New(rand.NewPCG(e.seed, 0))
	killAt := faultCount/3 + rnd.IntN(faultCount/3)
	var victims []*kitInstance // the first toolkit of each transport
	for _, kit := range []string{kitWS, kitInbox} {
		victims = append(victims, e.kits[slices.IndexFunc(e.kits, func(k *kitInstance) bool { return k.kit == kit })])
	}
	kill := func(k *kitInstance) {
		// Abrupt: every connection reset, no reply ever again; its Serve
		// keeps trying, in vain, until the storm is over. The inbox
		// toolkit stops polling with calls taken.
		k.mu.Lock()
		k.killed = true
		k.mu.Unlock()
		log.add(fmt.Sprintf("kill %s toolkit", k.transport))
		log.add(fmt.Sprintf("calls running on killed %s toolkits", k.transport), int(k.running.Load()))
		k.px.kill()
	}
	var async sync.WaitGroup
	defer func() {
		// A victim still alive (a fault held it until the end) dies now.
		async.Wait()
		for _, k := range victims {
			if k.claim() {
				kill(k)
			}
		}
	}()
	for i := range faultCount {
		t := time.NewTimer(time.Duration(30+rnd.IntN(200)) * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if i >= killAt {
			// Killed mid-call: once a call runs on it.
			victims = slices.DeleteFunc(victims, func(k *kitInstance) bool {
				if k.running.Load() == 0 || !k.claim() {
					return false
				}
				kill(k)
				return true
			})
		}
		n := rnd.IntN(len(e.kits))
		for i >= killAt-5 && slices.Contains(victims, e.kits[n]) {
			n = (n + 1) % len(e.kits) // a victim is kept free for its death
		}
		k := e.kits[n]
		slot := e.slots[rnd.IntN(len(e.slots))]
		switch r := rnd.IntN(100); {
		case r < 25:
			if k.claim() {
				log.add("restart toolkit")
				async.Go(func() {
					defer k.release()
					k.stop(e.ctx)
					k.start()
				})
			}
		case r < 50:
			if k.claim() {
				log.add("reset toolkit connections")
				k.px.reset()
				k.release()
			}
		case r < 60:
			if k.claim() {
				log.add("stall toolkit")
				stallFor := time.Duration(2500+rnd.IntN(1500)) * time.Millisecond
				async.Go(func() {
					defer k.release()
					k.px.stall()
					t := time.NewTimer(stallFor)
					defer t.Stop()
					select {
					case <-t.C:
					case <-ctx.Done():
					}
					// A process stopped, then killed and restarted.
					k.px.reset()
					k.px.unstall()
				})
			}
		case r < 70:
			log.add("reset agent connections")
			slot.px.reset()
		case r < 82:
			if slot.claim() {
				log.add("stall agent")
				stallFor := time.Duration(500+rnd.IntN(2500)) * time.Millisecond
				async.Go(func() {
					defer slot.release()
					slot.px.stall()
					t := time.NewTimer(stallFor)
					defer t.Stop()
					select {
					case <-t.C:
					case <-ctx.Done():
					}
					// A client that was slow to read, then caught up.
					slot.px.unstall()
				})
			}
		default:
			log.add("close agent client")
			async.Go(slot.replace)
		}
	}
}

// metrics scrapes the server's gauges.
func (e *env) metrics() map[string]float64 {
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get(e.url + "/metrics")
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	m := map[string]float64{}
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		name, v, ok := strings.Cut(strings.TrimSpace(line), " ")
		if f, err := strconv.ParseFloat(v, 64); ok && err == nil {
			m[name] = f
		}
	}
	return m
}

// waitFor polls cond every 10ms until it holds, for at most d and until ctx
// ends; it reports whether it held.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		}
	}
	return true
}

// heapAlloc is the live heap after a full collection.
func heapAlloc() uint64 {
	goruntime.GC()
	goruntime.GC() // the second frees what the first's finalizers let go
	var ms goruntime.MemStats
	goruntime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

func goroutineDump() string {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 1)
	return b.String()
}

// Tolerances of the baseline checks: the runtime's own goroutines (GC
// workers, timers) come and go, and the heap keeps some caches.
const (
	goroutineSlack = 4
	heapSlack      = 2 << 20
)

func TestCallsUnderFaults(t *testing.T) {
	seed := faultSeed(t)
	ctx, cancel := context.WithTimeout(context.Background(), hardDeadline)
	defer cancel()

	// Baseline before the server, for the check after it has stopped.
	goroutines0 := goruntime.NumGoroutine()
	drops := newPongDrops()
	srv, err := server.New(context.Background(), server.Config{
		Addr:              "127.0.0.1:0",
		DBPath:            filepath.Join(t.TempDir(), "atp.db"),
		CallTimeout:       callTimeout,
		InboxOnlineWindow: 2 * time.Second,
		PingInterval:      time.Second,
		PongTimeout:       2 * time.Second,
		ShutdownTimeout:   5 * time.Second,
		Logger:            slog.New(drops),
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stopServe := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	stopServer := sync.OnceFunc(func() {
		stopServe()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	defer stopServer()

	e := &env{t: t, seed: seed, ctx: ctx, srv: srv, url: srv.URL(), execs: &executions{n: map[string]int{}}}
	defer func() { e.stopPeers() }()
	e.metrics() // the server's lazily started parts start now, before the baseline
	// Baseline with the server up and no peer: what it must come back to.
	goroutines1, heap1 := goruntime.NumGoroutine(), heapAlloc()
	e.startPeers()

	// The storm: inFlight workers make calls while the faults hit, until
	// the faults are over (or maxCalls calls have been made).
	start := time.Now()
	outcomes := make([]outcome, maxCalls)
	var next atomic.Int64
	stormCtx, endStorm := context.WithCancel(ctx)
	faults := &faultLog{n: map[string]int{}}
	var workers sync.WaitGroup
	for w := range inFlight {
		workers.Go(func() {
			defer endStorm()
			rnd := rand.New(rand.NewPCG(seed, uint64(w)+1))
			for stormCtx.Err() == nil {
				n := next.Add(1) - 1
				if n >= maxCalls {
					return
				}
				outcomes[n] = e.call(rnd, "c"+strconv.FormatInt(n, 10), false)
			}
		})
	}
	e.faults(stormCtx, faults)
	endStorm()
	workers.Wait() // the calls in flight when the storm ended get their answers
	stormTook := time.Since(start)
	outcomes = outcomes[:min(next.Load(), maxCalls)]
	tally, answers := e.tally(outcomes)
	t.Logf("%d calls, %d in flight, in %s; faults: %v; answers:%s", len(outcomes), inFlight, stormTook.Round(time.Millisecond), faults.n, answers)
	if tally[kitWS+": ok"] == 0 || tally[kitInbox+": ok"] == 0 {
		t.Errorf("no call succeeded on one of the toolkits: the storm tested nothing")
	}

	// Recovery: with the faults over, the killed toolkits are deployed
	// again, and every agent can call both toolkits.
	for _, k := range e.kits {
		k.mu.Lock()
		killed := k.killed
		k.mu.Unlock()
		if killed {
			// The killed process's Serve, which kept trying, ends cleanly.
			k.stop(ctx)
			k.px.close()
			k.retired = append(k.retired, k.px)
			k.px = newProxy(t, srv.Addr().String())
			k.start()
		}
	}
	for _, s := range e.slots {
		for _, kit := range []string{kitWS, kitInbox} {
			i := 0
			if !waitFor(ctx, 10*time.Second, func() bool {
				i++
				res, err := s.client().Call(ctx, kit, "echo", fmt.Appendf(nil, `{"id":"after-%s-%s-%d"}`, s.name, kit, i))
				return err == nil && !res.Failed()
			}) {
				t.Errorf("%s: no successful call to %s within 10s of the faults' end", s.name, kit)
			}
		}
	}

	// The peers leave; the server must hold nothing for them any more.
	kits := e.kits
	e.stopPeers()
	var m map[string]float64
	if !waitFor(ctx, 10*time.Second, func() bool {
		m = e.metrics()
		return m["atp_calls_in_flight"] == 0 && m["atp_toolkit_connections"] == 0 &&
			m["atp_llm_connections"] == 0 && m["atp_open_connections"] <= 1 // this scrape's
	}) {
		t.Errorf("the server still holds state for peers that left: %v", m)
	}

	// A toolkit connection is dropped for a missed pong only when its
	// toolkit stopped answering: never for the fault of another peer (an
	// agent that stopped reading its answers, say).
	remotes, seen := drops.get()
	if seen == 0 {
		t.Error(`the server logged no "toolkit disconnected" line: this check no longer sees its drops`)
	}
	for _, remote := range remotes {
		if !slices.ContainsFunc(kits, func(k *kitInstance) bool { return k.wasStalled(remote) }) {
			e.report("the toolkit connection from %s was dropped for a missed pong, but its toolkit was never stalled", remote)
		}
	}
	kits = nil

	for id, n := range e.checkRuns(outcomes) {
		switch {
		case id != "warm-up" && !strings.HasPrefix(id, "after-"):
			e.report("the tool ran %d times for %q, a call nobody made", n, id)
		case strings.HasPrefix(id, "after-") && n > 1:
			e.report("call %s ran %d times", id, n)
		}
	}

	// Goroutines and heap are back to the baseline of the idle server,
	// once the test lets go of its own records.
	outcomes = nil
	e.execs.reset()
	if !waitFor(ctx, 15*time.Second, func() bool { return goruntime.NumGoroutine() <= goroutines1+goroutineSlack }) {
		t.Errorf("goroutines: %d with the peers gone, %d before they came (slack %d):\n%s",
			goruntime.NumGoroutine(), goroutines1, goroutineSlack, goroutineDump())
	}
	if h := heapAlloc(); h > heap1+heapSlack {
		t.Errorf("heap: %d bytes live with the peers gone, %d before they came (slack %d)", h, heap1, heapSlack)
	} else {
		t.Logf("with the peers gone: %d goroutines (%d before they came), heap %d KiB (%d KiB before)",
			goruntime.NumGoroutine(), goroutines1, h>>10, heap1>>10)
	}

	// The server shuts down with inFlight calls running: each still gets
	// one answer, and Serve returns.
	e.startPeers()
	outcomes = make([]outcome, inFlight)
	for w := range inFlight {
		workers.Go(func() {
			rnd := rand.New(rand.NewPCG(seed, uint64(inFlight+w)+1))
			outcomes[w] = e.call(rnd, "s"+strconv.Itoa(w), true)
		})
	}
	if !waitFor(ctx, 10*time.Second, func() bool {
		running := int32(0)
		for _, k := range e.kits {
			running += k.running.Load()
		}
		return running >= inFlight/4
	}) {
		t.Error("the calls made before the shutdown did not start within 10s")
	}
	stopServer()
	workers.Wait()
	e.stopPeers()
	tally, answers = e.tally(outcomes)
	t.Logf("shutdown with %d calls in flight; answers:%s", inFlight, answers)
	e.checkRuns(outcomes)
	if !waitFor(ctx, 15*time.Second, func() bool { return goruntime.NumGoroutine() <= goroutines0+goroutineSlack }) {
		t.Errorf("goroutines: %d after the server stopped, %d before it started (slack %d):\n%s",
			goruntime.NumGoroutine(), goroutines0, goroutineSlack, goroutineDump())
	}
}
