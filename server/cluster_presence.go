package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Presence: which replica holds which toolkit's connections and inbox
// polls. Each replica announces its own on core NATS every PresenceTTL/3,
// at once when a connection comes or goes or a toolkit starts polling, and
// when a replica joins and asks (hello). The others keep the last
// announcement of each replica in memory and forget a replica they have
// not heard from for PresenceTTL, or that answers no probe (prober), or
// that said it is leaving.
//
// Heartbeats in memory rather than a JetStream key-value bucket: the hub
// reads presence on every call, so it must be in memory anyway; expiry is
// measured on the reader's own clock, so replicas' clocks need not agree;
// nothing is written to NATS's storage every second; and a NATS restart
// loses nothing that the next announcement does not bring back.

// presenceMsg is one announcement. A large one is sent in parts (Part of
// Parts, same Seq), each under NATS's max_payload.
type presenceMsg struct {
	Replica  string          `json:"replica"`
	Seq      uint64          `json:"seq"`
	Part     int             `json:"part,omitempty"`
	Parts    int             `json:"parts,omitempty"`
	Hello    bool            `json:"hello,omitempty"`   // the sender asks everyone to announce now
	Leaving  bool            `json:"leaving,omitempty"` // the sender is shutting down
	Toolkits []presenceEntry `json:"toolkits,omitempty"`
}

// presenceEntry is one toolkit a replica holds.
type presenceEntry struct {
	Owner    string `json:"o"`
	Name     string `json:"n"`
	Conns    int    `json:"c,omitempty"` // WebSocket connections
	InFlight int    `json:"f,omitempty"` // calls in flight on them
	Polls    int    `json:"p,omitempty"` // inbox polls waiting
	// PollAge is 1 + how many milliseconds ago the last inbox poll
	// started or ended, 0 when none did within the inbox lease. An age,
	// not a time: replicas' clocks need not agree.
	PollAge int64 `json:"a,omitempty"`
}

// peer is another replica as this one last heard of it.
type peer struct {
	id       string
	callSubj string
	seen     time.Time // when its last message came, on this replica's clock
	entries  []presenceEntry
	at       time.Time // when entries came
	// Parts of an announcement still coming.
	partSeq uint64
	parts   [][]presenceEntry
	have    []bool
	got     int
}

// presenceView is what the hub reads on every call: built anew on every
// change, never changed once published.
type presenceView struct {
	holders map[toolkitRef][]holder
	polls   map[toolkitRef]pollState
}

// holder is a replica holding connections of a toolkit.
type holder struct {
	replica  string
	callSubj string
	conns    int
	inFlight int
}

// pollState is the inbox polls of a toolkit on the other replicas.
type pollState struct {
	waiting int
	last    time.Time // on this replica's clock
}

func (cl *cluster) holders(ref toolkitRef) []holder { return cl.view.Load().holders[ref] }

// remoteInbox reports whether a toolkit's inbox is online on another
// replica (a poll waiting there, or one within the inbox lease), and the
// time of its last poll there.
func (cl *cluster) remoteInbox(ref toolkitRef, window time.Duration, now time.Time) (online bool, last time.Time) {
	p, ok := cl.view.Load().polls[ref]
	if !ok {
		return false, time.Time{}
	}
	return p.waiting > 0 || (!p.last.IsZero() && now.Sub(p.last) < window), p.last
}

// kickPresence asks the announcer for an announcement now. It never
// blocks: kicks that come while one is due are one.
func (cl *cluster) kickPresence() {
	select {
	case cl.kick <- struct{}{}:
	default:
	}
}

// announcer announces this replica's presence every beat and when
// kicked, and forgets replicas not heard from for the TTL.
func (cl *cluster) announcer() {
	defer cl.wg.Done()
	t := time.NewTicker(cl.beat)
	defer t.Stop()
	// After an announcement made for a kick, the next waits a little: a
	// reconnect storm of toolkits costs a few announcements, not one
	// each.
	const gap = 5 * time.Millisecond
	kick := cl.kick
	var cool <-chan time.Time
	for {
		select {
		case <-cl.stop:
			return
		case <-t.C:
			cl.expire()
			cl.publishPresence(false)
		case <-kick:
			cl.publishPresence(false)
			kick, cool = nil, time.After(gap)
		case <-cool:
			kick, cool = cl.kick, nil
		}
	}
}

