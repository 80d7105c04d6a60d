package runtime

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// ErrUnauthorized and ErrForbidden are what an authenticator given to
// WithAuthenticator wraps to choose the status of a refused request: 401 and
// 403. The wrapping error's text is sent to the client.
var (
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
)

// Handler defaults.
const (
	// DefaultMaxBodyBytes is the largest POST body Handler reads unless
	// WithMaxBodyBytes says otherwise.
	DefaultMaxBodyBytes = 1 << 20
	// DefaultCallTimeout bounds a call to a tool without a timeout= of its
	// own, on the transports that serve remote callers (Serve and Handler),
	// unless ServeConfig.CallTimeout or WithCallTimeout says otherwise.
	DefaultCallTimeout = 60 * time.Second
)

// HandlerOption configures Toolkit.Handler.
type HandlerOption interface{ applyHandler(*handlerConfig) }

type handlerOption func(*handlerConfig)

func (f handlerOption) applyHandler(c *handlerConfig) { f(c) }

type handlerConfig struct {
	// Authentication: exactly one of the three modes must be chosen.
	bearer        [][sha256.Size]byte // digests of the accepted tokens
	bearerSet     bool
	authenticator func(*http.Request) error
	authSet       bool
	open          bool

	tokenFrom func(*http.Request) string
	maxBody   int64
	timeout   time.Duration

	problems []string // option misuse, in the error Handler returns
}

// WithBearerToken makes the handler accept requests that carry
// "Authorization: Bearer <token>". Give it more than once to accept several
// tokens while one is being rotated out. Tokens are compared in constant
// time, length included.
func WithBearerToken(token string) HandlerOption {
	return handlerOption(func(c *handlerConfig) {
		c.bearerSet = true
		if token == "" {
			c.problems = append(c.problems, "WithBearerToken: the token is empty")
			return
		}
		c.bearer = append(c.bearer, sha256.Sum256([]byte(token)))
	})
}

// WithAuthenticator makes the handler ask authenticate about every request
// before it looks at the path. A nil error lets the request through. An
// error wrapping ErrForbidden refuses it with 403 and one wrapping
// ErrUnauthorized with 401, both with the error's text as the message; any
// other error refuses it with 401 and a generic message, and its text is
// neither sent nor logged (it may quote what the client sent).
func WithAuthenticator(authenticate func(r *http.Request) error) HandlerOption {
	return handlerOption(func(c *handlerConfig) {
		if c.authSet {
			c.problems = append(c.problems, "WithAuthenticator is given twice")
		}
		c.authSet = true
		if authenticate == nil {
			c.problems = append(c.problems, "WithAuthenticator: the function is nil")
		}
		c.authenticator = authenticate
	})
}

// AllowUnauthenticated serves every request without authentication: anyone
// who can reach the handler can list and call the tools. Use it only behind
// a middleware or network that already authenticates callers.
func AllowUnauthenticated() HandlerOption {
	return handlerOption(func(c *handlerConfig) { c.open = true })
}

// WithAuthTokenFrom tells the handler where a request carries the end user's
// token for tools that need one (Tool.NeedsAuthToken), e.g.
//
//	runtime.WithAuthTokenFrom(func(r *http.Request) string { return r.Header.Get("X-ATP-Auth-Token") })
//
// It is called only for such tools. The handler never takes the end user's
// token from anywhere else: the caller's own credentials (the bearer token)
// are never passed to a tool. Without this option, a call to a tool that
// needs a token gets 500, as the handler cannot serve it.
func WithAuthTokenFrom(from func(r *http.Request) string) HandlerOption {
	return handlerOption(func(c *handlerConfig) {
		if from == nil {
			c.problems = append(c.problems, "WithAuthTokenFrom: the function is nil")
		}
		c.tokenFrom = from
	})
}

