package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/atpgo/atp/runtime/atpimpl"
)

// One name, one meaning of zero: the call timeout of Serve, Handler and
// Invoke is CallTimeout / WithCallTimeout; zero is the default, negative is
// no bound.
func TestCallTimeoutZeroIsTheDefault(t *testing.T) {
	tk := NewToolkit("kit")
	if err := tk.Add(&Tool{Name: "t", Run: func(context.Context, *Call, *atpimpl.Decoder) (any, error) { return nil, nil }}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		opts []HandlerOption
		want time.Duration
	}{
		{nil, DefaultCallTimeout},
		{[]HandlerOption{WithCallTimeout(0)}, DefaultCallTimeout},
		{[]HandlerOption{WithCallTimeout(time.Second)}, time.Second},
		{[]HandlerOption{WithCallTimeout(-1)}, -1},
	} {
		hh, err := tk.Handler(append(c.opts, AllowUnauthenticated())...)
		if err != nil {
			t.Fatal(err)
		}
		h := hh.(*handler)
		if h.cfg.timeout != c.want {
			t.Errorf("Handler(%v): call timeout %s, want %s", c.opts, h.cfg.timeout, c.want)
		}
	}
	for _, c := range []struct {
		in, want time.Duration
	}{
		{0, DefaultCallTimeout},
		{time.Second, time.Second},
		{-1, 0}, // no bound
	} {
		s, err := newServer(tk, ServeConfig{URL: "http://127.0.0.1:1", APIKey: "k", CallTimeout: c.in})
		if err != nil {
			t.Fatal(err)
		}
		if s.cfg.CallTimeout != c.want {
			t.Errorf("ServeConfig.CallTimeout %s: became %s, want %s", c.in, s.cfg.CallTimeout, c.want)
		}
	}
}

// Invoke's default is no bound, its caller's ctx being the bound; a
// positive WithCallTimeout bounds the call.
func TestInvokeCallTimeout(t *testing.T) {
	release := make(chan struct{})
	tk := NewToolkit("kit")
	if err := tk.Add(&Tool{Name: "wait", Run: func(ctx context.Context, _ *Call, _ *atpimpl.Decoder) (any, error) {
		select {
		case <-release:
			return "done", nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}); err != nil {
		t.Fatal(err)
	}
	_, err := tk.Invoke(context.Background(), "wait", nil, WithCallTimeout(time.Millisecond))
	var te *TimeoutError
	if !errors.As(err, &te) || te.Timeout != time.Millisecond {
		t.Fatalf("WithCallTimeout(1ms): %v, want a *TimeoutError", err)
	}
	for _, opts := range [][]InvokeOption{nil, {WithCallTimeout(0)}, {WithCallTimeout(-1)}} {
		done := make(chan error, 1)
		var res json.RawMessage
		go func() {
			var err error
			res, err = tk.Invoke(context.Background(), "wait", nil, opts...)
			done <- err
		}()
		release <- struct{}{} // the tool is still waiting: no timeout ended it
		if err := <-done; err != nil || string(res) != `"done"` {
			t.Fatalf("Invoke(%v) = %s, %v", opts, res, err)
		}
	}
}
