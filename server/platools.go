package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/atpgo/atp/internal/jsontree"
	"github.com/atpgo/atp/internal/schemavalidate"
	"github.com/atpgo/atp/runtime/atpimpl"
	"github.com/atpgo/atp/server/store"
	"github.com/gorilla/websocket"
)

// The Platools SDK side (docs/protocol.md §4): a Platools SDK (Python,
// TypeScript, or our runtime's TransportPlatools) connects to /ws/sdk with
// its secret, a toolkit key, as a Bearer token, and names its entity, the
// toolkit. The connection is a toolkit connection like an ATP v1 one (a
// *tkConn in the hub's routes, with the same limits, liveness, revocation
// and call bookkeeping); only its frames differ: welcome, tool_register as
// the complete declaration, heartbeat, tool_call out, tool_result and
// tool_error in.

// Refusals, in the reference platform's words (the SDKs show them as they
// are).
const (
	ptMissingAuth   = "Missing Authorization: Bearer <secret>"
	ptMissingEntity = "Missing entity id. Connect with ?entity=<slug> (or the X-Platos-Entity-Id header). Your service secret was not the problem."
	ptInvalid       = "Invalid service secret or entity not found"
	ptBadEnv        = "Could not resolve environment for this entity/project"
)

// ptDefaultEnv is the environment of a connection that names none.
const ptDefaultEnv = "dev"

// ptLanguage is the programming_language stored for a toolkit declared
// over the Platools wire.
const ptLanguage = "Platools"

// Close reasons of the Platools wire.
const (
	ptReasonSuperseded = "superseded by new connection"
	ptReasonRotated    = "secret rotated; reconnect with new secret"
	ptCloseRotated     = 4001
)

// ptPreviewChars is how much of a truncated result is kept, in characters.
const ptPreviewChars = 4096

var errSuperseded = errors.New(ptReasonSuperseded)

// platoolsState is what the Platools connections of one server share.
type platoolsState struct {
	seq atomic.Uint64 // orders connections, for superseding

	mu        sync.Mutex
	registers map[ptThrottleKey][]time.Time // the tool_register times of the last minute
}

type ptThrottleKey struct {
	ref toolkitRef
	env string
}

// ptConn is the Platools state of a toolkit connection.
type ptConn struct {
	env string
	seq uint64 // newer connections have larger ones

	mu     sync.Mutex
	health map[string]ptHealth // the last heartbeat's report, by declared tool
}

// ptHealth is one tool's health as its toolkit reported it.
type ptHealth struct {
	Status       string  `json:"status"`
	AvgLatencyMs float64 `json:"avg_latency_ms"`
	ErrorCount1h float64 `json:"error_count_1h"`
	LastError    string  `json:"last_error"`
}

