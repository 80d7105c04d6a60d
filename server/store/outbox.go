package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The webhook outbox. An event for an owner's webhooks (WebhookEvent)
// becomes one delivery row per webhook that wants it, written in the
// transaction of the change that caused the event where there is one
// (SaveConnection, MarkConnectionBroken), so that a change is never
// committed without its event, nor an event without its change. Servers
// then work through the rows: ClaimDeliveries leases due rows to one worker
// (claimed_until; FOR UPDATE SKIP LOCKED on PostgreSQL, so that claimers
// pass over each other's rows), which posts them and records the outcome
// under its claim. A delivery is thus never sent by two workers at once
// while a post takes less than its lease; a worker that dies with a claim
// leaves the row to be claimed again once the lease has run out, and
// nothing is lost when a server stops or crashes.

// States of a delivery.
const (
	DeliveryPending   = "pending"
	DeliveryDelivered = "delivered"
	DeliveryFailed    = "failed"
)

// MaxPendingDeliveries bounds the deliveries of one owner waiting to be
// sent, so that webhooks that never answer cannot grow the database
// without bound: the deliveries of an event past it are recorded as failed,
// unsent.
const MaxPendingDeliveries = 10000

var (
	// ErrOutboxFull is returned by EnqueueEvent when the owner has
	// MaxPendingDeliveries pending.
	ErrOutboxFull = errors.New("too many webhook deliveries pending")
	// ErrClaimLost is returned when an attempt is recorded under a claim
	// that is no longer the delivery's: its lease ran out and another
	// worker claimed it, or it was released.
	ErrClaimLost = errors.New("the webhook delivery's claim was lost")
)

// WebhookEvent is one event for an owner's webhooks: each webhook that
// subscribes to Name gets a delivery of Body.
type WebhookEvent struct {
	// ID names the event on every delivery and attempt (X-ATP-Delivery).
	ID    string
	Name  string // connection_success, ...
	Owner string
	Body  []byte
	// CreatedAt is when the first attempts are due.
	CreatedAt time.Time
}

// Delivery is one event on its way to one webhook.
type Delivery struct {
	ID        string
	WebhookID string
	Owner     string
	// URL and Secret are the webhook's; ClaimDeliveries sets them.
	URL, Secret string
	EventID     string
	Event       string
	Body        []byte
	State       string
	// Attempts is the number of attempts recorded so far.
	Attempts  int
	DueAt     time.Time
	LastError string
	CreatedAt time.Time
	UpdatedAt time.Time

	claim string // the claim this copy was taken under
}

