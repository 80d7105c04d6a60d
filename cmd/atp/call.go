package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/atpgo/atp/internal/jsontree"
)

var callCommand = &command{
	name:    "call",
	summary: "call a tool of a connected toolkit through an ATP server",
	run:     runCall,
}

const callSynopsis = `atp call --toolkit T --tool X [--params JSON] [--url URL] [--key KEY]
         [--auth-token TOKEN | --external-user-id ID] [--timeout D] [--json]

Calls one tool through the server's LLM endpoint, as an agent would, and
prints its result as indented JSON (with --json: the server's reply as is).
The LLM key comes from --key or $ATP_API_KEY, the URL from --url or $ATP_URL
(default ` + defaultServerURL + `). Exit status 1 when the call fails.`

// defaultServerURL is where atp serve listens by default.
const defaultServerURL = "http://127.0.0.1:7777"

// processPath is the LLM client's HTTP endpoint (docs/protocol.md §2.2).
const processPath = "/api/v1/atp/llm-client/process/"

// serverFlags are the flags that say which server and key to use.
type serverFlags struct {
	url, key *string
}

func addServerFlags(fs *flag.FlagSet) serverFlags {
	return serverFlags{
		url: fs.String("url", "", "the ATP server's base `URL` (default $ATP_URL, else "+defaultServerURL+")"),
		key: fs.String("key", "", "an LLM API `key` (default $ATP_API_KEY; prefer the variable: a command line is visible to other users)"),
	}
}

// resolve returns the endpoint URL and the key.
func (sf serverFlags) resolve(e *env) (endpoint, key string, err error) {
	base := *sf.url
	if base == "" {
		base = e.getenv("ATP_URL")
	}
	if base == "" {
		base = defaultServerURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", usagef("--url: expected http://host:port or https://host, got %q", base)
	}
	key = *sf.key
	if key == "" {
		key = e.getenv("ATP_API_KEY")
	}
	if key == "" {
		return "", "", usagef("no API key: pass --key or set ATP_API_KEY to an LLM key (atp keys create --kind llm --name NAME)")
	}
	return strings.TrimRight(base, "/") + processPath, key, nil
}

// process posts one message to the LLM endpoint and returns the HTTP status
// and the reply body. The key goes in the Authorization header and in the
// body, as the Python client sends it.
func process(ctx context.Context, endpoint, key string, msg map[string]any, timeout time.Duration) (int, []byte, error) {
	msg["api_key"] = key
	body, err := json.Marshal(msg)
	if err != nil {
		return 0, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "ApiKey "+key)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, nil, fmt.Errorf("no answer from %s within %s", endpoint, timeout)
		}
		// url.Error repeats the method and URL; keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, fmt.Errorf("cannot reach the ATP server at %s (is atp serve running?): %v", endpoint, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("reading the server's reply: %w", err)
	}
	return resp.StatusCode, data, nil
}

// replyError turns a reply that is not a success into an error: the
// server's own message when it sent one.
func replyError(status int, body []byte) error {
	var m struct {
		Error   string `json:"error"`
		Message string `json:"message"`
	}
	json.Unmarshal(body, &m)
	msg := m.Error
	if msg == "" {
		msg = m.Message
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
		if len(msg) > 300 {
			msg = msg[:300] + "…"
		}
	}
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("the server refused the key (%d %s): %s", status, http.StatusText(status), msg)
	}
	return fmt.Errorf("the server answered %d %s: %s", status, http.StatusText(status), msg)
}

