package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/atpgo/atp/server"
)

var serveCommand = &command{
	name:    "serve",
	summary: "run the ATP server (keys, toolkits, LLM clients, routing)",
	run:     runServe,
}

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "serve", "atp serve [--addr 127.0.0.1:7777] [--db PATH] [--dev] [--secret-key-file F] [--platforms FILE] [--public-url URL]")
	addr := fs.String("addr", "127.0.0.1:7777", "`host:port` to listen on (port 0 picks a free one)")
	db := dbFlag(fs, e)
	dev := fs.Bool("dev", false, "development mode: on an empty database, create a toolkit key and an LLM key and print them")
	callTimeout := fs.Duration("call-timeout", 120*time.Second, "default time a routed tool call may take")
	origins := fs.String("allow-origin", "", "comma-separated extra Origins (scheme://host[:port]) allowed on the LLM WebSocket; \"*\" allows any")
	verbose := fs.Bool("verbose", false, "log every request and call (debug level)")
	oauth := addOAuthFlags(fs)
	limits := addSchemaLimitFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *callTimeout <= 0 {
		return usagef("--call-timeout must be positive, got %s", *callTimeout)
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
		Logger:      slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level})),
	}
	if err := oauth.apply(e, &cfg); err != nil {
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
	srv, err := server.New(cfg)
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ATP server on %s (database %s)\n", srv.URL(), path)
	if keys := srv.DevKeys(); len(keys) > 0 {
		fmt.Fprintln(e.stdout, "\nDev mode created these keys. They are shown once: copy them now.")
		for _, k := range keys {
			fmt.Fprintf(e.stdout, "  %-7s key (id %s): %s\n", k.Key.Kind, k.Key.ID, k.APIKey)
		}
		fmt.Fprintln(e.stdout)
	}
	return srv.Serve(ctx, ln)
}
