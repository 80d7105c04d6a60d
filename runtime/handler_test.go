package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type greeting struct {
	Text string   `json:"text"`
	Tags []string `json:"tags"`
	Loud bool     `json:"loud"`
}

// greetTool is hand-written the way atpgen writes tools: name (string),
// times (integer >= 1), and the optional tags (array of strings) and loud
// (boolean).
func greetTool() *runtime.Tool {
	return &runtime.Tool{
		Name:           "greet",
		Description:    "Greet says hello.",
		Params:         []string{"name", "times", "tags", "loud"},
		RequiredParams: []string{"name", "times"},
		InputSchema: json.RawMessage(`{"type":"object","properties":{` +
			`"name":{"type":"string"},"times":{"type":"integer","minimum":1},` +
			`"tags":{"type":"array","items":{"type":"string"}},"loud":{"type":"boolean"}},` +
			`"required":["name","times"],"additionalProperties":false}`),
		OutputSchema: json.RawMessage(`{"type":"object"}`),
		Hints:        runtime.Hints{ReadOnly: true, Idempotent: true},
		Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
			var (
				name              string
				times             int64
				tags              []string
				loud              bool
				seenName, seenNum bool
			)
			if d.Object() {
				for d.Next() {
					switch string(d.Key()) {
					case "name":
						seenName = true
						name = d.String()
					case "times":
						seenNum = true
						times = d.Int(0)
						if times < 1 {
							d.Fail("integer >= 1", atpimpl.GotInt(times))
						}
					case "tags":
						if d.Array() {
							for d.NextItem() {
								tags = append(tags, d.String())
							}
						}
					case "loud":
						loud = d.Bool()
					default:
						d.Unknown("name, times, tags, loud")
					}
				}
				if !seenName {
					d.Missing("name", "string")
				}
				if !seenNum {
					d.Missing("times", "integer")
				}
			}
			if d.Failed() {
				return nil, nil
			}
			text := strings.TrimSpace(strings.Repeat("Hello, "+name+"! ", int(times)))
			if loud {
				text = strings.ToUpper(text)
			}
			return greeting{Text: text, Tags: tags, Loud: loud}, nil
		},
	}
}

// plainTool takes no params and runs fn.
func plainTool(name string, fn func(ctx context.Context, call *runtime.Call) (any, error)) *runtime.Tool {
	return &runtime.Tool{
		Name:        name,
		InputSchema: json.RawMessage(`{"type":"object","properties":{},"additionalProperties":false}`),
		Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
			if d.Object() {
				for d.Next() {
					d.Unknown("")
				}
			}
			if d.Failed() {
				return nil, nil
			}
			return fn(ctx, call)
		},
	}
}

