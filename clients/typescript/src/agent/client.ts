// The agent side: a toolkit's tools in a provider's format, and the model's
// tool calls run through an ATP server, over HTTP or one multiplexed
// WebSocket, as atp-go's llmclient does.

import { randomBytes } from "node:crypto";
import WebSocket from "ws";
import { consoleLogger, type Logger, Redactor } from "../log.js";
import { backoffDelay } from "../serve.js";
import { chatShaped, formatToolResults, normalizeProvider, parseToolCalls, type ToolCall, type ToolResult } from "./calls.js";

/** An error the server answered with. */
export class APIError extends Error {
  constructor(
    /** The HTTP status; 0 for an answer on the WebSocket. */
    readonly statusCode: number,
    /** What was asked, e.g. "POST process/" or "get_toolkit_context". */
    readonly endpoint: string,
    /** The server's explanation. */
    readonly detail: string,
  ) {
    super(`${endpoint}${statusCode ? `: ${statusCode}` : ""}${detail ? `: ${detail}` : ""}`);
    this.name = "APIError";
  }
}

/** The WebSocket closed after a task_request was sent and before its
 * answer came. The tool may have run: the call is not sent again. */
export class ConnectionLostError extends Error {
  constructor(why: string) {
    super(`connection to the ATP server lost (${why}): the answer did not come; the tool may have run`);
    this.name = "ConnectionLostError";
  }
}

/** Calls on a closed client. */
export class ClosedError extends Error {
  constructor() {
    super("client is closed");
    this.name = "ClosedError";
  }
}

export interface ClientOptions {
  /** The LLM client key the server gave you. Never in a log or an error. */
  apiKey: string;
  /** The server's base URL (default http://127.0.0.1:7777); a path prefix
   * is kept. */
  baseUrl?: string;
  /** How requests travel, as llmclient.WithTransport: "http" (default;
   * "https" is the same): a POST per request; "ws" ("wss" is the same):
   * one WebSocket, every request multiplexed over it by request_id. The
   * base URL's scheme decides TLS. */
  transport?: "http" | "ws";
  logger?: Logger;
  /** WebSocket reconnects: baseMs (250) doubling to maxMs (10000), with
   * jitter; maxAttempts (6) attempts per request. */
  backoff?: { baseMs?: number; maxMs?: number; jitter?: number; maxAttempts?: number };
}

/** A toolkit's description for one provider. */
export interface ToolkitContext {
  toolkitId: string;
  toolkitName: string;
  caption: string;
  provider: string;
  userPrompt: string;
  /** The provider's own tool list, ready to be the request's tools (for
   * Gemini its functionDeclarations: use requestTools). */
  tools: unknown[];
  /** What goes in the model request's "tools": tools, or for Gemini
   * [{functionDeclarations: tools}]. */
  requestTools(): unknown[];
}

export interface CallOptions {
  /** The end user's token, passed to tools that need one. */
  authToken?: string;
  /** The end user whose stored OAuth token the server injects. */
  externalUserId?: string;
  userPrompt?: string;
  /** Bound on each call in milliseconds, as llmclient.WithCallTimeout: the
   * server is told (timeout_ms; atp serve caps it at its maximum) and the
   * client stops waiting a moment later, for servers that ignore it; a
   * call that times out is a Result whose error says so. 0 or undefined:
   * the server's default (120 s on atp serve). A negative value is
   * refused: the server bounds every routed call. */
  callTimeout?: number;
  /** Run the calls one after another, in order (default: concurrently). */
  sequential?: boolean;
  signal?: AbortSignal;
}

/** One call's outcome. A failure the model should read is a Result with
 * error set, never an exception. */
export interface Result {
  tool: string;
  toolCallId: string;
  /** The result's JSON text; on failure what the server sent as result. */
  value: string;
  error: string;
  problems?: { path: string; message: string }[];
}

const maxParallel = 32;
const localTimeoutGraceMs = 500;
const maxReply = 32 << 20;

