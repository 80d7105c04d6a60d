package server

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Idle toolkit connections wait without a goroutine: a goroutine blocked
// in a read keeps its stack (8 KiB once grown) and its read buffer for as
// long as the toolkit says nothing, which for most toolkits is most of
// the time. Instead, a connection with nothing to read is parked on the
// server's poller (one epoll set and one goroutine per server), which
// starts a goroutine to read it once the socket is readable (burst). The
// goroutine reads what came, waits up to readLinger for more (a busy
// toolkit keeps its goroutine), and parks the connection again.

// readLinger is how long a connection's goroutine waits for its next frame
// before the connection is parked: between readLinger and 5/4 of it, as
// the wait's deadline moves only once it is less than readLinger away
// (each move costs a timer update, and a busy toolkit's goroutine waits
// once per message).
const readLinger = 2 * time.Second

// poller parks connections on an epoll set with EPOLLONESHOT: each wait is
// armed by the goroutine that last read the connection, just before it
// ends, so at most one goroutine reads a connection at a time.
type poller struct {
	epfd int
	wake [2]int // a pipe: a byte in it ends run
	done chan struct{}

	// mu also orders a parking goroutine's reads before the next burst's:
	// park releases it after its last access to the connection, run takes
	// it before starting the burst.
	mu     sync.Mutex
	seq    uint64
	conns  map[uint64]*tkConn
	closed bool
}

// wakeID is the pipe's event; connections' ids start at 1.
const wakeID = 0

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	p := &poller{epfd: epfd, done: make(chan struct{}), conns: map[uint64]*tkConn{}}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, os.NewSyscallError("pipe2", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.closeFDs()
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	go p.run()
	return p, nil
}

func (p *poller) closeFDs() {
	syscall.Close(p.epfd)
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
}

func (p *poller) run() {
	defer close(p.done)
	defer p.closeFDs()
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			// Not expected; the parked connections would never be read:
			// end them rather than leave them hanging.
			p.mu.Lock()
			p.closed = true
			conns := p.conns
			p.conns = nil
			p.mu.Unlock()
			for _, c := range conns {
				c.abort(os.NewSyscallError("epoll_wait", err))
			}
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == wakeID {
				return
			}
			p.mu.Lock()
			c := p.conns[id]
			p.mu.Unlock()
			if c != nil {
				go c.burst()
			}
		}
	}
}

// stop ends run; connections parked then are never read again (the
// server has closed them all first). A park after it fails.
func (p *poller) stop() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	syscall.Write(p.wake[1], []byte{0})
	<-p.done
}