func (s *Server) handlePlatools(w http.ResponseWriter, r *http.Request) {
	// The secret is checked before the upgrade, so that a peer without a
	// valid key holds no WebSocket; the reference platform's texts lead.
	secret := bearer(r, "Bearer")
	if secret == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="atp"`)
		writeError(w, http.StatusUnauthorized, ptMissingAuth)
		return
	}
	k, err := s.authenticate(r.Context(), secret, store.KindToolkit)
	if err != nil {
		var ae *authError
		if !errors.As(err, &ae) || ae.status == http.StatusInternalServerError {
			writeAuthError(w, err)
			return
		}
		writeError(w, ae.status, ptInvalid+": "+ae.msg)
		return
	}
	entity, env := platoolsEntity(r), platoolsEnv(r)
	release, ok := s.admitWS(w, k)
	if !ok {
		return
	}
	// An SDK is a program, not a page: there is no origin to check.
	ws, err := s.upgrader(func(*http.Request) bool { return true }).Upgrade(w, r, nil)
	if err != nil {
		release()
		return
	}
	c := &tkConn{key: k, pt: &ptConn{env: env, seq: s.platools.seq.Add(1)}}
	c.init(s, ws)
	c.peer = "toolkit"
	c.holds(release)
	c.log = s.log.With("wire", "platools", "toolkit", peerText(entity), "environment", peerText(env), "owner", k.Owner, "key_id", k.ID, "remote", r.RemoteAddr)
	c.warns = s.newPeerWarnings(c.log)
	c.keyID.Store(&k.ID)

	// Refusals after the upgrade are an error frame and close 1008, as the
	// SDKs expect them.
	if code, msg := s.platoolsRefusal(k, entity, env); msg != "" {
		c.log.Info("platools connection refused", "reason", peerText(msg))
		c.sendJSON(errorFrame{Type: "error", Error: msg})
		c.flushed(time.Second)
		c.closeWith(code, closeReason(msg), errors.New(msg))
		return
	}
	c.ref = toolkitRef{k.Owner, entity}
	c.onClose = func(cause error) {
		calls := s.hub.removeConn(c)
		if len(calls) > 0 {
			fail(calls, fmt.Sprintf("the toolkit's connection closed while the call was in flight (%v)", cause), reasonDisconnected)
		}
		c.log.Info("toolkit disconnected", "cause", cause, "failed_calls", len(calls))
	}
	if !s.track(c) {
		c.closeWith(websocket.CloseGoingAway, "server shutting down", errShutdown)
		return
	}
	defer s.untrack(c)
	if s.revokedOnAuth(c) {
		return
	}
	// As the ATP v1 greeting: welcome goes out first, once calls can be
	// routed here, and before any of them.
	welcome, _ := json.Marshal(map[string]string{
		"type": "welcome", "sdk_connection_id": "sdk_" + randomID(24),
		"organization_id": k.Owner, "org_id": k.Owner, "entity_id": entity, "environment_id": env,
	})
	c.out.hold(welcome)
	if err := s.hub.addConn(c); err != nil {
		c.closeWith(websocket.CloseGoingAway, err.Error(), err)
		return
	}
	for _, old := range s.hub.olderPlatools(c) {
		old.log.Info("a newer connection for the same toolkit and environment supersedes this one")
		old.closeWith(websocket.CloseNormalClosure, ptReasonSuperseded, errSuperseded)
	}
	c.start(s.cfg.FrameLimit)
	c.log.Info("toolkit connected")
	c.unhold()
	c.ptReadLoop()
}

// platoolsEntity is the entity a connection names: ?entity=, ?source=, or
// the X-Platos-Entity-Id or X-Platos-Source header, the first given.
func platoolsEntity(r *http.Request) string {
	q := r.URL.Query()
	for _, v := range []string{q.Get("entity"), q.Get("source"), r.Header.Get("X-Platos-Entity-Id"), r.Header.Get("X-Platos-Source")} {
		if v != "" {
			return v
		}
	}
	return ""
}

// platoolsEnv is the environment a connection names (?env= or the
// X-Platos-Environment-Id header), dev when none.
func platoolsEnv(r *http.Request) string {
	if v := r.URL.Query().Get("env"); v != "" {
		return v
	}
	if v := r.Header.Get("X-Platos-Environment-Id"); v != "" {
		return v
	}
	return ptDefaultEnv
}

// platoolsRefusal says why a connection cannot serve entity, with the
// close code to send: 1008 for what the SDK must fix, 1011 for a failure
// of the server's. "" lets it in.
func (s *Server) platoolsRefusal(k store.Key, entity, env string) (int, string) {
	if entity == "" {
		return websocket.ClosePolicyViolation, ptMissingEntity
	}
	if err := store.ValidToolkitName(entity); err != nil {
		return websocket.ClosePolicyViolation, fmt.Sprintf("%s: entity: %v", ptInvalid, err)
	}
	if err := store.ValidToolkitName(env); err != nil {
		return websocket.ClosePolicyViolation, fmt.Sprintf("%s: env: %s", ptBadEnv, strings.Replace(err.Error(), "toolkit name", "environment", 1))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	switch err := s.store.CheckClaim(ctx, k, entity); {
	case err == nil:
		return 0, ""
	case errors.Is(err, store.ErrKeyBoundElsewhere):
		return websocket.ClosePolicyViolation, fmt.Sprintf("%s: this toolkit key serves toolkit %q, not %q", ptInvalid, k.Toolkit, entity)
	case errors.Is(err, store.ErrToolkitTaken):
		s.log.Warn("a key asked for a toolkit that another key of its owner holds; refused", "owner", k.Owner, "toolkit", peerText(entity), "key_id", k.ID)
		return websocket.ClosePolicyViolation, fmt.Sprintf("%s: %v", ptInvalid, err)
	default:
		s.log.Error("checking a toolkit claim failed", "err", err)
		return websocket.CloseInternalServerErr, "internal error reading the toolkit's keys; retry later"
	}
}

// closeReason fits a message in a close frame (123 bytes of reason).
func closeReason(msg string) string {
	const max = 123
	if len(msg) <= max {
		return msg
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(msg[cut]) {
		cut--
	}
	return msg[:cut] + "…"
}

// revoke closes the session of a revoked key: an ATP v1 one with 1008, a
// Platools one with 4001, the code the SDKs know for a secret that no
// longer works (atp keys rotate revokes the old key).
func (c *tkConn) revoke() {
	if c.pt == nil {
		c.wsSession.revoke()
		return
	}
	c.closeWith(ptCloseRotated, ptReasonRotated, errRevoked)
}

// olderPlatools returns the Platools connections of c's toolkit and
// environment that are older than c: c supersedes them.
func (h *hub) olderPlatools(c *tkConn) []*tkConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := h.routes[c.ref]
	if r == nil {
		return nil
	}
	var older []*tkConn
	for _, x := range r.conns {
		if x != c && x.pt != nil && x.pt.env == c.pt.env && x.pt.seq < c.pt.seq {
			older = append(older, x)
		}
	}
	return older
}

// completeOn delivers a Platools toolkit's answer to the call with that id
// when the call was sent on conn: an answer from another connection (of
// another environment, or one that superseded it) is not taken.
func (h *hub) completeOn(conn *tkConn, id string, rep reply) bool {
	rep.via = conn.readFlusher()
	h.mu.Lock()
	c := h.pending[id]
	return h.settleLocked(c, c != nil && c.conn == conn, rep)
}

// ---- frames from the SDK ----

// ptFrame is what the server reads of an SDK's frame.
type ptFrame struct {
	Type        string
	CallID      json.RawMessage
	Result      json.RawMessage
	Error       json.RawMessage
	Traceback   json.RawMessage
	Problems    json.RawMessage
	Tools       json.RawMessage
	ToolsHealth json.RawMessage
}

func decodePlatoolsFrame(data []byte, f *ptFrame) error {
	return decodeMessage(data, func(d *atpimpl.Decoder, key []byte) {
		switch string(key) {
		case "type":
			f.Type = optString(d)
		case "call_id":
			f.CallID = d.Raw()
		case "result":
			f.Result = d.Raw()
		case "error":
			f.Error = d.Raw()
		case "traceback":
			f.Traceback = d.Raw()
		case "problems":
			f.Problems = d.Raw()
		case "tools":
			f.Tools = d.Raw()
		case "tools_health":
			f.ToolsHealth = d.Raw()
		default:
			d.Skip()
		}
	})
}

// jsonText is a raw JSON value as text: a string unquoted, null as "",
// anything else as its JSON.
func jsonText(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	if raw[0] == '"' {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

func (c *tkConn) ptReadLoop() {
	for {
		data, err := c.readMessage()
		if err != nil {
			c.reads.flush()
			code, reason, cause := readErr(err, c.s.cfg.FrameLimit)
			c.closeWith(code, reason, cause)
			return
		}
		c.alive()
		data = validUTF8(data)
		var f ptFrame
		if err := decodePlatoolsFrame(data, &f); err != nil {
			c.ptMalformed(&f, err)
			continue
		}
		switch f.Type {
		case "tool_result":
			c.ptAnswer(&f, false)
		case "tool_error":
			c.ptAnswer(&f, true)
		case "tool_register":
			c.ptRegister(f.Tools)
		case "heartbeat":
			c.ptHeartbeat(f.ToolsHealth)
		case "":
			c.warns.warn(slog.LevelWarn, "platools toolkit sent a frame without type; ignored")
		default:
			c.warns.warn(slog.LevelWarn, "platools toolkit sent an unknown frame type; ignored", "type", peerText(f.Type))
		}
	}
}

// ptMalformed handles a frame that does not decode: when it answers a call
// of this connection, the call fails now, saying why.
func (c *tkConn) ptMalformed(f *ptFrame, err error) {
	if (f.Type == "tool_result" || f.Type == "tool_error") && len(f.CallID) > 0 {
		id := requestIDString(f.CallID)
		msg := fmt.Sprintf("the toolkit's answer could not be read: %s", peerText(err.Error()))
		if c.s.hub.completeOn(c, id, reply{failure: msg, reason: reasonToolError}) {
			c.warns.warn(slog.LevelWarn, "platools toolkit sent a malformed answer; its call failed", "call_id", peerText(id), "err", peerErr(err))
			return
		}
	}
	c.warns.warn(slog.LevelWarn, "platools toolkit sent a malformed frame; ignored", "err", peerErr(err))
}

// ptAnswer takes a tool_result or tool_error back into its call's reply.
// A result over Config.PlatoolsMaxResultBytes is truncated; a tool_error's
// message (and its problems, an extension) becomes the failure the LLM
// client reads. The traceback stays here: it describes the toolkit's
// code, not the call, and may quote what the model should not see.
func (c *tkConn) ptAnswer(f *ptFrame, failed bool) {
	if len(f.CallID) == 0 {
		c.warns.warn(slog.LevelWarn, "platools toolkit sent an answer without call_id; ignored", "type", f.Type)
		return
	}
	id := requestIDString(f.CallID)
	limit := c.s.cfg.PlatoolsMaxResultBytes
	var rep reply
	if failed {
		msg := jsonText(f.Error)
		if msg == "" {
			msg = "the tool failed without saying why"
		}
		if len(msg) > limit {
			msg = clip(msg, limit)
		}
		body := map[string]any{"error": msg}
		if len(f.Problems) > 0 && f.Problems[0] == '[' && len(f.Problems) <= limit {
			body["problems"] = f.Problems
		}
		rep.result, _ = json.Marshal(body)
		rep.isError = &failed
		if tb := jsonText(f.Traceback); tb != "" && c.log.Enabled(context.Background(), slog.LevelDebug) {
			c.log.Debug("platools tool_error traceback", "call_id", peerText(id), "traceback", clip(tb, maxLogValue))
		}
	} else {
		rep.result = f.Result
		if len(rep.result) == 0 {
			rep.result = json.RawMessage("null")
		}
		if len(rep.result) > limit {
			rep.result = truncatedResult(rep.result)
		}
		rep.isError = &failed
	}
	if !c.s.hub.completeOn(c, id, rep) {
		c.s.metrics.lateReplies.Add(1)
		c.warns.warn(slog.LevelInfo, "dropped an answer to a call that is no longer waiting on this connection (timed out, or unknown)", "call_id", peerText(id))
	}
}

// truncatedResult stands in for a result too large to pass on, as the
// reference platform does.
func truncatedResult(result json.RawMessage) json.RawMessage {
	preview := string(result)
	n := 0
	for i := range preview {
		if n == ptPreviewChars {
			preview = preview[:i]
			break
		}
		n++
	}
	b, _ := json.Marshal(struct {
		Truncated     bool   `json:"truncated"`
		Preview       string `json:"preview"`
		OriginalBytes int    `json:"original_bytes"`
	}{true, preview, len(result)})
	return b
}

// ---- tool_register ----

// ptToolDecl is one tool of a tool_register.
type ptToolDecl struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema"`
	Auth         string          `json:"auth"`
	Roles        []string        `json:"roles"`
	Annotations  json.RawMessage `json:"annotations"`
	// AuthProvider is our runtime's extension: the OAuth platform whose
	// end-user token the tool needs.
	AuthProvider string `json:"auth_provider"`
}

