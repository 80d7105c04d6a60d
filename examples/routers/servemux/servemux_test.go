package servemux_test

import (
	"testing"

	"github.com/atpgo/atp/examples/routers/internal/routertest"
	"github.com/atpgo/atp/examples/routers/servemux"
)

func TestServeMux(t *testing.T) {
	router, err := servemux.New(routertest.Token)
	if err != nil {
		t.Fatal(err)
	}
	routertest.Check(t, router)
}
