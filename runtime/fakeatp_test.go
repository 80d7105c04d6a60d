package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// waitBound bounds every wait in these tests. It is a safety net that turns
// a hang into a failure, never a means of synchronisation.
const waitBound = 10 * time.Second

// fakeATP is an in-test ATP server speaking docs/protocol.md §1: the registration
// endpoints, the toolkit WebSocket and the HTTP inbox. It records what the
// toolkit sends and lets a test drive each connection.
type fakeATP struct {
	t      testing.TB
	key    string
	prefix string // path prefix the server is mounted under
	srv    *httptest.Server

	mu            sync.Mutex
	regCalls      []fakeRegCall     // registration requests, in order
	toolkitHash   string            // last toolkit_hash registered
	toolHashes    map[string]string // tool name -> code_hash registered
	registerReply func(body map[string]any) (status int, reply string)
	verifyMissing bool // verify endpoints answer 404, as on an older server
	wsReject      int  // status refusing WebSocket upgrades; 0 accepts
	wsRejectBody  string
	wsAuth        []string // Authorization headers of WebSocket handshakes
	deaf          bool     // new connections are never read: no pong, ever
	// noGreeting: new connections get no atp_client_connected, as from a
	// server that never greets. By default the fake greets at once, as
	// `atp serve` does once a connection is routable.
	noGreeting bool

	conns chan *fakeConn

	// inbox
	inboxQueue   chan string // flat request objects to hand out
	longPoll     bool        // hold polls and answer with the wait header
	polls        chan url.Values
	responses    chan []byte
	inboxHangup  bool // the inbox endpoint drops the connection
	respondFails int  // respond answers 503 this many times first
	// knowsRelease: inbox/release answers 200 (else 404, as from a server
	// without it); holdForRelease: a held poll waits for a release, then
	// answers with the queued request if there is one.
	knowsRelease, holdForRelease bool
	releases                     chan struct{}
}

type fakeRegCall struct {
	Path string
	Body map[string]any
}

func newFakeATP(t testing.TB, key string) *fakeATP {
	f := &fakeATP{
		t:          t,
		key:        key,
		toolHashes: map[string]string{},
		conns:      make(chan *fakeConn, 16),
		inboxQueue: make(chan string, 64),
		polls:      make(chan url.Values, 1024),
		responses:  make(chan []byte, 64),
		releases:   make(chan struct{}, 16),
	}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	return f
}

// newFakeATPAt mounts the fake under a path prefix.
func newFakeATPAt(t testing.TB, key, prefix string) *fakeATP {
	f := newFakeATP(t, key)
	f.prefix = prefix
	return f
}

// URL is the base URL a toolkit is given.
func (f *fakeATP) URL() string { return f.srv.URL + f.prefix }

func (f *fakeATP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.EscapedPath(), f.prefix)
	if !ok {
		http.NotFound(w, r)
		return
	}
	escKey := url.PathEscape(f.key)
	switch {
	case r.Method == http.MethodPost && (path == "/api/v1/toolkit/verify_hash" || path == "/api/v1/toolkit/verify_tool_hash" || path == "/api/v1/register_tool"):
		f.registration(w, r, path)
	case path == "/ws/v1/atp/toolkit-client/"+escKey+"/":
		f.websocket(w, r)
	case r.Method == http.MethodGet && path == "/api/v1/toolkit/"+escKey+"/inbox":
		f.inboxPoll(w, r)
	case r.Method == http.MethodPost && path == "/api/v1/toolkit/"+escKey+"/inbox/respond":
		f.inboxRespond(w, r)
	case r.Method == http.MethodPost && path == "/api/v1/toolkit/"+escKey+"/inbox/release" && f.knowsRelease:
		f.releases <- struct{}{}
		io.WriteString(w, `{"released":1}`)
	default:
		http.Error(w, "no route for "+r.Method+" "+path, http.StatusNotFound)
	}
}

