package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/atpgo/atp/runtime/atpimpl"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The Platools wire (docs/protocol.md §4): one WebSocket to a Platos
// platform, {PLATOS_URL}/ws/sdk with "Authorization: Bearer <secret>". The
// platform greets (welcome); the toolkit declares every tool at once
// (tool_register) and the platform confirms (tools_registered) or asks it
// to wait (register_throttled); calls come as tool_call and are answered
// with tool_result or tool_error; a heartbeat every PingInterval reports
// each tool's health. An error frame followed by close 1008 (the secret or
// the entity was refused) and close 4001 (the secret was rotated) stop
// Serve; close 1000 "superseded by new connection" stops it too, since
// another connection for the same entity and environment took over.

// ErrSuperseded is wrapped by the error Serve returns when a Platos
// platform closed the connection because a newer one for the same entity
// and environment took its place (close 1000 "superseded by new
// connection"). Serve does not reconnect then: the newer connection (a new
// deployment, another replica) is the one the platform wants, and taking
// the place back would supersede it in turn, the two alternating for ever.
// A program that treats it as a normal end can test errors.Is(err,
// runtime.ErrSuperseded).
var ErrSuperseded = errors.New("superseded by new connection")

// Close codes and reasons of the Platools wire.
const (
	closeSecretRotated = 4001
	reasonSuperseded   = "superseded by new connection"
)

// maxRegisterWait caps the retry_after_ms of register_throttled, so that a
// platform cannot make the toolkit wait for ever before it declares its
// tools again. The platform's window is a minute.
const maxRegisterWait = 10 * time.Minute

// defaultRegisterWait is the wait when register_throttled names none.
const defaultRegisterWait = 10 * time.Second

// maxTraceback bounds the traceback of a tool_error (a panic's stack).
const maxTraceback = 64 << 10

// Platos is what a Platos platform sends along with a call: the
// params.__platos envelope, whose members are described in
// docs/protocol.md §4.4, and the params._context object. A member sent as
// a number or boolean holds its JSON text; a missing or null one is "".
// The end user's token (userToken) is not here but in Call.AuthToken,
// which never prints.
type Platos struct {
	OrganizationID string
	ProjectID      string
	EnvironmentID  string
	EntityID       string
	UserID         string
	AgentID        string
	ThreadID       string
	CallID         string
	Timestamp      string
	Nonce          string
	Signature      string
	// Context is params._context as sent, e.g. {"user.id": "u-42"}; nil
	// when the call had none.
	Context json.RawMessage
}

// platoolsURL rewrites a platform's base URL as the Platools SDKs do: http
// becomes ws and https wss, the path loses its trailing slashes, and
// /ws/sdk is appended before the query, which is kept (?entity=, ?env=).
// The URL is checked first, so that a typo fails at Serve rather than at
// every reconnect.
func platoolsURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("ServeConfig.URL (PLATOS_URL): %w", err)
	}
	switch strings.ToLower(u.Scheme) {
	case "http", "https", "ws", "wss":
	case "":
		return "", fmt.Errorf("ServeConfig.URL (PLATOS_URL) %q has no scheme; want https://, http://, wss:// or ws://", raw)
	default:
		return "", fmt.Errorf("ServeConfig.URL (PLATOS_URL): scheme %q not supported; want https, http, wss or ws", u.Scheme)
	}
	switch {
	case u.Host == "":
		return "", fmt.Errorf("ServeConfig.URL (PLATOS_URL) %q has no host", raw)
	case u.User != nil:
		return "", errors.New("ServeConfig.URL (PLATOS_URL) must not hold a user name or password; the secret authenticates")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "", fmt.Errorf("ServeConfig.URL (PLATOS_URL) %q has a fragment (#...); a WebSocket URL cannot", raw)
	}
	s := raw
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		switch strings.ToLower(scheme) {
		case "http":
			s = "ws://" + rest
		case "https":
			s = "wss://" + rest
		}
	}
	path, query := s, ""
	if i := strings.IndexByte(s, '?'); i >= 0 {
		path, query = s[:i], s[i:]
	}
	return strings.TrimRight(path, "/") + "/ws/sdk" + query, nil
}