// park arms the wait for c's socket to be readable and returns true; the
// caller must not touch c's read state afterwards. False: c could not be
// parked (the poller has stopped, or the socket is closed), and the caller
// reads on.
func (p *poller) park(c *tkConn) bool {
	if p == nil || c.raw == nil {
		return false
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return false
	}
	op := syscall.EPOLL_CTL_MOD
	if c.pollID == 0 {
		op = syscall.EPOLL_CTL_ADD
		p.seq++
		c.pollID = p.seq
		p.conns[c.pollID] = c
	}
	id := c.pollID
	p.mu.Unlock()
	if op == syscall.EPOLL_CTL_ADD {
		// Not under p.mu: on a session closed already it runs at once.
		c.holds(func() { p.forget(id) })
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var err error
	// Control keeps the descriptor from being closed (and reused) meanwhile.
	if cerr := c.raw.Control(func(fd uintptr) { err = syscall.EpollCtl(p.epfd, op, int(fd), &ev) }); cerr != nil {
		return false
	}
	return err == nil
}

// forget drops a closed connection (the kernel has dropped its socket
// from the set as it closed).
func (p *poller) forget(id uint64) {
	p.mu.Lock()
	delete(p.conns, id)
	p.mu.Unlock()
}

// rawConnOf returns the socket under a hijacked connection, for the
// poller, or nil when it is not one.
func rawConnOf(c net.Conn) syscall.RawConn {
	for {
		switch cc := c.(type) {
		case *corkConn:
			c = cc.Conn
		case *limitedConn:
			c = cc.Conn
		case *net.TCPConn:
			raw, err := cc.SyscallConn()
			if err != nil {
				return nil
			}
			return raw
		default:
			return nil
		}
	}
}

// serveReads reads the connection: parked on the server's poller when it
// has one, else a read loop on this goroutine.
func (c *tkConn) serveReads() {
	if c.cork != nil && c.cork.br != nil {
		if c.poll = c.s.readPoller(); c.poll != nil {
			c.raw = c.cork.raw
			c.reads.flush()
			if c.poll.park(c) {
				return
			}
		}
	}
	c.readLoop()
}

// burst reads the connection once the poller found it readable: every
// message that came, then more for up to readLinger, then it parks it.
func (c *tkConn) burst() {
	woken := true // the poller found the socket readable
	for {
		// Nothing buffered after a message: wait for the next on the
		// socket at once, rather than first asking it without waiting (a
		// system call that finds nothing, on every call's path).
		if c.cork.buffered() == 0 && c.cork.rerr == nil && !woken {
			c.trimReadBuffer()
			// The message was read just now: its time saves a look at
			// the clock.
			if !c.lingerRead(time.Duration(c.lastAlive.Load())) {
				c.reads.flush()
				if c.poll.park(c) {
					return
				}
				c.readLoop()
				return
			}
		}
		woken = false
		ready, ok := c.messageReady()
		if !ok {
			return
		}
		if ready {
			if !c.readOne() {
				return
			}
			continue
		}
		c.trimReadBuffer()
		if c.lingerRead(time.Since(c.born)) {
			continue
		}
		c.reads.flush()
		if c.poll.park(c) {
			return
		}
		c.readLoop() // not parked: read here until the end
		return
	}
}

// lingerRead waits up to readLinger for the socket's next bytes, and
// reports whether some came (or an error for gorilla to find). now is the
// time, since c.born.
func (c *tkConn) lingerRead(now time.Duration) bool {
	cc := c.cork
	if cc.beforeRead != nil {
		cc.beforeRead()
	}
	// The deadline stays on the socket after the wait: gorilla reads a
	// message that has come whole from the read buffer, and corkConn.Read
	// puts the session's deadline back before it waits for the rest of one.
	if cc.lingerDL.IsZero() || c.lingerUntil-now < readLinger {
		c.lingerUntil = now + readLinger + readLinger/4
		cc.lingerDL = c.born.Add(c.lingerUntil)
		cc.Conn.SetReadDeadline(cc.lingerDL)
	}
	err := cc.fill(cc.Conn.Read)
	if err != nil && cc.rerr == nil {
		// The wait ended (the connection parks now): a read to come must
		// not find the linger deadline passed.
		cc.restoreReadDeadline()
		return false
	}
	return true
}

// messageReady reports whether gorilla can read the next message's header
// without waiting for the socket: whether what has been read holds a
// complete frame header, after the pings and pongs answered here (gorilla
// would answer them, then wait for the next frame). It reads what the
// socket has without waiting. ok is false once the session has ended.
func (c *tkConn) messageReady() (ready, ok bool) {
	cc := c.cork
	for {
		if !c.buffer(2) {
			return false, true
		}
		if cc.buffered() < 2 {
			return true, true // gorilla finds the socket's error
		}
		hlen := frameHeaderLen(peekN(cc.br, 2))
		if !c.buffer(hlen) {
			return false, true
		}
		if cc.buffered() < hlen {
			return true, true
		}
		hdr := peekN(cc.br, 2)
		op, size := int(hdr[0]&0x0f), int(hdr[1]&0x7f)
		fin, rsv, masked := hdr[0]&0x80 != 0, hdr[0]&0x70 != 0, hdr[1]&0x80 != 0
		if (op != websocketPing && op != websocketPong) || !fin || rsv || !masked || size > 125 {
			return true, true // a message, a close, or what gorilla refuses
		}
		frame := hlen + size
		if !c.buffer(frame) {
			return false, true
		}
		if cc.buffered() < frame {
			return true, true
		}
		b := peekN(cc.br, frame)
		payload := make([]byte, size)
		for i := range payload {
			payload[i] = b[hlen+i] ^ b[hlen-4+i%4]
		}
		cc.br.Discard(frame)
		handle := c.ws.PongHandler()
		if op == websocketPing {
			handle = c.ws.PingHandler()
		}
		if err := handle(string(payload)); err != nil {
			c.abort(fmt.Errorf("pong: %w", err))
			return false, false
		}
	}
}

// buffer reads what the socket has, without waiting, until n bytes (at
// most frameReaderSize) are buffered or the socket failed; false when the
// socket has nothing more for now.
func (c *tkConn) buffer(n int) bool {
	cc := c.cork
	for cc.buffered() < n {
		if cc.rerr != nil {
			return true
		}
		// Into br, emptying the read buffer for the next read.
		cc.br.Peek(cc.buffered())
		if !c.tryFill() {
			return false
		}
	}
	return true
}

const (
	websocketPing = 9
	websocketPong = 10
)

// tryFill reads what the socket has into the empty read buffer, without
// waiting; false when it had nothing.
func (c *tkConn) tryFill() bool {
	cc := c.cork
	err := cc.fill(func(p []byte) (int, error) {
		var n int
		var rerr error
		cerr := c.raw.Read(func(fd uintptr) bool {
			n, rerr = syscall.Read(int(fd), p)
			return true // never wait: the poller does
		})
		switch {
		case cerr != nil:
			return 0, cerr
		case rerr != nil:
			return 0, rerr
		case n == 0:
			return 0, io.EOF
		}
		return n, nil
	})
	return err == nil || cc.rerr != nil
}

// tryWrite writes what the socket takes of p without waiting, and returns
// how much that was; err is a failure of the socket (not that it is full).
// c.mu is held.
func (c *corkConn) tryWrite(p []byte) (n int, err error) {
	if c.raw == nil || c.behind {
		return 0, nil
	}
	c.wp = p
	cerr := c.raw.Write(c.rawWrite)
	n, err = max(c.wn, 0), c.werr
	c.wp, c.wn, c.werr = nil, 0, nil
	switch {
	case errors.Is(cerr, os.ErrDeadlineExceeded):
		return 0, nil // a deadline a waiting write left: the next one moves it
	case cerr != nil:
		return 0, cerr
	case err == syscall.EAGAIN || err == syscall.EINTR:
		return n, nil // the waiting write takes over
	}
	if err != nil {
		err = os.NewSyscallError("write", err)
	}
	return n, err
}

// writeNow is tryWrite's write of c.wp: never waiting, as the waiting
// write is the net package's (writeWaiting).
func (c *corkConn) writeNow(fd uintptr) bool {
	c.wn, c.werr = syscall.Write(int(fd), c.wp)
	return true
}

func isWouldBlock(err error) bool {
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, os.ErrDeadlineExceeded)
}
