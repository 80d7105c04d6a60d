package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/atpgo/atp/server/store"
)

// A server with Config.NATSURL is one replica of a cluster. The replicas
// share the store (PostgreSQL) for everything durable and NATS for
// everything that crosses them:
//
//   - presence (cluster_presence.go): each replica announces on core NATS
//     which toolkits it holds WebSockets of, how many calls are in flight
//     on them, and its inbox polls; every replica keeps the others'
//     announcements in memory and forgets a replica it has not heard from
//     for Config.PresenceTTL;
//   - calls (cluster_route.go): the hub routes a call to a connection of
//     its own or forwards it to the replica holding one, by request-reply
//     on that replica's subject; the calls forwarded to a replica that
//     leaves NATS fail at once;
//   - inbox calls (cluster_inbox.go) wait in a JetStream work queue, from
//     which the replica the toolkit polls next takes them, claiming each
//     from the replica that routed it so it is delivered once;
//   - events (cluster_events.go): revoked keys, registered toolkits and
//     released inbox polls.
//
// Subjects, under Config.ClusterPrefix (P) and a replica's id (R):
//
//	P.call.R          calls forwarded to R (reply: P.reply.<origin>.<call id>)
//	P.reply.R.<id>    their answers
//	P.ping.R          R's liveness, probed while calls are in flight on R
//	P.claim.R         inbox claims and releases of R's calls
//	P.respond.R       inbox answers to R's calls, received by another replica
//	P.presence        announcements
//	P.revoked         revoked key ids
//	P.toolkit         registrations
//	P.release         inbox polls released by a toolkit shutting down
//	P.inbox.<toolkit> the JetStream stream P_inbox

// cluster is this replica's side of the cluster.
type cluster struct {
	s      *Server
	h      *hub
	log    *slog.Logger
	id     string // this replica's id: random, new at each start
	prefix string
	url    string // the NATS URL without its password, for logs
	nc     *nats.Conn
	js     jetstream.JetStream
	stream string // the inbox stream's name

	// This replica's subjects, and the shared ones.
	callSubj, replyPrefix, pingSubj, claimSubj, respondSubj string
	presenceSubj, revokedSubj, toolkitSubj, releaseSubj     string

	ttl, beat, probeEvery time.Duration

	connected atomic.Bool // to NATS, now
	leaving   atomic.Bool // shutting down: announces no more presence
	lastErr   atomic.Pointer[string]

	// ctx ends when the replica closes: it ends the inbox fetches.
	ctx    context.Context
	cancel context.CancelFunc

	kick     chan struct{} // asks the announcer for an announcement now
	events   chan func()   // registrations to apply, in order
	resync   atomic.Bool   // an event was dropped: reload everything
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup // every goroutine of the cluster's: close waits for them
	smu      sync.Mutex
	stopped  bool // no more goroutines (spawn)

	// The flushers of the call and reply subscriptions' goroutines (one
	// each, only they touch them): the WebSocket writes that a burst of
	// messages causes go out in one batch, as a read loop's do (sendVia).
	callFlush, replyFlush flusher
	callBatch, replyBatch int

	// Presence (cluster_presence.go).
	pmu   sync.Mutex
	peers map[string]*peer // the other replicas, by id
	seq   uint64           // of this replica's announcements
	view  atomic.Pointer[presenceView]

	// The inbox consumers made so far, by toolkit (cluster_inbox.go).
	cmu       sync.Mutex
	consumers map[toolkitRef]jetstream.Consumer

	probeTimeout, claimTimeout time.Duration
	maxPayload                 atomic.Int64 // NATS's max_payload

	// Figures for /metrics.
	stats                         clusterStats
	forwardLatency                histogram
	reconnects, disconnects, lost atomic.Int64
}

// clusterStats are the replica's counters at /metrics.
type clusterStats struct {
	routedLocal, routedReplica, routedInbox atomic.Int64 // calls from here, by where they went
	served                                  atomic.Int64 // calls other replicas forwarded here
	rerouted                                atomic.Int64 // forwarded calls sent again elsewhere
	replicaLost                             atomic.Int64 // calls failed because their replica went away
}

// errNoNATS is a call that needs NATS while this replica has lost it.
var errNoNATS = errors.New("this replica has lost its connection to NATS")

// routeError is a dispatch failure with its own reason and message.
type routeError struct{ reason, msg string }

func (e *routeError) Error() string { return e.msg }

// validClusterPrefix reports whether p can start subjects and stream names.
func validClusterPrefix(p string) error {
	if p == "" || len(p) > 32 {
		return fmt.Errorf("server: ClusterPrefix %q: want 1 to 32 letters, digits, '_' or '-'", p)
	}
	for _, r := range p {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return fmt.Errorf("server: ClusterPrefix %q: %q is not allowed (want letters, digits, '_' or '-')", p, r)
		}
	}
	return nil
}

