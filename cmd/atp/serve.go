package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

var serveCommand = &command{
	name:    "serve",
	summary: "run the ATP server (keys, toolkits, LLM clients, routing)",
	run:     runServe,
}

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", "atp serve [--addr 127.0.0.1:7777] [--db PATH|postgres://...] [--nats nats://...] [--dev] [--secret-key-file F] [--platforms FILE] [--public-url URL] [--json] [limit flags, see README's Limits]")
	addr := fs.String("addr", "127.0.0.1:7777", "`host:port` to listen on (port 0 picks a free one)")
	db := dbFlag(fs, e)
	dev := fs.Bool("dev", false, "development mode: on an empty database, create a toolkit key and an LLM key and print them")
	callTimeout := fs.Duration("call-timeout", 120*time.Second, "default time a routed tool call may take")
	origins := fs.String("allow-origin", "", "comma-separated extra Origins (scheme://host[:port]) allowed on the LLM WebSocket; \"*\" allows any")
	verbose := fs.Bool("verbose", false, "log every request and call (debug level): each call's toolkit, tool and duration, never its params or token")
	asJSON := fs.Bool("json", false, "print the start-up line as one JSON object, and log JSON lines (log/slog's JSONHandler) instead of text")
	privateHooks := fs.Bool("allow-private-webhooks", false, "development: let webhooks go to loopback, private and other non-public addresses (refused by default)")
	oauth := addOAuthFlags(fs)
	limits := addLimitFlags(fs)
	cluster := addClusterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *callTimeout <= 0 {
		return usagef("--call-timeout: expected a positive duration, got %s", *callTimeout)
	}
	path, err := resolveDB(e, *db)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	cfg := server.Config{
		Addr:        *addr,
		DBPath:      path,
		Dev:         *dev,
		CallTimeout: *callTimeout,

		AllowPrivateWebhooks: *privateHooks,
		Logger:               slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})),
	}
	if *asJSON {
		cfg.Logger = slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	}
	if err := limits.apply(&cfg); err != nil {
		return err
	}
	if err := oauth.apply(e, &cfg); err != nil {
		return err
	}
	if err := cluster.apply(e, &cfg); err != nil {
		return err
	}
	if err := limits.apply(&cfg); err != nil {
		return err
	}
	for _, o := range strings.Split(*origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}
	// Listen first: a start that fails here (the port is taken) must not
	// have created the database, dev keys or a dev secret key, which would
	// then stand in the way of the next start.
	ln, err := listen(cfg.Addr)
	if err != nil {
		return err
	}
	srv, err := server.New(ctx, cfg)
	if err != nil {
		ln.Close()
		return err
	}
	defer srv.Close()
	url := "http://" + ln.Addr().String()
	if *asJSON {
		if err := writeStartJSON(e, srv, url, path, cfg.NATSURL); err != nil {
			return err
		}
		return srv.Serve(ctx, ln)
	}
	if id := srv.ReplicaID(); id != "" {
		fmt.Fprintf(e.stdout, "ATP server on %s (database %s; replica %s, NATS %s)\n", url, store.Describe(path), id, server.RedactNATSURL(cfg.NATSURL))
	} else {
		fmt.Fprintf(e.stdout, "ATP server on %s (database %s)\n", url, store.Describe(path))
	}
	if keys := srv.DevKeys(); len(keys) > 0 {
		fmt.Fprintln(e.stdout, "\nDev mode created these keys. They are shown once: copy them now.")
		for _, k := range keys {
			fmt.Fprintf(e.stdout, "  %-7s key (id %s): %s\n", k.Key.Kind, k.Key.ID, k.APIKey)
		}
		fmt.Fprintln(e.stdout)
	}
	return srv.Serve(ctx, ln)
}

// writeStartJSON prints atp serve --json's start-up line: one JSON object
// on stdout, with the dev keys (shown this once) when dev mode made them.
func writeStartJSON(e *env, srv *server.Server, url, dbPath, natsURL string) error {
	type devKey struct {
		Kind   string `json:"kind"`
		ID     string `json:"id"`
		APIKey string `json:"api_key"`
	}
	start := struct {
		URL      string   `json:"url"`
		Database string   `json:"database"`
		NATS     string   `json:"nats,omitempty"`
		Replica  string   `json:"replica,omitempty"`
		DevKeys  []devKey `json:"dev_keys,omitempty"`
	}{URL: url, Database: store.Describe(dbPath), Replica: srv.ReplicaID()}
	if natsURL != "" {
		start.NATS = server.RedactNATSURL(natsURL)
	}
	for _, k := range srv.DevKeys() {
		start.DevKeys = append(start.DevKeys, devKey{string(k.Key.Kind), k.Key.ID, k.APIKey})
	}
	return json.NewEncoder(e.stdout).Encode(start)
}

// listen listens on addr; an address in use gets an error that says how to
// pick another.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil && addrInUse(err) {
		return nil, fmt.Errorf("%w; another atp serve may be running: pick another address with --addr (e.g. --addr 127.0.0.1:7778, or --addr 127.0.0.1:0 for any free port)", err)
	}
	return ln, err
}

func addrInUse(err error) bool {
	// WSAEADDRINUSE on Windows is not syscall.EADDRINUSE: know it by its text.
	return errors.Is(err, syscall.EADDRINUSE) || strings.Contains(err.Error(), "Only one usage of each socket address")
}
