package server

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/atpgo/atp/server/store"
)

// Webhooks tell a developer's backend when an end user's connection is made
// or fails, so that it need not poll oauth/tokens. Each delivery is a JSON
// POST:
//
//	{"id":"evt_...","event":"connection_success","created_at":"<RFC 3339>",
//	 "data":{"platform_id","external_user_id","integration_id","external_user_email","scope"}}
//
// connection_failed carries data {"platform_id","external_user_id","error",
// "error_description"} (and "integration_id" when a working connection
// broke). No token is ever part of one. Headers:
//
//	X-ATP-Event: connection_success
//	X-ATP-Delivery: evt_...          (the same for every retry of one event)
//	X-ATP-Attempt: 1
//	X-ATP-Timestamp: <unix seconds>
//	X-ATP-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
//
// where secret is the one webhooks/register returned. A 2xx answer ends the
// delivery; a network error, 408, 429 or 5xx is retried with exponential
// backoff (Config.WebhookBackoff doubling, at most 5 minutes apart, up to
// Config.WebhookMaxAttempts attempts); any other status ends it.
// Deliveries wait in the store's outbox (store.WebhookEvent), written with
// the change that caused them, and a worker in every server works through
// it (webhookSender): the OAuth callback never waits for one, a stop or a
// crash loses none (the next start goes on with them), and servers sharing
// a database never post one delivery at once. A delivery's record is kept
// for Config.WebhookRetention after it succeeded or was given up.

const (
	eventConnectionSuccess = "connection_success"
	eventConnectionFailed  = "connection_failed"
)

var webhookEvents = []string{eventConnectionFailed, eventConnectionSuccess}

const (
	webhookWorkers    = 4 // attempts in flight per server
	webhookTimeout    = 10 * time.Second
	webhookMaxBackoff = 5 * time.Minute
	maxWebhookURL     = 2048
)

