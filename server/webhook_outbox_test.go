package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/internal/pgtest"
	"github.com/atpgo/atp/server/store"
)

// Webhook deliveries are an outbox in the store: they survive a stop of
// the server, and servers sharing a PostgreSQL database share the work
// without ever posting one delivery twice.

// eachStore runs fn on a new SQLite file and on a new PostgreSQL schema.
func eachStore(t *testing.T, fn func(t *testing.T, dsn string)) {
	t.Helper()
	for _, engine := range []string{store.EngineSQLite, store.EnginePostgres} {
		t.Run(engine, func(t *testing.T) {
			t.Parallel()
			if engine == store.EnginePostgres {
				fn(t, pgtest.DSN(t))
				return
			}
			fn(t, filepath.Join(t.TempDir(), "atp.db"))
		})
	}
}

// outboxConfig is a server on dsn with a broker and a fake clock.
func outboxConfig(dsn string, clk *fakeClock, key []byte, logs *logBuffer) Config {
	return Config{DBPath: dsn, SecretKey: key, clock: clk, AllowPrivateWebhooks: true,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
}

func newSecretKey() []byte {
	key := make([]byte, store.SecretKeySize)
	rand.Read(key)
	return key
}

func mustNew(t *testing.T, cfg Config) *Server {
	t.Helper()
	srv, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

// A server stopped while a delivery waits for its retry: the next start
// makes the retry when it falls due, under the same delivery id.
func TestWebhookResumesAfterRestart(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk, key, logs := newFakeClock(), newSecretKey(), &logBuffer{}
		hooks := newWebhookReceiver(t, http.StatusServiceUnavailable)
		first := mustNew(t, outboxConfig(dsn, clk, key, logs))
		wh, err := first.oauth.vault.CreateWebhook(ctx, store.DefaultOwner, hooks.http.URL, []string{eventConnectionSuccess})
		if err != nil {
			t.Fatal(err)
		}
		first.oauth.emit(ctx, store.DefaultOwner, eventConnectionSuccess, map[string]any{"external_user_id": "u1"})
		hit := hooks.next(t)
		if hit.header.Get("X-ATP-Attempt") != "1" {
			t.Fatalf("first attempt: %v", hit.header)
		}
		due := clk.nextTimer(t) // the retry is recorded
		rec := httptest.NewRecorder()
		first.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if !strings.Contains(rec.Body.String(), "\natp_webhook_outbox_pending 1\n") {
			t.Fatalf("/metrics does not show the delivery waiting:\n%s", rec.Body)
		}
		first.Close()

		second := mustNew(t, outboxConfig(dsn, clk, key, logs))
		defer second.Close()
		if got := clk.nextTimer(t); !got.Equal(due) {
			t.Fatalf("after the restart the retry is due at %v, want %v", got, due)
		}
		clk.Advance(due.Sub(clk.Now()))
		retry := hooks.next(t)
		if retry.header.Get("X-ATP-Attempt") != "2" || retry.header.Get("X-ATP-Delivery") != hit.header.Get("X-ATP-Delivery") {
			t.Fatalf("after the restart: %v, want attempt 2 of %s", retry.header, hit.header.Get("X-ATP-Delivery"))
		}
		if err := VerifyWebhook(wh.Secret, retry.header, retry.body, clk.Now(), time.Minute); err != nil {
			t.Fatal(err)
		}
		waitDelivery(t, second, store.DeliveryDelivered, 2)
	})
}

// A server stopped while it posts a delivery hands it back: the next start
// makes that attempt again.
func TestWebhookStopMidAttempt(t *testing.T) {
	eachStore(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		clk, key, logs := newFakeClock(), newSecretKey(), &logBuffer{}
		entered := make(chan string, 4)
		var mu sync.Mutex
		hang := true
		receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.Copy(io.Discard, r.Body)
			entered <- r.Header.Get("X-ATP-Attempt")
			mu.Lock()
			h := hang
			mu.Unlock()
			if h {
				<-r.Context().Done() // until the server gives up on it
				return
			}
		}))
		defer receiver.Close()
		first := mustNew(t, outboxConfig(dsn, clk, key, logs))
		if _, err := first.oauth.vault.CreateWebhook(ctx, store.DefaultOwner, receiver.URL, []string{eventConnectionFailed}); err != nil {
			t.Fatal(err)
		}
		first.oauth.emit(ctx, store.DefaultOwner, eventConnectionFailed, map[string]any{"error": "access_denied"})
		if a := <-entered; a != "1" {
			t.Fatalf("attempt %s, want 1", a)
		}
		first.Close() // cuts the attempt short
		mu.Lock()
		hang = false
		mu.Unlock()

		second := mustNew(t, outboxConfig(dsn, clk, key, logs))
		defer second.Close()
		select {
		case a := <-entered:
			if a != "1" {
				t.Fatalf("after the restart: attempt %s, want 1 again (the first was cut short)", a)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the delivery cut short by the stop was not made after the restart")
		}
		waitDelivery(t, second, store.DeliveryDelivered, 1)
	})
}

// waitDelivery waits for the owner's one delivery to reach state after
// attempts.
func waitDelivery(t *testing.T, srv *Server, state string, attempts int) {
	t.Helper()
	var last []store.Delivery
	eventually(t, fmt.Sprintf("the delivery to be %s after %d attempts", state, attempts), func() bool {
		last, _ = srv.Store().WebhookDeliveries(context.Background(), store.DefaultOwner)
		return len(last) == 1 && last[0].State == state && last[0].Attempts == attempts
	})
}

// Two servers on one PostgreSQL database work through one outbox: every
// delivery is made once, never by both.
func TestWebhookTwoServersOneOutbox(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	key := newSecretKey()
	var (
		mu    sync.Mutex
		hits  = map[string]int{} // by webhook path and delivery id
		total = make(chan struct{}, 1000)
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.URL.Path + " " + r.Header.Get("X-ATP-Delivery")
		mu.Lock()
		hits[id]++
		mu.Unlock()
		total <- struct{}{}
	}))
	defer receiver.Close()

	var servers []*Server
	for i := range 2 {
		st, err := store.Open(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		logs := &logBuffer{}
		srv := mustNew(t, Config{Store: st, SecretKey: key, AllowPrivateWebhooks: true, webhookPoll: 20 * time.Millisecond,
			Logger: slog.New(slog.NewTextHandler(logs, nil))})
		defer srv.Close()
		servers = append(servers, srv)
		if i == 0 {
			for _, path := range []string{"/a", "/b"} {
				if _, err := srv.oauth.vault.CreateWebhook(ctx, store.DefaultOwner, receiver.URL+path, []string{eventConnectionSuccess}); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	const events = 30
	for i := range events {
		servers[i%2].oauth.emit(ctx, store.DefaultOwner, eventConnectionSuccess, map[string]any{"n": strconv.Itoa(i)})
	}
	for range 2 * events {
		select {
		case <-total:
		case <-time.After(20 * time.Second):
			t.Fatal("timed out waiting for the deliveries")
		}
	}
	eventually(t, "every delivery to be recorded", func() bool {
		n, err := servers[1].Store().PendingDeliveries(ctx)
		return err == nil && n == 0
	})
	select {
	case <-total:
		t.Fatal("a delivery was made more than once")
	default:
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hits) != 2*events {
		t.Fatalf("%d distinct deliveries, want %d", len(hits), 2*events)
	}
	for id, n := range hits {
		if n != 1 {
			t.Fatalf("%s delivered %d times", id, n)
		}
	}
}
