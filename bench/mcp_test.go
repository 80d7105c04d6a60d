package bench

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/atpgo/atp/runtime"
)

// mcpPath is one library's streamable HTTP handler serving get_forecast.
type mcpPath struct {
	name    string
	handler func(testing.TB) http.Handler
}

func mcpPaths() []mcpPath {
	return []mcpPath{
		{"atp", func(tb testing.TB) http.Handler {
			h, err := ATPHandler()
			if err != nil {
				tb.Fatal(err)
			}
			return h
		}},
		{"gosdk_typed", func(testing.TB) http.Handler { return GoSDKHandler() }},
		{"mcpgo_typed_validate", func(testing.TB) http.Handler { return MCPGoHandler(true) }},
	}
}

// newCallRequest is the POST a host sends for one tools/call, as the server
// receives it on loopback.
func newCallRequest(body []byte) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/mcp", bytes.NewReader(body))
	r.RemoteAddr = "127.0.0.1:50000"
	SetCallHeaders(r.Header)
	return r
}

// postCall sends one tools/call from a plain HTTP client.
func postCall(c *http.Client, url string, body []byte) (int, []byte, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	SetCallHeaders(req.Header)
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	b, err := drain(resp.Body)
	return resp.StatusCode, b, err
}

func TestMCPCallPaths(t *testing.T) {
	body := CallBody()
	for _, p := range mcpPaths() {
		t.Run(p.name+"/server", func(t *testing.T) {
			w := httptest.NewRecorder()
			p.handler(t).ServeHTTP(w, newCallRequest(body))
			if err := CheckCallAnswer(w.Code, w.Body.Bytes()); err != nil {
				t.Fatal(err)
			}
		})
		t.Run(p.name+"/e2e", func(t *testing.T) {
			ts := httptest.NewServer(p.handler(t))
			defer ts.Close()
			status, b, err := postCall(ts.Client(), ts.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			if err := CheckCallAnswer(status, b); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// BenchmarkMCPCall is one tools/call of get_forecast over streamable HTTP,
// stateless with JSON responses (each library's leanest HTTP mode), the
// request and response checked.
//
//	server: the handler's ServeHTTP with a recorder, no network.
//	e2e: a plain JSON-RPC HTTP client over loopback with keep-alive; B/op
//	and allocs/op count client and server together.
func BenchmarkMCPCall(b *testing.B) {
	body := CallBody()
	for _, p := range mcpPaths() {
		b.Run(p.name+"/server", func(b *testing.B) {
			h := p.handler(b)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, newCallRequest(body))
				if w.Code != http.StatusOK {
					b.Fatal(CheckCallAnswer(w.Code, w.Body.Bytes()))
				}
			}
		})
		b.Run(p.name+"/e2e", func(b *testing.B) {
			ts := httptest.NewServer(p.handler(b))
			defer ts.Close()
			c := ts.Client()
			b.ReportAllocs()
			for b.Loop() {
				status, out, err := postCall(c, ts.URL, body)
				if err != nil || status != http.StatusOK {
					b.Fatal(err, CheckCallAnswer(status, out))
				}
			}
		})
	}
}

// BenchmarkRegister builds a server with N copies of the tool, as a
// program does at start: atp-go's Toolkit.Add alone (what the ATP
// transports need), atp-go's mcp.NewServer over that toolkit, and each
// peer's server with its typed tools.
func BenchmarkRegister(b *testing.B) {
	for _, n := range []int{1, 100} {
		tools := make([]*runtime.Tool, 0, n)
		for _, name := range toolNames(n) {
			tools = append(tools, weatherTool(name))
		}
		prefix := "tools=" + strconv.Itoa(n) + "/"
		b.Run(prefix+"atp_toolkit", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tk := runtime.NewToolkit("weather", runtime.WithLogger(quiet))
				if err := tk.Add(tools...); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(prefix+"atp_mcp", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ATPServer(n); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(prefix+"gosdk_typed", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				GoSDKServer(n)
			}
		})
		b.Run(prefix+"mcpgo_typed_validate", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				MCPGoServer(n, true)
			}
		})
	}
}
