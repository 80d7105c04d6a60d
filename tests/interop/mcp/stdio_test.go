package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// TestServeStdioShutdown cancels ServeStdio's context while a call runs: the
// call's context is cancelled and ServeStdio returns nil.
func TestServeStdioShutdown(t *testing.T) {
	p := newProbe()
	defer close(p.release)
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", p), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	c2sR, c2sW := io.Pipe()
	s2cR, s2cW := io.Pipe()
	defer s2cW.Close()
	defer c2sR.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- srv.ServeStdio(ctx, c2sR, s2cW) }()
	cs, err := newClient().Connect(context.Background(), &sdk.IOTransport{Reader: s2cR, Writer: c2sW}, &sdk.ClientSessionOptions{ProtocolVersion: legacy})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()

	type outcome struct {
		res *sdk.CallToolResult
		err error
	}
	called := make(chan outcome, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "block"})
		called <- outcome{res, err}
	}()
	waitFor(t, p.started, "block to start")
	cancel()
	if cause := waitFor(t, p.cancelled, "block's context to end"); !errors.Is(cause, context.Canceled) {
		t.Errorf("block's context ended with %v, want context.Canceled", cause)
	}
	if err := waitFor(t, served, "ServeStdio to return"); err != nil {
		t.Errorf("ServeStdio after cancel: %v, want nil", err)
	}
	s2cW.Close()
	// The cancelled call's answer races the session's end: the host gets
	// either that answer or the end of the stream, never a hang.
	o := waitFor(t, called, "the call to return")
	answered := o.err == nil && o.res.IsError && text(t, o.res) == "call to block cancelled: context canceled"
	if !answered && !errors.Is(o.err, io.EOF) {
		t.Errorf("call during shutdown: %+v, %v; want its cancellation or the end of the stream", o.res, o.err)
	}
}

func TestServeStdioCancelledBeforeStart(t *testing.T) {
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", newProbe()), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	if err := srv.ServeStdio(ctx, strings.NewReader(initialize+"\n"), &out); err != nil || out.Len() != 0 {
		t.Errorf("got %v, wrote %q; want nil and nothing written", err, out.String())
	}
}

