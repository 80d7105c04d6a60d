package llmclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
)

func TestNewChecksOptions(t *testing.T) {
	for _, tc := range []struct {
		key  string
		opts []llmclient.Option
		want string
	}{
		{"", nil, "API key is empty"},
		{"a b", nil, "API key contains whitespace"},
		{"k", []llmclient.Option{llmclient.WithTransport("grpc")}, `transport: expected "http" or "ws", got "grpc"`},
		{"k", []llmclient.Option{llmclient.WithBaseURL("ftp://host")}, "expected an http or https URL"},
		{"k", []llmclient.Option{llmclient.WithBaseURL("http://")}, "no host"},
		{"k", []llmclient.Option{llmclient.WithBaseURL("http://u:p@host")}, "must not carry credentials"},
		{"k", []llmclient.Option{llmclient.WithBaseURL("http://host/?x=1")}, "expected no query or fragment"},
		{"k", []llmclient.Option{llmclient.WithBackoff(llmclient.Backoff{Base: -1})}, "Backoff.Base"},
		{"k", []llmclient.Option{llmclient.WithBackoff(llmclient.Backoff{Base: time.Second, Max: time.Millisecond})}, "less than Backoff.Base"},
		{"k", []llmclient.Option{llmclient.WithBackoff(llmclient.Backoff{Jitter: 2})}, "Backoff.Jitter"},
	} {
		_, err := llmclient.New(tc.key, tc.opts...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q): %v, want %q", tc.key, err, tc.want)
		}
	}
	for _, p := range []llmclient.Transport{"http", "HTTPS", "ws", "wss", ""} {
		c, err := llmclient.New("k", llmclient.WithTransport(p))
		if err != nil {
			t.Errorf("transport %q: %v", p, err)
			continue
		}
		want := llmclient.TransportWS
		if p == "http" || p == "HTTPS" || p == "" {
			want = llmclient.TransportHTTP
		}
		if c.Transport() != want {
			t.Errorf("transport %q: %s", p, c.Transport())
		}
		c.Close()
	}
}

// The process/ request is what docs/protocol.md §2.2 says: path under the base URL's
// prefix, "Authorization: ApiKey", the key repeated in the body.
func TestHTTPWire(t *testing.T) {
	s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Type") != "application/json" || r.Header.Get("Accept") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		writeJSON(w, 200, `{"type":"toolkit_context","request_id":"x","payload":{"toolkit_id":"crm","toolkit_name":"CRM","caption":"Sales tools","provider":"gemini","tools":null,"user_prompt":"hi"}}`)
	})
	c := stubClient(t, s.url+"/atp/")
	tc, err := c.GetToolkitContext(testCtx(t), "crm", "google", "hi")
	if err != nil {
		t.Fatal(err)
	}
	if tc.ToolkitName != "CRM" || tc.Caption != "Sales tools" || string(tc.Tools) != "[]" || string(tc.RequestTools()) != `[{"functionDeclarations":[]}]` {
		t.Errorf("context %+v", tc)
	}
	r := s.requests()[0]
	if r.method != "POST" || r.path != "/atp/api/v1/atp/llm-client/process/" || r.auth != "ApiKey "+stubKey {
		t.Errorf("request %+v", r)
	}
	for k, v := range map[string]any{"type": "get_toolkit_context", "toolkit_id": "crm", "provider": "gemini", "user_prompt": "hi", "api_key": stubKey} {
		if r.body[k] != v {
			t.Errorf("body %s = %v, want %v", k, r.body[k], v)
		}
	}
	if id, _ := r.body["request_id"].(string); !strings.HasPrefix(id, "context_") {
		t.Errorf("request_id %v", r.body["request_id"])
	}
}