func (f *fakeATP) registration(w http.ResponseWriter, r *http.Request, path string) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		http.Error(w, "bad json: "+err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.regCalls = append(f.regCalls, fakeRegCall{Path: path, Body: body})
	w.Header().Set("Content-Type", "application/json")
	switch path {
	case "/api/v1/toolkit/verify_hash":
		if f.verifyMissing {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, `{"up_to_date":%t}`, body["toolkit_hash"] == f.toolkitHash && f.toolkitHash != "")
	case "/api/v1/toolkit/verify_tool_hash":
		if f.verifyMissing {
			http.NotFound(w, r)
			return
		}
		name, _ := body["tool_name"].(string)
		fmt.Fprintf(w, `{"up_to_date":%t}`, f.toolHashes[name] != "" && body["tool_hash"] == f.toolHashes[name])
	case "/api/v1/register_tool":
		if f.registerReply != nil {
			if status, reply := f.registerReply(body); status != http.StatusOK {
				w.WriteHeader(status)
				io.WriteString(w, reply)
				return
			}
		}
		name, _ := body["function_id"].(string)
		f.toolHashes[name], _ = body["code_hash"].(string)
		f.toolkitHash, _ = body["toolkit_hash"].(string)
		io.WriteString(w, `{"exchange_token":"xt-1"}`)
	}
}

// registrations returns the registration calls so far and forgets them.
func (f *fakeATP) registrations() []fakeRegCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	calls := f.regCalls
	f.regCalls = nil
	return calls
}

// paths lists the paths of calls, tool names appended to per-tool calls.
func regPaths(calls []fakeRegCall) []string {
	var out []string
	for _, c := range calls {
		p := strings.TrimPrefix(c.Path, "/api/v1/")
		if n, ok := c.Body["tool_name"].(string); ok {
			p += " " + n
		}
		if n, ok := c.Body["function_id"].(string); ok {
			p += " " + n
		}
		out = append(out, p)
	}
	return out
}

// forget drops everything registered, as a server that lost its store.
func (f *fakeATP) forget() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.toolkitHash = ""
	f.toolHashes = map[string]string{}
}

func (f *fakeATP) set(fn func(f *fakeATP)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeATP) websocket(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	reject, rejectBody, deaf, noGreeting := f.wsReject, f.wsRejectBody, f.deaf, f.noGreeting
	f.wsAuth = append(f.wsAuth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	if reject != 0 {
		http.Error(w, rejectBody, reject)
		return
	}
	up := websocket.Upgrader{}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &fakeConn{t: f.t, ws: ws, in: make(chan []byte, 1024), closed: make(chan struct{}), drains: make(chan int, 4),
		pings: make(chan struct{}, 1024), pongs: make(chan string, 1024)}
	ws.SetPingHandler(func(data string) error {
		c.pings <- struct{}{}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	ws.SetPongHandler(func(data string) error {
		c.pongs <- data
		return nil
	})
	if !noGreeting {
		greeting := `{"message_type":"atp_client_connected","payload":{"message":"connected to the fake ATP server"}}`
		if err := ws.WriteMessage(websocket.TextMessage, []byte(greeting)); err != nil {
			return
		}
	}
	if !deaf {
		go c.readLoop()
	}
	f.conns <- c
}

// waitHandshakes polls until the fake has seen n WebSocket handshakes (each
// decided, accepted or refused, in the same step as it is counted).
func (f *fakeATP) waitHandshakes(t testing.TB, n int) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for {
		f.mu.Lock()
		seen := len(f.wsAuth)
		f.mu.Unlock()
		if seen >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("saw %d WebSocket handshakes within %s, want %d", seen, waitBound, n)
		}
		time.Sleep(time.Millisecond) // bounded polling of an observable
	}
}

// conn waits for the toolkit's next WebSocket connection.
func (f *fakeATP) conn() *fakeConn {
	f.t.Helper()
	select {
	case c := <-f.conns:
		f.t.Cleanup(func() { c.ws.Close() })
		return c
	case <-time.After(waitBound):
		f.t.Fatalf("no WebSocket connection from the toolkit within %s", waitBound)
		return nil
	}
}

func (f *fakeATP) inboxPoll(w http.ResponseWriter, r *http.Request) {
	f.polls <- r.URL.Query()
	f.mu.Lock()
	longPoll, hangup := f.longPoll, f.inboxHangup
	f.mu.Unlock()
	if hangup {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if !longPoll {
		select {
		case req := <-f.inboxQueue:
			io.WriteString(w, req)
		default:
			io.WriteString(w, "{}")
		}
		return
	}
	// The fake's hold is short (its own "wait"), so empty held polls happen
	// within a test; the header says the poll was held.
	w.Header().Set(inboxWaitHeader, r.URL.Query().Get("wait"))
	if f.holdForRelease {
		select {
		case <-f.releases:
		case <-r.Context().Done():
			return
		}
		select {
		case req := <-f.inboxQueue:
			io.WriteString(w, req)
		default:
			io.WriteString(w, "{}")
		}
		return
	}
	hold := time.NewTimer(20 * time.Millisecond)
	defer hold.Stop()
	select {
	case req := <-f.inboxQueue:
		io.WriteString(w, req)
	case <-hold.C:
		io.WriteString(w, "{}")
	case <-r.Context().Done():
	}
}

func (f *fakeATP) inboxRespond(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	fail := f.respondFails > 0
	if fail {
		f.respondFails--
	}
	f.mu.Unlock()
	if fail {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	f.responses <- body
	io.WriteString(w, `{"ok":true}`)
}

// inboxResponse waits for the next answer posted to the inbox.
func (f *fakeATP) inboxResponse() map[string]any {
	f.t.Helper()
	select {
	case b := <-f.responses:
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			f.t.Fatalf("inbox answer is not JSON: %v: %s", err, b)
		}
		return m
	case <-time.After(waitBound):
		f.t.Fatalf("no inbox answer within %s", waitBound)
		return nil
	}
}

// fakeConn is the server end of one toolkit WebSocket.
type fakeConn struct {
	t      testing.TB
	ws     *websocket.Conn
	wmu    sync.Mutex
	in     chan []byte   // frames from the toolkit
	pings  chan struct{} // one per ping received
	pongs  chan string   // the data of each pong received
	closed chan struct{} // closed when the read loop ends
	drains chan int      // drain announcements (see draining)
	// closeCode is the close status the toolkit sent (valid after closed).
	closeCode int
}

func (c *fakeConn) readLoop() {
	defer close(c.closed)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			if ce, ok := err.(*websocket.CloseError); ok {
				c.closeCode = ce.Code
			}
			return
		}
		if bytes.Equal(b, []byte(`{"type":"draining"}`)) {
			// The drain's announcement: kept apart from the answers, with
			// how many frames were waiting to be read when it came.
			c.drains <- len(c.in)
			continue
		}
		c.in <- b
	}
}

