package server

import (
	"bytes"
	"container/heap"
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
// Deliveries wait in a bounded in-memory queue served by a few workers:
// the OAuth callback never waits for one, and events still queued when the
// server stops are dropped (and logged).

const (
	eventConnectionSuccess = "connection_success"
	eventConnectionFailed  = "connection_failed"
)

var webhookEvents = []string{eventConnectionFailed, eventConnectionSuccess}

const (
	webhookQueueSize  = 1000
	webhookWorkers    = 4
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

// emit queues an event for each of the owner's webhooks that want it. It
// reads the webhooks from the store and returns: delivery happens later.
func (b *broker) emit(ctx context.Context, owner, event string, data map[string]any) {
	// The event happened whatever the request that caused it does next.
	ctx = context.WithoutCancel(ctx)
	hooks, err := b.vault.Webhooks(ctx, owner)
	if err != nil {
		b.s.log.Error("reading webhooks failed; event not delivered", "owner", owner, "event", event, "err", err)
		return
	}
	var body []byte
	id := "evt_" + randomID(24)
	for _, h := range hooks {
		if !slices.Contains(h.Events, event) {
			continue
		}
		if body == nil {
			body, err = json.Marshal(webhookPayload{ID: id, Event: event, CreatedAt: b.clock.Now().UTC(), Data: data})
			if err != nil {
				b.s.log.Error("encoding a webhook event failed", "event", event, "err", err)
				return
			}
		}
		b.hooks.enqueue(&delivery{webhookID: h.ID, url: h.URL, secret: h.Secret, eventID: id, event: event, body: body})
	}
}

// delivery is one event for one webhook, until it succeeds or is given up.
type delivery struct {
	webhookID, url, secret string
	eventID, event         string
	body                   []byte
	attempts               int // made so far
	due                    time.Time
	seq                    uint64 // first in, first out among equal due times
}

// webhookSender delivers events: a bounded queue, ordered by when each
// delivery is due, served by a fixed pool of workers started on first use.
type webhookSender struct {
	clock       clock
	log         *slog.Logger
	hc          *http.Client
	maxAttempts int
	backoff     time.Duration

	ctx    context.Context // done on close: attempts in flight end
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	queue   deliveryQueue
	seq     uint64
	changed chan struct{} // closed and replaced whenever the queue changes
	started bool
	closed  bool
}

func newWebhookSender(cfg Config, clk clock, log *slog.Logger) *webhookSender {
	ctx, cancel := context.WithCancel(context.Background())
	return &webhookSender{
		clock: clk, log: log, maxAttempts: cfg.WebhookMaxAttempts, backoff: cfg.WebhookBackoff,
		hc: &http.Client{
			Timeout:   webhookTimeout,
			Transport: webhookTransport(cfg.AllowPrivateWebhooks, cfg.webhookResolver),
			// A redirect is an answer, not a delivery.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx: ctx, cancel: cancel, changed: make(chan struct{}),
	}
}

func (ws *webhookSender) enqueue(d *delivery) {
	d.due = ws.clock.Now()
	ws.push(d)
}

// push queues d; a full queue drops it, so that a dead endpoint never
// holds up the callback or grows memory without bound.
func (ws *webhookSender) push(d *delivery) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.closed {
		return
	}
	if len(ws.queue) >= webhookQueueSize {
		ws.log.Warn("webhook queue full; delivery dropped", "webhook_id", d.webhookID, "event", d.event, "event_id", d.eventID)
		return
	}
	if !ws.started { // the workers start with the first delivery
		ws.started = true
		for range webhookWorkers {
			ws.wg.Add(1)
			go ws.work()
		}
	}
	ws.seq++
	d.seq = ws.seq
	heap.Push(&ws.queue, d)
	close(ws.changed)
	ws.changed = make(chan struct{})
}

func (ws *webhookSender) work() {
	defer ws.wg.Done()
	for {
		d := ws.next()
		if d == nil {
			return
		}
		ws.attempt(d)
	}
}

// next waits for the earliest delivery to fall due and takes it; nil once
// the sender is closed.
func (ws *webhookSender) next() *delivery {
	ws.mu.Lock()
	for {
		if ws.closed {
			ws.mu.Unlock()
			return nil
		}
		var wake <-chan time.Time
		release := func() {}
		if len(ws.queue) > 0 {
			due := ws.queue[0].due
			if !due.After(ws.clock.Now()) {
				d := heap.Pop(&ws.queue).(*delivery)
				ws.mu.Unlock()
				return d
			}
			wake, release = ws.clock.Until(due)
		}
		changed := ws.changed
		ws.mu.Unlock()
		select {
		case <-changed:
		case <-wake:
		case <-ws.ctx.Done():
		}
		release()
		ws.mu.Lock()
	}
}

// attempt POSTs a delivery once and requeues it when it may succeed later.
func (ws *webhookSender) attempt(d *delivery) {
	d.attempts++
	outcome, retry, retryAfter := ws.post(d)
	if outcome == "" {
		ws.log.Debug("webhook delivered", "webhook_id", d.webhookID, "event", d.event, "event_id", d.eventID, "attempt", d.attempts)
		return
	}
	if ws.ctx.Err() != nil {
		return // closing
	}
	if !retry || d.attempts >= ws.maxAttempts {
		ws.log.Warn("webhook delivery failed; giving up", "webhook_id", d.webhookID, "event", d.event, "event_id", d.eventID,
			"attempts", d.attempts, "last", outcome)
		return
	}
	delay := ws.backoff << (d.attempts - 1)
	if delay <= 0 || delay > webhookMaxBackoff { // <= 0: shifted past the int64 range
		delay = webhookMaxBackoff
	}
	delay = max(delay, min(retryAfter, webhookMaxBackoff))
	ws.log.Info("webhook delivery failed; will retry", "webhook_id", d.webhookID, "event", d.event, "event_id", d.eventID,
		"attempt", d.attempts, "last", outcome, "retry_in", delay)
	d.due = ws.clock.Now().Add(delay)
	ws.push(d)
}

// post sends one attempt. outcome is "" on success, else what went wrong
// (never the URL, which may hold a secret of the receiver's); retry says
// whether another attempt may do better.
func (ws *webhookSender) post(d *delivery) (outcome string, retry bool, retryAfter time.Duration) {
	ts := ws.clock.Now().Unix()
	req, err := http.NewRequestWithContext(ws.ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return "bad URL", false, 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "atp-go-webhooks/1")
	req.Header.Set("X-ATP-Event", d.event)
	req.Header.Set("X-ATP-Delivery", d.eventID)
	req.Header.Set("X-ATP-Attempt", strconv.Itoa(d.attempts))
	req.Header.Set("X-ATP-Timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("X-ATP-Signature", SignWebhook(d.secret, ts, d.body))
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

// close stops the workers; deliveries still queued are dropped.
func (ws *webhookSender) close() {
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		return
	}
	ws.closed = true
	dropped := len(ws.queue)
	ws.queue = nil
	close(ws.changed)
	ws.mu.Unlock()
	ws.cancel()
	ws.wg.Wait()
	if dropped > 0 {
		ws.log.Warn("server stopping: undelivered webhook events dropped", "count", dropped)
	}
}

// deliveryQueue is a min-heap of deliveries by due time.
type deliveryQueue []*delivery

func (q deliveryQueue) Len() int { return len(q) }
func (q deliveryQueue) Less(i, j int) bool {
	if q[i].due.Equal(q[j].due) {
		return q[i].seq < q[j].seq
	}
	return q[i].due.Before(q[j].due)
}
func (q deliveryQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *deliveryQueue) Push(x any)   { *q = append(*q, x.(*delivery)) }
func (q *deliveryQueue) Pop() any {
	old := *q
	d := old[len(old)-1]
	old[len(old)-1] = nil
	*q = old[:len(old)-1]
	return d
}
