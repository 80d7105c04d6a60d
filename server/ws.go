package server

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// wsSession is what the toolkit and LLM WebSocket sessions share: an
// outbox that never makes a sender wait for another, keepalive pings with
// a pong timeout, a read buffer that an idle session does not keep large,
// rate-limited warnings, and a close that runs once.
type wsSession struct {
	s      *Server
	ws     *websocket.Conn
	peer   string        // "llm" or "toolkit": the label of its metrics
	cork   *corkConn     // the socket under ws, nil when it is not ours
	log    *slog.Logger  // set before the session is tracked, never changed
	warns  *peerWarnings // set with log
	closed chan struct{}
	// keyID is the session's key (ended by Server.endKey when it is
	// revoked); nil until the session has authenticated.
	keyID atomic.Pointer[string]

	// Liveness: the pinger alternates between sending a ping and, a pong
	// timeout later, judging the peer's last sign of life (pongVerdict).
	born time.Time // the base of the times below (monotonic)
	// answersPings reports whether the peer answers pings even while it
	// works (pongVerdict); nil: it may not.
	answersPings func() bool
	lastAlive    atomic.Int64 // since born: the last frame, ping or pong from the peer
	pingSent     atomic.Int64 // since born: the last ping, while its check is due; -1 otherwise
	// standingDeadline is the read deadline between messages: zero, or the
	// authentication deadline of an LLM session that has not authenticated.
	// Only the read loop touches it after start.
	standingDeadline time.Time

	out       outbox
	reads     flusher      // the read loop's: see sendVia
	rbuf      bytes.Buffer // the read loop's: see readMessage
	rlim      io.LimitedReader
	readLimit int64 // gorilla's read limit (setReadLimit), for readFrame
	closeOnce sync.Once
	pinger    atomic.Pointer[time.Timer] // set by start; read by closeWith from any goroutine
	onClose   func(error)                // run once, after the socket is closed

	relMu    sync.Mutex
	released bool
	release  []func() // run once, after onClose: the limits the session holds
}

// holds adds a release to run when the session closes; at once when it
// has closed already.
func (c *wsSession) holds(release func()) {
	c.relMu.Lock()
	if c.released {
		c.relMu.Unlock()
		release()
		return
	}
	c.release = append(c.release, release)
	c.relMu.Unlock()
}

// outbox serialises a session's writes without a writer goroutine: a
// sender finding no write in progress writes itself (with no hand-off, so
// a lone call costs no extra wake-up); a sender finding one in progress
// queues its message and returns, and the writer takes the whole queue in
// one batch, which corkConn turns into one system call.
type outbox struct {
	mu    sync.Mutex
	queue [][]byte
	// bytes is the size of queue: with what the socket has behind
	// (corkConn), what waits to be written to the peer, which
	// Config.MaxWriteQueueBytes caps (enqueue).
	bytes    int64
	spare    [][]byte
	writing  bool
	deferred bool // a read loop's flusher will write the queue (sendVia)
	closed   bool
	idle     chan struct{} // closed when the current write ends; made on demand
}

func (c *wsSession) init(s *Server, ws *websocket.Conn) {
	c.s, c.ws, c.closed = s, ws, make(chan struct{})
	c.born = time.Now()
	c.pingSent.Store(-1)
	if c.cork, _ = ws.NetConn().(*corkConn); c.cork != nil {
		c.cork.beforeRead = c.reads.flush
		c.cork.mu.Lock()
		c.cork.onWriteError = func(err error) { c.abort(fmt.Errorf("write: %w", err)) }
		c.cork.mu.Unlock()
	}
}

const writeWait = 10 * time.Second

// wsWriteBuffers lends gorilla its write buffers, one per message being
// written, shared by every connection (of every server: a buffer holds
// nothing between messages).
var wsWriteBuffers sync.Pool

func (s *Server) upgrader(checkOrigin func(*http.Request) bool) *websocket.Upgrader {
	return &websocket.Upgrader{
		// 0: gorilla reads frames with the reader Hijack hands it
		// (statusRecorder.Hijack: small, over a pooled buffer), rather
		// than allocate one that every idle connection would keep.
		ReadBufferSize: 0,
		// Frames are written in buffers of a pool, taken for each message
		// and given back after it: an idle connection keeps none.
		WriteBufferSize: 4096,
		WriteBufferPool: &wsWriteBuffers,
		CheckOrigin:     checkOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeError(w, status, "websocket: "+reason.Error())
		},
	}
}

