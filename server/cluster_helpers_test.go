package server

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/internal/natstest"
	"github.com/atpgo/atp/server/store"
)

// newReplicas starts n servers as replicas of one cluster: one in-memory
// store (as one PostgreSQL database would be), the test NATS server under
// a prefix of the test's own. They share a toolkit key and an LLM key.
// Each replica's NATS connection goes through a proxy of its own
// (e.nats), which the test can cut. It returns once every replica knows
// every other.
func newReplicas(t *testing.T, n int, cfg Config) []*testEnv {
	t.Helper()
	url, prefix := natstest.Prefix(t)
	st, err := store.Open(context.Background(), store.Memory)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg.Store, cfg.ClusterPrefix = st, prefix
	if cfg.SecretKey == nil {
		cfg.SecretKey = make([]byte, 32) // the same on every replica, as ATP_SECRET_KEY must be
		rand.Read(cfg.SecretKey)
	}
	setDefault(&cfg.PresenceTTL, 3*time.Second) // long enough for a replica on a loaded machine to announce itself in time
	setDefault(&cfg.ReplicaProbeInterval, 20*time.Millisecond)
	envs := make([]*testEnv, n)
	for i := range envs {
		c := cfg
		proxy := newTCPProxy(t, strings.TrimPrefix(url, "nats://"))
		c.NATSURL = "nats://" + proxy.addr()
		logs := &logBuffer{}
		if c.Logger == nil {
			c.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		srv, err := New(context.Background(), c)
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewServer(srv.Handler())
		envs[i] = &testEnv{t: t, srv: srv, http: hs, base: hs.URL, wsBase: "ws" + strings.TrimPrefix(hs.URL, "http"), logs: logs, nats: proxy}
		t.Cleanup(func() {
			srv.Close()
			hs.Close()
			if t.Failed() {
				t.Logf("logs of replica %d (%s):\n%s", i, srv.ReplicaID(), logs)
			}
		})
	}
	envs[0].tkKey = envs[0].key(store.NewKey{Kind: store.KindToolkit, Name: "tk"})
	envs[0].llmKey = envs[0].key(store.NewKey{Kind: store.KindLLM, Name: "llm"})
	for _, e := range envs[1:] {
		e.tkKey, e.llmKey = envs[0].tkKey, envs[0].llmKey
	}
	for _, e := range envs {
		eventually(t, "every replica to know every other", func() bool { return e.srv.cluster.replicas() == n })
	}
	return envs
}

// knows waits until e has loaded ref's registration (made on another
// replica).
func (e *testEnv) knows(ref toolkitRef) {
	e.t.Helper()
	eventually(e.t, "a replica to load another's registration", func() bool { return e.srv.registry.get(ref) != nil })
}

// seesHolder waits until e has loaded ref and sees replica holder hold
// conns connections of it.
func (e *testEnv) seesHolder(ref toolkitRef, holder *testEnv, conns int) {
	e.t.Helper()
	e.knows(ref)
	eventually(e.t, "a replica to see another's connections", func() bool {
		for _, h := range e.srv.cluster.holders(ref) {
			if h.replica == holder.srv.cluster.id {
				return h.conns == conns
			}
		}
		return conns == 0
	})
}

// inFlight is the number of calls on ref's connections of this server.
func (e *testEnv) inFlight(ref toolkitRef) int {
	h := e.srv.hub
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	if r := h.routes[ref]; r != nil {
		for _, c := range r.conns {
			n += c.calls.n
		}
	}
	return n
}

// tcpProxy forwards loopback TCP connections to target, until cut.
type tcpProxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu      sync.Mutex
	conns   map[net.Conn]bool
	refused bool
}

func newTCPProxy(t testing.TB, target string) *tcpProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, ln: ln, target: target, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) addr() string { return p.ln.Addr().String() }

func (p *tcpProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refused := p.refused
		p.mu.Unlock()
		if refused {
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			io.Copy(dst, src)
			dst.Close()
			src.Close()
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// cut drops every connection through the proxy at once, with a reset:
// the two ends learn of it as of a crash. New connections are taken
// unless refuse.
func (p *tcpProxy) cut(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = refuse
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0)
		}
		c.Close()
	}
	clear(p.conns)
}

// accept lets new connections through again.
func (p *tcpProxy) reopen() {
	p.mu.Lock()
	p.refused = false
	p.mu.Unlock()
}

func (p *tcpProxy) close() {
	p.ln.Close()
	p.cut(true)
}
