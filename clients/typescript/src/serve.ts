// serve: registration, the reconnect loop and what every transport shares
// (running a call with a bound on calls in flight, answering it exactly
// once, wording failures). The transports are in ws.ts, inbox.ts and
// platools.ts.

import { Decoder, type Problem } from "./decoder.js";
import { consoleLogger, formatGoDuration, type Logger, Redactor } from "./log.js";
import { TimeoutError, ToolError, type Toolkit, ValidationError } from "./toolkit.js";

/** The reconnect policy: after the n-th failed attempt in a row the next
 * waits baseMs·2^(n-1), capped at maxMs, with the fraction jitter of it
 * random ("equal jitter" at 0.5: between d/2 and d). A session that stayed
 * up resetAfterMs counts as healthy: after it the delays start again. */
export interface Backoff {
  baseMs?: number;
  maxMs?: number;
  jitter?: number;
  resetAfterMs?: number;
}

/** A connection state change, for onState. */
export interface State {
  kind: "connected" | "disconnected" | "reconnecting";
  /** Why the session ended or the attempt failed (never holds the key). */
  reason?: Error;
  /** The delay before the next attempt, and its number (from 2). */
  inMs?: number;
  attempt?: number;
}

/** The time source of the waits serve makes (backoff, poll pauses, the
 * healthy-session measure); tests swap it. Network deadlines use real time. */
export interface Clock {
  now(): number;
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export interface ServeOptions {
  /** The server's base URL: http, https, ws or wss; a path prefix and a
   * query are kept. */
  url: string;
  /** The toolkit's API key (for "platools": the service secret). It is
   * never in a log line or an error. */
  apiKey: string;
  /** "ws" (default): ATP v1 over WebSocket; "http": the HTTP inbox with
   * the long-poll extension; "platools": the Platools SDK wire. */
  transport?: "ws" | "http" | "platools";
  /** Aborting it drains: new calls are refused, running ones get
   * drainTimeoutMs to finish and be answered, then the connection closes
   * and serve resolves. */
  signal?: AbortSignal;
  logger?: Logger;
  onState?: (s: State) => void;
  /** Calls running at once (default 64); more wait, none is dropped. */
  maxInFlight?: number;
  /** Bound on a call to a tool without a timeout of its own, in
   * milliseconds, as runtime.ServeConfig.CallTimeout: 0 or undefined is
   * the default (60000), a negative value no bound. */
  callTimeout?: number;
  /** Largest request accepted, in bytes (default 4 MiB). A larger one is
   * answered with an error when its request id comes before the cut; a
   * WebSocket message over 4 times this (at least 32 MiB) drops the
   * connection. */
  readLimit?: number;
  /** WebSocket keepalive period (default 30000); nothing received for
   * pingIntervalMs + pongTimeoutMs (default 20000) drops the connection. */
  pingIntervalMs?: number;
  pongTimeoutMs?: number;
  /** Bound on the graceful shutdown (default 10000). */
  drainTimeoutMs?: number;
  backoff?: Backoff;
  /** Failed attempts in a row before serve gives up (default 0: never). */
  maxAttempts?: number;
  /** HTTP inbox: pause after an empty poll from a server that does not hold
   * polls (default 1000), and the wait asked of one that does, in whole
   * seconds (default 25; 0 turns the long-poll off). */
  pollIntervalMs?: number;
  inboxWaitSeconds?: number;
  /** Platools: heartbeat period (default 30000). */
  heartbeatIntervalMs?: number;
  /** For tests: the clock and the random source of the jitter. */
  clock?: Clock;
  random?: () => number;
}

export interface ResolvedOptions {
  url: string;
  apiKey: string;
  transport: "ws" | "http" | "platools";
  signal: AbortSignal;
  logger: Logger;
  onState: (s: State) => void;
  maxInFlight: number;
  /** The bound in milliseconds; 0: none. */
  callTimeout: number;
  readLimit: number;
  pingIntervalMs: number;
  pongTimeoutMs: number;
  drainTimeoutMs: number;
  backoff: Required<Backoff>;
  maxAttempts: number;
  pollIntervalMs: number;
  inboxWaitSeconds: number;
  heartbeatIntervalMs: number;
  clock: Clock;
  random: () => number;
}

/** Thrown by serve for a refusal that retrying cannot fix. */
export class PermanentError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "PermanentError";
  }
}

/** The end of a session that must not be retried, and is no failure:
 * serve resolves (Platools' "superseded by new connection"). */
export class SteppedAside extends Error {}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const t = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      }, Math.max(0, ms));
      const onAbort = () => {
        clearTimeout(t);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
    }),
};