// ptRegister applies a tool_register: the toolkit's complete declaration.
// Past Config.PlatoolsRegistersPerMinute it is throttled; a declaration
// with any bad tool changes nothing and is answered with an error frame
// naming every problem (the connection stays open).
func (c *tkConn) ptRegister(raw json.RawMessage) {
	s := c.s
	if wait, ok := s.platools.allowRegister(ptThrottleKey{c.ref, c.pt.env}, s.now(), s.cfg.PlatoolsRegistersPerMinute); !ok {
		secs := (wait + time.Second - 1) / time.Second
		c.warns.warn(slog.LevelWarn, "platools tool_register throttled", "limit_per_minute", s.cfg.PlatoolsRegistersPerMinute)
		c.sendJSONVia(map[string]any{
			"type":           "register_throttled",
			"error":          fmt.Sprintf("tool_register exceeded %d/min; retry after %ds", s.cfg.PlatoolsRegistersPerMinute, secs),
			"retry_after_ms": wait.Milliseconds(),
		}, c.readFlusher())
		return
	}
	refuse := func(msg string) {
		c.warns.warn(slog.LevelWarn, "platools tool_register refused", "err", peerText(msg))
		c.sendJSONVia(errorFrame{Type: "error", Error: "tool_register failed: " + msg}, c.readFlusher())
	}
	var decls []ptToolDecl
	if jsontree.KindOfText(raw) != "array" {
		refuse(fmt.Sprintf("tools: expected an array of tools, got %s", jsontree.KindOfText(raw)))
		return
	}
	if err := json.Unmarshal(raw, &decls); err != nil {
		refuse(jsonError(err).Error())
		return
	}
	if len(decls) > s.cfg.MaxToolsPerToolkit {
		refuse(fmt.Sprintf("%d tools, over this server's limit of %d per toolkit (atp serve --max-tools-per-toolkit); nothing was changed", len(decls), s.cfg.MaxToolsPerToolkit))
		return
	}
	tools, entries, err := ptCheckTools(decls, c.ref.Name, s.cfg.schemaLimits())
	if err != nil {
		refuse(err.Error())
		return
	}
	hashes := make([]string, len(tools))
	for i, t := range tools {
		hashes[i] = t.Name + ":" + t.CodeHash
	}
	slices.Sort(hashes)
	kitHash := hexSHA256([]byte(strings.Join(hashes, "\n")))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	k, declared, err := s.store.Declare(ctx, store.Declaration{KeyID: c.key.ID, Toolkit: c.ref.Name, ToolkitHash: kitHash, Language: ptLanguage, Tools: tools})
	switch {
	case errors.Is(err, store.ErrKeyBoundElsewhere), errors.Is(err, store.ErrToolkitTaken):
		// The name was free at the handshake, and another key took it
		// since (or bound this key elsewhere): this connection can never
		// serve it, so it ends as a refused handshake does.
		msg := fmt.Sprintf("%s: this toolkit key serves another toolkit, not %q", ptInvalid, c.ref.Name)
		if errors.Is(err, store.ErrToolkitTaken) {
			msg = fmt.Sprintf("%s: %v", ptInvalid, err)
		}
		c.log.Warn("platools tool_register refused; closing", "err", peerText(msg))
		c.sendJSONVia(errorFrame{Type: "error", Error: msg}, nil)
		c.flushed(time.Second)
		c.closeWith(websocket.ClosePolicyViolation, closeReason(msg), errors.New(msg))
		return
	case errors.Is(err, store.ErrRevokedKey):
		refuse("API key has been revoked")
		return
	case errors.Is(err, store.ErrInvalidKey), errors.Is(err, store.ErrWrongKind):
		refuse("invalid API key")
		return
	case err != nil:
		s.log.Error("platools tool_register: store", "err", err)
		refuse("internal error saving the tools")
		return
	}
	s.registry.replace(c.ref, kitHash, ptLanguage, entries)
	s.hub.bind(k.ID, c.ref)
	if s.cluster != nil {
		s.cluster.toolkitChanged(c.ref, k.ID, "")
	}
	c.log.Info("tools declared", "count", len(tools), "new", len(declared.New), "updated", len(declared.Updated), "pruned", len(declared.Pruned))
	c.sendJSONVia(map[string]any{
		"type": "tools_registered", "entity_id": c.ref.Name, "environment_id": c.pt.env, "count": len(tools),
		// The SDKs type new_tools as the list of the new tools' names.
		"new_tools": nonNilNames(declared.New), "updated": len(declared.Updated), "pruned": len(declared.Pruned),
	}, c.readFlusher())
}

