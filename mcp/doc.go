// Package mcp serves the tools of a runtime.Toolkit over the Model Context
// Protocol, so that MCP hosts (editors, desktop assistants, agent
// frameworks) can list and call them.
//
//	srv, err := mcp.NewServer(tk, mcp.WithAuthToken(os.Getenv("ATP_AUTH_TOKEN")))
//	err = srv.ServeStdio(ctx, os.Stdin, os.Stdout)   // a host starts us as a subprocess
//	http.Handle("/mcp", srv.HTTPHandler())           // or: streamable HTTP
//
// A program that already runs an MCP server adds the tools to it with one
// call: AddTools for an mcp-go server, and gosdk.AddTools (module
// github.com/atpgo/atp/mcp/gosdk, kept apart so that the go-sdk is
// downloaded only by those who use it) for a server of the official go-sdk.
// Both keep everything below; other libraries can build on Caller, Define
// and Follow.
//
// # Why mcp-go
//
// The protocol (initialize, versions up to 2026-07-28, tools/list,
// tools/call, cancellation, the streamable HTTP transport) comes from
// github.com/mark3labs/mcp-go, a maintained library. It was chosen over the
// official go-sdk by measurement (module bench, one run, medians of 5, 2
// cores; the README has the tables): one tools/call over streamable HTTP
// costs the go-sdk about 400 KB and 390 allocations on the server, because
// its JSON decoder allocates a 32 KiB buffer per message and a typed tool
// decodes the arguments three times; on mcp-go this package's call costs
// about 25 KB and 200 allocations, below mcp-go's own typed tool with input
// validation (about 30 KB, 290 allocations), since the generated decoder
// validates in the same pass that decodes, and serving 100 tools costs less
// than registering them on either library. A library meets the goal, so
// no JSON-RPC is hand-written here, except the stdio loop (see ServeStdio):
// mcp-go's cancels every call when the input ends and only logs a failed
// write, where hosts that pipe a session in need the answers and a broken
// pipe must end the session.
//
// # tools/list
//
// Each tool is announced with its name, description and inputSchema: the
// generated schemas as they are (no reflection: the bytes on the wire are
// the generated schema, compacted), or converted by provider.FormatTool
// ("mcp", ...) when they are not an object schema MCP takes as written.
// outputSchema is announced only when the result is an object, as MCP
// requires. Annotations come from the directive's flags, each set
// explicitly, false included: readOnlyHint, destructiveHint (whose MCP
// default is true, so a tool without the destructive flag says false rather
// than look destructive to hosts that ask before destructive calls) and
// idempotentHint. openWorldHint is left unset, meaning the spec default,
// true: nothing in a directive says whether a Go function reaches outside
// its process, and a wrong "closed world" claim is the unsafe mistake.
//
// The list follows the toolkit: a tool added with Toolkit.Add or removed
// with Toolkit.Remove is served or dropped at once, and the server
// announces listChanged, so hosts on stdio get
// notifications/tools/list_changed. Over stateless HTTP no notification can
// reach a host; each tools/list answers the current list.
//
// # tools/call
//
// A call runs Toolkit.Invoke(ctx, name, arguments, runtime.WithTransport("mcp")).
// A result is sent as a text content block: a string result is that string
// (not its JSON quoting), any other result its JSON text; a JSON object is
// also sent as structuredContent. SEP-2106 allows any JSON value there, but
// hosts built before it (nearly every shipping host) reject a non-object,
// so other values stay text-only. A tool that returns null where its
// outputSchema promises an object gets an isError result saying so, since
// hosts reject a success without the promised structuredContent.
//
// Every failure of a call is an isError result whose text the model can act
// on, never a JSON-RPC error: invalid params ("invalid params for T:"
// followed by one problem per line, each with its JSON path, what was
// expected and what was got), the tool's own error, a missing auth token
// (with how to provide one), a timeout, a cancellation, and a panic (the
// toolkit recovers it and logs the stack; the process keeps serving). Only
// a call to a tool the server does not have is a protocol error, from
// mcp-go: JSON-RPC invalid params naming the tool (over streamable HTTP at
// protocol 2026-07-28, which names the tool in a header, a 400). The end
// user's token is replaced by [REDACTED] in any error text before it leaves.
//
// Calls run concurrently. Cancellation reaches the tool's context: over
// stdio from the host's notifications/cancelled and when ServeStdio's
// context ends; over HTTP when the call's request ends (see HTTPHandler).
//
// # Progress
//
// A tool reports progress with Call.Progress(done, total, message). When
// the host sent a progressToken with the call, each report becomes a
// notifications/progress message, sent before the call's answer: over
// stdio in order on the one stream; over HTTP the answer becomes an event
// stream carrying the reports, then the result. Without a progressToken,
// and on the transports that have no equivalent (ATP, net/http, Invoke),
// Progress does nothing.
//
// # Auth tokens
//
// Tools that act for an end user (a runtime.AuthToken parameter or auth=)
// need that user's token. WithAuthToken gives the server one token for all
// calls; `atp mcp` reads it from the ATP_AUTH_TOKEN environment variable,
// which suits stdio, where the host starts the server for one user.
// WithAuthTokenHeader takes it per HTTP request from a header, falling back
// to WithAuthToken. Separately, WithBearerToken guards the HTTP endpoint
// itself.
package mcp
