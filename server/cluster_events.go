package server

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/atpgo/atp/server/store"
)

// Events every replica must hear of:
//
//   - a key revoked: its sessions end on every replica at once (the
//     store's revoked-key count, polled every RevocationCheckInterval,
//     stays the fallback for a message lost while a replica was away from
//     NATS);
//   - a toolkit registered: every replica reloads it from the store (only
//     the tool, for a register_tool of one) and binds the key's WebSockets
//     waiting unbound (after a reconnection to NATS, and once subscribed
//     at start, a replica reloads them all);
//   - an inbox release: a toolkit shutting down ends its polls held on
//     every replica.

// toolkitEvent is a registration, or an inbox release, on one replica.
type toolkitEvent struct {
	Origin string `json:"origin"`
	Owner  string `json:"owner"`
	Name   string `json:"name"`
	KeyID  string `json:"key_id,omitempty"`
	// Tool names the one tool a register_tool added or replaced; empty
	// when the whole toolkit may have changed (a declaration prunes).
	Tool string `json:"tool,omitempty"`
}

// publishRevoked tells the other replicas a key was revoked.
func (cl *cluster) publishRevoked(id string) {
	if err := cl.nc.Publish(cl.revokedSubj, []byte(cl.id+" "+id)); err != nil {
		cl.log.Warn("could not announce a revoked key; the other replicas see it in the store within --revocation-check", "key_id", id, "err", err)
	}
}

func (cl *cluster) handleRevoked(m *nats.Msg) {
	origin, id, ok := strings.Cut(string(m.Data), " ")
	if !ok || origin == cl.id || id == "" {
		return
	}
	// Not on NATS's goroutine: ending a session writes a close frame.
	cl.spawn(func() { cl.s.endKey(id) })
}

// toolkitChanged tells the other replicas a toolkit was registered, by
// key keyID: its tool named tool, or all of it when tool is empty.
func (cl *cluster) toolkitChanged(ref toolkitRef, keyID, tool string) {
	data, _ := json.Marshal(toolkitEvent{Origin: cl.id, Owner: ref.Owner, Name: ref.Name, KeyID: keyID, Tool: tool})
	if err := cl.nc.Publish(cl.toolkitSubj, data); err != nil {
		cl.log.Warn("could not announce a registration; the other replicas reload their toolkits when they reconnect to NATS", "toolkit", ref.Name, "err", err)
	}
}

func (cl *cluster) handleToolkit(m *nats.Msg) {
	var ev toolkitEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Origin == "" {
		cl.log.Warn("ignored a malformed toolkit event on NATS", "err", err)
		return
	}
	if ev.Origin == cl.id {
		return
	}
	cl.queueEvent(func() { cl.reloadToolkit(toolkitRef{ev.Owner, ev.Name}, ev.KeyID, ev.Tool, 0) })
}

// publishRelease tells the other replicas that a toolkit shutting down
// released its inbox polls (hub.release): its held poll may be on any of
// them.
func (cl *cluster) publishRelease(ref toolkitRef, keyID string) {
	data, _ := json.Marshal(toolkitEvent{Origin: cl.id, Owner: ref.Owner, Name: ref.Name, KeyID: keyID})
	if err := cl.nc.Publish(cl.releaseSubj, data); err != nil {
		cl.log.Warn("could not announce an inbox release; a poll held by another replica ends at its wait", "toolkit", ref.Name, "err", err)
	}
}

func (cl *cluster) handleRelease(m *nats.Msg) {
	var ev toolkitEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil || ev.Origin == "" || ev.KeyID == "" {
		return
	}
	if ev.Origin != cl.id {
		cl.h.release(toolkitRef{ev.Owner, ev.Name}, ev.KeyID)
	}
}

// queueEvent hands fn to the event goroutine, which applies registrations
// one at a time, in order. When too many wait, the registry is reloaded
// whole instead.
func (cl *cluster) queueEvent(fn func()) {
	select {
	case cl.events <- fn:
	default:
		cl.resync.Store(true)
	}
}

func (cl *cluster) applyEvents() {
	defer cl.wg.Done()
	for {
		select {
		case <-cl.stop:
			return
		case fn := <-cl.events:
			if cl.resync.Swap(false) {
				cl.reloadAll()
			}
			fn()
		}
	}
}

// reloadToolkit reads a toolkit again from the store into the registry
// (only its tool named tool when that is not empty: the registry has the
// others, from its load and the events since) and binds keyID's waiting
// connections to it. A store that does not answer is asked again, a few
// times.
func (cl *cluster) reloadToolkit(ref toolkitRef, keyID, tool string, attempt int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if cl.s.registry.get(ref) == nil {
		// A toolkit this replica has not loaded, new since its start:
		// read it whole, in case some of its registrations came before
		// this replica was subscribed.
		tool = ""
	}
	var tk store.Toolkit
	var err error
	if tool != "" {
		tk, err = cl.s.store.ToolkitTool(ctx, ref.Owner, ref.Name, tool)
	} else {
		tk, err = cl.s.store.Toolkit(ctx, ref.Owner, ref.Name)
	}
	if errors.Is(err, store.ErrToolkitNotFound) {
		return
	}
	if err != nil {
		if attempt < 10 {
			cl.log.Warn("reloading a toolkit from the store failed; trying again", "toolkit", ref.Name, "err", err)
			time.AfterFunc(time.Second, func() {
				cl.queueEvent(func() { cl.reloadToolkit(ref, keyID, tool, attempt+1) })
			})
		} else {
			cl.log.Error("reloading a toolkit from the store failed; it is reloaded at the next reconnection to NATS", "toolkit", ref.Name, "err", err)
		}
		return
	}
	switch {
	case tool == "":
		cl.s.registry.loadOne(tk, cl.s.log, cl.s.cfg.schemaLimits())
	case len(tk.Tools) == 1:
		cl.s.registry.put(ref, tk.Hash, tk.Language, storedToolEntry(tk.Tools[0], cl.s.log, ref, cl.s.cfg.schemaLimits()))
	}
	// No such tool: a declaration pruned it since, and its own event
	// reloads the toolkit whole.
	if keyID != "" {
		cl.h.bind(keyID, ref)
	}
}

// reloadAll reloads every toolkit, and binds the waiting connections of
// keys that were bound meanwhile.
func (cl *cluster) reloadAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	kits, err := cl.s.store.Toolkits(ctx)
	if err != nil {
		cl.log.Error("reloading the toolkits from the store failed", "err", err)
		cl.resync.Store(true)
		return
	}
	cl.s.registry.load(kits, cl.s.log, cl.s.cfg.schemaLimits())
	for _, id := range cl.h.unboundKeys() {
		k, err := cl.s.store.KeyByID(ctx, id)
		if err == nil && k.Toolkit != "" {
			cl.h.bind(id, toolkitRef{k.Owner, k.Toolkit})
		}
	}
}

// unboundKeys are the keys with connections waiting for a binding.
func (h *hub) unboundKeys() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	ids := make([]string, 0, len(h.unbound))
	for id := range h.unbound {
		ids = append(ids, id)
	}
	return ids
}
