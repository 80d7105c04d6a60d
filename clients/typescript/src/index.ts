export { Decoder, problemString, type Problem } from "./decoder.js";
export { Validator, SchemaError } from "./schema.js";
export {
  AuthToken,
  type Call,
  type Hints,
  type InvokeOptions,
  MissingAuthTokenError,
  TimeoutError,
  Tool,
  ToolError,
  Toolkit,
  type ToolSpec,
  UnknownToolError,
  ValidationError,
  type ZodLike,
  tool,
  toolHash,
  toolkitHash,
} from "./toolkit.js";
export { consoleLogger, silentLogger, type Logger, type LogAttrs } from "./log.js";
export { serve, type ServeOptions, type State, type Backoff, type Clock, PermanentError, backoffDelay } from "./serve.js";
export { platoolsURL } from "./platools.js";
export {
  APIError, Client, ClosedError, ConnectionLostError, type CallOptions, type ClientOptions, type Result, type ToolkitContext,
} from "./agent/client.js";
export { chatShaped, formatToolResults, normalizeProvider, parseToolCalls, type ProviderName, type ToolCall, type ToolResult } from "./agent/calls.js";
