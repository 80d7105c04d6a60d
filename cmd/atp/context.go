package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/atpgo/atp/provider"
)

var contextCommand = &command{
	name:    "context",
	summary: "show a toolkit's tools as an LLM provider gets them from a server",
	run:     runContext,
}

const contextSynopsis = `atp context --toolkit T [--provider P] [--url URL] [--key KEY] [--json]

Asks the server for the toolkit's context (get_toolkit_context) and prints
it as indented JSON: the tools in the provider's own format (openai,
openai-chat, anthropic, mistral, gemini or mcp). With --json: the server's
reply as is, on one line. The LLM key comes from --key or $ATP_API_KEY, the
URL from --url or $ATP_URL (default ` + defaultServerURL + `).`

func runContext(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "context", contextSynopsis)
	toolkit := fs.String("toolkit", "", "the toolkit's id (its name)")
	prov := fs.String("provider", provider.OpenAI, "the `provider` whose tool format to use")
	prompt := fs.String("user-prompt", "", "the user prompt to send along (echoed in the context)")
	asJSON := fs.Bool("json", false, "print the server's reply (toolkit_context) as one line of JSON")
	server := addServerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	if *toolkit == "" {
		return usagef("--toolkit is required: name the toolkit whose tools you want")
	}
	if _, err := provider.Normalize(*prov); err != nil {
		return usagef("--provider: %v", err)
	}
	endpoint, key, err := server.resolve(e)
	if err != nil {
		return err
	}
	msg := map[string]any{"type": "get_toolkit_context", "request_id": requestID("atp_context_"),
		"toolkit_id": *toolkit, "provider": *prov, "user_prompt": *prompt}
	s := newProgress(e).start("asking for the context of " + *toolkit)
	status, body, err := process(ctx, endpoint, key, msg, 30*time.Second)
	s.end()
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return replyError(status, body)
	}
	var reply struct {
		Status  string          `json:"status"`
		Error   string          `json:"error"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return fmt.Errorf("the server's reply is not a toolkit_context message: %v", err)
	}
	if reply.Status == "error" {
		return fmt.Errorf("context of toolkit %s: %s", *toolkit, reply.Error)
	}
	if *asJSON {
		return printJSON(e.stdout, body, true)
	}
	if len(reply.Payload) == 0 {
		return fmt.Errorf("the server's toolkit_context has no payload")
	}
	return printJSON(e.stdout, reply.Payload, false)
}
