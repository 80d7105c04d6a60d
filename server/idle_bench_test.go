package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/atpgo/atp/server/store"
	"golang.org/x/sync/errgroup"
)

// idleConns is how many toolkit connections BenchmarkIdleToolkitConns
// opens: enough that what one costs is not lost in the noise of the heap.
const idleConns = 5000

// idleConnsPerToolkit: the toolkits each open this many connections (a
// key's connections are capped, Config.MaxConnsPerKey).
const idleConnsPerToolkit = 10

// BenchmarkIdleToolkitConns measures what an idle toolkit WebSocket costs
// the server: the live heap and the goroutine stacks that idleConns
// connected toolkits add, divided by their number (B/conn), and the
// goroutines they add (goroutines/conn).
//
// The toolkits are another process (this test binary, running
// TestIdleToolkitClients), so that only the server's memory is counted.
// They speak the wire as the runtime does: register a tool, open the
// WebSocket with the key in the path, read the greeting, then stay idle.
//
// Target, the README's "Idle connections" figure: at most 16 KiB per
// connection, so that 100,000 idle toolkits fit in 2 GB.
func BenchmarkIdleToolkitConns(b *testing.B) {
	if runtime.GOOS == "windows" {
		b.Skip("raises the fd limit with setrlimit")
	}
	if err := raiseFDLimit(idleConns + 512); err != nil {
		b.Skip(err)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		perConn, goroutines := measureIdleConns(b, exe)
		b.ReportMetric(perConn, "B/conn")
		b.ReportMetric(goroutines, "goroutines/conn")
	}
}

// raiseFDLimit raises the soft limit on open files to the hard one, and
// says so when that is below need.
func raiseFDLimit(need uint64) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return fmt.Errorf("setrlimit: %w", err)
		}
	}
	if lim.Cur < need {
		return fmt.Errorf("the open-file limit is %d, below the %d this benchmark needs (raise ulimit -n)", lim.Cur, need)
	}
	return nil
}

func measureIdleConns(b *testing.B, exe string) (perConn, goroutines float64) {
	ctx, cancel := context.WithTimeout(b.Context(), 2*time.Minute)
	defer cancel()
	srv, err := New(ctx, Config{
		Logger: discardLogger(), DBPath: filepath.Join(b.TempDir(), "atp.db"), Addr: "127.0.0.1:0",
		MaxConnections: idleConns + 256,
		// The toolkits do not answer pings: none is due while they are
		// measured.
		PingInterval: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := srv.Listen()
	if err != nil {
		b.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	defer func() {
		stop()
		<-served
		srv.Close()
	}()

	keys := registerIdleToolkits(b, srv, idleConns/idleConnsPerToolkit)

	before := serverMemory()
	clients := exec.CommandContext(ctx, exe, "-test.run=^TestIdleToolkitClients$")
	clients.Env = append(os.Environ(), "ATP_IDLE_CLIENTS="+srv.URL())
	clients.Stderr = os.Stderr
	stdin, err := clients.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := clients.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := clients.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		stdin.Close() // the clients exit, closing their connections
		clients.Wait()
	}()
	go func() {
		for _, k := range keys {
			fmt.Fprintf(stdin, "%d %s\n", idleConnsPerToolkit, k)
		}
		fmt.Fprintln(stdin) // all sent
	}()
	// The clients print one line once every connection has read its
	// greeting, sent once the connection is in the hub.
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "connected "+strconv.Itoa(idleConns) {
		b.Fatalf("the clients did not connect: %q %v", line, err)
	}
	if got := srv.liveSessions(); got != idleConns {
		b.Fatalf("the server has %d sessions, want %d", got, idleConns)
	}
	after := serverMemory()
	return float64(after.bytes-before.bytes) / idleConns, float64(after.goroutines-before.goroutines) / idleConns
}

type memSample struct{ bytes, goroutines int64 }

// serverMemory collects garbage, then returns the live heap plus the
// goroutine stacks, and the goroutines.
func serverMemory() memSample {
	runtime.GC()
	runtime.GC() // the first one's finalizers may free more
	s := []rtmetrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/stacks:bytes"},
		{Name: "/sched/goroutines:goroutines"},
	}
	rtmetrics.Read(s)
	return memSample{
		bytes:      int64(s[0].Value.Uint64() + s[1].Value.Uint64()),
		goroutines: int64(s[2].Value.Uint64()),
	}
}

func (s *Server) liveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.live)
}

