package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"

	"github.com/atpgo/atp/server"
)

// ---- NATS, in process, stopped and started again on its port ----

type natsNode struct {
	t    testing.TB
	port int
	dir  string
	ns   *natsserver.Server
}

func startNATS(t testing.TB) *natsNode {
	t.Helper()
	n := &natsNode{t: t, port: -1, dir: t.TempDir()}
	n.start()
	t.Cleanup(n.stop)
	return n
}

func (n *natsNode) start() {
	n.t.Helper()
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: n.port, JetStream: true, StoreDir: n.dir,
		NoLog: true, NoSigs: true,
	})
	if err != nil {
		n.t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		n.t.Fatal("NATS did not start")
	}
	n.ns = ns
	n.port = ns.Addr().(*net.TCPAddr).Port // the same port at the next start
}

func (n *natsNode) stop() {
	if n.ns != nil {
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
		n.ns = nil
	}
}

func (n *natsNode) addr() string { return "127.0.0.1:" + strconv.Itoa(n.port) }

// ---- a TCP proxy that can drop every connection at once ----

// proxy forwards each connection to a backend: the first of targets that
// accepts, starting with the next in turn (a round-robin load balancer
// when there are several).
type proxy struct {
	ln      net.Listener
	targets []string

	mu      sync.Mutex
	next    int
	conns   map[net.Conn]bool
	refused bool
}

func newProxy(t testing.TB, targets ...string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, targets: targets, conns: map[net.Conn]bool{}}
	go p.accept()
	t.Cleanup(func() { p.ln.Close(); p.cut(true) })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		go p.serve(in)
	}
}

func (p *proxy) serve(in net.Conn) {
	p.mu.Lock()
	refused, start := p.refused, p.next
	p.next++
	p.mu.Unlock()
	if refused {
		in.Close()
		return
	}
	var out net.Conn
	for i := range p.targets {
		c, err := net.DialTimeout("tcp", p.targets[(start+i)%len(p.targets)], 2*time.Second)
		if err == nil {
			out = c
			break
		}
	}
	if out == nil {
		in.Close()
		return
	}
	p.mu.Lock()
	if p.refused {
		p.mu.Unlock()
		in.Close()
		out.Close()
		return
	}
	p.conns[in], p.conns[out] = true, true
	p.mu.Unlock()
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}
	go pipe(out, in)
	pipe(in, out)
}

// cut drops every connection with a reset, as a crash or a lost machine
// does; refuse says whether new ones are refused until reopen.
func (p *proxy) cut(refuse bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refused = refuse
	for c := range p.conns {
		abort(c)
	}
	clear(p.conns)
}

func (p *proxy) reopen() {
	p.mu.Lock()
	p.refused = false
	p.mu.Unlock()
}

// abort closes c with a reset rather than a FIN.
func abort(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// ---- replicas ----

// replica is one atp serve in this process, with its own listener and its
// own way to NATS, so that the test can kill it as a crash would: its
// listener and every connection it accepted close at once, and its NATS
// connection drops without a word.
type replica struct {
	t    testing.TB
	name string
	srv  *server.Server
	url  string
	ln   *trackedListener
	nats *proxy
	logs *syncBuffer
	dead bool
}

type replicaSet struct {
	t        testing.TB
	nats     *natsNode
	db       *proxy // every replica's way to PostgreSQL
	cfg      server.Config
	replicas []*replica
	lb       *proxy // round-robin over the replicas, for toolkits and clients
}

func startReplicas(t testing.TB, n int, nats *natsNode, dsn string, cfg server.Config) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t, nats: nats, cfg: cfg}
	// The replicas reach PostgreSQL through a proxy the test can cut.
	host, rest, _ := strings.Cut(strings.TrimPrefix(dsn, "postgres://"), "/")
	user, hostport, ok := strings.Cut(host, "@")
	if !ok {
		hostport, user = user, ""
	}
	rs.db = newProxy(t, hostport)
	if user != "" {
		user += "@"
	}
	cfg.DBPath = "postgres://" + user + rs.db.addr() + "/" + rest
	if cfg.SecretKey == nil {
		cfg.SecretKey = make([]byte, 32) // the same on every replica
		rand.Read(cfg.SecretKey)
	}
	rs.cfg = cfg
	var addrs []string
	for i := range n {
		r := rs.start(fmt.Sprintf("r%d", i))
		addrs = append(addrs, strings.TrimPrefix(r.url, "http://"))
	}
	rs.lb = newProxy(t, addrs...)
	for _, r := range rs.replicas {
		rs.eventually(fmt.Sprintf("%s to see %d replicas", r.name, n), func() bool { return r.health()["replicas"] == float64(n) })
	}
	return rs
}

func (rs *replicaSet) start(name string) *replica {
	t := rs.t
	t.Helper()
	r := &replica{t: t, name: name, nats: newProxy(t, rs.nats.addr()), logs: &syncBuffer{}}
	cfg := rs.cfg
	cfg.NATSURL = "nats://" + r.nats.addr()
	cfg.Logger = slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv, r.url = srv, "http://"+ln.Addr().String()
	r.ln = &trackedListener{Listener: ln, conns: map[net.Conn]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		srv.Serve(ctx, r.ln)
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		if t.Failed() {
			t.Logf("logs of replica %s:\n%s", name, r.logs)
		}
	})
	rs.replicas = append(rs.replicas, r)
	return r
}

// kill stops the replica as a crash would.
func (r *replica) kill() {
	r.nats.cut(true)
	r.ln.kill()
	r.dead = true
}

func (r *replica) health() map[string]any {
	resp, err := http.Get(r.url + "/healthz")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var h map[string]any
	json.NewDecoder(resp.Body).Decode(&h)
	return h
}

// metric reads one value from /metrics.
func (r *replica) metric(name string) string {
	resp, err := http.Get(r.url + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// eventually polls cond every few milliseconds, failing the test after
// 15s. For state that settles asynchronously, never for ordering.
func (rs *replicaSet) eventually(what string, cond func() bool) {
	rs.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			rs.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// holder is the live replica that holds the toolkit's connections.
func (rs *replicaSet) holder() *replica {
	for _, r := range rs.replicas {
		if !r.dead && r.health()["toolkits_connected"] == float64(1) {
			return r
		}
	}
	return nil
}

// trackedListener remembers the connections it accepted, to kill them.
type trackedListener struct {
	net.Listener
	mu     sync.Mutex
	conns  map[net.Conn]bool
	killed bool
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.killed {
		abort(c)
		return nil, net.ErrClosed
	}
	l.conns[c] = true
	return c, nil
}

func (l *trackedListener) kill() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.killed = true
	l.Listener.Close()
	for c := range l.conns {
		abort(c)
	}
	clear(l.conns)
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
