// Package server is the reference ATP server (`atp serve`): it keeps API
// keys and registered toolkits in an embedded SQLite store (package
// store), gives LLM clients each toolkit's tools in their provider's format,
// and routes their tool calls to the toolkits connected over WebSocket or
// polling the HTTP inbox. It speaks ATP v1 (../shared/spec/atp-wire-v1.md)
// as the Python SDK 0.2.5 and our Go runtime do, and the toolkit-side
// extensions of docs/extensions.md (inbox long-poll, is_error, latency_ms).
//
// In-process use (tests, examples):
//
//	srv, _ := server.New(server.Config{Addr: "127.0.0.1:0"}) // in-memory store
//	defer srv.Close()
//	_, llmKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindLLM, Name: "agent"})
//	_, tkKey, _ := srv.CreateKey(ctx, store.NewKey{Kind: store.KindToolkit, Name: "tools"})
//	ln, _ := srv.Listen() // a free port
//	go srv.Serve(ctx, ln) // until ctx is done
//	// srv.URL() is the base URL for toolkits and LLM clients.
//
// # Keys and owners
//
// Keys are "atp_tk_<id>_<secret>" (toolkit) or "atp_llm_<id>_<secret>"
// (LLM client); only a SHA-256 of the secret is stored. Every key has an
// owner: a toolkit is identified by its owner and name (app_name), an LLM
// key sees only its owner's toolkits (others are "not found"), and a
// toolkit key serves one toolkit, bound at creation or by its first
// registration.
//
// # Behaviour the spec leaves open
//
//   - Python toolkits send parameter names only: their schema is inferred
//     (provider.InferSchema) and validation checks names, not values.
//   - A Python toolkit's reply of exactly {"error": "<text>"} is a failure;
//     a Go toolkit's reply is a failure only with is_error.
//   - A call fails at once when its toolkit has no WebSocket and no inbox
//     poll within Config.InboxOnlineWindow, and at once when the connection
//     it was sent on closes; a reply after the timeout is dropped.
//   - inbox/respond for a call that is no longer waiting answers 410.
//
// # Extensions on the LLM side
//
// Old clients ignore them.
//
//   - task_request "timeout_ms" (top level or in payload): this call's
//     timeout, capped by Config.MaxCallTimeout.
//   - TASK_RESPONSE echoes "tool_call_id", and for invalid params carries
//     "problems": [{"path","message"}], the field-by-field list (also in
//     result.tool.result).
//   - A failed get_toolkit_context is still a "toolkit_context" message,
//     with "status":"error", "error" and payload {"error"}, so that the
//     Python client returns at once instead of timing out; process/ also
//     answers it with 400 or 404. A good one has "status":"success".
//   - Any other message type gets {"type":"error","request_id","error"}.
//   - "external_user_id" is read (issue 5 injects that user's OAuth token;
//     see authTokenFor).
package server
