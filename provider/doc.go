// Package provider turns canonical tool definitions into each LLM
// provider's tool format, and the providers' tool calls and results into and
// out of one shape. It is pure data: no I/O, and no dependency beyond the
// standard library and this module's internal JSON tree.
//
// # Tool definitions
//
// A Tool carries one canonical input schema (JSON Schema draft 2020-12, as
// atpgen writes it, or as InferSchema builds it for toolkits that send only
// parameter names). FormatTools writes the provider's tool list; FormatTool
// and ConvertSchema also return every Change made, with the JSON Pointer of
// the keyword in the canonical schema, so `atp doctor` can say what a
// provider cannot take. Output is deterministic: keys keep the canonical
// schema's order. Arguments must still be validated against the canonical
// schema (after DropNullOptionals for OpenAI strict mode): the providers'
// schemas are looser.
//
//	provider     definition                                          schema
//	openai       {"type":"function","name","description",             strict form when possible,
//	             "parameters","strict"}                               else non-strict (strict:false)
//	openai-chat  {"type":"function","function":{"name",               same; description cut to
//	             "description","parameters","strict"}}                1024 characters
//	anthropic    {"name","description","input_schema"}                non-strict Anthropic
//	mistral      {"type":"function","function":{"name",               OpenAI non-strict, acyclic
//	(mistralai)  "description","parameters"}}                         $refs inlined
//	gemini       {"name","description","parameters"} (a               OpenAPI subset when possible,
//	             functionDeclarations entry; no parameters when       else "parametersJsonSchema"
//	             the tool takes none)
//	mcp          {"name","description","inputSchema",                 as written
//	             "outputSchema"?,"annotations"?}
//
// Every provider gets an object root with properties ({} when none). Beyond
// that, the rules (the keyword table is keywordTable in dialect.go; the
// providers' pages are listed under Sources below):
//
//	all but mcp    $schema, $comment, $vocabulary, $id, $anchor (kept by Gemini JSON
//	               Schema) and x-* or unknown keywords stripped; properties without type
//	               get type "object"; true schemas become {}; root anyOf/oneOf/allOf
//	               dropped (OpenAI also root enum/const/not); $defs entries no longer
//	               referenced removed; a root $ref is replaced by its target (mcp too).
//	openai strict  every object additionalProperties:false; every property required,
//	               optional ones made nullable (["T","null"], or an anyOf null branch);
//	               oneOf -> anyOf; allOf merged; $ref with siblings inlined (wrapped in a
//	               one-branch anyOf when recursive); not/if/then/else/dependent*/contains/
//	               propertyNames/unevaluated* dropped; minLength, maxLength, uniqueItems,
//	               min/maxProperties, default, content*, formats outside date-time, time,
//	               date, duration, email, hostname, ipv4, ipv6, uuid moved to the description;
//	               examples and readOnly/writeOnly/deprecated stripped. Falls back to
//	               non-strict for maps and free-form objects, untyped schemas, arrays
//	               without items, prefixItems, patternProperties, false schemas,
//	               unmergeable allOf, a required name missing from properties, or the
//	               size limits (5000 properties, 10 levels, 1000 enum values, 120k chars).
//	openai         oneOf -> anyOf; allOf merged when possible; not/if/then/else/dependent*
//	(non-strict)   dropped; the rest kept as hints.
//	mistral        as openai non-strict, with every non-recursive $ref inlined.
//	anthropic      everything else kept (root composition dropped).
//	gemini         one upper-case type per schema; null unions, ["T","null"] and null
//	(parameters)   in enums become nullable:true; $ref inlined (recursion unrolled 3
//	               levels, deeper parts omitted); oneOf -> anyOf; allOf merged or dropped;
//	               string const -> enum; other const and non-string enums, formats other
//	               than enum/date-time, exclusive*, multipleOf, uniqueItems, content* moved
//	               to the description; additionalProperties:false dropped; first example
//	               kept as example; required names missing from properties dropped.
//	               Falls back to parametersJsonSchema for maps and free-form objects
//	               (Gemini rejects an OBJECT without properties), untyped schemas,
//	               several types, prefixItems, patternProperties, false schemas, and
//	               property names outside [A-Za-z_][A-Za-z0-9_]{0,63}.
//	gemini         $ref kept (inlined when it has siblings other than description and
//	(JSON Schema)  default); const -> enum; oneOf -> anyOf; allOf merged or dropped;
//	               pattern, minLength, maxLength, exclusive*, multipleOf, uniqueItems,
//	               min/maxProperties described; not/if/then/else/contains/
//	               patternProperties (with the additionalProperties:false that would
//	               then reject its keys)/propertyNames dropped.
//	mcp            unchanged; outputSchema only when it is an object schema;
//	               annotations readOnlyHint/destructiveHint/idempotentHint when set.
//
// For Gemini, FormatTools returns the functionDeclarations array: the
// request's tools is [{"functionDeclarations": <it>}]. No provider but MCP
// gets the output schema (OpenAI's Responses output_schema is left out).
//
// # Tool calls and results
//
// ParseToolCalls reads the calls a model returned (OpenAI Chat tool_calls,
// Responses function_call items, Anthropic tool_use blocks, Mistral
// tool_calls, Gemini functionCall parts, MCP tools/call) into ToolCalls with
// their ids and arguments as JSON objects. FormatToolResults writes the
// messages to append: function_call_output items, role "tool" messages, one
// user message of tool_result blocks, or one user content of
// functionResponse parts. Failures stay readable errors, flagged with
// is_error/isError where the provider has the flag.
//
// One malformed call does not cost the others. A call whose id and name can
// be read but whose arguments cannot (a truncated arguments string, an
// array where an object belongs) comes back in its place with Err set to an
// *ArgumentsError whose message is for the model ("arguments: not valid
// JSON: unexpected end of input at offset 17"); it must not be run, and a
// ToolResult for it with nothing else set reports that message as an error
// under the call's own id, so the model can send the call again.
// ParseToolCalls fails only for input that cannot be read as calls at all:
// not JSON, the wrong shape, an item that is no tool call, a call without a
// name, an id that is not a string.
//
// # Sources
//
// The rules and limits above come from the providers' own pages, which
// change: check them before relaxing a rule or raising a limit.
//
//	OpenAI     https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
//	           https://platform.openai.com/docs/guides/function-calling
//	Anthropic  https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview
//	Mistral    https://docs.mistral.ai/capabilities/function_calling
//	Gemini     https://ai.google.dev/gemini-api/docs/function-calling
//	           https://cloud.google.com/vertex-ai/docs/reference/rest/v1beta1/FunctionDeclaration
//	MCP        https://modelcontextprotocol.io/specification/2025-06-18/server/tools
package provider
