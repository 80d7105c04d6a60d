package runtime

import (
	"context"
	"slices"
	"sync"
	"time"
)

// callGroup is the calls of one session (or of the inbox poller): it
// cancels them all at once, and ends each at the server's call timeout.
//
// It does so without a timer, a context.AfterFunc or a child-context
// registration per call, which cost a dozen allocations per call on the
// hot path: the live calls are on a list, oldest first, and one timer
// wakes at the deadline of the oldest timed call. Every timed call has the
// same timeout, so the list is also in the order of their deadlines.
type callGroup struct {
	// ctx ends when the group is cancelled; its cause is the first cause
	// given to cancel. Calls' contexts take their values from it.
	ctx      context.Context
	endGroup context.CancelCauseFunc
	timeout  time.Duration // the default call timeout; 0: none

	mu         sync.Mutex
	head, tail *callContext // live calls not yet cancelled, oldest first
	cancelled  bool
	timer      *time.Timer // sweeps expired calls; nil until first needed
	armed      bool        // timer is pending
}

// newCallGroup returns the group of calls of a session started with ctx.
// Calls outlive ctx on purpose: cancelling it starts a drain that lets
// them finish.
func newCallGroup(ctx context.Context, timeout time.Duration) *callGroup {
	gctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	return &callGroup{ctx: gctx, endGroup: cancel, timeout: max(timeout, 0)}
}

// cancel ends the group's context and cancels every live call: their
// contexts report cause through context.Cause, as children of the group's.
func (g *callGroup) cancel(cause error) {
	g.endGroup(cause)
	g.mu.Lock()
	g.cancelled = true
	var live []*callContext
	for c := g.head; c != nil; c = c.next {
		live = append(live, c)
	}
	g.head, g.tail = nil, nil
	for _, c := range live {
		c.prev, c.next, c.linked = nil, nil, false
	}
	if g.timer != nil {
		g.timer.Stop()
		g.armed = false
	}
	g.mu.Unlock()
	for _, c := range live {
		c.cancel(context.Canceled, true)
	}
}

// start begins a call of req: its context ends at the group's timeout
// when timed, when the group is cancelled, or at finish. When it ends
// before the call has answered, the answer goes out at once through ans
// (on a goroutine of its own), even if the tool is still running.
func (g *callGroup) start(timed bool, s *server, req *request, ans answerer) *callContext {
	c := &callContext{g: g, s: s, req: req, ans: ans}
	g.mu.Lock()
	if g.cancelled {
		g.mu.Unlock()
		c.cancel(context.Canceled, true)
		return c
	}
	if timed && g.timeout > 0 {
		c.timed = true
		c.deadline = time.Now().Add(g.timeout)
		if !g.armed {
			g.armed = true
			if g.timer == nil {
				g.timer = time.AfterFunc(g.timeout, g.sweep)
			} else {
				g.timer.Reset(g.timeout)
			}
		}
	}
	c.linked = true
	c.prev = g.tail
	if g.tail != nil {
		g.tail.next = c
	} else {
		g.head = c
	}
	g.tail = c
	g.mu.Unlock()
	return c
}

// unlink takes c off the list of live calls. g.mu is held.
func (g *callGroup) unlink(c *callContext) {
	if !c.linked {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		g.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		g.tail = c.prev
	}
	c.prev, c.next, c.linked = nil, nil, false
}

// sweep cancels the calls whose deadline has passed and sets the timer for
// the next one.
func (g *callGroup) sweep() {
	now := time.Now()
	var expired []*callContext
	g.mu.Lock()
	g.armed = false
	for c := g.head; c != nil; {
		next := c.next
		if c.timed {
			if c.deadline.After(now) {
				g.armed = true
				g.timer.Reset(c.deadline.Sub(now))
				break
			}
			g.unlink(c)
			expired = append(expired, c)
		}
		c = next
	}
	g.mu.Unlock()
	for _, c := range expired {
		c.cancel(context.DeadlineExceeded, false)
	}
}

// causeKey is the key context.Cause looks up in a Context's values to find
// the cancellation it descends from. A callContext cancelled by its own
// deadline or end answers it with nil, so that Cause falls back to Err
// (context.DeadlineExceeded, context.Canceled) as for a context made by
// context.WithTimeout; otherwise it defers to the group's context. Should
// context.Cause ever stop asking, causeKey is nil and matches no key.
var causeKey = func() any {
	p := &keyProbe{Context: context.Background()}
	context.Cause(p)
	return p.key
}()

