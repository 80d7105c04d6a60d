package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Revocation. A revoked key's WebSockets close (1008) and its inbox polls
// end (401) at once, and the calls its inbox polls had taken fail. Every
// source of "this key is revoked" ends in Server.endKey:
//
//   - Server.RevokeKey, in this process: at once;
//   - the store, written by another process (atp keys revoke): the
//     revocations watcher compares the store's count of revoked keys every
//     Config.RevocationCheckInterval (one cheap query) and, when it moved,
//     ends the keys it has not ended yet;
//   - on a replica of a cluster, a message on NATS (cluster_events.go),
//     published by the replica that revoked, or that first saw the
//     revocation in the store.

// revocations watches the store for keys revoked by other processes.
type revocations struct {
	s        *Server
	stopOnce sync.Once
	stopCh   chan struct{}
	done     chan struct{}

	mu    sync.Mutex
	count int             // revoked keys in the store at the last look
	ended map[string]bool // keys endKey has run for
}

func (s *Server) watchRevocations(ctx context.Context) (*revocations, error) {
	n, err := s.store.RevokedKeyCount(ctx)
	if err != nil {
		return nil, err
	}
	rv := &revocations{s: s, stopCh: make(chan struct{}), done: make(chan struct{}), count: n, ended: map[string]bool{}}
	if s.cfg.NATSURL != "" && n > 0 {
		// Keys revoked before the start hold nothing here. Counted as
		// ended, they are not announced to the other replicas (check) as
		// if they had just been revoked.
		ids, err := s.store.RevokedKeyIDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			rv.ended[id] = true
		}
	}
	go rv.run()
	return rv, nil
}

func (rv *revocations) run() {
	defer close(rv.done)
	t := time.NewTicker(rv.s.cfg.RevocationCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-rv.stopCh:
			return
		case <-t.C:
		}
		if err := rv.check(); err != nil {
			rv.s.log.Warn("checking the store for revoked keys failed", "err", err)
		}
	}
}

// check ends the keys revoked since the last look.
func (rv *revocations) check() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, err := rv.s.store.RevokedKeyCount(ctx)
	if err != nil {
		return err
	}
	rv.mu.Lock()
	changed := n != rv.count
	rv.mu.Unlock()
	if !changed {
		return nil
	}
	ids, err := rv.s.store.RevokedKeyIDs(ctx)
	if err != nil {
		return err
	}
	rv.mu.Lock()
	rv.count = n
	rv.mu.Unlock()
	for _, id := range ids {
		if !rv.isEnded(id) && rv.s.cluster != nil {
			// Revoked by another process: the replicas whose own look
			// comes later hear of it now.
			rv.s.cluster.publishRevoked(id)
		}
		rv.s.endKey(id)
	}
	return nil
}

// isEnded reports whether endKey has run for id.
func (rv *revocations) isEnded(id string) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return rv.ended[id]
}

// markEnded records id, reporting whether it was new.
func (rv *revocations) markEnded(id string) bool {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.ended[id] {
		return false
	}
	rv.ended[id] = true
	return true
}

func (rv *revocations) stop() {
	rv.stopOnce.Do(func() { close(rv.stopCh) })
	<-rv.done
}

// RevokeKey revokes the key with the given id in the store and ends its
// sessions at once: its WebSockets close with 1008, its inbox polls get
// 401, and calls its inbox polls had taken fail. Revoking a revoked key is
// not an error.
func (s *Server) RevokeKey(ctx context.Context, id string) error {
	if err := s.store.RevokeKey(ctx, id); err != nil {
		return err
	}
	s.endKey(id)
	if s.cluster != nil {
		s.cluster.publishRevoked(id)
	}
	return nil
}

// endKey ends what a revoked key holds open. It runs once per key.
func (s *Server) endKey(id string) {
	if !s.revocations.markEnded(id) {
		return
	}
	s.mu.Lock()
	var sessions []liveConn
	for c := range s.live {
		if c.sessionKeyID() == id {
			sessions = append(sessions, c)
		}
	}
	s.mu.Unlock()
	for _, c := range sessions {
		c.revoke()
	}
	calls := s.hub.revokeKey(id)
	if len(calls) > 0 {
		fail(calls, "the toolkit's API key was revoked while the call was in flight", reasonDisconnected)
	}
	if len(sessions) > 0 || len(calls) > 0 {
		s.log.Info("API key revoked: sessions ended", "key_id", id, "websockets", len(sessions), "failed_calls", len(calls))
	}
}

// keyRevoked reports whether endKey has run for id: a poll that ends after
// its key was revoked answers 401 rather than an empty inbox.
func (s *Server) keyRevoked(id string) bool { return s.revocations.isEnded(id) }

// errRevoked is why a revoked key's session closed.
var errRevoked = errors.New("API key revoked")

// sessionKeyID is the session's key id, "" before it authenticated.
func (c *wsSession) sessionKeyID() string {
	if id := c.keyID.Load(); id != nil {
		return *id
	}
	return ""
}

// revoke closes the session of a revoked key with 1008.
func (c *wsSession) revoke() {
	c.closeWith(websocket.ClosePolicyViolation, "API key has been revoked", errRevoked)
}

// revokedOnAuth is the revocation check for a session whose key
// authenticated just as it was revoked: endKey may have run before the
// session was tracked. It closes the session and reports true then.
func (s *Server) revokedOnAuth(c liveConn) bool {
	if id := c.sessionKeyID(); id != "" && s.keyRevoked(id) {
		c.revoke()
		return true
	}
	return false
}