// testKit is a toolkit "kit" with a tool for each outcome the handler maps.
// started receives a value when the "block" tool is running.
func testKit(t *testing.T, logs io.Writer) (tk *runtime.Toolkit, started chan struct{}) {
	t.Helper()
	if logs == nil {
		logs = io.Discard
	}
	tk = runtime.NewToolkit("kit", runtime.WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	started = make(chan struct{}, 1)
	secret := plainTool("secret", func(_ context.Context, call *runtime.Call) (any, error) {
		return string(call.AuthToken), nil
	})
	secret.NeedsAuthToken = true
	secret.AuthProvider, secret.AuthType, secret.AuthWith = "hubspot", "OAuth2", "access_token"
	slow := plainTool("slow", func(ctx context.Context, _ *runtime.Call) (any, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	slow.Timeout = time.Millisecond
	err := tk.Add(
		greetTool(),
		plainTool("fail", func(context.Context, *runtime.Call) (any, error) {
			return nil, errors.New("no customer with id 42")
		}),
		plainTool("boom", func(context.Context, *runtime.Call) (any, error) {
			panic("index out of range in secretFunc")
		}),
		slow,
		secret,
		plainTool("block", func(ctx context.Context, _ *runtime.Call) (any, error) {
			started <- struct{}{}
			<-ctx.Done()
			return nil, ctx.Err()
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	return tk, started
}

type reply struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func (r reply) errorText() string { s, _ := r.body["error"].(string); return s }

// problems returns the "problems" of an error body as path: message lines.
func (r reply) problems() []string {
	var out []string
	list, _ := r.body["problems"].([]any)
	for _, p := range list {
		m := p.(map[string]any)
		out = append(out, fmt.Sprintf("%s: %s", m["path"], m["message"]))
	}
	return out
}

func decodeReply(t *testing.T, status int, header http.Header, raw []byte) reply {
	t.Helper()
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		t.Errorf("status %d: body does not end with a newline: %s", status, raw)
	}
	r := reply{status: status, header: header, raw: strings.TrimSuffix(string(raw), "\n")}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q, want application/json (status %d, body %s)", ct, status, raw)
	}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			t.Fatalf("status %d: body is not a JSON object: %v: %s", status, err, raw)
		}
	}
	return r
}

// serve sends one request to h in-process.
func serve(t *testing.T, h http.Handler, req *http.Request) reply {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return decodeReply(t, rec.Code, rec.Header(), rec.Body.Bytes())
}

func newRequest(method, path, contentType, body string, headers ...string) *http.Request {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return req
}

func postJSON(path, body string, headers ...string) *http.Request {
	return newRequest(http.MethodPost, path, "application/json", body, headers...)
}

// mustFail checks that Handler refuses opts with an error saying want.
func mustFail(t *testing.T, tk *runtime.Toolkit, want string, opts ...runtime.HandlerOption) {
	t.Helper()
	h, err := tk.Handler(opts...)
	if err == nil || h != nil {
		t.Errorf("Handler = %v, %v; want an error saying %q", h, err, want)
		return
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not say %q", err, want)
	}
}

// mustHandler builds a handler that the test expects to be valid.
func mustHandler(t testing.TB, tk *runtime.Toolkit, opts ...runtime.HandlerOption) http.Handler {
	t.Helper()
	h, err := tk.Handler(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHandlerRefusesToBuildWithoutAuthentication(t *testing.T) {
	tk, _ := testKit(t, nil)
	mustFail(t, tk, "no authentication is configured: pass WithBearerToken or WithAuthenticator, or AllowUnauthenticated")
	mustFail(t, tk, "no authentication is configured", runtime.WithMaxBodyBytes(10), nil)
	mustFail(t, tk, "more than one authentication mode", runtime.WithBearerToken("t"), runtime.AllowUnauthenticated())
	mustFail(t, tk, "more than one authentication mode",
		runtime.WithBearerToken("t"), runtime.WithAuthenticator(func(*http.Request) error { return nil }))
	mustFail(t, tk, "WithBearerToken: the token is empty", runtime.WithBearerToken(""))
	mustFail(t, tk, "WithAuthenticator: the function is nil", runtime.WithAuthenticator(nil))
	mustFail(t, tk, "WithAuthTokenFrom: the function is nil", runtime.AllowUnauthenticated(), runtime.WithAuthTokenFrom(nil))
	mustFail(t, tk, "WithMaxBodyBytes: expected a positive size, got 0", runtime.AllowUnauthenticated(), runtime.WithMaxBodyBytes(0))
	mustFail(t, tk, "toolkit kit")
	// Every problem at once.
	mustFail(t, tk, "WithBearerToken: the token is empty; WithMaxBodyBytes: expected a positive size, got -1",
		runtime.WithBearerToken(""), runtime.WithMaxBodyBytes(-1))
}

func TestHandlerBearerToken(t *testing.T) {
	logs := &lockedBuffer{}
	tk, _ := testKit(t, logs)
	const token, next = "s3cr3t-token-A", "rotated-token-B"
	h := mustHandler(t, tk, runtime.WithBearerToken(token), runtime.WithBearerToken(next))
	path := "/atp/kit/greet/"
	body := `{"name":"Ada","times":1}`

	for _, tc := range []struct {
		name, auth, wantErr, wantChallenge string
	}{
		{"no header", "", "unauthorized: send \"Authorization: Bearer <token>\"", `Bearer realm="atp"`},
		{"other scheme", "Basic " + token, "unauthorized: send", `Bearer realm="atp"`},
		{"scheme only", "Bearer", "unauthorized: send", `Bearer realm="atp"`},
		{"empty token", "Bearer   ", "unauthorized: send", `Bearer realm="atp"`},
		{"wrong token, same length", "Bearer s3cr3t-token-X", "unauthorized: the bearer token is not valid", `invalid_token`},
		{"prefix of the token", "Bearer s3cr3t", "the bearer token is not valid", `invalid_token`},
		{"token plus a suffix", "Bearer " + token + "x", "the bearer token is not valid", `invalid_token`},
		{"token in another case", "Bearer " + strings.ToUpper(token), "the bearer token is not valid", `invalid_token`},
		{"two tokens glued", "Bearer " + token + next, "the bearer token is not valid", `invalid_token`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, h, postJSON(path, body, "Authorization", tc.auth))
			if r.status != http.StatusUnauthorized || !strings.Contains(r.errorText(), tc.wantErr) {
				t.Errorf("got %d %s, want 401 saying %q", r.status, r.raw, tc.wantErr)
			}
			if got := r.header.Get("WWW-Authenticate"); !strings.Contains(got, tc.wantChallenge) {
				t.Errorf("WWW-Authenticate %q, want it to hold %q", got, tc.wantChallenge)
			}
			if strings.Contains(r.raw, "s3cr3t") || strings.Contains(r.raw, "rotated") {
				t.Errorf("the answer quotes a token: %s", r.raw)
			}
		})
	}
	for _, auth := range []string{"Bearer " + token, "bearer " + token, "Bearer " + next, "BEARER  " + next + " "} {
		r := serve(t, h, postJSON(path, body, "Authorization", auth))
		if r.status != http.StatusOK {
			t.Errorf("Authorization %q: got %d %s, want 200", auth, r.status, r.raw)
		}
	}
	// Authentication comes before routing: a stranger cannot probe names.
	for _, p := range []string{"/atp/kit/", "/atp/kit/nope/", "/atp/other/", "/elsewhere"} {
		if r := serve(t, h, newRequest(http.MethodGet, p, "", "")); r.status != http.StatusUnauthorized {
			t.Errorf("GET %s without a token: got %d, want 401", p, r.status)
		}
	}
	if !strings.Contains(logs.String(), "request refused") {
		t.Errorf("refusals are not logged at debug level: %s", logs)
	}
	if strings.Contains(logs.String(), "s3cr3t") || strings.Contains(logs.String(), "rotated") {
		t.Errorf("a token reached the log: %s", logs)
	}
}

func TestHandlerAuthenticator(t *testing.T) {
	logs := &lockedBuffer{}
	tk, _ := testKit(t, logs)
	h := mustHandler(t, tk, runtime.WithAuthenticator(func(r *http.Request) error {
		switch r.Header.Get("X-Key") {
		case "good":
			return nil
		case "readonly":
			return fmt.Errorf("%w: key readonly may not call tools", runtime.ErrForbidden)
		case "expired":
			return fmt.Errorf("%w: the key has expired", runtime.ErrUnauthorized)
		}
		return errors.New("db lookup for key " + r.Header.Get("X-Key") + " failed")
	}))
	path := "/atp/kit/greet/"
	body := `{"name":"Ada","times":1}`
	for _, tc := range []struct {
		key     string
		status  int
		wantErr string
	}{
		{"good", http.StatusOK, ""},
		{"readonly", http.StatusForbidden, "forbidden: key readonly may not call tools"},
		{"expired", http.StatusUnauthorized, "unauthorized: the key has expired"},
		{"leaky-key", http.StatusUnauthorized, "unauthorized"},
	} {
		r := serve(t, h, postJSON(path, body, "X-Key", tc.key))
		if r.status != tc.status || r.errorText() != tc.wantErr {
			t.Errorf("key %s: got %d %s, want %d %q", tc.key, r.status, r.raw, tc.status, tc.wantErr)
		}
	}
	if strings.Contains(logs.String(), "leaky-key") {
		t.Errorf("the authenticator's error text reached the log: %s", logs)
	}
}

func TestHandlerAllowUnauthenticated(t *testing.T) {
	tk, _ := testKit(t, nil)
	h := mustHandler(t, tk, runtime.AllowUnauthenticated())
	r := serve(t, h, postJSON("/atp/kit/greet/", `{"name":"Ada","times":2}`))
	if r.status != http.StatusOK || r.raw != `{"result":{"text":"Hello, Ada! Hello, Ada!","tags":null,"loud":false}}` {
		t.Errorf("got %d %s", r.status, r.raw)
	}
}

func TestHandlerDescribes(t *testing.T) {
	tk, _ := testKit(t, nil)
	h := mustHandler(t, tk, runtime.AllowUnauthenticated())

	for _, path := range []string{"/atp/kit/", "/atp/kit"} {
		r := serve(t, h, newRequest(http.MethodGet, path, "", ""))
		if r.status != http.StatusOK || r.body["toolkit"] != "kit" {
			t.Fatalf("GET %s: %d %s", path, r.status, r.raw)
		}
		tools := r.body["tools"].([]any)
		var names []string
		for _, tool := range tools {
			names = append(names, tool.(map[string]any)["name"].(string))
		}
		if want := []string{"block", "boom", "fail", "greet", "secret", "slow"}; !reflect.DeepEqual(names, want) {
			t.Errorf("GET %s lists %v, want %v", path, names, want)
		}
		greet := tools[3].(map[string]any)
		if greet["input_schema"].(map[string]any)["required"] == nil || greet["description"] != "Greet says hello." {
			t.Errorf("the listing lacks greet's schema or description: %v", greet)
		}
	}
	if r := serve(t, h, newRequest(http.MethodHead, "/atp/kit/", "", "")); r.status != http.StatusOK {
		t.Errorf("HEAD toolkit: %d", r.status)
	}

	r := serve(t, h, newRequest(http.MethodGet, "/atp/kit/greet/", "", ""))
	var got map[string]any
	json.Unmarshal([]byte(r.raw), &got)
	want := map[string]any{
		"toolkit":          "kit",
		"name":             "greet",
		"description":      "Greet says hello.",
		"params":           []any{"name", "times", "tags", "loud"},
		"required_params":  []any{"name", "times"},
		"hints":            map[string]any{"readOnlyHint": true, "idempotentHint": true},
		"auth_provider":    nil,
		"auth_type":        nil,
		"auth_with":        nil,
		"needs_auth_token": false,
		"input_schema":     mustJSON(greetTool().InputSchema),
		"output_schema":    map[string]any{"type": "object"},
	}
	if r.status != http.StatusOK || !reflect.DeepEqual(got, want) {
		t.Errorf("GET greet: %d\n got %v\nwant %v", r.status, got, want)
	}

	r = serve(t, h, newRequest(http.MethodGet, "/atp/kit/secret", "", ""))
	if r.body["auth_provider"] != "hubspot" || r.body["auth_type"] != "OAuth2" || r.body["auth_with"] != "access_token" ||
		r.body["needs_auth_token"] != true || r.body["output_schema"] != nil {
		t.Errorf("GET secret: %s", r.raw)
	}
}

func mustJSON(b []byte) any {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		panic(err)
	}
	return v
}

func TestHandlerStatuses(t *testing.T) {
	logs := &lockedBuffer{}
	tk, _ := testKit(t, logs)
	h := mustHandler(t, tk, runtime.AllowUnauthenticated(), runtime.WithMaxBodyBytes(64))
	long := `{"name":"` + strings.Repeat("a", 100) + `","times":1}`

	for _, tc := range []struct {
		name     string
		req      *http.Request
		status   int
		wantErr  string
		problems []string
		header   [2]string
	}{
		{name: "good call", req: postJSON("/atp/kit/greet/", `{"name":"Ada","times":1}`), status: 200},
		{
			name: "invalid params", req: postJSON("/atp/kit/greet/", `{"name":3,"times":0,"extra":true}`), status: 400,
			wantErr:  "invalid params for greet: name: expected string, got 3",
			problems: []string{"name: expected string, got 3", "times: expected integer >= 1, got 0", "extra: unknown field (allowed: name, times, tags, loud)"},
		},
		{
			name: "malformed JSON", req: postJSON("/atp/kit/greet/", `{"name":`), status: 400,
			wantErr: "invalid JSON", problems: []string{"name: invalid JSON: unexpected end of input at offset 8"},
		},
		{
			name: "JSON strings are not coerced", req: postJSON("/atp/kit/greet/", `{"name":"Ada","times":"2"}`), status: 400,
			problems: []string{`times: expected integer, got "2"`},
		},
		{name: "unknown toolkit", req: newRequest("GET", "/atp/other/", "", ""), status: 404, wantErr: `toolkit "other" not found (this handler serves "kit")`},
		{name: "unknown toolkit, tool route", req: postJSON("/atp/other/greet/", `{}`), status: 404, wantErr: `toolkit "other" not found`},
		{name: "unknown tool", req: postJSON("/atp/kit/nope/", `{}`), status: 404, wantErr: `unknown tool "nope" (available: block, boom, fail, greet, secret, slow)`},
		{name: "not an ATP path", req: newRequest("GET", "/health", "", ""), status: 404, wantErr: "not found: the routes are .../atp/{toolkit}/ and .../atp/{toolkit}/{tool}/"},
		{name: "PUT on a tool", req: newRequest("PUT", "/atp/kit/greet/", "application/json", `{}`), status: 405, wantErr: "method PUT not allowed", header: [2]string{"Allow", "GET, HEAD, POST"}},
		{name: "DELETE on a tool", req: newRequest("DELETE", "/atp/kit/greet/", "", ""), status: 405, header: [2]string{"Allow", "GET, HEAD, POST"}},
		{name: "POST on the toolkit", req: postJSON("/atp/kit/", `{}`), status: 405, header: [2]string{"Allow", "GET, HEAD"}},
		{name: "body over the limit", req: postJSON("/atp/kit/greet/", long), status: 413, wantErr: "request body too large: the limit is 64 bytes"},
		{name: "chunked body over the limit", req: chunked(postJSON("/atp/kit/greet/", long)), status: 413, wantErr: "the limit is 64 bytes"},
		{name: "form over the limit", req: chunked(newRequest("POST", "/atp/kit/greet/", "application/x-www-form-urlencoded", "name="+strings.Repeat("a", 100))), status: 413},
		{name: "multipart over the limit", req: chunked(multipartRequest(t, "/atp/kit/greet/", [][2]string{{"name", strings.Repeat("a", 100)}}, false)), status: 413},
		{name: "text/plain", req: newRequest("POST", "/atp/kit/greet/", "text/plain", `{}`), status: 415, wantErr: `unsupported Content-Type "text/plain"`, header: [2]string{"Accept-Post", "application/json, application/x-www-form-urlencoded, multipart/form-data"}},
		{name: "a body without Content-Type", req: newRequest("POST", "/atp/kit/greet/", "", `{}`), status: 415, wantErr: "the request has a body and no Content-Type"},
		{name: "JSON in latin1", req: newRequest("POST", "/atp/kit/greet/", "application/json; charset=iso-8859-1", `{}`), status: 415, wantErr: `expected UTF-8 JSON, got charset "iso-8859-1"`},
		{name: "unreadable Content-Type", req: newRequest("POST", "/atp/kit/greet/", "application/json; =", `{}`), status: 415, wantErr: "unreadable Content-Type"},
		{name: "tool error", req: postJSON("/atp/kit/fail/", `{}`), status: 422, wantErr: "no customer with id 42"},
		{name: "tool panic", req: postJSON("/atp/kit/boom/", `{}`), status: 500, wantErr: "tool boom failed with an internal error"},
		{name: "tool timeout", req: postJSON("/atp/kit/slow/", `{}`), status: 504, wantErr: "tool slow timed out after 1ms"},
		{name: "bodiless POST", req: newRequest("POST", "/atp/kit/fail/", "", ""), status: 422},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, h, tc.req)
			if r.status != tc.status {
				t.Errorf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.status == 200 {
				if _, ok := r.body["result"]; !ok {
					t.Errorf("no result: %s", r.raw)
				}
				return
			}
			if r.errorText() == "" || !strings.Contains(r.errorText(), tc.wantErr) {
				t.Errorf("error %q, want it to say %q", r.errorText(), tc.wantErr)
			}
			if tc.problems != nil && !reflect.DeepEqual(r.problems(), tc.problems) {
				t.Errorf("problems %q, want %q", r.problems(), tc.problems)
			}
			if tc.header[0] != "" && r.header.Get(tc.header[0]) != tc.header[1] {
				t.Errorf("%s: %q, want %q", tc.header[0], r.header.Get(tc.header[0]), tc.header[1])
			}
		})
	}
	if r := serve(t, h, postJSON("/atp/kit/greet/", `{"name":"Ada","times":0}`)); !strings.Contains(r.raw, `"expected integer >= 1, got 0"`) {
		t.Errorf("messages are HTML-escaped, hard to read: %s", r.raw)
	}
	if strings.Contains(serve(t, h, postJSON("/atp/kit/boom/", `{}`)).raw, "secretFunc") {
		t.Error("a panic's value reached the client")
	}
	if !strings.Contains(logs.String(), "secretFunc") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("a panic's value and stack did not reach the log: %s", logs)
	}
}

