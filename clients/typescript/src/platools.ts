// The Platools SDK wire (the Platos platform's tool gateway), so that the
// same toolkit can serve there: {base}/ws/sdk with "Authorization: Bearer
// <secret>"; the platform greets (welcome) and the toolkit declares every
// tool at once (tool_register; without a welcome within a second, anyway);
// the session counts as connected once the platform confirms
// (tools_registered) or sends a call; tool_call in, tool_result or
// tool_error out; a heartbeat every 30 s carrying each tool's real health.
// Close 1008 (after an error frame) and 4001 (secret rotated) stop serving;
// a close 1000 "superseded by new connection" means another instance took
// over, and this one steps aside rather than fight it.

import { setMaxListeners } from "node:events";
import WebSocket from "ws";
import { Decoder, type Problem, problemString } from "./decoder.js";
import { keepEarly, takeEarly } from "./ws.js";
import {
  type Answer, errConnectionLost, errDrainTimeout, errShuttingDown, idString, PermanentError, type Request, type ResolvedOptions, type Runner,
  type State, quoteBody, statusLine, SteppedAside, type Transport, validId,
} from "./serve.js";
import type { Tool, Toolkit } from "./toolkit.js";

/** platoolsURL rewrites a base URL as the Platools SDKs do: http(s) to
 * ws(s), the path's trailing slashes dropped, /ws/sdk appended before the
 * query. */