// WithMaxBodyBytes bounds the POST body (default DefaultMaxBodyBytes); a
// larger one gets 413. n must be positive.
func WithMaxBodyBytes(n int64) HandlerOption {
	return handlerOption(func(c *handlerConfig) {
		if n <= 0 {
			c.problems = append(c.problems, fmt.Sprintf("WithMaxBodyBytes: expected a positive size, got %d", n))
		}
		c.maxBody = n
	})
}

// CallTimeoutOption is the option WithCallTimeout returns: Toolkit.Handler
// and Toolkit.Invoke both take it.
type CallTimeoutOption struct{ d time.Duration }

func (o CallTimeoutOption) applyHandler(c *handlerConfig) { c.timeout = o.d }
func (o CallTimeoutOption) applyInvoke(c *invokeConfig)   { c.timeout = o.d }

// WithCallTimeout bounds a call of a tool that declares no timeout= of its
// own. As everywhere in this module (ServeConfig.CallTimeout, the mcp
// package's WithCallTimeout, server.Config.CallTimeout), zero means the
// default and a negative duration no bound. The defaults differ with who
// waits: DefaultCallTimeout for Handler, whose remote callers must get an
// answer (504 when the time is up); no bound for Invoke, whose caller
// bounds the call with its ctx.
func WithCallTimeout(d time.Duration) CallTimeoutOption { return CallTimeoutOption{d} }

// Handler returns an http.Handler that serves the toolkit's tools over plain
// HTTP:
//
//	GET  .../atp/{toolkit}/         the toolkit and its tools, schemas included
//	GET  .../atp/{toolkit}/{tool}/  one tool: metadata, input and output schema
//	POST .../atp/{toolkit}/{tool}/  call the tool
//
// The handler routes on the end of the path, so it works wherever it is
// mounted: mux.Handle("/api/", h) serves /api/atp/{toolkit}/..., and so does
// mux.Handle("/api/", http.StripPrefix("/api", h)). The trailing slash is
// optional. HEAD is answered like GET.
//
// A POST body is JSON (application/json) or a form
// (application/x-www-form-urlencoded or multipart/form-data; the query
// string is ignored). Form fields become a JSON object of strings that the
// tool's decoder coerces ("3" to 3, "true" to true); a repeated field, or any
// field whose schema type is array, becomes an array of strings; an empty
// field whose schema type does not allow a string is left out, as a blank
// HTML input means "not given". File uploads are refused.
//
// Every answer is JSON. A call answers 200 {"result": ...}; errors are
// {"error": "..."} with the status saying whose fault it is: 400 invalid
// params (with "problems": [{"path", "message"}, ...], malformed JSON
// included) or a missing end-user token, 401/403 refused by the
// authenticator, 404 unknown toolkit or tool, 405 other methods (with Allow),
// 413 body too large, 415 other content types, 422 an error the tool
// returned (the request was understood; the tool said no), 500 a tool that
// panicked (a generic message; the panic and its stack go to the toolkit's
// log only) or a handler that cannot serve the call, 504 a call that ran out
// of time.
//
// Secure by default: opts must choose how callers are authenticated, with
// WithBearerToken, WithAuthenticator or, explicitly, AllowUnauthenticated.
// Handler returns an error, listing every problem, when they choose none,
// or more than one, or misuse an option: a misconfigured handler fails at
// start-up, in the first test that builds it, rather than on some later
// request. Authentication runs before
// routing, so an unauthenticated client learns nothing about the tools.
// Neither the bearer token nor the end user's token is ever logged.
func (t *Toolkit) Handler(opts ...HandlerOption) (http.Handler, error) {
	cfg := handlerConfig{maxBody: DefaultMaxBodyBytes}
	for _, o := range opts {
		if o != nil {
			o.applyHandler(&cfg)
		}
	}
	if cfg.timeout == 0 {
		cfg.timeout = DefaultCallTimeout
	}
	modes := 0
	for _, set := range []bool{cfg.bearerSet, cfg.authSet, cfg.open} {
		if set {
			modes++
		}
	}
	switch {
	case modes == 0:
		cfg.problems = append(cfg.problems, "no authentication is configured: pass WithBearerToken or WithAuthenticator, or AllowUnauthenticated to let anyone who can reach the handler call the tools")
	case modes > 1:
		cfg.problems = append(cfg.problems, "more than one authentication mode is configured (WithBearerToken, WithAuthenticator, AllowUnauthenticated): choose one")
	}
	if len(cfg.problems) > 0 {
		return nil, errors.New("runtime: Toolkit.Handler for toolkit " + t.name + ": " + strings.Join(cfg.problems, "; "))
	}
	return &handler{tk: t, cfg: cfg, log: t.logger.With("toolkit", t.name, "transport", "http")}, nil
}

