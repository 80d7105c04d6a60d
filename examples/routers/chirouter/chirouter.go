// Package chirouter serves the hello example's tools under /api with chi.
package chirouter

import (
	"net/http"

	"github.com/go-chi/chi/v5"

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
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok")) })
	tools, err := tk.Handler(runtime.WithBearerToken(token))
	if err != nil {
		return nil, err
	}
	// chi takes an http.Handler as it is; Mount leaves the path whole and
	// the handler finds its route at the path's end.
	r.Mount("/api/atp", tools)
	return r, nil
}
