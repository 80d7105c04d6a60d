package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/internal/schemavalidate"
	"github.com/atpgo/atp/provider"
	"github.com/atpgo/atp/server/store"
)

// toolNamePattern is the tool names every ATP peer and LLM provider accepts.
var toolNamePattern = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$`)

// authError is a failed authentication, with the HTTP status to answer.
type authError struct {
	status int
	msg    string
}

func (e *authError) Error() string { return e.msg }

// authenticate checks apiKey and that it is of kind want. Its errors are
// *authError and never contain the key.
func (s *Server) authenticate(ctx context.Context, apiKey string, want store.KeyKind) (store.Key, error) {
	if apiKey == "" {
		return store.Key{}, &authError{http.StatusUnauthorized, "missing API key"}
	}
	k, err := s.store.Authenticate(ctx, apiKey)
	switch {
	case errors.Is(err, store.ErrInvalidKey):
		return k, &authError{http.StatusUnauthorized, "invalid API key"}
	case errors.Is(err, store.ErrRevokedKey):
		return k, &authError{http.StatusUnauthorized, "API key has been revoked"}
	case err != nil:
		s.log.Error("key lookup failed", "err", err)
		return k, &authError{http.StatusInternalServerError, "internal error looking up the API key"}
	case k.Kind != want:
		return k, &authError{http.StatusForbidden, fmt.Sprintf("this is %s key; this endpoint needs %s key", article(k.Kind), article(want))}
	}
	return k, nil
}

func article(k store.KeyKind) string {
	if k == store.KindLLM {
		return "an LLM"
	}
	return "a toolkit"
}

// pickKey returns the key given in the body, in the header, or both when
// they agree.
func pickKey(body, header string) (string, error) {
	switch {
	case body == "":
		return header, nil
	case header == "":
		return body, nil
	case subtle.ConstantTimeCompare([]byte(body), []byte(header)) != 1:
		return "", &authError{http.StatusUnauthorized, "the API key in the Authorization header and the one in the body differ"}
	}
	return body, nil
}

func writeAuthError(w http.ResponseWriter, err error) {
	var ae *authError
	if errors.As(err, &ae) {
		writeError(w, ae.status, ae.msg)
		return
	}
	writeError(w, http.StatusInternalServerError, "internal error")
}

// into decodes a body into v with decodeJSON.
func into(v any) func([]byte) error {
	return func(data []byte) error { return decodeJSON(data, v) }
}

// toolkitSchemes are the Authorization schemes a toolkit key may come in.
var toolkitSchemes = []string{"Bearer"}

// boundElsewhere answers 403 when a key bound to a toolkit is used for
// another.
func boundElsewhere(w http.ResponseWriter, k store.Key, appName string) bool {
	if k.Toolkit != "" && appName != "" && k.Toolkit != appName {
		writeError(w, http.StatusForbidden, fmt.Sprintf("this toolkit key serves toolkit %q, not %q", k.Toolkit, appName))
		return true
	}
	return false
}

// claimRefused answers 409 when an unbound key asks about a toolkit that
// another key of its owner holds (see store.Register), and 500 when the
// store cannot tell.
func (s *Server) claimRefused(w http.ResponseWriter, r *http.Request, k store.Key, appName string) bool {
	if k.Toolkit != "" || appName == "" {
		return false
	}
	err := s.store.CheckClaim(r.Context(), k, appName)
	return s.claimError(w, k, appName, err)
}

// claimError answers a refused claim on a toolkit name: 409 with how to
// rotate a key, logged, since it is what a key taking over another's
// toolkit looks like.
func (s *Server) claimError(w http.ResponseWriter, k store.Key, appName string, err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrToolkitTaken):
		s.log.Warn("a key asked for a toolkit that another key of its owner holds; refused",
			"owner", k.Owner, "toolkit", appName, "key_id", k.ID)
		writeError(w, http.StatusConflict, err.Error())
	default:
		s.log.Error("checking a toolkit claim failed", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error reading the toolkit's keys")
	}
	return true
}

func (s *Server) handleVerifyHash(w http.ResponseWriter, r *http.Request) {
	var req struct {
		APIKey      string `json:"api_key"`
		AppName     string `json:"app_name"`
		ToolkitHash string `json:"toolkit_hash"`
	}
	k, ok := s.keyedBody(w, r, store.KindToolkit, toolkitSchemes, into(&req), func() string { return req.APIKey })
	if !ok || boundElsewhere(w, k, req.AppName) || s.claimRefused(w, r, k, req.AppName) {
		return
	}
	name := req.AppName
	if name == "" {
		name = k.Toolkit
	}
	hash, found, err := s.store.ToolkitHash(r.Context(), k.Owner, name)
	if err != nil {
		s.log.Error("verify_hash: store", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error reading the toolkit")
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"up_to_date": found && hash != "" && hash == req.ToolkitHash})
}

func (s *Server) handleVerifyToolHash(w http.ResponseWriter, r *http.Request) {
	var req struct {
		APIKey   string `json:"api_key"`
		AppName  string `json:"app_name"` // not sent by the Python SDK: the key names the toolkit
		ToolName string `json:"tool_name"`
		ToolHash string `json:"tool_hash"`
	}
	k, ok := s.keyedBody(w, r, store.KindToolkit, toolkitSchemes, into(&req), func() string { return req.APIKey })
	if !ok || boundElsewhere(w, k, req.AppName) || s.claimRefused(w, r, k, req.AppName) {
		return
	}
	name := k.Toolkit
	if name == "" {
		name = req.AppName
	}
	upToDate := false
	if name != "" {
		hash, found, err := s.store.ToolHash(r.Context(), k.Owner, name, req.ToolName)
		if err != nil {
			s.log.Error("verify_tool_hash: store", "err", err)
			writeError(w, http.StatusInternalServerError, "internal error reading the tool")
			return
		}
		upToDate = found && hash != "" && hash == req.ToolHash
	}
	writeJSON(w, http.StatusOK, map[string]bool{"up_to_date": upToDate})
}

// registerRequest is the register_tool body (docs/protocol.md §1.1).
type registerRequest struct {
	FunctionID          string `json:"function_id"`
	APIKey              string `json:"api_key"`
	AppName             string `json:"app_name"`
	ProgrammingLanguage string `json:"programming_language"`
	CodeHash            string `json:"code_hash"`
	ToolkitHash         string `json:"toolkit_hash"`
	Metadata            struct {
		Params         []string        `json:"params"`
		RequiredParams []string        `json:"required_params"`
		Description    string          `json:"description"`
		AuthProvider   string          `json:"auth_provider"`
		AuthType       string          `json:"auth_type"`
		AuthWith       string          `json:"auth_with"`
		SampleResponse json.RawMessage `json:"sample_response"` // ignored
		SourceCode     json.RawMessage `json:"source_code"`     // ignored, never stored
		InputSchema    json.RawMessage `json:"input_schema"`    // extension
		OutputSchema   json.RawMessage `json:"output_schema"`   // extension
		Hints          json.RawMessage `json:"hints"`           // extension: readOnlyHint, destructiveHint, idempotentHint
		// NeedsAuthToken (extension, docs/extensions.md §4): calls need
		// the end user's token even without an auth_provider. Go toolkits
		// send it only when true; Python never does.
		NeedsAuthToken bool `json:"needs_auth_token"`
	} `json:"metadata"`
}

func (s *Server) handleRegisterTool(w http.ResponseWriter, r *http.Request) {
	var req registerRequest
	k, ok := s.keyedBody(w, r, store.KindToolkit, toolkitSchemes, into(&req), func() string { return req.APIKey })
	if !ok || boundElsewhere(w, k, req.AppName) {
		return
	}
	tool, validator, err := checkRegistration(&req, s.cfg.schemaLimits())
	if err != nil {
		writeError(w, http.StatusBadRequest, "register_tool: "+err.Error())
		return
	}
	if s.toolkitFull(w, toolkitRef{k.Owner, req.AppName}, tool.Name) {
		return
	}
	k, err = s.store.Register(r.Context(), store.Registration{
		KeyID: k.ID, Toolkit: req.AppName, ToolkitHash: req.ToolkitHash, Language: req.ProgrammingLanguage, Tool: tool,
	})
	switch {
	case errors.Is(err, store.ErrKeyBoundElsewhere):
		writeError(w, http.StatusForbidden, fmt.Sprintf("this toolkit key serves another toolkit, not %q", req.AppName))
		return
	case errors.Is(err, store.ErrToolkitTaken):
		s.claimError(w, k, req.AppName, err)
		return
	case errors.Is(err, store.ErrRevokedKey):
		writeError(w, http.StatusUnauthorized, "API key has been revoked")
		return
	case errors.Is(err, store.ErrInvalidKey), errors.Is(err, store.ErrWrongKind):
		writeError(w, http.StatusUnauthorized, "invalid API key")
		return
	case err != nil:
		s.log.Error("register_tool: store", "err", err)
		writeError(w, http.StatusInternalServerError, "internal error saving the tool")
		return
	}
	ref := toolkitRef{k.Owner, req.AppName}
	s.registry.put(ref, req.ToolkitHash, req.ProgrammingLanguage, &toolEntry{Tool: tool, validator: compiledValidator(validator)})
	s.hub.bind(k.ID, ref)
	if s.cluster != nil {
		s.cluster.toolkitChanged(ref, k.ID, tool.Name)
	}
	s.log.Info("tool registered", "owner", k.Owner, "toolkit", req.AppName, "tool", tool.Name,
		"language", req.ProgrammingLanguage, "inferred_schema", tool.Inferred)
	// The exchange token is opaque to the SDK, which only keeps it for the
	// legacy execute_function path this server does not offer.
	writeJSON(w, http.StatusOK, map[string]string{"exchange_token": "xt_" + randomID(32)})
}

// checkRegistration validates a register_tool body and builds the tool to
// store, with its compiled schema. Errors say which field is wrong and why;
// a schema over one of lim's limits is refused naming the limit and what
// the schema has.
func checkRegistration(req *registerRequest, lim schemavalidate.Limits) (store.Tool, *schemavalidate.Validator, error) {
	md := &req.Metadata
	if !toolNamePattern.MatchString(req.FunctionID) {
		return store.Tool{}, nil, fmt.Errorf("function_id: invalid tool name %q: expected a letter or '_' then up to 63 letters, digits, '_' or '-'", req.FunctionID)
	}
	if req.AppName == "" {
		return store.Tool{}, nil, errors.New("app_name: missing: name the toolkit the tool belongs to")
	}
	if err := store.ValidToolkitName(req.AppName); err != nil {
		return store.Tool{}, nil, fmt.Errorf("app_name: %w", err)
	}
	// Before anything that costs time in their number: the inferred schema
	// has a property per parameter.
	if n := max(len(md.Params), len(md.RequiredParams)); lim.MaxProperties > 0 && n > lim.MaxProperties {
		return store.Tool{}, nil, fmt.Errorf("metadata.params: %d parameters, over the limit of %d properties per object (a limit of this server: atp serve --max-schema-properties)", n, lim.MaxProperties)
	}
	seen := map[string]bool{}
	for i, p := range md.Params {
		switch {
		case p == "":
			return store.Tool{}, nil, fmt.Errorf("metadata.params[%d]: empty parameter name", i)
		case seen[p]:
			return store.Tool{}, nil, fmt.Errorf("metadata.params[%d]: duplicate parameter %q", i, p)
		}
		seen[p] = true
	}
	for i, p := range md.RequiredParams {
		if !seen[p] {
			return store.Tool{}, nil, fmt.Errorf("metadata.required_params[%d]: %q is not in metadata.params (%s)", i, p, nameList(md.Params))
		}
	}
	tool := store.Tool{
		Name:           req.FunctionID,
		Description:    md.Description,
		Params:         md.Params,
		RequiredParams: md.RequiredParams,
		AuthProvider:   md.AuthProvider,
		AuthType:       md.AuthType,
		AuthWith:       md.AuthWith,
		NeedsAuthToken: md.NeedsAuthToken,
		CodeHash:       req.CodeHash,
	}
	inputField := "metadata.input_schema"
	if isJSONNull(md.InputSchema) {
		// The Python SDK sends names only: the inferred schema says which
		// exist and which are required, and validation leaves their values
		// to the tool.
		tool.InputSchema, tool.Inferred = provider.InferSchema(md.Params, md.RequiredParams), true
		inputField = "metadata.params (as the schema inferred from them)"
	} else {
		if err := checkRootSchema(md.InputSchema); err != nil {
			return store.Tool{}, nil, fmt.Errorf("metadata.input_schema: %w", err)
		}
		tool.InputSchema = compactJSON(md.InputSchema)
	}
	validator, err := schemavalidate.CompileLimited(tool.InputSchema, lim)
	if err != nil {
		return store.Tool{}, nil, fmt.Errorf("%s: %w", inputField, limitHint(err))
	}
	if !isJSONNull(md.OutputSchema) {
		if t := jsontree.KindOfText(md.OutputSchema); t != "object" && t != "boolean" {
			return store.Tool{}, nil, fmt.Errorf("metadata.output_schema: expected a JSON Schema (object or boolean), got %s", t)
		}
		tool.OutputSchema = compactJSON(md.OutputSchema)
		if err := schemavalidate.CheckLimits(tool.OutputSchema, lim); err != nil {
			return store.Tool{}, nil, fmt.Errorf("metadata.output_schema: %w", limitHint(err))
		}
	}
	// A schema no provider format can carry would break every
	// get_toolkit_context of the toolkit later: refuse it now.
	for _, p := range provider.Names() {
		pt := provider.Tool{Name: tool.Name, Description: tool.Description, InputSchema: tool.InputSchema, OutputSchema: tool.OutputSchema}
		if _, _, err := provider.FormatTool(p, pt); err != nil {
			return store.Tool{}, nil, fmt.Errorf("metadata: %w", err)
		}
	}
	if !isJSONNull(md.Hints) {
		var hints struct {
			ReadOnly    *bool `json:"readOnlyHint"`
			Destructive *bool `json:"destructiveHint"`
			Idempotent  *bool `json:"idempotentHint"`
		}
		if err := json.Unmarshal(md.Hints, &hints); err != nil {
			return store.Tool{}, nil, fmt.Errorf("metadata.hints: %w", jsonError(err))
		}
		tool.Hints = compactJSON(md.Hints)
	}
	return tool, validator, nil
}

// nameList joins names for an error, the first twenty of them: a long
// list is not echoed back.
func nameList(names []string) string {
	const listed = 20
	if len(names) <= listed {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s, and %d more", strings.Join(names[:listed], ", "), len(names)-listed)
}

// limitHint adds to a schema's limit error the atp serve flag that sets the
// limit: the toolkit's author reads it, and may have to ask the server's.
func limitHint(err error) error {
	var le *schemavalidate.LimitError
	if !errors.As(err, &le) {
		return err
	}
	flag := map[string]string{
		schemavalidate.LimitBytes:      "--max-schema-bytes",
		schemavalidate.LimitDepth:      "--max-schema-depth",
		schemavalidate.LimitEnum:       "--max-schema-enum",
		schemavalidate.LimitProperties: "--max-schema-properties",
	}[le.Limit]
	return fmt.Errorf("%w (a limit of this server: atp serve %s)", err, flag)
}

// checkRootSchema checks that a params schema describes an object: tool
// params are always a JSON object, and every provider wants an object root.
func checkRootSchema(raw json.RawMessage) error {
	if t := jsontree.KindOfText(raw); t != "object" {
		return fmt.Errorf("expected a JSON Schema object, got %s", t)
	}
	var root struct {
		Type json.RawMessage `json:"type"`
	}
	if err := json.Unmarshal(raw, &root); err != nil {
		return jsonError(err)
	}
	if len(root.Type) > 0 && string(root.Type) != `"object"` {
		return fmt.Errorf(`the root must be {"type":"object"} (tool params are a JSON object), got "type": %s`, root.Type)
	}
	return nil
}

func isJSONNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func compactJSON(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return raw
	}
	return b.Bytes()
}

// ---- HTTP inbox (docs/protocol.md §1.3) ----

func (s *Server) handleInbox(w http.ResponseWriter, r *http.Request) {
	k, ok := s.pathKeyAuth(w, r, store.KindToolkit)
	if !ok || !s.admitRequest(w, k) {
		return
	}
	wait, err := parseWait(r.URL.Query().Get("wait"), s.cfg.InboxMaxWait)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if secs := int64(wait / time.Second); secs >= 1 {
		// Tells the poller that this server holds polls (the long-poll
		// extension, docs/extensions.md), so it may poll again at once
		// after an empty reply.
		w.Header().Set("ATP-Inbox-Wait", strconv.FormatInt(secs, 10))
	}
	if k.Toolkit == "" {
		// Nothing can be routed to a key that has registered no tool yet.
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	var c *call
	if s.cluster != nil {
		// The replicas share the toolkit's inbox (cluster_inbox.go).
		if c, err = s.cluster.poll(r.Context().Done(), toolkitRef{k.Owner, k.Toolkit}, k.ID, wait); err != nil {
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusServiceUnavailable, "inbox: "+err.Error())
			return
		}
	} else {
		c = s.hub.poll(r.Context().Done(), toolkitRef{k.Owner, k.Toolkit}, k.ID, wait)
	}
	if s.keyRevoked(k.ID) {
		// Revoked while polling: the call it may have taken has been failed
		// (hub.revokeKey) and must not reach the toolkit.
		writeError(w, http.StatusUnauthorized, "API key has been revoked")
		return
	}
	if c == nil {
		writeJSON(w, http.StatusOK, struct{}{})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, err = w.Write(appendFlatRequest(make([]byte, 0, 128+len(c.params)), c))
	if err == nil {
		err = http.NewResponseController(w).Flush() // find out now whether it got out
	}
	if err != nil || r.Context().Err() != nil {
		// The poller is gone: give the call to the next poll.
		if s.cluster != nil {
			s.cluster.release(c, k.ID)
		} else {
			s.hub.requeue(c)
		}
	}
}

// parseWait reads the long-poll extension's wait (docs/extensions.md):
// whole seconds ("25"), or a Go duration ("1.5s"), capped at max.
func parseWait(v string, max time.Duration) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.ParseFloat(v, 64)
		if nerr != nil || n < 0 {
			return 0, fmt.Errorf("wait: expected seconds (e.g. 25) or a duration (e.g. 25s), got %q", v)
		}
		d = time.Duration(n * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("wait: expected a duration of at least 0, got %q", v)
	}
	return min(d, max), nil
}

func (s *Server) handleInboxRespond(w http.ResponseWriter, r *http.Request) {
	k, ok := s.pathKeyAuth(w, r, store.KindToolkit)
	if !ok || !s.admitRequest(w, k) {
		return
	}
	var rep toolReply
	if !s.readBody(w, r, func(b []byte) error { return decodeToolReply(validUTF8(b), &rep) }) {
		return
	}
	if len(rep.RequestID) == 0 {
		writeError(w, http.StatusBadRequest, "request_id: missing")
		return
	}
	result := rep.Response
	if len(result) == 0 {
		result = rep.Result // a toolkit that answers with the WebSocket's key
	}
	if len(result) == 0 {
		writeError(w, http.StatusBadRequest, `response: missing: put the tool's result (or {"error": ...}) under "response"`)
		return
	}
	id := requestIDString(rep.RequestID)
	if k.Toolkit != "" && s.cluster != nil && s.cluster.respondElsewhere(w, toolkitRef{k.Owner, k.Toolkit}, id, reply{result: result, isError: rep.IsError}) {
		return // the call waits on another replica
	}
	if k.Toolkit == "" || !s.hub.complete(toolkitRef{k.Owner, k.Toolkit}, id, reply{result: result, isError: rep.IsError}) {
		s.metrics.lateReplies.Add(1)
		writeJSON(w, http.StatusGone, map[string]any{"ok": false, "error": fmt.Sprintf("request %q is not waiting for a reply from this toolkit: it timed out, was answered already, or is unknown", id)})
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"ok": true})
}