type handler struct {
	tk  *Toolkit
	cfg handlerConfig
	log *slog.Logger
	// propTypes caches formTypes per *Tool: tools do not change once added.
	propTypes sync.Map
}

const (
	allowToolkit = "GET, HEAD"
	allowTool    = "GET, HEAD, POST"
	acceptedPost = "application/json, application/x-www-form-urlencoded, multipart/form-data"
)

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authenticate(w, r) {
		return
	}
	toolkit, toolName, isTool, ok := h.tk.splitRoute(r.URL.Path)
	switch {
	case !ok:
		h.fail(w, http.StatusNotFound, "not found: the routes are .../atp/{toolkit}/ and .../atp/{toolkit}/{tool}/", nil)
		return
	case toolkit != h.tk.name:
		h.fail(w, http.StatusNotFound, fmt.Sprintf("toolkit %q not found (this handler serves %q)", toolkit, h.tk.name), nil)
		return
	}
	if !isTool {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.notAllowed(w, r.Method, allowToolkit)
			return
		}
		h.describeToolkit(w)
		return
	}
	tool, found := h.tk.Tool(toolName)
	if !found {
		h.fail(w, http.StatusNotFound, h.tk.unknownTool(toolName).Error(), nil)
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		h.describeTool(w, tool)
	case http.MethodPost:
		h.call(w, r, tool)
	default:
		h.notAllowed(w, r.Method, allowTool)
	}
}

// splitRoute finds the route at the end of path: ".../atp/{toolkit}/{tool}"
// (isTool) or ".../atp/{toolkit}", with or without a trailing slash. When
// both readings fit, as in "/atp/atp/x", the one that names this toolkit
// (and, for a tool, an existing tool) wins.
func (tk *Toolkit) splitRoute(path string) (toolkit, tool string, isTool, ok bool) {
	segs := strings.Split(strings.TrimSuffix(path, "/"), "/")
	n := len(segs)
	asTool := n >= 4 && segs[n-3] == "atp"
	asKit := n >= 3 && segs[n-2] == "atp"
	if asTool && asKit {
		_, exists := tk.Tool(segs[n-1])
		switch {
		case segs[n-2] == tk.name && exists:
			asKit = false
		case segs[n-1] == tk.name:
			asTool = false
		default:
			asKit = false
		}
	}
	switch {
	case asTool:
		return segs[n-2], segs[n-1], true, true
	case asKit:
		return segs[n-1], "", false, true
	}
	return "", "", false, false
}

// authenticate answers the request itself, and returns false, when it is
// refused.
func (h *handler) authenticate(w http.ResponseWriter, r *http.Request) bool {
	switch {
	case h.cfg.open:
		return true
	case h.cfg.authenticator != nil:
		err := h.cfg.authenticator(r)
		switch {
		case err == nil:
			return true
		case errors.Is(err, ErrForbidden):
			h.refuse(w, r, http.StatusForbidden, err.Error())
		case errors.Is(err, ErrUnauthorized):
			h.refuse(w, r, http.StatusUnauthorized, err.Error())
		default:
			h.refuse(w, r, http.StatusUnauthorized, "unauthorized")
		}
		return false
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="atp"`)
		h.refuse(w, r, http.StatusUnauthorized, `unauthorized: send "Authorization: Bearer <token>"`)
		return false
	}
	if !h.bearerMatches(token) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="atp", error="invalid_token"`)
		h.refuse(w, r, http.StatusUnauthorized, "unauthorized: the bearer token is not valid")
		return false
	}
	return true
}