// ptSession is one WebSocket connection to a Platos platform. One goroutine
// reads it (readLoop) and never runs a tool: each call runs on a call slot
// (callSlots), on a goroutine of its own, so that a slow call delays
// neither another call nor the keepalive.
type ptSession struct {
	s    *server
	conn *websocket.Conn
	// idle is how long the connection may stay silent (no frame, no pong)
	// before it is presumed dead.
	idle time.Duration
	w    wsWriter

	mu       sync.Mutex // guards draining against calls.Add
	draining bool
	calls    sync.WaitGroup

	queue     chan struct{} // calls read and not finished (the backlog)
	stopQueue chan struct{} // closed when draining starts
	group     *callGroup    // the calls, cancelled together
	readDone  chan error

	// stateMu guards what the reader, the timers and the calls share.
	stateMu     sync.Mutex
	connectedAt time.Time // zero until reported
	over        bool      // the session ended: no report, no timer any more
	registered  bool      // tool_register was sent on this connection
	lastError   string    // the platform's last error frame
	stopGrace   func() bool
	stopBeat    func() bool
	stopRetry   func() bool

	// The reader's own.
	readBuf  bytes.Buffer
	limited  io.LimitedReader
	dec      atpimpl.Decoder
	extended time.Time // when a frame last moved the read deadline
}

func (s *server) platoolsSession(ctx context.Context) (time.Time, error) {
	header := http.Header{"Authorization": {"Bearer " + s.cfg.APIKey}}
	var bc *batchConn
	conn, resp, err := s.batchingDialer(&bc).DialContext(ctx, s.platools, header)
	if err != nil {
		return time.Time{}, handshakeError(resp, err)
	}
	ss := &ptSession{
		s:         s,
		conn:      conn,
		idle:      s.cfg.PingInterval + s.cfg.PongTimeout,
		queue:     make(chan struct{}, s.cfg.MaxInFlight*backlogPerSlot),
		stopQueue: make(chan struct{}),
		group:     newCallGroup(ctx, s.cfg.CallTimeout),
		readDone:  make(chan error, 1),
	}
	ss.w = wsWriter{conn: conn, bc: bc, timeout: s.cfg.PongTimeout, backlog: ss.queue}
	err = ss.run(ctx)
	return ss.end(), err
}

// end marks the session over, stops its timers, and returns when it was
// reported connected (zero if never).
func (ss *ptSession) end() time.Time {
	ss.stateMu.Lock()
	defer ss.stateMu.Unlock()
	ss.over = true
	for _, stop := range []func() bool{ss.stopGrace, ss.stopBeat, ss.stopRetry} {
		if stop != nil {
			stop()
		}
	}
	return ss.connectedAt
}

// routable reports the session connected, once: the platform has the
// toolkit's tools (tools_registered) or sends it calls.
func (ss *ptSession) routable(evidence string) {
	ss.stateMu.Lock()
	defer ss.stateMu.Unlock()
	if ss.over || !ss.connectedAt.IsZero() {
		return
	}
	ss.connectedAt = ss.s.connected(evidence)
}