export class Client {
  private readonly apiKey: string;
  private readonly base: URL;
  /** The transport in use: "http" or "ws". */
  readonly transport: "http" | "ws";
  private readonly log: Logger;
  private readonly red: Redactor;
  private readonly idPrefix = randomBytes(4).toString("hex");
  private seq = 0;
  private closed = false;
  private readonly closer = new AbortController();
  private ws: WSTransport | null = null;

  constructor(opts: ClientOptions) {
    if (!opts || typeof opts.apiKey !== "string" || opts.apiKey.trim() === "") throw new TypeError("atp client: apiKey is empty: pass the LLM client key the ATP server gave you");
    if (/[\s/]/.test(opts.apiKey)) throw new TypeError("atp client: apiKey contains whitespace or '/': check that it was copied whole and alone");
    this.apiKey = opts.apiKey;
    this.red = new Redactor(opts.apiKey);
    let u: URL;
    try {
      u = new URL((opts.baseUrl ?? "http://127.0.0.1:7777").trim());
    } catch {
      throw new TypeError(`atp client: baseUrl ${JSON.stringify(opts.baseUrl)}: expected an http or https URL, e.g. http://127.0.0.1:7777`);
    }
    if (u.protocol === "ws:") u.protocol = "http:";
    if (u.protocol === "wss:") u.protocol = "https:";
    if (u.protocol !== "http:" && u.protocol !== "https:") throw new TypeError(`atp client: baseUrl ${JSON.stringify(opts.baseUrl)}: expected an http or https URL`);
    if (u.username || u.password) throw new TypeError("atp client: baseUrl must not carry credentials; the API key is passed as apiKey");
    if (u.search || u.hash) throw new TypeError(`atp client: baseUrl ${JSON.stringify(opts.baseUrl)}: expected no query or fragment`);
    u.pathname = u.pathname.replace(/\/+$/, "");
    this.base = u;
    const t = String(opts.transport ?? "http").trim().toLowerCase();
    if (t === "http" || t === "https" || t === "") this.transport = "http";
    else if (t === "ws" || t === "wss") this.transport = "ws";
    else throw new TypeError(`atp client: transport: expected "http" or "ws", got ${JSON.stringify(opts.transport)}`);
    this.log = this.red.logger(opts.logger ?? consoleLogger());
    const b = opts.backoff ?? {};
    if (this.transport === "ws") {
      this.ws = new WSTransport(this, {
        baseMs: b.baseMs || 250, maxMs: b.maxMs || 10_000, jitter: b.jitter === undefined || b.jitter === 0 ? 0.5 : Math.max(0, b.jitter), resetAfterMs: 0,
      }, b.maxAttempts || 6);
    }
  }

