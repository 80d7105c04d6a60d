// Tools and toolkits: how a tool is declared (a zod schema or a plain JSON
// Schema, and a handler), how a call reaches it (validated first, every
// problem at once, in the Go decoders' words), and the errors a call can end
// with, worded as the Go runtime words them.

import { createHash } from "node:crypto";
import { inspect } from "node:util";
import { Decoder, type Problem, problemString } from "./decoder.js";
import { goCanonical, goQuote } from "./gojson.js";
import { formatGoDuration, type Logger, consoleLogger } from "./log.js";
import { parseRaw } from "./rawjson.js";
import { compareUTF8, Validator } from "./schema.js";

const redacted = "[REDACTED]";

/** AuthToken is the end user's OAuth access token or API key for a call.
 * It prints as a placeholder (String, JSON.stringify, util.inspect,
 * console.log); value() returns the real token. */
export class AuthToken {
  readonly #token: string;
  constructor(token: string) {
    this.#token = token;
  }
  /** The token itself, for the request that needs it. */
  value(): string {
    return this.#token;
  }
  toString(): string {
    return redacted;
  }
  toJSON(): string {
    return redacted;
  }
  [inspect.custom](): string {
    return `AuthToken(${redacted})`;
  }
}

/** Call is what a handler learns about the call besides its params. */
export interface Call {
  /** The toolkit and tool being called. */
  readonly toolkit: string;
  readonly tool: string;
  /** The transport's id for the call ("" when there is none). */
  readonly requestId: string;
  /** How the call arrived: "invoke", "ws", "http-inbox" or "platools". */
  readonly transport: string;
  /** The end user's token, for a tool that needs one (auth or
   * needsAuthToken); undefined for every other tool. */
  readonly authToken: AuthToken | undefined;
  /** Aborted when the call times out, the toolkit shuts down past its drain
   * deadline, or the connection that brought the call is lost. */
  readonly signal: AbortSignal;
  /** The toolkit's logger. */
  readonly logger: Logger;
  /** Platools only: the __platos envelope and the _context object popped
   * from the params. */
  readonly platos?: Record<string, unknown>;
  readonly context?: Record<string, unknown>;
}

/** Behaviour hints, announced to hosts and agents. */
export interface Hints {
  readOnly?: boolean;
  destructive?: boolean;
  idempotent?: boolean;
}

/** The part of a zod v4 schema this package uses (zod is an optional peer
 * dependency: nothing is imported from it). */
export interface ZodLike<Out = unknown> {
  toJSONSchema(params?: { io?: "input" | "output"; target?: string }): object;
  safeParse(v: unknown): { success: true; data: Out } | { success: false; error: { issues: ZodIssueLike[] } };
}

interface ZodIssueLike {
  path: PropertyKey[];
  message: string;
}

type InferOut<S> = S extends { _zod: { output: infer O } } ? O : S extends ZodLike<infer O> ? O : Record<string, unknown>;

/** ToolSpec declares one tool. */
export interface ToolSpec<S extends ZodLike | undefined = undefined, R = unknown> {
  /** The name LLMs see: a letter or _ then up to 63 letters, digits, _ or -. */
  name: string;
  description?: string;
  /** The params: a zod v4 object schema (converted with toJSONSchema;
   * unknown fields are refused unless it is a looseObject)... */
  input?: S;
  /** ...or a plain JSON Schema (draft 2020-12) of the params object, as a
   * value or as JSON text (kept as written). */
  inputSchema?: object | string;
  /** The result's JSON Schema, or a zod schema of it. */
  output?: ZodLike;
  outputSchema?: object | string;
  /** The OAuth platform whose end-user token the tool acts with. */
  auth?: { provider: string; type?: string; with?: string };
  /** Every call needs the end user's token (implied by auth). */
  needsAuthToken?: boolean;
  hints?: Hints;
  /** Bound on one call in milliseconds; 0 or absent: the serve default. */
  timeoutMs?: number;
  handler: (params: S extends ZodLike ? InferOut<S> : Record<string, unknown>, call: Call) => R | Promise<R>;
}

/** Tool is a compiled ToolSpec. */
export class Tool {
  readonly name: string;
  readonly description: string;
  /** Property names in declaration order, and the required ones. */
  readonly params: string[];
  readonly requiredParams: string[];
  /** The JSON Schema texts as registered. */
  readonly inputSchema: string;
  readonly outputSchema: string | undefined;
  readonly authProvider: string;
  readonly authType: string;
  readonly authWith: string;
  readonly needsAuthToken: boolean;
  readonly hints: Hints;
  readonly timeoutMs: number;
  readonly validator: Validator;
  /** The contract hash the server compares (see docs/extensions.md §4). */
  readonly hash: string;
  readonly zod: ZodLike | undefined;
  readonly handler: (params: never, call: Call) => unknown;