// start arms the read limit and the pings. limit is the largest message
// the session takes for now (FrameLimit once authenticated).
func (c *wsSession) start(limit int64) {
	c.setReadLimit(limit)
	c.alive()
	c.ws.SetPongHandler(func(string) error { c.alive(); return nil })
	c.ws.SetPingHandler(func(data string) error {
		c.alive()
		err := c.ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	// A timer rather than a goroutine per connection: an idle session costs
	// no goroutine, and a reconnect storm leaves nothing behind. It is
	// stored before it is armed: ping resets it.
	t := time.AfterFunc(time.Hour, c.ping)
	t.Stop()
	c.pinger.Store(t)
	t.Reset(c.s.cfg.PingInterval)
}

// setReadLimit sets the size of the largest message the session takes.
func (c *wsSession) setReadLimit(limit int64) {
	c.readLimit = limit
	c.ws.SetReadLimit(limit)
}

// alive records a sign of life from the peer. It is an atomic store, not
// a read deadline: it runs on every frame.
func (c *wsSession) alive() { c.lastAlive.Store(int64(time.Since(c.born))) }

// ping runs on the pinger's timer. Every Config.PingInterval it sends a
// ping; Config.PongTimeout later it checks the peer's sign of life
// (pongVerdict). A peer that gave none is gone or stuck (a stopped process
// keeps its socket open): the session is dropped, and the calls in flight
// on it fail saying why, instead of waiting for their timeout.
func (c *wsSession) ping() {
	select {
	case <-c.closed:
		return
	default:
	}
	cfg := &c.s.cfg
	if sent := c.pingSent.Swap(-1); sent >= 0 {
		strict := c.answersPings != nil && c.answersPings()
		if err := pongVerdict(strict, time.Duration(sent), time.Duration(c.lastAlive.Load()), cfg.PingInterval, cfg.PongTimeout); err != nil {
			c.abort(err)
			return
		}
		next := time.Duration(sent) + cfg.PingInterval - time.Since(c.born)
		c.pinger.Load().Reset(max(next, 0))
		return
	}
	sent := int64(time.Since(c.born))
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
		c.abort(fmt.Errorf("ping: %w", err))
		return
	}
	c.pingSent.Store(sent)
	c.pinger.Load().Reset(cfg.PongTimeout)
}

// pongVerdict judges a peer PongTimeout after the ping sent at sent (times
// on one clock), given its last sign of life. A peer whose read loop never
// waits for its own work (strict: our runtime) must show one since the
// ping: a pong, or any frame, as a busy peer may answer late. Others may
// not read while they run a tool: the Python SDK runs tools on the thread
// that would answer, and proves it is alive with its own pings instead
// (every 30s). Those are held to the window the old keepalive gave: some
// sign of life within the last PingInterval + PongTimeout.
func pongVerdict(strict bool, sent, alive, pingInterval, pongTimeout time.Duration) error {
	switch {
	case strict && alive < sent:
		return fmt.Errorf("no pong within %s of a keepalive ping (--pong-timeout): the peer stopped answering", pongTimeout)
	case !strict && alive < sent-pingInterval:
		return fmt.Errorf("nothing received for %s, not even a ping or pong (--ping-interval + --pong-timeout): the peer stopped answering", pingInterval+pongTimeout)
	}
	return nil
}

// send writes msg as a text message, now or in the current writer's next
// batch; it takes ownership of msg, and gives it to freeFrame once written. A failed write aborts the session (and
// the session's onClose fails what depended on it), so there is no error to
// return. After close, messages are dropped.
func (c *wsSession) send(msg []byte) {
	o := &c.out
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	if waiting, ok := c.enqueue(msg); !ok {
		o.mu.Unlock()
		c.overflow(waiting, len(msg))
		return
	}
	if o.writing {
		o.mu.Unlock()
		return
	}
	c.writeQueued()
}

// sendVia is send for a message produced by a read loop: with f (the read
// loop's flusher) the write waits until that loop is about to block on its
// next read, so that what it produces from a burst of incoming frames goes
// out in one batch. A lone message is written as soon as its frame has been
// handled, so latency does not suffer. f == nil is send.
func (c *wsSession) sendVia(msg []byte, f *flusher) {
	if f == nil {
		c.send(msg)
		return
	}
	o := &c.out
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	if waiting, ok := c.enqueue(msg); !ok {
		o.mu.Unlock()
		c.overflow(waiting, len(msg))
		return
	}
	if !o.writing && !o.deferred { // else the writer, or the flush already due, takes it
		o.deferred = true
		f.dirty = append(f.dirty, c)
	}
	o.mu.Unlock()
}

// enqueue appends msg to the queue, unless what waits to be written to
// the peer (the queue and what the socket has behind) would pass
// Config.MaxWriteQueueBytes with it: a peer that does not read, or reads
// slower than the server answers, must not make it hold unbounded memory.
// A message finding nothing waiting is always taken, whatever its size
// (the write deadline bounds its wait). It returns what was waiting.
// o.mu is held.
func (c *wsSession) enqueue(msg []byte) (waiting int64, ok bool) {
	o := &c.out
	waiting = o.bytes
	if c.cork != nil {
		waiting += c.cork.behindBytes.Load()
	}
	if waiting > 0 && waiting+int64(len(msg)) > c.s.cfg.MaxWriteQueueBytes {
		return waiting, false
	}
	o.queue = append(o.queue, msg)
	o.bytes += int64(len(msg))
	return waiting, true
}

// overflow closes a session whose peer left more than
// Config.MaxWriteQueueBytes waiting: the calls that depended on it fail
// (a toolkit's) or are taken back (an LLM client's), saying why.
func (c *wsSession) overflow(waiting int64, size int) {
	limit := c.s.cfg.MaxWriteQueueBytes
	c.s.metrics.writeQueueFull(c.peer)
	c.log.Warn("closing a WebSocket whose peer does not read what the server sends (--max-write-queue-bytes)",
		"waiting_bytes", waiting, "message_bytes", size, "limit_bytes", limit)
	c.closeWith(websocket.ClosePolicyViolation, "write queue full: the peer did not read (--max-write-queue-bytes)",
		fmt.Errorf("the peer is not reading what the server sends: %d bytes were waiting to be written to it, and a %d-byte message more would pass the %d-byte limit (--max-write-queue-bytes)",
			waiting, size, limit))
}

// hold queues msg ahead of everything and keeps the outbox from writing
// until unhold: senders meanwhile queue behind msg.
func (o *outbox) hold(msg []byte) {
	o.mu.Lock()
	o.queue = append(o.queue, msg)
	o.bytes += int64(len(msg))
	o.writing = true
	o.mu.Unlock()
}

// unhold writes what queued during the hold, held message first.
func (c *wsSession) unhold() {
	o := &c.out
	o.mu.Lock()
	if o.closed {
		o.writing = false
		o.mu.Unlock()
		return
	}
	c.writeQueued()
}

// flushDeferred writes what sendVia queued.
func (c *wsSession) flushDeferred() {
	o := &c.out
	o.mu.Lock()
	o.deferred = false
	if o.writing || o.closed || len(o.queue) == 0 {
		o.mu.Unlock()
		return
	}
	c.writeQueued()
}

// writeQueued becomes the writer and writes the queue, batch after batch,
// until it is empty. It is called with o.mu held, and releases it.
func (c *wsSession) writeQueued() {
	o := &c.out
	o.writing = true
	var err error
	for len(o.queue) > 0 && err == nil {
		batch := o.queue
		o.queue = o.spare[:0]
		o.bytes = 0 // the batch is the writer's; what it cannot write goes behind
		o.mu.Unlock()
		err = c.writeBatch(batch)
		for _, m := range batch {
			freeFrame(m) // written (or failed): the outbox owned it
		}
		clear(batch)
		o.mu.Lock()
		o.spare = batch[:0]
	}
	if err != nil {
		o.queue, o.bytes = nil, 0
	}
	// The queue is empty: a flush some read loop still has due would find
	// nothing, and the next sendVia must register with its own loop.
	o.writing, o.deferred = false, false
	if o.idle != nil {
		close(o.idle)
		o.idle = nil
	}
	o.mu.Unlock()
	if err != nil {
		c.abort(fmt.Errorf("write: %w", err))
	}
}

// flusher belongs to one read loop: it lists the sessions the loop has
// queued messages for with sendVia, to write them just before the loop
// blocks to read (corkConn.Read calls flush). Only that loop's goroutine
// touches it.
type flusher struct{ dirty []*wsSession }

func (f *flusher) flush() {
	for i, c := range f.dirty {
		c.flushDeferred()
		f.dirty[i] = nil
	}
	f.dirty = f.dirty[:0]
}

// readFlusher is the session's read loop's flusher, nil when the socket is
// not a corkConn (nothing would call flush before a read).
func (c *wsSession) readFlusher() *flusher {
	if c.cork == nil {
		return nil
	}
	return &c.reads
}

func (c *wsSession) writeBatch(batch [][]byte) error {
	if c.cork != nil {
		return c.cork.writeFrames(batch, writeWait)
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	for _, m := range batch {
		if err := c.ws.WriteMessage(websocket.TextMessage, m); err != nil {
			return err
		}
	}
	return nil
}

// flushed waits up to timeout for the outbox to be empty.
func (c *wsSession) flushed(timeout time.Duration) {
	o := &c.out
	o.mu.Lock()
	if !o.writing {
		o.mu.Unlock()
		return
	}
	if o.idle == nil {
		o.idle = make(chan struct{})
	}
	idle := o.idle
	o.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
}

func (c *wsSession) sendJSON(v any) { c.sendJSONVia(v, nil) }

func (c *wsSession) sendJSONVia(v any, via *flusher) {
	b, err := json.Marshal(v)
	if err != nil {
		c.log.Error("encoding a message failed", "err", err)
		return
	}
	c.sendVia(b, via)
}

// closeWith ends the session once: a close frame with code and reason
// (none for CloseAbnormalClosure), then the socket, then onClose(cause).
func (c *wsSession) closeWith(code int, reason string, cause error) {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.out.mu.Lock()
		c.out.closed = true
		c.out.mu.Unlock()
		if t := c.pinger.Load(); t != nil {
			t.Stop() // a start that stores it later finds closed and the ping returns
		}
		if code != websocket.CloseAbnormalClosure {
			c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
		}
		c.ws.Close()
		if c.onClose != nil {
			c.onClose(cause)
		}
		if c.warns != nil {
			c.warns.flush()
		}
		c.relMu.Lock()
		c.released = true
		release := c.release
		c.release = nil
		c.relMu.Unlock()
		for _, r := range release {
			r()
		}
	})
}

