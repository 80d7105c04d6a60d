package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// backlogPerSlot sizes the queue of requests read but not yet finished,
// per MaxInFlight slot. Requests past MaxInFlight wait in this queue; only
// when it is full does the session stop reading, so that a burst neither
// stalls the connection's keepalive nor grows memory without bound.
const backlogPerSlot = 16

// connectGrace is how long after the handshake a session that the server
// has not greeted counts as connected (StateConnected). `atp serve` greets
// once the connection is routable; a server that never greets gets the
// benefit of the doubt after this long, or at its first tool request.
const connectGrace = time.Second

// wsFrame holds what the toolkit reads of a server-to-toolkit message
// (docs/protocol.md §1.2). requestID and params are views of the frame
// read, valid until the next read: a call copies them.
type wsFrame struct {
	messageType string
	requestID   rawView
	toolName    string
	params      rawView
	authToken   string
	message     string // atp_client_connected
}

// rawView takes, through Decoder.Unmarshal, a view of a JSON value in the
// decoder's input rather than the copy Decoder.Raw makes.
type rawView []byte

func (v *rawView) UnmarshalJSON(b []byte) error {
	*v = b
	return nil
}

// parseFrame reads a frame in one pass with atpimpl's Decoder: no
// reflection, no copy of the id and params, and problems worded like
// params problems ("payload.tool_name: expected string, got 7"). Unknown
// members are skipped, as a newer server may add some.
func parseFrame(d *atpimpl.Decoder, data []byte, f *wsFrame) {
	d.Reset(data)
	// The params' own decoder reports invalid UTF-8 in them, at their path.
	d.SetLenientUTF8(true)
	if !d.Object() {
		return
	}
	for d.Next() {
		switch string(d.Key()) {
		case "message_type":
			f.messageType = d.String()
		case "payload":
			if d.Null() || !d.Object() {
				continue
			}
			for d.Next() {
				switch string(d.Key()) {
				case "request_id":
					d.Unmarshal(&f.requestID, "JSON value")
				case "tool_name":
					f.toolName = d.String()
				case "params":
					d.Unmarshal(&f.params, "JSON value")
				case "auth_token":
					// Never quote a malformed token in a problem: it may
					// still be a secret.
					switch raw := d.Raw(); {
					case len(raw) > 0 && raw[0] == '"':
						f.authToken = jsonString(raw)
					case len(raw) > 0 && string(raw) != "null":
						d.Fail("string", "another JSON type")
					}
				case "message":
					if !d.Null() {
						f.message = d.String()
					}
				default:
					d.Skip()
				}
			}
		default:
			d.Skip()
		}
	}
}

// problemText joins a decoder's problems into one line.
func problemText(problems []atpimpl.Problem) string {
	parts := make([]string, len(problems))
	for i, p := range problems {
		parts[i] = p.String()
	}
	return strings.Join(parts, "; ")
}

// wsSession is one WebSocket connection to the ATP server.
//
// Its goroutines take turns as the reader (leader/followers): one at a time
// reads frames. No tool ever runs on the goroutine that is reading, so a
// slow call cannot delay another request or the keepalive. When the reader
// reads a call while no other is in flight, it hands the reading on (to an
// idle goroutine of the session, or a new one) and runs the call itself:
// the hand-off then overlaps the call instead of delaying it, which matters
// most for a lone call. When other calls are in flight, the reader hands
// the call to an idle goroutine instead and reads on: under load, frames
// are already waiting, and reading them without a pause keeps the
// connection's throughput. After its call, a goroutine waits idle for its
// next turn.
type wsSession struct {
	s    *server
	conn *websocket.Conn
	// idle is how long the connection may stay silent (no frame, no pong)
	// before it is presumed dead.
	idle time.Duration

	w wsWriter // data frames; control frames go through conn.WriteControl

	mu       sync.Mutex // guards draining against calls.Add
	draining bool
	calls    sync.WaitGroup

	queue     chan struct{} // requests read and not finished (the backlog)
	stopQueue chan struct{} // closed when draining starts
	group     *callGroup    // the calls, cancelled together

	// wake hands an idle goroutine a call to run, or (nil) the reading. It
	// is unbuffered: a send succeeds only to a goroutine waiting for it.
	wake     chan func()
	ended    chan struct{} // closed when the session is over: idle goroutines exit
	readDone chan error    // the reader's error, which ends the session

	// routable: the session is reported connected once calls can reach it.
	stateMu     sync.Mutex
	connectedAt time.Time // zero until reported
	over        bool      // the session ended: no report any more

	// pool holds *wsCall: a call's state is reused, not allocated.
	pool sync.Pool

	// The reader's own state, handed over with the reading.
	frame    wsFrame
	readBuf  bytes.Buffer
	limited  io.LimitedReader
	dec      atpimpl.Decoder
	extended time.Time // when a frame last moved the read deadline
}

