package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Provider names, as Normalize returns them.
const (
	OpenAI     = "openai"      // OpenAI Responses API (flat function tools)
	OpenAIChat = "openai-chat" // OpenAI Chat Completions (nested function tools)
	Anthropic  = "anthropic"   // Anthropic Messages
	Mistral    = "mistral"     // Mistral chat completions ("mistralai" is an alias)
	Gemini     = "gemini"      // Google Gemini generateContent
	MCP        = "mcp"         // Model Context Protocol tools/list
)

var names = []string{OpenAI, OpenAIChat, Anthropic, Mistral, Gemini, MCP}

var aliases = map[string]string{
	"openai": OpenAI, "openai-responses": OpenAI, "responses": OpenAI,
	"openai-chat": OpenAIChat, "openai_chat": OpenAIChat, "openai-chat-completions": OpenAIChat, "chat-completions": OpenAIChat,
	"anthropic": Anthropic, "claude": Anthropic,
	"mistral": Mistral, "mistralai": Mistral,
	"gemini": Gemini, "google": Gemini, "vertex": Gemini,
	"mcp": MCP,
}

// Names returns the supported providers, in a fixed order.
func Names() []string { return append([]string(nil), names...) }

// Normalize maps a provider name or alias (any case, surrounding spaces
// ignored) to one of Names: "mistralai" gives "mistral", "claude" gives
// "anthropic", "google" gives "gemini", "openai-responses" gives "openai".
func Normalize(name string) (string, error) {
	key := strings.ToLower(strings.TrimSpace(name))
	if p, ok := aliases[key]; ok {
		return p, nil
	}
	if key == "" {
		return "", fmt.Errorf("provider: no provider named; supported: %s", supported())
	}
	return "", fmt.Errorf("provider: unknown provider %q; supported: %s", name, supported())
}

func supported() string {
	return "openai, openai-chat, anthropic, mistral (or mistralai), gemini, mcp"
}

// Tool is one tool in canonical form: what a toolkit registered.
type Tool struct {
	Name        string
	Description string
	// InputSchema is the JSON Schema (draft 2020-12) of the arguments
	// object; nil means the tool takes no arguments. InferSchema builds one
	// for toolkits that send only parameter names.
	InputSchema json.RawMessage
	// OutputSchema is the JSON Schema of the result; nil when unknown. Only
	// MCP carries it (as outputSchema, when it describes an object).
	OutputSchema json.RawMessage
	// Behaviour hints, announced as MCP annotations.
	ReadOnly    bool
	Destructive bool
	Idempotent  bool
}

