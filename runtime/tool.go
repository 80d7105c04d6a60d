package runtime

import (
	"context"
	"encoding/json"
	"log/slog"
	"time"

	"github.com/atpgo/atp/runtime/atpimpl"
)

// Tool is one callable tool: what a transport announces and how to run it.
// Generated code builds Tools; transports read them. A Tool must not be
// changed after it has been added to a Toolkit.
type Tool struct {
	// Name is the tool name that LLMs see, e.g. "create_company".
	Name string
	// Description is the tool's doc comment without the directive.
	Description string
	// Params lists the input property names in declaration order, and
	// RequiredParams the required ones (the ATP v1 registration metadata).
	Params         []string
	RequiredParams []string
	// InputSchema is the JSON Schema (draft 2020-12) of the params object.
	InputSchema json.RawMessage
	// OutputSchema is the JSON Schema of the result, nil when the tool
	// returns nothing but an error.
	OutputSchema json.RawMessage

	// AuthProvider names the OAuth platform (e.g. "hubspot") whose end-user
	// token the tool needs; AuthType ("OAuth2", "apiKey") and AuthWith
	// ("access_token", "api_key") say how. All empty for a tool without auth.
	AuthProvider string
	AuthType     string
	AuthWith     string
	// NeedsAuthToken is true when the tool takes a runtime.AuthToken or
	// declares auth=: a call without a token fails before the tool runs.
	NeedsAuthToken bool

	// Hints are the behaviour flags of the directive (readonly, destructive,
	// idempotent), announced to MCP hosts and agents.
	Hints Hints
	// Timeout bounds one call; zero means the transport's default.
	Timeout time.Duration

	// Run decodes the params with d and, when d has recorded no problem,
	// calls the Go function and returns its result and error. When the
	// params are invalid it returns without calling the function; the
	// caller (Toolkit.Invoke) then reports d's problems as a
	// *ValidationError, whatever Run returned. Generated code provides it.
	Run func(ctx context.Context, call *Call, d *atpimpl.Decoder) (any, error)
}

// Hints describe how a tool behaves, for hosts that show or gate tool use.
type Hints struct {
	ReadOnly    bool `json:"readOnlyHint,omitempty"`
	Destructive bool `json:"destructiveHint,omitempty"`
	Idempotent  bool `json:"idempotentHint,omitempty"`
}

// Call is the metadata of one tool call. A tool receives it when it declares
// a *runtime.Call parameter; it is never part of the tool's schema.
type Call struct {
	// Toolkit and Tool name what is being called.
	Toolkit string
	Tool    string
	// RequestID is the transport's id for the call ("" when there is none).
	RequestID string
	// Transport says how the call arrived: "invoke", "ws", "http-inbox",
	// "platools", "http" or "mcp".
	Transport string
	// AuthToken is the end user's token for this call, if any. It prints as
	// a redacted placeholder. Over TransportPlatools it is the envelope's
	// userToken.
	AuthToken AuthToken
	// Platos is what a Platos platform sent along with a call over
	// TransportPlatools (the params' __platos envelope and _context, which
	// never reach the tool's params); nil on every other transport.
	Platos *Platos
	// Logger is the toolkit's logger with the toolkit and tool names
	// attached (add RequestID yourself where a log line needs it).
	Logger *slog.Logger

	// progress receives Progress reports; nil where the transport has no
	// way to carry them.
	progress ProgressFunc
}

// AuthToken is the end user's OAuth access token or API key for a tool call.
// Declare a parameter of this type to receive it; the parameter is kept out
// of the schema and makes the tool require a token. Convert it with
// string(token) where the real value is needed: fmt, %v and slog print a
// redacted placeholder, so a token never lands in a log by accident.
type AuthToken string

const redacted = "[REDACTED]"

// String returns a redacted placeholder, never the token.
func (t AuthToken) String() string {
	if t == "" {
		return ""
	}
	return redacted
}

// GoString returns a redacted placeholder, never the token.
func (t AuthToken) GoString() string { return `runtime.AuthToken("` + t.String() + `")` }

// LogValue keeps the token out of slog output.
func (t AuthToken) LogValue() slog.Value { return slog.StringValue(t.String()) }

// MarshalJSON keeps the token out of JSON dumps of structs that hold it.
func (t AuthToken) MarshalJSON() ([]byte, error) { return json.Marshal(t.String()) }
