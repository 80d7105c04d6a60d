package echorouter_test

import (
	"testing"

	"github.com/atpgo/atp/examples/routers/echorouter"
	"github.com/atpgo/atp/examples/routers/internal/routertest"
)

func TestEcho(t *testing.T) {
	router, err := echorouter.New(routertest.Token)
	if err != nil {
		t.Fatal(err)
	}
	routertest.Check(t, router)
}
