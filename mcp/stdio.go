package mcp

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"strconv"
	"sync"

	mcpgo "github.com/mark3labs/mcp-go/mcp"
)

// ServeStdio serves one MCP session over newline-delimited JSON-RPC, reading
// requests from in and writing responses to out: the stdio transport, for
// hosts that start the server as a subprocess (pass os.Stdin and os.Stdout;
// logs must then go to stderr, never to out). Requests run concurrently.
// When the toolkit's tools change, the host gets
// notifications/tools/list_changed.
//
// When in ends (EOF), the requests already read are still answered, so that
// `printf '...' | atp mcp` gets its responses; ServeStdio then returns nil.
// When ctx is cancelled it returns nil after cancelling the contexts of
// running calls and waiting for them to return (a tool that ignores its
// context delays the return; give it a timeout); this also cuts short the
// wait for answers after EOF. Otherwise it returns the read or write error
// that ended the session (a line longer than WithMaxBodyBytes is a read
// error), after cancelling the running calls. It closes neither in nor out;
// a Read of in still blocked when ServeStdio returns is left to finish on
// its own, as a read of os.Stdin cannot be interrupted.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	if ctx.Err() != nil {
		return nil
	}
	sess := &stdioSession{
		id:     "atp-stdio-" + strconv.FormatUint(s.stdioSessions.Add(1), 10),
		out:    out,
		notes:  make(chan mcpgo.JSONRPCNotification, 64),
		failed: make(chan struct{}),
	}
	if err := s.mcp.RegisterSession(ctx, sess); err != nil {
		return fmt.Errorf("mcp: serve stdio: %w", err)
	}
	defer s.mcp.UnregisterSession(ctx, sess.id)

	calls, cancelCalls := context.WithCancel(s.mcp.WithContext(ctx, sess))
	var running sync.WaitGroup
	defer func() {
		cancelCalls()
		running.Wait()
	}()

	// Notifications the library sends (tools/list_changed) are written in
	// their own goroutine, so that a call sending one never waits for out.
	stopNotes := make(chan struct{})
	notesDone := make(chan struct{})
	go func() {
		defer close(notesDone)
		for {
			select {
			case n := <-sess.notes:
				sess.write(sess.tag(n))
			case <-stopNotes:
				return
			}
		}
	}()
	defer func() {
		close(stopNotes)
		<-notesDone
	}()

	lines := make(chan []byte)
	readErr := make(chan error, 1)
	stopped := make(chan struct{})
	defer close(stopped)
	go readLines(in, s.cfg.maxBodyBytes, lines, readErr, stopped)

	var pending inFlight
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-sess.failed:
			return fmt.Errorf("mcp: serve stdio: %w", sess.err)
		case err := <-readErr:
			// Answer what was read before the input ended, unless ctx ends
			// or out breaks first.
			select {
			case <-pending.idle():
			case <-ctx.Done():
				return nil
			case <-sess.failed:
				return fmt.Errorf("mcp: serve stdio: %w", sess.err)
			}
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("mcp: serve stdio: read: %w", err)
		case line := <-lines:
			var head struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(line, &head) != nil || head.Method == "" || len(head.ID) == 0 || string(head.ID) == "null" {
				// A notification (notifications/cancelled must be seen in
				// order), a response, or a line mcp-go answers with a
				// parse error.
				if resp := s.mcp.HandleMessage(calls, line); resp != nil {
					sess.write(resp)
				}
				continue
			}
			// The SEP-2575 subscription stream is answered only when it is
			// cancelled: it is not waited for at EOF, as nothing can be
			// subscribed to once the input has ended.
			counted := head.Method != string(mcpgo.MethodSubscriptionsListen)
			if !counted {
				sess.setListenID(head.ID)
			}
			if counted {
				pending.add()
			}
			running.Add(1)
			go func() {
				defer running.Done()
				resp := s.mcp.HandleMessage(calls, line)
				if resp != nil {
					sess.write(resp)
				}
				if counted {
					pending.done()
				} else {
					sess.setListenID(nil)
				}
			}()
		}
	}
}

