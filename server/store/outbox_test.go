package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.UnixMilli(1_900_000_000_000).UTC()

func event(id, name, owner string) WebhookEvent {
	return WebhookEvent{ID: id, Name: name, Owner: owner, Body: []byte(`{"id":"` + id + `"}`), CreatedAt: t0}
}

// An event becomes one delivery per webhook that wants it; a claim hands
// them out once until its lease runs out, with their URLs and secrets; the
// outcome is recorded under the claim only.
func TestOutbox(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		both, _ := v.CreateWebhook(ctx, "o", "https://h/both", []string{"connection_success", "connection_failed"})
		v.CreateWebhook(ctx, "o", "https://h/failed", []string{"connection_failed"})
		v.CreateWebhook(ctx, "other", "https://h/other", []string{"connection_success"})

		if n, err := v.EnqueueEvent(ctx, event("evt_1", "connection_success", "o")); err != nil || n != 1 {
			t.Fatalf("enqueue = %d, %v; want 1 delivery (one webhook wants it)", n, err)
		}
		if n, err := v.EnqueueEvent(ctx, event("evt_2", "connection_success", "nobody")); err != nil || n != 0 {
			t.Fatalf("enqueue for an owner without webhooks = %d, %v", n, err)
		}
		if _, ok, _ := s.NextDeliveryDue(ctx, t0); !ok {
			t.Fatal("NextDeliveryDue finds nothing")
		}
		if got, _ := v.ClaimDeliveries(ctx, t0.Add(-time.Second), 10, time.Minute); len(got) != 0 {
			t.Fatalf("claimed %d deliveries before they were due", len(got))
		}
		got, err := v.ClaimDeliveries(ctx, t0, 10, time.Minute)
		if err != nil || len(got) != 1 {
			t.Fatalf("claim = %+v, %v", got, err)
		}
		d := got[0]
		if d.WebhookID != both.ID || d.URL != "https://h/both" || d.Secret != both.Secret || d.EventID != "evt_1" ||
			d.Event != "connection_success" || string(d.Body) != `{"id":"evt_1"}` || d.Attempts != 0 {
			t.Fatalf("claimed %+v", d)
		}
		// Leased: no one else gets it, and it is not due, until the lease ends.
		if again, _ := v.ClaimDeliveries(ctx, t0.Add(59*time.Second), 10, time.Minute); len(again) != 0 {
			t.Fatalf("a leased delivery was claimed again: %+v", again)
		}
		if _, ok, _ := s.NextDeliveryDue(ctx, t0.Add(time.Second)); ok {
			t.Fatal("a leased delivery counts as due")
		}
		stolen, _ := v.ClaimDeliveries(ctx, t0.Add(time.Minute), 10, time.Minute)
		if len(stolen) != 1 {
			t.Fatalf("after the lease ran out: %d claimed, want 1", len(stolen))
		}
		if err := s.RetryDelivery(ctx, d, t0, t0.Add(time.Second), "503"); !errors.Is(err, ErrClaimLost) {
			t.Fatalf("recording under a lost claim: %v, want ErrClaimLost", err)
		}
		if err := s.RetryDelivery(ctx, stolen[0], t0.Add(time.Minute), t0.Add(2*time.Minute), "503 Service Unavailable"); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryDelivery(ctx, stolen[0], t0.Add(time.Minute), t0.Add(2*time.Minute), "again"); !errors.Is(err, ErrClaimLost) {
			t.Fatalf("recording twice under one claim: %v, want ErrClaimLost", err)
		}
		if due, ok, _ := s.NextDeliveryDue(ctx, t0.Add(time.Minute)); !ok || !due.Equal(t0.Add(2*time.Minute)) {
			t.Fatalf("next due = %v, %v; want the retry's time", due, ok)
		}
		retry, _ := v.ClaimDeliveries(ctx, t0.Add(2*time.Minute), 10, time.Minute)
		if len(retry) != 1 || retry[0].Attempts != 1 || retry[0].LastError != "503 Service Unavailable" {
			t.Fatalf("the retry = %+v", retry)
		}
		// Released (a stop): due at once, the attempt not counted.
		if err := s.ReleaseDelivery(ctx, retry[0]); err != nil {
			t.Fatal(err)
		}
		retry, _ = v.ClaimDeliveries(ctx, t0.Add(2*time.Minute), 10, time.Minute)
		if len(retry) != 1 || retry[0].Attempts != 1 {
			t.Fatalf("after a release = %+v", retry)
		}
		if err := s.MarkDelivered(ctx, retry[0], t0.Add(3*time.Minute)); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.PendingDeliveries(ctx); n != 0 {
			t.Fatalf("%d pending after delivery", n)
		}

		// A failed event reaches both of o's webhooks; one gives up.
		v.EnqueueEvent(ctx, event("evt_3", "connection_failed", "o"))
		two, _ := v.ClaimDeliveries(ctx, t0, 10, time.Minute)
		if len(two) != 2 {
			t.Fatalf("claimed %d, want 2", len(two))
		}
		if err := s.FailDelivery(ctx, two[0], t0, "400 Bad Request"); err != nil {
			t.Fatal(err)
		}
		list, err := s.WebhookDeliveries(ctx, "o")
		if err != nil || len(list) != 3 {
			t.Fatalf("deliveries = %+v, %v", list, err)
		}
		states := map[string]string{}
		for _, d := range list {
			states[d.ID] = d.State
			if d.Secret != "" || d.URL != "" {
				t.Fatalf("WebhookDeliveries shows a URL or secret: %+v", d)
			}
		}
		if states[retry[0].ID] != DeliveryDelivered || states[two[0].ID] != DeliveryFailed || states[two[1].ID] != DeliveryPending {
			t.Fatalf("states = %v", states)
		}
		// Deleting a webhook takes its deliveries with it.
		if err := s.DeleteWebhook(ctx, "o", two[1].WebhookID); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.PendingDeliveries(ctx); n != 0 {
			t.Fatalf("%d pending after their webhook was deleted", n)
		}
		// Pruning takes finished deliveries older than the cut.
		if n, err := s.PruneDeliveries(ctx, t0.Add(time.Hour)); err != nil || n < 1 {
			t.Fatalf("prune = %d, %v", n, err)
		}
		if list, _ := s.WebhookDeliveries(ctx, "o"); len(list) != 0 {
			t.Fatalf("after pruning: %+v", list)
		}
		if err := s.MarkDelivered(ctx, Delivery{ID: "dlv_x"}, t0); !errors.Is(err, ErrClaimLost) {
			t.Fatalf("recording an unclaimed delivery: %v", err)
		}
	})
}