// SignWebhook returns the X-ATP-Signature value of a delivery.
func SignWebhook(secret string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(strconv.AppendInt(nil, timestamp, 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// VerifyWebhook checks a delivery received with header and body: its
// signature under secret, and that its timestamp is within tolerance of
// now (which stops the replay of an old delivery).
func VerifyWebhook(secret string, header http.Header, body []byte, now time.Time, tolerance time.Duration) error {
	ts, err := strconv.ParseInt(header.Get("X-ATP-Timestamp"), 10, 64)
	if err != nil {
		return fmt.Errorf("X-ATP-Timestamp: expected unix seconds, got %q", header.Get("X-ATP-Timestamp"))
	}
	if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("X-ATP-Timestamp: %s away from now, more than the %s allowed", d.Abs().Round(time.Second), tolerance)
	}
	want := SignWebhook(secret, ts, body)
	if !hmac.Equal([]byte(header.Get("X-ATP-Signature")), []byte(want)) {
		return errors.New("X-ATP-Signature: does not match the body")
	}
	return nil
}

// ---- endpoints ----

type webhookJSON struct {
	WebhookID string    `json:"webhook_id"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Secret    string    `json:"secret,omitempty"` // at registration only
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) handleWebhookRegister(w http.ResponseWriter, r *http.Request) {
	var req struct {
		URL    string   `json:"url"`
		Events []string `json:"events"`
		APIKey string   `json:"api_key"`
	}
	key, ok := s.keyedBody(w, r, store.KindLLM, llmSchemes, into(&req), func() string { return req.APIKey })
	if !ok || !s.brokerOn(w) {
		return
	}
	if err := checkWebhookURL(req.URL, s.cfg.AllowPrivateWebhooks); err != nil {
		writeError(w, http.StatusBadRequest, "url: "+err.Error())
		return
	}
	events := req.Events
	if events == nil {
		events = []string{eventConnectionSuccess} // the Python SDK's default
	}
	if len(events) == 0 {
		writeError(w, http.StatusBadRequest, "events: empty: expected one or more of "+strings.Join(webhookEvents, ", "))
		return
	}
	for i, e := range events {
		if !slices.Contains(webhookEvents, e) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("events[%d]: unknown event %q: expected %s", i, e, strings.Join(webhookEvents, " or ")))
			return
		}
	}
	wh, err := s.oauth.vault.CreateWebhook(r.Context(), key.Owner, req.URL, events)
	switch {
	case errors.Is(err, store.ErrTooManyWebhooks):
		writeError(w, http.StatusConflict, err.Error())
		return
	case err != nil:
		s.log.Error("saving a webhook failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error saving the webhook")
		return
	}
	s.log.Info("webhook registered", "owner", key.Owner, "webhook_id", wh.ID, "events", strings.Join(wh.Events, ","))
	writeJSON(w, http.StatusOK, webhookJSON{WebhookID: wh.ID, URL: wh.URL, Events: wh.Events, Secret: wh.Secret, CreatedAt: wh.CreatedAt})
}

// checkWebhookURL checks a webhook URL at registration: an absolute http(s)
// URL, and unless allowPrivate, not to a literal address that deliveries
// would refuse (see webhook_dial.go).
func checkWebhookURL(raw string, allowPrivate bool) error {
	if raw == "" {
		return errors.New("missing: the URL to POST events to")
	}
	if len(raw) > maxWebhookURL {
		return fmt.Errorf("%d bytes long: at most %d are allowed", len(raw), maxWebhookURL)
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return fmt.Errorf("expected an absolute http(s) URL, got %q", raw)
	}
	if allowPrivate {
		return nil
	}
	if err := checkWebhookHost(u.Hostname()); err != nil {
		if errors.Is(err, errPrivateDestination) {
			return fmt.Errorf("%w: %s", err, privateHint)
		}
		return err
	}
	return nil
}

func (s *Server) handleWebhookList(w http.ResponseWriter, r *http.Request) {
	key, ok := s.llmKey(w, r, "")
	if !ok {
		return
	}
	hooks, err := s.store.WebhookList(r.Context(), key.Owner)
	if err != nil {
		s.log.Error("listing webhooks failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error listing webhooks")
		return
	}
	out := make([]webhookJSON, len(hooks))
	for i, h := range hooks {
		out[i] = webhookJSON{WebhookID: h.ID, URL: h.URL, Events: h.Events, CreatedAt: h.CreatedAt}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleWebhookDelete(w http.ResponseWriter, r *http.Request) {
	key, ok := s.llmKey(w, r, "")
	if !ok {
		return
	}
	id := r.PathValue("id")
	err := s.store.DeleteWebhook(r.Context(), key.Owner, id)
	switch {
	case errors.Is(err, store.ErrWebhookNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("no webhook %q", id))
		return
	case err != nil:
		s.log.Error("deleting a webhook failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error deleting the webhook")
		return
	}
	s.log.Info("webhook deleted", "owner", key.Owner, "webhook_id", id)
	writeJSON(w, http.StatusOK, map[string]any{"webhook_id": id, "deleted": true})
}

// ---- delivery ----

type webhookPayload struct {
	ID        string         `json:"id"`
	Event     string         `json:"event"`
	CreatedAt time.Time      `json:"created_at"`
	Data      map[string]any `json:"data"`
}

// newEvent makes an event of owner's for the store's outbox.
func (b *broker) newEvent(owner, event string, data map[string]any) store.WebhookEvent {
	now := b.clock.Now().UTC()
	id := "evt_" + randomID(24)
	// A map of strings always encodes.
	body, _ := json.Marshal(webhookPayload{ID: id, Event: event, CreatedAt: now, Data: data})
	return store.WebhookEvent{ID: id, Name: event, Owner: owner, Body: body, CreatedAt: now}
}

// emit queues an event for each of the owner's webhooks that want it, in
// the store's outbox; a worker delivers it (webhookSender). Events that
// follow a change to the store are queued in the change's transaction
// instead (SaveConnection, MarkConnectionBroken).
func (b *broker) emit(ctx context.Context, owner, event string, data map[string]any) {
	// The event happened whatever the request that caused it does next.
	ctx = context.WithoutCancel(ctx)
	ev := b.newEvent(owner, event, data)
	n, err := b.vault.EnqueueEvent(ctx, ev)
	switch {
	case errors.Is(err, store.ErrOutboxFull):
		b.s.log.Warn("webhook outbox full; event not delivered", "owner", owner, "event", event, "event_id", ev.ID, "err", err)
	case err != nil:
		b.s.log.Error("queueing a webhook event failed; event not delivered", "owner", owner, "event", event, "err", err)
	}
	if n > 0 {
		b.hooks.notify()
	}
}

const (
	// webhookLease is how long a claimed delivery is a worker's: longer
	// than an attempt (webhookTimeout) and the writes around it, so that
	// no two workers post one delivery at once.
	webhookLease = time.Minute
	// webhookPoll is how often a worker looks in the outbox without being
	// told: for deliveries another server queued, or whose worker died.
	webhookPoll = 2 * time.Second
	// webhookPruneEvery is how often finished deliveries older than
	// Config.WebhookRetention are deleted.
	webhookPruneEvery = time.Hour
)

// An attempt and its bookkeeping fit in a lease.
var _ = [1]struct{}{}[min(0, int64(webhookLease-3*webhookTimeout))]

// webhookSender works through the store's outbox: it claims the
// deliveries that are due (at most webhookWorkers at a time), posts each
// and records the outcome. Any number of servers on one database run one
// each; the claims keep them off each other's deliveries. Deliveries
// outlive the server: a stop hands back the ones in flight, and the next
// start, here or on another server, goes on with them.
type webhookSender struct {
	clock       clock
	log         *slog.Logger
	hc          *http.Client
	maxAttempts int
	backoff     time.Duration
	retention   time.Duration
	poll        time.Duration
	vault       *store.Vault // nil: the broker is off, nothing to deliver

	ctx    context.Context // done on close: attempts in flight end
	cancel context.CancelFunc
	done   chan struct{} // closed when the dispatcher has returned
	wg     sync.WaitGroup
	wake   chan struct{} // a token: look in the outbox now

	mu       sync.Mutex
	inFlight int
	failing  bool // the last look in the outbox failed (logged once)
	prunedAt time.Time
}

func newWebhookSender(cfg Config, clk clock, log *slog.Logger, vault *store.Vault) *webhookSender {
	ctx, cancel := context.WithCancel(context.Background())
	ws := &webhookSender{
		clock: clk, log: log, maxAttempts: cfg.WebhookMaxAttempts, backoff: cfg.WebhookBackoff,
		retention: cfg.WebhookRetention, poll: cfg.webhookPoll, vault: vault,
		hc: &http.Client{
			Timeout:   webhookTimeout,
			Transport: webhookTransport(cfg.AllowPrivateWebhooks, cfg.webhookResolver),
			// A redirect is an answer, not a delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx: ctx, cancel: cancel, done: make(chan struct{}), wake: make(chan struct{}, 1),
	}
	if ws.poll <= 0 {
		ws.poll = webhookPoll
	}
	if vault == nil {
		close(ws.done)
		return ws
	}
	go ws.run()
	return ws
}

// notify tells the worker that deliveries may be due.
func (ws *webhookSender) notify() {
	select {
	case ws.wake <- struct{}{}:
	default:
	}
}

// run claims due deliveries while it has room for them, then waits for the
// next one to fall due, a notify, or the next poll.
func (ws *webhookSender) run() {
	defer close(ws.done)
	poll := time.NewTicker(ws.poll)
	defer poll.Stop()
	for ws.ctx.Err() == nil {
		var wake <-chan time.Time
		release := func() {}
		if next, ok := ws.dispatch(); ok {
			wake, release = ws.clock.Until(next)
		}
		select {
		case <-ws.wake:
		case <-wake:
		case <-poll.C:
		case <-ws.ctx.Done():
		}
		release()
	}
}

// dispatch starts attempts at the deliveries due now, and returns when the
// next one not leased falls due (ok false: none, the workers are all busy,
// or the outbox did not answer).
func (ws *webhookSender) dispatch() (next time.Time, ok bool) {
	ctx, cancel := context.WithTimeout(ws.ctx, 10*time.Second)
	defer cancel()
	now := ws.clock.Now()
	ws.prune(ctx, now)
	ws.mu.Lock()
	room := webhookWorkers - ws.inFlight
	ws.mu.Unlock()
	if room <= 0 {
		return time.Time{}, false
	}
	claimed, err := ws.vault.ClaimDeliveries(ctx, now, room, webhookLease)
	if err == nil {
		for _, d := range claimed {
			ws.mu.Lock()
			ws.inFlight++
			ws.mu.Unlock()
			ws.wg.Add(1)
			go ws.attempt(d)
		}
		if len(claimed) == room {
			return time.Time{}, false // busy: an attempt that ends wakes the loop
		}
		next, ok, err = ws.vault.Store().NextDeliveryDue(ctx, now)
	}
	ws.outboxAnswered(err)
	if err != nil || (ok && !next.After(now)) {
		// Due but not claimed: another server's claim of it is being
		// committed. The poll comes back to it.
		return time.Time{}, false
	}
	return next, ok
}

// outboxAnswered logs the first failure to read the outbox of a run of
// them, and the recovery; the poll tries again meanwhile.
func (ws *webhookSender) outboxAnswered(err error) {
	if err != nil && ws.ctx.Err() != nil {
		return // closing
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	switch {
	case err != nil && !ws.failing:
		ws.failing = true
		ws.log.Warn("reading the webhook outbox failed; deliveries wait until it answers", "err", err)
	case err == nil && ws.failing:
		ws.failing = false
		ws.log.Info("the webhook outbox answers again")
	}
}

// prune deletes old finished deliveries, at most once per
// webhookPruneEvery.
func (ws *webhookSender) prune(ctx context.Context, now time.Time) {
	ws.mu.Lock()
	due := now.Sub(ws.prunedAt) >= webhookPruneEvery
	if due {
		ws.prunedAt = now
	}
	ws.mu.Unlock()
	if !due {
		return
	}
	if n, err := ws.vault.Store().PruneDeliveries(ctx, now.Add(-ws.retention)); err != nil {
		ws.log.Warn("pruning old webhook deliveries failed", "err", err)
	} else if n > 0 {
		ws.log.Debug("old webhook deliveries pruned", "count", n)
	}
}

// attempt posts a claimed delivery once and records what came of it.
func (ws *webhookSender) attempt(d store.Delivery) {
	defer func() {
		ws.mu.Lock()
		ws.inFlight--
		ws.mu.Unlock()
		ws.notify()
		ws.wg.Done()
	}()
	attempt := d.Attempts + 1
	outcome, retry, retryAfter := ws.post(&d, attempt)
	// The outcome is recorded even while closing: a delivery made must
	// not be made again.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ws.ctx), 5*time.Second)
	defer cancel()
	now := ws.clock.Now()
	attrs := []any{"webhook_id", d.WebhookID, "event", d.Event, "event_id", d.EventID, "attempt", attempt}
	var err error
	switch {
	case outcome == "":
		err = ws.vault.Store().MarkDelivered(ctx, d, now)
		ws.log.Debug("webhook delivered", attrs...)
	case ws.ctx.Err() != nil:
		// Cut short by a stop: handed back, to be made again (the same
		// attempt) by the next worker.
		err = ws.vault.Store().ReleaseDelivery(ctx, d)
	case !retry || attempt >= ws.maxAttempts:
		err = ws.vault.Store().FailDelivery(ctx, d, now, outcome)
		ws.log.Warn("webhook delivery failed; giving up", append(attrs[:6], "attempts", attempt, "last", outcome)...)
	default:
		delay := ws.backoff << (attempt - 1)
		if delay <= 0 || delay > webhookMaxBackoff { // <= 0: shifted past the int64 range
			delay = webhookMaxBackoff
		}
		delay = max(delay, min(retryAfter, webhookMaxBackoff))
		err = ws.vault.Store().RetryDelivery(ctx, d, now, now.Add(delay), outcome)
		ws.log.Info("webhook delivery failed; will retry", append(attrs, "last", outcome, "retry_in", delay)...)
	}
	if err != nil {
		// Its lease runs out and a worker makes the attempt again.
		ws.log.Warn("recording a webhook attempt failed", append(attrs, "err", err)...)
	}
}

// post sends one attempt. outcome is "" on success, else what went wrong
// (never the URL, which may hold a secret of the receiver's); retry says
// whether another attempt may do better.
func (ws *webhookSender) post(d *store.Delivery, attempt int) (outcome string, retry bool, retryAfter time.Duration) {
	ts := ws.clock.Now().Unix()
	req, err := http.NewRequestWithContext(ws.ctx, http.MethodPost, d.URL, bytes.NewReader(d.Body))
	if err != nil {
		return "bad URL", false, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "atp-go-webhooks/1")
	req.Header.Set("X-ATP-Event", d.Event)
	req.Header.Set("X-ATP-Delivery", d.EventID)
	req.Header.Set("X-ATP-Attempt", strconv.Itoa(attempt))
	req.Header.Set("X-ATP-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-ATP-Signature", SignWebhook(d.Secret, ts, d.Body))
	resp, err := ws.hc.Do(req)
	if err != nil {
		if refusedDial(err) {
			// Where a name points may change, but a retry in a few
			// seconds would most likely be refused again: give up now.
			return "refused: " + dialTarget(err) + " is not a public address; " + privateHint, false, 0
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return err.Error(), true, 0
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		return "", false, 0
	}
	if secs, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && secs > 0 {
		retryAfter = time.Duration(secs) * time.Second
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode == http.StatusTooManyRequests
	return resp.Status, retry, retryAfter
}

// close stops the worker: attempts in flight are cut short and handed
// back; deliveries not yet due stay in the outbox for the next start.
func (ws *webhookSender) close() {
	ws.cancel()
	<-ws.done
	ws.wg.Wait()
}
