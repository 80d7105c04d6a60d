package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
)

// transport connects a real MCP client to a server one way.
type transport struct {
	name string
	// connect returns a client session to srv whose calls carry the end
	// user's token "user-token" if that transport carries one.
	connect func(t *testing.T, srv *mcp.Server) *sdk.ClientSession
	// tokenOpts make a server pass "user-token" to tools that need one.
	tokenOpts []mcp.Option
}

const tokenHeader = "X-ATP-Auth-Token"

func transports() []transport {
	stdio := func(version string) func(*testing.T, *mcp.Server) *sdk.ClientSession {
		return func(t *testing.T, srv *mcp.Server) *sdk.ClientSession {
			cs, _ := connectStdio(t, srv, version)
			return cs
		}
	}
	httpWithToken := func(version string) func(*testing.T, *mcp.Server) *sdk.ClientSession {
		return func(t *testing.T, srv *mcp.Server) *sdk.ClientSession {
			return connectHTTP(t, srv, version, http.Header{tokenHeader: {"user-token"}})
		}
	}
	// Over stdio the token is the server's own (atp mcp reads
	// ATP_AUTH_TOKEN); over HTTP each request carries it in a header.
	stdioToken := []mcp.Option{mcp.WithAuthToken("user-token")}
	httpToken := []mcp.Option{mcp.WithAuthTokenHeader(tokenHeader)}
	return []transport{
		{"stdio", stdio(latest), stdioToken},
		{"stdio-" + legacy, stdio(legacy), stdioToken},
		{"http", httpWithToken(latest), httpToken},
		{"http-" + legacy, httpWithToken(legacy), httpToken},
	}
}

