package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// wsSession is what the toolkit and LLM WebSocket sessions share: an
// outbox that never makes a sender wait for another, keepalive pings, a
// check that the key is still valid, and a close that runs once.
type wsSession struct {
	s      *Server
	ws     *websocket.Conn
	cork   *corkConn    // the socket under ws, nil when it is not ours
	log    *slog.Logger // set before start, never changed
	closed chan struct{}
	// keyID is the session's key, checked for revocation at each ping; nil
	// until the session has authenticated.
	keyID atomic.Pointer[string]
	// unauthenticated sessions get no deadline extension from traffic.
	unauthenticated atomic.Bool

	out       outbox
	reads     flusher      // the read loop's: see sendVia
	rbuf      bytes.Buffer // the read loop's: see readMessage
	closeOnce sync.Once
	pinger    atomic.Pointer[time.Timer] // set by start; read by closeWith from any goroutine
	onClose   func(error)                // run once, after the socket is closed
}

// outbox serialises a session's writes without a writer goroutine: a
// sender finding no write in progress writes itself (with no hand-off, so
// a lone call costs no extra wake-up); a sender finding one in progress
// queues its message and returns, and the writer takes the whole queue in
// one batch, which corkConn turns into one system call.
type outbox struct {
	mu       sync.Mutex
	queue    [][]byte
	spare    [][]byte
	writing  bool
	deferred bool // a read loop's flusher will write the queue (sendVia)
	closed   bool
	idle     chan struct{} // closed when the current write ends; made on demand
}

func (c *wsSession) init(s *Server, ws *websocket.Conn) {
	c.s, c.ws, c.closed = s, ws, make(chan struct{})
	if c.cork, _ = ws.NetConn().(*corkConn); c.cork != nil {
		c.cork.beforeRead = c.reads.flush
	}
}

const writeWait = 10 * time.Second

func (s *Server) upgrader(checkOrigin func(*http.Request) bool) *websocket.Upgrader {
	return &websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		CheckOrigin:     checkOrigin,
		Error: func(w http.ResponseWriter, r *http.Request, status int, reason error) {
			writeError(w, status, "websocket: "+reason.Error())
		},
	}
}

// start arms the read limit, the liveness deadline and the pings.
func (c *wsSession) start() {
	c.ws.SetReadLimit(c.s.cfg.FrameLimit)
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
	// no goroutine, and a reconnect storm leaves nothing behind.
	c.pinger.Store(time.AfterFunc(c.s.cfg.PingInterval, c.ping))
}

// alive pushes the read deadline: the peer showed it is there.
func (c *wsSession) alive() {
	if c.unauthenticated.Load() {
		return
	}
	c.ws.SetReadDeadline(time.Now().Add(2*c.s.cfg.PingInterval + 10*time.Second))
}

func (c *wsSession) ping() {
	select {
	case <-c.closed:
		return
	default:
	}
	// A key revoked while its session is open ends the session here, within
	// one ping interval.
	if id := c.keyID.Load(); id != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		k, err := c.s.store.KeyByID(ctx, *id)
		cancel()
		if err == nil && k.Revoked() {
			c.closeWith(websocket.ClosePolicyViolation, "API key has been revoked", errors.New("API key revoked"))
			return
		}
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
		c.abort(fmt.Errorf("ping: %w", err))
		return
	}
	c.pinger.Load().Reset(c.s.cfg.PingInterval)
}

// send writes msg as a text message, now or in the current writer's next
// batch; it takes ownership of msg. A failed write aborts the session (and
// the session's onClose fails what depended on it), so there is no error to
// return. After close, messages are dropped.
func (c *wsSession) send(msg []byte) {
	o := &c.out
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	o.queue = append(o.queue, msg)
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
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.queue = append(o.queue, msg)
	if o.writing || o.deferred {
		return // the writer, or the flush already due, takes it
	}
	o.deferred = true
	f.dirty = append(f.dirty, c)
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
		o.mu.Unlock()
		err = c.writeBatch(batch)
		clear(batch)
		o.mu.Lock()
		o.spare = batch[:0]
	}
	if err != nil {
		o.queue = nil
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
	batched := c.cork != nil && len(batch) > 1
	if batched {
		c.cork.cork()
	}
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	for _, m := range batch {
		if err := c.ws.WriteMessage(websocket.TextMessage, m); err != nil {
			if batched {
				c.cork.uncork()
			}
			return err
		}
	}
	if batched {
		return c.cork.uncork()
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
	})
}

// abort drops the connection without a close handshake: it is broken.
func (c *wsSession) abort(cause error) {
	c.closeWith(websocket.CloseAbnormalClosure, "", cause)
}

// shutdown lets queued messages (the failures of the calls the stopped hub
// has just ended) go out, then closes with 1001.
func (c *wsSession) shutdown() {
	c.flushed(time.Second)
	c.closeWith(websocket.CloseGoingAway, "server shutting down", errShutdown)
}

// readMessage reads the next message into the session's read buffer,
// which is reused: the message is valid until the next call (the decoders
// copy what they keep).
func (c *wsSession) readMessage() ([]byte, error) {
	_, r, err := c.ws.NextReader()
	if err != nil {
		return nil, err
	}
	if c.rbuf.Cap() > 64<<10 {
		c.rbuf = bytes.Buffer{} // do not keep a huge message's buffer
	}
	c.rbuf.Reset()
	if _, err := c.rbuf.ReadFrom(r); err != nil {
		return nil, err
	}
	return c.rbuf.Bytes(), nil
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
	}
	return websocket.CloseAbnormalClosure, "", err
}

// corkConn is the socket of a hijacked (WebSocket) connection. While corked
// it collects writes instead of making a system call for each, and uncork
// sends them in one: a batch of frames from the outbox costs one write.
// gorilla serialises its writes to the socket; the mutex orders them with
// uncork. Its Read tells the read loop when to flush (flusher).
type corkConn struct {
	net.Conn
	mu     sync.Mutex
	corked bool
	buf    []byte
	// beforeRead runs before each read from the socket, on the read loop's
	// goroutine: the moment its deferred writes must go out.
	beforeRead func()
}

func (c *corkConn) Read(p []byte) (int, error) {
	if c.beforeRead != nil {
		c.beforeRead()
	}
	return c.Conn.Read(p)
}

// maxCork bounds what a cork holds before writing through.
const maxCork = 256 << 10

func (c *corkConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.corked {
		return c.Conn.Write(p)
	}
	c.buf = append(c.buf, p...)
	if len(c.buf) >= maxCork {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (c *corkConn) cork() {
	c.mu.Lock()
	c.corked = true
	c.mu.Unlock()
}

func (c *corkConn) uncork() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.corked = false
	return c.flushLocked()
}

func (c *corkConn) flushLocked() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.buf)
	if cap(c.buf) > maxCork*2 {
		c.buf = nil
	} else {
		c.buf = c.buf[:0]
	}
	return err
}