export function platoolsURL(base: string): string {
  let s = base.replace(/^http:\/\//i, "ws://").replace(/^https:\/\//i, "wss://");
  const q = s.indexOf("?");
  const query = q >= 0 ? s.slice(q) : "";
  if (q >= 0) s = s.slice(0, q);
  return s.replace(/\/+$/, "") + "/ws/sdk" + query;
}

const hour = 3_600_000;

/** Health keeps what the heartbeat reports of one tool. */
class Health {
  private samples: { at: number; ms: number; ok: boolean }[] = [];
  private lastError = "";

  record(ms: number, ok: boolean, error: string): void {
    const now = Date.now();
    this.samples.push({ at: now, ms, ok });
    if (!ok) this.lastError = error;
    const cut = now - hour;
    while (this.samples.length > 0 && (this.samples[0]!.at < cut || this.samples.length > 1000)) this.samples.shift();
  }

  /** The heartbeat entry: "down" when the last 5 calls all failed,
   * "degraded" when over a tenth of the hour's calls failed or they took 10 s
   * on average, else "healthy". */
  report(): Record<string, unknown> {
    const cut = Date.now() - hour;
    const recent = this.samples.filter((s) => s.at >= cut);
    const errors = recent.filter((s) => !s.ok).length;
    const avg = recent.length === 0 ? 0 : Math.round(recent.reduce((a, s) => a + s.ms, 0) / recent.length);
    const last5 = recent.slice(-5);
    let status = "healthy";
    if (last5.length === 5 && last5.every((s) => !s.ok)) status = "down";
    else if ((recent.length > 0 && errors / recent.length > 0.1) || avg >= 10_000) status = "degraded";
    const out: Record<string, unknown> = { status, avg_latency_ms: avg, error_count_1h: errors };
    if (errors > 0 && this.lastError !== "") out["last_error"] = this.lastError.slice(0, 500);
    return out;
  }
}

export class PlatoolsTransport implements Transport {
  setState: (s: State) => void = () => {};
  private readonly health = new Map<string, Health>();
  private readonly dec = new Decoder();

  constructor(
    private readonly tk: Toolkit,
    private readonly o: ResolvedOptions,
    private readonly runner: Runner,
  ) {}

  /** The complete tool declaration sent on open. */
  registerFrame(): string {
    const tools = this.tk.list().map((t: Tool) => {
      const annotations: Record<string, boolean> = {};
      if (t.hints.readOnly) annotations["readOnlyHint"] = true;
      if (t.hints.destructive) annotations["destructiveHint"] = true;
      if (t.hints.idempotent) annotations["idempotentHint"] = true;
      return (
        `{"name":${JSON.stringify(t.name)},"description":${JSON.stringify(t.description)},"input_schema":${t.inputSchema}` +
        `,"output_schema":${t.outputSchema ?? "null"},"auth":${JSON.stringify(t.needsAuthToken ? "user" : "none")},"roles":[],"annotations":${JSON.stringify(annotations)}` +
        // An extension, as from the Go runtime: the OAuth platform whose
        // end-user token the tool needs, so that atp serve can inject it.
        (t.authProvider ? `,"auth_provider":${JSON.stringify(t.authProvider)}` : "") +
        "}"
      );
    });
    return `{"type":"tool_register","tools":[${tools.join(",")}]}`;
  }

  heartbeatFrame(): string {
    const health: Record<string, unknown> = {};
    for (const t of this.tk.list()) health[t.name] = (this.health.get(t.name) ?? new Health()).report();
    return JSON.stringify({ type: "heartbeat", tools_health: health });
  }

  async session(): Promise<{ connectedAt: number; reason: Error | null }> {
    const o = this.o;
    const url = platoolsURL(o.url);
    const ws = await new Promise<WebSocket>((resolve, reject) => {
      // skipUTF8Validation: a frame that is not UTF-8 fails its call (at
      // the path of the bad text), not the connection (1007).
      const ws = new WebSocket(url, {
        headers: { Authorization: "Bearer " + o.apiKey },
        handshakeTimeout: 15_000,
        maxPayload: Math.max(o.readLimit * 4, 10 << 20),
        perMessageDeflate: false,
        skipUTF8Validation: true,
      });
      keepEarly(ws);
      const onAbort = () => ws.terminate();
      o.signal.addEventListener("abort", onAbort, { once: true });
      ws.once("open", () => {
        o.signal.removeEventListener("abort", onAbort);
        resolve(ws);
      });
      ws.once("unexpected-response", (_req, res) => {
        o.signal.removeEventListener("abort", onAbort);
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        const finish = () => {
          const status = res.statusCode ?? 0;
          const msg = `platools handshake: the server answered ${statusLine(status)}: ${quoteBody(Buffer.concat(chunks).subarray(0, 1024).toString("utf8"))}`;
          reject(status === 401 || status === 403 ? new PermanentError(msg) : new Error(msg));
          ws.terminate();
        };
        res.on("end", finish);
        res.on("error", finish);
      });
      ws.once("error", (e) => {
        o.signal.removeEventListener("abort", onAbort);
        reject(new Error(`platools dial: ${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`.replace(/\s+/g, " ").trim()));
      });
    });
    const early = takeEarly(ws);
    // The session counts as connected once the platform has the tools
    // (tools_registered) or sends a call, not when the socket opens.
    let connectedAt = 0;
    let over = false;
    const routable = (evidence: string) => {
      if (connectedAt !== 0 || over) return;
      connectedAt = o.clock.now();
      o.logger.info("atp: connected", { url, on: evidence });
      this.setState({ kind: "connected" });
    };
    let reason: Error | null;
    try {
      reason = await new PlatoolsSession(this, ws, early, routable).run();
    } finally {
      over = true; // no late report says a finished session is connected
    }
    return { connectedAt, reason };
  }

  // for the session
  get options(): ResolvedOptions {
    return this.o;
  }
  get run(): Runner {
    return this.runner;
  }
  get toolkit(): Toolkit {
    return this.tk;
  }
  get decoder(): Decoder {
    return this.dec;
  }
  recordHealth(tool: string, ms: number, a: Answer): void {
    // Calls refused before the tool ran (invalid params, no token) or cut
    // short by the toolkit say nothing about the tool, as on the Go side.
    if (!this.tk.get(tool) || !a.toolFault) return;
    let h = this.health.get(tool);
    if (!h) this.health.set(tool, (h = new Health()));
    let err = "";
    if (a.isError) {
      try {
        err = String((JSON.parse(a.result) as { error?: unknown }).error ?? "");
      } catch {
        err = "error";
      }
    }
    h.record(ms, !a.isError, err);
  }
}


/** The parts of a platform frame the toolkit reads. */
interface PtFrame {
  type: string;
  /** call_id as JSON text, echoed as received. */
  callId: string | null;
  tool: string;
  params: Uint8Array | null;
  /** The other members of informational frames (welcome, ...), as JSON
   * text, at most maxFrameMembers. */
  other: Map<string, string>;
  problems: Problem[];
}

const maxFrameMembers = 32;

/** parsePlatoolsFrame reads a frame in one pass with the Decoder, as the Go
 * runtime does; the params are kept as bytes for their own decoder, which
 * reports invalid UTF-8 in them, so the envelope is read leniently. */
function parsePlatoolsFrame(d: Decoder, data: Uint8Array): PtFrame {
  const f: PtFrame = { type: "", callId: null, tool: "", params: null, other: new Map(), problems: [] };
  d.reset(data.length === 0 ? " " : data);
  d.setLenientUTF8(true);
  if (d.object()) {
    while (d.next()) {
      const key = d.key();
      switch (key) {
        case "type":
          f.type = d.string();
          break;
        case "call_id":
          f.callId = d.raw();
          break;
        case "tool_name":
          f.tool = d.string();
          break;
        case "params":
          f.params = d.rawBytes()?.slice() ?? null;
          break;
        default:
          if (f.other.size < maxFrameMembers) {
            const raw = d.raw();
            if (raw !== null) f.other.set(key, raw);
          } else d.skip();
      }
    }
  }
  f.problems = d.failed() ? d.getProblems() : [];
  return f;
}

/** member returns an informational member as text for a log line: a string
 * unquoted, anything else as its JSON, cut to n characters. */
function member(f: PtFrame, name: string, n: number): string {
  const raw = f.other.get(name);
  if (raw === undefined || raw === "null") return "";
  let s = raw;
  if (raw.startsWith('"')) {
    try {
      s = JSON.parse(raw) as string;
    } catch {
      // kept as sent
    }
  }
  return s.length > n ? s.slice(0, n) + "…" : s;
}

/** The members of the __platos envelope passed on in Call.platos; the
 * tokens (userToken, entityToken) and later additions are not. */
const platosMembers = new Set(["organizationId", "projectId", "environmentId", "entityId", "userId", "agentId", "threadId", "callId", "timestamp", "nonce", "signature"]);

/** splitPlatos takes the platform's members out of a call's params: the
 * __platos envelope (the end user's token among them) and _context. It
 * returns the params without them, as bytes (every other member's value as
 * sent), for the tool's validator, which never sees them. Params that are
 * not a JSON object are returned as they are: the validator words what is
 * wrong with them. It throws for an envelope that cannot be read, never
 * quoting the token. */
export function splitPlatos(d: Decoder, params: Uint8Array): { rest: Uint8Array; platos?: Record<string, unknown>; context?: Record<string, unknown>; token: string } {
  const text = Buffer.from(params.buffer, params.byteOffset, params.byteLength);
  if (!text.includes('"__platos"') && !text.includes('"_context"')) return { rest: params, token: "" };
  d.reset(params);
  d.setLenientUTF8(true);
  if (!d.object()) return { rest: params, token: "" };
  const parts: Uint8Array[] = [Buffer.from("{")];
  let first = true;
  let platos: Record<string, unknown> | undefined;
  let context: Record<string, unknown> | undefined;
  let token = "";
  const parse = (raw: string | null): unknown => {
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return null; // a syntax error, recorded by the decoder
    }
  };
  while (d.next()) {
    const key = d.key();
    if (key === "__platos") {
      platos ??= {};
      if (d.null() || !d.object()) continue; // not an object: recorded as a problem
      while (d.next()) {
        const k = d.key();
        if (k === "userToken") {
          const raw = d.raw();
          if (raw !== null && raw.startsWith('"')) token = parse(raw) as string;
          else if (raw !== null && raw !== "null") d.fail("string", "another JSON type"); // never quote a token
          continue;
        }
        if (!platosMembers.has(k)) {
          d.skip();
          continue;
        }
        const v = parse(d.raw());
        if (v !== null) platos[k] = v;
      }
      continue;
    }
    if (key === "_context") {
      platos ??= {};
      const v = parse(d.raw());
      if (v !== null) context = v as Record<string, unknown>;
      continue;
    }
    parts.push(Buffer.from((first ? "" : ",") + JSON.stringify(key) + ":"));
    first = false;
    const raw = d.rawBytes();
    if (raw !== null) parts.push(raw);
  }
  if (d.failed()) {
    for (const p of d.getProblems()) {
      if (p.path.startsWith("__platos") || p.path.startsWith("_context")) throw new Error("params." + problemString(p));
    }
    // The problem is in the params themselves (bad JSON): pass them on
    // without the envelope only when it could be taken out whole.
    return { rest: params, token: "" };
  }
  parts.push(Buffer.from("}"));
  return { rest: new Uint8Array(Buffer.concat(parts)), platos, ...(context !== undefined ? { context } : {}), token };
}