func TestTransports(t *testing.T) {
	for _, tr := range transports() {
		t.Run(tr.name, func(t *testing.T) {
			api := standIn(t)
			p := newProbe()
			tk := testKit(t, api.URL, p)
			srv, err := mcp.NewServer(tk, append(tr.tokenOpts, mcp.WithLogger(quiet))...)
			if err != nil {
				t.Fatal(err)
			}
			cs := tr.connect(t, srv)
			ctx := context.Background()

			t.Run("list", func(t *testing.T) { checkList(t, cs, tk) })

			call := func(t *testing.T, name string, args any) *sdk.CallToolResult {
				t.Helper()
				res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: name, Arguments: args})
				if err != nil {
					t.Fatalf("tools/call %s: protocol error %v, want a result", name, err)
				}
				return res
			}
			failure := func(t *testing.T, name string, args any) string {
				t.Helper()
				res := call(t, name, args)
				if !res.IsError {
					t.Fatalf("tools/call %s: want isError, got success %+v", name, res)
				}
				if res.StructuredContent != nil {
					t.Errorf("tools/call %s: an error result has structuredContent %v", name, res.StructuredContent)
				}
				return text(t, res)
			}

			t.Run("object result: structuredContent and JSON text", func(t *testing.T) {
				res := call(t, "create_company", map[string]any{"name": "Acme", "industry": "software"})
				const want = `{"id":"42","name":"Acme","industry":"software","created_at":"2026-11-21T05:00:00Z"}`
				if res.IsError || text(t, res) != want {
					t.Fatalf("got isError=%v text %q, want %s", res.IsError, text(t, res), want)
				}
				wantObj := map[string]any{"id": "42", "name": "Acme", "industry": "software", "created_at": "2026-11-21T05:00:00Z"}
				if !reflect.DeepEqual(res.StructuredContent, wantObj) {
					t.Errorf("structuredContent %#v, want %#v", res.StructuredContent, wantObj)
				}
			})
			t.Run("string result: the string itself as text", func(t *testing.T) {
				res := call(t, "greet", map[string]any{"name": "Ada", "times": 2})
				if res.IsError || text(t, res) != `Hello, Ada! Hello, Ada!` || res.StructuredContent != nil {
					t.Fatalf("got %+v text %q", res, text(t, res))
				}
			})
			t.Run("array result: JSON text only", func(t *testing.T) {
				res := call(t, "get_contacts", nil)
				if res.IsError || text(t, res) != `[{"id":"c1","email":"ada@example.com","company_id":"42"}]` || res.StructuredContent != nil {
					t.Fatalf("got %+v text %q", res, text(t, res))
				}
			})
			t.Run("invalid params: every problem, one per line", func(t *testing.T) {
				got := failure(t, "create_company", json.RawMessage(
					`{"name":"Acme","industry":"mining","address":{"city":"Paris","country":"France"},"extra":1}`))
				want := "invalid params for create_company:\n" +
					`industry: expected one of "software", "finance", "healthcare", "retail", got "mining"` + "\n" +
					`address.country: expected string matching ^[A-Z]{2}$, got "France"` + "\n" +
					`extra: unknown field (allowed: name, domain, industry, employees, tags, address)`
				if got != want {
					t.Errorf("got:\n%s\nwant:\n%s", got, want)
				}
			})
			t.Run("invalid params: arguments not an object", func(t *testing.T) {
				got := failure(t, "greet", json.RawMessage(`["Ada"]`))
				if !strings.HasPrefix(got, "invalid params for greet:\nparams: expected object") {
					t.Errorf("got %q", got)
				}
			})
			t.Run("tool error, token redacted", func(t *testing.T) {
				if got := failure(t, "echo_token", nil); got != "upstream refused token [REDACTED]" {
					t.Errorf("got %q", got)
				}
			})
			t.Run("tool error", func(t *testing.T) {
				got := failure(t, "greet", map[string]any{"name": " ", "times": 1})
				if got != "name is empty: give the name of the person to greet" {
					t.Errorf("got %q", got)
				}
			})
			t.Run("panic recovered, server keeps serving", func(t *testing.T) {
				got := failure(t, "boom", nil)
				if got != "tool boom failed: internal error (panic: assignment to entry in nil map)" {
					t.Errorf("got %q", got)
				}
				if res := call(t, "add", map[string]any{"a": 1, "b": 2}); res.IsError || text(t, res) != "3" {
					t.Errorf("call after the panic: %+v", res)
				}
			})
			t.Run("timeout", func(t *testing.T) {
				if got := failure(t, "slow", nil); got != "tool slow timed out after 1ms" {
					t.Errorf("got %q", got)
				}
			})
			t.Run("null where the output schema promises an object", func(t *testing.T) {
				got := failure(t, "nothing", nil)
				if got != "tool nothing returned null, not the object its output schema describes" {
					t.Errorf("got %q", got)
				}
			})
			t.Run("unknown tool: protocol error", func(t *testing.T) {
				_, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "nope"})
				if err == nil || !strings.Contains(err.Error(), `tool 'nope' not found`) {
					t.Fatalf("got %v, want a protocol error naming the tool", err)
				}
				// Over streamable HTTP, 2026-07-28 names the tool in a
				// header, and an unknown one is refused with 400 before any
				// JSON-RPC; elsewhere it is a JSON-RPC invalid-params error.
				var werr *jsonrpc.Error
				if tr.name != "http" && (!errors.As(err, &werr) || werr.Code != jsonrpc.CodeInvalidParams) {
					t.Errorf("got %v, want a JSON-RPC invalid-params error", err)
				}
			})
			t.Run("cancellation reaches the tool; calls run concurrently", func(t *testing.T) {
				callCtx, cancel := context.WithCancel(ctx)
				defer cancel()
				defer close(p.release) // so that a failure here cannot hang the cleanup
				returned := make(chan error, 1)
				go func() {
					_, err := cs.CallTool(callCtx, &sdk.CallToolParams{Name: "block"})
					returned <- err
				}()
				waitFor(t, p.started, "block to start")
				// Another call is served while block runs.
				if res := call(t, "add", map[string]any{"a": 2, "b": 2}); res.IsError || text(t, res) != "4" {
					t.Errorf("concurrent call: %+v", res)
				}
				cancel()
				if cause := waitFor(t, p.cancelled, "block's context to end"); !errors.Is(cause, context.Canceled) {
					t.Errorf("block's context ended with %v, want context.Canceled", cause)
				}
				if err := waitFor(t, returned, "CallTool to return"); !errors.Is(err, context.Canceled) {
					t.Errorf("CallTool after cancel: %v, want context.Canceled", err)
				}
			})
		})
	}
}