func (ss *ptSession) run(ctx context.Context) error {
	conn := ss.conn
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(ss.idle))
	conn.SetPongHandler(func(string) error {
		return conn.SetReadDeadline(time.Now().Add(ss.idle))
	})
	conn.SetPingHandler(func(data string) error {
		conn.SetReadDeadline(time.Now().Add(ss.idle))
		err := conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(ss.s.cfg.PongTimeout))
		var ne net.Error
		if errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		return err
	})
	ss.stateMu.Lock()
	// The platform greets first (welcome), and the tools are declared
	// then. One that does not greet gets the declaration anyway, late.
	ss.stopGrace = ss.s.clock.AfterFunc(connectGrace, func() {
		ss.s.log.Warn("atp: platools: no welcome from the platform; declaring the tools anyway", "after", connectGrace)
		ss.register()
	})
	ss.stopBeat = ss.s.clock.AfterFunc(ss.s.cfg.PingInterval, ss.heartbeat)
	ss.stateMu.Unlock()

	go ss.readLoop()
	stopPing := make(chan struct{})
	defer close(stopPing)
	go ss.pingLoop(stopPing)

	select {
	case err := <-ss.readDone:
		ss.group.cancel(errConnectionLost)
		return ss.closeError(err)
	case <-ctx.Done():
		ss.drain()
		return nil
	}
}

// closeError says why the platform ended the session. Close 1008 (after an
// error frame) and 4001 are permanent; 1000 "superseded by new connection"
// stops Serve as well (ErrSuperseded).
func (ss *ptSession) closeError(err error) error {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		ss.stateMu.Lock()
		why := ss.lastError
		ss.stateMu.Unlock()
		if why == "" {
			why = ce.Text
		}
		switch {
		case ce.Code == websocket.ClosePolicyViolation:
			if why == "" {
				why = "policy violation"
			}
			return &permanentError{fmt.Errorf("the platform refused the connection (close 1008): %s", why)}
		case ce.Code == closeSecretRotated:
			if why == "" {
				why = "secret rotated"
			}
			return &permanentError{fmt.Errorf("the platform closed the connection (close 4001: %s): the secret was rotated or revoked; restart the toolkit with the new secret (PLATOS_SECRET)", why)}
		case ce.Code == websocket.CloseNormalClosure && ce.Text == reasonSuperseded:
			return &permanentError{fmt.Errorf("the platform closed the connection: %w: another connection for the same entity and environment now serves it, so this one stops rather than take the place back", ErrSuperseded)}
		}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("nothing received for %s (no frame, no pong): connection presumed dead: %w", ss.idle, err)
	}
	if errors.As(err, &ce) {
		return fmt.Errorf("the platform closed the connection: %w", err)
	}
	return fmt.Errorf("websocket read: %w", err)
}

func (ss *ptSession) pingLoop(stop <-chan struct{}) {
	t := time.NewTicker(ss.s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			err := ss.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(ss.s.cfg.PongTimeout))
			if err != nil {
				if !errors.Is(err, websocket.ErrCloseSent) {
					ss.conn.Close() // a dead peer: the read loop ends and Serve reconnects
				}
				return
			}
		}
	}
}

// readLoop reads frames until reading fails, which ends the session.
func (ss *ptSession) readLoop() {
	limit := ss.s.cfg.ReadLimit
	for {
		_, r, err := ss.conn.NextReader()
		if err != nil {
			ss.readDone <- err
			return
		}
		received := time.Now()
		ss.readBuf.Reset()
		ss.limited = io.LimitedReader{R: r, N: limit + 1}
		n, err := ss.readBuf.ReadFrom(&ss.limited)
		if err != nil {
			ss.readDone <- err
			return
		}
		if received.Sub(ss.extended) >= min(time.Second, ss.idle/4) {
			ss.extended = received
			ss.conn.SetReadDeadline(received.Add(ss.idle))
		}
		if n > limit {
			ss.oversized(ss.readBuf.Bytes(), received)
			continue
		}
		ss.handle(ss.readBuf.Bytes(), received)
		if ss.readBuf.Cap() > 64<<10 {
			ss.readBuf = bytes.Buffer{} // an idle session keeps no large buffer
		}
	}
}

// ptFrame is what the toolkit reads of a platform frame.
type ptFrame struct {
	typ      string
	callID   json.RawMessage
	toolName string
	params   json.RawMessage
	// other holds the remaining members of the informational frames
	// (welcome, tools_registered, ...), at most maxFrameMembers.
	other map[string]json.RawMessage
}

