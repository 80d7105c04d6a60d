// Package parse loads Go packages with go/packages, finds the //atp:tool
// directives and turns the marked functions and the types they use into the
// plain data of internal/model, reporting every source problem with its
// position.
//
// # Directives
//
// A tool is a function or method whose doc comment holds the directive
//
//	//atp:tool [name=<tool name>] [auth=<provider>] [auth_type=OAuth2|apiKey]
//	          [auth_with=access_token|api_key] [readonly] [destructive]
//	          [idempotent] [timeout=<Go duration>]
//
// (one line; values may be quoted as Go strings). A named type may declare
// its own JSON Schema with a line //atp:schema <json object> in its doc
// comment. An exported package-level function that returns *T or (*T,
// error), taking nothing or a context.Context, may be marked
// //atp:constructor: T's tool methods are then called, by atp test and atp
// mcp, on what it returns instead of on a zero T. Any other comment line
// that looks like an atp directive (// atp:tool, //atp: tool, //atp:tools,
// //ATP:tool, ...) is an error.
//
// # Documenting plain parameters
//
// A tool that takes plain parameters, such as
//
//	func Greet(ctx context.Context, name string, times int) (string, error)
//
// documents each one with a line of its doc comment that starts with the
// parameter's name (its Go name or its snake_case property name) and a colon,
// optionally as a list item and under a "Parameters:" or "Params:" heading:
//
//	// Greet greets someone.
//	//
//	// Parameters:
//	//   - name: who to greet
//	//   - times: how many greetings `jsonschema:"minimum=1,maximum=10"`
//	//
//	//atp:tool
//
// The text after the colon (and any more-indented continuation lines) is the
// property's description. It may end with constraints in backquotes, written
// as a struct tag with a jsonschema key in invopop/jsonschema syntax, exactly
// as on a struct field. These lines and the heading are left out of the
// tool's description; a line whose name is not a parameter stays in it,
// unless it is a list item (or follows the heading) and its name is a
// likely typo of a parameter's ("- mesage:" for message, "- Times:" for
// times): that is an error with a did-you-mean.
//
// Struct fields get their descriptions from their doc comment, else their
// line comment, and their constraints from their jsonschema tag.
//
// # Signatures
//
// A tool takes an optional first context.Context, then, anywhere, the
// injected runtime.AuthToken and *runtime.Call (at most one each), and then
// either one named struct (or pointer to one) whose properties are its
// exported fields as encoding/json sees them, or any number of named plain
// parameters, one property each (named in snake_case). It returns (T,
// error), T, error or nothing.
//
// # Types with their own JSON methods
//
// time.Time, time.Duration and json.RawMessage are known by identity. Any
// other type whose pointer has UnmarshalJSON is decoded by it and described
// by its //atp:schema (else any JSON value); one with UnmarshalText (and no
// UnmarshalJSON) is a JSON string handed to it. In results, MarshalJSON and
// MarshalText play the same part. The fields of such a type are not
// examined for the direction its methods cover.
package parse

// Config says where and how to load.
type Config struct {
	// Dir is the directory patterns are resolved in and that positions are
	// made relative to; "" means the current directory.
	Dir string
	// BuildFlags are passed to the go command (e.g. -tags=foo).
	BuildFlags []string
	// Env is the go command's environment; nil means the current process's.
	Env []string
}