// abort drops the connection without a close handshake: it is broken.
func (c *wsSession) abort(cause error) {
	c.closeWith(websocket.CloseAbnormalClosure, "", cause)
}

// shutdown lets queued messages (the failures of the calls the stopped hub
// has just ended) go out, then closes with 1001.
func (c *wsSession) shutdown() {
	deadline := time.Now().Add(time.Second)
	c.flushed(time.Second)
	if c.cork != nil {
		c.cork.written(time.Until(deadline)) // and what is written behind
	}
	c.closeWith(websocket.CloseGoingAway, "server shutting down", errShutdown)
}

// keptReadBuffer is the largest read buffer a session keeps between
// messages. gorilla itself keeps only its 4 KiB bufio.Reader.
const keptReadBuffer = 64 << 10

// readMessage reads the next message into the session's read buffer,
// which is reused: the message is valid until the next call (the decoders
// copy what they keep). The buffer of a large message is dropped before
// waiting for the next one, so an idle session holds at most
// keptReadBuffer. A message larger than that must arrive within
// Config.BodyReadTimeout of its first 64 KiB.
func (c *wsSession) readMessage() ([]byte, error) {
	c.trimReadBuffer()
	if cc := c.cork; cc != nil && cc.br != nil {
		if cc.buffered() == 0 && cc.rerr == nil {
			// Wait for the socket here rather than in gorilla's reader:
			// a message that comes whole is then taken without it.
			cc.fillWaiting()
		}
		if msg := c.readFrame(); msg != nil {
			return msg, nil
		}
	}
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	c.rbuf.Reset()
	c.rlim = io.LimitedReader{R: r, N: keptReadBuffer} // a field: no allocation per message
	n, err := c.rbuf.ReadFrom(&c.rlim)
	if err == nil && n == keptReadBuffer {
		c.ws.SetReadDeadline(time.Now().Add(c.s.cfg.BodyReadTimeout))
		if _, err = c.rbuf.ReadFrom(r); err == nil {
			c.ws.SetReadDeadline(c.standingDeadline)
		}
	}
	if err != nil {
		return nil, err
	}
	return c.rbuf.Bytes(), nil
}

