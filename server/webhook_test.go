package server

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/server/store"
)

// register, list and delete, as the Python SDK sends them (delete is a GET).
func TestWebhookEndpoints(t *testing.T) {
	e := newOAuthEnv(t, nil)
	status, m := e.llmPost(e.llmKey, "webhooks/register/", map[string]any{"url": "https://hooks.example.com/atp"})
	if status != http.StatusOK || !strings.HasPrefix(m["webhook_id"].(string), "wh_") || m["url"] != "https://hooks.example.com/atp" ||
		!strings.HasPrefix(m["secret"].(string), "whsec_") {
		t.Fatalf("register = %d %v", status, m)
	}
	if evs := m["events"].([]any); len(evs) != 1 || evs[0] != eventConnectionSuccess {
		t.Fatalf("default events = %v, want [connection_success] as the SDK defaults", evs)
	}
	first := m["webhook_id"].(string)
	e.remember(m["secret"].(string))
	status, m = e.llmPost(e.llmKey, "webhooks/register/", map[string]any{"url": "http://127.0.0.1:9/x",
		"events": []string{eventConnectionFailed, eventConnectionSuccess, eventConnectionFailed}})
	if status != http.StatusOK || len(m["events"].([]any)) != 2 {
		t.Fatalf("register with both events = %d %v", status, m)
	}
	e.remember(m["secret"].(string))

	for _, c := range []struct {
		body  map[string]any
		words string
	}{
		{map[string]any{}, "url: missing"},
		{map[string]any{"url": "ftp://x/y"}, "url: expected an absolute http(s) URL"},
		{map[string]any{"url": "/relative"}, "url: expected an absolute http(s) URL"},
		{map[string]any{"url": "https://x/" + strings.Repeat("a", 3000)}, "at most 2048"},
		{map[string]any{"url": "https://x/", "events": []string{}}, "events: empty"},
		{map[string]any{"url": "https://x/", "events": []string{"connection_success", "user_deleted"}}, `events[1]: unknown event "user_deleted"`},
		{map[string]any{"url": "https://x/", "events": "connection_success"}, "events: expected array, got string"},
	} {
		status, m := e.llmPost(e.llmKey, "webhooks/register/", c.body)
		if status != http.StatusBadRequest || !strings.Contains(m["error"].(string), c.words) {
			t.Fatalf("register %v = %d %v, want 400 %q", c.body, status, m, c.words)
		}
	}

	// Listed by creation time; the two were created within the same
	// millisecond often enough that their order is the ids'.
	list := e.listWebhooks(e.llmKey)
	if len(list) != 2 || (list[0]["webhook_id"] != first && list[1]["webhook_id"] != first) {
		t.Fatalf("list = %v", list)
	}
	for _, h := range list {
		if _, has := h["secret"]; has {
			t.Fatalf("list shows a secret: %v", h)
		}
	}
	// Another owner sees none of them, and cannot delete them.
	other := e.key(store.NewKey{Kind: store.KindLLM, Name: "o", Owner: "acme"})
	if l := e.listWebhooks(other); len(l) != 0 {
		t.Fatalf("another owner lists %v", l)
	}
	if status, _ := e.llmGet(other, "webhooks/"+first+"/delete/"); status != http.StatusNotFound {
		t.Fatalf("another owner's delete = %d, want 404", status)
	}
	if status, m := e.llmGet(e.llmKey, "webhooks/"+first+"/delete/"); status != http.StatusOK || m["deleted"] != true {
		t.Fatalf("delete = %d %v", status, m)
	}
	if status, _ := e.llmGet(e.llmKey, "webhooks/"+first+"/delete/"); status != http.StatusNotFound {
		t.Fatalf("second delete = %d, want 404", status)
	}
	if l := e.listWebhooks(e.llmKey); len(l) != 1 {
		t.Fatalf("after delete: %v", l)
	}
	if status, _ := e.post("/api/v1/atp/llm-client/webhooks/register/", map[string]any{"url": "https://x/"}); status != http.StatusUnauthorized {
		t.Fatalf("register without a key = %d, want 401", status)
	}
}

func (e *oauthEnv) listWebhooks(key string) []map[string]any {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.base+"/api/v1/atp/llm-client/webhooks/", nil)
	req.Header.Set("Authorization", "ApiKey "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var list []map[string]any
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &list) != nil {
		e.t.Fatalf("list = %d %s, want 200 and a JSON array", resp.StatusCode, raw)
	}
	return list
}

