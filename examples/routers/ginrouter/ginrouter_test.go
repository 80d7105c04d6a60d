package ginrouter_test

import (
	"testing"

	"github.com/gin-gonic/gin"

	"github.com/atpgo/atp/examples/routers/ginrouter"
	"github.com/atpgo/atp/examples/routers/internal/routertest"
)

func TestGin(t *testing.T) {
	gin.SetMode(gin.TestMode) // no debug banner per route
	router, err := ginrouter.New(routertest.Token)
	if err != nil {
		t.Fatal(err)
	}
	routertest.Check(t, router)
}