// TestServeStdioRawLines drives the stdio transport with raw lines, as a
// host that is not Go would; the host closing its end ends ServeStdio with
// nil.
func TestServeStdioRawLines(t *testing.T) {
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", newProbe()), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	served := make(chan error, 1)
	go func() {
		served <- srv.ServeStdio(context.Background(), inR, outW)
		outW.Close()
	}()
	go func() {
		io.WriteString(inW, initialize+"\n"+
			`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+
			`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"greet","arguments":{"name":"Ada","times":0}}}`+"\n")
	}()
	// Answers may come in any order; find the call's.
	sc := bufio.NewScanner(outR)
	var lines []string
	var resp struct {
		ID     int
		Result struct {
			Content []struct{ Type, Text string }
			IsError bool
		}
	}
	for len(lines) < 2 && sc.Scan() {
		lines = append(lines, sc.Text())
		var r struct{ ID int }
		if json.Unmarshal(sc.Bytes(), &r) == nil && r.ID == 2 {
			if err := json.Unmarshal(sc.Bytes(), &resp); err != nil {
				t.Fatal(err)
			}
		}
	}
	r := resp.Result
	if resp.ID != 2 || !r.IsError || len(r.Content) != 1 || r.Content[0].Type != "text" ||
		r.Content[0].Text != "invalid params for greet:\ntimes: expected integer >= 1, got 0" {
		t.Errorf("server wrote:\n%s\nwant an isError answer to id 2", strings.Join(lines, "\n"))
	}
	inW.Close()
	if err := waitFor(t, served, "ServeStdio to return at EOF"); err != nil {
		t.Errorf("ServeStdio at EOF: %v, want nil", err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("broken pipe") }

func TestServeStdioWriteError(t *testing.T) {
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", newProbe()), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	defer inW.Close()
	served := make(chan error, 1)
	go func() { served <- srv.ServeStdio(context.Background(), inR, failingWriter{}) }()
	if _, err := io.WriteString(inW, initialize+"\n"); err != nil {
		t.Fatal(err)
	}
	err = waitFor(t, served, "ServeStdio to return")
	if err == nil || !strings.Contains(err.Error(), "broken pipe") {
		t.Errorf("got %v, want the write error", err)
	}
}

// eofReader reads r and closes ended when r reports io.EOF: the moment the
// server learns that the host's input has ended.
type eofReader struct {
	r     io.Reader
	ended chan struct{}
	once  sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		e.once.Do(func() { close(e.ended) })
	}
	return n, err
}

// TestServeStdioAnswersCallsAtEOF pipes a whole session into ServeStdio and
// ends the input at once, as `printf '...' | atp mcp` does. The call still
// runs when the input ends (its tool waits for the EOF), and its answer
// must be written before ServeStdio returns.
func TestServeStdioAnswersCallsAtEOF(t *testing.T) {
	in := &eofReader{ended: make(chan struct{})}
	tk := runtime.NewToolkit("eofkit", runtime.WithLogger(quiet))
	err := tk.Add(&runtime.Tool{
		Name:        "after_eof",
		Description: "Answers once the host's input has ended.",
		InputSchema: json.RawMessage(emptyObject),
		Run: func(ctx context.Context, _ *runtime.Call, _ *atpimpl.Decoder) (any, error) {
			select {
			case <-in.ended:
				return map[string]bool{"answered": true}, nil
			case <-ctx.Done():
				return nil, context.Cause(ctx)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := mcp.NewServer(tk, mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	in.r = strings.NewReader(initialize + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"after_eof","arguments":{}}}` + "\n" +
		`{"jsonrpc":"2.0","id":3,"method":"tools/list"}` + "\n")
	var out lockedBuffer
	served := make(chan error, 1)
	go func() { served <- srv.ServeStdio(context.Background(), in, &out) }()
	if err := waitFor(t, served, "ServeStdio to return at EOF"); err != nil {
		t.Fatalf("ServeStdio at EOF: %v, want nil", err)
	}
	// Read only after ServeStdio returned: what is missing now is lost.
	answers := map[int]json.RawMessage{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var resp struct {
			ID     int
			Result json.RawMessage
		}
		if err := json.Unmarshal([]byte(line), &resp); err != nil {
			t.Fatalf("unreadable line %q: %v", line, err)
		}
		answers[resp.ID] = resp.Result
	}
	var call struct {
		IsError           bool
		StructuredContent map[string]bool
	}
	if err := json.Unmarshal(answers[2], &call); err != nil || call.IsError || !call.StructuredContent["answered"] {
		t.Errorf("answer to the tools/call (id 2): %s; want the tool's result {\"answered\":true}\nserver wrote:\n%s", answers[2], out.String())
	}
	if !strings.Contains(string(answers[3]), `"after_eof"`) {
		t.Errorf("answer to tools/list (id 3): %s; want the tool list\nserver wrote:\n%s", answers[3], out.String())
	}
}

// TestServeStdioEOFDrainBoundedByContext ends the input while a call that
// only its context ends is running: ServeStdio keeps waiting for it after
// EOF, and cancelling ctx still cancels it and ends ServeStdio.
func TestServeStdioEOFDrainBoundedByContext(t *testing.T) {
	p := newProbe()
	defer close(p.release)
	srv, err := mcp.NewServer(testKit(t, "http://127.0.0.1:0", p), mcp.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	in := &eofReader{ended: make(chan struct{}), r: strings.NewReader(initialize + "\n" +
		`{"jsonrpc":"2.0","method":"notifications/initialized"}` + "\n" +
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"block","arguments":{}}}` + "\n")}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	served := make(chan error, 1)
	go func() { served <- srv.ServeStdio(ctx, in, &out) }()
	waitFor(t, p.started, "block to start")
	waitFor(t, in.ended, "the input to end")
	select {
	case err := <-p.cancelled:
		t.Fatalf("block's context ended with %v at EOF; want it running until ctx is cancelled", err)
	case err := <-served:
		t.Fatalf("ServeStdio returned %v at EOF while block ran; want it to wait for the call", err)
	default:
	}
	cancel()
	if cause := waitFor(t, p.cancelled, "block's context to end"); !errors.Is(cause, context.Canceled) {
		t.Errorf("block's context ended with %v, want context.Canceled", cause)
	}
	if err := waitFor(t, served, "ServeStdio to return"); err != nil {
		t.Errorf("ServeStdio after cancel: %v, want nil", err)
	}
}