func (s *server) wsSession(ctx context.Context) (time.Time, error) {
	header := http.Header{"Authorization": {"Bearer " + s.cfg.APIKey}}
	var bc *batchConn
	dialer := s.batchingDialer(&bc)
	conn, resp, err := dialer.DialContext(ctx, s.ep.ws(), header)
	if err != nil {
		return time.Time{}, handshakeError(resp, err)
	}
	// Calls outlive Serve's ctx on purpose: cancelling ctx starts a drain
	// that lets them finish. Their context ends when the drain deadline
	// passes or the connection is lost.
	ss := &wsSession{
		s:         s,
		conn:      conn,
		idle:      s.cfg.PingInterval + s.cfg.PongTimeout,
		queue:     make(chan struct{}, s.cfg.MaxInFlight*backlogPerSlot),
		stopQueue: make(chan struct{}),
		group:     newCallGroup(ctx, s.cfg.CallTimeout),
		wake:      make(chan func()),
		ended:     make(chan struct{}),
		readDone:  make(chan error, 1),
	}
	ss.w = wsWriter{conn: conn, bc: bc, timeout: s.cfg.PongTimeout, backlog: ss.queue}
	ss.pool.New = func() any {
		c := &wsCall{ss: ss}
		c.job = c.run // bound once: a call hands it over without allocating
		return c
	}
	err = ss.run(ctx)
	return ss.end(), err
}

// routable reports the session connected, once: calls can reach it. The
// evidence is the server's greeting, a tool request, or the grace period
// passing without either.
func (ss *wsSession) routable(evidence string) {
	ss.stateMu.Lock()
	defer ss.stateMu.Unlock()
	if ss.over || !ss.connectedAt.IsZero() {
		return
	}
	ss.connectedAt = ss.s.connected(evidence)
}

// end marks the session over, so that no late report says it is connected,
// lets its idle goroutines go, and returns when it was reported connected
// (zero if never).
func (ss *wsSession) end() time.Time {
	ss.stateMu.Lock()
	defer ss.stateMu.Unlock()
	if !ss.over {
		ss.over = true
		close(ss.ended)
	}
	return ss.connectedAt
}

// batchingDialer returns the configured dialer (or the default one) with its
// network dial wrapped so that the connection under gorilla, and under TLS
// for wss, is a batchConn, which it stores in *bc.
func (s *server) batchingDialer(bc **batchConn) *websocket.Dialer {
	d := websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: 15 * time.Second}
	if s.cfg.Dialer != nil {
		d = *s.cfg.Dialer
	}
	wrap := func(c net.Conn, err error) (net.Conn, error) {
		if err != nil {
			return nil, err
		}
		*bc = &batchConn{Conn: c}
		return *bc, nil
	}
	netDialContext, netDial := d.NetDialContext, d.NetDial
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		switch {
		case netDialContext != nil:
			return wrap(netDialContext(ctx, network, addr))
		case netDial != nil:
			return wrap(netDial(network, addr))
		}
		var nd net.Dialer
		return wrap(nd.DialContext(ctx, network, addr))
	}
	if tlsDial := d.NetDialTLSContext; tlsDial != nil {
		d.NetDialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			return wrap(tlsDial(ctx, network, addr))
		}
	}
	return &d
}