// readFrame takes the next message when it is a single frame (text or
// binary) that has been read whole from the socket and that gorilla would
// take as it is: what gorilla's reader does for a message, without its
// costs on every call's path (an allocation per message, and a read
// through several layers). It returns nil for anything else (a fragment,
// a control frame, a frame not all read, one past the read limit, or a
// protocol error), which gorilla then reads. The message is in the
// session's read buffer, as readMessage's.
func (c *wsSession) readFrame() []byte {
	cc := c.cork
	avail := cc.buffered()
	if avail < 2 {
		return nil
	}
	hdr := peekN(cc.br, 2)
	hlen := frameHeaderLen(hdr)
	if avail < hlen {
		return nil
	}
	hdr = peekN(cc.br, hlen)
	op, fin, rsv, masked := int(hdr[0]&0x0f), hdr[0]&0x80 != 0, hdr[0]&0x70 != 0, hdr[1]&0x80 != 0
	if (op != websocket.TextMessage && op != websocket.BinaryMessage) || !fin || rsv || !masked {
		return nil
	}
	var size uint64
	switch n := hdr[1] & 0x7f; n {
	case 126:
		size = uint64(binary.BigEndian.Uint16(hdr[2:]))
	case 127:
		size = binary.BigEndian.Uint64(hdr[2:])
	default:
		size = uint64(n)
	}
	if size > uint64(avail-hlen) || c.readLimit > 0 && size > uint64(c.readLimit) {
		return nil
	}
	var key [4]byte
	copy(key[:], hdr[hlen-4:])
	cc.br.Discard(hlen)
	c.rbuf.Reset()
	c.rbuf.Grow(int(size))
	cc.take(&c.rbuf, int(size))
	msg := c.rbuf.Bytes()
	if msg == nil {
		// An empty message, in a buffer never grown: it is a message all
		// the same (nil would leave it, its header taken, to gorilla,
		// which would read the next one in its place).
		msg = []byte{}
	}
	maskBytes(key, msg)
	return msg
}