  constructor(spec: ToolSpec<ZodLike | undefined, unknown>) {
    if (typeof spec !== "object" || spec === null) throw new TypeError("tool: expected a ToolSpec object");
    if (typeof spec.name !== "string" || !/^[a-zA-Z_][a-zA-Z0-9_-]{0,63}$/.test(spec.name)) {
      throw new TypeError(`invalid tool name ${JSON.stringify(spec.name)}: expected a letter or _ then up to 63 letters, digits, _ or -`);
    }
    if (typeof spec.handler !== "function") throw new TypeError(`tool ${spec.name} has no handler function`);
    if (spec.input && spec.inputSchema) throw new TypeError(`tool ${spec.name}: give input (zod) or inputSchema (JSON Schema), not both`);
    if (spec.timeoutMs !== undefined && !(spec.timeoutMs >= 0)) throw new TypeError(`tool ${spec.name}: timeoutMs: expected a positive number of milliseconds or 0, got ${spec.timeoutMs}`);
    this.name = spec.name;
    this.description = spec.description ?? "";
    this.zod = spec.input;
    let input: object | string | undefined = spec.inputSchema;
    if (spec.input) input = zodSchema(spec.name, "input", spec.input, true);
    this.inputSchema = input === undefined ? '{"type":"object"}' : schemaText(spec.name, "inputSchema", input);
    let output: object | string | undefined = spec.outputSchema;
    if (spec.output) output = zodSchema(spec.name, "output", spec.output, false);
    this.outputSchema = output === undefined ? undefined : schemaText(spec.name, "outputSchema", output);
    try {
      this.validator = Validator.compile(this.inputSchema);
    } catch (e) {
      throw new TypeError(`tool ${spec.name}: input schema: ${(e as Error).message}`);
    }
    [this.params, this.requiredParams] = paramNames(this.inputSchema);
    this.authProvider = spec.auth?.provider ?? "";
    this.authType = spec.auth?.provider ? (spec.auth.type ?? "OAuth2") : (spec.auth?.type ?? "");
    this.authWith = spec.auth?.provider ? (spec.auth.with ?? "access_token") : (spec.auth?.with ?? "");
    this.needsAuthToken = spec.needsAuthToken ?? this.authProvider !== "";
    this.hints = { ...spec.hints };
    this.timeoutMs = spec.timeoutMs ?? 0;
    this.handler = spec.handler as (params: never, call: Call) => unknown;
    this.hash = toolHash(this);
  }
}

/** tool declares a tool; the types of params follow the zod schema. */
export function tool<S extends ZodLike | undefined = undefined, R = unknown>(spec: ToolSpec<S, R>): Tool {
  return new Tool(spec as unknown as ToolSpec<ZodLike | undefined, unknown>);
}

function schemaText(name: string, what: string, v: object | string): string {
  if (typeof v !== "string") return JSON.stringify(v);
  try {
    JSON.parse(v);
  } catch {
    throw new TypeError(`tool ${name}: ${what} is not valid JSON`);
  }
  return v;
}

function zodSchema(name: string, what: string, s: ZodLike, closeObjects: boolean): object {
  if (typeof s?.toJSONSchema !== "function") {
    throw new TypeError(`tool ${name}: ${what} is not a zod v4 schema (no toJSONSchema); pass a JSON Schema as ${what}Schema instead`);
  }
  const schema = s.toJSONSchema({ io: what === "input" ? "input" : "output" }) as Record<string, unknown>;
  delete schema["$schema"];
  if (closeObjects) closeObjectsIn(schema);
  return schema;
}

/** closeObjectsIn refuses unknown fields in the objects of a zod input
 * schema, as the Go decoders do: zod's input form leaves
 * additionalProperties out for z.object (whose parse strips unknown keys)
 * and sets it for looseObject and catchall. */
function closeObjectsIn(v: unknown): void {
  if (Array.isArray(v)) return v.forEach(closeObjectsIn);
  if (v === null || typeof v !== "object") return;
  const o = v as Record<string, unknown>;
  if (o["type"] === "object" && typeof o["properties"] === "object" && !("additionalProperties" in o) && !("patternProperties" in o)) {
    o["additionalProperties"] = false;
  }
  for (const x of Object.values(o)) closeObjectsIn(x);
}

function paramNames(schema: string): [string[], string[]] {
  const doc = parseRaw(schema);
  const props = doc.members?.find(([k]) => k === "properties")?.[1];
  const names = props?.kind === "object" ? props.members!.map(([k]) => k) : [];
  const req = doc.members?.find(([k]) => k === "required")?.[1];
  const reqSet = new Set(req?.kind === "array" ? req.items!.filter((x) => x.kind === "string").map((x) => x.str!) : []);
  return [names, names.filter((n) => reqSet.has(n))];
}