const maxFrameMembers = 32

func parsePlatoolsFrame(d *atpimpl.Decoder, data []byte, f *ptFrame) {
	d.Reset(data)
	d.SetLenientUTF8(true) // the params' own decoder reports invalid UTF-8 in them
	if !d.Object() {
		return
	}
	for d.Next() {
		switch key := d.Key(); string(key) {
		case "type":
			f.typ = d.String()
		case "call_id":
			f.callID = d.Raw()
		case "tool_name":
			f.toolName = d.String()
		case "params":
			f.params = d.Raw()
		default:
			if f.other == nil {
				f.other = map[string]json.RawMessage{}
			}
			if len(f.other) < maxFrameMembers {
				f.other[string(key)] = d.Raw()
			} else {
				d.Skip()
			}
		}
	}
}

// member returns an informational member as text for a log line: a string
// unquoted, anything else as its JSON, cut to n bytes.
func (f *ptFrame) member(name string, n int) string {
	raw := f.other[name]
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	return truncate(jsonString(raw), n)
}

// handle dispatches one frame. Nothing in a frame ends the session.
func (ss *ptSession) handle(data []byte, received time.Time) {
	log := ss.s.log
	var f ptFrame
	parsePlatoolsFrame(&ss.dec, data, &f)
	if ss.dec.Failed() {
		problems := problemText(ss.dec.Problems())
		if f.typ == "tool_call" && validID(f.callID) {
			req := &request{id: f.callID, tool: f.toolName, received: received}
			log.Warn("atp: platools: malformed tool_call", "call_id", req.idString(), "problems", problems)
			ss.sendError(req, fmt.Sprintf("malformed tool_call: %s", problems), nil, "")
			return
		}
		log.Warn("atp: platools: ignoring malformed frame", "bytes", len(data), "problems", problems)
		return
	}
	switch f.typ {
	case "tool_call":
		ss.toolCall(&f, received)
	case "welcome":
		org := f.member("organization_id", 128)
		if org == "" {
			org = f.member("org_id", 128)
		}
		log.Info("atp: platools: welcome", "sdk_connection_id", f.member("sdk_connection_id", 128), "organization_id", org,
			"entity_id", f.member("entity_id", 128), "environment_id", f.member("environment_id", 128))
		ss.register()
	case "tools_registered":
		// new_tools is a count from the Platos platform and the list of
		// the new tools' names from atp serve (as the SDKs type it).
		newTools := f.member("new_tools", 32)
		if raw := f.other["new_tools"]; len(raw) > 0 && raw[0] == '[' {
			var names []json.RawMessage
			json.Unmarshal(raw, &names)
			newTools = strconv.Itoa(len(names))
		}
		log.Info("atp: platools: tools registered", "count", f.member("count", 32), "new", newTools,
			"updated", f.member("updated", 32), "pruned", f.member("pruned", 32))
		ss.routable("the platform registered the tools")
	case "register_throttled":
		wait := defaultRegisterWait
		if raw := f.other["retry_after_ms"]; len(raw) > 0 {
			if ms, err := strconv.ParseFloat(string(raw), 64); err == nil {
				wait = time.Duration(max(0, min(ms, float64(maxRegisterWait/time.Millisecond)))) * time.Millisecond
			}
		}
		log.Warn("atp: platools: tool_register throttled; declaring the tools again later", "error", f.member("error", 256), "in", wait)
		ss.stateMu.Lock()
		if !ss.over {
			if ss.stopRetry != nil {
				ss.stopRetry()
			}
			ss.stopRetry = ss.s.clock.AfterFunc(wait, ss.reregister)
		}
		ss.stateMu.Unlock()
	case "heartbeat_ack":
	case "tool_health_alert":
		log.Warn("atp: platools: the platform reports a tool's health", "tool", f.member("tool", 64), "status", f.member("status", 32), "details", f.member("details", 512))
	case "error":
		msg := f.member("error", 1024)
		ss.stateMu.Lock()
		ss.lastError = msg
		ss.stateMu.Unlock()
		log.Error("atp: platools: the platform reported an error", "error", msg)
	case "":
		log.Warn("atp: platools: ignoring a frame without type", "bytes", len(data))
	default:
		log.Warn("atp: platools: ignoring an unknown frame type", "type", truncate(f.typ, 64), "bytes", len(data))
	}
}

