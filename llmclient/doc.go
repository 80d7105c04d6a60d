// Package llmclient is the agent side of ATP in Go: it fetches a toolkit's
// tools in the format of the agent's model, runs the tool calls the model
// asks for through an ATP server (`atp serve` or the hosted platform), and
// gives back the messages that carry the results to the model. It speaks
// the LLM-client side of ATP v1 (docs/protocol.md §2 and §3) over HTTP or one
// WebSocket.
//
//	c, err := llmclient.New(os.Getenv("ATP_LLM_KEY"), llmclient.WithBaseURL("http://127.0.0.1:7777"))
//	if err != nil { ... }
//	defer c.Close()
//	tc, err := c.GetToolkitContext(ctx, "crm", "anthropic", prompt)
//	// request: {"model": ..., "tools": tc.RequestTools(), "messages": [...]}
//	// the model answers with tool_use blocks in resp.content:
//	msgs, err := c.CallTools(ctx, "crm", "anthropic", respContent, llmclient.WithAuthToken(userToken))
//	// append the assistant's message, then the elements of msgs, and ask again.
//
// # Tools per provider
//
// ToolkitContext.Tools is the provider's own tool list, a JSON array; with
// the providers' Go SDKs, json.Unmarshal it into the SDK's tool params type.
//
//	provider      Tools goes in                          CallTools takes / returns
//	openai        Responses "tools"                      output items (or the response) /
//	                                                     function_call_output items for "input"
//	openai-chat   Chat Completions "tools"               message.tool_calls (or the completion) /
//	                                                     role "tool" messages
//	anthropic     Messages "tools"                       content blocks (or the message) / one
//	                                                     user message of tool_result blocks
//	mistral       chat "tools"                           message.tool_calls / role "tool" messages
//	gemini        "tools": [{"functionDeclarations":     parts (or the content, or the response) /
//	              Tools}] (RequestTools does it)         one user content of functionResponse parts
//
// Results go back after the model's own turn (the assistant message, the
// Responses output items, Gemini's model content), which the agent appends
// itself. OpenAI Chat Completions wants the nested tool form: ask the
// context for "openai-chat". CallTools given provider "openai" answers
// Chat-shaped calls with Chat's role "tool" messages.
//
// # Errors
//
// Whatever the server answers about a tool call is a result for the model:
// the tool's error, invalid params (with every problem, field by field), an
// unknown tool, an offline toolkit, a timeout. CallTools turns them into
// error results the model reads (is_error for Anthropic, {"error": ...}
// where the provider has no flag), never an empty object. A call whose
// arguments the model botched (malformed JSON, not an object) is answered
// the same way without being sent, under its own id ("arguments: not valid
// JSON: unexpected end of input at offset 17"), while the other calls of the
// batch run. A Go error means the calls got no answer: the server was
// unreachable, the key was refused, the context ended, the client was
// closed, or the input could not be read as tool calls at all (not JSON,
// the wrong shape, a call without a name).
//
// # Transports
//
// TransportHTTP (the default) POSTs each request to the server's process/
// endpoint. TransportWS opens one WebSocket on first use, authenticates it,
// and multiplexes every request over it by request_id, so concurrent calls
// do not wait for each other. When the connection drops, the next request
// dials again; failed attempts back off exponentially with jitter (Backoff)
// and concurrent requests share one attempt at a time. A request whose
// answer was lost with the connection fails with ErrConnectionLost: a
// task_request is not sent twice, since the tool may have run, while
// get_toolkit_context is. OAuth and webhook methods are HTTP requests
// whatever the transport.
//
// The API key is sent as the protocol wants it (in the WebSocket path and
// auth message, in the Authorization header and in JSON bodies) and never
// appears in an error or a log line.
package llmclient
