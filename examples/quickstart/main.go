// Command quickstart runs the main job end to end on this machine, with
// nothing to set up and no network beyond loopback:
//
//  1. it starts the reference ATP server (atp serve) on the embedded default,
//     a SQLite file, with development keys;
//  2. it connects the hello example's generated toolkit over WebSocket;
//  3. it fetches the toolkit's tools in OpenAI's and Anthropic's formats, as
//     an agent does before asking its model;
//  4. it performs the tool calls a model returned, good and bad, through the
//     server, and prints what goes back into the conversation.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/atpgo/atp/examples/hello"
	"github.com/atpgo/atp/provider"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := run(ctx, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))

	// 1. The server, on a fresh SQLite file.
	dir, err := os.MkdirTemp("", "atp-quickstart-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dbPath := filepath.Join(dir, "atp.db")
	srv, err := server.New(ctx, server.Config{Addr: "127.0.0.1:0", DBPath: dbPath, Dev: true, Logger: quiet})
	if err != nil {
		return err
	}
	defer srv.Close()
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	var toolkitKey, llmKey string
	for _, k := range srv.DevKeys() {
		switch k.Key.Kind {
		case store.KindToolkit:
			toolkitKey = k.APIKey
		case store.KindLLM:
			llmKey = k.APIKey
		}
	}
	if toolkitKey == "" || llmKey == "" {
		return errors.New("the server made no development keys")
	}
	fmt.Fprintf(w, "1. atp serve is listening on %s, keeping its state in %s.\n   It made a toolkit key and an LLM key for development.\n", srv.URL(), dbPath)

	// 2. The toolkit: the hello example's generated tools, served over ATP v1.
	tk := runtime.NewToolkit("hello", runtime.WithLogger(quiet))
	if err := tk.Add(hello.ATPTools()...); err != nil {
		return err
	}
	connected := make(chan struct{})
	var once bool
	toolkitDone := make(chan error, 1)
	go func() {
		toolkitDone <- tk.Serve(ctx, runtime.ServeConfig{
			URL: srv.URL(), APIKey: toolkitKey, Logger: quiet,
			OnState: func(s runtime.State) {
				if s.Kind == runtime.StateConnected && !once {
					once = true
					close(connected)
				}
			},
		})
	}()
	select {
	case <-connected:
	case err := <-toolkitDone:
		return fmt.Errorf("toolkit stopped before connecting: %v", err)
	case <-ctx.Done():
		return fmt.Errorf("toolkit did not connect: %w", ctx.Err())
	}
	fmt.Fprintln(w, "2. The hello toolkit registered its tools and connected over WebSocket.")

	// 3. The agent's view: the tools in each provider's own format.
	agent := agentClient{base: srv.URL(), key: llmKey}
	fmt.Fprintln(w, "\n3. The agent fetched the toolkit's tools in each provider's format, ready for its API's tools field.")
	for _, p := range []string{"openai", "anthropic"} {
		var reply struct {
			Payload struct {
				Tools json.RawMessage `json:"tools"`
			} `json:"payload"`
		}
		if err := agent.process(ctx, map[string]any{
			"type": "get_toolkit_context", "toolkit_id": "hello", "request_id": "ctx-" + p,
			"provider": p, "user_prompt": "Say hello to Ada",
		}, &reply); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n   For %s:\n%s\n", p, indent(reply.Payload.Tools))
	}

	// 4. The model answered with tool calls (a recorded OpenAI Responses
	// output); the agent runs them through the server and appends the results.
	modelOutput := json.RawMessage(`[
		{"type":"function_call","call_id":"call_1","name":"greet","arguments":"{\"name\":\"Ada\",\"times\":2}"},
		{"type":"function_call","call_id":"call_2","name":"add","arguments":"{\"a\":1.5,\"b\":\"two\"}"},
		{"type":"function_call","call_id":"call_3","name":"greet","arguments":"{\"nmae\":\"Ada\",\"times\":9}"}
	]`)
	calls, err := provider.ParseToolCalls("openai", modelOutput)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "\n4. The model asked for three calls; through the server they give:")
	var results []provider.ToolResult
	for i, c := range calls {
		if c.Err != nil { // arguments the model garbled: tell it, don't call
			results = append(results, provider.ToolResult{Call: c, IsError: true, Error: c.Err.Error()})
			continue
		}
		var reply struct {
			Status  string `json:"status"`
			Message string `json:"message"`
			Result  struct {
				Tool struct {
					Result json.RawMessage `json:"result"`
				} `json:"tool"`
			} `json:"result"`
		}
		if err := agent.process(ctx, map[string]any{
			"type": "task_request", "toolkit_id": "hello", "request_id": fmt.Sprintf("task_hello_%d", i),
			"payload": map[string]any{"function": c.Name, "parameters": c.Arguments, "tool_call_id": c.ID},
		}, &reply); err != nil {
			return err
		}
		r := provider.ToolResult{Call: c, Result: reply.Result.Tool.Result}
		if reply.Status != "success" {
			r = provider.ToolResult{Call: c, IsError: true, Error: reply.Message}
			fmt.Fprintf(w, "   %s %s -> error: %s\n", c.Name, c.Arguments, reply.Message)
		} else {
			fmt.Fprintf(w, "   %s %s -> %s\n", c.Name, c.Arguments, r.Result)
		}
		results = append(results, r)
	}
	back, err := provider.FormatToolResults("openai", results)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n   Appended to the conversation for the model's next turn:\n%s\n", indent(back))

	cancel()
	if err := <-toolkitDone; err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("toolkit: %w", err)
	}
	if err := <-served; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("server: %w", err)
	}
	fmt.Fprintln(w, "\n5. Toolkit and server shut down cleanly.")
	return nil
}

// agentClient speaks the LLM-client HTTP endpoint of ATP v1 (docs/protocol.md §2.2), as
// the Python SDK's LLMClient and our llmclient package do.
type agentClient struct{ base, key string }

func (a agentClient) process(ctx context.Context, body map[string]any, out any) error {
	body["api_key"] = a.key
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/api/v1/atp/llm-client/process/", bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "ApiKey "+a.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(data))
	}
	return json.Unmarshal(data, out)
}

func indent(raw json.RawMessage) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "   ", "  "); err != nil {
		return "   " + string(raw)
	}
	return "   " + b.String()
}