// EnqueueEvent queues ev for each of its owner's webhooks that want it and
// returns how many deliveries it queued. Past MaxPendingDeliveries the
// deliveries are recorded as failed and the error is ErrOutboxFull.
func (v *Vault) EnqueueEvent(ctx context.Context, ev WebhookEvent) (int, error) {
	var queued, dropped int
	err := v.s.tx(ctx, func(tx handle) error {
		var err error
		queued, dropped, err = v.s.enqueue(ctx, tx, ev)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("queue webhook event: %w", err)
	}
	if dropped > 0 {
		return queued, fmt.Errorf("%w: owner %q has %d, the most allowed; %d deliveries of event %s recorded as failed, unsent",
			ErrOutboxFull, ev.Owner, MaxPendingDeliveries, dropped, ev.ID)
	}
	return queued, nil
}

// enqueue writes ev's deliveries in tx.
func (s *Store) enqueue(ctx context.Context, tx handle, ev WebhookEvent) (queued, dropped int, err error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, events FROM webhooks WHERE owner = ? ORDER BY created_at, id`, ev.Owner)
	if err != nil {
		return 0, 0, err
	}
	var hooks []string
	for rows.Next() {
		var id, events string
		var names []string
		if err := rows.Scan(&id, &events); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if err := json.Unmarshal([]byte(events), &names); err != nil {
			rows.Close()
			return 0, 0, fmt.Errorf("webhook %s: stored events: %w", id, err)
		}
		if slices.Contains(names, ev.Name) {
			hooks = append(hooks, id)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(hooks) == 0 {
		return 0, 0, err
	}
	if err := s.lock(ctx, tx, "atp/outbox", ev.Owner); err != nil {
		return 0, 0, err
	}
	var pending int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhook_deliveries WHERE owner = ? AND state = 'pending'`, ev.Owner).Scan(&pending); err != nil {
		return 0, 0, err
	}
	state, lastErr := DeliveryPending, ""
	if pending+len(hooks) > MaxPendingDeliveries {
		state = DeliveryFailed
		lastErr = fmt.Sprintf("not sent: the owner had %d deliveries pending, the most allowed", pending)
	}
	now, due := millis(s.now()), millis(ev.CreatedAt)
	if ev.CreatedAt.IsZero() {
		due = now
	}
	for _, hook := range hooks {
		if _, err := tx.ExecContext(ctx, `INSERT INTO webhook_deliveries
			(id, webhook_id, owner, event_id, event, body, state, due_at, last_error, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			"dlv_"+randomText(16), hook, ev.Owner, ev.ID, ev.Name, ev.Body, state, due, lastErr, now, now); err != nil {
			return 0, 0, fmt.Errorf("save delivery: %w", err)
		}
	}
	if state == DeliveryFailed {
		return 0, len(hooks), nil
	}
	return len(hooks), 0, nil
}

// ClaimDeliveries leases up to max deliveries due at now to the caller
// until now+lease, earliest due first, with their webhooks' URLs and
// secrets. A delivery leased to another worker is not due until its lease
// runs out. The caller records each one's outcome (MarkDelivered,
// RetryDelivery, FailDelivery) or hands it back (ReleaseDelivery) before
// the lease runs out: the lease must outlast an attempt.
func (v *Vault) ClaimDeliveries(ctx context.Context, now time.Time, max int, lease time.Duration) ([]Delivery, error) {
	if max <= 0 {
		return nil, nil
	}
	claim := "clm_" + randomText(10)
	var out []Delivery
	err := v.s.tx(ctx, func(tx handle) error {
		res, err := tx.ExecContext(ctx, `WITH due AS MATERIALIZED (
				SELECT id FROM webhook_deliveries
				WHERE state = 'pending' AND due_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)
				ORDER BY due_at, id LIMIT ?`+v.s.d.skipLocked+`)
			UPDATE webhook_deliveries SET claim = ?, claimed_until = ? WHERE id IN (SELECT id FROM due)`,
			millis(now), millis(now), max, claim, millis(now.Add(lease)))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil
		}
		rows, err := tx.QueryContext(ctx, `SELECT d.id, d.webhook_id, d.owner, w.url, w.secret, d.event_id, d.event, d.body,
				d.attempts, d.due_at, d.last_error, d.created_at, d.updated_at
			FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id
			WHERE d.claim = ? ORDER BY d.due_at, d.id`, claim)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d := Delivery{State: DeliveryPending, claim: claim}
			var (
				secret                []byte
				due, created, updated int64
			)
			if err := rows.Scan(&d.ID, &d.WebhookID, &d.Owner, &d.URL, &secret, &d.EventID, &d.Event, &d.Body,
				&d.Attempts, &due, &d.LastError, &created, &updated); err != nil {
				return err
			}
			if d.Secret, err = v.open(secret, "webhooks", d.WebhookID, d.Owner, "secret"); err != nil {
				return fmt.Errorf("webhook %s: secret: %w", d.WebhookID, err)
			}
			d.DueAt, d.CreatedAt, d.UpdatedAt = fromMillis(due), fromMillis(created), fromMillis(updated)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook deliveries: %w", err)
	}
	return out, nil
}

// MarkDelivered records that an attempt at a claimed delivery succeeded.
func (s *Store) MarkDelivered(ctx context.Context, d Delivery, at time.Time) error {
	return s.finish(ctx, d, `state = 'delivered', attempts = attempts + 1, claim = '', claimed_until = NULL, updated_at = ?`, millis(at))
}

// RetryDelivery records that an attempt at a claimed delivery failed and
// that the next one is due at due.
func (s *Store) RetryDelivery(ctx context.Context, d Delivery, at, due time.Time, lastErr string) error {
	return s.finish(ctx, d, `attempts = attempts + 1, due_at = ?, last_error = ?, claim = '', claimed_until = NULL, updated_at = ?`,
		millis(due), lastErr, millis(at))
}

// FailDelivery records that an attempt at a claimed delivery failed and
// that there will be no other.
func (s *Store) FailDelivery(ctx context.Context, d Delivery, at time.Time, lastErr string) error {
	return s.finish(ctx, d, `state = 'failed', attempts = attempts + 1, last_error = ?, claim = '', claimed_until = NULL, updated_at = ?`,
		lastErr, millis(at))
}

// ReleaseDelivery hands a claimed delivery back unattempted (its attempt
// was cut short by a stop), due at once for the next worker.
func (s *Store) ReleaseDelivery(ctx context.Context, d Delivery) error {
	return s.finish(ctx, d, `claim = '', claimed_until = NULL`)
}

func (s *Store) finish(ctx context.Context, d Delivery, set string, args ...any) error {
	if d.claim == "" {
		return fmt.Errorf("delivery %s: not claimed: %w", d.ID, ErrClaimLost)
	}
	return s.tx(ctx, func(tx handle) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhook_deliveries SET `+set+` WHERE id = ? AND claim = ? AND state = 'pending'`,
			append(args, d.ID, d.claim)...)
		if err != nil {
			return fmt.Errorf("record webhook delivery %s: %w", d.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("delivery %s: %w", d.ID, ErrClaimLost)
		}
		return nil
	})
}