// RedactNATSURL returns a NATS URL (or list) without its passwords and
// tokens, for logs and start-up lines.
func RedactNATSURL(raw string) string {
	parts := strings.Split(raw, ",")
	for i, p := range parts {
		p = strings.TrimSpace(p)
		u, err := url.Parse(p)
		if err != nil {
			parts[i] = "a NATS URL that does not parse"
			continue
		}
		if u.User != nil {
			if _, hasPass := u.User.Password(); hasPass {
				u.User = url.UserPassword(u.User.Username(), "xxxxx")
			} else {
				u.User = url.User("xxxxx") // a token
			}
		}
		parts[i] = u.String()
	}
	return strings.Join(parts, ",")
}

// newCluster connects this server to NATS and joins the cluster: it
// subscribes to its subjects, makes sure the inbox stream exists and
// announces itself. The hub must exist; calls may arrive as soon as it
// returns.
func newCluster(ctx context.Context, s *Server) (*cluster, error) {
	cfg := &s.cfg
	if err := validClusterPrefix(cfg.ClusterPrefix); err != nil {
		return nil, err
	}
	if cfg.Store == nil && !store.IsPostgres(cfg.DBPath) {
		// Replicas on SQLite files of their own would each have their own
		// keys and toolkits.
		return nil, fmt.Errorf("server: NATSURL is set, but the database is %s: the replicas of a cluster share one PostgreSQL database (a postgres:// URL)", store.Describe(cfg.DBPath))
	}
	if cfg.PresenceTTL < 30*time.Millisecond {
		return nil, fmt.Errorf("server: PresenceTTL is %s: it must be at least 30ms", cfg.PresenceTTL)
	}
	if cfg.ReplicaProbeInterval < time.Millisecond {
		return nil, fmt.Errorf("server: ReplicaProbeInterval is %s: it must be at least 1ms", cfg.ReplicaProbeInterval)
	}
	id := randomID(10)
	p := cfg.ClusterPrefix
	cl := &cluster{
		s: s, h: s.hub, id: id, prefix: p, url: RedactNATSURL(cfg.NATSURL),
		log:          s.log.With("replica", id),
		stream:       p + "_inbox",
		callSubj:     p + ".call." + id,
		replyPrefix:  p + ".reply." + id + ".",
		pingSubj:     p + ".ping." + id,
		claimSubj:    p + ".claim." + id,
		respondSubj:  p + ".respond." + id,
		presenceSubj: p + ".presence",
		revokedSubj:  p + ".revoked",
		toolkitSubj:  p + ".toolkit",
		releaseSubj:  p + ".release",
		ttl:          cfg.PresenceTTL,
		beat:         cfg.PresenceTTL / 3,
		probeEvery:   cfg.ReplicaProbeInterval,
		probeTimeout: max(time.Second, 4*cfg.ReplicaProbeInterval),
		claimTimeout: 5 * time.Second,
		kick:         make(chan struct{}, 1),
		events:       make(chan func(), 1024),
		stop:         make(chan struct{}),
		peers:        map[string]*peer{},
		consumers:    map[toolkitRef]jetstream.Consumer{},
		forwardLatency: newHistogram([]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1,
			2.5, 5, 10, 30, 60, 120}),
	}
	cl.view.Store(&presenceView{})
	cl.ctx, cl.cancel = context.WithCancel(context.Background())
	// The hub's request ids start with the replica's id: an inbox answer
	// that reaches another replica tells it where the call waits.
	s.hub.idPrefix = id + "-"
	s.hub.cluster = cl
	s.hub.forwarded = map[string]int{}

	nc, err := nats.Connect(cfg.NATSURL,
		nats.Name("atp serve "+id),
		nats.Timeout(5*time.Second),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500*time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		// Nothing is kept for later while NATS is away: a call or an
		// answer that cannot go now fails now (see forward, sendReply).
		nats.ReconnectBufSize(-1),
		// A NATS server gone without closing the connection is noticed
		// within about 15s (an abrupt stop closes it at once).
		nats.PingInterval(5*time.Second),
		nats.MaxPingsOutstanding(3),
		nats.DisconnectErrHandler(cl.onDisconnect),
		nats.ReconnectHandler(cl.onReconnect),
		nats.ErrorHandler(cl.onAsyncError),
	)
	if err != nil {
		cl.cancel()
		s.hub.cluster = nil
		return nil, fmt.Errorf("server: NATS at %s: %w", cl.url, err)
	}
	cl.nc = nc
	cl.maxPayload.Store(nc.MaxPayload())
	cl.connected.Store(true)
	fail := func(err error) (*cluster, error) {
		cl.cancel()
		nc.Close()
		s.hub.cluster = nil
		return nil, err
	}
	if cl.js, err = jetstream.New(nc); err != nil {
		return fail(fmt.Errorf("server: NATS at %s: %w", cl.url, err))
	}
	if err := cl.ensureStream(ctx); err != nil {
		return fail(err)
	}
	for subj, fn := range map[string]nats.MsgHandler{
		cl.callSubj:          cl.handleCall,
		cl.replyPrefix + "*": cl.handleReply,
		cl.pingSubj:          func(m *nats.Msg) { m.Respond(nil) },
		cl.claimSubj:         cl.handleClaim,
		cl.respondSubj:       cl.handleRespond,
		cl.presenceSubj:      cl.handlePresence,
		cl.revokedSubj:       cl.handleRevoked,
		cl.toolkitSubj:       cl.handleToolkit,
		cl.releaseSubj:       cl.handleRelease,
	} {
		if _, err := nc.Subscribe(subj, fn); err != nil {
			return fail(fmt.Errorf("server: NATS at %s: subscribe %s: %w", cl.url, subj, err))
		}
	}
	// The subscriptions are in place at the server before anyone learns
	// this replica exists.
	if err := nc.FlushTimeout(5 * time.Second); err != nil {
		return fail(fmt.Errorf("server: NATS at %s: %w", cl.url, err))
	}
	// Only now, subscribed, does a replica read the registered toolkits
	// (New leaves it to here): a registration announced from now on is in
	// what it reads or waits in cl.events behind it, never lost in between.
	kits, err := s.store.Toolkits(ctx)
	if err != nil {
		return fail(err)
	}
	s.registry.load(kits, s.log, cfg.schemaLimits())
	cl.wg.Add(3)
	go cl.announcer()
	go cl.prober()
	go cl.applyEvents()
	cl.publishPresence(true)
	cl.log.Info("joined the cluster", "nats", cl.url, "prefix", p)
	return cl, nil
}