// chunked makes req's body length unknown in advance, so that only reading
// it finds it too large.
func chunked(req *http.Request) *http.Request {
	req.ContentLength = -1
	req.Body = io.NopCloser(req.Body)
	return req
}

func multipartRequest(t *testing.T, path string, fields [][2]string, withFile bool) *http.Request {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, f := range fields {
		if err := mw.WriteField(f[0], f[1]); err != nil {
			t.Fatal(err)
		}
	}
	if withFile {
		fw, err := mw.CreateFormFile("name", "ada.txt")
		if err != nil {
			t.Fatal(err)
		}
		fw.Write([]byte("Ada"))
	}
	mw.Close()
	return newRequest(http.MethodPost, path, mw.FormDataContentType(), body.String())
}

func TestHandlerForms(t *testing.T) {
	tk, _ := testKit(t, nil)
	h := mustHandler(t, tk, runtime.AllowUnauthenticated())
	form := func(values string) *http.Request {
		return newRequest(http.MethodPost, "/atp/kit/greet/", "application/x-www-form-urlencoded", values)
	}
	for _, tc := range []struct {
		name     string
		req      *http.Request
		status   int
		result   string
		problems []string
		wantErr  string
	}{
		{
			name: "strings coerced", req: form("name=Ada+L&times=2&loud=true"), status: 200,
			result: `{"text":"HELLO, ADA L! HELLO, ADA L!","tags":null,"loud":true}`,
		},
		{
			name: "repeated field becomes an array", req: form("name=Ada&times=1&tags=a&tags=b%26c"), status: 200,
			result: `{"text":"Hello, Ada!","tags":["a","b\u0026c"],"loud":false}`,
		},
		{
			name: "one value of an array property is an array", req: form("tags=solo&name=Ada&times=1"), status: 200,
			result: `{"text":"Hello, Ada!","tags":["solo"],"loud":false}`,
		},
		{
			name: "blank non-string inputs are not given", req: form("name=Ada&times=1&loud=&tags="), status: 200,
			result: `{"text":"Hello, Ada!","tags":null,"loud":false}`,
		},
		{
			name: "a blank string input is given", req: form("name=&times=1"), status: 200,
			result: `{"text":"Hello, !","tags":null,"loud":false}`,
		},
		{
			name: "the query string is not params", req: newRequest(http.MethodPost, "/atp/kit/greet/?times=3", "application/x-www-form-urlencoded", "name=Ada"), status: 400,
			problems: []string{"times: missing required field (expected integer)"},
		},
		{
			name: "bad values name the field", req: form("name=Ada&times=three&loud=yes"), status: 400,
			problems: []string{`times: expected integer, got "three"`, `loud: expected boolean, got "yes"`},
		},
		{
			name: "a blank required number is missing", req: form("name=Ada&times="), status: 400,
			problems: []string{"times: missing required field (expected integer)"},
		},
		{
			name: "a repeated scalar is an array", req: form("name=Ada&name=Bob&times=1"), status: 400,
			problems: []string{"name: expected string, got array"},
		},
		{
			name: "unknown fields", req: form("name=Ada&times=1&color=red"), status: 400,
			problems: []string{"color: unknown field (allowed: name, times, tags, loud)"},
		},
		{
			name: "bad escape", req: form("name=%zz&times=1"), status: 400,
			wantErr: "malformed form body: field name: invalid URL escape",
		},
		{
			name: "semicolon separator", req: form("name=Ada;times=1"), status: 400,
			wantErr: "malformed form body: invalid semicolon",
		},
		{
			name: "invalid UTF-8", req: form("name=%ff&times=1"), status: 400,
			problems: []string{"name: invalid UTF-8 in string"},
		},
		{
			name: "invalid UTF-8 in a field name", req: form("name=Ada&times=1&%ff=x"), status: 400,
			problems: []string{"[\"\uFFFD\"]: invalid UTF-8 in key"},
		},
		{
			name: "multipart", req: multipartRequest(t, "/atp/kit/greet/", [][2]string{{"name", "Ada"}, {"times", "2"}, {"tags", "x"}}, false), status: 200,
			result: `{"text":"Hello, Ada! Hello, Ada!","tags":["x"],"loud":false}`,
		},
		{
			name: "multipart file upload", req: multipartRequest(t, "/atp/kit/greet/", [][2]string{{"times", "2"}}, true), status: 400,
			problems: []string{"name: expected a form field, got a file upload (ada.txt)"},
		},
		{
			name: "multipart without boundary", req: newRequest(http.MethodPost, "/atp/kit/greet/", "multipart/form-data", "x"), status: 400,
			wantErr: "the Content-Type has no boundary",
		},
		{
			name: "truncated multipart", req: newRequest(http.MethodPost, "/atp/kit/greet/", "multipart/form-data; boundary=zz", "--zz\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nAda"), status: 400,
			wantErr: "reading the request body: malformed multipart body: field name: unexpected EOF",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := serve(t, h, tc.req)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.raw)
			}
			if tc.result != "" && r.raw != `{"result":`+tc.result+`}` {
				t.Errorf("got %s, want result %s", r.raw, tc.result)
			}
			if tc.problems != nil && !reflect.DeepEqual(r.problems(), tc.problems) {
				t.Errorf("problems %q, want %q", r.problems(), tc.problems)
			}
			if !strings.Contains(r.errorText(), tc.wantErr) {
				t.Errorf("error %q, want it to say %q", r.errorText(), tc.wantErr)
			}
		})
	}
}

