package server

import (
	"net"
	"testing"
)

// countingConn records each write that reaches the "socket".
type countingConn struct {
	net.Conn
	writes [][]byte
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes = append(c.writes, append([]byte(nil), p...))
	return len(p), nil
}

func TestCorkConnBatches(t *testing.T) {
	under := &countingConn{}
	c := &corkConn{Conn: under}
	c.Write([]byte("a"))
	c.cork()
	c.Write([]byte("b"))
	c.Write([]byte("c"))
	if len(under.writes) != 1 {
		t.Fatalf("corked writes reached the socket: %q", under.writes)
	}
	if err := c.uncork(); err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("d"))
	want := []string{"a", "bc", "d"}
	if len(under.writes) != len(want) {
		t.Fatalf("writes = %q, want %q", under.writes, want)
	}
	for i, w := range want {
		if string(under.writes[i]) != w {
			t.Fatalf("writes = %q, want %q", under.writes, want)
		}
	}
	// A cork holds at most maxCork bytes before writing through.
	c.cork()
	c.Write(make([]byte, maxCork))
	if len(under.writes) != 4 || len(under.writes[3]) != maxCork {
		t.Fatalf("an oversized cork was held: %d writes", len(under.writes))
	}
	c.uncork()
	if len(under.writes) != 4 {
		t.Fatal("uncork of an empty cork wrote")
	}
}
