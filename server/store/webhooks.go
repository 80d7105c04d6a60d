package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Webhook is an owner's endpoint for OAuth connection events.
type Webhook struct {
	ID     string
	Owner  string
	URL    string
	Events []string // sorted
	// Secret signs deliveries (HMAC-SHA256). Set by CreateWebhook and
	// Webhooks; empty in WebhookList.
	Secret    string
	CreatedAt time.Time
}

var (
	// ErrWebhookNotFound is returned for an unknown webhook id, or one of
	// another owner.
	ErrWebhookNotFound = errors.New("no such webhook")
	// ErrTooManyWebhooks is returned when an owner has MaxWebhooks.
	ErrTooManyWebhooks = errors.New("too many webhooks")
)

// MaxWebhooks bounds the webhooks of one owner: every event is delivered
// to each of them.
const MaxWebhooks = 100

// CreateWebhook stores a webhook with a new id and signing secret. The
// caller checks url and events.
func (v *Vault) CreateWebhook(ctx context.Context, owner, url string, events []string) (Webhook, error) {
	w := Webhook{
		ID:        "wh_" + randomText(16),
		Owner:     owner,
		URL:       url,
		Events:    sortedCopy(events),
		Secret:    "whsec_" + randomText(32),
		CreatedAt: fromMillis(millis(v.s.now())),
	}
	evs, _ := json.Marshal(w.Events)
	err := v.s.tx(ctx, func(tx handle) error {
		if err := v.s.lock(ctx, tx, "atp/webhooks", owner); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM webhooks WHERE owner = ?`, owner).Scan(&n); err != nil {
			return err
		}
		if n >= MaxWebhooks {
			return fmt.Errorf("%w: owner %q has %d, the most allowed; delete one first", ErrTooManyWebhooks, owner, n)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO webhooks (id, owner, url, events, secret, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			w.ID, owner, url, string(evs), v.seal(w.Secret, "webhooks", w.ID, owner, "secret"), millis(w.CreatedAt))
		return err
	})
	if err != nil {
		return Webhook{}, fmt.Errorf("save webhook: %w", err)
	}
	return w, nil
}

// Webhooks returns an owner's webhooks with their secrets, oldest first.
func (v *Vault) Webhooks(ctx context.Context, owner string) ([]Webhook, error) {
	return v.s.webhooks(ctx, v, owner)
}

// WebhookList returns an owner's webhooks without secrets, oldest first.
func (s *Store) WebhookList(ctx context.Context, owner string) ([]Webhook, error) {
	return s.webhooks(ctx, nil, owner)
}

func (s *Store) webhooks(ctx context.Context, v *Vault, owner string) ([]Webhook, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, url, events, secret, created_at FROM webhooks WHERE owner = ? ORDER BY created_at, id`, owner)
	if err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	defer rows.Close()
	out := []Webhook{}
	for rows.Next() {
		w := Webhook{Owner: owner}
		var (
			events  string
			secret  []byte
			created int64
		)
		if err := rows.Scan(&w.ID, &w.URL, &events, &secret, &created); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
			return nil, fmt.Errorf("webhook %s: stored events: %w", w.ID, err)
		}
		if v != nil {
			if w.Secret, err = v.open(secret, "webhooks", w.ID, owner, "secret"); err != nil {
				return nil, fmt.Errorf("webhook %s: secret: %w", w.ID, err)
			}
		}
		w.CreatedAt = fromMillis(created)
		out = append(out, w)
	}
	return out, rows.Err()
}

// DeleteWebhook deletes one of an owner's webhooks.
func (s *Store) DeleteWebhook(ctx context.Context, owner, id string) error {
	return s.tx(ctx, func(tx handle) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM webhooks WHERE owner = ? AND id = ?`, owner, id)
		if err != nil {
			return fmt.Errorf("delete webhook: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("webhook %q: %w", id, ErrWebhookNotFound)
		}
		return nil
	})
}
