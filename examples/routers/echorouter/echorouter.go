// Package echorouter serves the hello example's tools under /api with echo.
package echorouter

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

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
	e := echo.New()
	e.HideBanner = true
	e.Use(middleware.Recover())
	e.GET("/healthz", func(c echo.Context) error { return c.String(http.StatusOK, "ok") })
	// echo routes take echo.HandlerFuncs: echo.WrapHandler adapts the
	// http.Handler. Any registers every method, so that the handler itself
	// answers 405 with Allow for the ones a route does not take.
	api := e.Group("/api")
	tools, err := tk.Handler(runtime.WithBearerToken(token))
	if err != nil {
		return nil, err
	}
	api.Any("/atp/*", echo.WrapHandler(tools))
	return e, nil
}