// frameHeaderLen is the length of the header that starts with hdr (its
// first two bytes).
func frameHeaderLen(hdr []byte) int {
	if len(hdr) < 2 {
		return 2
	}
	n := 2
	switch hdr[1] & 0x7f {
	case 126:
		n += 2
	case 127:
		n += 8
	}
	if hdr[1]&0x80 != 0 {
		n += 4
	}
	return n
}

// peekN peeks n bytes that are buffered (in br or under it), nil when
// they are not.
func peekN(br interface{ Peek(int) ([]byte, error) }, n int) []byte {
	b, err := br.Peek(n)
	if err != nil {
		return nil
	}
	return b
}

// maskBytes masks (or unmasks) b with key (RFC 6455 section 5.3), eight
// bytes at a time.
func maskBytes(key [4]byte, b []byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b { // a multiple of 4 bytes was masked: the key starts over
		b[i] ^= key[i&3]
	}
}

// trimReadBuffer drops the read buffer of a large message (readMessage).
func (c *wsSession) trimReadBuffer() {
	if c.rbuf.Cap() > keptReadBuffer {
		c.rbuf = bytes.Buffer{}
	}
}

// readErr turns the error that ended a read loop into the close to send and
// the cause to log.
func readErr(err error, limit int64) (code int, reason string, cause error) {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent 1009 (message too big).
		return websocket.CloseAbnormalClosure, "", fmt.Errorf("a message exceeded the %d-byte frame limit", limit)
	case errors.As(err, &ce):
		return websocket.CloseAbnormalClosure, "", fmt.Errorf("peer closed the connection (%d)", ce.Code)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return websocket.CloseAbnormalClosure, "", fmt.Errorf("a message was not received within its deadline (--body-read-timeout, or the authentication wait): %w", err)
	}
	return websocket.CloseAbnormalClosure, "", err
}