// ensureStream creates the inbox work queue, or updates it to this
// replica's settings. It lives in memory: the calls in it are lost with
// their callers anyway, and a NATS restart (which empties it) fails them
// (see onDisconnect).
func (cl *cluster) ensureStream(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err := cl.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        cl.stream,
		Description: "atp serve: HTTP-inbox calls waiting for their toolkit's next poll",
		Subjects:    []string{cl.prefix + ".inbox.>"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.MemoryStorage,
		Discard:     jetstream.DiscardOld,
		// A call left in the queue is long over by then.
		MaxAge:   cl.s.cfg.MaxCallTimeout + cl.s.cfg.InboxOnlineWindow,
		Replicas: 1,
	})
	switch {
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount),
		errors.Is(err, nats.ErrNoResponders): // nothing answers JetStream's API
		return fmt.Errorf("server: NATS at %s has no JetStream (start nats-server with -js): the replicas share HTTP-inbox calls through a JetStream work queue: %w", cl.url, err)
	case err != nil:
		return fmt.Errorf("server: NATS at %s: inbox stream %s: %w", cl.url, cl.stream, err)
	}
	return nil
}

// onDisconnect runs when the connection to NATS drops. Every call that
// depends on it fails now: forwarded calls, whose answers NATS would have
// brought (core NATS keeps nothing for a subscriber that is away), and
// inbox calls, which wait in a stream on NATS.
func (cl *cluster) onDisconnect(_ *nats.Conn, err error) {
	if cl.leaving.Load() {
		return
	}
	cl.connected.Store(false)
	cl.disconnects.Add(1)
	msg := "disconnected"
	if err != nil {
		msg = err.Error()
	}
	cl.lastErr.Store(&msg)
	n := cl.h.failClusterCalls(func(c *call) string {
		if c.replica != "" {
			return fmt.Sprintf("this replica lost its connection to NATS while the call was on replica %s, which holds toolkit %q's connection; the call may or may not have run", c.replica, c.ref.Name)
		}
		return fmt.Sprintf("this replica lost its connection to NATS while the call waited for toolkit %q's inbox; the call may or may not have been delivered", c.ref.Name)
	})
	cl.lost.Add(int64(n))
	cl.log.Warn("lost the connection to NATS; reconnecting", "nats", cl.url, "err", err, "failed_calls", n)
}

// onReconnect runs when the connection is back: presence is announced
// again (asking the others for theirs), the stream is made again if NATS
// lost it, and the registry is reloaded from the store, as registrations
// may have been announced while this replica could not hear them.
func (cl *cluster) onReconnect(nc *nats.Conn) {
	cl.reconnects.Add(1)
	cl.maxPayload.Store(nc.MaxPayload())
	cl.cmu.Lock()
	clear(cl.consumers)
	cl.cmu.Unlock()
	cl.connected.Store(true)
	cl.log.Info("reconnected to NATS", "nats", cl.url)
	cl.spawn(func() {
		cl.publishPresence(true)
		cl.resync.Store(true)
		cl.queueEvent(func() {})
		// A NATS that has just restarted may answer before its JetStream
		// does.
		for attempt := 1; ; attempt++ {
			err := cl.ensureStream(cl.ctx)
			if err == nil || cl.ctx.Err() != nil {
				break
			}
			if attempt == 20 {
				cl.log.Error("re-creating the inbox stream failed; the next inbox poll tries again", "err", err)
				break
			}
			select {
			case <-time.After(250 * time.Millisecond):
			case <-cl.stop:
				return
			}
		}
	})
}