// bearerMatches compares digests, so that the time taken depends neither on
// how much of the token matches nor on its length, and checks every accepted
// token, so that it does not tell which one came close.
func (h *handler) bearerMatches(token string) bool {
	got := sha256.Sum256([]byte(token))
	match := 0
	for i := range h.cfg.bearer {
		match |= subtle.ConstantTimeCompare(got[:], h.cfg.bearer[i][:])
	}
	return match == 1
}

func (h *handler) refuse(w http.ResponseWriter, r *http.Request, status int, msg string) {
	// Neither the Authorization header nor the path's tool is logged: the
	// first is a secret and the second came from an unauthenticated client.
	h.log.Debug("atp http: request refused", "status", status, "method", r.Method, "remote_addr", r.RemoteAddr)
	h.fail(w, status, msg, nil)
}

func (h *handler) notAllowed(w http.ResponseWriter, method, allow string) {
	w.Header().Set("Allow", allow)
	h.fail(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed (allowed: %s)", method, allow), nil)
}

// toolInfo is what the GET routes say about a tool. The auth fields are null
// for a tool without auth, as in the ATP registration metadata.
type toolInfo struct {
	Name           string          `json:"name"`
	Description    string          `json:"description"`
	Params         []string        `json:"params"`
	RequiredParams []string        `json:"required_params"`
	Hints          Hints           `json:"hints"`
	AuthProvider   *string         `json:"auth_provider"`
	AuthType       *string         `json:"auth_type"`
	AuthWith       *string         `json:"auth_with"`
	NeedsAuthToken bool            `json:"needs_auth_token"`
	InputSchema    json.RawMessage `json:"input_schema"`
	OutputSchema   json.RawMessage `json:"output_schema"`
}

func newToolInfo(t *Tool) toolInfo {
	out := t.OutputSchema
	if len(out) == 0 {
		out = json.RawMessage("null")
	}
	return toolInfo{
		Name:           t.Name,
		Description:    t.Description,
		Params:         nonNil(t.Params),
		RequiredParams: nonNil(t.RequiredParams),
		Hints:          t.Hints,
		AuthProvider:   nullIfEmpty(t.AuthProvider),
		AuthType:       nullIfEmpty(t.AuthType),
		AuthWith:       nullIfEmpty(t.AuthWith),
		NeedsAuthToken: t.NeedsAuthToken,
		InputSchema:    inputSchema(t),
		OutputSchema:   out,
	}
}

func (h *handler) describeToolkit(w http.ResponseWriter) {
	tools := h.tk.Tools()
	body := struct {
		Toolkit string     `json:"toolkit"`
		Tools   []toolInfo `json:"tools"`
	}{Toolkit: h.tk.name, Tools: make([]toolInfo, len(tools))}
	for i, t := range tools {
		body.Tools[i] = newToolInfo(t)
	}
	h.writeValue(w, http.StatusOK, body)
}

func (h *handler) describeTool(w http.ResponseWriter, t *Tool) {
	h.writeValue(w, http.StatusOK, struct {
		Toolkit string `json:"toolkit"`
		toolInfo
	}{h.tk.name, newToolInfo(t)})
}

// call runs a POST: read the params, call the tool, answer.
func (h *handler) call(w http.ResponseWriter, r *http.Request, tool *Tool) {
	params, form, ok := h.readParams(w, r, tool)
	if !ok {
		return
	}
	opts := make([]InvokeOption, 0, 4)
	opts = append(opts, WithTransport("http"))
	if form {
		opts = append(opts, WithStringCoercion())
	}
	if h.cfg.timeout > 0 {
		opts = append(opts, WithCallTimeout(h.cfg.timeout))
	}
	if tool.NeedsAuthToken {
		if h.cfg.tokenFrom == nil {
			h.log.Error("atp http: a tool needs the end user's auth token and the handler has no WithAuthTokenFrom option", "tool", tool.Name)
			h.fail(w, http.StatusInternalServerError, fmt.Sprintf("tool %s needs the end user's auth token and this handler is not configured to take one (WithAuthTokenFrom)", tool.Name), nil)
			return
		}
		token := h.cfg.tokenFrom(r)
		if token == "" {
			h.fail(w, http.StatusBadRequest, fmt.Sprintf("tool %s needs the end user's auth token and the request has none", tool.Name), nil)
			return
		}
		opts = append(opts, WithAuthToken(token))
	}
	res, err := h.tk.Invoke(r.Context(), tool.Name, params, opts...)
	h.answer(w, r, tool, res, err)
}

// answer maps Invoke's outcome to a status; see Handler's doc.
func (h *handler) answer(w http.ResponseWriter, r *http.Request, tool *Tool, res json.RawMessage, err error) {
	if err == nil {
		buf := make([]byte, 0, len(res)+len(`{"result":}`)+1)
		buf = append(buf, `{"result":`...)
		buf = append(buf, res...)
		buf = append(buf, "}\n"...)
		writeJSON(w, http.StatusOK, buf)
		return
	}
	var (
		verr    *ValidationError
		timeout *TimeoutError
		perr    *PanicError
		terr    *ToolError
	)
	switch {
	case errors.As(err, &verr):
		h.fail(w, http.StatusBadRequest, verr.Error(), verr.Problems)
	case errors.As(err, &timeout):
		h.fail(w, http.StatusGatewayTimeout, timeout.Error(), nil)
	case errors.As(err, &perr):
		// Invoke has logged the panic with its stack; the client learns
		// nothing about the code.
		h.fail(w, http.StatusInternalServerError, fmt.Sprintf("tool %s failed with an internal error", tool.Name), nil)
	case r.Context().Err() != nil:
		// The client has gone (or the server is shutting down): the answer
		// is for the log more than for anyone reading it.
		h.log.Debug("atp http: call cancelled", "tool", tool.Name, "err", context.Cause(r.Context()))
		h.fail(w, http.StatusServiceUnavailable, fmt.Sprintf("call to %s cancelled", tool.Name), nil)
	case errors.As(err, &terr):
		h.fail(w, http.StatusUnprocessableEntity, terr.Error(), nil)
	case errors.Is(err, ErrUnknownTool):
		h.fail(w, http.StatusNotFound, err.Error(), nil)
	case errors.Is(err, ErrMissingAuthToken):
		h.fail(w, http.StatusBadRequest, err.Error(), nil)
	default:
		h.log.Error("atp http: call failed", "tool", tool.Name, "err", err)
		h.fail(w, http.StatusInternalServerError, fmt.Sprintf("call to %s failed with an internal error", tool.Name), nil)
	}
}

// readParams reads a POST body into a JSON params object; form is true when
// it came from a form, whose strings the decoder must coerce. It answers the
// request itself, and returns ok false, when the body cannot be read.
func (h *handler) readParams(w http.ResponseWriter, r *http.Request, tool *Tool) (params []byte, form, ok bool) {
	if r.ContentLength > h.cfg.maxBody {
		h.tooLarge(w)
		return nil, false, false
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 {
			return []byte("{}"), false, true // a bodiless POST, e.g. curl -X POST
		}
		h.unsupported(w, "the request has a body and no Content-Type")
		return nil, false, false
	}
	mediaType, mtParams, err := mime.ParseMediaType(ct)
	if err != nil {
		h.unsupported(w, fmt.Sprintf("unreadable Content-Type %q: %v", ct, err))
		return nil, false, false
	}
	body := http.MaxBytesReader(w, r.Body, h.cfg.maxBody)
	switch {
	case mediaType == "application/json" || strings.HasSuffix(mediaType, "+json"):
		if cs := mtParams["charset"]; cs != "" && !strings.EqualFold(cs, "utf-8") {
			h.unsupported(w, fmt.Sprintf("expected UTF-8 JSON, got charset %q", cs))
			return nil, false, false
		}
		b, err := io.ReadAll(body)
		if err != nil {
			h.unreadable(w, err)
			return nil, false, false
		}
		return b, false, true
	case mediaType == "application/x-www-form-urlencoded":
		b, err := io.ReadAll(body)
		if err != nil {
			h.unreadable(w, err)
			return nil, false, false
		}
		fields, err := parseURLEncoded(string(b))
		if err != nil {
			h.fail(w, http.StatusBadRequest, "malformed form body: "+err.Error(), nil)
			return nil, false, false
		}
		return h.formParams(tool, fields), true, true
	case mediaType == "multipart/form-data":
		boundary := mtParams["boundary"]
		if boundary == "" {
			h.fail(w, http.StatusBadRequest, "malformed multipart body: the Content-Type has no boundary", nil)
			return nil, false, false
		}
		fields, problems, err := readMultipart(multipart.NewReader(body, boundary))
		switch {
		case err != nil:
			h.unreadable(w, err)
			return nil, false, false
		case len(problems) > 0:
			h.fail(w, http.StatusBadRequest, (&ValidationError{Tool: tool.Name, Problems: problems}).Error(), problems)
			return nil, false, false
		}
		return h.formParams(tool, fields), true, true
	}
	h.unsupported(w, fmt.Sprintf("unsupported Content-Type %q", mediaType))
	return nil, false, false
}

func (h *handler) tooLarge(w http.ResponseWriter) {
	h.fail(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body too large: the limit is %d bytes", h.cfg.maxBody), nil)
}

func (h *handler) unsupported(w http.ResponseWriter, why string) {
	w.Header().Set("Accept-Post", acceptedPost)
	h.fail(w, http.StatusUnsupportedMediaType, why+" (accepted: "+acceptedPost+")", nil)
}

func (h *handler) unreadable(w http.ResponseWriter, err error) {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		h.tooLarge(w)
		return
	}
	h.fail(w, http.StatusBadRequest, "reading the request body: "+err.Error(), nil)
}

// formField is one form field with its values, in the order sent.
type formField struct {
	name   string
	values []string
}

type formFields struct {
	list  []formField
	index map[string]int
}

func (f *formFields) add(name, value string) {
	if i, ok := f.index[name]; ok {
		f.list[i].values = append(f.list[i].values, value)
		return
	}
	if f.index == nil {
		f.index = map[string]int{}
	}
	f.index[name] = len(f.list)
	f.list = append(f.list, formField{name: name, values: []string{value}})
}

// parseURLEncoded is url.ParseQuery keeping the fields' order, so that the
// problems of a bad form come in the order of its fields.
func parseURLEncoded(s string) (formFields, error) {
	var f formFields
	for pair := range strings.SplitSeq(s, "&") {
		if pair == "" {
			continue
		}
		if strings.Contains(pair, ";") {
			// As net/url: a proxy may split on ";" where we would not.
			return f, fmt.Errorf("invalid semicolon in %q", pair)
		}
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return f, fmt.Errorf("field name %q: %v", k, err)
		}
		value, err := url.QueryUnescape(v)
		if err != nil {
			return f, fmt.Errorf("field %s: %v", name, err)
		}
		f.add(name, value)
	}
	return f, nil
}

