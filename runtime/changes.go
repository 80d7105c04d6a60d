package runtime

import (
	"errors"
	"fmt"
	"sync"
)

// watchers are the functions a toolkit calls after its tool set changed.
type watchers struct {
	mu   sync.Mutex
	next int
	fns  map[int]func()
}

// OnChange makes the toolkit call f after each Add or Remove that changed
// its tools, once per change, on the goroutine that made it, after the
// change is visible to Tools and Invoke. Transports that announce a tool
// list use it to follow the toolkit (MCP's notifications/tools/list_changed).
// f must not block for long; it may read the toolkit. stop ends the calls;
// it is safe to call more than once.
func (t *Toolkit) OnChange(f func()) (stop func()) {
	w := &t.watchers
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fns == nil {
		w.fns = map[int]func(){}
	}
	id := w.next
	w.next++
	w.fns[id] = f
	return func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		delete(w.fns, id)
	}
}

// changed calls the OnChange functions. t.mu must not be held.
func (t *Toolkit) changed() {
	w := &t.watchers
	w.mu.Lock()
	fns := make([]func(), 0, len(w.fns))
	for _, f := range w.fns {
		fns = append(fns, f)
	}
	w.mu.Unlock()
	for _, f := range fns {
		f()
	}
}

// Remove removes the named tools, so that a tool can be replaced (Remove,
// then Add) while the toolkit is served. It removes none of them and returns
// an error when a name is not in the toolkit. Calls already running finish;
// later calls of a removed tool fail with ErrUnknownTool.
func (t *Toolkit) Remove(names ...string) error {
	t.mu.Lock()
	var errs []error
	for _, name := range names {
		if t.tools[name].tool == nil {
			errs = append(errs, fmt.Errorf("toolkit %s: no tool %q to remove", t.name, name))
		}
	}
	if len(errs) > 0 || len(names) == 0 {
		t.mu.Unlock()
		return errors.Join(errs...)
	}
	for _, name := range names {
		delete(t.tools, name)
	}
	t.mu.Unlock()
	t.changed()
	return nil
}