// FormatTools returns the tools as a JSON array in the provider's own tool
// format, ready to be sent as the request's tools (for Gemini: the
// functionDeclarations array, which goes into
// tools: [{"functionDeclarations": <this>}]). The output is deterministic.
func FormatTools(provider string, tools []Tool) (json.RawMessage, error) {
	p, err := Normalize(provider)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, t := range tools {
		def, _, err := formatTool(p, t)
		if err != nil {
			return nil, fmt.Errorf("provider: %s: tools[%d]: %w", p, i, err)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(def)
	}
	b.WriteByte(']')
	return b.Bytes(), nil
}

// FormatTool returns one tool definition in the provider's format, with
// every change the conversion made (In is "input", "output" or "tool").
func FormatTool(provider string, t Tool) (json.RawMessage, []Change, error) {
	p, err := Normalize(provider)
	if err != nil {
		return nil, nil, err
	}
	def, changes, err := formatTool(p, t)
	if err != nil {
		return nil, nil, fmt.Errorf("provider: %s: %w", p, err)
	}
	return def, changes, nil
}

// ConvertSchema converts a canonical input schema into the schema the
// provider's tool definition carries (for openai and openai-chat the strict
// form when the schema allows it; for gemini the parameters form when it
// can express the schema, else parametersJsonSchema). A Change with Action
// Downgraded says the fallback form was used, and why. An empty schema means
// a tool without arguments.
func ConvertSchema(provider string, schema json.RawMessage) (json.RawMessage, []Change, error) {
	p, err := Normalize(provider)
	if err != nil {
		return nil, nil, err
	}
	orig, err := parseSchema(schema, "schema")
	if err != nil {
		return nil, nil, fmt.Errorf("provider: %s: %w", p, err)
	}
	out, changes, _, err := convertInput(p, orig)
	if err != nil {
		return nil, nil, fmt.Errorf("provider: %s: %w", p, err)
	}
	return encodeTree(out), changes, nil
}

// parseSchema parses a schema; what names it in errors.
func parseSchema(raw json.RawMessage, what string) (any, error) {
	if len(bytes.TrimSpace(raw)) == 0 {
		return nil, nil
	}
	v, err := parseTree(raw)
	if err != nil {
		return nil, fmt.Errorf("%s is not valid JSON: %w", what, err)
	}
	return v, nil
}

func primaryDialect(p string) dialect {
	switch p {
	case OpenAI, OpenAIChat:
		return dOpenAIStrict
	case Anthropic:
		return dAnthropic
	case Mistral:
		return dMistral
	case Gemini:
		return dGeminiParams
	}
	return dMCP
}

// convertInput converts with the provider's preferred dialect and falls back
// when that dialect cannot express the schema.
func convertInput(p string, orig any) (*object, []Change, dialect, error) {
	d := primaryDialect(p)
	out, changes, err := convertRoot(d, orig, true)
	var dg *downgradeError
	if errors.As(err, &dg) {
		if fb, ok := d.fallback(); ok {
			out, changes, err = convertRoot(fb, orig, true)
			if err != nil {
				return nil, nil, 0, err
			}
			return out, append([]Change{dg.change}, changes...), fb, nil
		}
	}
	if err != nil {
		return nil, nil, 0, err
	}
	return out, changes, d, nil
}

var (
	// OpenAI, Anthropic and Mistral tool names (their function-calling pages).
	openAIName = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	// Gemini: a letter or underscore first; dots and colons allowed; 64 max.
	geminiName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_.:-]{0,63}$`)
)

func checkName(p, name string) error {
	if name == "" {
		return errors.New("tool name is empty")
	}
	var re *regexp.Regexp
	switch p {
	case OpenAI, OpenAIChat, Anthropic, Mistral:
		re = openAIName
	case Gemini:
		re = geminiName
	default:
		return nil
	}
	if !re.MatchString(name) {
		return fmt.Errorf("tool %q: name must match %s", name, re)
	}
	return nil
}

func formatTool(p string, t Tool) (json.RawMessage, []Change, error) {
	if err := checkName(p, t.Name); err != nil {
		return nil, nil, err
	}
	orig, err := parseSchema(t.InputSchema, "input schema")
	if err != nil {
		return nil, nil, fmt.Errorf("tool %q: %w", t.Name, err)
	}
	params, changes, used, err := convertInput(p, orig)
	if err != nil {
		return nil, nil, fmt.Errorf("tool %q: input schema: %w", t.Name, err)
	}
	for i := range changes {
		changes[i].In = "input"
	}
	toolChange := func(field string, a Action, reason string) {
		changes = append(changes, Change{In: "tool", Keyword: field, Action: a, Reason: reason})
	}

	def := newObject("")
	switch p {
	case OpenAI:
		def.set("type", "function")
		def.set("name", t.Name)
		def.set("description", t.Description)
		def.set("parameters", params)
		def.set("strict", used == dOpenAIStrict)
	case OpenAIChat:
		desc := t.Description
		if utf8.RuneCountInString(desc) > openAIChatMaxDescription {
			desc = truncateRunes(desc, openAIChatMaxDescription)
			toolChange("description", Dropped, fmt.Sprintf(
				"OpenAI Chat Completions rejects function descriptions longer than %d characters: truncated", openAIChatMaxDescription))
		}
		fn := newObject("")
		fn.set("name", t.Name)
		fn.set("description", desc)
		fn.set("parameters", params)
		fn.set("strict", used == dOpenAIStrict)
		def.set("type", "function")
		def.set("function", fn)
	case Anthropic:
		def.set("name", t.Name)
		def.set("description", t.Description)
		def.set("input_schema", params)
	case Mistral:
		fn := newObject("")
		fn.set("name", t.Name)
		fn.set("description", t.Description)
		fn.set("parameters", params)
		def.set("type", "function")
		def.set("function", fn)
	case Gemini:
		def.set("name", t.Name)
		def.set("description", t.Description)
		props, _ := params.vals["properties"].(*object)
		switch {
		case used == dGeminiJSON:
			def.set("parametersJsonSchema", params)
		case props == nil || props.len() == 0:
			toolChange("parameters", Rewritten, "a tool without arguments omits parameters: Gemini rejects an OBJECT with no properties")
		default:
			def.set("parameters", params)
		}
	case MCP:
		def.set("name", t.Name)
		def.set("description", t.Description)
		def.set("inputSchema", params)
		out, outChanges, err := mcpOutputSchema(t.OutputSchema)
		if err != nil {
			return nil, nil, fmt.Errorf("tool %q: %w", t.Name, err)
		}
		changes = append(changes, outChanges...)
		if out != nil {
			def.set("outputSchema", out)
		}
		if t.ReadOnly || t.Destructive || t.Idempotent {
			ann := newObject("")
			if t.ReadOnly {
				ann.set("readOnlyHint", true)
			}
			if t.Destructive {
				ann.set("destructiveHint", true)
			}
			if t.Idempotent {
				ann.set("idempotentHint", true)
			}
			def.set("annotations", ann)
		}
	}
	return encodeTree(def), changes, nil
}

// mcpOutputSchema converts an output schema for MCP, which requires its root
// to be an object schema: any other output schema is left out (the result is
// still returned as text).
func mcpOutputSchema(raw json.RawMessage) (*object, []Change, error) {
	orig, err := parseSchema(raw, "output schema")
	if err != nil || orig == nil {
		return nil, nil, err
	}
	out, changes, err := convertRoot(dMCP, orig, false)
	if errors.Is(err, errNotObject) {
		return nil, []Change{{In: "output", Keyword: "outputSchema", Action: Dropped,
			Reason: "MCP requires an outputSchema of type object; this result is not an object, so no outputSchema is announced"}}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("output schema: %w", err)
	}
	for i := range changes {
		changes[i].In = "output"
	}
	return out, changes, nil
}

func truncateRunes(s string, n int) string {
	i := 0
	for pos := range s {
		if i == n-1 {
			return s[:pos] + "…"
		}
		i++
	}
	return s
}
