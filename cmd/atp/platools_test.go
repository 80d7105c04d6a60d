package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

// atp call reaches a Go toolkit that serves atp serve over the Platools
// wire (runtime.TransportPlatools), as it reaches an ATP v1 one.
func TestCallPlatoolsToolkit(t *testing.T) {
	discard := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv, err := server.New(context.Background(), server.Config{Addr: "127.0.0.1:0", Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	_, secret, err := srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "platools"})
	if err != nil {
		t.Fatal(err)
	}
	_, llmKey, err := srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	tk := runtime.NewToolkit("hello", runtime.WithLogger(discard))
	if err := tk.Add(hello.ATPTools()...); err != nil {
		t.Fatal(err)
	}
	connected := make(chan struct{}, 1)
	toolkitDone := make(chan error, 1)
	go func() {
		toolkitDone <- tk.Serve(ctx, runtime.ServeConfig{
			URL: srv.URL() + "/?entity=hello&env=dev", APIKey: secret, Transport: runtime.TransportPlatools,
			OnState: func(s runtime.State) {
				if s.Kind == runtime.StateConnected {
					select {
					case connected <- struct{}{}:
					default:
					}
				}
			},
		})
	}()
	select {
	case <-connected:
	case err := <-toolkitDone:
		t.Fatalf("toolkit stopped before connecting: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-toolkitDone; err != nil {
			t.Errorf("toolkit Serve: %v", err)
		}
		<-served
		srv.Close()
	})

	te := newTestEnv(t)
	te.vars["ATP_URL"] = srv.URL()
	te.vars["ATP_API_KEY"] = llmKey
	code, out, stderr := te.atp("call", "--toolkit", "hello", "--tool", "greet", "--params", `{"name":"Ada","times":2}`)
	if code != exitOK || out != "\"Hello, Ada! Hello, Ada!\"\n" {
		t.Fatalf("call: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = te.atp("call", "--toolkit", "hello", "--tool", "add", "--params", `{"a":1.5,"b":2}`)
	if code != exitOK || out != "3.5\n" {
		t.Fatalf("call add: exit %d, %q", code, out)
	}
	// The toolkit's own error comes back as atp call's failure.
	code, out, stderr = te.atp("call", "--toolkit", "hello", "--tool", "greet", "--params", `{"name":" ","times":1}`)
	if code != exitFailure || out != "" || !strings.Contains(stderr, "name is empty: give the name of the person to greet") {
		t.Fatalf("call with a blank name: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	code, out, _ = te.atp("context", "--toolkit", "hello", "--provider", "anthropic")
	if code != exitOK || !strings.Contains(out, `"name": "greet"`) && !strings.Contains(out, `"name":"greet"`) {
		t.Fatalf("context: exit %d, %s", code, out)
	}
}