// register sends the complete tool declaration, once per connection
// unless the platform asked for it again (reregister).
func (ss *ptSession) register() {
	ss.stateMu.Lock()
	if ss.over || ss.registered {
		ss.stateMu.Unlock()
		return
	}
	ss.registered = true
	if ss.stopGrace != nil {
		ss.stopGrace()
	}
	ss.stateMu.Unlock()
	ss.sendRegister()
}

// reregister declares the tools again after register_throttled.
func (ss *ptSession) reregister() {
	ss.stateMu.Lock()
	over := ss.over
	ss.stateMu.Unlock()
	if !over {
		ss.sendRegister()
	}
}

// ptTool is one tool of tool_register.
type ptTool struct {
	Name         string          `json:"name"`
	Description  string          `json:"description"`
	InputSchema  json.RawMessage `json:"input_schema"`
	OutputSchema json.RawMessage `json:"output_schema"` // null when the tool has none
	Auth         string          `json:"auth"`
	Roles        []string        `json:"roles"`
	Annotations  Hints           `json:"annotations"`
	// AuthProvider (an extension) names the OAuth platform whose end-user
	// token the tool needs, so that atp serve can inject it.
	AuthProvider string `json:"auth_provider,omitempty"`
}

// registerFrame is the tool_register frame: every tool of the toolkit.
func (s *server) registerFrame() []byte {
	tools := s.tk.Tools()
	frame := struct {
		Type  string   `json:"type"`
		Tools []ptTool `json:"tools"`
	}{Type: "tool_register", Tools: make([]ptTool, len(tools))}
	for i, t := range tools {
		auth := "none"
		if t.NeedsAuthToken || t.AuthProvider != "" {
			auth = "user"
		}
		frame.Tools[i] = ptTool{
			Name: t.Name, Description: t.Description, InputSchema: inputSchema(t), OutputSchema: t.OutputSchema,
			Auth: auth, Roles: []string{}, Annotations: t.Hints, AuthProvider: t.AuthProvider,
		}
	}
	b, err := json.Marshal(frame)
	if err != nil {
		// Serve checked every schema to be valid JSON before it started.
		panic("runtime: encoding tool_register: " + err.Error())
	}
	return b
}

func (ss *ptSession) sendRegister() {
	frame := ss.s.registerFrame()
	ss.s.log.Debug("atp: platools: declaring the tools", "tools", len(ss.s.tk.Tools()), "bytes", len(frame))
	ss.write(frame, "tool_register")
}

// heartbeat sends each tool's health, then arms the next heartbeat.
func (ss *ptSession) heartbeat() {
	ss.stateMu.Lock()
	if ss.over {
		ss.stateMu.Unlock()
		return
	}
	ss.stopBeat = ss.s.clock.AfterFunc(ss.s.cfg.PingInterval, ss.heartbeat)
	ss.stateMu.Unlock()
	tools := ss.s.tk.Tools()
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	b, err := json.Marshal(struct {
		Type        string                 `json:"type"`
		ToolsHealth map[string]healthEntry `json:"tools_health"`
	}{"heartbeat", ss.s.health.report(names, ss.s.clock.Now())})
	if err != nil {
		return // a map of plain values always encodes
	}
	ss.write(b, "heartbeat")
}