  /** close ends the WebSocket and the requests in flight (they fail with
   * ClosedError). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closer.abort(new ClosedError());
    this.ws?.close();
  }

  private nextId(kind: string): string {
    return `${kind}_${this.idPrefix}_${++this.seq}`;
  }

  // internal, for WSTransport
  get key(): string {
    return this.apiKey;
  }
  get logger(): Logger {
    return this.log;
  }
  get redactor(): Redactor {
    return this.red;
  }
  get baseURL(): URL {
    return this.base;
  }
  get closeSignal(): AbortSignal {
    return this.closer.signal;
  }

  private async roundTrip(id: string, msg: string, idempotent: boolean, signal: AbortSignal): Promise<Record<string, unknown>> {
    if (this.closed) throw new ClosedError();
    let text: string;
    if (this.ws) text = await this.ws.roundTrip(id, msg, idempotent, signal);
    else text = await this.post("process/", msg, signal);
    try {
      const v = JSON.parse(text) as unknown;
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw new Error("not an object");
      return v as Record<string, unknown>;
    } catch (e) {
      throw new Error(`the server's answer is not a JSON object: ${(e as Error).message}`);
    }
  }

  private async post(endpoint: string, body: string, signal: AbortSignal): Promise<string> {
    const url = `${this.base.href.replace(/\/$/, "")}/api/v1/atp/llm-client/${endpoint}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { Authorization: "ApiKey " + this.apiKey, Accept: "application/json", "Content-Type": "application/json" },
        body,
        signal: AbortSignal.any([signal, this.closer.signal]),
      });
    } catch (e) {
      if (this.closer.signal.aborted) throw new ClosedError();
      if (signal.aborted) throw signal.reason;
      throw this.red.err(new Error(`POST ${endpoint}: ${describe(e)}`, { cause: e }));
    }
    const text = await res.text();
    if (text.length > maxReply) throw new Error(`POST ${endpoint}: reply larger than ${maxReply} bytes`);
    if (res.status < 200 || res.status > 299) throw new APIError(res.status, "POST " + endpoint, this.red.str(errorMessage(text)));
    return text;
  }

  /** getToolkitContext returns the toolkit's tools in the provider's format
   * (openai, openai-chat, anthropic, mistral, gemini or mcp; aliases such
   * as "mistralai" and "claude" work). */
  async getToolkitContext(toolkitId: string, provider: string, userPrompt = "", opts: { signal?: AbortSignal } = {}): Promise<ToolkitContext> {
    if (!toolkitId) throw new TypeError("get toolkit context: toolkitId is empty: name the toolkit whose tools you want");
    const p = normalizeProvider(provider);
    const id = this.nextId("context");
    const msg = JSON.stringify({ type: "get_toolkit_context", toolkit_id: toolkitId, request_id: id, provider: p, user_prompt: userPrompt, api_key: this.apiKey });
    const op = `get the context of toolkit ${JSON.stringify(toolkitId)}`;
    let m: Record<string, unknown>;
    try {
      m = await this.roundTrip(id, msg, true, opts.signal ?? new AbortController().signal);
    } catch (e) {
      throw wrap(op, e);
    }
    if (m["type"] === "error" || m["status"] === "error") {
      const err = typeof m["error"] === "string" && m["error"] ? (m["error"] as string) : errorMessage(JSON.stringify(m["payload"] ?? ""));
      throw wrap(op, new APIError(0, "get_toolkit_context", this.red.str(err)));
    }
    const payload = m["payload"] as Record<string, unknown> | undefined;
    if (!payload || typeof payload !== "object" || Array.isArray(payload)) throw wrap(op, new Error("payload: expected the toolkit context object"));
    let tools = payload["tools"];
    if (tools === undefined || tools === null) tools = [];
    if (!Array.isArray(tools)) throw wrap(op, new Error("payload.tools: expected an array"));
    const ctx: ToolkitContext = {
      toolkitId: String(payload["toolkit_id"] ?? ""),
      toolkitName: String(payload["toolkit_name"] ?? ""),
      caption: String(payload["caption"] ?? ""),
      provider: String(payload["provider"] ?? p),
      userPrompt: String(payload["user_prompt"] ?? ""),
      tools: tools as unknown[],
      requestTools: () => (normalizeProvider(ctx.provider) === "gemini" ? [{ functionDeclarations: ctx.tools }] : ctx.tools),
    };
    return ctx;
  }

  /** call calls one tool with params (an object, or JSON text). */
  async call(toolkitId: string, tool: string, params: unknown = {}, opts: CallOptions = {}): Promise<Result> {
    if (!toolkitId) throw new TypeError("call: toolkitId is empty: name the toolkit to call");
    if (!tool) throw new TypeError("call: tool is empty: name the tool to call");
    const text = typeof params === "string" ? (params.trim() === "" ? "{}" : params) : JSON.stringify(params ?? {});
    try {
      return await this.callOne(toolkitId, tool, "", text, opts);
    } catch (e) {
      throw wrap(`call ${tool} of toolkit ${JSON.stringify(toolkitId)}`, e);
    }
  }

