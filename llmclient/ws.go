package llmclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Timings of the WebSocket transport.
const (
	// handshakeTimeout bounds dialling plus authentication (the Python
	// client gives up on authentication after 10 s).
	handshakeTimeout = 15 * time.Second
	// writeWait bounds one write. It is not taken from a request's context:
	// a write that times out leaves a WebSocket unusable, and one impatient
	// caller must not drop the connection the others share.
	writeWait = 10 * time.Second
	// maxInFlight bounds the requests one WebSocket carries at once.
	maxInFlight = 192
)

// wsTransport keeps at most one authenticated WebSocket to the server,
// dialled when a request needs it, and multiplexes requests over it by
// request_id.
type wsTransport struct {
	c       *Client
	url     string // with the key: never logged
	display string // the URL with the key replaced, for logs and errors
	dialer  *websocket.Dialer
	backoff Backoff
	rnd     func() float64
	// pingInterval is the keepalive period; a connection on which nothing
	// (frame, ping or pong) arrives for pingInterval+pongWait is dead.
	pingInterval time.Duration
	pongWait     time.Duration

	ctx    context.Context // ended by close
	cancel context.CancelFunc
	// slots bounds the requests waiting for an answer, below the server's
	// own bound per connection (256 on `atp serve`): past that a server
	// stops reading, and a write blocked long enough would cost the
	// connection every request on it.
	slots chan struct{}
	wg    sync.WaitGroup // dials, readers and pingers

	mu       sync.Mutex
	conn     *wsConn      // the live connection, nil when there is none
	dialing  *dialAttempt // the attempt in progress, shared by all waiters
	failures int          // failed attempts in a row
	retryAt  time.Time    // no attempt before this
	closed   bool
}

// dialAttempt is one connection attempt; done is closed when conn or err
// is set.
type dialAttempt struct {
	done chan struct{}
	conn *wsConn
	err  error
}

func newWSTransport(c *Client, base *url.URL, dialer *websocket.Dialer, b Backoff) *wsTransport {
	ws := *base
	if ws.Scheme == "https" {
		ws.Scheme = "wss"
	} else {
		ws.Scheme = "ws"
	}
	prefix := ws.String() + "/ws/v1/atp/llm-client/"
	if dialer == nil {
		dialer = &websocket.Dialer{Proxy: http.ProxyFromEnvironment, HandshakeTimeout: handshakeTimeout}
	}
	t := &wsTransport{
		c:            c,
		url:          prefix + url.PathEscape(c.apiKey) + "/",
		display:      prefix + "[REDACTED]/",
		dialer:       dialer,
		backoff:      b,
		rnd:          rand.Float64,
		slots:        make(chan struct{}, maxInFlight),
		pingInterval: 30 * time.Second,
		pongWait:     20 * time.Second,
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return t
}

// roundTrip sends msg and waits for the answer with the same request_id.
// A message that could not be written is sent again on a new connection; an
// idempotent one also when the connection dropped before the answer.
func (t *wsTransport) roundTrip(ctx context.Context, id string, msg []byte, idempotent bool) ([]byte, error) {
	select {
	case t.slots <- struct{}{}:
		defer func() { <-t.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.ctx.Done():
		return nil, ErrClosed
	}
	for attempt := 1; ; attempt++ {
		conn, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		ch, err := conn.send(id, msg)
		if err != nil {
			if attempt < t.backoff.MaxAttempts && ctx.Err() == nil {
				continue // it never left: safe to send again
			}
			return nil, err
		}
		select {
		case r := <-ch:
			if r.err != nil && idempotent && errors.Is(r.err, ErrConnectionLost) && attempt < t.backoff.MaxAttempts {
				continue
			}
			return r.data, r.err
		case <-ctx.Done():
			conn.forget(id) // a late answer is dropped
			return nil, ctx.Err()
		}
	}
}

// get returns the live connection, dialling one when there is none. At
// most one attempt runs at a time; callers that arrive meanwhile wait for
// its outcome. After a failure the next attempt waits for the backoff
// delay. A request gives up after Backoff.MaxAttempts failed attempts, at
// once when the server refused the key, or when ctx ends.
func (t *wsTransport) get(ctx context.Context) (*wsConn, error) {
	failed := 0
	for {
		t.mu.Lock()
		if t.closed {
			t.mu.Unlock()
			return nil, ErrClosed
		}
		if conn := t.conn; conn != nil {
			if !conn.isDead() {
				t.mu.Unlock()
				return conn, nil
			}
			t.conn = nil // its read loop is retiring it
		}
		d := t.dialing
		if d == nil {
			if wait := time.Until(t.retryAt); wait > 0 {
				t.mu.Unlock()
				if err := t.sleep(ctx, wait); err != nil {
					return nil, err
				}
				continue
			}
			d = &dialAttempt{done: make(chan struct{})}
			t.dialing = d
			t.wg.Add(1)
			go t.dial(d) // not on ctx: other callers may share the attempt
		}
		t.mu.Unlock()
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if d.err == nil {
			return d.conn, nil
		}
		failed++
		var perm *permanentError
		if errors.As(d.err, &perm) || errors.Is(d.err, ErrClosed) {
			return nil, d.err
		}
		if failed >= t.backoff.MaxAttempts {
			return nil, fmt.Errorf("%w (gave up after %d attempts)", d.err, failed)
		}
	}
}

// sleep waits d, or until ctx ends or the transport closes.
func (t *wsTransport) sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.ctx.Done():
		return ErrClosed
	}
}