func nonNilNames(names []string) []string {
	if names == nil {
		return []string{}
	}
	return names
}

// allowRegister counts a tool_register of key at now, or says how long to
// wait when limit of them came within the last minute.
func (p *platoolsState) allowRegister(key ptThrottleKey, now time.Time, limit int) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.registers == nil {
		p.registers = map[ptThrottleKey][]time.Time{}
	}
	if len(p.registers) > 1024 {
		// Forget the toolkits that have not registered for a minute, so
		// that the map holds only the last minute's.
		for k, times := range p.registers {
			if now.Sub(times[len(times)-1]) >= time.Minute {
				delete(p.registers, k)
			}
		}
	}
	times := p.registers[key]
	kept := times[:0]
	for _, t := range times {
		if now.Sub(t) < time.Minute {
			kept = append(kept, t)
		}
	}
	if len(kept) >= limit {
		p.registers[key] = kept
		return kept[0].Add(time.Minute).Sub(now), false
	}
	p.registers[key] = append(kept, now)
	return 0, true
}

// ptCheckTools checks a declaration's tools as register_tool checks one
// (the same schema limits) and builds what to store and publish. Its error
// lists the problems of up to twenty tools.
func ptCheckTools(decls []ptToolDecl, toolkit string, lim schemavalidate.Limits) ([]store.Tool, []*toolEntry, error) {
	tools := make([]store.Tool, 0, len(decls))
	entries := make([]*toolEntry, 0, len(decls))
	seen := make(map[string]bool, len(decls))
	var problems []string
	bad := 0
	for i, d := range decls {
		tool, entry, err := ptCheckTool(d, toolkit, lim)
		if err == nil && seen[d.Name] {
			err = errors.New("declared twice")
		}
		if err != nil {
			bad++
			if len(problems) < 20 {
				problems = append(problems, fmt.Sprintf("tools[%d] (%s): %v", i, peerText(d.Name), err))
			}
			continue
		}
		seen[d.Name] = true
		tools = append(tools, tool)
		entries = append(entries, entry)
	}
	if bad > 0 {
		msg := strings.Join(problems, "; ")
		if bad > len(problems) {
			msg += fmt.Sprintf("; and %d more", bad-len(problems))
		}
		return nil, nil, fmt.Errorf("%s; nothing was changed", msg)
	}
	return tools, entries, nil
}

