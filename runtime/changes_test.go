package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/atpgo/atp/runtime/atpimpl"
)

func progressTool(name string) *Tool {
	return &Tool{
		Name:        name,
		InputSchema: json.RawMessage(`{"type":"object"}`),
		Run: func(_ context.Context, call *Call, _ *atpimpl.Decoder) (any, error) {
			call.Progress(1, 2, "half")
			call.Progress(2, 2, "")
			return "done", nil
		},
	}
}

func TestProgress(t *testing.T) {
	tk := NewToolkit("p")
	if err := tk.Add(progressTool("work")); err != nil {
		t.Fatal(err)
	}
	type report struct {
		done, total float64
		msg         string
	}
	var got []report
	res, err := tk.Invoke(context.Background(), "work", nil, WithProgress(func(done, total float64, msg string) {
		got = append(got, report{done, total, msg})
	}))
	if err != nil || string(res) != `"done"` {
		t.Fatalf("invoke: %s, %v", res, err)
	}
	if want := []report{{1, 2, "half"}, {2, 2, ""}}; len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("reports %+v, want %+v", got, want)
	}
	// Without a receiver (every transport but MCP) Progress does nothing.
	if _, err := tk.Invoke(context.Background(), "work", nil); err != nil {
		t.Errorf("invoke without progress: %v", err)
	}
	var nilCall *Call
	nilCall.Progress(1, 1, "no panic")
}

func TestOnChangeAndRemove(t *testing.T) {
	tk := NewToolkit("c")
	changes := 0
	stop := tk.OnChange(func() {
		changes++
		tk.Tools() // the toolkit is readable from the callback
	})
	if err := tk.Add(progressTool("a"), progressTool("b")); err != nil {
		t.Fatal(err)
	}
	if changes != 1 {
		t.Fatalf("after Add: %d changes, want 1", changes)
	}
	if err := tk.Add(progressTool("a")); err == nil || changes != 1 {
		t.Fatalf("a failed Add: err %v, %d changes; want an error and no change", err, changes)
	}
	err := tk.Remove("a", "nope")
	if err == nil || !strings.Contains(err.Error(), `no tool "nope" to remove`) || changes != 1 {
		t.Fatalf("Remove of a missing tool: %v, %d changes", err, changes)
	}
	if _, ok := tk.Tool("a"); !ok {
		t.Fatal("a failed Remove removed a")
	}
	if err := tk.Remove("a"); err != nil || changes != 2 {
		t.Fatalf("Remove: %v, %d changes", err, changes)
	}
	if _, err := tk.Invoke(context.Background(), "a", nil); !errors.Is(err, ErrUnknownTool) {
		t.Errorf("call of a removed tool: %v, want ErrUnknownTool", err)
	}
	// Replacing a tool: Remove then Add.
	if err := tk.Add(progressTool("a")); err != nil || changes != 3 {
		t.Fatalf("re-Add: %v, %d changes", err, changes)
	}
	stop()
	stop()
	if err := tk.Remove("b"); err != nil || changes != 3 {
		t.Errorf("after stop: %v, %d changes; want no call", err, changes)
	}
}
