// Package runtime runs the tools atpgen generates: a toolkit collects them and
// the transports serve them.
//
// Application code imports it for three things: [NewToolkit] to collect the
// tools that generated ATPTools functions return, the injected parameter types
// [AuthToken] and [*Call], and the transports: [Toolkit.Invoke] calls a tool
// in process, [Toolkit.Serve] serves the tools to an ATP server (ATP v1 over
// WebSocket or the HTTP inbox) or to a Platos platform ([TransportPlatools],
// the Platools SDK wire), [Toolkit.Handler] serves them over plain HTTP
// from any net/http server, and package [github.com/atpgo/atp/mcp] serves them
// over MCP (kept there so that the MCP SDK stays out of this package).
//
// What exists only for generated code (the params decoder a Tool's Run
// reads with, and the version constant that ties generated code to the
// runtime it was generated for) is in package
// [github.com/atpgo/atp/runtime/atpimpl], outside this API.
//
// The package depends on the standard library (and gorilla/websocket for the
// WebSocket transports) only; it never imports the generator.
package runtime