  private async callOne(toolkitId: string, tool: string, toolCallId: string, params: string, o: CallOptions): Promise<Result> {
    const timeout = o.callTimeout ?? 0;
    if (typeof timeout !== "number" || !(timeout >= 0)) {
      throw new TypeError(`callTimeout: expected a positive number of milliseconds or 0 for the server's default, got ${String(o.callTimeout)}`);
    }
    const id = this.nextId("task");
    const token = o.authToken ? JSON.stringify(o.authToken) : "null";
    const msg =
      `{"type":"task_request","request_id":${JSON.stringify(id)},"toolkit_id":${JSON.stringify(toolkitId)},"auth_token":${token}` +
      `,"user_prompt":${o.userPrompt ? JSON.stringify(o.userPrompt) : "null"},"api_key":${JSON.stringify(this.apiKey)}` +
      (o.externalUserId ? `,"external_user_id":${JSON.stringify(o.externalUserId)}` : "") +
      (timeout > 0 ? `,"timeout_ms":${Math.max(1, Math.ceil(timeout))}` : "") +
      `,"payload":{"function":${JSON.stringify(tool)},"parameters":${params},"auth_token":${token}${toolCallId ? `,"tool_call_id":${JSON.stringify(toolCallId)}` : ""}}}`;
    const signals = [o.signal ?? new AbortController().signal];
    let local: AbortSignal | undefined;
    if (timeout > 0) {
      local = AbortSignal.timeout(timeout + localTimeoutGraceMs);
      signals.push(local);
    }
    let m: Record<string, unknown>;
    try {
      m = await this.roundTrip(id, msg, false, AbortSignal.any(signals));
    } catch (e) {
      if (local?.aborted && !o.signal?.aborted) {
        const text = `the call to ${tool} got no answer within ${timeout}ms`;
        return { tool, toolCallId, value: JSON.stringify({ error: text }), error: text };
      }
      throw e;
    }
    if (m["type"] === "error") throw new APIError(0, "task_request", this.red.str(String(m["error"] ?? "")));
    const r: Result = { tool, toolCallId, value: "null", error: "" };
    if (Array.isArray(m["problems"])) r.problems = m["problems"] as Result["problems"];
    const result = m["result"] as Record<string, unknown> | undefined;
    const wrapped = result && typeof result === "object" && !Array.isArray(result) ? (result["tool"] as Record<string, unknown> | undefined) : undefined;
    const payload = m["payload"] as Record<string, unknown> | undefined;
    let value: unknown;
    if (wrapped && typeof wrapped === "object" && "result" in wrapped) value = wrapped["result"];
    else if (payload && typeof payload === "object" && "result" in payload) value = payload["result"];
    else value = result;
    r.value = value === undefined ? "null" : JSON.stringify(value);
    if (m["status"] === "error") {
      r.error = typeof m["message"] === "string" ? (m["message"] as string) : "";
      if (r.error === "" && value && typeof value === "object" && typeof (value as Record<string, unknown>)["error"] === "string") r.error = (value as Record<string, string>)["error"]!;
      if (r.error === "") r.error = `the call to ${tool} failed without a message`;
    }
    return r;
  }

  /** runCalls runs parsed tool calls and returns their results in order. */
  async runCalls(toolkitId: string, calls: ToolCall[], opts: CallOptions = {}): Promise<Result[]> {
    const results: Result[] = new Array(calls.length);
    const send: number[] = [];
    calls.forEach((c, i) => {
      if (c.error !== undefined) results[i] = { tool: c.name, toolCallId: c.id, value: JSON.stringify({ error: c.error }), error: c.error };
      else send.push(i);
    });
    if (opts.sequential || send.length <= 1) {
      for (const i of send) results[i] = await this.callOne(toolkitId, calls[i]!.name, calls[i]!.id, calls[i]!.arguments, opts);
      return results;
    }
    const batch = new AbortController();
    const signal = opts.signal ? AbortSignal.any([opts.signal, batch.signal]) : batch.signal;
    let next = 0;
    let firstError: unknown = null;
    const worker = async () => {
      while (next < send.length && firstError === null) {
        const i = send[next++]!;
        const c = calls[i]!;
        try {
          results[i] = await this.callOne(toolkitId, c.name, c.id, c.arguments, { ...opts, signal });
        } catch (e) {
          if (firstError === null) firstError = new Error(`calls[${i}] (${c.name}, id ${JSON.stringify(c.id)}): ${(e as Error).message}`, { cause: e });
          batch.abort(firstError);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(maxParallel, send.length) }, worker));
    if (firstError !== null) throw firstError;
    return results;
  }