// registerIdleToolkits makes n toolkit keys and registers a tool on each,
// as the runtime does at start.
func registerIdleToolkits(b *testing.B, srv *Server, n int) []string {
	keys := make([]string, n)
	var g errgroup.Group
	g.SetLimit(8)
	for i := range keys {
		g.Go(func() error { return registerIdleToolkit(b.Context(), srv, i, &keys[i]) })
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return keys
}

func registerIdleToolkit(ctx context.Context, srv *Server, i int, key *string) error {
	_, k, err := srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "idle " + strconv.Itoa(i)})
	if err != nil {
		return err
	}
	*key = k
	body, _ := json.Marshal(map[string]any{
		"function_id": "echo", "api_key": k, "app_name": "idle" + strconv.Itoa(i), "programming_language": "Go",
		"code_hash": "c", "toolkit_hash": "h",
		"metadata": map[string]any{"params": []string{"text"}, "required_params": []string{"text"}, "description": "echo",
			"input_schema": json.RawMessage(`{"type":"object","properties":{"text":{"type":"string"}},"required":["text"],"additionalProperties":false}`)},
	})
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL()+"/api/v1/register_tool", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("register_tool: %s", resp.Status)
	}
	return nil
}

// TestIdleToolkitClients is the toolkits of BenchmarkIdleToolkitConns, in
// a process of their own; it does nothing unless that benchmark started it.
// It reads "<conns> <key>" lines up to an empty one, opens the connections
// with a minimal handshake of its own (no client library, no goroutine per
// connection), prints "connected <n>" once all have read their greeting,
// and keeps them open until its stdin closes.
func TestIdleToolkitClients(t *testing.T) {
	base := os.Getenv("ATP_IDLE_CLIENTS")
	if base == "" {
		t.Skip("run by BenchmarkIdleToolkitConns")
	}
	addr := strings.TrimPrefix(base, "http://")
	in := bufio.NewReader(os.Stdin)
	var keys []string
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		line = strings.TrimSpace(line)
		if line == "" {
			break
		}
		n, key, _ := strings.Cut(line, " ")
		count, _ := strconv.Atoi(n)
		for range count {
			keys = append(keys, key)
		}
	}
	conns := make([]net.Conn, len(keys))
	var g errgroup.Group
	g.SetLimit(16)
	for i := range keys {
		g.Go(func() (err error) {
			if conns[i], err = dialIdleToolkit(addr, keys[i]); err != nil {
				return fmt.Errorf("connection %d: %w", i, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("connected %d\n", len(conns))
	io.Copy(io.Discard, in) // until the benchmark is done
	for _, c := range conns {
		c.Close()
	}
}

// dialIdleToolkit opens a toolkit WebSocket and reads the handshake's
// answer and the greeting.
func dialIdleToolkit(addr, key string) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	fmt.Fprintf(c, "GET /ws/v1/atp/toolkit-client/%s/ HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", key, addr)
	r := bufio.NewReader(c)
	status, err := r.ReadString('\n')
	if err != nil {
		c.Close()
		return nil, err
	}
	if !strings.HasPrefix(status, "HTTP/1.1 101 ") {
		c.Close()
		return nil, fmt.Errorf("handshake: %q", status)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			c.Close()
			return nil, err
		}
		if line == "\r\n" {
			break
		}
	}
	// The greeting: an unmasked text frame.
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		c.Close()
		return nil, err
	}
	size := int(hdr[1] & 0x7f)
	if size == 126 {
		var ext [2]byte
		if _, err := io.ReadFull(r, ext[:]); err != nil {
			c.Close()
			return nil, err
		}
		size = int(ext[0])<<8 | int(ext[1])
	}
	payload := make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		c.Close()
		return nil, err
	}
	if hdr[0] != 0x81 || !bytes.Contains(payload, []byte("atp_client_connected")) {
		c.Close()
		return nil, errors.New("the first frame is not the greeting")
	}
	if r.Buffered() > 0 {
		c.Close()
		return nil, errors.New("data after the greeting")
	}
	c.SetDeadline(time.Time{})
	return c, nil
}