// readMultipart reads the fields of a multipart form. File uploads are
// problems: a tool's params are JSON values, not files.
func readMultipart(mr *multipart.Reader) (formFields, []Problem, error) {
	var f formFields
	var problems []Problem
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return f, problems, nil
		}
		if err != nil {
			return f, nil, fmt.Errorf("malformed multipart body: %w", err)
		}
		name := part.FormName()
		switch {
		case name == "":
			// Not a form field (no Content-Disposition name), as
			// multipart.Reader.ReadForm skips it.
		case part.FileName() != "":
			problems = append(problems, Problem{Path: name, Message: "expected a form field, got a file upload (" + part.FileName() + ")"})
		default:
			b, err := io.ReadAll(part)
			if err != nil {
				return f, nil, fmt.Errorf("malformed multipart body: field %s: %w", name, err)
			}
			f.add(name, string(b))
		}
		part.Close()
	}
}

// formParams turns form fields into a JSON params object (see Handler's
// doc), to be decoded with coercion.
func (h *handler) formParams(tool *Tool, f formFields) []byte {
	types := h.formTypes(tool)
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for _, field := range f.list {
		t, known := types[field.name]
		if known && !t.str && slices.IndexFunc(field.values, func(v string) bool { return v != "" }) < 0 {
			continue // a blank input for a non-string property: not given
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		writeJSONString(&buf, field.name)
		buf.WriteByte(':')
		if len(field.values) == 1 && !(known && t.array) {
			writeJSONString(&buf, field.values[0])
			continue
		}
		buf.WriteByte('[')
		for i, v := range field.values {
			if i > 0 {
				buf.WriteByte(',')
			}
			writeJSONString(&buf, v)
		}
		buf.WriteByte(']')
	}
	buf.WriteByte('}')
	return buf.Bytes()
}

// writeJSONString writes s as a JSON string. Bytes that are not UTF-8 are
// written as they are, not replaced: the tool's decoder then reports them
// as it reports them in a JSON body, at their path and in its words, and
// the tool is not called with altered text.
func writeJSONString(buf *bytes.Buffer, s string) {
	buf.WriteByte('"')
	for s != "" {
		valid := len(s)
		for i := 0; i < len(s); {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				valid = i
				break
			}
			i += size
		}
		b, _ := json.Marshal(s[:valid]) // a valid string always encodes
		buf.Write(b[1 : len(b)-1])
		if valid < len(s) {
			buf.WriteByte(s[valid])
			valid++
		}
		s = s[valid:]
	}
	buf.WriteByte('"')
}