  /** callTools runs the tool calls a model returned (its output in the
   * provider's own shape: a response, a message, a content array, tool
   * call entries; a value or JSON text) and returns the messages to append
   * to the conversation, in order, each echoing its call's id. A failed
   * call stays readable by the model (is_error for Anthropic, {"error": ...}
   * elsewhere); an exception means the calls got no answer. */
  async callTools(toolkitId: string, provider: string, modelOutput: unknown, opts: CallOptions = {}): Promise<unknown[]> {
    const op = `call tools of toolkit ${JSON.stringify(toolkitId)}`;
    if (!toolkitId) throw new TypeError(`${op}: toolkitId is empty: name the toolkit to call`);
    let p: ReturnType<typeof normalizeProvider>;
    let calls: ToolCall[];
    try {
      p = normalizeProvider(provider);
      calls = parseToolCalls(p, modelOutput);
    } catch (e) {
      throw wrap(op, e);
    }
    let results: Result[];
    try {
      results = await this.runCalls(toolkitId, calls, opts);
    } catch (e) {
      throw wrap(`run tool calls of toolkit ${JSON.stringify(toolkitId)}`, e);
    }
    const out: ToolResult[] = calls.map((c, i) => ({ call: c, result: results[i]!.value, isError: results[i]!.error !== "", error: results[i]!.error }));
    const format = p === "openai" && chatShaped(modelOutput) ? "openai-chat" : p;
    return formatToolResults(format, out);
  }
}

function wrap(op: string, e: unknown): Error {
  if (e instanceof ClosedError) return e;
  const err = e instanceof Error ? e : new Error(String(e));
  const out = new Error(`atp client: ${op}: ${err.message}`, { cause: err });
  out.name = err.name === "Error" ? "Error" : err.name;
  return out;
}

function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  const c = e.cause as NodeJS.ErrnoException | undefined;
  return c instanceof Error ? `${e.message}: ${c.code ?? ""} ${c.message}`.replace(/\s+/g, " ") : e.message;
}

/** errorMessage takes the explanation from an error body. */
function errorMessage(body: string): string {
  try {
    const m = JSON.parse(body) as Record<string, unknown>;
    for (const k of ["error", "detail", "message"]) if (typeof m[k] === "string" && m[k] !== "") return m[k] as string;
  } catch {
    /* not JSON */
  }
  const t = body.trim();
  return t.length > 300 ? t.slice(0, 300) + "..." : t;
}

// ---- the WebSocket transport ----

interface Pending {
  resolve: (text: string) => void;
  reject: (e: Error) => void;
}

class WSConn {
  readonly pending = new Map<string, Pending>();
  dead = false;
  cause: Error | null = null;
  constructor(readonly ws: WebSocket) {}
}