// checkList checks tools/list against the toolkit: every tool, its
// description, its schemas as written, and explicit annotations.
func checkList(t *testing.T, cs *sdk.ClientSession, tk *runtime.Toolkit) {
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*sdk.Tool{}
	for _, tool := range res.Tools {
		got[tool.Name] = tool
	}
	tools := tk.Tools()
	if len(res.Tools) != len(tools) {
		t.Errorf("listed %d tools, want %d", len(res.Tools), len(tools))
	}
	for _, want := range tools {
		tool := got[want.Name]
		if tool == nil {
			t.Errorf("tool %s not listed", want.Name)
			continue
		}
		if tool.Description != want.Description {
			t.Errorf("%s: description %q, want %q", want.Name, tool.Description, want.Description)
		}
		if !sameJSON(t, tool.InputSchema, want.InputSchema) {
			t.Errorf("%s: inputSchema %v, want %s", want.Name, tool.InputSchema, want.InputSchema)
		}
		if isObjectSchema(want.OutputSchema) {
			if !sameJSON(t, tool.OutputSchema, want.OutputSchema) {
				t.Errorf("%s: outputSchema %v, want %s", want.Name, tool.OutputSchema, want.OutputSchema)
			}
		} else if tool.OutputSchema != nil {
			t.Errorf("%s: outputSchema %v announced for a result that is not an object", want.Name, tool.OutputSchema)
		}
		a := tool.Annotations
		if a == nil {
			t.Errorf("%s: no annotations", want.Name)
			continue
		}
		if a.ReadOnlyHint != want.Hints.ReadOnly || a.IdempotentHint != want.Hints.Idempotent ||
			a.DestructiveHint == nil || *a.DestructiveHint != want.Hints.Destructive || a.OpenWorldHint != nil {
			t.Errorf("%s: annotations %+v (destructive %v), want %+v with destructiveHint explicit and openWorldHint unset",
				want.Name, *a, a.DestructiveHint, want.Hints)
		}
	}
	// The hints are explicit both ways, and the example tools cover both.
	if p := got["purge"].Annotations; !*p.DestructiveHint || p.ReadOnlyHint {
		t.Errorf("purge: %+v", p)
	}
	if g := got["greet"].Annotations; *g.DestructiveHint || !g.ReadOnlyHint || !g.IdempotentHint {
		t.Errorf("greet: %+v", g)
	}
}

// sameJSON reports whether got (as the client decoded it) is the JSON want.
func sameJSON(t *testing.T, got any, want json.RawMessage) bool {
	t.Helper()
	var w any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	return reflect.DeepEqual(got, w)
}

func isObjectSchema(s json.RawMessage) bool {
	var v struct {
		Type any `json:"type"`
	}
	return json.Unmarshal(s, &v) == nil && v.Type == "object"
}

// TestListWireBytes checks, on the bytes the server writes, that each
// schema is exactly the generated one (compacted): no reflection or
// re-encoding changed a key order, an escape or a number.
func TestListWireBytes(t *testing.T) {
	tk := testKit(t, "http://127.0.0.1:0", newProbe())
	srv, err := mcp.NewServer(tk, mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	cs, wire := connectStdio(t, srv, legacy)
	if _, err := cs.ListTools(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	var list struct {
		Result struct {
			Tools []struct {
				Name         string
				InputSchema  json.RawMessage
				OutputSchema json.RawMessage
				Annotations  json.RawMessage
			}
		}
	}
	found := false
	for line := range bytes.Lines(wire.Bytes()) {
		if bytes.Contains(line, []byte(`"tools":[`)) {
			if err := json.Unmarshal(line, &list); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("no tools/list response on the wire:\n%s", wire.Bytes())
	}
	compact := func(s json.RawMessage) string {
		var b bytes.Buffer
		if err := json.Compact(&b, s); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	for _, wt := range list.Result.Tools {
		tool, ok := tk.Tool(wt.Name)
		if !ok {
			t.Errorf("unexpected tool %s", wt.Name)
			continue
		}
		if string(wt.InputSchema) != compact(tool.InputSchema) {
			t.Errorf("%s: inputSchema on the wire\n%s\nwant\n%s", wt.Name, wt.InputSchema, compact(tool.InputSchema))
		}
		if isObjectSchema(tool.OutputSchema) && string(wt.OutputSchema) != compact(tool.OutputSchema) {
			t.Errorf("%s: outputSchema on the wire\n%s\nwant\n%s", wt.Name, wt.OutputSchema, compact(tool.OutputSchema))
		}
	}
	wantAnn := map[string]string{
		"greet":          `{"readOnlyHint":true,"destructiveHint":false,"idempotentHint":true}`,
		"create_company": `{"readOnlyHint":false,"destructiveHint":false,"idempotentHint":false}`,
		"purge":          `{"readOnlyHint":false,"destructiveHint":true,"idempotentHint":false}`,
	}
	for _, wt := range list.Result.Tools {
		if want, ok := wantAnn[wt.Name]; ok && string(wt.Annotations) != want {
			t.Errorf("%s: annotations %s, want %s", wt.Name, wt.Annotations, want)
		}
	}
}