// write sends a frame that answers no call; a failed write drops the
// connection, as the read loop would find it dead anyway.
func (ss *ptSession) write(frame []byte, what string) {
	if err := ss.w.send(frame); err != nil {
		if errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
			return
		}
		ss.s.log.Warn("atp: platools: could not send "+what+"; dropping the connection", "err", ss.s.red.err(err))
		ss.conn.Close()
	}
}

// toolCall runs a tool_call on a call slot, or answers it at once when it
// runs nothing.
func (ss *ptSession) toolCall(f *ptFrame, received time.Time) {
	ss.routable("a tool call")
	if !validID(f.callID) {
		ss.s.log.Warn("atp: platools: ignoring a tool_call without call_id", "tool", truncate(f.toolName, 64))
		return
	}
	req := &request{id: f.callID, tool: f.toolName, received: received}
	if _, ok := ss.s.tk.Tool(f.toolName); !ok {
		// The SDKs' exact words: the platform may match on them.
		ss.sendError(req, "unknown tool: "+f.toolName, nil, "")
		return
	}
	params, platos, token, err := splitPlatos(&ss.dec, f.params)
	if err != nil {
		ss.s.log.Warn("atp: platools: malformed tool_call", "call_id", req.idString(), "tool", req.tool, "err", err)
		ss.sendError(req, "malformed tool_call: "+err.Error(), nil, "")
		return
	}
	req.params, req.platos, req.authToken = params, platos, token

	ss.mu.Lock()
	if ss.draining {
		ss.mu.Unlock()
		ss.fail(req, errShuttingDown)
		return
	}
	ss.calls.Add(1)
	ss.mu.Unlock()
	select {
	case ss.queue <- struct{}{}:
	default:
		// The backlog is full: stop reading until a call finishes.
		select {
		case ss.queue <- struct{}{}:
		case <-ss.group.ctx.Done():
			ss.calls.Done()
			return
		}
		ss.conn.SetReadDeadline(time.Now().Add(ss.idle)) // the silence was ours
	}
	job := func() { ss.runCall(req) }
	if ss.s.calls.start(job) {
		go ss.s.calls.run(job) // never on the reading goroutine
	}
}

// runCall runs one call on a call slot.
func (ss *ptSession) runCall(req *request) {
	defer ss.calls.Done()
	defer func() { <-ss.queue }()
	select {
	case <-ss.stopQueue: // shutdown began while the call waited for a slot
		ss.fail(req, errShuttingDown)
		return
	default:
	}
	if ss.group.ctx.Err() != nil {
		ss.fail(req, context.Cause(ss.group.ctx))
		return
	}
	ss.s.call(ss.group, req, string(TransportPlatools), answerFunc(func(res []byte, isErr bool) {
		if isErr {
			ss.fail(req, req.err)
			return
		}
		ss.record(req, nil)
		ss.send(req, appendToolResult(make([]byte, 0, 64+len(req.id)+len(res)), req.id, res, time.Since(req.received)))
	}))
}

// record counts a call in its tool's health when its outcome says
// something about the tool.
func (ss *ptSession) record(req *request, err error) {
	if !countsForHealth(err) {
		return
	}
	msg := ""
	if err != nil {
		msg = ss.s.red.str(err.Error())
	}
	ss.s.health.record(req.tool, ss.s.clock.Now(), time.Since(req.received), err != nil, msg)
}

// fail answers a call with tool_error: the error's message, the problem
// list of invalid params (an extension), and a panic's stack as the
// traceback.
func (ss *ptSession) fail(req *request, err error) {
	if err == nil {
		err = errors.New("the call failed without an error") // never expected: outcome sets req.err
	}
	ss.record(req, err)
	var problems []Problem
	var verr *ValidationError
	if errors.As(err, &verr) {
		problems = verr.Problems
	}
	traceback := ""
	var perr *PanicError
	if errors.As(err, &perr) {
		traceback = truncate(ss.s.red.str(string(perr.Stack)), maxTraceback)
	}
	ss.sendError(req, ss.s.red.str(err.Error()), problems, traceback)
}

