package mcp

import (
	"context"
	"fmt"
	"io"

	mcpsdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// ServeStdio serves one MCP session over newline-delimited JSON-RPC, reading
// requests from in and writing responses to out: the stdio transport, for
// hosts that start the server as a subprocess (pass os.Stdin and os.Stdout;
// logs must then go to stderr, never to out). Calls run concurrently.
//
// It returns nil when the host closes in (EOF) or ctx is cancelled, after
// cancelling the contexts of running calls and waiting for them to return
// (a tool that ignores its context delays the return; give it a timeout).
// Otherwise it returns the read or write error that ended the session. It
// closes neither in nor out; a Read of in still blocked when ctx ends is
// left to finish on its own, as a read of os.Stdin cannot be interrupted.
func (s *Server) ServeStdio(ctx context.Context, in io.Reader, out io.Writer) error {
	if err := ctx.Err(); err != nil {
		return nil
	}
	t := &mcpsdk.IOTransport{Reader: io.NopCloser(in), Writer: nopWriteCloser{out}}
	session, err := s.sdk.Connect(withLifetime(ctx), t, nil)
	if err != nil {
		return fmt.Errorf("mcp: serve stdio: %w", err)
	}
	ended := make(chan error, 1)
	go func() { ended <- session.Wait() }()
	select {
	case err := <-ended:
		if err != nil {
			return fmt.Errorf("mcp: serve stdio: %w", err)
		}
		return nil
	case <-ctx.Done():
		// Close waits for running calls, which ctx's end has cancelled.
		session.Close()
		<-ended
		return nil
	}
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