/** backoffDelay is the wait after the n-th failure in a row (n >= 1). */
export function backoffDelay(b: Required<Backoff>, n: number, rnd: () => number): number {
  let d = b.baseMs;
  for (let i = 1; i < n && d < b.maxMs; i++) d *= 2;
  d = Math.min(d, b.maxMs);
  if (b.jitter === 0) return d;
  const fixed = Math.trunc(d * (1 - b.jitter));
  return fixed + Math.trunc(rnd() * (d - fixed));
}

function resolve(tk: Toolkit, o: ServeOptions): ResolvedOptions {
  const fail = (msg: string) => new TypeError(`serve toolkit ${tk.name}: ${msg}`);
  if (!o || typeof o !== "object") throw fail("options: expected an object with url and apiKey");
  // The Platools SDKs read these from the environment: say which variable
  // was left empty, as the Go runtime does.
  const platos = o.transport === "platools";
  if (!o.apiKey) throw fail(platos ? "apiKey is empty: set it to the Platos service secret (PLATOS_SECRET)" : "apiKey is empty");
  const red = new Redactor(o.apiKey);
  if (!o.url) throw fail(platos ? "url is empty: set it to the Platos platform's URL (PLATOS_URL)" : "url is empty");
  let u: URL;
  try {
    u = new URL(o.url);
  } catch {
    throw fail(red.str(`url ${JSON.stringify(o.url)} is not a URL with a scheme: expected http://, https://, ws:// or wss://`));
  }
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) throw fail(`url: scheme ${JSON.stringify(u.protocol.slice(0, -1))} not supported: expected http, https, ws or wss`);
  if (u.username || u.password) throw fail("url must not hold a user name or password; the API key authenticates");
  const transport = o.transport ?? "ws";
  if (!["ws", "http", "platools"].includes(transport)) throw fail(`transport: expected "ws", "http" or "platools", got ${JSON.stringify(transport)}`);
  if (tk.list().length === 0) throw fail("the toolkit has no tools; add them before serve");
  const num = (name: keyof ServeOptions, def: number, allowNegative = false): number => {
    const v = o[name];
    if (v === undefined || v === 0) return def;
    if (typeof v !== "number" || Number.isNaN(v) || (!allowNegative && v < 0)) throw fail(`${name}: expected a positive number or 0 for the default, got ${String(v)}`);
    return v;
  };
  const b = o.backoff ?? {};
  const baseMs = b.baseMs || 1000;
  const maxMs = b.maxMs || Math.max(60_000, baseMs);
  if (baseMs < 0) throw fail(`backoff.baseMs: expected a positive number or 0 for the default, got ${baseMs}`);
  if (maxMs < 0) throw fail(`backoff.maxMs: expected a positive number or 0 for the default, got ${maxMs}`);
  if (maxMs < baseMs) throw fail(`backoff.maxMs (${maxMs}) is less than backoff.baseMs (${baseMs})`);
  if ((b.jitter ?? 0) > 1) throw fail(`backoff.jitter: expected a fraction at most 1, got ${b.jitter}`);
  const jitter = b.jitter === undefined || b.jitter === 0 ? 0.5 : b.jitter < 0 ? 0 : b.jitter;
  const inboxWait = o.inboxWaitSeconds ?? 25;
  if (!Number.isInteger(inboxWait)) throw fail(`inboxWaitSeconds: expected whole seconds, got ${inboxWait}`);
  const ct = o.callTimeout ?? 0;
  if (typeof ct !== "number" || Number.isNaN(ct)) throw fail(`callTimeout: expected milliseconds, 0 for the default or negative for no bound, got ${String(ct)}`);
  return {
    url: o.url,
    apiKey: o.apiKey,
    transport,
    signal: o.signal ?? new AbortController().signal,
    logger: red.logger(o.logger ?? tk.logger ?? consoleLogger(), { toolkit: tk.name, transport }),
    onState: o.onState ?? (() => {}),
    maxInFlight: num("maxInFlight", 64),
    callTimeout: ct === 0 ? 60_000 : Math.max(ct, 0),
    readLimit: num("readLimit", 4 << 20),
    pingIntervalMs: num("pingIntervalMs", 30_000),
    pongTimeoutMs: num("pongTimeoutMs", 20_000),
    drainTimeoutMs: num("drainTimeoutMs", 10_000),
    backoff: { baseMs, maxMs, jitter, resetAfterMs: b.resetAfterMs || 30_000 },
    maxAttempts: num("maxAttempts", 0),
    pollIntervalMs: num("pollIntervalMs", 1000),
    inboxWaitSeconds: Math.max(0, inboxWait),
    heartbeatIntervalMs: num("heartbeatIntervalMs", 30_000),
    clock: o.clock ?? realClock,
    random: o.random ?? Math.random,
  };
}