// ptCheckTool turns one declared tool into a registration and checks it
// with checkRegistration, so that both wires accept the same tools.
func ptCheckTool(d ptToolDecl, toolkit string, lim schemavalidate.Limits) (store.Tool, *toolEntry, error) {
	needsToken := false
	switch d.Auth {
	case "", "none":
	case "user", "admin":
		// The call must carry the end user's token; admin's role check is
		// the platform's, and this server has no roles.
		needsToken = true
	default:
		return store.Tool{}, nil, fmt.Errorf(`auth: expected "none", "user" or "admin", got %q`, peerText(d.Auth))
	}
	if isJSONNull(d.InputSchema) {
		return store.Tool{}, nil, errors.New("input_schema: missing: declare the params' JSON Schema")
	}
	hints, err := ptHints(d.Annotations)
	if err != nil {
		return store.Tool{}, nil, err
	}
	var req registerRequest
	req.FunctionID, req.AppName, req.ProgrammingLanguage = d.Name, toolkit, ptLanguage
	md := &req.Metadata
	md.Description, md.InputSchema, md.OutputSchema, md.Hints = d.Description, d.InputSchema, d.OutputSchema, hints
	md.NeedsAuthToken, md.AuthProvider = needsToken, d.AuthProvider
	if d.AuthProvider != "" {
		md.AuthType, md.AuthWith = "OAuth2", "access_token"
	}
	md.Params, md.RequiredParams = schemaParams(d.InputSchema)
	tool, validator, err := checkRegistration(&req, lim)
	if err != nil {
		// Word the error in the declaration's field names.
		msg := strings.NewReplacer("function_id:", "name:", "metadata.input_schema", "input_schema", "metadata.output_schema", "output_schema",
			"metadata.hints", "annotations", "metadata.params", "input_schema.properties", "metadata: ", "").Replace(err.Error())
		return store.Tool{}, nil, errors.New(msg)
	}
	contract, _ := json.Marshal(struct {
		Name, Description, Auth, AuthProvider string
		Input, Output, Hints                  json.RawMessage
	}{tool.Name, tool.Description, d.Auth, d.AuthProvider, tool.InputSchema, tool.OutputSchema, tool.Hints})
	tool.CodeHash = hexSHA256(contract)
	return tool, &toolEntry{Tool: tool, validator: compiledValidator(validator)}, nil
}

