// Command agent shows the agent side of ATP end to end, on this machine
// alone. It starts an ATP server in the process, connects the crm toolkit
// to it (pointed at a local stand-in for the CRM's REST API), and runs the
// tool calls of two recorded model responses through the server with
// llmclient: one from OpenAI's Responses API, one from Anthropic's Messages
// API, each asking for create_company and get_contacts. For each it prints
// the tools the model was offered, the calls it asked for, and the messages
// to send back to the model.
//
//	go run ./examples/crm/cmd/agent [-transport ws] [-openai FILE] [-anthropic FILE] [-v]
//
// The recorded responses are testdata/*.json, embedded in the program;
// -openai and -anthropic read other files. The tools act with the end
// user's own token, passed with each call (llmclient.WithAuthToken); an
// agent whose users connected their account through the server's OAuth
// broker would name the user with llmclient.WithExternalUserID instead.
// Nothing leaves the loopback interface.
package main

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/atpgo/atp/examples/crm"
	"github.com/atpgo/atp/llmclient"
	"github.com/atpgo/atp/provider"
	"github.com/atpgo/atp/runtime"
	"github.com/atpgo/atp/server"
	"github.com/atpgo/atp/server/store"
)

var (
	//go:embed testdata/openai_response.json
	openAIResponse []byte
	//go:embed testdata/anthropic_message.json
	anthropicMessage []byte
)

// userToken is the end user's CRM token in this demo; the stand-in API
// accepts no other.
const userToken = "user-token-for-ada"

// recorded is one model response to replay.
type recorded struct {
	provider string // as llmclient names it
	label    string
	source   string
	data     []byte
	// sendBack says where the messages go in the next request.
	sendBack string
}

type options struct {
	transport llmclient.Transport
	responses []recorded
	log       *slog.Logger
}

func main() {
	transport := flag.String("transport", string(llmclient.TransportHTTP), `how llmclient talks to the server: "http" or "ws"`)
	openAIFile := flag.String("openai", "", "an OpenAI Responses API response (JSON) to replay instead of the recorded one")
	anthropicFile := flag.String("anthropic", "", "an Anthropic Messages API response (JSON) to replay instead of the recorded one")
	verbose := flag.Bool("v", false, "log the server's, the toolkit's and the client's events to stderr")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	opts := options{transport: llmclient.Transport(*transport), log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))}
	var err error
	opts.responses, err = loadResponses(*openAIFile, *anthropicFile)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer stop()
		err = run(ctx, os.Stdout, opts)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func loadResponses(openAIFile, anthropicFile string) ([]recorded, error) {
	rs := []recorded{
		{provider: "openai", label: "OpenAI Responses API", source: "testdata/openai_response.json", data: openAIResponse,
			sendBack: "append them to the next request's input, after the response's output items"},
		{provider: "anthropic", label: "Anthropic Messages API", source: "testdata/anthropic_message.json", data: anthropicMessage,
			sendBack: "append them to messages, after the assistant's message"},
	}
	for i, file := range []string{openAIFile, anthropicFile} {
		if file == "" {
			continue
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		rs[i].source, rs[i].data = file, data
	}
	return rs, nil
}

// run starts the stand-in API, the server and the toolkit, replays the
// responses and shuts everything down.
func run(ctx context.Context, w io.Writer, opts options) (err error) {
	api := httptest.NewServer(standInCRM())
	defer api.Close()

	// The ATP server, with an in-memory store and a toolkit key and an LLM
	// key made for the demo.
	srv, err := server.New(ctx, server.Config{Addr: "127.0.0.1:0", Dev: true, Logger: opts.log})
	if err != nil {
		return err
	}
	var tkKey, llmKey string
	for _, k := range srv.DevKeys() {
		switch k.Key.Kind {
		case store.KindToolkit:
			tkKey = k.APIKey
		case store.KindLLM:
			llmKey = k.APIKey
		}
	}
	ln, err := srv.Listen()
	if err != nil {
		return err
	}
	serveCtx, stopServer := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	defer func() {
		stopServer()
		err = errors.Join(err, <-served, srv.Close())
	}()

	// The crm toolkit, as its own program would run it.
	tk := runtime.NewToolkit("crm", runtime.WithLogger(opts.log))
	if err := tk.Add((&crm.Client{BaseURL: api.URL}).ATPTools()...); err != nil {
		return err
	}
	kitCtx, stopKit := context.WithCancel(context.WithoutCancel(ctx))
	kitDone := make(chan error, 1)
	go func() {
		kitDone <- tk.Serve(kitCtx, runtime.ServeConfig{URL: srv.URL(), APIKey: tkKey, Logger: opts.log})
	}()
	defer func() {
		stopKit()
		err = errors.Join(err, <-kitDone)
	}()
	if err := waitForToolkit(ctx, srv.URL()); err != nil {
		return err
	}

	// The agent.
	c, err := llmclient.New(llmKey, llmclient.WithBaseURL(srv.URL()), llmclient.WithTransport(opts.transport), llmclient.WithLogger(opts.log))
	if err != nil {
		return err
	}
	defer c.Close()
	for _, r := range opts.responses {
		if err := replay(ctx, w, c, r); err != nil {
			return fmt.Errorf("%s (%s): %w", r.label, r.source, err)
		}
	}
	return nil
}

// replay prints what the model was offered and asked for, runs its tool
// calls and prints the messages to send back.
func replay(ctx context.Context, w io.Writer, c *llmclient.Client, r recorded) error {
	fmt.Fprintf(w, "== %s: %s ==\n\n", r.label, r.source)
	tc, err := c.GetToolkitContext(ctx, "crm", r.provider, "Add Acme Robotics (Lyon, software, 120 people) and show me the newest contacts of company 42.")
	if err != nil {
		return err
	}
	var tools []struct{ Name string }
	if err := json.Unmarshal(tc.Tools, &tools); err != nil {
		return err
	}
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	fmt.Fprintf(w, "Tools offered to the model, in %s's format: %s\n\n", tc.Provider, strings.Join(names, ", "))

	calls, err := provider.ParseToolCalls(r.provider, r.data)
	if err != nil {
		return err
	}
	fmt.Fprintln(w, "The model asked for:")
	for _, call := range calls {
		if call.Err != nil {
			fmt.Fprintf(w, "  %s (id %s): %v\n", call.Name, call.ID, call.Err)
			continue
		}
		fmt.Fprintf(w, "  %s %s (id %s)\n", call.Name, call.Arguments, call.ID)
	}

	// The calls run concurrently through the server; each carries the
	// user's token to the tool.
	msgs, err := c.CallTools(ctx, "crm", r.provider, r.data, llmclient.WithAuthToken(userToken), llmclient.WithCallTimeout(30*time.Second))
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, msgs, "", "  "); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nMessages to send back (%s):\n%s\n\n", r.sendBack, pretty.Bytes())
	return nil
}

