package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// An LLM client that stops reading its answers holds up no one: the
// toolkit connection its answers come from goes on reading, so another
// client's call on the same toolkit is answered, and the slow client gets
// every answer, its connection intact, once it reads again, as long as
// what waits for it stays within --max-write-queue-bytes (raised here
// above the 16 MiB of answers; slowpeer_test.go is what happens past it).
func TestSlowLLMClientHoldsUpNoOne(t *testing.T) {
	e := newEnv(t, Config{MaxWriteQueueBytes: 64 << 20})
	big := pyTool{name: "big", description: "Returns 1 MiB.", params: []string{}, required: []string{},
		source: "def big():\n    return 'x' * (1 << 20)\n"}
	e.pyRegister(e.tkKey, "hello", big, pyGreet)
	tk := e.dialPyToolkit(e.tkKey)
	go func() {
		payload := strings.Repeat("x", 1<<20)
		for {
			var req pyToolRequest
			if tk.ReadJSON(&req) != nil {
				return
			}
			result := "Hello"
			if req.Payload.ToolName == "big" {
				result = payload
			}
			if tk.WriteJSON(map[string]any{"type": "tool_response", "request_id": req.Payload.RequestID, "result": result}) != nil {
				return
			}
		}
	}()

	// The slow client's socket takes little, so that the server's writes
	// to it block once the server's own send buffer is full (4 MiB at most
	// here; the answers are 8 x 2 MiB, the result being in them twice).
	dialer := &websocket.Dialer{NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil {
			err = c.(*net.TCPConn).SetReadBuffer(64 << 10)
		}
		return c, err
	}}
	slow, resp, err := dialer.Dial(e.wsBase+"/ws/v1/atp/llm-client/"+e.llmKey+"/", nil)
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, respStatus(resp))
	}
	defer slow.Close()
	const n = 8
	for i := range n {
		if err := slow.WriteJSON(pyTaskRequest(e.llmKey, "hello", i, "big", nil)); err != nil {
			t.Fatal(err)
		}
	}

	other := e.dialPyLLM(e.llmKey)
	req := pyTaskRequest(e.llmKey, "hello", n, "greet", map[string]any{"name": "x"})
	if got := checkTaskResponse(t, roundTrip(t, other, req), req, "success"); got != "Hello" {
		t.Fatalf("the other client's call = %v", got)
	}
	for range n {
		slow.SetReadDeadline(time.Now().Add(10 * time.Second))
		var m map[string]any
		if err := slow.ReadJSON(&m); err != nil {
			t.Fatalf("the slow client lost its connection: %v", err)
		}
		if m["status"] != "success" {
			t.Fatalf("the slow client's call: %.200v", m)
		}
	}
}

// A write to a peer that does not read returns within its budget; the rest
// is written behind, in order with the writes after it, once the peer reads;
// a write behind that fails is reported and fails the writes after it.
func TestCorkConnWritesBehind(t *testing.T) {
	ours, peer := net.Pipe() // synchronous: a write waits for the peer to read
	defer peer.Close()
	failed := make(chan error, 1)
	c := &corkConn{Conn: ours, onWriteError: func(err error) { failed <- err }}
	c.SetWriteDeadline(time.Now().Add(time.Hour))
	wrote := make(chan error)
	go func() {
		for _, p := range []string{"first ", "second ", "third"} {
			if _, err := c.Write([]byte(p)); err != nil {
				wrote <- err
				return
			}
		}
		wrote <- nil
	}()
	select {
	case err := <-wrote:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write to a peer that does not read held its caller")
	}
	got := make([]byte, len("first second third"))
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "first second third" {
		t.Fatalf("the peer read %q, %v", got, err)
	}
	c.written(10 * time.Second) // what a shutdown waits for before it closes
	c.mu.Lock()
	behind := c.behind
	c.mu.Unlock()
	if behind {
		t.Fatal("bytes still behind once the peer read them all")
	}

	// The deadline passes with bytes behind: the socket is dead.
	c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	c.Write([]byte("never read"))
	select {
	case err := <-failed:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write behind failed with %v, want the deadline", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a write behind past its deadline was not reported")
	}
	if _, err := c.Write([]byte("more")); err == nil {
		t.Fatal("a write after a failed write behind succeeded")
	}
}

// countingConn records each write that reaches the "socket".
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func (c *countingConn) SetWriteDeadline(time.Time) error { return nil }

// A batch of small messages reaches the socket in one write, after
// gorilla's control frames written before it, never inside it.
func TestWriteFramesBatchesInOneWrite(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under}
	c.Write([]byte{0x80 | websocket.PingMessage, 0})
	if err := c.writeFrames([][]byte{[]byte("a"), []byte("bc"), []byte("")}, time.Minute); err != nil {
		t.Fatal(err)
	}
	want := []string{"\x89\x00", "\x81\x01a\x81\x02bc\x81\x00"}
	if len(under.writes) != len(want) {
		t.Fatalf("writes = %q, want %q", under.writes, want)
	}
	for i, w := range want {
		if string(under.writes[i]) != w {
			t.Fatalf("writes = %q, want %q", under.writes, want)
		}
	}
}

// writeFrames writes each message as one final text frame, headers of all
// three lengths included, inline or after its header; once gorilla's close
// frame has gone, it writes nothing more.
func TestCorkConnWritesFrames(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	ours, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer ours.Close()
	c := newCorkConn(ours)
	var msgs [][]byte
	for i, size := range []int{0, 1, 125, 126, inlineFrame, inlineFrame + 1, 0xffff, 0x10000, 100 << 10} {
		msgs = append(msgs, bytes.Repeat([]byte{'a' + byte(i)}, size))
	}
	wrote := make(chan error, 1)
	go func() { wrote <- c.writeFrames(msgs, time.Minute) }()
	r := bufio.NewReader(peer)
	peer.SetReadDeadline(time.Now().Add(10 * time.Second))
	for i, want := range msgs {
		var hdr [2]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			t.Fatal(err)
		}
		if hdr[0] != 0x80|websocket.TextMessage || hdr[1]&0x80 != 0 {
			t.Fatalf("message %d: header %x, want a final text frame, unmasked", i, hdr)
		}
		size := int(hdr[1])
		switch size {
		case 126:
			var ext [2]byte
			io.ReadFull(r, ext[:])
			size = int(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			io.ReadFull(r, ext[:])
			size = int(binary.BigEndian.Uint64(ext[:]))
		}
		got := make([]byte, size)
		if _, err := io.ReadFull(r, got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("message %d: %d bytes, want %d", i, len(got), len(want))
		}
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	c.Write([]byte{0x80 | websocket.CloseMessage, 0})
	if err := c.writeFrames(msgs[:1], time.Minute); !errors.Is(err, websocket.ErrCloseSent) {
		t.Fatalf("a message after the close frame: %v, want ErrCloseSent", err)
	}
}

// readFrame takes a message that came whole in one masked frame, across
// gorilla's small reader and the read buffer under it, and leaves
// everything else (a fragment, an unmasked frame, one past the read limit,
// one not all read) to gorilla, untouched.
func TestReadFrame(t *testing.T) {
	frame := func(fin bool, masked bool, payload []byte) []byte {
		b := []byte{0x01}
		if fin {
			b[0] |= 0x80
		}
		mask := byte(0)
		if masked {
			mask = 0x80
		}
		switch n := len(payload); {
		case n < 126:
			b = append(b, mask|byte(n))
		default:
			b = append(b, mask|126, byte(n>>8), byte(n))
		}
		if !masked {
			return append(b, payload...)
		}
		key := [4]byte{0x12, 0x34, 0x56, 0x78}
		b = append(b, key[:]...)
		start := len(b)
		b = append(b, payload...)
		maskBytes(key, b[start:])
		return b
	}
	session := func(limit int64, stream ...[]byte) *wsSession {
		cc := &corkConn{}
		cc.br = bufio.NewReaderSize(cc, frameReaderSize)
		cc.rbuf = new([readBufSize]byte)
		for _, f := range stream {
			cc.rend += copy(cc.rbuf[cc.rend:], f)
		}
		return &wsSession{cork: cc, readLimit: limit}
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 100) // past gorilla's reader: read from both
	small := []byte(`{"type":"task_request"}`)
	c := session(0, frame(true, true, small), frame(true, true, big), frame(true, true, small[:5]))
	for i, want := range [][]byte{small, big, small[:5]} {
		if got := c.readFrame(); !bytes.Equal(got, want) {
			t.Fatalf("message %d: %q, want %q", i, got, want)
		}
	}
	if c.cork.buffered() != 0 || c.readFrame() != nil {
		t.Fatal("bytes left after the last message")
	}
	for name, c := range map[string]*wsSession{
		"a fragment":       session(0, frame(false, true, small)),
		"unmasked":         session(0, frame(true, false, small)),
		"past the limit":   session(int64(len(small)-1), frame(true, true, small)),
		"not all read yet": session(0, frame(true, true, big)[:700]),
	} {
		before := c.cork.buffered()
		if got := c.readFrame(); got != nil || c.cork.buffered() != before {
			t.Errorf("%s: took %q, or some of it", name, got)
		}
	}
	if c := session(int64(len(small)), frame(true, true, small)); !bytes.Equal(c.readFrame(), small) {
		t.Error("a message of exactly the read limit was not taken")
	}
	// An empty message is one, even first on a session (its read buffer
	// never grown): it is not left to gorilla, its header gone.
	c = session(0, frame(true, true, nil), frame(true, true, small))
	if got := c.readFrame(); got == nil || len(got) != 0 {
		t.Fatalf("an empty message: %q (nil: %v)", got, got == nil)
	}
	if got := c.readFrame(); !bytes.Equal(got, small) {
		t.Fatalf("the message after an empty one: %q", got)
	}
}