// dial runs one connection attempt and publishes its outcome.
func (t *wsTransport) dial(d *dialAttempt) {
	defer t.wg.Done()
	conn, err := t.connect()
	var wait time.Duration
	t.mu.Lock()
	t.dialing = nil
	failures := 0
	switch {
	case err == nil && t.closed:
		conn.ws.Close()
		conn, err = nil, ErrClosed
	case err == nil:
		t.conn = conn
		t.failures = 0
		t.retryAt = time.Time{}
		t.wg.Add(2)
		go conn.readLoop()
		go conn.pingLoop()
	default:
		t.failures++
		failures = t.failures
		wait = t.backoff.delay(t.failures, t.rnd)
		t.retryAt = time.Now().Add(wait)
	}
	t.mu.Unlock()
	// Logged before the waiters hear of it, so that their logs follow.
	switch {
	case conn != nil:
		t.c.log.Info("llmclient: connected", "url", t.display)
	case !errors.Is(err, ErrClosed):
		t.c.log.Warn("llmclient: connecting to the ATP server failed", "url", t.display, "attempt", failures, "next_attempt_in", wait, "err", err)
	}
	d.conn, d.err = conn, err
	close(d.done)
}

// permanentError is a refusal that another attempt would get again: the
// server rejected the key or the path.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// connect dials and authenticates one WebSocket (docs/protocol.md §2.1 step 1).
func (t *wsTransport) connect() (*wsConn, error) {
	ctx, cancel := context.WithTimeout(t.ctx, handshakeTimeout)
	defer cancel()
	ws, resp, err := t.dialer.DialContext(ctx, t.url, nil)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			apiErr := &APIError{StatusCode: resp.StatusCode, Endpoint: "connect to " + t.display,
				Message: t.c.redactString(errorMessage(body))}
			if resp.StatusCode/100 == 4 && resp.StatusCode != http.StatusRequestTimeout && resp.StatusCode != http.StatusTooManyRequests {
				return nil, &permanentError{apiErr}
			}
			return nil, apiErr
		}
		if t.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, t.c.redact(fmt.Errorf("connect to %s: %w", t.display, err))
	}
	// A Close during the handshake must not wait for the deadline.
	stop := context.AfterFunc(ctx, func() { ws.NetConn().Close() })
	err = t.authenticate(ws, ctx)
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		ws.Close()
		if t.ctx.Err() != nil {
			return nil, ErrClosed
		}
		return nil, err
	}
	conn := &wsConn{t: t, ws: ws, pending: map[string]chan reply{}, done: make(chan struct{})}
	ws.SetReadLimit(maxReplySize)
	conn.alive()
	ws.SetPongHandler(func(string) error { conn.alive(); return nil })
	ws.SetPingHandler(func(data string) error {
		conn.alive()
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(writeWait))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		var ne interface{ Timeout() bool }
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	return conn, nil
}