// waitForToolkit polls the server's health endpoint until a toolkit is
// connected (at most 10 s).
func waitForToolkit(ctx context.Context, base string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/healthz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var health struct {
				Connected int `json:"toolkits_connected"`
			}
			json.NewDecoder(resp.Body).Decode(&health)
			resp.Body.Close()
			if health.Connected > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the crm toolkit did not connect to the server: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// standInCRM is a local stand-in for the CRM's REST API: it knows one
// user token, creates companies and lists a fixed set of contacts.
func standInCRM() http.Handler {
	type contact struct {
		ID        string `json:"id"`
		Email     string `json:"email"`
		FirstName string `json:"first_name,omitempty"`
		LastName  string `json:"last_name,omitempty"`
		CompanyID string `json:"company_id,omitempty"`
	}
	contacts := []contact{ // newest first
		{"c-107", "grace@globex.example", "Grace", "Hopper", "42"},
		{"c-104", "ada@globex.example", "Ada", "Lovelace", "42"},
		{"c-101", "alan@initech.example", "Alan", "Turing", "7"},
		{"c-099", "edsger@globex.example", "Edsger", "Dijkstra", "42"},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /crm/v3/objects/companies", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name     string `json:"name"`
			Domain   string `json:"domain"`
			Industry string `json:"industry"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, `{"message":"invalid JSON"}`, http.StatusBadRequest)
			return
		}
		json.NewEncoder(w).Encode(map[string]string{"id": "9001", "name": in.Name, "domain": in.Domain,
			"industry": in.Industry, "created_at": "2026-11-21T09:30:00Z"})
	})
	mux.HandleFunc("GET /crm/v3/objects/contacts", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		limit, err := strconv.Atoi(q.Get("limit"))
		if err != nil || limit < 1 {
			http.Error(w, `{"message":"limit must be a positive integer"}`, http.StatusBadRequest)
			return
		}
		results := []contact{}
		for _, c := range contacts {
			if len(results) < limit && (q.Get("company_id") == "" || c.CompanyID == q.Get("company_id")) {
				results = append(results, c)
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"results": results})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+userToken {
			http.Error(w, `{"message":"invalid or expired token"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}
