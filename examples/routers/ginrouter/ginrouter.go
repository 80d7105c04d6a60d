// Package ginrouter serves the hello example's tools under /api with gin.
package ginrouter

import (
	"net/http"

	"github.com/gin-gonic/gin"

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
	r := gin.New()
	r.Use(gin.Recovery())
	r.GET("/healthz", func(c *gin.Context) { c.String(http.StatusOK, "ok") })
	// gin routes take gin.HandlerFuncs: gin.WrapH adapts the http.Handler.
	// Any registers every method, so that the handler itself answers 405
	// with Allow for the ones a route does not take.
	api := r.Group("/api")
	tools, err := tk.Handler(runtime.WithBearerToken(token))
	if err != nil {
		return nil, err
	}
	api.Any("/atp/*route", gin.WrapH(tools))
	return r, nil
}