// batchConn is the network connection under gorilla. While the session's
// writer writes a batch of responses, the bytes gorilla writes are
// collected here and reach the socket in one write: under load, many
// answers share one syscall. Outside a batch it passes writes through.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	if c.batching {
		c.buf = append(c.buf, p...)
		c.mu.Unlock()
		return len(p), nil
	}
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.batching = true
	c.mu.Unlock()
}

// flush ends the batch and writes what it collected. Only the writer that
// called begin calls it, so c.buf is not appended to during the write.
func (c *batchConn) flush() error {
	c.mu.Lock()
	c.batching = false
	buf := c.buf
	c.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(buf)
	c.mu.Lock()
	if cap(buf) <= 1<<20 { // keep a normal buffer, not one a huge batch grew
		c.buf = buf[:0]
	} else {
		c.buf = nil
	}
	c.mu.Unlock()
	return err
}

// wsWriter sends data frames. gorilla allows one writer at a time; rather
// than queue on a mutex, senders combine: each adds its frame to a queue,
// and whoever holds the write lock writes everything queued as one batch.
// A lone frame is written at once; under load, frames that became ready
// while a write was in progress go out together.
type wsWriter struct {
	conn    *websocket.Conn
	bc      *batchConn // nil if the dial did not go through batchingDialer
	timeout time.Duration
	backlog chan struct{} // holds a token per request read and not yet answered

	mu     sync.Mutex // guards queue and queued
	queue  [][]byte
	queued uint64 // frames ever queued

	writeMu     sync.Mutex // held while writing; guards the fields below
	written     uint64     // frames known written
	err         error      // the first write error: the connection is dead after it
	spare       [][]byte
	deadlineSet time.Time // when the write deadline was last moved
}

// send writes b as a text frame, possibly together with frames of other
// goroutines, and returns once it is written. b must stay unchanged until
// then.
func (w *wsWriter) send(b []byte) error {
	w.mu.Lock()
	w.queue = append(w.queue, b)
	w.queued++
	mine := w.queued
	w.mu.Unlock()
	if len(w.backlog) > 1 {
		// Other calls are running: let those that are about to answer do
		// so first, so that their frames join this write. On a loaded
		// session this turns one syscall per answer into one per batch
		// (about five answers per write at 64 in flight on two cores); a
		// lone call never waits.
		runtime.Gosched()
	}

	w.writeMu.Lock()
	defer w.writeMu.Unlock()
	if mine <= w.written {
		return nil // a previous writer wrote it
	}
	if w.err != nil {
		return w.err
	}
	w.mu.Lock()
	batch, last := w.queue, w.queued
	w.queue = w.spare[:0]
	w.mu.Unlock()

	err := w.write(batch)
	clear(batch)
	w.spare = batch[:0]
	if err != nil {
		w.err = err
		return err
	}
	w.written = last
	return nil
}

func (w *wsWriter) write(batch [][]byte) error {
	// The deadline moves at most every second: a write is then bounded
	// by between timeout-1s and timeout, and a batch saves a timer update
	// (which can wake the network poller) per write.
	if now := time.Now(); now.Sub(w.deadlineSet) >= time.Second {
		w.deadlineSet = now
		w.conn.SetWriteDeadline(now.Add(w.timeout))
	}
	if len(batch) == 1 || w.bc == nil {
		for _, b := range batch {
			if err := w.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				return err
			}
		}
		return nil
	}
	w.bc.begin()
	for _, b := range batch {
		if err := w.conn.WriteMessage(websocket.TextMessage, b); err != nil {
			w.bc.flush()
			return err
		}
	}
	return w.bc.flush()
}

