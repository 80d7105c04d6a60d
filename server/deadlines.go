package server

import (
	"math"
	"sync"
	"time"
)

// taskDeadlines ends the tasks that their toolkits did not answer in time
// (task.expire) with one timer for all of them, rather than a timer each:
// starting and stopping a timer is on every call's path, and costs more
// than the rest of the routing. The tasks wait in a heap by deadline (a
// task_request's timeout_ms gives it its own), and the timer is set for
// the earliest. A task that ends first leaves the timer as it is: it then
// fires with nothing due, and is set for the next deadline, so that a
// steady flow of answered calls sets it once per call timeout, not once
// per call.
//
// Times are durations since base, read off the monotonic clock alone
// (time.Since), which costs half of time.Now.
type taskDeadlines struct {
	mu    sync.Mutex
	base  time.Time // set by the first add
	heap  []*task   // by deadline, earliest first; a task's slot is its index
	timer *time.Timer
	// at is when the timer fires, or when its sweep was due if it has not
	// run yet; 0: it is not set.
	at      time.Duration
	stopped bool // the server has shut down: the timer is not set again
}

// add ends t once timeout has passed, unless remove takes it back first.
func (d *taskDeadlines) add(t *task, timeout time.Duration) {
	d.mu.Lock()
	if d.base.IsZero() {
		d.base = time.Now()
	}
	now := time.Since(d.base)
	t.deadline = now + timeout
	if t.deadline < now {
		// Past the largest Duration (a server told never to time a call
		// out): the sum overflowed into the past.
		t.deadline = math.MaxInt64
	}
	t.slot = len(d.heap)
	d.heap = append(d.heap, t)
	d.up(t.slot)
	if d.at == 0 || t.deadline < d.at {
		d.arm(t.deadline, now)
	}
	d.mu.Unlock()
}

// remove takes back t, if it is waiting.
func (d *taskDeadlines) remove(t *task) {
	d.mu.Lock()
	if t.slot >= 0 {
		d.removeAt(t.slot)
	}
	d.mu.Unlock()
}

// stop lets the timer go at shutdown, when no task is waiting any more
// (the hub has failed them all).
func (d *taskDeadlines) stop() {
	d.mu.Lock()
	d.stopped = true
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
}

// arm sets the timer for at; now is the time. d.mu is held.
func (d *taskDeadlines) arm(at, now time.Duration) {
	if d.stopped {
		return
	}
	d.at = at
	if d.timer == nil {
		d.timer = time.AfterFunc(at-now, d.sweep)
		return
	}
	d.timer.Reset(at - now)
}

// sweep expires the tasks whose deadline has passed, and sets the timer
// for the next deadline.
func (d *taskDeadlines) sweep() {
	var due []*task
	d.mu.Lock()
	now := time.Since(d.base)
	d.at = 0
	for len(d.heap) > 0 && d.heap[0].deadline <= now {
		due = append(due, d.heap[0])
		d.removeAt(0)
	}
	if len(d.heap) > 0 {
		d.arm(d.heap[0].deadline, now)
	}
	d.mu.Unlock()
	if len(due) == 1 {
		due[0].expire()
		return
	}
	// Each expiry writes an answer, which may wait (up to the write budget)
	// on an agent that stopped reading: in turn, many such agents would
	// delay everyone's timeouts. As with a timer per task, each goes on its
	// own goroutine.
	for _, t := range due {
		go t.expire()
	}
}

// removeAt takes the task in slot i off the heap. d.mu is held.
func (d *taskDeadlines) removeAt(i int) {
	t := d.heap[i]
	last := len(d.heap) - 1
	if i != last {
		d.swap(i, last)
	}
	d.heap[last] = nil
	d.heap = d.heap[:last]
	t.slot = -1
	if i != last {
		d.down(i)
		d.up(i)
	}
}

func (d *taskDeadlines) less(i, j int) bool {
	return d.heap[i].deadline < d.heap[j].deadline
}

func (d *taskDeadlines) swap(i, j int) {
	d.heap[i], d.heap[j] = d.heap[j], d.heap[i]
	d.heap[i].slot, d.heap[j].slot = i, j
}

func (d *taskDeadlines) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !d.less(i, parent) {
			return
		}
		d.swap(i, parent)
		i = parent
	}
}

func (d *taskDeadlines) down(i int) {
	n := len(d.heap)
	for {
		least := i
		if l := 2*i + 1; l < n && d.less(l, least) {
			least = l
		}
		if r := 2*i + 2; r < n && d.less(r, least) {
			least = r
		}
		if least == i {
			return
		}
		d.swap(i, least)
		i = least
	}
}
