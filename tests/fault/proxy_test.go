package fault

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
)

// proxy is a loopback TCP proxy that the test controls, standing between
// one peer (a toolkit process, an LLM client) and the server. It can make
// the network fail the way it does for real:
//
//   - reset: every connection through it ends with a TCP reset on both
//     sides (SO_LINGER 0), not a clean close: the peers see ECONNRESET,
//     as when a process is killed or a NAT forgets the flow;
//   - kill: reset, then every new connection is reset at once (the process
//     is gone and nothing answers for it any more);
//   - stall: bytes stop flowing while the sockets stay open (a stopped
//     process, a black-holed route), until unstall or reset.
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	links  map[*link]struct{}
	killed bool
	closed bool
	// moving is closed while bytes may flow; stall replaces it with an open
	// channel, unstall closes that.
	moving chan struct{}
	// stalled holds the server-side local address (the server's view of
	// the peer) of every link that was ever stalled.
	stalled map[string]bool
	wg      sync.WaitGroup
}

// link is one proxied connection: the peer's side and the server's.
type link struct {
	peer, server *net.TCPConn
	dead         chan struct{} // closed by cut
	once         sync.Once
}

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, links: map[*link]struct{}{}, moving: make(chan struct{}), stalled: map[string]bool{}}
	close(p.moving)
	p.wg.Add(1)
	go p.accept()
	return p
}

// url is the proxy's address as a base URL.
func (p *proxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return // closed
		}
		peer := c.(*net.TCPConn)
		p.mu.Lock()
		refuse := p.killed || p.closed
		p.mu.Unlock()
		if refuse {
			resetConn(peer)
			continue
		}
		p.wg.Add(1)
		go p.connect(peer)
	}
}

// connect dials the server for a new peer connection and pumps bytes
// both ways until either side ends or the link is cut.
func (p *proxy) connect(peer *net.TCPConn) {
	defer p.wg.Done()
	c, err := net.Dial("tcp", p.target)
	if err != nil {
		resetConn(peer)
		return
	}
	l := &link{peer: peer, server: c.(*net.TCPConn), dead: make(chan struct{})}
	// Loopback sockets grow their buffers to tens of megabytes; a real
	// path holds far less. Small buffers make a stalled link push back on
	// the server soon, as it would across a network.
	l.server.SetReadBuffer(256 << 10)
	l.peer.SetReadBuffer(256 << 10)
	p.mu.Lock()
	if p.killed || p.closed {
		p.mu.Unlock()
		l.cut()
		return
	}
	p.links[l] = struct{}{}
	if p.isStalled() {
		p.stalled[l.server.LocalAddr().String()] = true
	}
	p.mu.Unlock()
	var pumps sync.WaitGroup
	pumps.Add(2)
	go func() { defer pumps.Done(); p.pump(l, l.server, l.peer) }()
	go func() { defer pumps.Done(); p.pump(l, l.peer, l.server) }()
	pumps.Wait()
	l.peer.Close()
	l.server.Close()
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
}

// pump copies src to dst. A clean end (EOF) is passed on as a half close,
// so that a peer's close reaches the server as a close; any error, or a
// cut, resets both sides.
func (p *proxy) pump(l *link, dst, src *net.TCPConn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			select {
			case <-p.flowing():
			case <-l.dead:
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				l.cut()
				return
			}
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			select {
			case <-l.dead:
				return
			default:
			}
			// EOF: the sender closed its side; pass it on. Anything else
			// (a reset) is passed on as a reset.
			if errors.Is(err, io.EOF) {
				dst.CloseWrite()
				return
			}
			l.cut()
			return
		}
	}
}

// flowing returns a channel that is closed while the proxy is not stalled.
func (p *proxy) flowing() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.moving
}

// cut resets both sides of the link.
func (l *link) cut() {
	l.once.Do(func() {
		close(l.dead)
		resetConn(l.peer)
		resetConn(l.server)
	})
}

// resetConn closes c with a TCP reset rather than a FIN.
func resetConn(c *net.TCPConn) {
	c.SetLinger(0)
	c.Close()
}

// reset cuts every connection through the proxy; new ones are accepted.
func (p *proxy) reset() int {
	p.mu.Lock()
	links := make([]*link, 0, len(p.links))
	for l := range p.links {
		links = append(links, l)
	}
	p.mu.Unlock()
	for _, l := range links {
		l.cut()
	}
	return len(links)
}

// kill cuts every connection and resets every later one.
func (p *proxy) kill() {
	p.mu.Lock()
	p.killed = true
	p.mu.Unlock()
	p.reset()
}

// stall stops the bytes on every connection, current and new, until
// unstall (or reset, which cuts the stalled connections).
func (p *proxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isStalled() {
		p.moving = make(chan struct{})
	}
	for l := range p.links {
		p.stalled[l.server.LocalAddr().String()] = true
	}
}

// isStalled reports whether bytes are stopped. p.mu is held.
func (p *proxy) isStalled() bool {
	select {
	case <-p.moving:
		return false
	default:
		return true
	}
}

// wasStalled reports whether the link the server sees coming from addr
// went through this proxy and was stalled at some point.
func (p *proxy) wasStalled(addr string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stalled[addr]
}

func (p *proxy) unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.isStalled() {
		close(p.moving)
	}
}

// close stops accepting, cuts every connection and waits for the proxy's
// goroutines.
func (p *proxy) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.unstall()
	p.reset()
	p.wg.Wait()
}