// handshakeError describes a failed dial, quoting the server's answer when
// there is one. A refused key (401, 403) is permanent.
func handshakeError(resp *http.Response, err error) error {
	if resp == nil {
		return fmt.Errorf("websocket dial: %w", err)
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	resp.Body.Close()
	herr := fmt.Errorf("websocket handshake: the server answered %d %s: %s", resp.StatusCode, http.StatusText(resp.StatusCode), quoteBody(body))
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return &permanentError{herr}
	}
	return herr
}

// run serves the connection until it fails or ctx is done, then drains.
func (ss *wsSession) run(ctx context.Context) error {
	conn := ss.conn
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(ss.idle))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(ss.idle))
	})
	conn.SetPingHandler(func(data string) error {
		conn.SetReadDeadline(time.Now().Add(ss.idle))
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(ss.s.cfg.PongTimeout))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil // as gorilla's default handler: a missed pong is not a read error
		}
		return err
	})

	stopGrace := ss.s.clock.AfterFunc(connectGrace, func() {
		ss.routable("no greeting from the server within " + connectGrace.String())
	})
	defer stopGrace()
	go ss.serve(nil) // the first reader
	stopPing := make(chan struct{})
	defer close(stopPing)
	go ss.pingLoop(stopPing)

	select {
	case err := <-ss.readDone:
		ss.group.cancel(errConnectionLost)
		return ss.readError(err)
	case <-ctx.Done():
		ss.drain(ss.readDone)
		return nil
	}
}

func (ss *wsSession) readError(err error) error {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.As(err, &ce):
		return fmt.Errorf("the server closed the connection: %w", err)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("nothing received for %s (no frame, no pong): connection presumed dead: %w", ss.idle, err)
	}
	return fmt.Errorf("websocket read: %w", err)
}

func (ss *wsSession) pingLoop(stop <-chan struct{}) {
	t := time.NewTicker(ss.s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			err := ss.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(ss.s.cfg.PongTimeout))
			if err != nil {
				if !errors.Is(err, websocket.ErrCloseSent) {
					// A ping that cannot be written in PongTimeout means a
					// dead peer: closing ends the read loop, which reconnects.
					ss.conn.Close()
				}
				return
			}
		}
	}
}

// serve is the body of the session's goroutines: it runs job, or reads
// when job is nil, then waits idle for its next turn until the session
// ends.
func (ss *wsSession) serve(job func()) {
	for {
		if job == nil && !ss.lead() {
			return
		}
		if job != nil {
			ss.s.calls.run(job)
		}
		select {
		case job = <-ss.wake:
		case <-ss.ended:
			return
		}
	}
}

// lead reads until it reads a lone call, which it runs after handing the
// reading on. It returns false when reading failed, which ends the session.
func (ss *wsSession) lead() bool {
	for {
		job, err := ss.read()
		if err != nil {
			ss.readDone <- err // the only reader: the session is over
			return false
		}
		if len(ss.queue) > 1 {
			ss.handOff(job) // others are in flight: read on
			continue
		}
		ss.handOff(nil)
		ss.s.calls.run(job)
		return true
	}
}

// handOff gives job (or, when nil, the reading) to an idle goroutine of the
// session, or to a new one.
func (ss *wsSession) handOff(job func()) {
	select {
	case ss.wake <- job:
	default:
		go ss.serve(job)
	}
}

// read reads frames and handles those that run no tool, until one brings a
// call that may start now (returned: it holds a call slot) or reading fails.
func (ss *wsSession) read() (job func(), err error) {
	limit := ss.s.cfg.ReadLimit
	for {
		_, r, err := ss.conn.NextReader()
		if err != nil {
			return nil, err
		}
		received := time.Now()
		ss.readBuf.Reset()
		ss.limited = io.LimitedReader{R: r, N: limit + 1}
		n, err := ss.readBuf.ReadFrom(&ss.limited)
		if err != nil {
			return nil, err
		}
		// A frame shows the server alive, as a pong does. The deadline
		// moves at most every second: exactness does not matter at a
		// deadline of tens of seconds, and under load this saves work.
		if received.Sub(ss.extended) >= min(time.Second, ss.idle/4) {
			ss.extended = received
			ss.conn.SetReadDeadline(received.Add(ss.idle))
		}
		if n > limit {
			// gorilla discards the rest of the frame at the next
			// NextReader; the session goes on.
			ss.oversized(ss.readBuf.Bytes(), received)
			continue
		}
		// handle copies what it keeps: the buffer is reused.
		if job := ss.handle(ss.readBuf.Bytes(), received); job != nil {
			return job, nil
		}
	}
}