// corkConn is the socket of a hijacked (WebSocket) connection. The outbox
// writes its messages' frames here itself, a batch in one system call
// (writeFrames); gorilla writes only control frames, and the mutex orders
// them between the outbox's batches. Its Read tells the read loop when to
// flush (flusher).
//
// A write holds its caller for at most writeBudget. The callers
// include other sessions' read loops (sendVia): a peer that stops reading
// (an agent whose process is stopped, a congested path) must not hold up
// the connection whose read loop answers it, nor the pongs that keep that
// connection alive. What the socket does not take within writeBudget is
// written behind, by a goroutine of its own, until the write deadline the
// session set; writes meanwhile queue after it, in order. A write behind
// that fails ends the session (onWriteError).
type corkConn struct {
	net.Conn
	mu sync.Mutex
	// buf holds, while behind, the bytes still to write behind.
	buf    []byte
	behind bool // a goroutine is writing buf (writeBehind)
	// behindBytes is what is behind and not written yet: buf, and what
	// writeBehind has taken of it. Read without mu (enqueue).
	behindBytes atomic.Int64
	caught      chan struct{} // closed when the write behind ends
	err         error         // the failure of a write behind: the socket is dead
	dl          time.Time     // the write deadline gorilla set, or writeFrames
	// dlWait, when not zero, stands for a dl of that long after the first
	// moment a write must wait (writeFrames): a write the socket takes at
	// once needs no deadline, nor a look at the clock.
	dlWait    time.Duration
	sockDL    time.Time // the deadline on the socket for direct writes; zero: none
	closeSent bool      // gorilla wrote a close frame: no message may follow it
	// raw is the socket, to write without waiting (tryWrite); nil when it
	// is not a TCP socket, or not on Linux.
	raw syscall.RawConn
	// rawWrite is writeNow bound once (a closure per write would be an
	// allocation), and wp, wn and werr its argument and results (c.mu).
	rawWrite func(fd uintptr) bool
	wp       []byte
	wn       int
	werr     error
	// beforeRead runs before each read from the socket, on the read loop's
	// goroutine: the moment its deferred writes must go out.
	beforeRead func()
	// onWriteError is told of a write behind that failed.
	onWriteError func(error)

	// Reading, by the read loop only (Read). br is the reader gorilla
	// reads frames with, nil when it is not ours; rbuf[rpos:rend] is what
	// was read from the socket and not yet taken by br (nil when empty);
	// rerr is the error the socket gave, for br once rbuf is empty.
	br         *bufio.Reader
	rbuf       *[readBufSize]byte
	rpos, rend int
	rerr       error
	// readDL is the read deadline the session set (SetReadDeadline).
	// lingerDL, when not zero, is the deadline of a linger wait
	// (tkConn.lingerRead) that is on the socket instead: it stays there
	// between messages, as each move costs a timer update, and a read for
	// the rest of a message puts readDL back first (Read).
	readDL, lingerDL time.Time
}

// writeBudget is how long a write may wait for room in the socket before
// the rest is written behind (between half of it and all of it: the
// socket's deadline moves at most every half budget, as each move costs a
// timer update). A socket with room takes a write at once.
const writeBudget = 10 * time.Millisecond

// frameReaderSize is the size of the reader gorilla reads frames with:
// above the 256 bytes below which gorilla would allocate its own, and
// enough for any frame header and control frame. Larger reads bypass it.
const frameReaderSize = 512

// readBufSize is the size of the buffers a connection reads the socket
// into (a burst of small frames costs one system call): frames4K's, whose
// pool lends them, shared by every connection of every server, as a
// buffer holds nothing once read.
const readBufSize = 4 << 10

// newCorkConn wraps a hijacked connection.
func newCorkConn(c net.Conn) *corkConn {
	cc := &corkConn{Conn: c, raw: rawConnOf(c)}
	cc.rawWrite = cc.writeNow
	return cc
}

// fillWaiting fills the empty read buffer from the socket, waiting for it
// (after the deferred writes, which must go out before the read loop
// waits, and with the session's read deadline).
func (c *corkConn) fillWaiting() error {
	if c.beforeRead != nil {
		c.beforeRead()
	}
	if !c.lingerDL.IsZero() {
		c.restoreReadDeadline()
	}
	return c.fill(c.Conn.Read)
}

// take moves n bytes that have been read (in br, then under it) to w.
func (c *corkConn) take(w *bytes.Buffer, n int) {
	if k := min(n, c.br.Buffered()); k > 0 {
		b, _ := c.br.Peek(k)
		w.Write(b)
		c.br.Discard(k)
		n -= k
	}
	if n > 0 {
		w.Write(c.rbuf[c.rpos : c.rpos+n])
		c.rpos += n
		if c.rpos == c.rend {
			c.dropReadBuf()
		}
	}
}