// ptHints keeps the behaviour hints of a declaration's annotations
// (readOnlyHint, destructiveHint, idempotentHint); other annotations, such
// as a category, mean nothing to this server or the LLM providers.
func ptHints(raw json.RawMessage) (json.RawMessage, error) {
	if isJSONNull(raw) {
		return nil, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(raw, &all); err != nil {
		return nil, fmt.Errorf("annotations: expected an object, got %s", jsontree.KindOfText(raw))
	}
	kept := map[string]bool{}
	for _, name := range []string{"readOnlyHint", "destructiveHint", "idempotentHint"} {
		v, ok := all[name]
		if !ok {
			continue
		}
		var b bool
		if err := json.Unmarshal(v, &b); err != nil {
			return nil, fmt.Errorf("annotations.%s: expected boolean, got %s", name, jsontree.KindOfText(v))
		}
		kept[name] = b
	}
	if len(kept) == 0 {
		return nil, nil
	}
	b, _ := json.Marshal(kept)
	return b, nil
}

// schemaParams lists the property names of an object schema in the order
// they appear, and its required names that are among them: the params
// lists a registration stores beside the schema.
func schemaParams(schema json.RawMessage) (params, required []string) {
	var root struct {
		Properties json.RawMessage `json:"properties"`
		Required   []string        `json:"required"`
	}
	if json.Unmarshal(schema, &root) != nil || jsontree.KindOfText(root.Properties) != "object" {
		return nil, nil
	}
	d := json.NewDecoder(bytes.NewReader(root.Properties))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, nil
	}
	seen := map[string]bool{}
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, nil
		}
		name, _ := tok.(string)
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return nil, nil
		}
		if !seen[name] {
			seen[name] = true
			params = append(params, name)
		}
	}
	for _, r := range root.Required {
		if seen[r] && !slices.Contains(required, r) {
			required = append(required, r)
		}
	}
	return params, required
}