// formType is what formParams needs of a property's schema "type".
type formType struct {
	str   bool // a string is allowed
	array bool // an array is allowed
}

// formTypes reads the top-level property types of the tool's input schema,
// once per tool. A property without a plain "type" (anyOf, $ref) is absent:
// its form values are passed as they come.
func (h *handler) formTypes(tool *Tool) map[string]formType {
	if v, ok := h.propTypes.Load(tool); ok {
		return v.(map[string]formType)
	}
	var schema struct {
		Properties map[string]struct {
			Type json.RawMessage `json:"type"`
		} `json:"properties"`
	}
	types := map[string]formType{}
	if err := json.Unmarshal(tool.InputSchema, &schema); err == nil {
		for name, p := range schema.Properties {
			var list []string
			var one string
			if json.Unmarshal(p.Type, &one) == nil {
				list = []string{one}
			} else if json.Unmarshal(p.Type, &list) != nil || len(list) == 0 {
				continue
			}
			types[name] = formType{str: slices.Contains(list, "string"), array: slices.Contains(list, "array")}
		}
	}
	v, _ := h.propTypes.LoadOrStore(tool, types)
	return v.(map[string]formType)
}

// fail writes {"error": msg, "problems": [...]}.
func (h *handler) fail(w http.ResponseWriter, status int, msg string, problems []Problem) {
	h.writeValue(w, status, struct {
		Error    string    `json:"error"`
		Problems []Problem `json:"problems,omitempty"`
	}{msg, problems})
}

func (h *handler) writeValue(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// Messages quote schemas ("expected integer <= 5"): keep them legible
	// to people reading answers with curl.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a tool whose schema is not valid JSON can get here.
		h.log.Error("atp http: encoding the answer", "err", err)
		status = http.StatusInternalServerError
		buf.Reset()
		buf.WriteString(`{"error":"internal error encoding the answer"}` + "\n")
	}
	writeJSON(w, status, buf.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("X-Content-Type-Options", "nosniff")
	// Answers depend on who asks (auth) and calls are not repeatable reads.
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(body)
}
