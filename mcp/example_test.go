package mcp_test

import (
	"context"
	"log"
	"log/slog"
	"net/http"
	"os"
	"os/signal"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/mcp"
	"github.com/atpgo/atp/runtime"
)

// A host starts the program and talks to it over its stdin and stdout; logs
// go to stderr.
func ExampleServer_ServeStdio() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	tk := runtime.NewToolkit("hello", runtime.WithLogger(logger))
	if err := tk.Add(hello.ATPTools()...); err != nil {
		log.Fatal(err)
	}
	srv, err := mcp.NewServer(tk, mcp.WithAuthToken(os.Getenv("ATP_AUTH_TOKEN")))
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := srv.ServeStdio(ctx, os.Stdin, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// Hosts connect to http://127.0.0.1:8080/mcp with the bearer token, and pass
// the end user's token in X-ATP-Auth-Token.
func ExampleServer_HTTPHandler() {
	tk := runtime.NewToolkit("hello")
	if err := tk.Add(hello.ATPTools()...); err != nil {
		log.Fatal(err)
	}
	srv, err := mcp.NewServer(tk,
		mcp.WithBearerToken(os.Getenv("ATP_MCP_TOKEN")),
		mcp.WithAuthTokenHeader("X-ATP-Auth-Token"))
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/mcp", srv.HTTPHandler())
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}