// Read serves gorilla's frame reader (br) from the read buffer, filling it
// from the socket when empty; the buffer goes back to its pool as soon as
// it is read to its end, so a connection between bursts holds none
// (unless a read is waiting on the socket). Only the read loop reads.
func (c *corkConn) Read(p []byte) (int, error) {
	if c.rpos == c.rend {
		if c.rerr != nil {
			return 0, c.rerr
		}
		if len(p) >= readBufSize {
			if c.beforeRead != nil {
				c.beforeRead()
			}
			if !c.lingerDL.IsZero() {
				c.restoreReadDeadline()
			}
			return c.Conn.Read(p)
		}
		if err := c.fillWaiting(); err != nil {
			return 0, err
		}
	}
	n := copy(p, c.rbuf[c.rpos:c.rend])
	c.rpos += n
	if c.rpos == c.rend {
		c.dropReadBuf()
	}
	return n, nil
}

// fill reads into an empty read buffer with read; an error is kept for
// Read to return (after the bytes, when there are some).
func (c *corkConn) fill(read func([]byte) (int, error)) error {
	if c.rbuf == nil {
		c.rbuf = frames4K.Get().(*[readBufSize]byte)
	}
	n, err := read(c.rbuf[:])
	c.rpos, c.rend = 0, max(n, 0)
	if c.rend == 0 {
		c.dropReadBuf()
	}
	if err != nil && !isWouldBlock(err) {
		c.rerr = err
	}
	if c.rend > 0 {
		return nil
	}
	return err
}

func (c *corkConn) dropReadBuf() {
	if c.rbuf != nil {
		frames4K.Put(c.rbuf)
		c.rbuf = nil
	}
	c.rpos, c.rend = 0, 0
}

// buffered is how many bytes the read loop has read from the socket and
// gorilla has not taken yet.
func (c *corkConn) buffered() int {
	n := c.rend - c.rpos
	if c.br != nil {
		n += c.br.Buffered()
	}
	return n
}

// SetWriteDeadline records the deadline of the writes: each applies it
// itself, around its budget.
func (c *corkConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.dl, c.dlWait = t, 0
	c.mu.Unlock()
	return nil
}

func (c *corkConn) SetDeadline(t time.Time) error {
	c.SetWriteDeadline(t)
	return c.SetReadDeadline(t)
}

// SetReadDeadline sets the session's read deadline; only the read loop
// calls it (or the handler, before the read loop starts).
func (c *corkConn) SetReadDeadline(t time.Time) error {
	c.readDL, c.lingerDL = t, time.Time{}
	return c.Conn.SetReadDeadline(t)
}

// restoreReadDeadline puts the session's read deadline back on the socket
// in place of a linger wait's.
func (c *corkConn) restoreReadDeadline() {
	c.lingerDL = time.Time{}
	c.Conn.SetReadDeadline(c.readDL)
}

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(p) > 0 && p[0] == 0x80|websocket.CloseMessage {
		// Only gorilla writes here, only control frames (and the
		// handshake's response, which starts with "HTTP"): this is its
		// close frame, after which writeFrames writes no message.
		c.closeSent = true
	}
	return c.writeUnlocked(p)
}

// writeUnlocked is Write with c.mu held.
func (c *corkConn) writeUnlocked(p []byte) (int, error) {
	switch {
	case c.err != nil:
		return 0, c.err
	case c.behind:
		c.buf = append(c.buf, p...)
		c.behindBytes.Add(int64(len(p)))
		return len(p), nil
	}
	return c.writeLocked(p)
}

// writeLocked writes p, waiting at most writeBudget for the socket to take
// it; the rest goes behind. c.mu is held.
func (c *corkConn) writeLocked(p []byte) (int, error) {
	// First without waiting, with no deadline to set: a socket with room
	// takes it all at once.
	done, err := c.tryWrite(p)
	if done == len(p) || err != nil {
		return done, err
	}
	n, err := c.writeWaiting(p[done:])
	return done + n, err
}

