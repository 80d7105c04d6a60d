// Command toolkit serves the hello example's tools to an ATP server until it
// is stopped with SIGINT or SIGTERM.
//
//	ATP_URL=http://127.0.0.1:7777 ATP_API_KEY=... go run ./examples/hello/cmd/toolkit
//
// ATP_TRANSPORT=http polls the server's HTTP inbox instead of holding a
// WebSocket open, for networks that block WebSockets.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/runtime"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(logger); err != nil {
		logger.Error("toolkit stopped", "err", err)
		os.Exit(1)
	}
}

func run(logger *slog.Logger) error {
	url, key := os.Getenv("ATP_URL"), os.Getenv("ATP_API_KEY")
	var missing []error
	if url == "" {
		missing = append(missing, errors.New("ATP_URL is not set: set it to the ATP server's base URL, e.g. http://127.0.0.1:7777"))
	}
	if key == "" {
		missing = append(missing, errors.New("ATP_API_KEY is not set: set it to the toolkit's API key from the ATP server"))
	}
	if len(missing) > 0 {
		return errors.Join(missing...)
	}

	tk := runtime.NewToolkit("hello", runtime.WithLogger(logger))
	if err := tk.Add(hello.ATPTools()...); err != nil {
		return fmt.Errorf("add the hello tools: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Serve returns nil once a signal has stopped it and running calls
	// have been answered.
	return tk.Serve(ctx, runtime.ServeConfig{
		URL:       url,
		APIKey:    key,
		Transport: runtime.Transport(os.Getenv("ATP_TRANSPORT")),
	})
}