// publishPresence announces what this replica holds; hello asks every
// other replica to announce itself at once.
func (cl *cluster) publishPresence(hello bool) {
	if cl.leaving.Load() || !cl.connected.Load() {
		return
	}
	entries := cl.h.presence(cl.h.now())
	cl.pmu.Lock()
	cl.seq++
	seq := cl.seq
	cl.pmu.Unlock()
	// Parts of at most a quarter of max_payload: an entry is at most a few
	// hundred bytes (owner and toolkit names are bounded).
	limit := max(int(cl.maxPayload.Load()/4), 1024)
	var parts [][]byte
	for start := 0; ; {
		n := len(entries) - start
		var data []byte
		for {
			m := presenceMsg{Replica: cl.id, Seq: seq, Hello: hello, Toolkits: entries[start : start+n]}
			data, _ = json.Marshal(m)
			if len(data) <= limit || n <= 1 {
				break
			}
			n /= 2
		}
		parts = append(parts, data)
		start += n
		if start >= len(entries) {
			break
		}
	}
	if len(parts) > 1 {
		// Encode again with the part numbers: rare, so simple.
		for i := range parts {
			var m presenceMsg
			json.Unmarshal(parts[i], &m)
			m.Part, m.Parts = i, len(parts)
			parts[i], _ = json.Marshal(m)
		}
	}
	for _, p := range parts {
		if err := cl.nc.Publish(cl.presenceSubj, p); err != nil {
			if !errors.Is(err, nats.ErrReconnectBufExceeded) && !errors.Is(err, nats.ErrConnectionClosed) {
				cl.log.Warn("announcing presence failed", "err", err)
			}
			return
		}
	}
}

// publishLeaving tells the others this replica is going.
func (cl *cluster) publishLeaving() {
	if !cl.nc.IsConnected() {
		return
	}
	data, _ := json.Marshal(presenceMsg{Replica: cl.id, Leaving: true})
	cl.nc.Publish(cl.presenceSubj, data)
	cl.nc.FlushTimeout(time.Second)
}

// handlePresence takes another replica's announcement.
func (cl *cluster) handlePresence(m *nats.Msg) {
	var pm presenceMsg
	if err := json.Unmarshal(m.Data, &pm); err != nil || pm.Replica == "" {
		cl.log.Warn("ignored a malformed presence message on NATS", "err", err)
		return
	}
	if pm.Replica == cl.id {
		return
	}
	if pm.Hello {
		cl.kickPresence()
	}
	now := cl.h.now()
	cl.pmu.Lock()
	defer cl.pmu.Unlock()
	if pm.Leaving {
		if _, ok := cl.peers[pm.Replica]; ok {
			delete(cl.peers, pm.Replica)
			cl.rebuildLocked()
			cl.log.Info("replica left the cluster", "peer", pm.Replica)
		}
		return
	}
	p := cl.peers[pm.Replica]
	if p == nil {
		p = &peer{id: pm.Replica, callSubj: cl.prefix + ".call." + pm.Replica}
		cl.peers[pm.Replica] = p
		cl.log.Info("replica joined the cluster", "peer", pm.Replica)
	}
	p.seen = now
	if pm.Parts <= 1 {
		p.entries, p.at = pm.Toolkits, now
		p.parts, p.have, p.got = nil, nil, 0
		cl.rebuildLocked()
		return
	}
	if pm.Part < 0 || pm.Part >= pm.Parts || pm.Parts > 4096 {
		return
	}
	if p.partSeq != pm.Seq || len(p.parts) != pm.Parts {
		p.partSeq, p.parts, p.have, p.got = pm.Seq, make([][]presenceEntry, pm.Parts), make([]bool, pm.Parts), 0
	}
	if !p.have[pm.Part] {
		p.have[pm.Part] = true
		p.got++
	}
	p.parts[pm.Part] = pm.Toolkits
	if p.got == pm.Parts {
		p.entries = slices.Concat(p.parts...)
		p.at, p.parts, p.have, p.got = now, nil, nil, 0
		cl.rebuildLocked()
	}
}