/** maxRegisterWait caps the retry_after_ms of register_throttled, so that a
 * platform cannot make the toolkit wait for ever before it declares its
 * tools again; defaultRegisterWait is the wait when it names none. */
const maxRegisterWaitMs = 10 * 60_000;
const defaultRegisterWaitMs = 10_000;

/** How long the toolkit waits for the platform's welcome before it
 * declares its tools anyway. */
export const welcomeGraceMs = 1000;

class PlatoolsSession {
  private readonly o: ResolvedOptions;
  private draining = false;
  private running = 0;
  private onIdle: (() => void) | undefined;
  private readonly lost = new AbortController();
  /** Ends the session's waits on the clock (welcome grace, throttling). */
  private readonly ended = new AbortController();
  private registered = false;
  /** Ends the wait for the welcome. */
  private readonly grace = new AbortController();
  private throttle: AbortController | null = null;
  private lastError = "";
  private lastSeen = Date.now();
  private readonly closed: Promise<{ code: number; reason: string }>;

  constructor(
    private readonly t: PlatoolsTransport,
    private readonly ws: WebSocket,
    private readonly early: Buffer[],
    private readonly routable: (evidence: string) => void,
  ) {
    this.o = t.options;
    // Every running call listens on it.
    setMaxListeners(0, this.lost.signal);
    this.closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })));
  }

  private send(frame: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
  }

  /** register sends the complete tool declaration, once per connection
   * unless the platform asks for it again (register_throttled). */
  private register(): void {
    if (this.registered || this.ended.signal.aborted) return;
    this.registered = true;
    this.grace.abort();
    this.o.logger.debug("atp: platools: declaring the tools", { tools: this.t.toolkit.list().length });
    this.send(this.t.registerFrame());
  }

  async run(): Promise<Error | null> {
    const { ws, o } = this;
    ws.on("message", (data: Buffer) => {
      this.lastSeen = Date.now();
      this.onMessage(data);
    });
    ws.on("pong", () => (this.lastSeen = Date.now()));
    ws.on("ping", () => (this.lastSeen = Date.now()));
    ws.on("error", () => {});
    // The platform greets first (welcome), and the tools are declared
    // then. One that does not greet gets the declaration anyway, late.
    o.clock.sleep(welcomeGraceMs, AbortSignal.any([this.grace.signal, this.ended.signal])).then(
      () => {
        if (this.registered) return;
        o.logger.warn("atp: platools: no welcome from the platform; declaring the tools anyway", { after: `${welcomeGraceMs / 1000}s` });
        this.register();
      },
      () => {},
    );
    for (const data of this.early.splice(0)) this.onMessage(data);
    const heartbeat = setInterval(() => {
      this.send(this.t.heartbeatFrame());
      if (ws.readyState === WebSocket.OPEN) ws.ping();
    }, o.heartbeatIntervalMs);
    const idle = o.heartbeatIntervalMs + o.pongTimeoutMs;
    let dead = false;
    const watchdog = setInterval(() => {
      if (Date.now() - this.lastSeen >= idle) {
        dead = true;
        ws.terminate();
      }
    }, Math.max(1, Math.min(1000, idle / 4)));
    const aborted = new Promise<"abort">((resolve) => {
      if (o.signal.aborted) resolve("abort");
      else o.signal.addEventListener("abort", () => resolve("abort"), { once: true });
    });
    try {
      const first = await Promise.race([this.closed, aborted]);
      if (first === "abort") {
        await this.drain();
        return null;
      }
      this.lost.abort(new Error(errConnectionLost));
      if (dead) return new Error(`nothing received for ${idle / 1000}s: connection presumed dead`);
      const why = first.reason || this.lastError;
      if (first.code === 1008) return new PermanentError(`the platform refused the connection (close 1008): ${why || "policy violation"}`);
      if (first.code === 4001) {
        return new PermanentError(`the platform closed the connection (close 4001: ${why || "secret rotated"}): the secret was rotated or revoked; restart the toolkit with the new secret (PLATOS_SECRET)`);
      }
      if (first.code === 1000 && first.reason === "superseded by new connection") {
        return new SteppedAside("the platform closed the connection: superseded by new connection: another connection for the same entity and environment now serves it, so this one stops rather than take the place back");
      }
      return new Error(`the platform closed the connection: close ${first.code}${why ? " " + why : ""}`);
    } finally {
      clearInterval(heartbeat);
      clearInterval(watchdog);
      this.ended.abort();
    }
  }

  private onMessage(data: Buffer): void {
    const log = this.o.logger;
    const f = parsePlatoolsFrame(this.t.decoder, data);
    if (f.problems.length > 0) {
      const problems = f.problems.map(problemString).join("; ");
      if (f.type === "tool_call" && validId(f.callId)) {
        log.warn("atp: platools: malformed tool_call", { call_id: idString(f.callId), problems });
        this.sendError(f.callId, `malformed tool_call: ${problems}`);
        return;
      }
      log.warn("atp: platools: ignoring malformed frame", { bytes: data.length, problems });
      return;
    }
    switch (f.type) {
      case "tool_call":
        this.toolCall(f);
        return;
      case "welcome":
        log.info("atp: platools: welcome", {
          sdk_connection_id: member(f, "sdk_connection_id", 128),
          organization_id: member(f, "organization_id", 128) || member(f, "org_id", 128),
          entity_id: member(f, "entity_id", 128),
          environment_id: member(f, "environment_id", 128),
        });
        this.register();
        return;
      case "tools_registered": {
        // new_tools is a count from the Platos platform and the list of
        // the new tools' names from atp serve.
        const nt = f.other.get("new_tools");
        let newTools = member(f, "new_tools", 32);
        if (nt?.startsWith("[")) {
          try {
            newTools = String((JSON.parse(nt) as unknown[]).length);
          } catch {
            // kept as sent
          }
        }
        log.info("atp: platools: tools registered", { count: member(f, "count", 32), new: newTools, updated: member(f, "updated", 32), pruned: member(f, "pruned", 32) });
        this.routable("the platform registered the tools");
        return;
      }
      case "register_throttled": {
        const n = Number(f.other.get("retry_after_ms"));
        const wait = f.other.has("retry_after_ms") && Number.isFinite(n) ? Math.trunc(Math.max(0, Math.min(n, maxRegisterWaitMs))) : defaultRegisterWaitMs;
        log.warn("atp: platools: tool_register throttled; declaring the tools again later", { error: member(f, "error", 256), in_ms: wait });
        this.throttle?.abort();
        const t = new AbortController();
        this.throttle = t;
        this.o.clock.sleep(wait, AbortSignal.any([t.signal, this.ended.signal])).then(
          () => this.send(this.t.registerFrame()),
          () => {},
        );
        return;
      }
      case "heartbeat_ack":
        return;
      case "tool_health_alert":
        log.warn("atp: platools: the platform reports a tool's health", { tool: member(f, "tool", 64), status: member(f, "status", 32), details: member(f, "details", 512) });
        return;
      case "error":
        this.lastError = member(f, "error", 1024);
        log.error("atp: platools: the platform reported an error", { error: this.lastError });
        return;
      case "":
        log.warn("atp: platools: ignoring a frame without type", { bytes: data.length });
        return;
      default:
        log.warn("atp: platools: ignoring an unknown frame type", { type: f.type.slice(0, 64), bytes: data.length });
    }
  }

  /** toolCall runs a tool_call on a call slot, or answers it at once when
   * it runs nothing. */
  private toolCall(f: PtFrame): void {
    const o = this.o;
    const received = Date.now();
    this.routable("a tool call");
    if (!validId(f.callId)) {
      o.logger.warn("atp: platools: ignoring a tool_call without call_id", { tool: f.tool.slice(0, 64) });
      return;
    }
    const callId = f.callId;
    const tool = f.tool;
    if (!this.t.toolkit.get(tool)) {
      // The SDKs' exact words: the platform may match on them.
      this.sendError(callId, `unknown tool: ${tool}`);
      return;
    }
    let split: ReturnType<typeof splitPlatos>;
    try {
      split = splitPlatos(this.t.decoder, f.params ?? new Uint8Array());
    } catch (e) {
      o.logger.warn("atp: platools: malformed tool_call", { call_id: idString(callId), tool, err: (e as Error).message });
      this.sendError(callId, `malformed tool_call: ${(e as Error).message}`);
      return;
    }
    const req: Request = {
      idText: callId,
      tool,
      params: split.rest,
      authToken: split.token,
      received,
      ...(split.platos ? { platos: split.platos } : {}),
      ...(split.context !== undefined ? { context: split.context } : {}),
    };
    if (this.draining) {
      this.answer(req, this.t.run.errorAnswer(new Error(errShuttingDown)));
      return;
    }
    const r = this.t.run;
    this.running++;
    void (async () => {
      try {
        await r.slots.take();
        try {
          let a: Answer;
          if (this.draining) a = r.errorAnswer(new Error(errShuttingDown)); // the shutdown began while it waited
          else if (this.lost.signal.aborted) a = r.errorAnswer(this.lost.signal.reason as Error);
          else a = await r.run(req, "platools", this.lost.signal);
          this.t.recordHealth(tool, Date.now() - received, a);
          this.answer(req, a);
        } finally {
          r.slots.release();
        }
      } finally {
        this.running--;
        this.onIdle?.();
      }
    })();
  }

  /** answer sends the one tool_result or tool_error of a call. */
  private answer(req: Request, a: Answer): void {
    const latency = Date.now() - req.received;
    if (!a.isError) {
      this.send(`{"type":"tool_result","call_id":${req.idText},"result":${a.result},"latency_ms":${latency}}`);
      return;
    }
    let error = "the tool call failed";
    let problems: Problem[] | undefined;
    try {
      const body = JSON.parse(a.result) as { error?: string; problems?: Problem[] };
      error = body.error ?? error;
      problems = body.problems;
    } catch {
      // errorAnswer always writes {"error": ...}
    }
    // problems (invalid params, field by field) is an extension the Go
    // runtime sends too; atp serve passes it on to the LLM client.
    this.sendError(req.idText, error, problems, a.traceback);
  }

  private sendError(callId: string, error: string, problems?: Problem[], traceback?: string): void {
    this.send(
      `{"type":"tool_error","call_id":${callId},"error":${JSON.stringify(error)},"traceback":${traceback ? JSON.stringify(traceback) : "null"}` +
        (problems && problems.length > 0 ? `,"problems":${JSON.stringify(problems)}` : "") +
        "}",
    );
  }

  private async drain(): Promise<void> {
    const o = this.o;
    this.draining = true;
    o.logger.info("atp: shutting down; draining running calls", { deadline_ms: o.drainTimeoutMs });
    const idle = () =>
      new Promise<void>((resolve) => {
        if (this.running === 0) return resolve();
        this.onIdle = () => {
          if (this.running === 0) resolve();
        };
      });
    let t: NodeJS.Timeout | undefined;
    const first = await Promise.race([idle().then(() => "idle" as const), new Promise<"timeout">((r) => (t = setTimeout(() => r("timeout"), o.drainTimeoutMs))), this.closed.then(() => "closed" as const)]);
    clearTimeout(t);
    if (first === "closed") {
      this.lost.abort(new Error(errConnectionLost));
      return;
    }
    if (first === "timeout") {
      this.lost.abort(new Error(errDrainTimeout));
      let g: NodeJS.Timeout | undefined;
      await Promise.race([idle(), new Promise((r) => (g = setTimeout(r, Math.min(1000, o.pongTimeoutMs))))]);
      clearTimeout(g);
    }
    this.lost.abort(new Error(errShuttingDown));
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, "toolkit shutting down");
    let w: NodeJS.Timeout | undefined;
    await Promise.race([this.closed, new Promise((r) => (w = setTimeout(r, o.pongTimeoutMs)))]);
    clearTimeout(w);
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
  }
}