// authenticate sends {"type":"auth"} and waits for a successful
// auth_response.
func (t *wsTransport) authenticate(ws *websocket.Conn, ctx context.Context) error {
	deadline, _ := ctx.Deadline()
	ws.SetWriteDeadline(deadline)
	ws.SetReadDeadline(deadline)
	defer ws.SetWriteDeadline(time.Time{})
	auth, _ := json.Marshal(map[string]string{"type": "auth", "api_key": t.c.apiKey})
	if err := ws.WriteMessage(websocket.TextMessage, auth); err != nil {
		return t.c.redact(fmt.Errorf("%s: sending auth: %w", t.display, err))
	}
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			if ctx.Err() != nil {
				return fmt.Errorf("%s: no auth_response within %s", t.display, handshakeTimeout)
			}
			return t.c.redact(fmt.Errorf("%s: waiting for auth_response: %w", t.display, err))
		}
		var m struct {
			Type    string `json:"type"`
			Success bool   `json:"success"`
			Error   string `json:"error"`
		}
		if json.Unmarshal(data, &m) != nil || m.Type != "auth_response" {
			t.c.log.Debug("llmclient: ignoring a message before auth_response", "type", m.Type)
			continue
		}
		if !m.Success {
			msg := m.Error
			if msg == "" {
				msg = "authentication failed without a reason"
			}
			return &permanentError{&APIError{Endpoint: "auth", Message: t.c.redactString(msg)}}
		}
		return nil
	}
}

// close ends the transport: the live connection closes, waiting requests
// get ErrClosed, and every goroutine has returned when it does.
func (t *wsTransport) close() {
	t.mu.Lock()
	t.closed = true
	conn := t.conn
	t.conn = nil
	t.mu.Unlock()
	t.cancel()
	if conn != nil {
		conn.closeWith(ErrClosed)
	}
	t.wg.Wait()
}

// wsConn is one authenticated WebSocket.
type wsConn struct {
	t       *wsTransport
	ws      *websocket.Conn
	writeMu sync.Mutex

	mu      sync.Mutex
	pending map[string]chan reply // by request_id
	dead    bool
	cause   error // set by closeWith before the socket is closed
	done    chan struct{}
}

// reply is the answer to one request: the raw message, or why none came.
type reply struct {
	data []byte
	err  error
}

var errConnDead = errors.New("the WebSocket closed before the message was sent")

// send registers id and writes msg; the answer comes on the channel.
func (c *wsConn) send(id string, msg []byte) (chan reply, error) {
	ch := make(chan reply, 1)
	c.mu.Lock()
	if c.dead {
		c.mu.Unlock()
		return nil, errConnDead
	}
	if _, dup := c.pending[id]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("request_id %q is already waiting for an answer", id)
	}
	c.pending[id] = ch
	c.mu.Unlock()

	c.writeMu.Lock()
	c.ws.SetWriteDeadline(time.Now().Add(writeWait))
	err := c.ws.WriteMessage(websocket.TextMessage, msg)
	c.writeMu.Unlock()
	if err != nil {
		c.forget(id)
		c.closeWith(fmt.Errorf("write failed: %w", err)) // a failed write leaves the socket unusable
		return nil, c.t.c.redact(fmt.Errorf("sending to %s: %w", c.t.display, err))
	}
	return ch, nil
}