// rebuildLocked publishes a new view from the peers. cl.pmu is held.
func (cl *cluster) rebuildLocked() {
	v := &presenceView{holders: map[toolkitRef][]holder{}, polls: map[toolkitRef]pollState{}}
	ids := make([]string, 0, len(cl.peers))
	for id := range cl.peers {
		ids = append(ids, id)
	}
	slices.Sort(ids) // the same order on every rebuild: fair rotation
	for _, id := range ids {
		p := cl.peers[id]
		for _, e := range p.entries {
			ref := toolkitRef{e.Owner, e.Name}
			if e.Conns > 0 {
				v.holders[ref] = append(v.holders[ref], holder{replica: id, callSubj: p.callSubj, conns: e.Conns, inFlight: e.InFlight})
			}
			if e.Polls > 0 || e.PollAge > 0 {
				ps := v.polls[ref]
				ps.waiting += e.Polls
				if e.PollAge > 0 {
					if last := p.at.Add(-time.Duration(e.PollAge-1) * time.Millisecond); last.After(ps.last) {
						ps.last = last
					}
				}
				v.polls[ref] = ps
			}
		}
	}
	cl.view.Store(v)
}

// expire forgets the replicas not heard from for the TTL, and fails the
// calls in flight on them.
func (cl *cluster) expire() {
	now := cl.h.now()
	var gone []string
	cl.pmu.Lock()
	for id, p := range cl.peers {
		if now.Sub(p.seen) >= cl.ttl {
			delete(cl.peers, id)
			gone = append(gone, id)
		}
	}
	if len(gone) > 0 {
		cl.rebuildLocked()
	}
	cl.pmu.Unlock()
	for _, id := range gone {
		cl.replicaGone(id, fmt.Sprintf("has not announced itself for %s (--presence-ttl)", cl.ttl), false)
	}
}

// forget drops a replica from the view, reporting whether it was there.
func (cl *cluster) forget(id string) bool {
	cl.pmu.Lock()
	defer cl.pmu.Unlock()
	if _, ok := cl.peers[id]; !ok {
		return false
	}
	delete(cl.peers, id)
	cl.rebuildLocked()
	return true
}

// replicaGone fails the calls in flight on a replica that went away.
// forget says whether it must still be dropped from the view.
func (cl *cluster) replicaGone(id, why string, forget bool) {
	if forget {
		cl.forget(id)
	}
	n := cl.h.failForwarded(id, func(c *call) string {
		return fmt.Sprintf("replica %s, which held toolkit %q's connection, %s while the call was in flight there; the call may or may not have run", id, c.ref.Name, why)
	})
	cl.stats.replicaLost.Add(int64(n))
	cl.log.Warn("replica gone", "peer", id, "why", why, "failed_calls", n)
}

// prober checks, every ReplicaProbeInterval, that the replicas with calls
// of this one in flight are still on NATS. A replica's process or machine
// that dies takes its NATS connection, and with it its subscriptions:
// NATS then answers a request to it at once with "no responders". A
// replica that is merely slow to answer is left alone; PresenceTTL judges
// it.
func (cl *cluster) prober() {
	defer cl.wg.Done()
	t := time.NewTicker(cl.probeEvery)
	defer t.Stop()
	for {
		select {
		case <-cl.stop:
			return
		case <-t.C:
		}
		if !cl.connected.Load() {
			continue
		}
		targets := cl.h.forwardTargets()
		if len(targets) == 0 {
			continue
		}
		var wg sync.WaitGroup
		for _, id := range targets {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := cl.nc.Request(cl.prefix+".ping."+id, nil, cl.probeTimeout)
				if errors.Is(err, nats.ErrNoResponders) {
					cl.replicaGone(id, "left NATS (it answers no probe)", true)
				}
			}()
		}
		wg.Wait()
	}
}