func TestHandlerEndUserToken(t *testing.T) {
	logs := &lockedBuffer{}
	tk, _ := testKit(t, logs)
	const bearer, user = "caller-bearer-secret", "end-user-oauth-secret"

	unconfigured := mustHandler(t, tk, runtime.WithBearerToken(bearer))
	r := serve(t, unconfigured, postJSON("/atp/kit/secret/", `{}`, "Authorization", "Bearer "+bearer, "X-ATP-Auth-Token", user))
	if r.status != http.StatusInternalServerError || !strings.Contains(r.errorText(), "not configured to take one (WithAuthTokenFrom)") {
		t.Errorf("a token tool behind a handler without WithAuthTokenFrom: %d %s", r.status, r.raw)
	}

	h := mustHandler(t, tk, runtime.WithBearerToken(bearer), runtime.WithAuthTokenFrom(func(r *http.Request) string {
		return r.Header.Get("X-ATP-Auth-Token")
	}))
	r = serve(t, h, postJSON("/atp/kit/secret/", `{}`, "Authorization", "Bearer "+bearer))
	if r.status != http.StatusBadRequest || r.errorText() != "tool secret needs the end user's auth token and the request has none" {
		t.Errorf("without the end user's token (the bearer token must not stand in): %d %s", r.status, r.raw)
	}
	r = serve(t, h, postJSON("/atp/kit/secret/", `{}`, "Authorization", "Bearer "+bearer, "X-ATP-Auth-Token", user))
	if r.status != http.StatusOK || r.raw != `{"result":"`+user+`"}` {
		t.Errorf("with the end user's token: %d %s", r.status, r.raw)
	}
	if strings.Contains(logs.String(), bearer) || strings.Contains(logs.String(), user) {
		t.Errorf("a token reached the log: %s", logs)
	}
}

