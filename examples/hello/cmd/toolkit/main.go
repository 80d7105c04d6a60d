// Command toolkit serves the hello example's tools until it is stopped with
// SIGINT or SIGTERM, to an ATP server or to a Platos platform, whichever the
// environment names:
//
//	ATP_URL=http://127.0.0.1:7777 ATP_API_KEY=... go run ./examples/hello/cmd/toolkit
//	PLATOS_URL=https://platform.example PLATOS_SECRET=... go run ./examples/hello/cmd/toolkit
//
// With ATP_URL, ATP_TRANSPORT=http polls the server's HTTP inbox instead of
// holding a WebSocket open, for networks that block WebSockets. With
// PLATOS_URL the toolkit speaks the Platools SDK wire (atp serve accepts it
// too); the entity and environment go in its query, e.g.
// PLATOS_URL=http://127.0.0.1:7777/?entity=hello&env=dev.
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
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		return err
	}
	tk := runtime.NewToolkit("hello", runtime.WithLogger(logger))
	if err := tk.Add(hello.ATPTools()...); err != nil {
		return fmt.Errorf("add the hello tools: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// Serve returns nil once a signal has stopped it and running calls
	// have been answered.
	err = tk.Serve(ctx, cfg)
	if errors.Is(err, runtime.ErrSuperseded) {
		// A newer instance took over this entity on the platform: this one
		// is done, which is not a failure.
		logger.Info("toolkit stopped: a newer connection serves it now")
		return nil
	}
	return err
}

// configFromEnv chooses the transport by the variables that are set:
// PLATOS_URL and PLATOS_SECRET for a Platos platform, ATP_URL and
// ATP_API_KEY (and ATP_TRANSPORT) for an ATP server.
func configFromEnv(getenv func(string) string) (runtime.ServeConfig, error) {
	platos := getenv("PLATOS_URL") != "" || getenv("PLATOS_SECRET") != ""
	atp := getenv("ATP_URL") != "" || getenv("ATP_API_KEY") != ""
	var missing []error
	need := func(name, what string) string {
		v := getenv(name)
		if v == "" {
			missing = append(missing, fmt.Errorf("%s is not set: set it to %s", name, what))
		}
		return v
	}
	switch {
	case platos && atp:
		return runtime.ServeConfig{}, errors.New("both PLATOS_URL/PLATOS_SECRET and ATP_URL/ATP_API_KEY are set: set one pair, for a Platos platform or an ATP server")
	case platos:
		cfg := runtime.ServeConfig{
			URL:       need("PLATOS_URL", "the Platos platform's URL, e.g. https://platform.example/?entity=hello"),
			APIKey:    need("PLATOS_SECRET", "the Platos service secret"),
			Transport: runtime.TransportPlatools,
		}
		return cfg, errors.Join(missing...)
	}
	cfg := runtime.ServeConfig{
		URL:       need("ATP_URL", "the ATP server's base URL, e.g. http://127.0.0.1:7777"),
		APIKey:    need("ATP_API_KEY", "the toolkit's API key from the ATP server"),
		Transport: runtime.Transport(getenv("ATP_TRANSPORT")),
	}
	if len(missing) == 2 {
		missing = append(missing, errors.New("(or, for a Platos platform, set PLATOS_URL and PLATOS_SECRET)"))
	}
	return cfg, errors.Join(missing...)
}