// ---- heartbeat ----

// ptHeartbeat keeps a heartbeat's tool health for /metrics, answers
// heartbeat_ack, and sends tool_health_alert for each tool that has just
// turned degraded or down.
func (c *tkConn) ptHeartbeat(raw json.RawMessage) {
	via := c.readFlusher()
	var reported map[string]json.RawMessage
	if jsontree.KindOfText(raw) == "object" {
		if err := json.Unmarshal(raw, &reported); err != nil {
			c.warns.warn(slog.LevelWarn, "platools heartbeat: tools_health could not be read; ignored", "err", peerErr(jsonError(err)))
		}
	}
	k := c.s.registry.get(c.ref)
	health := make(map[string]ptHealth, len(reported))
	ignored := 0
	for name, entry := range reported {
		var h ptHealth
		switch {
		case k == nil || k.tool(name) == nil:
			ignored++ // only declared tools are kept: the map stays bounded
			continue
		case json.Unmarshal(entry, &h) != nil:
			ignored++
			continue
		}
		switch h.Status {
		case "healthy", "degraded", "down":
		default:
			ignored++
			continue
		}
		h.LastError = clip(h.LastError, 512)
		health[name] = h
	}
	if ignored > 0 {
		c.warns.warn(slog.LevelInfo, "platools heartbeat: entries for undeclared tools or of the wrong shape were ignored", "ignored", ignored)
	}
	c.pt.mu.Lock()
	prev := c.pt.health
	c.pt.health = health
	c.pt.mu.Unlock()

	c.sendVia([]byte(`{"type":"heartbeat_ack"}`), via)
	names := make([]string, 0, len(health))
	for name := range health {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		h := health[name]
		if h.Status == "healthy" || prev[name].Status == h.Status {
			continue
		}
		c.warns.warn(slog.LevelWarn, "a platools toolkit reports a tool unhealthy", "tool", name, "status", h.Status, "error_count_1h", h.ErrorCount1h, "last_error", peerText(h.LastError))
		details := map[string]any{"avg_latency_ms": int64(h.AvgLatencyMs), "error_count_1h": int64(h.ErrorCount1h)}
		if h.LastError != "" {
			details["last_error"] = h.LastError
		}
		c.sendJSONVia(map[string]any{"type": "tool_health_alert", "tool": name, "status": h.Status, "details": details}, via)
	}
}

// ---- tool_call ----

// ptEnvelope is the __platos member added to a call's params. Every member
// is a string, present (possibly empty), as the SDKs' typed views of it
// want them all.
type ptEnvelope struct {
	OrganizationID string `json:"organizationId"`
	ProjectID      string `json:"projectId"`
	EnvironmentID  string `json:"environmentId"`
	EntityID       string `json:"entityId"`
	UserID         string `json:"userId"`
	UserToken      string `json:"userToken,omitempty"`
	AgentID        string `json:"agentId"`
	ThreadID       string `json:"threadId"`
	CallID         string `json:"callId"`
	Timestamp      string `json:"timestamp"`
	Nonce          string `json:"nonce"`
	Signature      string `json:"signature"`
}

// sendToolCall sends a call as a tool_call frame, its params carrying the
// __platos envelope and, when the call names an end user, _context.
func (c *tkConn) sendToolCall(cl *call, via *flusher) {
	env := ptEnvelope{
		OrganizationID: cl.ref.Owner, EnvironmentID: c.pt.env, EntityID: cl.ref.Name, UserID: cl.user,
		AgentID: cl.agent, CallID: cl.id, Timestamp: c.s.now().UTC().Format("2006-01-02T15:04:05.000Z"), Nonce: randomID(32),
	}
	// The end user's token goes only to a tool declared to act as the
	// user (auth "user" or "admin").
	if k := c.s.registry.get(cl.ref); k != nil {
		if t := k.tool(cl.tool); t != nil && (t.NeedsAuthToken || t.AuthProvider != "") {
			env.UserToken = cl.authToken
		}
	}
	envJSON, _ := json.Marshal(env)
	var ctxJSON []byte
	if cl.user != "" {
		ctxJSON, _ = json.Marshal(map[string]string{"user.id": cl.user})
	}
	b := make([]byte, 0, 256+len(cl.params)+len(envJSON)+len(ctxJSON))
	b = append(b, `{"type":"tool_call","call_id":"`...)
	b = append(b, cl.id...)
	b = append(b, `","tool_name":"`...)
	b = append(b, cl.tool...)
	b = append(b, `","params":`...)
	b = appendPlatosParams(b, cl.params, envJSON, ctxJSON)
	c.sendVia(append(b, '}'), via)
}