// writeWaiting is writeLocked for what the socket did not take at once.
func (c *corkConn) writeWaiting(p []byte) (int, error) {
	now := time.Now()
	if c.dlWait > 0 {
		c.dl, c.dlWait = now.Add(c.dlWait), 0
	}
	if c.sockDL.Sub(now) < writeBudget/2 || !c.dl.IsZero() && c.dl.Before(c.sockDL) {
		c.sockDL = now.Add(writeBudget)
		if !c.dl.IsZero() && c.dl.Before(c.sockDL) {
			c.sockDL = c.dl
		}
		c.Conn.SetWriteDeadline(c.sockDL)
	}
	n, err := c.Conn.Write(p)
	if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || c.sockDL.Equal(c.dl) {
		if c.raw != nil && err == nil {
			// The writes to come try without waiting first, which a
			// deadline left to pass on the socket would fail.
			c.Conn.SetWriteDeadline(time.Time{})
			c.sockDL = time.Time{}
		}
		return n, err
	}
	c.buf = append([]byte(nil), p[n:]...)
	c.behindBytes.Store(int64(len(c.buf)))
	c.behind, c.caught = true, make(chan struct{})
	c.sockDL = time.Time{} // writeBehind moves the socket's deadline
	go c.writeBehind()
	return len(p), nil
}

// writeBehind writes what queued behind a write that ran out of budget,
// until it is all written or the deadline passes.
func (c *corkConn) writeBehind() {
	c.mu.Lock()
	for len(c.buf) > 0 && c.err == nil {
		buf, dl := c.buf, c.dl
		c.buf = nil
		c.mu.Unlock()
		c.Conn.SetWriteDeadline(dl)
		_, err := c.Conn.Write(buf)
		c.behindBytes.Add(-int64(len(buf)))
		c.mu.Lock()
		c.err = err
	}
	if c.err != nil {
		c.buf = nil // never to be written
	}
	c.behindBytes.Store(0)
	c.behind = false
	close(c.caught)
	err, onErr := c.err, c.onWriteError
	c.mu.Unlock()
	if err != nil && onErr != nil {
		onErr(err)
	}
}

// written waits up to timeout for what is behind to be written.
func (c *corkConn) written(timeout time.Duration) {
	c.mu.Lock()
	caught := c.caught
	behind := c.behind
	c.mu.Unlock()
	if !behind || timeout <= 0 {
		return
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-caught:
	case <-t.C:
	}
}

// maxFrameHeader is the longest header of a frame the server sends.
const maxFrameHeader = 10

// inlineFrame is the largest message writeFrames copies into its buffer
// of frames: a larger one is written from where it is, after its header.
const inlineFrame = 16 << 10

// writeFrames writes msgs as text messages, each in one frame, in one
// system call when they fit in a buffer of the frame pools. It does what
// gorilla's WriteMessage would, on a server's connection, without its
// costs on every call's path (an allocation for the pool of write buffers,
// the hand-off of its write lock, and the deadline its writes set each
// time, which takes a look at the clock): the frames of a batch are
// written under c.mu, so gorilla's control frames, single writes, go
// between them, never inside one. wait is the write deadline, counted
// from the first moment the socket makes a write wait.
func (c *corkConn) writeFrames(msgs [][]byte, wait time.Duration) error {
	size := 0
	for _, m := range msgs {
		size += maxFrameHeader + min(len(m), inlineFrame)
	}
	buf := newFrame(min(size, 32<<10))
	defer func() { freeFrame(buf) }()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeSent {
		return websocket.ErrCloseSent
	}
	if c.behind {
		c.dl = time.Now().Add(wait) // as gorilla's writes would set it
	} else {
		c.dl, c.dlWait = time.Time{}, wait
	}
	for _, m := range msgs {
		if len(buf)+maxFrameHeader+min(len(m), inlineFrame) > cap(buf) {
			if _, err := c.writeUnlocked(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
		buf = appendFrameHeader(buf, websocket.TextMessage, len(m))
		if len(m) > inlineFrame {
			if _, err := c.writeUnlocked(buf); err != nil {
				return err
			}
			buf = buf[:0]
			if _, err := c.writeUnlocked(m); err != nil {
				return err
			}
			continue
		}
		buf = append(buf, m...)
	}
	if len(buf) == 0 {
		return nil
	}
	_, err := c.writeUnlocked(buf)
	return err
}

// appendFrameHeader appends the header of an unmasked final frame (RFC
// 6455 section 5.2) of type op with size bytes of payload.
func appendFrameHeader(b []byte, op, size int) []byte {
	b = append(b, 0x80|byte(op))
	switch {
	case size < 126:
		return append(b, byte(size))
	case size <= 0xffff:
		return append(b, 126, byte(size>>8), byte(size))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(size))
}