// readLines sends each line of in to lines until in ends or fails (the error
// goes to readErr) or stopped is closed.
func readLines(in io.Reader, max int64, lines chan<- []byte, readErr chan<- error, stopped <-chan struct{}) {
	sc := bufio.NewScanner(in)
	limit := int(min(max, 1<<30)) + 1
	sc.Buffer(make([]byte, 0, min(64<<10, limit)), limit)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		select {
		case lines <- bytes.Clone(line):
		case <-stopped:
			return
		}
	}
	err := sc.Err()
	if errors.Is(err, bufio.ErrTooLong) {
		err = fmt.Errorf("a message is longer than %d bytes", max)
	} else if err == nil {
		err = io.EOF
	}
	readErr <- err
}

// inFlight counts the requests read and not yet answered.
type inFlight struct {
	mu   sync.Mutex
	n    int
	zero chan struct{} // closed while n is 0
}

func (f *inFlight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.zero = make(chan struct{})
	}
	f.n++
}

func (f *inFlight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.zero)
	}
}

// idle is closed when no request is in flight.
func (f *inFlight) idle() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		c := make(chan struct{})
		close(c)
		return c
	}
	return f.zero
}

// stdioSession is the one client of a ServeStdio, as mcp-go sees it.
type stdioSession struct {
	id    string
	notes chan mcpgo.JSONRPCNotification

	wmu sync.Mutex
	out io.Writer
	// err is the first write error; failed is closed when it is set. No
	// write is attempted after it: a broken output cannot carry more.
	err    error
	failed chan struct{}

	mu        sync.Mutex
	listenID  json.RawMessage
	filter    mcpgo.SubscriptionFilter
	filterSet bool
}

func (s *stdioSession) SessionID() string { return s.id }

func (s *stdioSession) NotificationChannel() chan<- mcpgo.JSONRPCNotification { return s.notes }

func (s *stdioSession) Initialize() {}

// Initialized is true from the start: a stdio host is the session, and
// hosts speaking 2026-07-28 never send initialize.
func (s *stdioSession) Initialized() bool { return true }

func (s *stdioSession) SetSubscriptionFilter(f mcpgo.SubscriptionFilter) {
	s.mu.Lock()
	s.filter, s.filterSet = f, !f.IsEmpty()
	s.mu.Unlock()
}

func (s *stdioSession) SubscriptionFilter() (mcpgo.SubscriptionFilter, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.filter, s.filterSet
}

func (s *stdioSession) setListenID(id json.RawMessage) {
	s.mu.Lock()
	s.listenID = id
	s.mu.Unlock()
}

// tag marks a notification with the subscription stream it belongs to,
// when the host opened one (2026-07-28).
func (s *stdioSession) tag(n mcpgo.JSONRPCNotification) mcpgo.JSONRPCNotification {
	s.mu.Lock()
	id := s.listenID
	s.mu.Unlock()
	if id == nil {
		return n
	}
	if _, ok := n.Params.Meta[mcpgo.MetaKeySubscriptionID]; ok {
		return n
	}
	meta := make(map[string]any, len(n.Params.Meta)+1)
	maps.Copy(meta, n.Params.Meta)
	meta[mcpgo.MetaKeySubscriptionID] = id
	n.Params.Meta = meta
	return n
}

// notify writes a notification at once, in order with the writes of the
// call sending it.
func (s *stdioSession) notify(method mcpgo.MCPMethod, params map[string]any) {
	s.write(mcpgo.JSONRPCNotification{
		JSONRPC:      mcpgo.JSONRPC_VERSION,
		Notification: mcpgo.Notification{Method: string(method), Params: mcpgo.NotificationParams{AdditionalFields: params}},
	})
}

// write writes one message and its newline.
func (s *stdioSession) write(msg any) {
	b, err := json.Marshal(msg)
	if err == nil {
		b = append(b, '\n')
	} else {
		// mcp-go's messages marshal and a tool's result is valid JSON, so
		// this is a bug; ending the session says so rather than leave the
		// host waiting for an answer that never comes.
		err = fmt.Errorf("encode a message: %w", err)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.err != nil {
		return
	}
	if err == nil {
		_, err = s.out.Write(b)
	}
	if err != nil {
		s.err = err
		close(s.failed)
	}
}