/** Endpoints of one ATP server for one key (URL forms as the Go runtime
 * builds them). */
export class Endpoints {
  readonly httpBase: string;
  readonly wsBase: string;
  readonly query: string;
  readonly key: string;

  constructor(raw: string, key: string) {
    const u = new URL(raw);
    const secure = u.protocol === "https:" || u.protocol === "wss:";
    const prefix = u.pathname.replace(/\/+$/, "");
    this.httpBase = (secure ? "https://" : "http://") + u.host + prefix;
    this.wsBase = (secure ? "wss://" : "ws://") + u.host + prefix;
    this.query = u.search;
    this.key = goPathEscape(key);
  }
  api(path: string): string {
    return this.httpBase + path + this.query;
  }
  ws(): string {
    return this.wsBase + "/ws/v1/atp/toolkit-client/" + this.key + "/" + this.query;
  }
  inbox(waitSeconds: number): string {
    let u = this.httpBase + "/api/v1/toolkit/" + this.key + "/inbox" + this.query;
    if (waitSeconds > 0) u += (this.query === "" ? "?" : "&") + "wait=" + waitSeconds;
    return u;
  }
  inboxRespond(): string {
    return this.httpBase + "/api/v1/toolkit/" + this.key + "/inbox/respond" + this.query;
  }
  inboxRelease(): string {
    return this.httpBase + "/api/v1/toolkit/" + this.key + "/inbox/release" + this.query;
  }
}

/** Go's url.PathEscape. */
export function goPathEscape(s: string): string {
  let out = "";
  for (const byte of Buffer.from(s, "utf8")) {
    const c = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~$&+:=@]/.test(c)) out += c;
    else out += "%" + byte.toString(16).toUpperCase().padStart(2, "0");
  }
  return out;
}

/** quoteBody returns a reply body fit for one line: trimmed, cut at 512
 * characters, whitespace runs as one space. */
export function quoteBody(body: string): string {
  let s = body.trim();
  if (s === "") return "(empty body)";
  if (s.length > 512) s = s.slice(0, 512) + "…";
  return s.split(/\s+/).join(" ");
}

const statusText: Record<number, string> = {
  400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 408: "Request Timeout",
  409: "Conflict", 410: "Gone", 413: "Request Entity Too Large", 422: "Unprocessable Entity", 429: "Too Many Requests",
  500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
};

export function statusLine(status: number): string {
  return `${status} ${statusText[status] ?? ""}`.trim();
}

/** refusal describes a non-2xx reply; 408, 429 and 5xx may pass, any other
 * status is permanent. */
export function refusal(op: string, status: number, body: string): Error {
  const msg = `${op}: the server answered ${statusLine(status)}: ${quoteBody(body)}`;
  if (status === 408 || status === 429 || status >= 500) return new Error(msg);
  return new PermanentError(msg);
}

/** A request from the server, on any transport. */
export interface Request {
  /** The request id as JSON text, echoed as received. */
  idText: string;
  tool: string;
  /** The params as received: bytes where the transport has them, so that
   * the validator sees text that is not UTF-8 as the Go decoders do. */
  params: Uint8Array | string;
  authToken: string;
  received: number;
  platos?: Record<string, unknown>;
  context?: Record<string, unknown>;
}

/** idString is the request id for Call.requestId and logs: a string id
 * unquoted, any other as its JSON text. */
export function idString(idText: string): string {
  if (idText.startsWith('"')) {
    try {
      return JSON.parse(idText) as string;
    } catch {
      return idText;
    }
  }
  return idText;
}

export const errShuttingDown = "the toolkit is shutting down; the call was not run";
export const errConnectionLost = "the connection to the ATP server was lost";
export const errDrainTimeout = "the toolkit's shutdown deadline passed";

/** An answer to a request: the result's JSON text, and whether it is an
 * error result. */
export interface Answer {
  result: string;
  isError: boolean;
  /** The stack of an error the handler threw (key redacted), for the
   * transports that carry one (Platools' tool_error.traceback). */
  traceback?: string;
  /** toolFault: the outcome says something about the tool itself (a
   * result, an error it threw, a timeout), as opposed to a call refused
   * before it ran or cut short by the toolkit. Only those count in the
   * Platools heartbeat's health. */
  toolFault?: boolean;
}