// appendPlatosParams appends params (a JSON object) with the __platos
// envelope, and _context when given, added as its last members. Members of
// those names that the LLM client put in the params are dropped first: an
// envelope is the server's word, never the model's.
func appendPlatosParams(b, params, envelope, context []byte) []byte {
	params = bytes.TrimSpace(params)
	if bytes.Contains(params, []byte(`__platos`)) || bytes.Contains(params, []byte(`_context`)) {
		var m map[string]json.RawMessage
		if json.Unmarshal(params, &m) == nil {
			delete(m, "__platos")
			delete(m, "_context")
			params, _ = json.Marshal(m)
		}
	}
	if len(params) < 2 || params[0] != '{' {
		params = []byte("{}") // the validator lets only objects through
	}
	inner := bytes.TrimSpace(params[1 : len(params)-1])
	b = append(b, '{')
	if len(inner) > 0 {
		b = append(b, inner...)
		b = append(b, ',')
	}
	b = append(b, `"__platos":`...)
	b = append(b, envelope...)
	if context != nil {
		b = append(b, `,"_context":`...)
		b = append(b, context...)
	}
	return append(b, '}')
}

// ---- /metrics ----

// writePlatoolsMetrics writes the health that each connected Platools
// toolkit last reported.
func (s *Server) writePlatoolsMetrics(w io.Writer) {
	type row struct {
		labels string
		h      ptHealth
	}
	var rows []row
	conns := 0
	s.mu.Lock()
	live := make([]*tkConn, 0, len(s.live))
	for lc := range s.live {
		if c, ok := lc.(*tkConn); ok && c.pt != nil {
			live = append(live, c)
		}
	}
	s.mu.Unlock()
	for _, c := range live {
		conns++
		c.pt.mu.Lock()
		for tool, h := range c.pt.health {
			rows = append(rows, row{fmt.Sprintf(`owner="%s",toolkit="%s",environment="%s",tool="%s"`,
				labelValue(c.ref.Owner), labelValue(c.ref.Name), labelValue(c.pt.env), labelValue(tool)), h})
		}
		c.pt.mu.Unlock()
	}
	slices.SortFunc(rows, func(a, b row) int { return strings.Compare(a.labels, b.labels) })
	writeGauge(w, "atp_platools_connections", "Open Platools SDK connections.", conns)
	fmt.Fprintf(w, "# HELP atp_platools_tool_up Tool health a Platools toolkit reported in its last heartbeat: 1 for the reported status.\n# TYPE atp_platools_tool_up gauge\n")
	for _, r := range rows {
		fmt.Fprintf(w, "atp_platools_tool_up{%s,status=\"%s\"} 1\n", r.labels, r.h.Status)
	}
	fmt.Fprintf(w, "# HELP atp_platools_tool_latency_ms Average call latency over the last hour, as a Platools toolkit reported it.\n# TYPE atp_platools_tool_latency_ms gauge\n")
	for _, r := range rows {
		fmt.Fprintf(w, "atp_platools_tool_latency_ms{%s} %s\n", r.labels, formatFloat(r.h.AvgLatencyMs))
	}
	fmt.Fprintf(w, "# HELP atp_platools_tool_errors_1h Failed calls in the last hour, as a Platools toolkit reported them.\n# TYPE atp_platools_tool_errors_1h gauge\n")
	for _, r := range rows {
		fmt.Fprintf(w, "atp_platools_tool_errors_1h{%s} %s\n", r.labels, formatFloat(r.h.ErrorCount1h))
	}
}

// labelValue escapes a Prometheus label value.
func labelValue(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}

// hexSHA256 is the hex SHA-256 of b: the code hash of a declared tool and
// the toolkit hash of a declaration.
func hexSHA256(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}
