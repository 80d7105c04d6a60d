package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/atpgo/atp/mcp"
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
	sc := bufio.NewScanner(outR)
	var lines []string
	for len(lines) < 2 && sc.Scan() {
		lines = append(lines, sc.Text())
	}
	var resp struct {
		ID     int
		Result struct {
			Content []struct{ Type, Text string }
			IsError bool
		}
	}
	if len(lines) == 2 {
		if err := json.Unmarshal([]byte(lines[1]), &resp); err != nil {
			t.Fatal(err)
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