// spawn runs fn on a goroutine that close waits for, unless the replica is
// closing: NATS may still call a handler that spawns as it closes.
func (cl *cluster) spawn(fn func()) {
	cl.smu.Lock()
	defer cl.smu.Unlock()
	if cl.stopped {
		return
	}
	cl.wg.Add(1)
	go func() {
		defer cl.wg.Done()
		fn()
	}()
}

func (cl *cluster) onAsyncError(_ *nats.Conn, sub *nats.Subscription, err error) {
	subj := ""
	if sub != nil {
		subj = sub.Subject
	}
	cl.log.Warn("NATS reported an error", "subject", subj, "err", err)
}

// leave announces that this replica is going: the others stop routing to
// it at once. The calls it holds are failed by the hub's close, and their
// failures still go back to the replicas waiting for them.
func (cl *cluster) leave() {
	if cl.leaving.Swap(true) {
		return
	}
	cl.publishLeaving()
}

// close leaves the cluster and closes the NATS connection, after the
// answers already published have gone out.
func (cl *cluster) close() {
	cl.leave()
	cl.stopOnce.Do(func() { close(cl.stop) })
	cl.cancel()
	cl.smu.Lock()
	cl.stopped = true
	cl.smu.Unlock()
	if cl.nc.IsConnected() {
		cl.nc.FlushTimeout(time.Second)
	}
	cl.nc.Close()
	cl.wg.Wait()
}

// ReplicaID is this server's id as a replica of a cluster, new at each
// start; "" without Config.NATSURL.
func (s *Server) ReplicaID() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.id
}

// health is /healthz's view of NATS: nil when this replica is connected.
func (cl *cluster) health() error {
	if cl.connected.Load() && cl.nc.IsConnected() {
		return nil
	}
	if p := cl.lastErr.Load(); p != nil {
		return fmt.Errorf("NATS at %s: %s", cl.url, *p)
	}
	return fmt.Errorf("NATS at %s: %s", cl.url, strings.ToLower(cl.nc.Status().String()))
}

// replicas is how many replicas this one knows of, itself included.
func (cl *cluster) replicas() int {
	cl.pmu.Lock()
	defer cl.pmu.Unlock()
	return len(cl.peers) + 1
}

// writeMetrics writes the replica's figures at /metrics.
func (cl *cluster) writeMetrics(w io.Writer) {
	st := &cl.stats
	writeCounterSet(w, "atp_cluster_calls_routed_total",
		"Tool calls routed from this replica, by where they went: a connection of this replica, one of another replica, or the replicas' shared inbox queue.",
		"route", map[string]int64{"local": st.routedLocal.Load(), "replica": st.routedReplica.Load(), "inbox": st.routedInbox.Load()})
	writeCounter(w, "atp_cluster_calls_served_total", "Tool calls other replicas forwarded to this replica's connections.", st.served.Load())
	writeCounter(w, "atp_cluster_calls_rerouted_total", "Forwarded calls sent to another replica because the first had left or no longer held the toolkit.", st.rerouted.Load())
	writeCounter(w, "atp_cluster_calls_lost_total", "Calls failed because the replica holding their toolkit went away, or this replica lost NATS.", st.replicaLost.Load()+cl.lost.Load())
	writeHistogram(w, "atp_cluster_forward_seconds", "Time from forwarding a call to another replica to its answer: the NATS round trip plus the tool.", &cl.forwardLatency)
	connected := 0
	if cl.connected.Load() {
		connected = 1
	}
	writeGauge(w, "atp_nats_connected", "1 while this replica is connected to NATS.", connected)
	writeCounter(w, "atp_nats_disconnects_total", "Times this replica lost its connection to NATS.", cl.disconnects.Load())
	writeGauge(w, "atp_cluster_replicas", "Replicas this one knows of, itself included.", cl.replicas())
}

func writeCounter(w io.Writer, name, help string, v int64) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", name, help, name, name, v)
}

func writeHistogram(w io.Writer, name, help string, h *histogram) {
	fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name)
	var cum int64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{le=%q} %d\n", name, strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(w, "%s_bucket{le=\"+Inf\"} %d\n%s_sum %s\n%s_count %d\n", name, cum, name, formatFloat(float64(h.sumNs.Load())/1e9), name, cum)
}
