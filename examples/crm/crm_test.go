package crm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/atpgo/atp/examples/crm"
	"github.com/atpgo/atp/runtime"
)

// standIn is a local stand-in for the CRM's REST API.
func standIn(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer user-token" {
			http.Error(w, `{"message":"bad token"}`, http.StatusUnauthorized)
			return
		}
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/crm/v3/objects/companies":
			var in map[string]any
			if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			json.NewEncoder(w).Encode(map[string]any{"id": "42", "name": in["name"], "industry": in["industry"], "created_at": "2026-11-21T05:00:00Z"})
		case r.Method == http.MethodGet && r.URL.Path == "/crm/v3/objects/contacts":
			if r.URL.Query().Get("limit") != "20" {
				http.Error(w, "limit "+r.URL.Query().Get("limit"), http.StatusBadRequest)
				return
			}
			w.Write([]byte(`{"results":[{"id":"c1","email":"ada@example.com","company_id":"42"}]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestCRMTools(t *testing.T) {
	api := standIn(t)
	tk := runtime.NewToolkit("crm")
	if err := tk.Add((&crm.Client{BaseURL: api.URL}).ATPTools()...); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tok := runtime.WithAuthToken("user-token")

	res, err := tk.Invoke(ctx, "create_company", []byte(`{"name":"Acme","industry":"software","address":{"city":"Paris","country":"FR"}}`), tok)
	if err != nil || string(res) != `{"id":"42","name":"Acme","industry":"software","created_at":"2026-11-21T05:00:00Z"}` {
		t.Errorf("create_company: %s, %v", res, err)
	}
	// The default limit (20) is applied when the model leaves it out.
	res, err = tk.Invoke(ctx, "get_contacts", []byte(`{}`), tok)
	if err != nil || !strings.Contains(string(res), "ada@example.com") {
		t.Errorf("get_contacts: %s, %v", res, err)
	}

	_, err = tk.Invoke(ctx, "create_company", []byte(`{"name":"Acme"}`))
	if !errors.Is(err, runtime.ErrMissingAuthToken) {
		t.Errorf("no token: %v", err)
	}
	_, err = tk.Invoke(ctx, "create_company", []byte(`{"name":"Acme","industry":"mining","address":{"city":"Paris","country":"France"}}`), tok)
	want := `invalid params for create_company: industry: expected one of "software", "finance", "healthcare", "retail", got "mining"; address.country: expected string matching ^[A-Z]{2}$, got "France"`
	if err == nil || err.Error() != want {
		t.Errorf("bad params:\n got %v\nwant %s", err, want)
	}
	_, err = tk.Invoke(ctx, "create_company", []byte(`{"name":"Acme"}`), runtime.WithAuthToken("stolen"))
	var terr *runtime.ToolError
	if !errors.As(err, &terr) || !strings.Contains(err.Error(), "401 Unauthorized") {
		t.Errorf("API refusal: %v", err)
	}
}
