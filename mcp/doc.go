// Package mcp serves the tools of a runtime.Toolkit over the Model Context
// Protocol, so that MCP hosts (editors, desktop assistants, agent
// frameworks) can list and call them. It is built on the official SDK,
// github.com/modelcontextprotocol/go-sdk, which stays out of package
// runtime.
//
//	srv, err := mcp.NewServer(tk, mcp.WithAuthToken(os.Getenv("ATP_AUTH_TOKEN")))
//	err = srv.ServeStdio(ctx, os.Stdin, os.Stdout)   // a host starts us as a subprocess
//	http.Handle("/mcp", srv.HTTPHandler())           // or: streamable HTTP
//
// # tools/list
//
// Each tool is announced with its name, description and inputSchema, the
// schemas atpgen generated converted once by provider.FormatTool("mcp", ...)
// and registered as JSON (no reflection: the bytes on the wire are the
// generated schema, compacted). outputSchema is announced only when the
// result is an object, as MCP requires. Annotations come from the
// directive's flags, each set explicitly, false included: readOnlyHint,
// destructiveHint (whose MCP default is true, so a tool without the
// destructive flag says false rather than look destructive to hosts that
// ask before destructive calls) and idempotentHint. openWorldHint is left
// unset, meaning the spec default, true: nothing in a directive says
// whether a Go function reaches outside its process, and a wrong "closed
// world" claim is the unsafe mistake.
//
// # tools/call
//
// A call runs Toolkit.Invoke(ctx, name, arguments, runtime.WithTransport("mcp")).
// A result is sent as its JSON text in a text content block and, when it
// is a JSON object, as structuredContent too. SEP-2106 allows any JSON
// value there, and SDK v1.8 would send one, but hosts built before it
// (nearly every shipping host) reject a non-object, so other values stay
// text-only. A tool that returns null where its outputSchema
// promises an object gets an isError result saying so, since hosts reject a
// success without the promised structuredContent.
//
// Every failure of a call is an isError result whose text the model can act
// on, never a JSON-RPC error: invalid params ("invalid params for T:"
// followed by one problem per line, each with its JSON path, what was
// expected and what was got), the tool's own error, a missing auth token
// (with how to provide one), a timeout, a cancellation, and a panic (the
// toolkit recovers it and logs the stack; the process keeps serving). Only
// a call to a tool the server does not have is a JSON-RPC error (invalid
// params, "unknown tool"), from the SDK. The end user's token is replaced
// by [REDACTED] in any error text before it leaves.
//
// Calls run concurrently. Cancellation reaches the tool's context: over
// stdio from the host's notifications/cancelled; over HTTP when the call's
// request ends (see HTTPHandler); and for all calls when ServeStdio's
// context ends.
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