func requestID(prefix string) string {
	var b [8]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// printJSON writes v indented, or compact (one line) for --json.
func printJSON(w io.Writer, raw json.RawMessage, compact bool) error {
	var b bytes.Buffer
	var err error
	if compact {
		err = json.Compact(&b, raw)
	} else {
		err = json.Indent(&b, raw, "", "  ")
	}
	if err != nil {
		return fmt.Errorf("the server's reply is not JSON: %w", err)
	}
	b.WriteByte('\n')
	_, err = w.Write(b.Bytes())
	return err
}

func runCall(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "call", callSynopsis)
	toolkit := fs.String("toolkit", "", "the toolkit's id (its name)")
	tool := fs.String("tool", "", "the tool to call")
	params := fs.String("params", "{}", "the tool's params, a JSON object")
	authToken := fs.String("auth-token", "", "the end user's `token` for a tool that needs one (default $ATP_AUTH_TOKEN)")
	externalUser := fs.String("external-user-id", "", "the end user whose stored OAuth token the server injects")
	timeout := fs.Duration("timeout", 0, "how long the tool may run (default: the server's, 120s)")
	asJSON := fs.Bool("json", false, "print the server's reply (TASK_RESPONSE) as one line of JSON")
	server := addServerFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usagef("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case *toolkit == "":
		return usagef("--toolkit is required: name the toolkit that has the tool")
	case *tool == "":
		return usagef("--tool is required: name the tool to call")
	case *timeout < 0:
		return usagef("--timeout must not be negative, got %s", *timeout)
	}
	var p any
	dec := json.NewDecoder(strings.NewReader(*params))
	if err := dec.Decode(&p); err != nil || dec.More() {
		if err == nil {
			err = errors.New("more than one value")
		}
		return usagef("invalid --params JSON: %v", err)
	}
	if _, ok := p.(map[string]any); !ok {
		return usagef("--params: expected a JSON object, got %s", jsontree.KindOfText([]byte(*params)))
	}
	if *authToken == "" {
		*authToken = e.getenv("ATP_AUTH_TOKEN")
	}
	if *authToken != "" && *externalUser != "" {
		return usagef("--auth-token and --external-user-id exclude each other: pass the token, or name the user whose token the server keeps")
	}
	endpoint, key, err := server.resolve(e)
	if err != nil {
		return err
	}

	id := requestID("atp_call_")
	payload := map[string]any{"function": *tool, "parameters": json.RawMessage(*params), "tool_call_id": id}
	if *authToken != "" {
		payload["auth_token"] = *authToken
	}
	if *externalUser != "" {
		payload["external_user_id"] = *externalUser
	}
	clientTimeout := 120 * time.Second
	if *timeout > 0 {
		payload["timeout_ms"] = timeout.Milliseconds()
		clientTimeout = *timeout
	}
	msg := map[string]any{"type": "task_request", "request_id": id, "toolkit_id": *toolkit, "user_prompt": "", "payload": payload}

	s := newProgress(e).start("calling " + *tool)
	// The server answers at its own deadline: wait a little longer.
	status, body, err := process(ctx, endpoint, key, msg, clientTimeout+10*time.Second)
	s.end()
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return replyError(status, body)
	}
	var reply struct {
		Status  string `json:"status"`
		Message string `json:"message"`
		Result  struct {
			Tool struct {
				Result json.RawMessage `json:"result"`
			} `json:"tool"`
		} `json:"result"`
		Problems []struct {
			Path    string `json:"path"`
			Message string `json:"message"`
		} `json:"problems"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return fmt.Errorf("the server's reply is not a TASK_RESPONSE: %v", err)
	}
	if *asJSON {
		if err := printJSON(e.stdout, body, true); err != nil {
			return err
		}
	}
	if reply.Status != "success" {
		msg := reply.Message
		if msg == "" {
			msg = "the server gave no reason"
		}
		for _, p := range reply.Problems {
			if !strings.Contains(msg, p.Message) {
				msg += "\n  " + p.Path + ": " + p.Message
			}
		}
		return fmt.Errorf("tool %s of toolkit %s failed: %s", *tool, *toolkit, msg)
	}
	if *asJSON {
		return nil
	}
	result := reply.Result.Tool.Result
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	return printJSON(e.stdout, result, false)
}
