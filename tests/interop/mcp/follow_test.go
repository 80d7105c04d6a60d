package mcp_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// workTool reports progress twice, then answers "done".
func workTool(name string) *runtime.Tool {
	return &runtime.Tool{
		Name:        name,
		Description: "Works in two steps.",
		InputSchema: json.RawMessage(emptyObject),
		Run: func(_ context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
			noParams(d)
			if d.Failed() {
				return nil, nil
			}
			call.Progress(1, 2, "first half")
			call.Progress(2, 2, "")
			return "done", nil
		},
	}
}

// progressLog collects the progress notifications a client receives (the
// client handles them on its own goroutines).
type progressLog chan sdk.ProgressNotificationParams

func (p progressLog) handler(_ context.Context, req *sdk.ProgressNotificationClientRequest) {
	p <- *req.Params
}

// take waits for n notifications.
func (p progressLog) take(t *testing.T, n int) []sdk.ProgressNotificationParams {
	t.Helper()
	var got []sdk.ProgressNotificationParams
	for range n {
		got = append(got, waitFor(t, p, "a progress notification"))
	}
	return got
}

// TestProgress checks that Call.Progress reaches the host as
// notifications/progress, before the result, on every transport, when the
// host sent a progressToken; and that nothing is sent without one.
func TestProgress(t *testing.T) {
	for _, tr := range []struct {
		name    string
		connect func(*testing.T, *mcp.Server, *sdk.ClientOptions) *sdk.ClientSession
	}{
		{"stdio", func(t *testing.T, s *mcp.Server, o *sdk.ClientOptions) *sdk.ClientSession {
			cs, _ := connectStdioWith(t, s, latest, o)
			return cs
		}},
		{"stdio-" + legacy, func(t *testing.T, s *mcp.Server, o *sdk.ClientOptions) *sdk.ClientSession {
			cs, _ := connectStdioWith(t, s, legacy, o)
			return cs
		}},
		{"http", func(t *testing.T, s *mcp.Server, o *sdk.ClientOptions) *sdk.ClientSession {
			return connectHTTPWith(t, s, latest, nil, o)
		}},
		{"http-" + legacy, func(t *testing.T, s *mcp.Server, o *sdk.ClientOptions) *sdk.ClientSession {
			return connectHTTPWith(t, s, legacy, nil, o)
		}},
	} {
		t.Run(tr.name, func(t *testing.T) {
			tk := runtime.NewToolkit("progress", runtime.WithLogger(quiet))
			if err := tk.Add(workTool("work")); err != nil {
				t.Fatal(err)
			}
			srv, err := mcp.NewServer(tk, mcp.WithLogger(quiet))
			if err != nil {
				t.Fatal(err)
			}
			log := make(progressLog, 16)
			cs := tr.connect(t, srv, &sdk.ClientOptions{ProgressNotificationHandler: log.handler})
			params := &sdk.CallToolParams{Name: "work"}
			params.SetProgressToken("tok-1")
			res, err := cs.CallTool(context.Background(), params)
			if err != nil || res.IsError || text(t, res) != "done" {
				t.Fatalf("call: %v %+v", err, res)
			}
			got := log.take(t, 2)
			want := []sdk.ProgressNotificationParams{
				{ProgressToken: "tok-1", Progress: 1, Total: 2, Message: "first half"},
				{ProgressToken: "tok-1", Progress: 2, Total: 2},
			}
			if len(got) != len(want) {
				t.Fatalf("progress notifications %+v, want %+v", got, want)
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.ProgressToken != w.ProgressToken || g.Progress != w.Progress || g.Total != w.Total || g.Message != w.Message {
					t.Errorf("notification %d: %+v, want %+v", i, g, w)
				}
			}
			// Without a progressToken nothing is sent: the next
			// notifications are those of a later call with a token.
			if _, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "work"}); err != nil {
				t.Fatal(err)
			}
			params.SetProgressToken("tok-2")
			if _, err := cs.CallTool(context.Background(), params); err != nil {
				t.Fatal(err)
			}
			for _, n := range log.take(t, 2) {
				if n.ProgressToken != "tok-2" {
					t.Errorf("notification %+v, want only tok-2's", n)
				}
			}
		})
	}
}

// TestToolListFollowsToolkit adds and removes tools while a host is
// connected: over stdio the host is told (notifications/tools/list_changed)
// and lists the new set; over HTTP each tools/list is current.
func TestToolListFollowsToolkit(t *testing.T) {
	tk := runtime.NewToolkit("live", runtime.WithLogger(quiet))
	if err := tk.Add(workTool("first")); err != nil {
		t.Fatal(err)
	}
	srv, err := mcp.NewServer(tk, mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	changed := make(chan struct{}, 16)
	cs, _ := connectStdioWith(t, srv, legacy, &sdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *sdk.ToolListChangedRequest) { changed <- struct{}{} },
	})
	hcs := connectHTTP(t, srv, legacy, nil)
	names := func(cs *sdk.ClientSession) []string {
		t.Helper()
		res, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, tool := range res.Tools {
			out = append(out, tool.Name)
		}
		slices.Sort(out)
		return out
	}
	check := func(want ...string) {
		t.Helper()
		for _, c := range []*sdk.ClientSession{cs, hcs} {
			if got := names(c); !slices.Equal(got, want) {
				t.Errorf("tools/list: %v, want %v", got, want)
			}
		}
	}

	if err := tk.Add(workTool("second")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "list_changed after Add")
	check("first", "second")
	if res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "second"}); err != nil || text(t, res) != "done" {
		t.Fatalf("call of the added tool: %v %+v", err, res)
	}

	if err := tk.Remove("first"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "list_changed after Remove")
	check("second")
	if _, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "first"}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("call of the removed tool: %v, want an unknown-tool error", err)
	}

	// A tool MCP cannot take is left out (and logged); the rest still follow.
	bad := &runtime.Tool{Name: "bad", InputSchema: json.RawMessage(`{"type":"string"}`),
		Run: func(context.Context, *runtime.Call, *atpimpl.Decoder) (any, error) { return nil, nil }}
	if err := tk.Add(bad, workTool("third")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, changed, "list_changed after a partly bad Add")
	check("second", "third")

	// After Close the server no longer follows.
	srv.Close()
	if err := tk.Add(workTool("fourth")); err != nil {
		t.Fatal(err)
	}
	check("second", "third")
}

func TestHTTPBodyLimit(t *testing.T) {
	ts := newHTTPServer(t, mcp.WithMaxBodyBytes(64))
	resp, body := post(t, ts.URL, initialize, nil)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "at most 64") {
		t.Errorf("status %d: %s; want 413 naming the limit", resp.StatusCode, body)
	}
	if _, err := mcp.NewServer(runtime.NewToolkit("x"), mcp.WithMaxBodyBytes(0)); err == nil || !strings.Contains(err.Error(), "WithMaxBodyBytes: expected a size > 0, got 0") {
		t.Errorf("WithMaxBodyBytes(0): %v", err)
	}
}

func TestServeStdioLineTooLong(t *testing.T) {
	srv, err := mcp.NewServer(runtime.NewToolkit("x", runtime.WithLogger(quiet)), mcp.WithMaxBodyBytes(64), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	err = srv.ServeStdio(context.Background(), strings.NewReader(initialize+"\n"), &out)
	if err == nil || !strings.Contains(err.Error(), "a message is longer than 64 bytes") {
		t.Errorf("got %v, want the line-length error", err)
	}
}