// A delivery that fails is retried after the backoff, signed again with
// the new timestamp, under the same delivery id.
func TestWebhookRetriedAfterFailure(t *testing.T) {
	e := newOAuthEnv(t, nil)
	hooks := newWebhookReceiver(t, http.StatusInternalServerError, http.StatusServiceUnavailable)
	secret := e.registerWebhook(hooks.http.URL, eventConnectionSuccess)
	e.connect("lee")

	first := hooks.next(t)
	if first.header.Get("X-ATP-Attempt") != "1" {
		t.Fatalf("first attempt header = %v", first.header)
	}
	// The retry waits 2 s (WebhookBackoff), then 4 s.
	for attempt, wait := range []time.Duration{2 * time.Second, 4 * time.Second} {
		due := e.clock.nextTimer(t)
		if got := due.Sub(e.clock.Now()); got != wait {
			t.Fatalf("retry %d waits %s, want %s", attempt+1, got, wait)
		}
		e.clock.Advance(wait)
		hit := hooks.next(t)
		if hit.header.Get("X-ATP-Attempt") != strconv.Itoa(attempt+2) || hit.header.Get("X-ATP-Delivery") != first.header.Get("X-ATP-Delivery") {
			t.Fatalf("retry headers = %v", hit.header)
		}
		if hit.header.Get("X-ATP-Timestamp") != strconv.FormatInt(e.clock.Now().Unix(), 10) {
			t.Fatalf("retry timestamp %s, want the time of the retry %d", hit.header.Get("X-ATP-Timestamp"), e.clock.Now().Unix())
		}
		if err := VerifyWebhook(secret, hit.header, hit.body, e.clock.Now(), time.Minute); err != nil {
			t.Fatalf("retry signature: %v", err)
		}
		if string(hit.body) != string(first.body) {
			t.Fatal("the retry's body differs from the first attempt's")
		}
	}
	eventually(t, "the delivery to be logged as delivered", func() bool {
		return strings.Contains(e.logs.String(), `msg="webhook delivered"`)
	})
	e.checkLogs()
}

// Deliveries end after WebhookMaxAttempts, and at once on a status that a
// retry cannot fix.
func TestWebhookGivesUp(t *testing.T) {
	e := newOAuthEnv(t, func(c *Config) { c.WebhookMaxAttempts = 2 })
	hooks := newWebhookReceiver(t, 500, 500, http.StatusBadRequest)
	e.registerWebhook(hooks.http.URL, eventConnectionSuccess)
	e.connect("max")
	hooks.next(t)
	e.clock.Advance(e.clock.nextTimer(t).Sub(e.clock.Now()))
	hooks.next(t)
	eventually(t, "the delivery to be given up", func() bool {
		return strings.Contains(e.logs.String(), `msg="webhook delivery failed; giving up"`) && strings.Contains(e.logs.String(), "attempts=2")
	})

	// 400: given up after one attempt.
	e.connect("ned")
	if hit := hooks.next(t); hit.header.Get("X-ATP-Attempt") != "1" {
		t.Fatalf("attempt = %v", hit.header)
	}
	eventually(t, "the 400 delivery to be given up", func() bool {
		return strings.Count(e.logs.String(), `msg="webhook delivery failed; giving up"`) == 2 && strings.Contains(e.logs.String(), "attempts=1")
	})
	// Both are recorded as failed in the outbox, with why.
	list, err := e.srv.Store().WebhookDeliveries(context.Background(), store.DefaultOwner)
	if err != nil || len(list) != 2 {
		t.Fatalf("deliveries = %+v, %v", list, err)
	}
	for i, want := range []struct {
		attempts int
		last     string
	}{{2, "500 Internal Server Error"}, {1, "400 Bad Request"}} {
		if d := list[i]; d.State != store.DeliveryFailed || d.Attempts != want.attempts || d.LastError != want.last {
			t.Errorf("delivery %d = %s after %d attempts (%q), want failed after %d (%q)", i, d.State, d.Attempts, d.LastError, want.attempts, want.last)
		}
	}
}

func TestVerifyWebhook(t *testing.T) {
	now := time.Unix(1_900_000_000, 0)
	body := []byte(`{"id":"evt_1"}`)
	h := http.Header{}
	h.Set("X-ATP-Timestamp", strconv.FormatInt(now.Unix(), 10))
	h.Set("X-ATP-Signature", SignWebhook("whsec_a", now.Unix(), body))
	if err := VerifyWebhook("whsec_a", h, body, now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name   string
		secret string
		body   string
		now    time.Time
		words  string
	}{
		{"other secret", "whsec_b", string(body), now, "does not match"},
		{"changed body", "whsec_a", `{"id":"evt_2"}`, now, "does not match"},
		{"old delivery", "whsec_a", string(body), now.Add(10 * time.Minute), "more than the 1m0s allowed"},
	} {
		if err := VerifyWebhook(c.secret, h, []byte(c.body), c.now, time.Minute); err == nil || !strings.Contains(err.Error(), c.words) {
			t.Fatalf("%s: %v, want %q", c.name, err, c.words)
		}
	}
	h.Set("X-ATP-Timestamp", "yesterday")
	if err := VerifyWebhook("whsec_a", h, body, now, time.Minute); err == nil || !strings.Contains(err.Error(), `got "yesterday"`) {
		t.Fatalf("bad timestamp: %v", err)
	}
	// The signature covers the timestamp: moving it breaks the signature.
	h.Set("X-ATP-Timestamp", strconv.FormatInt(now.Unix()+1, 10))
	if err := VerifyWebhook("whsec_a", h, body, now, time.Minute); err == nil {
		t.Fatal("a moved timestamp verified")
	}
}
