package chirouter_test

import (
	"testing"

	"github.com/atpgo/atp/examples/routers/chirouter"
	"github.com/atpgo/atp/examples/routers/internal/routertest"
)

func TestChi(t *testing.T) {
	router, err := chirouter.New(routertest.Token)
	if err != nil {
		t.Fatal(err)
	}
	routertest.Check(t, router)
}