func TestHTTPFailures(t *testing.T) {
	s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		json.NewDecoder(r.Body).Decode(&m)
		switch {
		case strings.Contains(r.URL.Path, "slow"):
			<-r.Context().Done()
		case strings.Contains(r.URL.Path, "teapot"):
			http.Error(w, "short and stout", http.StatusTeapot)
		default:
			writeJSON(w, 200, `{"type":"toolkit_context","status":"error","error":"toolkit \"x\" is not yours","payload":{"error":"toolkit \"x\" is not yours"}}`)
		}
	})
	ctx := testCtx(t)

	_, err := stubClient(t, s.url).GetToolkitContext(ctx, "x", "openai", "")
	var apiErr *llmclient.APIError
	if !errors.As(err, &apiErr) || apiErr.Message != `toolkit "x" is not yours` {
		t.Errorf("context error: %v", err)
	}

	_, err = stubClient(t, s.url+"/teapot").GetToolkitContext(ctx, "x", "openai", "")
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusTeapot || apiErr.Message != "short and stout" {
		t.Errorf("418: %v", err)
	}

	// A server that does not enforce timeout_ms: the client does.
	r, err := stubClient(t, s.url+"/slow").Call(ctx, "kit", "x", nil, llmclient.WithCallTimeout(10*time.Millisecond))
	if err != nil || r.Error != "the call to x got no answer within 10ms" {
		t.Errorf("local timeout: %+v, %v", r, err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := stubClient(t, s.url+"/slow").Call(cctx, "kit", "x", nil, llmclient.WithCallTimeout(time.Second)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	// Nothing listens: a Go error, without the key.
	c := stubClient(t, "http://127.0.0.1:1")
	_, err = c.CallTools(ctx, "kit", "anthropic", json.RawMessage(`[{"type":"tool_use","id":"a","name":"x","input":{}}]`))
	if err == nil || !strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), stubKey) {
		t.Errorf("refused: %v", err)
	}
	// Input that is no tool call list.
	_, err = c.CallTools(ctx, "kit", "openai", json.RawMessage(`[{"type":"function_call","call_id":"a","name":"x","arguments":"{}"},{"type":"function_call","call_id":"b","arguments":"{}"}`))
	if err == nil || !strings.Contains(err.Error(), "provider: openai: tool calls are not valid JSON: unexpected end of JSON input") {
		t.Errorf("not JSON: %v", err)
	}
	_, err = c.CallTools(ctx, "kit", "openai", json.RawMessage(`[{"type":"function_call","call_id":"a","name":"x","arguments":"{}"},{"type":"function_call","call_id":"b","arguments":"{}"}]`))
	if err == nil || !strings.Contains(err.Error(), `provider: openai: tool call 1 (id "b"): name is missing`) {
		t.Errorf("no name: %v", err)
	}
	// Malformed arguments alone are answered without the server.
	out, err := c.CallTools(ctx, "kit", "openai", json.RawMessage(`[{"type":"function_call","call_id":"a","name":"x","arguments":"{not json"}]`))
	if want := `[{"type":"function_call_output","call_id":"a","output":"{\"error\":\"arguments: not valid JSON: invalid character 'n' looking for beginning of object key string at offset 1\"}"}]`; err != nil || string(out) != want {
		t.Errorf("bad arguments: %s, %v\nwant %s", out, err, want)
	}
	_, err = c.CallTools(ctx, "kit", "cohere", json.RawMessage(`[]`))
	if err == nil || !strings.Contains(err.Error(), `unknown provider "cohere"`) {
		t.Errorf("bad provider: %v", err)
	}
}

// Close ends what is in flight over HTTP too: a request, a wait between
// polls.
func TestCloseEndsHTTPRequests(t *testing.T) {
	started := make(chan string, 4)
	s := newStubAPI(t, func(n int, w http.ResponseWriter, r *http.Request) {
		started <- r.URL.Path
		if strings.Contains(r.URL.Path, "oauth") {
			writeJSON(w, 404, `{"error":"not connected","status":"pending"}`)
			return
		}
		<-r.Context().Done()
	})
	c := stubClient(t, s.url)
	done := make(chan error, 2)
	go func() {
		_, err := c.Call(context.Background(), "kit", "x", nil)
		done <- err
	}()
	go func() {
		_, err := c.WaitForConnection(context.Background(), "hubspot", "u1", time.Hour)
		done <- err
	}()
	<-started
	<-started
	c.Close()
	for range 2 {
		if err := <-done; !errors.Is(err, llmclient.ErrClosed) {
			t.Errorf("err = %v, want ErrClosed", err)
		}
	}
}
