package main

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/atpgo/atp/llmclient"
)

var update = flag.Bool("update", false, "rewrite testdata/output.golden")

// The program replays both recorded responses through a real server and
// toolkit, over either protocol, and prints exactly the golden output.
func TestAgent(t *testing.T) {
	want, err := os.ReadFile("testdata/output.golden")
	if err != nil && !*update {
		t.Fatal(err)
	}
	for _, protocol := range []string{"http", "ws"} {
		t.Run(protocol, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			responses, err := loadResponses("", "")
			if err != nil {
				t.Fatal(err)
			}
			var out, logs bytes.Buffer
			err = run(ctx, &out, options{transport: llmclient.Transport(protocol), responses: responses, log: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatalf("run: %v\nlogs:\n%s", err, logs.String())
			}
			if *update {
				if err := os.WriteFile("testdata/output.golden", out.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
				want = out.Bytes()
			}
			if got := out.String(); got != string(want) {
				t.Errorf("output differs from testdata/output.golden (go test -update rewrites it):\n%s", got)
			}
			// The user's token went to the CRM and nowhere else.
			if strings.Contains(logs.String(), userToken) || strings.Contains(out.String(), userToken) {
				t.Errorf("the user's token appears in the output or the logs")
			}
		})
	}
}

// A response the program cannot use is an error that says which one.
func TestAgentBadResponse(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// Malformed arguments in one call: the model reads an error for that
	// call, under its id; the other call runs.
	bad := t.TempDir() + "/bad.json"
	os.WriteFile(bad, []byte(`{"output":[{"type":"function_call","call_id":"c1","name":"create_company","arguments":"{\"name\":"},{"type":"function_call","call_id":"c2","name":"get_contacts","arguments":"{}"}]}`), 0o644)
	responses, err := loadResponses(bad, "")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(ctx, &out, options{transport: llmclient.TransportHTTP, responses: responses, log: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, want := range []string{
		`create_company (id c1): arguments: not valid JSON: unexpected end of input`,
		`"call_id": "c1"`,
		`ada@globex.example`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}

	// A response that holds no readable tool call list is an error.
	unreadable := t.TempDir() + "/unreadable.json"
	os.WriteFile(unreadable, []byte(`{"output":[{"type":"function_call","call_id":"c1","arguments":"{}"}]}`), 0o644)
	responses, err = loadResponses(unreadable, "")
	if err != nil {
		t.Fatal(err)
	}
	err = run(ctx, &out, options{transport: llmclient.TransportHTTP, responses: responses, log: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "OpenAI Responses API ("+unreadable+")") {
		t.Errorf("err = %v", err)
	}
	if _, err := loadResponses("", t.TempDir()+"/missing.json"); err == nil {
		t.Error("a missing file is no error")
	}
}
