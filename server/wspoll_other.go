//go:build !linux

package server

import (
	"errors"
	"os"
)

// Elsewhere than on Linux, each toolkit connection has a goroutine
// blocked in its read (wspoll_linux.go parks idle ones instead).

type poller struct{}

func newPoller() (*poller, error) { return nil, errors.ErrUnsupported }

func (p *poller) stop() {}

func (c *tkConn) serveReads() { c.readLoop() }

func isWouldBlock(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }
