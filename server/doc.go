// Package server is the reference ATP server (`atp serve`): it keeps API
// keys and registered toolkits in a store (package store: an embedded
// SQLite file, or a PostgreSQL database that several servers share), gives LLM clients each toolkit's tools in their provider's format,
// and routes their tool calls to the toolkits connected over WebSocket or
// polling the HTTP inbox. It speaks ATP v1 (docs/protocol.md)
// as the Python SDK 0.2.5 and our Go runtime do, and the toolkit-side
// extensions of docs/extensions.md (inbox long-poll, is_error, latency_ms,
// metadata.needs_auth_token). It also accepts Platools SDK toolkits (the
// Platos platform's wire, docs/protocol.md §4): see "Platools toolkits"
// below.
//
// In-process use (tests, examples):
//
//	srv, _ := server.New(ctx, server.Config{Addr: "127.0.0.1:0"}) // in-memory store
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
// A toolkit name belongs to the keys bound to it: the key whose first
// registration took it, and keys created for it (`atp keys create --toolkit
// T`, `atp keys rotate ID`). Another key of the owner that asks for it on
// verify_hash, verify_tool_hash or register_tool gets 409 with how to rotate
// a key, and changes nothing; being bound to no toolkit, it is in no route,
// so its WebSocket and inbox polls get no calls. Revoking a toolkit's keys
// does not free its name. To move a toolkit to a new key, create one for it,
// deploy it (both keys serve meanwhile), then revoke the old one.
//
// # Calls
//
// A task_request gets exactly one TASK_RESPONSE (on its WebSocket while it
// is open, or as the reply to its process/ request): the tool's result, the
// tool's error, or an error of the server's that says what happened. No
// call waits forever: one that its toolkit does not answer fails after its
// timeout (Config.CallTimeout, or its timeout_ms).
//
// The server sends a call to a toolkit at most once: it never sends it
// again on another connection, and an inbox call goes to another poll only
// when the reply that carried it could not be written in full, so the
// toolkit never read it. So no tool runs twice for one task_request. What
// an error says about the tool having run:
//
//   - It did not run when the call was never sent: an unknown toolkit or
//     tool, invalid params, a missing auth token, a limit (each names it),
//     a toolkit that is offline ("is offline"), or a queued inbox call
//     whose lease ran out ("the call was never delivered"). Neither did it
//     when the toolkit refused the call ("the toolkit is shutting down; the
//     call was not run", from our runtime).
//   - It may have run, once, when the answer was lost on the way: the
//     toolkit's connection closed while the call was in flight, the call
//     timed out, the server shut down, or the LLM client went away (closed
//     its WebSocket, cancelled its request).
//
// The package tests/fault checks these promises with our runtime and
// llmclient under faults: connections reset, toolkits restarted, stalled
// and killed, clients gone mid-call.
//
// # Behaviour the protocol leaves open
//
//   - Python toolkits send parameter names only: their schema is inferred
//     (provider.InferSchema) and validation checks names, not values.
//   - A Python toolkit's reply of exactly {"error": "<text>"} is a failure;
//     a Go toolkit's reply is a failure only with is_error.
//   - A call fails at once when its toolkit has no WebSocket and no inbox
//     poll within Config.InboxOnlineWindow, and at once when the connection
//     it was sent on closes; a reply after the timeout is dropped.
//   - A call queued for an inbox fails when the inbox lease runs out
//     (Config.InboxOnlineWindow after the last poll, no poll waiting); a
//     call on a WebSocket whose peer does not answer a ping within
//     Config.PongTimeout fails then. Both say why.
//   - A toolkit reply that cannot be read but names its call fails that
//     call at once. Invalid UTF-8 in a toolkit's reply becomes U+FFFD.
//   - The greeting (atp_client_connected) is sent once the connection can
//     be routed to, and before any call: a toolkit may report itself
//     connected on it.
//   - A toolkit connection that sends {"type":"draining"} (our runtime does
//     when its Serve is cancelled) gets no new call; the calls in flight on
//     it still get its answers. A toolkit whose connections all drain is
//     offline, and its calls fail at once saying so.
//   - inbox/respond for a call that is no longer waiting answers 410.
//   - POST .../inbox/release (docs/extensions.md) ends the key's held polls
//     at once and holds none of its polls for a second: a toolkit that
//     shuts down reads its last poll to the end rather than cut it, and
//     loses no call handed to it meanwhile.
//   - A key in a header or the path is checked before the body is read;
//     a key only in the body must be its api_key member within the first
//     Config.UnauthBodyLimit bytes. Every limit (limits.go, the Config
//     fields after "Limits") answers with an error naming it.
//   - A revoked key's WebSockets close with 1008 and its inbox polls get
//     401 at once (Server.RevokeKey), or within
//     Config.RevocationCheckInterval when another process revoked it.
//
// # Platools toolkits
//
// A Platools SDK (Python, TypeScript, or runtime.TransportPlatools) whose
// PLATOS_URL is the server's base URL with ?entity=<toolkit> connects to
// /ws/sdk (or /tools/sync, /tools/sync/ws/sdk) with a toolkit key as its
// secret. Its connection is a toolkit connection like an ATP v1 one, in
// the same routes and under the same limits; docs/protocol.md §4.8 says
// what the server sends and does, in short:
//
//   - the key is checked before the upgrade; the entity is the toolkit
//     name, under the key's binding rules; the environment (default dev)
//     scopes superseding and the register throttle, not the toolkit;
//   - tool_register is the complete declaration (store.Declare: new,
//     updated and pruned tools), throttled past
//     Config.PlatoolsRegistersPerMinute;
//   - calls go out as tool_call with the __platos envelope (the end
//     user's token only for tools of auth user or admin) and come back
//     from tool_result or tool_error on the same connection; a result over
//     Config.PlatoolsMaxResultBytes is truncated; a traceback is logged at
//     debug level, never passed to the LLM client;
//   - heartbeats are acknowledged and their tool health exported at
//     /metrics; a revoked key closes the connection with 4001; a newer
//     connection for the same toolkit and environment closes the older
//     with 1000 "superseded by new connection".
//
// # Replicas
//
// With Config.NATSURL the server is one replica of several on one
// PostgreSQL database and one NATS (cluster.go): any replica takes any
// request. A call for a toolkit whose connection another replica holds is
// forwarded to it over NATS and answered as on one server; inbox calls
// wait in a JetStream work queue and are delivered once, by whichever
// replica the toolkit polls; revocations, registrations and inbox releases
// reach every replica at once. A replica gone (a crash, lost NATS) fails
// the calls in flight through it at once, saying so. Newer Platools
// connections supersede older ones on the same replica only. Per-key and
// per-toolkit limits are per replica.
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
//   - task_request "external_user_id" (payload, else top level): when the
//     request brings no auth_token, the server injects that end user's
//     access token for the tool's auth_provider (see the OAuth broker
//     below). A tool registered with an auth_provider that gets no token
//     fails with a TASK_RESPONSE error saying what to send; the toolkit
//     never sees the call.
//   - The same holds for a tool registered with metadata
//     "needs_auth_token": true and no auth_provider (a Go tool that takes a
//     runtime.AuthToken; docs/extensions.md §4): a call without auth_token
//     fails before routing, and external_user_id cannot supply one, as
//     there is no platform to take it from. The flag is stored with the
//     tool (schema version 3); Python toolkits never send it.
//
// # OAuth broker (docs/protocol.md §3)
//
// OAuth platforms come from `atp platforms add` (stored) or Config.Platforms
// (`atp serve --platforms FILE`, see PlatformsFile); PKCE (S256) is on
// unless a platform turns it off. Client secrets, tokens, webhook secrets
// and PKCE verifiers are sealed at rest with AES-256-GCM (store.Vault):
// Config.SecretKey, which `atp serve` reads from --secret-key-file or
// $ATP_SECRET_KEY (base64 of 32 bytes). Without one, the server starts with
// the broker off (its endpoints answer 503 saying how to give a key),
// unless OAuth platforms are configured or stored, which make it refuse to
// start. Dev mode generates one beside the database (DevSecretKeyPath, mode
// 0600), and a database first used so is sealed with it: a start with
// another key names that file. An in-memory store uses a random key.
//
// Endpoints, under /api/v1/atp/llm-client/ with the LLM key as for
// process/ ("Authorization: ApiKey <key>", and "api_key" in POST bodies):
//
//   - POST oauth/confirmation/{platform_id}/ {"external_user_id",
//     "developer_redirect_url"?} → {"authorization_url", "auth_url" and
//     "confirmation_url" (the same URL), "platform_id", "provider_name",
//     "scopes", "auth_mode":"OAuth2", "external_user_id", "state",
//     "expires_at", "redirect_uri"}. The state is 256 random bits, works
//     once and expires after Config.OAuthStateTTL (10 minutes); it is bound
//     to the key's owner, the platform, the user and the PKCE verifier.
//     Starting again for a user whose connection broke clears it, so that
//     polling oauth/tokens waits for the new one.
//   - GET oauth/tokens/{platform_id}/{external_user_id}/ → 404
//     {"error","status":"pending"} until connected; then 200
//     {"status":"completed","integration_id","platform_id","external_user_id",
//     "external_user_email","access_token","refresh_token","token_type",
//     "expires_at" (RFC 3339, or null when the provider gave no expiry),
//     "scope"}. A token with less than Config.TokenRefreshMargin (60 s) left
//     is refreshed first (one refresh per user at a time; a rotated refresh
//     token is kept). A refresh token the provider refuses (invalid_grant)
//     breaks the connection: 410 {"error","status":"broken"} until the user
//     connects again. 502 when a refresh failed otherwise and the token has
//     expired; 503 when the server has no secret key. An unknown platform
//     is 404 {"error","status":"unknown_platform"}: a client waiting while
//     the status is "pending" knows to stop.
//   - POST webhooks/register/ {"url","events"?} → {"webhook_id","url",
//     "events","secret","created_at"}; events are "connection_success"
//     (the default) and "connection_failed"; the secret is shown once.
//     GET webhooks/ lists them (no secrets); GET webhooks/{id}/delete/ (as
//     the Python SDK sends it) or DELETE webhooks/{id}/ deletes one.
//     Deliveries go to public addresses only: a URL whose host is a
//     loopback, private, link-local, unspecified, multicast, CGNAT or other
//     special-purpose address (IPv4-mapped and NAT64 forms included), or
//     localhost, is refused with 400; a host name is checked on the
//     address each delivery dials, so a name that resolves to such an
//     address (DNS rebinding included) is refused then and given up.
//     Redirects are not followed. Config.AllowPrivateWebhooks (atp serve
//     --allow-private-webhooks) lifts this for development.
//
// The provider sends the browser to GET /api/v1/oauth/callback/{platform_id}/
// (no key: the state is the credential); the redirect URI to register with
// the provider is Config.PublicURL (default http://<listen address>)
// followed by that path. A bad state (missing, unknown, used, expired, of
// another platform) gets a 400 page and stores nothing; a state of another
// platform is not spent, so its own callback still works. A denial or a failed
// code exchange sends connection_failed; a success stores the tokens (and
// the e-mail from the platform's userinfo_url, if any) and sends
// connection_success. Then the browser goes to developer_redirect_url with
// status=success|error (and platform_id, and error) added to its query, or
// gets a small page. Webhook deliveries are signed and retried as
// webhook.go describes (see SignWebhook, VerifyWebhook); no token or
// secret is ever logged or sent in one.
package server
