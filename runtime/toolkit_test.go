package runtime_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/runtime/atpimpl"
)

// echoTool is hand-written the way atpgen writes tools: it decodes {"name":
// string} and hands name and the call to fn.
func echoTool(name string, fn func(ctx context.Context, call *runtime.Call, who string) (any, error)) *runtime.Tool {
	return &runtime.Tool{
		Name:           name,
		Params:         []string{"who"},
		RequiredParams: []string{"who"},
		InputSchema:    json.RawMessage(`{"type":"object","properties":{"who":{"type":"string"}},"required":["who"],"additionalProperties":false}`),
		Run: func(ctx context.Context, call *runtime.Call, d *atpimpl.Decoder) (any, error) {
			var who string
			seen := false
			if d.Object() {
				for d.Next() {
					switch string(d.Key()) {
					case "who":
						seen = true
						who = d.String()
					default:
						d.Unknown("who")
					}
				}
				if !seen {
					d.Missing("who", "string")
				}
			}
			if d.Failed() {
				return nil, nil
			}
			return fn(ctx, call, who)
		},
	}
}

func TestAddRejectsBadToolsAndAddsNone(t *testing.T) {
	tk := runtime.NewToolkit("t")
	ok := func(context.Context, *runtime.Call, string) (any, error) { return nil, nil }
	if err := tk.Add(echoTool("a", ok)); err != nil {
		t.Fatal(err)
	}
	err := tk.Add(echoTool("b", ok), echoTool("a", ok), echoTool("b", ok), echoTool("9x", ok), nil, &runtime.Tool{Name: "norun"})
	if err == nil {
		t.Fatal("Add accepted duplicates and invalid tools")
	}
	for _, want := range []string{`duplicate tool name "a"`, `duplicate tool name "b"`, `invalid tool name "9x"`, "tool #4 is nil", "tool norun has no Run function"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, found := tk.Tool("b"); found {
		t.Error("a failed Add added some of its tools")
	}
	if got := len(tk.Tools()); got != 1 {
		t.Errorf("toolkit has %d tools, want 1", got)
	}
}

func TestInvokeErrors(t *testing.T) {
	var logs bytes.Buffer
	tk := runtime.NewToolkit("t", runtime.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	called := 0
	failing := errors.New("backend down")
	err := tk.Add(
		echoTool("hello", func(_ context.Context, _ *runtime.Call, who string) (any, error) {
			called++
			return "hi " + who, nil
		}),
		echoTool("fails", func(context.Context, *runtime.Call, string) (any, error) { return nil, failing }),
		echoTool("panics", func(context.Context, *runtime.Call, string) (any, error) { panic("nil map") }),
		func() *runtime.Tool {
			t := echoTool("secret", func(_ context.Context, call *runtime.Call, _ string) (any, error) {
				return string(call.AuthToken), nil
			})
			t.NeedsAuthToken = true
			return t
		}(),
		echoTool("peek", func(_ context.Context, call *runtime.Call, _ string) (any, error) {
			return string(call.AuthToken), nil
		}),
		func() *runtime.Tool {
			t := echoTool("slow", func(ctx context.Context, _ *runtime.Call, _ string) (any, error) {
				<-ctx.Done() // a well-behaved tool stops when its context ends
				return nil, ctx.Err()
			})
			t.Timeout = time.Millisecond
			return t
		}(),
		func() *runtime.Tool {
			t := echoTool("stuck", func(context.Context, *runtime.Call, string) (any, error) {
				select {} // a tool that ignores its context still gets answered
			})
			t.Timeout = time.Millisecond
			return t
		}(),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	res, err := tk.Invoke(ctx, "hello", []byte(`{"who":"Ada"}`))
	if err != nil || string(res) != `"hi Ada"` {
		t.Fatalf("valid call: %s, %v", res, err)
	}

	_, err = tk.Invoke(ctx, "nope", nil)
	if !errors.Is(err, runtime.ErrUnknownTool) || !strings.Contains(err.Error(), "available: fails, hello, panics, peek, secret, slow, stuck") {
		t.Errorf("unknown tool: %v", err)
	}

	before := called
	_, err = tk.Invoke(ctx, "hello", []byte(`{"whom":1}`))
	var verr *runtime.ValidationError
	if !errors.As(err, &verr) || verr.Tool != "hello" || len(verr.Problems) != 2 ||
		verr.Problems[0].String() != "whom: unknown field (allowed: who)" ||
		verr.Problems[1].String() != "who: missing required field (expected string)" {
		t.Errorf("invalid params: %v", err)
	}
	if called != before {
		t.Error("the tool ran with invalid params")
	}

	_, err = tk.Invoke(ctx, "fails", []byte(`{"who":"x"}`))
	var terr *runtime.ToolError
	if !errors.As(err, &terr) || !errors.Is(err, failing) || terr.Tool != "fails" {
		t.Errorf("tool error: %v", err)
	}

	_, err = tk.Invoke(ctx, "panics", []byte(`{"who":"x"}`))
	var perr *runtime.PanicError
	if !errors.As(err, &perr) || perr.Value != "nil map" || len(perr.Stack) == 0 {
		t.Errorf("panic: %v", err)
	}
	if strings.Contains(err.Error(), "goroutine") {
		t.Errorf("the panic's message carries its stack: %v", err)
	}
	if !strings.Contains(logs.String(), "tool panicked") || !strings.Contains(logs.String(), "goroutine") {
		t.Errorf("the panic's stack was not logged: %s", logs.String())
	}

	_, err = tk.Invoke(ctx, "secret", []byte(`{"who":"x"}`))
	if !errors.Is(err, runtime.ErrMissingAuthToken) {
		t.Errorf("missing token: %v", err)
	}
	res, err = tk.Invoke(ctx, "secret", []byte(`{"who":"x"}`), runtime.WithAuthToken("tok"))
	if err != nil || string(res) != `"tok"` {
		t.Errorf("token call: %s, %v", res, err)
	}
	res, err = tk.Invoke(ctx, "peek", []byte(`{"who":"x"}`), runtime.WithAuthToken("tok"))
	if err != nil || string(res) != `""` {
		t.Errorf("a tool that declares no token saw one: %s, %v", res, err)
	}

	for _, name := range []string{"slow", "stuck"} {
		_, err = tk.Invoke(ctx, name, []byte(`{"who":"x"}`))
		var toerr *runtime.TimeoutError
		if !errors.As(err, &toerr) || toerr.Tool != name || toerr.Timeout != time.Millisecond {
			t.Errorf("%s: %v", name, err)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := tk.Invoke(cctx, "stuck", []byte(`{"who":"x"}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled call: %v", err)
	}
}

func TestAuthTokenNeverPrints(t *testing.T) {
	tok := runtime.AuthToken("s3cr3t")
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("call", "token", tok, "call", &runtime.Call{AuthToken: tok})
	out := fmt.Sprintf("%v %s %+v %#v", tok, tok, runtime.Call{AuthToken: tok}, tok)
	b, _ := json.Marshal(runtime.Call{AuthToken: tok})
	for _, s := range []string{logs.String(), out, string(b)} {
		if strings.Contains(s, "s3cr3t") {
			t.Errorf("token printed: %s", s)
		}
	}
	if string(tok) != "s3cr3t" {
		t.Error("string(token) must give the real value")
	}
}

type rawMarshaler string

func (m rawMarshaler) MarshalJSON() ([]byte, error) { return []byte(m), nil }

// A result is UTF-8 whatever the tool returns: bytes that are not become
// U+FFFD (json.Marshal does this for strings, but not inside a
// json.RawMessage or a MarshalJSON's output). Params that are not UTF-8
// never reach the tool.
func TestInvokeUTF8(t *testing.T) {
	tk := runtime.NewToolkit("t")
	ran := false
	results := map[string]any{
		"raw":       json.RawMessage("{\"a\":\"x\xffy\"}"),
		"marshaler": struct{ M rawMarshaler }{M: "\"\xfe\""},
		"string":    "bad \xc3",
	}
	for name, res := range results {
		if err := tk.Add(echoTool(name, func(context.Context, *runtime.Call, string) (any, error) { ran = true; return res, nil })); err != nil {
			t.Fatal(err)
		}
	}
	for name := range results {
		out, err := tk.Invoke(context.Background(), name, []byte(`{"who":"a"}`))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !utf8.Valid(out) || !json.Valid(out) || !strings.Contains(string(out), `\ufffd`) && !strings.Contains(string(out), "\uFFFD") {
			t.Errorf("%s: result %q, want valid UTF-8 JSON with U+FFFD", name, out)
		}
	}
	ran = false
	_, err := tk.Invoke(context.Background(), "raw", []byte("{\"who\":\"\xff\xfe\"}"))
	var verr *runtime.ValidationError
	if !errors.As(err, &verr) || len(verr.Problems) != 1 || verr.Problems[0].String() != "who: invalid UTF-8 in string" {
		t.Errorf("params with invalid UTF-8: %v, want who: invalid UTF-8 in string", err)
	}
	if ran {
		t.Error("the tool ran with params that are not UTF-8")
	}
}
