package mcp

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio serves one MCP session over newline-delimited JSON-RPC, reading
// requests from in and writing responses to out: the stdio transport, for
// hosts that start the server as a subprocess (pass os.Stdin and os.Stdout;
// logs must then go to stderr, never to out). Calls run concurrently.
//
// When in ends (EOF), the requests already read are still answered, so that
// `printf '...' | atp mcp` gets its responses; ServeStdio then returns nil.
// When ctx is cancelled it returns nil after cancelling the contexts of
// running calls and waiting for them to return (a tool that ignores its
// context delays the return; give it a timeout); this also cuts short the
// wait for answers after EOF. Otherwise it returns the read or write error
// that ended the session, after answering what it can. It closes neither
// in nor out; a Read of in still blocked when ctx ends is left to finish on
// its own, as a read of os.Stdin cannot be interrupted.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return nil
	}
	t := &drainingTransport{inner: &mcpsdk.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}}}
	session, err := s.sdk.Connect(withLifetime(ctx), t, nil)
	if err != nil {
		return fmt.Errorf("mcp: serve stdio: %w", err)
	}
	ended := make(chan error, 1)
	go func() { ended <- session.Wait() }()
	select {
	case err := <-ended:
		if err != nil {
			return fmt.Errorf("mcp: serve stdio: %w", err)
		}
		return nil
	case <-ctx.Done():
		// Close waits for running calls, which ctx's end has cancelled.
		session.Close()
		<-ended
		return nil
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// drainingTransport makes the end of the input wait for the answers to the
// requests already read. The SDK's JSON-RPC connection, once a Read fails
// (io.EOF when the host closes stdin), cancels every request in flight and
// refuses to write any more responses: a host that writes its requests and
// closes its end at once (a shell pipe, a script) would get no answers. So
// the connection's Read holds the error back until every request it
// returned has been answered (the Write of its response returned), the
// connection is closed, or the Read's context ends.
//
// Holding the error in Read, rather than in a wrapper of in, is what makes
// the count exact: the SDK calls Read again only after it has taken in the
// previous message, whereas a reader of in hits EOF while the last request
// may still be on its way to the handler.
type drainingTransport struct {
	inner mcpsdk.Transport
}

func (t *drainingTransport) Connect(ctx context.Context) (mcpsdk.Connection, error) {
	c, err := t.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &drainingConn{
		Connection: c,
		pending:    map[jsonrpc.ID]struct{}{},
		idle:       make(chan struct{}),
		closed:     make(chan struct{}),
	}, nil
}

// methodListen is the SEP-2575 subscription stream. Its request is answered
// only when cancelled, so it is not waited for: nothing can be subscribed to
// once the input has ended.
const methodListen = "subscriptions/listen"

type drainingConn struct {
	mcpsdk.Connection

	mu sync.Mutex
	// pending holds the ids of requests read and not yet answered. A
	// request that reuses an id in flight is not counted again: the SDK
	// answers it with an error that carries no id.
	pending map[jsonrpc.ID]struct{}
	// draining is set once Read has failed; idle is closed when pending is
	// empty after that.
	draining  bool
	idle      chan struct{}
	closeOnce sync.Once
	closed    chan struct{}
}

// Read returns the next message. Its error waits for the answers to the
// requests already returned.
func (c *drainingConn) Read(ctx context.Context) (jsonrpc.Message, error) {
	msg, err := c.Connection.Read(ctx)
	if err != nil {
		c.mu.Lock()
		c.draining = true
		c.signalIdle()
		c.mu.Unlock()
		select {
		case <-c.idle:
		case <-c.closed:
		case <-ctx.Done():
		}
		return nil, err
	}
	if req, ok := msg.(*jsonrpc.Request); ok && req.IsCall() && req.Method != methodListen {
		c.mu.Lock()
		c.pending[req.ID] = struct{}{}
		c.mu.Unlock()
	}
	return msg, nil
}

// Write writes msg; a response counts as answered once its write returned,
// whether or not it succeeded (a broken output cannot carry it later).
func (c *drainingConn) Write(ctx context.Context, msg jsonrpc.Message) error {
	err := c.Connection.Write(ctx, msg)
	if resp, ok := msg.(*jsonrpc.Response); ok {
		c.mu.Lock()
		delete(c.pending, resp.ID)
		c.signalIdle()
		c.mu.Unlock()
	}
	return err
}

// Close closes the connection and releases a Read waiting for answers: the
// SDK closes it once no request is in flight that it can still answer (a
// failed write, a session Close).
func (c *drainingConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Connection.Close()
}

// signalIdle closes idle when the input has ended and every request read
// has been answered. c.mu must be held.
func (c *drainingConn) signalIdle() {
	if c.draining && len(c.pending) == 0 {
		select {
		case <-c.idle:
		default:
			close(c.idle)
		}
	}
}