/** Slots bounds the calls running at once; waiters are served in order. */
export class Slots {
  private used = 0;
  private readonly waiters: (() => void)[] = [];
  constructor(readonly max: number) {}
  get inUse(): number {
    return this.used;
  }
  tryTake(): boolean {
    if (this.used < this.max) {
      this.used++;
      return true;
    }
    return false;
  }
  take(): Promise<void> {
    if (this.tryTake()) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.used--;
  }
}

/** Runner runs calls for one serve: it owns the bound on calls in flight
 * and words every outcome. */
export class Runner {
  readonly slots: Slots;
  readonly red: Redactor;
  constructor(
    readonly tk: Toolkit,
    readonly o: ResolvedOptions,
  ) {
    this.slots = new Slots(o.maxInFlight);
    this.red = new Redactor(o.apiKey);
  }

  /** run calls the tool and resolves with its answer; it never rejects.
   * signal ends the call early (connection lost, drain deadline) and its
   * reason, an Error, says why. */
  async run(req: Request, transport: string, signal: AbortSignal): Promise<Answer> {
    try {
      const res = await this.tk.invoke(req.tool, req.params, {
        requestId: idString(req.idText),
        transport,
        authToken: req.authToken,
        signal,
        callTimeout: this.o.callTimeout > 0 ? this.o.callTimeout : -1,
        ...(req.platos ? { platos: req.platos } : {}),
        ...(req.context ? { context: req.context } : {}),
      });
      let text: string | undefined;
      try {
        text = JSON.stringify(res);
      } catch (e) {
        return this.errorAnswer(new Error(`encode result as JSON: ${(e as Error).message}`));
      }
      return { result: text ?? "null", isError: false, toolFault: true };
    } catch (e) {
      let err = e instanceof Error ? e : new Error(String(e));
      if (signal.aborted && e === signal.reason && !(e instanceof TimeoutError)) {
        err = new Error(`call to ${req.tool} cancelled: ${err.message}`);
      }
      const a = this.errorAnswer(err);
      if (e instanceof ToolError && e.cause instanceof Error && e.cause.stack) a.traceback = this.red.str(e.cause.stack);
      if (e instanceof ToolError || e instanceof TimeoutError) a.toolFault = true;
      return a;
    }
  }

  /** errorAnswer is the in-band failure result {"error": msg}, with the
   * problem list of invalid params. */
  errorAnswer(err: Error): Answer {
    const body: { error: string; problems?: Problem[] } = { error: this.red.str(err.message) };
    if (err instanceof ValidationError) body.problems = err.problems;
    return { result: JSON.stringify(body), isError: true };
  }
}

/** A session of one transport: connect, serve until it ends, drain. */
export interface Transport {
  /** session runs one connection; it resolves with when it went up (0 if
   * it never did) and why it ended; on abort of o.signal it drains and
   * resolves. */
  session(): Promise<{ connectedAt: number; reason: Error | null }>;
  /** stop is called once when serve returns (after a drain). */
  stop?(): Promise<void>;
}

/** serve registers the toolkit and answers the server's calls until
 * options.signal aborts, reconnecting with backoff; see ServeOptions. It
 * resolves after a graceful drain, and rejects (with the key redacted) when
 * the options are invalid, when the server refuses the toolkit or its key
 * (not retried), or after maxAttempts failed attempts in a row. */
export async function serve(tk: Toolkit, options: ServeOptions): Promise<void> {
  const o = resolve(tk, options);
  const runner = new Runner(tk, o);
  const { makeTransport } = await import("./transports.js");
  const t = makeTransport(tk, o, runner);
  const log = o.logger;
  const red = runner.red;
  log.info("atp: serving toolkit", { tools: tk.list().length });
  let failures = 0;
  let online = false;
  const setState = (s: State) => {
    online = s.kind === "connected";
    try {
      o.onState(s);
    } catch (e) {
      log.warn("atp: onState threw", { err: e as Error });
    }
  };
  (t as { setState?: (s: State) => void }).setState = setState;
  try {
    for (;;) {
      let connectedAt = 0;
      let reason: Error | null = null;
      try {
        ({ connectedAt, reason } = await t.session());
      } catch (e) {
        reason = e instanceof Error ? e : new Error(String(e));
      }
      if (o.signal.aborted) {
        if (online) setState({ kind: "disconnected", reason: o.signal.reason instanceof Error ? o.signal.reason : new Error("aborted") });
        log.info("atp: stopped");
        return;
      }
      if (reason instanceof SteppedAside) {
        log.warn("atp: " + reason.message);
        if (online) setState({ kind: "disconnected", reason });
        return;
      }
      const permanent = reason instanceof PermanentError;
      const err = red.err(reason ?? new Error("the session ended"));
      if (online) {
        log.warn("atp: disconnected", { reason: err.message });
        setState({ kind: "disconnected", reason: err });
      }
      if (permanent) {
        log.error("atp: the server refused the toolkit; not retrying", { err: err.message });
        throw new PermanentError(`serve toolkit ${tk.name}: ${err.message}`, { cause: err });
      }
      if (connectedAt > 0 && o.clock.now() - connectedAt >= o.backoff.resetAfterMs) failures = 0;
      failures++;
      if (o.maxAttempts > 0 && failures >= o.maxAttempts) {
        log.error("atp: giving up", { attempts: failures, err: err.message });
        throw new Error(`serve toolkit ${tk.name}: gave up after ${failures} failed attempts in a row: ${err.message}`, { cause: err });
      }
      const delay = backoffDelay(o.backoff, failures, o.random);
      log.warn("atp: reconnecting", { attempt: failures + 1, in: formatGoDuration(delay), reason: err.message });
      setState({ kind: "reconnecting", reason: err, inMs: delay, attempt: failures + 1 });
      try {
        await o.clock.sleep(delay, o.signal);
      } catch {
        log.info("atp: stopped");
        return;
      }
    }
  } finally {
    await t.stop?.();
  }
}