/** toolHash is the hex sha256 of the tool's contract, encoded exactly as
 * the Go runtime encodes it (version 2: needs_auth_token included). */
export function toolHash(t: Tool): string {
  const hints: string[] = [];
  if (t.hints.readOnly) hints.push('"readOnlyHint":true');
  if (t.hints.destructive) hints.push('"destructiveHint":true');
  if (t.hints.idempotent) hints.push('"idempotentHint":true');
  const list = (xs: string[]) => "[" + xs.map(goQuote).join(",") + "]";
  const text =
    '{"v":2' +
    ',"name":' + goQuote(t.name) +
    ',"description":' + goQuote(t.description) +
    ',"params":' + list(t.params) +
    ',"required_params":' + list(t.requiredParams) +
    ',"input_schema":' + goCanonical(t.inputSchema) +
    ',"output_schema":' + (t.outputSchema === undefined ? "null" : goCanonical(t.outputSchema)) +
    ',"auth_provider":' + goQuote(t.authProvider) +
    ',"auth_type":' + goQuote(t.authType) +
    ',"auth_with":' + goQuote(t.authWith) +
    ',"needs_auth_token":' + String(t.needsAuthToken) +
    ',"hints":{' + hints.join(",") + "}" +
    ',"timeout_ms":' + Math.trunc(t.timeoutMs) +
    "}";
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** toolkitHash is the hex sha256 of the tool hashes in tool name order,
 * each followed by a newline. */
export function toolkitHash(tools: readonly Tool[]): string {
  const h = createHash("sha256");
  for (const t of [...tools].sort((a, b) => compareUTF8(a.name, b.name))) h.update(t.hash + "\n");
  return h.digest("hex");
}

// ---- errors, worded as the Go runtime words them ----

/** The call named a tool the toolkit does not have. */
export class UnknownToolError extends Error {
  constructor(readonly tool: string, available: string[]) {
    super(`unknown tool ${JSON.stringify(tool)} (available: ${available.join(", ")})`);
    this.name = "UnknownToolError";
  }
}

/** The tool needs the end user's token and the call has none. */
export class MissingAuthTokenError extends Error {
  constructor(readonly tool: string) {
    super(`tool ${tool} needs the end user's auth token and the call has none: missing auth token`);
    this.name = "MissingAuthTokenError";
  }
}

/** Every problem found in a call's params; the handler was not called. */
export class ValidationError extends Error {
  constructor(readonly tool: string, readonly problems: Problem[]) {
    super(`invalid params${tool ? " for " + tool : ""}: ${problems.map(problemString).join("; ")}`);
    this.name = "ValidationError";
  }
}

/** The handler threw (or rejected). Its message is the tool's. */
export class ToolError extends Error {
  constructor(readonly tool: string, cause: unknown) {
    super(cause instanceof Error ? cause.message : `tool ${tool} failed: ${describeThrown(cause)}`, { cause });
    this.name = "ToolError";
  }
}

/** The call did not finish within its timeout; its signal was aborted. */
export class TimeoutError extends Error {
  constructor(readonly tool: string, readonly timeoutMs: number) {
    super(`tool ${tool} timed out after ${formatGoDuration(timeoutMs)}`);
    this.name = "TimeoutError";
  }
}

function describeThrown(v: unknown): string {
  if (typeof v === "string") return v;
  try {
    return `threw ${inspect(v, { depth: 2, breakLength: Infinity })}`;
  } catch {
    return "threw a value that cannot be printed";
  }
}

/** Options of Toolkit.invoke. */
export interface InvokeOptions {
  requestId?: string;
  transport?: string;
  authToken?: string;
  /** Aborts the call (the handler's signal aborts with its reason). */
  signal?: AbortSignal;
  /** Bound in milliseconds on a call to a tool without a timeout of its
   * own, as the Go runtime's WithCallTimeout: 0 or undefined is the
   * default, which for invoke is no bound (the caller bounds the call
   * with its signal); a negative value is no bound. */
  callTimeout?: number;
  platos?: Record<string, unknown>;
  context?: Record<string, unknown>;
}

/** Toolkit is a named set of tools. */
export class Toolkit {
  private readonly tools = new Map<string, Tool>();
  readonly logger: Logger;

  /** name is the ATP app_name the toolkit registers under. */
  constructor(
    readonly name: string,
    opts: { logger?: Logger } = {},
  ) {
    this.logger = opts.logger ?? consoleLogger();
  }

  /** add adds tools: Tools made with tool() (which types a zod schema's
   * params), or specs with a plain JSON Schema. It adds none of them and
   * throws when a name is invalid or taken. */
  add(...tools: (Tool | ToolSpec<undefined, unknown>)[]): this {
    const built = tools.map((t) => (t instanceof Tool ? t : new Tool(t as ToolSpec<ZodLike | undefined, unknown>)));
    const seen = new Set<string>();
    for (const t of built) {
      if (this.tools.has(t.name) || seen.has(t.name)) throw new TypeError(`toolkit ${this.name}: duplicate tool name ${JSON.stringify(t.name)}`);
      seen.add(t.name);
    }
    for (const t of built) this.tools.set(t.name, t);
    return this;
  }

  /** list returns the tools sorted by name. */
  list(): Tool[] {
    return [...this.tools.values()].sort((a, b) => compareUTF8(a.name, b.name));
  }

  /** serve serves the toolkit to a server: see serve() and ServeOptions. */
  async serve(options: import("./serve.js").ServeOptions): Promise<void> {
    const { serve } = await import("./serve.js");
    return serve(this, options);
  }

  get(name: string): Tool | undefined {
    return this.tools.get(name);
  }

  /** invoke calls the named tool with params (raw JSON text or bytes; empty
   * or null count as {}) and returns its result. It throws an
   * UnknownToolError, MissingAuthTokenError, ValidationError, ToolError,
   * TimeoutError, or the signal's reason. */
  async invoke(name: string, params: string | Uint8Array, opts: InvokeOptions = {}): Promise<unknown> {
    const t = this.tools.get(name);
    if (!t) throw new UnknownToolError(name, this.list().map((x) => x.name));
    if (t.needsAuthToken && !opts.authToken) throw new MissingAuthTokenError(name);
    const problems = t.validator.validate(params, decoderFor());
    if (problems.length > 0) throw new ValidationError(name, problems);
    const text = typeof params === "string" ? params : new TextDecoder().decode(params);
    let value: unknown = text.trim() === "" ? {} : JSON.parse(text);
    if (value === null) value = {};
    if (opts.platos || opts.context) {
      value = { ...(value as object) };
      delete (value as Record<string, unknown>)["__platos"];
      delete (value as Record<string, unknown>)["_context"];
    }
    if (t.zod) {
      const r = t.zod.safeParse(value);
      if (!r.success) throw new ValidationError(name, r.error.issues.map(zodProblem));
      value = r.data;
    }
    const timeoutMs = t.timeoutMs > 0 ? t.timeoutMs : Math.max(opts.callTimeout ?? 0, 0);
    const ctrl = new AbortController();
    const onAbort = () => ctrl.abort(opts.signal!.reason);
    if (opts.signal) {
      if (opts.signal.aborted) throw opts.signal.reason;
      opts.signal.addEventListener("abort", onAbort, { once: true });
    }
    const call: Call = {
      toolkit: this.name,
      tool: name,
      requestId: opts.requestId ?? "",
      transport: opts.transport ?? "invoke",
      authToken: t.needsAuthToken && opts.authToken ? new AuthToken(opts.authToken) : undefined,
      signal: ctrl.signal,
      logger: this.logger,
      ...(opts.platos ? { platos: opts.platos } : {}),
      ...(opts.context ? { context: opts.context } : {}),
    };
    let timer: NodeJS.Timeout | undefined;
    try {
      const run = (async () => t.handler(value as never, call))().catch((e: unknown) => {
        if (ctrl.signal.aborted && e === ctrl.signal.reason) throw e;
        throw new ToolError(name, e);
      });
      // The answer goes out at the deadline or on abort even when the
      // handler ignores its signal.
      const stop = new Promise<never>((_, reject) => {
        ctrl.signal.addEventListener("abort", () => reject(ctrl.signal.reason), { once: true });
        if (timeoutMs > 0) timer = setTimeout(() => ctrl.abort(new TimeoutError(name, timeoutMs)), timeoutMs);
      });
      stop.catch(() => {});
      const result = await Promise.race([run, stop]);
      return result === undefined ? null : result;
    } finally {
      if (timer) clearTimeout(timer);
      opts.signal?.removeEventListener("abort", onAbort);
    }
  }
}

let sharedDecoder: Decoder | undefined;
function decoderFor(): Decoder {
  // Validation is synchronous, so one decoder serves every call.
  return (sharedDecoder ??= new Decoder());
}

function zodProblem(issue: ZodIssueLike): Problem {
  let path = "";
  for (const p of issue.path) {
    if (typeof p === "number") path += `[${p}]`;
    else {
      const k = String(p);
      path = /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? (path === "" ? k : path + "." + k) : path + "[" + JSON.stringify(k) + "]";
    }
  }
  return { path, message: issue.message };
}