// draining waits for the toolkit's drain announcement and returns how many
// frames were waiting to be read when it came.
func (c *fakeConn) draining() int {
	c.t.Helper()
	select {
	case n := <-c.drains:
		return n
	case <-time.After(waitBound):
		c.t.Fatalf("no draining frame within %s", waitBound)
		return 0
	}
}

func (c *fakeConn) send(frame string) {
	c.t.Helper()
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.ws.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		c.t.Fatalf("fake server: send: %v", err)
	}
}

// request sends an atp_tool_request; params and id are encoded as JSON.
func (c *fakeConn) request(id any, tool string, params any, authToken string) {
	c.t.Helper()
	payload := map[string]any{"request_id": id, "tool_name": tool, "params": params}
	if authToken != "" {
		payload["auth_token"] = authToken
	}
	b, _ := json.Marshal(map[string]any{"message_type": "atp_tool_request", "payload": payload})
	c.send(string(b))
}

// response waits for the next tool_response and checks its envelope.
func (c *fakeConn) response() fakeResponse {
	c.t.Helper()
	select {
	case b := <-c.in:
		return c.parseResponse(b)
	case <-c.closed:
		// The read loop queues every frame before it marks the close.
		select {
		case b := <-c.in:
			return c.parseResponse(b)
		default:
		}
		c.t.Fatalf("connection closed (code %d) while waiting for a tool_response", c.closeCode)
	case <-time.After(waitBound):
		c.t.Fatalf("no tool_response within %s", waitBound)
	}
	return fakeResponse{}
}

// parseResponse checks a tool_response's envelope.
func (c *fakeConn) parseResponse(b []byte) fakeResponse {
	c.t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		c.t.Fatalf("toolkit frame is not JSON: %v: %s", err, b)
	}
	if m["type"] != "tool_response" {
		c.t.Fatalf("toolkit frame type = %v, want tool_response: %s", m["type"], b)
	}
	if _, ok := m["latency_ms"].(json.Number); !ok {
		c.t.Fatalf("tool_response without numeric latency_ms: %s", b)
	}
	return fakeResponse{m: m, raw: b}
}

// responses collects n responses by request id.
func (c *fakeConn) responses(n int) map[string]fakeResponse {
	c.t.Helper()
	out := map[string]fakeResponse{}
	for range n {
		r := c.response()
		out[r.id()] = r
	}
	return out
}

