package hello_test

import (
	"context"
	"errors"
	"testing"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/runtime"
)

func TestHelloTools(t *testing.T) {
	tk := runtime.NewToolkit("hello")
	if err := tk.Add(hello.ATPTools()...); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := tk.Invoke(ctx, "greet", []byte(`{"name":"Ada","times":2}`))
	if err != nil || string(res) != `"Hello, Ada! Hello, Ada!"` {
		t.Errorf("greet: %s, %v", res, err)
	}
	res, err = tk.Invoke(ctx, "add", []byte(`{"a":1.5,"b":2}`))
	if err != nil || string(res) != `3.5` {
		t.Errorf("add: %s, %v", res, err)
	}
	_, err = tk.Invoke(ctx, "greet", []byte(`{"name":" ","times":1}`))
	var terr *runtime.ToolError
	if !errors.As(err, &terr) || err.Error() != "name is empty: give the name of the person to greet" {
		t.Errorf("greet with a blank name: %v", err)
	}
	_, err = tk.Invoke(ctx, "greet", []byte(`{"name":"Ada","times":6}`))
	if err == nil || err.Error() != "invalid params for greet: times: expected integer <= 5, got 6" {
		t.Errorf("greet 6 times: %v", err)
	}
}
