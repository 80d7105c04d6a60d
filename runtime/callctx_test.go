package runtime

import (
	"context"
	"errors"
	"testing"
	"time"
)

// answers records the answers of calls of a callGroup.
type answers chan bool

func (a answers) answer(_ []byte, isErr bool) { a <- isErr }

func newTestGroup(t *testing.T, timeout time.Duration) (*server, *callGroup) {
	t.Helper()
	s, err := newServer(newServeToolkit(t, nil), ServeConfig{URL: "http://127.0.0.1:1", APIKey: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return s, newCallGroup(context.WithValue(context.Background(), ctxKey{}, "v"), timeout)
}

type ctxKey struct{}

func waitDone(t *testing.T, ctx context.Context) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(waitBound):
		t.Fatal("the context did not end")
	}
}

// A call's context behaves as one made by context.WithTimeout under the
// session's: values, deadline, Err and Cause, and contexts derived from it.
func TestCallContextAtItsDeadline(t *testing.T) {
	s, g := newTestGroup(t, time.Millisecond)
	ans := make(answers, 1)
	c := g.start(true, s, &request{tool: "echo"}, ans)
	child, cancel := context.WithCancel(c)
	defer cancel()
	if c.Value(ctxKey{}) != "v" {
		t.Error("the call's context lost the session's values")
	}
	if d, ok := c.Deadline(); !ok || d.IsZero() {
		t.Error("a timed call's context has no deadline")
	}
	waitDone(t, c)
	waitDone(t, child)
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Errorf("at the deadline: Err %v, Cause %v; want context.DeadlineExceeded", c.Err(), context.Cause(c))
	}
	if !errors.Is(context.Cause(child), context.DeadlineExceeded) {
		t.Errorf("derived context's cause %v, want context.DeadlineExceeded", context.Cause(child))
	}
	if isErr := <-ans; !isErr {
		t.Error("the early answer of a timed-out call is not an error")
	}
	if c.claim() {
		t.Error("the call may answer twice")
	}
	c.finish()
}

// Cancelling the group ends every call with the group's cause, and a call
// started afterwards at once.
func TestCallContextGroupCancel(t *testing.T) {
	s, g := newTestGroup(t, time.Hour)
	ans := make(answers, 2)
	c := g.start(true, s, &request{tool: "echo"}, ans)
	untimed := g.start(false, s, &request{tool: "echo"}, nil)
	if _, ok := untimed.Deadline(); ok {
		t.Error("an untimed call has a deadline")
	}
	g.cancel(errConnectionLost)
	for _, ctx := range []context.Context{c, untimed, g.start(true, s, &request{tool: "echo"}, ans)} {
		waitDone(t, ctx)
		if !errors.Is(context.Cause(ctx), errConnectionLost) || !errors.Is(ctx.Err(), context.Canceled) {
			t.Errorf("after the group's cancel: Err %v, Cause %v", ctx.Err(), context.Cause(ctx))
		}
	}
	if c.timedOut() {
		t.Error("a call cancelled by its group counts as timed out")
	}
	<-ans
	<-ans
}

// A call that answered in time ends with context.Canceled and answers once.
func TestCallContextFinish(t *testing.T) {
	s, g := newTestGroup(t, time.Hour)
	c := g.start(true, s, &request{tool: "echo"}, make(answers))
	stopped := false
	stop := c.AfterFunc(func() { stopped = true })
	if !stop() {
		t.Error("AfterFunc's stop did not stop f")
	}
	if !c.claim() {
		t.Fatal("a running call may not answer")
	}
	c.finish()
	if !errors.Is(c.Err(), context.Canceled) || !errors.Is(context.Cause(c), context.Canceled) {
		t.Errorf("after finish: Err %v, Cause %v", c.Err(), context.Cause(c))
	}
	if stopped {
		t.Error("a stopped AfterFunc ran")
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.head != nil {
		t.Error("a finished call is still in its group")
	}
}
