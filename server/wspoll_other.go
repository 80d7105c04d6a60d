//go:build !linux

package server

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// Elsewhere than on Linux, each toolkit connection has a goroutine
// blocked in its read (wspoll_linux.go parks idle ones instead).

type poller struct{}

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

func (p *poller) stop() {}

func (c *tkConn) serveReads() { c.readLoop() }

// rawConnOf is the Linux one's stand-in: no socket of the server's is
// read or written with system calls of its own.
func rawConnOf(net.Conn) syscall.RawConn { return nil }

// tryWrite is the Linux one's stand-in: writeLocked always takes the
// waiting write.
func (c *corkConn) tryWrite([]byte) (int, error) { return 0, nil }

func (c *corkConn) writeNow(uintptr) bool { return true }

func isWouldBlock(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