type keyProbe struct {
	context.Context
	key any
}

func (p *keyProbe) Value(key any) any {
	if p.key == nil {
		p.key = key
	}
	return nil
}

// callContext is the context of one call of a callGroup. It is allocated
// per call, never reused: a tool may keep it past its return.
type callContext struct {
	g        *callGroup
	timed    bool
	deadline time.Time

	prev, next *callContext // guarded by g.mu
	linked     bool         // on g's list; guarded by g.mu

	mu sync.Mutex
	// What the early answer needs; cleared at finish, as the request may
	// be reused once the call is over.
	s         *server
	req       *request
	ans       answerer
	err       error
	byGroup   bool          // cancelled by the group: Cause is the group's
	done      chan struct{} // made on first Done
	funcs     []*afterFunc  // registered by AfterFunc (child contexts)
	answered  bool          // the call's one answer is claimed
	earlyDone chan struct{} // closed when early has answered; nil if it never ran
}

type afterFunc struct{ f func() }

// closedDone is returned by Done once the context has ended, before
// anyone asked for its channel.
var closedDone = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (c *callContext) Deadline() (time.Time, bool) { return c.deadline, c.timed }

func (c *callContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		if c.err != nil {
			return closedDone
		}
		c.done = make(chan struct{})
	}
	return c.done
}

func (c *callContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *callContext) Value(key any) any {
	if key == causeKey && causeKey != nil {
		c.mu.Lock()
		own := c.err != nil && !c.byGroup
		c.mu.Unlock()
		if own {
			return nil
		}
	}
	return c.g.ctx.Value(key)
}

func (c *callContext) String() string { return "runtime.callContext" }

// AfterFunc lets a context derived from c (context.WithCancel(c), ...)
// follow it without a goroutine of its own: package context uses it when
// a parent has it. f runs on its own goroutine when c ends.
func (c *callContext) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	a := &afterFunc{f: f}
	c.funcs = append(c.funcs, a)
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		i := slices.Index(c.funcs, a)
		if i < 0 {
			return false
		}
		c.funcs = slices.Delete(c.funcs, i, i+1)
		return true
	}
}

// cancel ends c with err, once. When the call has not answered yet, its
// early answer goes out now, on a goroutine of its own.
func (c *callContext) cancel(err error, byGroup bool) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err, c.byGroup = err, byGroup
	if c.done != nil {
		close(c.done)
	}
	funcs := c.funcs
	c.funcs = nil
	s, req, ans := c.s, c.req, c.ans
	early := ans != nil && !c.answered
	var earlyDone chan struct{}
	if early {
		c.answered = true
		earlyDone = make(chan struct{})
		c.earlyDone = earlyDone
	}
	c.mu.Unlock()
	for _, a := range funcs {
		go a.f()
	}
	if early {
		go func() {
			defer close(earlyDone)
			var err error = context.Canceled // outcome words it with the group's cause
			if c.timedOut() {
				err = &TimeoutError{Tool: req.tool, Timeout: c.g.timeout}
			}
			ans.answer(s.outcome(c.g.ctx, req, nil, err))
		}()
	}
}

// answerer receives the one answer of a call.
type answerer interface {
	answer(result []byte, isError bool)
}

// answerFunc is an answerer for transports that answer from a closure.
type answerFunc func(result []byte, isError bool)

func (f answerFunc) answer(result []byte, isError bool) { f(result, isError) }

// claim reports whether the caller may send the call's answer: no early
// answer went out.
func (c *callContext) claim() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.answered {
		return false
	}
	c.answered = true
	return true
}

// timedOut reports whether c ended at its deadline while the group was
// still running.
func (c *callContext) timedOut() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timed && c.err == context.DeadlineExceeded && !c.byGroup && c.g.ctx.Err() == nil
}

// finish ends the call: its context is cancelled, it leaves the group, and
// finish returns once an early answer, if one is going out, is out.
func (c *callContext) finish() {
	c.cancel(context.Canceled, false)
	c.mu.Lock()
	wait := c.earlyDone
	c.s, c.req, c.ans = nil, nil, nil
	c.mu.Unlock()
	c.g.mu.Lock()
	c.g.unlink(c)
	c.g.mu.Unlock()
	if wait != nil {
		<-wait
	}
}