// waitClosed waits for the toolkit to close the connection and returns its
// close code.
func (c *fakeConn) waitClosed() int {
	c.t.Helper()
	select {
	case <-c.closed:
		return c.closeCode
	case <-time.After(waitBound):
		c.t.Fatalf("toolkit did not close the connection within %s", waitBound)
		return 0
	}
}

// ping sends a ping and waits for its pong, which the toolkit sends from
// the goroutine reading the connection: a pong shows that reading goes on.
func (c *fakeConn) ping(data string) {
	c.t.Helper()
	if err := c.ws.WriteControl(websocket.PingMessage, []byte(data), time.Now().Add(waitBound)); err != nil {
		c.t.Fatalf("fake server: ping: %v", err)
	}
	select {
	case got := <-c.pongs:
		if got != data {
			c.t.Fatalf("pong %q, want %q", got, data)
		}
	case <-time.After(waitBound):
		c.t.Fatalf("no pong within %s", waitBound)
	}
}

// drop cuts the connection without a close handshake.
func (c *fakeConn) drop() { c.ws.NetConn().Close() }

type fakeResponse struct {
	m   map[string]any
	raw []byte
}

func (r fakeResponse) id() string { return fmt.Sprint(r.m["request_id"]) }

func (r fakeResponse) isError() bool { return r.m["is_error"] == true }

func (r fakeResponse) result() map[string]any {
	m, _ := r.m["result"].(map[string]any)
	return m
}

// errorText is result.error of a failure response.
func (r fakeResponse) errorText() string {
	s, _ := r.result()["error"].(string)
	return s
}

// fakeClock records Serve's waits. Each Sleep hands its duration to the
// test through an unbuffered channel, so the waiting goroutine goes on only
// when the test has taken it, and the clock moves on by that much. Timers
// (AfterFunc) fire when Advance moves the clock past them; armed receives
// the duration of each timer set.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps chan time.Duration
	timers []*fakeTimer
	armed  chan time.Duration
}

type fakeTimer struct {
	at            time.Time
	f             func()
	stopped, done bool
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), sleeps: make(chan time.Duration),
		armed: make(chan time.Duration, 64)}
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	t := &fakeTimer{at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	select {
	case c.armed <- d:
	default:
	}
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.stopped || t.done {
			return false
		}
		t.stopped = true
		return true
	}
}

// waitArmed waits until a timer of duration d is set.
func (c *fakeClock) waitArmed(t testing.TB, d time.Duration) {
	t.Helper()
	deadline := time.After(waitBound)
	for {
		select {
		case got := <-c.armed:
			if got == d {
				return
			}
		case <-deadline:
			t.Fatalf("no timer of %s set within %s", d, waitBound)
		}
	}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []func()
	kept := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.stopped:
		case !t.at.After(c.now):
			t.done = true
			due = append(due, t.f)
		default:
			kept = append(kept, t)
		}
	}
	c.timers = kept
	c.mu.Unlock()
	for _, f := range due {
		go f()
	}
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case c.sleeps <- d:
		c.Advance(d)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// sleep waits for Serve's next Sleep and returns its duration.
func (c *fakeClock) sleep(t testing.TB) time.Duration {
	t.Helper()
	select {
	case d := <-c.sleeps:
		return d
	case <-time.After(waitBound):
		t.Fatalf("Serve did not wait within %s", waitBound)
		return 0
	}
}

// logBuffer captures log output for assertions; safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls the log until it holds s.
func (l *logBuffer) waitFor(t testing.TB, s string) {
	t.Helper()
	deadline := time.Now().Add(waitBound)
	for !strings.Contains(l.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log never said %q; log:\n%s", s, l.String())
		}
		time.Sleep(time.Millisecond) // bounded polling of an observable
	}
}

func newTestLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// serveRun is a Serve running in the background.
type serveRun struct {
	cancel context.CancelFunc
	done   chan error
}

func startServe(t testing.TB, tk *Toolkit, cfg ServeConfig) *serveRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &serveRun{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- tk.Serve(ctx, cfg) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(waitBound):
			t.Errorf("Serve did not return within %s of cancel", waitBound)
		}
	})
	return r
}

// wait returns Serve's error once it returns by itself.
func (r *serveRun) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(waitBound):
		t.Fatalf("Serve did not return within %s", waitBound)
		return nil
	}
}

// stop cancels Serve and returns its error.
func (r *serveRun) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}