// handleInboxRelease ends the key's held inbox polls at once, for a toolkit
// that shuts down (docs/extensions.md): it reads its last poll to the end,
// with the call the poll may carry, instead of cutting it.
func (s *Server) handleInboxRelease(w http.ResponseWriter, r *http.Request) {
	k, ok := s.pathKeyAuth(w, r, store.KindToolkit)
	if !ok || !s.admitRequest(w, k) {
		return
	}
	n := 0
	if k.Toolkit != "" {
		n = s.hub.release(toolkitRef{k.Owner, k.Toolkit}, k.ID)
		if s.cluster != nil {
			// The poll may be held by another replica.
			s.cluster.publishRelease(toolkitRef{k.Owner, k.Toolkit}, k.ID)
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"released": n})
}

// pathKeyAuth authenticates the API key of a request with the key in its
// path (the {key} segment) and optionally in "Authorization: Bearer"; both
// must agree when both are given. It answers the failure itself.
func (s *Server) pathKeyAuth(w http.ResponseWriter, r *http.Request, kind store.KeyKind) (store.Key, bool) {
	apiKey, err := pickKey(r.PathValue("key"), bearer(r, "Bearer"))
	if err == nil {
		var k store.Key
		if k, err = s.authenticate(r.Context(), apiKey, kind); err == nil {
			return k, true
		}
	}
	writeAuthError(w, err)
	return store.Key{}, false
}
