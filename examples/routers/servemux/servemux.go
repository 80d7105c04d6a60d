// Package servemux serves the hello example's tools under /api with the
// standard library's http.ServeMux.
package servemux

import (
	"net/http"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/runtime"
)

// New returns the app's router: its own routes, and the tools at
// /api/atp/hello/... for callers with the bearer token.
func New(token string) (http.Handler, error) {
	tk := runtime.NewToolkit("hello")
	if err := tk.Add(hello.ATPTools()...); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	tools, err := tk.Handler(runtime.WithBearerToken(token))
	if err != nil {
		return nil, err
	}
	// The handler routes on the end of the path, so it needs no
	// http.StripPrefix (which would work as well).
	mux.Handle("/api/atp/", tools)
	return mux, nil
}