class WSTransport {
  private conn: WSConn | null = null;
  private dialing: Promise<WSConn> | null = null;
  private failures = 0;
  private retryAt = 0;
  private readonly url: string;
  private readonly display: string;
  private inFlight = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly c: Client,
    private readonly backoff: { baseMs: number; maxMs: number; jitter: number; resetAfterMs: number },
    private readonly maxAttempts: number,
  ) {
    const b = new URL(c.baseURL.href);
    b.protocol = b.protocol === "https:" ? "wss:" : "ws:";
    const prefix = b.href.replace(/\/$/, "") + "/ws/v1/atp/llm-client/";
    this.url = prefix + encodeURIComponent(c.key) + "/";
    this.display = prefix + "[REDACTED]/";
  }

  close(): void {
    const conn = this.conn;
    this.conn = null;
    if (conn) this.retire(conn, new ClosedError());
  }

  async roundTrip(id: string, msg: string, idempotent: boolean, signal: AbortSignal): Promise<string> {
    // Below the server's own bound on requests per connection.
    if (this.inFlight >= 192) await new Promise<void>((r) => this.waiters.push(r));
    this.inFlight++;
    try {
      for (let attempt = 1; ; attempt++) {
        const conn = await this.get(signal);
        try {
          return await this.send(conn, id, msg, signal);
        } catch (e) {
          const again = attempt < this.maxAttempts && !signal.aborted && !this.c.closeSignal.aborted;
          if (again && (e instanceof NotSent || (idempotent && e instanceof ConnectionLostError))) continue;
          throw e;
        }
      }
    } finally {
      this.inFlight--;
      this.waiters.shift()?.();
    }
  }

  private send(conn: WSConn, id: string, msg: string, signal: AbortSignal): Promise<string> {
    return new Promise((resolve, reject) => {
      if (conn.dead || conn.ws.readyState !== WebSocket.OPEN) return reject(new NotSent());
      if (conn.pending.has(id)) return reject(new Error(`request_id ${JSON.stringify(id)} is already waiting for an answer`));
      const onAbort = () => {
        conn.pending.delete(id);
        reject(signal.reason instanceof Error ? signal.reason : new Error("aborted"));
      };
      signal.addEventListener("abort", onAbort, { once: true });
      conn.pending.set(id, {
        resolve: (t) => {
          signal.removeEventListener("abort", onAbort);
          resolve(t);
        },
        reject: (e) => {
          signal.removeEventListener("abort", onAbort);
          reject(e);
        },
      });
      conn.ws.send(msg, (err) => {
        if (err) {
          conn.pending.delete(id);
          signal.removeEventListener("abort", onAbort);
          reject(new NotSent());
          this.retire(conn, new Error(`write failed: ${err.message}`));
        }
      });
    });
  }

  private async get(signal: AbortSignal): Promise<WSConn> {
    let failed = 0;
    for (;;) {
      if (this.c.closeSignal.aborted) throw new ClosedError();
      if (this.conn && !this.conn.dead) return this.conn;
      if (!this.dialing) {
        const wait = this.retryAt - Date.now();
        if (wait > 0) {
          await sleep(wait, AbortSignal.any([signal, this.c.closeSignal]));
          continue;
        }
        this.dialing = this.dial().finally(() => (this.dialing = null));
        this.dialing.catch(() => {});
      }
      try {
        const conn = await raceSignal(this.dialing, signal);
        return conn;
      } catch (e) {
        if (signal.aborted) throw e;
        failed++;
        if (e instanceof PermanentRefusal || e instanceof ClosedError) throw e instanceof PermanentRefusal ? e.inner : e;
        if (failed >= this.maxAttempts) throw new Error(`${(e as Error).message} (gave up after ${failed} attempts)`);
      }
    }
  }

  private async dial(): Promise<WSConn> {
    try {
      const conn = await this.connect();
      if (this.c.closeSignal.aborted) {
        conn.ws.terminate();
        throw new ClosedError();
      }
      this.conn = conn;
      this.failures = 0;
      this.retryAt = 0;
      this.c.logger.info("atp client: connected", { url: this.display });
      return conn;
    } catch (e) {
      if (!(e instanceof ClosedError)) {
        this.failures++;
        const wait = backoffDelay(this.backoff, this.failures, Math.random);
        this.retryAt = Date.now() + wait;
        this.c.logger.warn("atp client: connecting to the ATP server failed", { url: this.display, attempt: this.failures, next_attempt_in_ms: wait, err: (e as Error).message });
      }
      throw e;
    }
  }

  private connect(): Promise<WSConn> {
    const red = this.c.redactor;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.url, { handshakeTimeout: 15_000, maxPayload: maxReply, perMessageDeflate: false });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`${this.display}: no auth_response within 15s`));
      }, 15_000);
      const onClose = () => {
        clearTimeout(timer);
        ws.terminate();
        reject(new ClosedError());
      };
      this.c.closeSignal.addEventListener("abort", onClose, { once: true });
      const settle = () => {
        clearTimeout(timer);
        this.c.closeSignal.removeEventListener("abort", onClose);
      };
      ws.once("unexpected-response", (_req, res) => {
        const chunks: Buffer[] = [];
        res.on("data", (b: Buffer) => chunks.push(b));
        res.on("end", () => {
          settle();
          const status = res.statusCode ?? 0;
          const err = new APIError(status, `connect to ${this.display}`, red.str(errorMessage(Buffer.concat(chunks).toString("utf8"))));
          reject(status >= 400 && status < 500 && status !== 408 && status !== 429 ? new PermanentRefusal(err) : err);
          ws.terminate();
        });
      });
      ws.once("error", (e) => {
        settle();
        reject(red.err(new Error(`connect to ${this.display}: ${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`.replace(/\s+/g, " "))));
      });
      ws.once("open", () => ws.send(JSON.stringify({ type: "auth", api_key: this.c.key })));
      const onAuth = (data: Buffer) => {
        let m: Record<string, unknown>;
        try {
          m = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
        } catch {
          return;
        }
        if (m["type"] !== "auth_response") return;
        ws.off("message", onAuth);
        settle();
        if (m["success"] !== true) {
          ws.terminate();
          reject(new PermanentRefusal(new APIError(0, "auth", red.str(String(m["error"] || "authentication failed without a reason")))));
          return;
        }
        const conn = new WSConn(ws);
        this.serveConn(conn);
        resolve(conn);
      };
      ws.on("message", onAuth);
    });
  }

  private serveConn(conn: WSConn): void {
    const ws = conn.ws;
    let lastSeen = Date.now();
    ws.on("message", (data: Buffer) => {
      lastSeen = Date.now();
      let m: Record<string, unknown>;
      try {
        m = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      } catch {
        this.c.logger.warn("atp client: ignoring a message that is not a JSON object", { bytes: data.length });
        return;
      }
      const rid = m["request_id"];
      const id = typeof rid === "string" ? rid : JSON.stringify(rid);
      const p = conn.pending.get(id);
      if (p) {
        conn.pending.delete(id);
        p.resolve(data.toString("utf8"));
      } else if (m["type"] === "error") {
        this.c.logger.warn("atp client: the server reported an error", { request_id: id, error: this.c.redactor.str(String(m["error"] ?? "")) });
      }
    });
    ws.on("pong", () => (lastSeen = Date.now()));
    ws.on("ping", () => (lastSeen = Date.now()));
    ws.on("error", () => {});
    const pinger = setInterval(() => {
      if (Date.now() - lastSeen > 50_000) ws.terminate();
      else if (ws.readyState === WebSocket.OPEN) ws.ping();
    }, 30_000);
    pinger.unref();
    ws.once("close", (code, reason) => {
      clearInterval(pinger);
      const why = conn.cause ? conn.cause.message : `closed by the server with status ${code}${reason.length ? ": " + reason.toString("utf8") : ""}`;
      this.finish(conn, conn.cause instanceof ClosedError ? conn.cause : new ConnectionLostError(why));
    });
  }

  private retire(conn: WSConn, cause: Error): void {
    conn.cause ??= cause;
    conn.dead = true;
    try {
      conn.ws.close(1000);
    } catch {
      conn.ws.terminate();
    }
    setTimeout(() => conn.ws.terminate(), 1000).unref();
    this.finish(conn, cause instanceof ClosedError ? cause : new ConnectionLostError(cause.message));
  }

  private finish(conn: WSConn, err: Error): void {
    conn.dead = true;
    if (this.conn === conn) this.conn = null;
    const pending = [...conn.pending.values()];
    conn.pending.clear();
    if (pending.length > 0 && !(err instanceof ClosedError)) this.c.logger.warn("atp client: connection to the ATP server lost", { url: this.display, cause: err.message, requests_failed: pending.length });
    for (const p of pending) p.reject(err);
  }
}

class NotSent extends Error {
  constructor() {
    super("the WebSocket closed before the message was sent");
  }
}

class PermanentRefusal extends Error {
  constructor(readonly inner: Error) {
    super(inner.message);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(t);
      reject(signal.reason);
    }, { once: true });
  });
}

function raceSignal<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