// Past MaxPendingDeliveries an owner's events are recorded as failed,
// unsent.
func TestOutboxBounded(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		for range 2 {
			v.CreateWebhook(ctx, "o", "https://h/x", []string{"connection_success"})
		}
		// Fill the outbox to one short of full, directly.
		pad := MaxPendingDeliveries - 1
		hook, _ := s.WebhookList(ctx, "o")
		s.exec(t, fmt.Sprintf(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < %d)
			INSERT INTO webhook_deliveries (id, webhook_id, owner, event_id, event, body, due_at, created_at, updated_at)
			SELECT 'dlv_pad' || i, ?, 'o', 'evt_pad' || i, 'connection_success', ?, 0, 0, 0 FROM n`, pad), hook[0].ID, []byte("{}"))
		if n, _ := s.PendingDeliveries(ctx); n != pad {
			t.Fatalf("padded to %d, want %d", n, pad)
		}
		n, err := v.EnqueueEvent(ctx, event("evt_big", "connection_success", "o"))
		if !errors.Is(err, ErrOutboxFull) || n != 0 || !strings.Contains(err.Error(), "recorded as failed") {
			t.Fatalf("enqueue past the bound = %d, %v; want ErrOutboxFull", n, err)
		}
		list, _ := s.WebhookDeliveries(ctx, "o")
		var failed int
		for _, d := range list {
			if d.EventID == "evt_big" && d.State == DeliveryFailed && strings.Contains(d.LastError, "not sent") {
				failed++
			}
		}
		if failed != 2 {
			t.Fatalf("%d deliveries of the refused event recorded as failed, want 2", failed)
		}
		if n, err := v.EnqueueEvent(ctx, event("evt_o2", "connection_success", "o2")); err != nil || n != 0 {
			t.Fatalf("another owner is not concerned: %d, %v", n, err)
		}
	})
}

// A connection and its event commit together.
func TestSaveConnectionQueuesItsEvent(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		s, v := openVault(t, db)
		v.CreateWebhook(ctx, "default", "https://h/x", []string{"connection_success", "connection_failed"})
		var seen Connection
		c, err := v.SaveConnection(ctx, conn("u1", "a1", "r1"), func(stored Connection) WebhookEvent {
			seen = stored
			return WebhookEvent{ID: "evt_ok", Name: "connection_success", Owner: "default", Body: []byte(stored.IntegrationID)}
		})
		if err != nil || seen.IntegrationID == "" || seen.IntegrationID != c.IntegrationID {
			t.Fatalf("saved %+v (event saw %q), %v", c, seen.IntegrationID, err)
		}
		ev := WebhookEvent{ID: "evt_broken", Name: "connection_failed", Owner: "default", Body: []byte("{}")}
		if err := v.MarkConnectionBroken(ctx, "default", "hub", "u1", "revoked", &ev); err != nil {
			t.Fatal(err)
		}
		// No connection, no event.
		ev.ID = "evt_ghost"
		if err := v.MarkConnectionBroken(ctx, "default", "hub", "ghost", "revoked", &ev); err != nil {
			t.Fatal(err)
		}
		list, _ := s.WebhookDeliveries(ctx, "default")
		var ids []string
		for _, d := range list {
			ids = append(ids, d.EventID)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, []string{"evt_broken", "evt_ok"}) || string(list[0].Body) != c.IntegrationID && string(list[1].Body) != c.IntegrationID {
			t.Fatalf("queued events %v", ids)
		}
		// An event that cannot be written undoes the save.
		s.exec(t, `DROP TABLE webhook_deliveries`)
		if _, err := v.SaveConnection(ctx, conn("u2", "a2", "r2"), func(Connection) WebhookEvent {
			return WebhookEvent{ID: "evt_2", Name: "connection_success", Owner: "default"}
		}); err == nil {
			t.Fatal("saved with an event that could not be queued")
		}
		if _, err := v.Connection(ctx, "default", "hub", "u2"); !errors.Is(err, ErrConnectionNotFound) {
			t.Fatalf("the connection was committed without its event: %v", err)
		}
	})
}

// Workers on several stores (servers) claiming at once never get one
// delivery twice.
func TestOutboxClaimRace(t *testing.T) {
	eachEngine(t, func(t *testing.T, db testDB) {
		ctx := context.Background()
		_, v := openVault(t, db)
		for range 4 {
			v.CreateWebhook(ctx, "o", "https://h/x", []string{"connection_success"})
		}
		const events = 25
		for i := range events {
			v.EnqueueEvent(ctx, event(fmt.Sprintf("evt_%d", i), "connection_success", "o"))
		}
		var (
			mu     sync.Mutex
			seen   = map[string]int{}
			wg     sync.WaitGroup
			vaults = []*Vault{v}
		)
		for range 3 {
			other := db.open(t)
			ov, err := other.Vault(ctx, testKey(1))
			if err != nil {
				t.Fatal(err)
			}
			vaults = append(vaults, ov)
		}
		for i := range 8 {
			wg.Go(func() {
				for {
					got, err := vaults[i%len(vaults)].ClaimDeliveries(ctx, t0, 3, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, d := range got {
						seen[d.ID]++
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(seen) != 4*events {
			t.Fatalf("%d deliveries claimed, want %d", len(seen), 4*events)
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("delivery %s claimed %d times", id, n)
			}
		}
	})
}
