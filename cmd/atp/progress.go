package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// progressDelay is how long a step runs before its progress line appears.
const progressDelay = time.Second

// progress reports slow steps on stderr ("building the test harness…").
//
// A step that ends within a second prints nothing, so quick runs, scripts
// and tests see no progress output. A slower one prints its line once the
// second has passed, whether or not stderr is a terminal: in a CI log the
// line says where the time went. On a terminal the line is erased when the
// step ends, so that only results remain; elsewhere it stays. Progress goes
// to stderr only, never into the stdout that --json output and MCP use.
type progress struct {
	w   io.Writer
	tty bool
	// after is the env's clock (time.After; tests fire it themselves).
	after func(time.Duration) <-chan time.Time
}

// newProgress reports on e's stderr with e's clock. Without a clock it
// never reports.
func newProgress(e *env) *progress {
	after := e.after
	if after == nil {
		after = func(time.Duration) <-chan time.Time { return nil }
	}
	return &progress{w: e.stderr, tty: isTerminal(e.stderr), after: after}
}

// step is one step being reported.
type step struct {
	p     *progress
	stop  chan struct{}
	done  chan struct{}
	shown bool
}

// start starts reporting msg (no trailing dots: they are added).
func (p *progress) start(msg string) *step {
	s := &step{p: p, stop: make(chan struct{}), done: make(chan struct{})}
	timer := p.after(progressDelay)
	go func() {
		defer close(s.done)
		select {
		case <-timer:
		case <-s.stop:
			// A step that ended after its delay shows its line even when
			// both happened before this goroutine ran: what is printed
			// depends on the clock, never on scheduling.
			select {
			case <-timer:
			default:
				return
			}
		}
		if p.tty {
			fmt.Fprintf(p.w, "%s…", msg)
		} else {
			fmt.Fprintf(p.w, "%s…\n", msg)
		}
		s.shown = true
	}()
	return s
}

// end ends the step: a step whose delay had not passed gets no line, and
// on a terminal the line that did appear is erased. It must be called once.
func (s *step) end() {
	close(s.stop)
	<-s.done
	if s.shown && s.p.tty {
		fmt.Fprint(s.p.w, "\r\x1b[K")
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