// handle dispatches one frame. It returns the call to run when the frame
// is a tool request that may start now. Nothing in a frame can end the
// session.
func (ss *wsSession) handle(data []byte, received time.Time) (job func()) {
	log := ss.s.log
	f := &ss.frame
	*f = wsFrame{}
	parseFrame(&ss.dec, data, f)
	if f.messageType == "atp_tool_request" {
		// A request, even a malformed one, shows that calls reach the
		// session, greeting or not.
		ss.routable("a tool request")
	}
	if ss.dec.Failed() {
		problems := problemText(ss.dec.Problems())
		if f.messageType == "atp_tool_request" && validID(json.RawMessage(f.requestID)) {
			// Answer a request whose id could be read, so that the server
			// learns what was wrong instead of waiting for a timeout.
			req := &request{id: json.RawMessage(f.requestID), received: received}
			log.Warn("atp: malformed atp_tool_request", "request_id", req.idString(), "problems", problems)
			ss.reply(req, ss.s.errorResult(fmt.Errorf("malformed atp_tool_request: %s", problems)), true)
			return nil
		}
		log.Warn("atp: ignoring malformed frame", "bytes", len(data), "problems", problems)
		return nil
	}
	switch f.messageType {
	case "atp_tool_request":
		return ss.request(f, received)
	case "atp_client_connected":
		log.Info("atp: server greeting", "message", truncate(f.message, 200))
		ss.routable("the server's greeting")
	case "":
		log.Warn("atp: ignoring frame without message_type", "bytes", len(data))
	default:
		log.Warn("atp: ignoring unknown message_type", "message_type", truncate(f.messageType, 64))
	}
	return nil
}

// request returns the call to run for a tool request when it may start
// now. A call that must wait for a slot is queued, to be run by the
// goroutine that frees one; a request that runs nothing is answered here,
// before the frame it is read from is reused.
func (ss *wsSession) request(f *wsFrame, received time.Time) (job func()) {
	id := json.RawMessage(f.requestID)
	if !validID(id) {
		ss.s.log.Warn("atp: ignoring atp_tool_request without request_id", "tool", truncate(f.toolName, 64))
		return nil
	}
	if _, ok := ss.s.tk.lookup(f.toolName); !ok {
		// Nothing to run: no slot needed, and the answer does not wait
		// behind slow calls.
		req := &request{id: id, tool: f.toolName, received: received}
		res, isErr := ss.s.outcome(ss.group.ctx, req, nil, ss.s.tk.unknownTool(req.tool))
		ss.reply(req, res, isErr)
		return nil
	}
	ss.mu.Lock()
	if ss.draining {
		ss.mu.Unlock()
		ss.reply(&request{id: id, tool: f.toolName, received: received}, ss.s.errorResult(errShuttingDown), true)
		return nil
	}
	ss.calls.Add(1)
	ss.mu.Unlock()
	select {
	case ss.queue <- struct{}{}:
	default:
		// The backlog is full: stop reading until a call finishes.
		select {
		case ss.queue <- struct{}{}:
		case <-ss.group.ctx.Done():
			ss.calls.Done()
			return nil
		}
		// The silence was ours, not the server's.
		ss.conn.SetReadDeadline(time.Now().Add(ss.idle))
	}
	c := ss.pool.Get().(*wsCall)
	c.take(f, received)
	if ss.s.calls.start(c.job) {
		return c.job
	}
	return nil
}

// wsCall is one call of a session from the frame read to the answer sent.
// It is pooled: nothing of it outlives run.
type wsCall struct {
	ss  *wsSession
	req request
	buf []byte // holds req.id and req.params
	job func() // run
}

// take copies what the call needs of f, whose bytes the reader reuses.
func (c *wsCall) take(f *wsFrame, received time.Time) {
	c.buf = append(append(c.buf[:0], f.requestID...), f.params...)
	n := len(f.requestID)
	c.req = request{
		id:        c.buf[:n:n],
		tool:      f.toolName,
		authToken: f.authToken,
		received:  received,
	}
	if f.params != nil {
		c.req.params = c.buf[n:]
	}
}

// run runs the call on a call slot, never on the reading goroutine.
func (c *wsCall) run() {
	ss := c.ss
	defer ss.calls.Done()
	defer c.release()
	select {
	case <-ss.stopQueue: // shutdown began while this call waited
		ss.reply(&c.req, ss.s.errorResult(errShuttingDown), true)
		return
	default:
	}
	if ss.group.ctx.Err() != nil { // the connection is gone
		ss.reply(&c.req, ss.s.errorResult(context.Cause(ss.group.ctx)), true)
		return
	}
	ss.s.call(ss.group, &c.req, string(TransportWS), c)
}

func (c *wsCall) answer(result []byte, isErr bool) { c.ss.reply(&c.req, result, isErr) }

// release frees the call's backlog place and returns it to the pool.
func (c *wsCall) release() {
	<-c.ss.queue
	if c.req.detached || cap(c.buf) > 64<<10 {
		// The tool may still be reading its params; a huge request's
		// buffer is not kept around either.
		c.buf = nil
	}
	c.req = request{}
	c.ss.pool.Put(c)
}

// reply sends the one tool_response of a request.
func (ss *wsSession) reply(req *request, result []byte, isErr bool) {
	bp := ss.s.getBuf()
	b := appendToolResponse((*bp)[:0], req.id, result, isErr, time.Since(req.received))
	err := ss.w.send(b)
	*bp = b
	ss.s.putBuf(bp)
	if err == nil {
		return
	}
	if errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
		ss.s.log.Warn("atp: tool_response not sent: the connection is closed", "request_id", req.idString(), "tool", req.tool)
		return
	}
	ss.s.log.Warn("atp: tool_response not sent; dropping the connection", "request_id", req.idString(), "tool", req.tool, "err", err)
	ss.conn.Close() // ends the read loop, which reconnects
}

// drainingFrame tells the server that the toolkit is shutting down: no new
// call should be routed to the connection, whose calls in flight are still
// answered.
var drainingFrame = []byte(`{"type":"draining"}`)

// drain is the graceful shutdown: new requests are answered with
// errShuttingDown (the read loop keeps going, so that the server's close
// reply is read), running calls get DrainTimeout to finish, then the
// connection is closed with 1000.
func (ss *wsSession) drain(readDone <-chan error) {
	log := ss.s.log
	ss.mu.Lock()
	ss.draining = true
	ss.mu.Unlock()
	close(ss.stopQueue)
	log.Info("atp: shutting down; draining running calls", "deadline", ss.s.cfg.DrainTimeout)
	// Ask the server to route no new call here (docs/extensions.md): it
	// would otherwise keep sending calls to a connection that can only
	// refuse them, and, answered at once, such a connection looks the
	// least busy of a toolkit's instances. A failed write ends the session.
	if err := ss.w.send(drainingFrame); err != nil {
		log.Debug("atp: could not announce the drain", "err", err)
	}

	drained := make(chan struct{})
	go func() {
		ss.calls.Wait()
		close(drained)
	}()
	deadline := time.NewTimer(ss.s.cfg.DrainTimeout)
	defer deadline.Stop()
	select {
	case <-drained:
	case err := <-readDone:
		ss.group.cancel(errConnectionLost)
		log.Warn("atp: connection lost while draining; answers of running calls are lost", "err", ss.readError(err))
		return
	case <-deadline.C:
		log.Warn("atp: drain deadline passed; cancelling the calls still running")
		ss.group.cancel(errDrainTimeout)
		// Calls that stop on cancellation still get their answer out.
		grace := time.NewTimer(min(time.Second, ss.s.cfg.PongTimeout))
		select {
		case <-drained:
		case <-grace.C:
		}
		grace.Stop()
	}
	ss.group.cancel(errShuttingDown)

	err := ss.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "toolkit shutting down"),
		time.Now().Add(ss.s.cfg.PongTimeout))
	if err != nil {
		log.Warn("atp: could not send the close frame", "err", err)
		return
	}
	// Wait for the server's close reply, which completes the handshake.
	wait := time.NewTimer(ss.s.cfg.PongTimeout)
	defer wait.Stop()
	select {
	case <-readDone:
	case <-wait.C:
	}
	log.Info("atp: connection closed")
}