func TestHandlerClientGone(t *testing.T) {
	tk, started := testKit(t, nil)
	h := mustHandler(t, tk, runtime.AllowUnauthenticated())
	ctx, cancel := context.WithCancel(context.Background())
	req := postJSON("/atp/kit/block/", `{}`).WithContext(ctx)
	done := make(chan reply, 1)
	go func() { done <- serve(t, h, req) }()
	<-started
	cancel()
	r := <-done
	if r.status != http.StatusServiceUnavailable || r.errorText() != "call to block cancelled" {
		t.Errorf("got %d %s, want 503", r.status, r.raw)
	}
}

// TestHandlerMounted serves the handler under a prefix through real HTTP, in
// both ServeMux styles: the path as it comes, and http.StripPrefix.
func TestHandlerMounted(t *testing.T) {
	tk, _ := testKit(t, nil)
	h := mustHandler(t, tk, runtime.WithBearerToken("tok"))
	mux := http.NewServeMux()
	mux.Handle("/api/v1/", h)
	mux.Handle("/stripped/", http.StripPrefix("/stripped", h))
	mux.Handle("POST /patterned/atp/kit/{tool}/", h)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	do := func(method, path, body string, auth bool) reply {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if auth {
			req.Header.Set("Authorization", "Bearer tok")
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return decodeReply(t, resp.StatusCode, resp.Header, b)
	}
	for _, prefix := range []string{"/api/v1", "/stripped", "/patterned"} {
		t.Run(prefix, func(t *testing.T) {
			r := do("POST", prefix+"/atp/kit/greet/", `{"name":"Ada","times":1}`, true)
			if r.status != 200 || r.raw != `{"result":{"text":"Hello, Ada!","tags":null,"loud":false}}` {
				t.Errorf("good call: %d %s", r.status, r.raw)
			}
			r = do("POST", prefix+"/atp/kit/greet/", `{"name":"Ada","times":0}`, true)
			if r.status != 400 || !reflect.DeepEqual(r.problems(), []string{"times: expected integer >= 1, got 0"}) {
				t.Errorf("bad call: %d %s", r.status, r.raw)
			}
			r = do("POST", prefix+"/atp/kit/greet/", `{"name":"Ada","times":1}`, false)
			if r.status != 401 {
				t.Errorf("unauthenticated call: %d %s", r.status, r.raw)
			}
			if prefix == "/patterned" {
				return // the pattern routes POSTs to tools only
			}
			r = do("GET", prefix+"/atp/kit/", "", true)
			if r.status != 200 || r.body["toolkit"] != "kit" {
				t.Errorf("GET toolkit: %d %s", r.status, r.raw)
			}
			r = do("GET", prefix+"/atp/kit/greet/", "", true)
			if r.status != 200 || r.body["name"] != "greet" {
				t.Errorf("GET tool: %d %s", r.status, r.raw)
			}
		})
	}
}

// TestHandlerBrokenSchema: a hand-written tool whose schema is not JSON
// cannot be described; the handler says so instead of sending broken JSON.
func TestHandlerBrokenSchema(t *testing.T) {
	logs := &lockedBuffer{}
	tk := runtime.NewToolkit("kit", runtime.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	broken := plainTool("broken", func(context.Context, *runtime.Call) (any, error) { return 1, nil })
	broken.InputSchema = json.RawMessage(`{"type":`)
	if err := tk.Add(broken); err != nil {
		t.Fatal(err)
	}
	h := mustHandler(t, tk, runtime.AllowUnauthenticated())
	for _, path := range []string{"/atp/kit/", "/atp/kit/broken/"} {
		r := serve(t, h, newRequest(http.MethodGet, path, "", ""))
		if r.status != http.StatusInternalServerError || r.errorText() != "internal error encoding the answer" {
			t.Errorf("GET %s: %d %s", path, r.status, r.raw)
		}
	}
	if !strings.Contains(logs.String(), "encoding the answer") {
		t.Errorf("the encoding failure was not logged: %s", logs)
	}
	if r := serve(t, h, postJSON("/atp/kit/broken/", `{}`)); r.status != http.StatusOK || r.raw != `{"result":1}` {
		t.Errorf("calling it still works: %d %s", r.status, r.raw)
	}
}

// TestHandlerRouteAmbiguity: a toolkit named atp, or a prefix ending in
// /atp, still routes each path to what it names.
func TestHandlerRouteAmbiguity(t *testing.T) {
	tk := runtime.NewToolkit("atp")
	if err := tk.Add(plainTool("kit", func(context.Context, *runtime.Call) (any, error) { return "called", nil })); err != nil {
		t.Fatal(err)
	}
	h := mustHandler(t, tk, runtime.AllowUnauthenticated())
	for _, tc := range []struct{ path, want string }{
		{"/atp/atp/", `"toolkit":"atp"`},     // the toolkit at the root
		{"/atp/atp/atp/", `"toolkit":"atp"`}, // the toolkit under the prefix /atp
		{"/atp/atp/kit/", `"name":"kit"`},    // the tool
		{"/x/atp/atp/kit", `"name":"kit"`},   // the tool under a prefix, no slash
	} {
		r := serve(t, h, newRequest(http.MethodGet, tc.path, "", ""))
		if r.status != 200 || !strings.Contains(r.raw, tc.want) {
			t.Errorf("GET %s: %d %s, want %s", tc.path, r.status, r.raw, tc.want)
		}
	}
}

func BenchmarkHandlerPostJSON(b *testing.B) {
	tk := runtime.NewToolkit("kit", runtime.WithLogger(slog.New(slog.DiscardHandler)))
	if err := tk.Add(greetTool()); err != nil {
		b.Fatal(err)
	}
	h := mustHandler(b, tk, runtime.WithBearerToken("tok"))
	body := []byte(`{"name":"Ada","times":2,"tags":["a","b"]}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/atp/kit/greet/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer tok")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body.String())
		}
	}
}

func BenchmarkHandlerPostForm(b *testing.B) {
	tk := runtime.NewToolkit("kit", runtime.WithLogger(slog.New(slog.DiscardHandler)))
	if err := tk.Add(greetTool()); err != nil {
		b.Fatal(err)
	}
	h := mustHandler(b, tk, runtime.AllowUnauthenticated())
	body := url.Values{"name": {"Ada"}, "times": {"2"}, "tags": {"a", "b"}}.Encode()
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/atp/kit/greet/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Body.String())
		}
	}
}