// NextDeliveryDue returns when the earliest pending delivery not leased at
// now is due, and false when there is none.
func (s *Store) NextDeliveryDue(ctx context.Context, now time.Time) (time.Time, bool, error) {
	var due sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT min(due_at) FROM webhook_deliveries
		WHERE state = 'pending' AND (claimed_until IS NULL OR claimed_until <= ?)`, millis(now)).Scan(&due)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("next webhook delivery: %w", err)
	}
	return fromMillis(due.Int64), due.Valid, nil
}

// PendingDeliveries returns the number of deliveries waiting to be sent:
// the outbox's depth.
func (s *Store) PendingDeliveries(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count webhook deliveries: %w", err)
	}
	return n, nil
}

// WebhookDeliveries returns an owner's deliveries, oldest first, without
// URLs and secrets.
func (s *Store) WebhookDeliveries(ctx context.Context, owner string) ([]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, webhook_id, event_id, event, body, state, attempts, due_at, last_error, created_at, updated_at
		FROM webhook_deliveries WHERE owner = ? ORDER BY created_at, id`, owner)
	if err != nil {
		return nil, fmt.Errorf("read webhook deliveries: %w", err)
	}
	defer rows.Close()
	var out []Delivery
	for rows.Next() {
		d := Delivery{Owner: owner}
		var due, created, updated int64
		if err := rows.Scan(&d.ID, &d.WebhookID, &d.EventID, &d.Event, &d.Body, &d.State, &d.Attempts, &due, &d.LastError, &created, &updated); err != nil {
			return nil, fmt.Errorf("read webhook deliveries: %w", err)
		}
		d.DueAt, d.CreatedAt, d.UpdatedAt = fromMillis(due), fromMillis(created), fromMillis(updated)
		out = append(out, d)
	}
	return out, rows.Err()
}

// PruneDeliveries deletes the delivered and failed deliveries last changed
// before before, and returns how many went.
func (s *Store) PruneDeliveries(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.tx(ctx, func(tx handle) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhook_deliveries WHERE state <> 'pending' AND updated_at < ?`, millis(before))
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	return int(n), nil
}