// oversized answers a frame above ReadLimit when the request_id can be read
// from its first ReadLimit bytes, and logs it either way.
func (ss *wsSession) oversized(prefix []byte, received time.Time) {
	limit := ss.s.cfg.ReadLimit
	id := requestIDInPrefix(prefix, false)
	if !validID(id) {
		ss.s.log.Warn("atp: refused a frame larger than ReadLimit", "limit", limit)
		return
	}
	req := &request{id: id, received: received}
	ss.s.log.Warn("atp: refused a request larger than ReadLimit", "limit", limit, "request_id", req.idString())
	ss.reply(req, ss.s.errorResult(fmt.Errorf("request refused: the frame is larger than the toolkit's read limit of %d bytes", limit)), true)
}

// requestIDInPrefix finds the request_id of a tool request in the first
// bytes of a message too large to read whole: payload.request_id of an
// atp_tool_request frame, or with flat the top-level request_id of an inbox
// reply. It returns nil when the id does not come before the cut, or the
// frame is another message.
func requestIDInPrefix(prefix []byte, flat bool) json.RawMessage {
	d := json.NewDecoder(bytes.NewReader(prefix))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil
	}
	if flat {
		return memberInPrefix(d, "request_id")
	}
	for d.More() {
		key, err := d.Token()
		if err != nil {
			return nil
		}
		switch key {
		case "message_type":
			var mt string
			if d.Decode(&mt) != nil || mt != "atp_tool_request" {
				return nil
			}
		case "payload":
			if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
				return nil
			}
			return memberInPrefix(d, "request_id")
		default:
			var skip json.RawMessage
			if d.Decode(&skip) != nil {
				return nil
			}
		}
	}
	return nil
}

// memberInPrefix reads the members of the object d is in until it finds
// name, and returns its value (nil when the input ends first).
func memberInPrefix(d *json.Decoder, name string) json.RawMessage {
	for d.More() {
		key, err := d.Token()
		if err != nil {
			return nil
		}
		var v json.RawMessage
		if d.Decode(&v) != nil {
			return nil
		}
		if key == name {
			return v
		}
	}
	return nil
}

// appendToolResponse appends the tool_response of docs/protocol.md §1.2, built by hand:
// the id and result are already JSON, and this is the hot path.
func appendToolResponse(b []byte, id json.RawMessage, result []byte, isErr bool, latency time.Duration) []byte {
	b = append(b, `{"type":"tool_response","request_id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	if isErr {
		b = append(b, `,"is_error":true`...)
	}
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, latency.Milliseconds(), 10)
	return append(b, '}')
}

// describeJSONError words a decoding error without Go type names.
func describeJSONError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			field = "frame"
		}
		// Value is like "number 12345": keep the kind only, since the value
		// may be a secret (an auth_token of the wrong type).
		got, _, _ := strings.Cut(te.Value, " ")
		return fmt.Sprintf("%s: expected %s, got %s", field, jsontree.KindOfGo(te.Type.Kind()), got)
	}
	return err.Error()
}

// truncate cuts s to at most n bytes on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