func (ss *ptSession) sendError(req *request, msg string, problems []Problem, traceback string) {
	frame := struct {
		Type      string          `json:"type"`
		CallID    json.RawMessage `json:"call_id"`
		Error     string          `json:"error"`
		Traceback *string         `json:"traceback"`
		Problems  []Problem       `json:"problems,omitempty"`
	}{Type: "tool_error", CallID: req.id, Error: msg, Problems: problems}
	if traceback != "" {
		frame.Traceback = &traceback
	}
	b, err := json.Marshal(frame)
	if err != nil {
		b, _ = json.Marshal(map[string]any{"type": "tool_error", "call_id": req.id, "error": "the toolkit could not encode its error", "traceback": nil})
	}
	ss.send(req, b)
}

// send writes the one answer of a call.
func (ss *ptSession) send(req *request, frame []byte) {
	err := ss.w.send(frame)
	if err == nil {
		return
	}
	if errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
		ss.s.log.Warn("atp: platools: answer not sent: the connection is closed", "call_id", req.idString(), "tool", req.tool)
		return
	}
	ss.s.log.Warn("atp: platools: answer not sent; dropping the connection", "call_id", req.idString(), "tool", req.tool, "err", ss.s.red.err(err))
	ss.conn.Close()
}

// appendToolResult appends {"type":"tool_result","call_id","result","latency_ms"}.
func appendToolResult(b []byte, id json.RawMessage, result []byte, latency time.Duration) []byte {
	b = append(b, `{"type":"tool_result","call_id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendInt(b, latency.Milliseconds(), 10)
	return append(b, '}')
}

// oversized answers a frame above ReadLimit when its call_id can be read
// from its first ReadLimit bytes, and logs it either way.
func (ss *ptSession) oversized(prefix []byte, received time.Time) {
	limit := ss.s.cfg.ReadLimit
	var id json.RawMessage
	d := json.NewDecoder(bytes.NewReader(prefix))
	if tok, err := d.Token(); err == nil && tok == json.Delim('{') {
		id = memberInPrefix(d, "call_id")
	}
	if !validID(id) {
		ss.s.log.Warn("atp: platools: refused a frame larger than ReadLimit", "limit", limit)
		return
	}
	req := &request{id: id, received: received}
	ss.s.log.Warn("atp: platools: refused a tool_call larger than ReadLimit", "limit", limit, "call_id", req.idString())
	ss.sendError(req, fmt.Sprintf("tool_call refused: the frame is larger than the toolkit's read limit of %d bytes", limit), nil, "")
}

// drain is the graceful shutdown, as for an ATP v1 session: new calls are
// refused, running calls get DrainTimeout to finish and be answered, then
// the connection closes with 1000.
func (ss *ptSession) drain() {
	log := ss.s.log
	ss.mu.Lock()
	ss.draining = true
	ss.mu.Unlock()
	close(ss.stopQueue)
	log.Info("atp: shutting down; draining running calls", "deadline", ss.s.cfg.DrainTimeout)
	drained := make(chan struct{})
	go func() {
		ss.calls.Wait()
		close(drained)
	}()
	deadline := time.NewTimer(ss.s.cfg.DrainTimeout)
	defer deadline.Stop()
	select {
	case <-drained:
	case err := <-ss.readDone:
		ss.group.cancel(errConnectionLost)
		log.Warn("atp: connection lost while draining; answers of running calls are lost", "err", ss.closeError(err))
		return
	case <-deadline.C:
		log.Warn("atp: drain deadline passed; cancelling the calls still running")
		ss.group.cancel(errDrainTimeout)
		grace := time.NewTimer(min(time.Second, ss.s.cfg.PongTimeout))
		select {
		case <-drained:
		case <-grace.C:
		}
		grace.Stop()
	}
	ss.group.cancel(errShuttingDown)
	err := ss.conn.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, "toolkit shutting down"),
		time.Now().Add(ss.s.cfg.PongTimeout))
	if err != nil {
		log.Warn("atp: could not send the close frame", "err", err)
		return
	}
	wait := time.NewTimer(ss.s.cfg.PongTimeout)
	defer wait.Stop()
	select {
	case <-ss.readDone:
	case <-wait.C:
	}
	log.Info("atp: connection closed")
}

// splitPlatos takes the platform's members out of a call's params: the
// __platos envelope (the end user's token among them) and _context. It
// returns the params without them, for the tool's decoder, which never
// sees them. Params that are not a JSON object are returned as they are:
// the tool's decoder words what is wrong with them. The error is for an
// envelope that cannot be read; it never quotes the token.
func splitPlatos(d *atpimpl.Decoder, params json.RawMessage) (rest json.RawMessage, platos *Platos, token string, err error) {
	if !bytes.Contains(params, []byte(`"__platos"`)) && !bytes.Contains(params, []byte(`"_context"`)) {
		return params, nil, "", nil
	}
	d.Reset(params)
	d.SetLenientUTF8(true)
	if !d.Object() {
		return params, nil, "", nil
	}
	out := make([]byte, 1, len(params))
	out[0] = '{'
	for d.Next() {
		switch key := d.Key(); string(key) {
		case "__platos":
			if platos == nil {
				platos = &Platos{}
			}
			if d.Null() {
				continue
			}
			if !d.Object() {
				continue // recorded as a problem: __platos: expected object
			}
			for d.Next() {
				if string(d.Key()) == "userToken" {
					switch raw := d.Raw(); {
					case len(raw) > 0 && raw[0] == '"':
						token = jsonString(raw)
					case len(raw) > 0 && string(raw) != "null":
						d.Fail("string", "another JSON type") // never quote a token
					}
					continue
				}
				var dst *string
				switch string(d.Key()) {
				case "organizationId":
					dst = &platos.OrganizationID
				case "projectId":
					dst = &platos.ProjectID
				case "environmentId":
					dst = &platos.EnvironmentID
				case "entityId":
					dst = &platos.EntityID
				case "userId":
					dst = &platos.UserID
				case "agentId":
					dst = &platos.AgentID
				case "threadId":
					dst = &platos.ThreadID
				case "callId":
					dst = &platos.CallID
				case "timestamp":
					dst = &platos.Timestamp
				case "nonce":
					dst = &platos.Nonce
				case "signature":
					dst = &platos.Signature
				default:
					d.Skip() // entityToken and later additions are not passed on
					continue
				}
				if raw := d.Raw(); len(raw) > 0 && string(raw) != "null" {
					*dst = jsonString(raw)
				}
			}
		case "_context":
			if platos == nil {
				platos = &Platos{}
			}
			if raw := d.Raw(); len(raw) > 0 && string(raw) != "null" {
				platos.Context = raw
			}
		default:
			if len(out) > 1 {
				out = append(out, ',')
			}
			out = appendJSONKey(out, key)
			out = append(out, ':')
			out = append(out, d.Raw()...)
		}
	}
	if d.Failed() {
		for _, p := range d.Problems() {
			if strings.HasPrefix(p.Path, "__platos") || strings.HasPrefix(p.Path, "_context") {
				return nil, nil, "", fmt.Errorf("params.%s", p.String())
			}
		}
		// The problem is in the params themselves (bad JSON): pass them on
		// without the envelope only when it could be taken out whole.
		return params, nil, "", nil
	}
	return append(out, '}'), platos, token, nil
}

// appendJSONKey appends key as a JSON string.
func appendJSONKey(b, key []byte) []byte {
	for _, c := range key {
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			enc, _ := json.Marshal(string(key))
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, key...)
	return append(b, '"')
}
