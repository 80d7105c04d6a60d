// Command llmcall is the Go agent of the TypeScript package's end-to-end
// tests: it fetches a toolkit's tools and runs a model's tool calls through
// an ATP server with llmclient, and prints both as JSON, so that the Node
// tests can check a TypeScript toolkit from the Go side.
//
//	llmcall -url http://127.0.0.1:7777 -toolkit weather -provider anthropic -calls '[...]' [-transport ws]
//
// The LLM key comes from $ATP_API_KEY.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/atpgo/atp/llmclient"
)

func main() {
	url := flag.String("url", "", "the ATP server's base URL")
	toolkit := flag.String("toolkit", "", "the toolkit to call")
	provider := flag.String("provider", "anthropic", "the provider whose shapes to use")
	calls := flag.String("calls", "", "the model's tool calls, in the provider's shape")
	transport := flag.String("transport", "http", "http or ws (llmclient.WithTransport)")
	user := flag.String("external-user-id", "", "the end user")
	flag.Parse()
	if err := run(*url, *toolkit, *provider, *calls, *transport, *user); err != nil {
		fmt.Fprintln(os.Stderr, "llmcall:", err)
		os.Exit(1)
	}
}

func run(url, toolkit, provider, calls, transport, user string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := llmclient.New(os.Getenv("ATP_API_KEY"), llmclient.WithBaseURL(url), llmclient.WithTransport(llmclient.Transport(transport)))
	if err != nil {
		return err
	}
	defer c.Close()
	tc, err := c.GetToolkitContext(ctx, toolkit, provider, "")
	if err != nil {
		return err
	}
	var opts []llmclient.CallOption
	if user != "" {
		opts = append(opts, llmclient.WithExternalUserID(user))
	}
	msgs, err := c.CallTools(ctx, toolkit, provider, json.RawMessage(calls), opts...)
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]json.RawMessage{"tools": tc.Tools, "messages": msgs})
}