func (c *wsConn) isDead() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.dead
}

// forget drops a request nobody waits for any more.
func (c *wsConn) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// alive pushes back the read deadline: the server showed a sign of life.
func (c *wsConn) alive() {
	c.ws.SetReadDeadline(time.Now().Add(c.t.pingInterval + c.t.pongWait))
}

// closeWith closes the socket; the read loop then fails the waiting
// requests with cause.
func (c *wsConn) closeWith(cause error) {
	c.mu.Lock()
	if c.cause == nil {
		c.cause = cause
	}
	c.mu.Unlock()
	c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	c.ws.Close()
}

// readLoop hands each answer to the request waiting for it, until the
// connection ends; then it fails every request still waiting.
func (c *wsConn) readLoop() {
	defer c.t.wg.Done()
	var readErr error
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			readErr = err
			break
		}
		c.alive()
		var head struct {
			Type      string          `json:"type"`
			RequestID json.RawMessage `json:"request_id"`
			Error     string          `json:"error"`
		}
		if err := json.Unmarshal(data, &head); err != nil {
			c.t.c.log.Warn("llmclient: ignoring a message that is not a JSON object", "bytes", len(data))
			continue
		}
		id := requestIDString(head.RequestID)
		c.mu.Lock()
		ch := c.pending[id]
		delete(c.pending, id)
		c.mu.Unlock()
		switch {
		case ch != nil:
			ch <- reply{data: data}
		case head.Type == "error":
			c.t.c.log.Warn("llmclient: the server reported an error", "request_id", id, "error", c.t.c.redactString(head.Error))
		default:
			// A request that timed out or was cancelled: its answer is
			// dropped.
			c.t.c.log.Debug("llmclient: dropping an answer nobody waits for", "type", head.Type, "request_id", id)
		}
	}
	c.finish(readErr)
}

// finish retires the connection after its read loop ended.
func (c *wsConn) finish(readErr error) {
	c.ws.Close()
	c.mu.Lock()
	c.dead = true
	cause := c.cause
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()
	close(c.done)

	t := c.t
	t.mu.Lock()
	if t.conn == c {
		t.conn = nil
	}
	t.mu.Unlock()

	var err error
	if errors.Is(cause, ErrClosed) {
		err = ErrClosed
	} else {
		if cause == nil {
			cause = readErr
		}
		err = fmt.Errorf("%w (%s): the answer did not come; the tool may have run", ErrConnectionLost, describeClose(cause))
		t.c.log.Warn("llmclient: connection to the ATP server lost", "url", t.display, "cause", describeClose(cause), "requests_failed", len(pending))
	}
	for _, ch := range pending {
		ch <- reply{err: err}
	}
}

// pingLoop sends keepalive pings until the connection ends.
func (c *wsConn) pingLoop() {
	defer c.t.wg.Done()
	tick := time.NewTicker(c.t.pingInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-tick.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeWait)); err != nil {
				c.closeWith(fmt.Errorf("ping failed: %w", err))
				return
			}
		}
	}
}

// describeClose says why a connection ended, in words.
func describeClose(err error) string {
	var ce *websocket.CloseError
	var ne interface{ Timeout() bool }
	switch {
	case err == nil:
		return "closed"
	case errors.As(err, &ce):
		if ce.Text != "" {
			return fmt.Sprintf("closed by the server with status %d: %s", ce.Code, ce.Text)
		}
		return fmt.Sprintf("closed by the server with status %d", ce.Code)
	case errors.As(err, &ne) && ne.Timeout():
		return "no sign of life from the server within the keepalive window"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "the server closed the connection"
	}
	s := err.Error()
	if strings.Contains(s, "use of closed network connection") {
		return "closed"
	}
	return s
}

// requestIDString returns a request_id as the key of the pending map: a
// JSON string unquoted, any other value as its JSON text.
func requestIDString(raw json.RawMessage) string {
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}