/** parseFrame reads an ATP v1 server frame with the Decoder, as the Go
 * runtime does: problems are worded like params problems
 * ("payload.tool_name: expected string, got 7"); unknown members are
 * skipped. The params are kept as bytes (a copy), for their own decoder,
 * which reports invalid UTF-8 in them at their path: the envelope is read
 * leniently. */
export function parseFrame(d: Decoder, data: Uint8Array): {
  messageType: string;
  idText: string | null;
  tool: string;
  params: Uint8Array | null;
  authToken: string;
  message: string;
  problems: Problem[];
} {
  const f = { messageType: "", idText: null as string | null, tool: "", params: null as Uint8Array | null, authToken: "", message: "", problems: [] as Problem[] };
  d.reset(data.length === 0 ? " " : data);
  d.setLenientUTF8(true);
  if (d.object()) {
    while (d.next()) {
      switch (d.key()) {
        case "message_type":
          f.messageType = d.string();
          break;
        case "payload":
          if (d.null() || !d.object()) break;
          while (d.next()) {
            switch (d.key()) {
              case "request_id":
                f.idText = d.raw();
                break;
              case "tool_name":
                f.tool = d.string();
                break;
              case "params":
                f.params = d.rawBytes()?.slice() ?? null;
                break;
              case "auth_token": {
                // Never quote a malformed token: it may still be a secret.
                const raw = d.raw();
                if (raw !== null && raw.startsWith('"')) f.authToken = JSON.parse(raw) as string;
                else if (raw !== null && raw !== "null") d.fail("string", "another JSON type");
                break;
              }
              case "message":
                if (!d.null()) f.message = d.string();
                break;
              default:
                d.skip();
            }
          }
          break;
        default:
          d.skip();
      }
    }
  }
  f.problems = d.failed() ? d.getProblems() : [];
  return f;
}

/** validId reports whether a request id can be echoed: present, not null. */
export function validId(idText: string | null): idText is string {
  return idText !== null && idText !== "" && idText !== "null";
}

/** requestIdInPrefix finds the request_id of a message too large to read
 * whole, in its first bytes: payload.request_id of an atp_tool_request, or
 * with flat the top-level request_id of an inbox reply. */
export function requestIdInPrefix(prefix: string, flat: boolean): string | null {
  // A tolerant scan: walk the members in order until the id, a different
  // message type or the cut.
  const d = new Decoder();
  d.reset(prefix);
  if (!d.object()) return null;
  const member = (name: string): string | null => {
    while (d.next()) {
      const k = d.key();
      if (k === name) {
        const raw = d.raw();
        const bad = d.failed();
        return bad ? null : raw;
      }
      d.skip();
      if (d.problemCount() > 0) return null;
    }
    return null;
  };
  if (flat) return member("request_id");
  while (d.next()) {
    const k = d.key();
    if (k === "message_type") {
      if (d.string() !== "atp_tool_request" || d.problemCount() > 0) return null;
    } else if (k === "payload") {
      if (!d.object()) return null;
      return member("request_id");
    } else {
      d.skip();
      if (d.problemCount() > 0) return null;
    }
  }
  return null;
}

/** toolResponse builds the tool_response frame by hand: the id and result
 * are JSON already. */
export function toolResponse(idText: string, a: Answer, latencyMs: number): string {
  return `{"type":"tool_response","request_id":${idText},"result":${a.result}${a.isError ? ',"is_error":true' : ""},"latency_ms":${Math.trunc(latencyMs)}}`;
}
