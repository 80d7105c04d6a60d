// The Platools SDK wire (the Platos platform's tool gateway), so that the
// same toolkit can serve there: {base}/ws/sdk with "Authorization: Bearer
// <secret>"; a complete tool_register on open; tool_call in, tool_result or
// tool_error out; a heartbeat every 30 s carrying each tool's real health.
// Close 1008 (after an error frame) and 4001 (secret rotated) stop serving;
// a close 1000 "superseded by new connection" means another instance took
// over, and this one steps aside rather than fight it.

import { setMaxListeners } from "node:events";
import WebSocket from "ws";
import { Decoder } from "./decoder.js";
import { keepEarly, takeEarly } from "./ws.js";
import {
  type Answer, errConnectionLost, errDrainTimeout, errShuttingDown, PermanentError, type Request, type ResolvedOptions, type Runner,
  type State, quoteBody, statusLine, SteppedAside, type Transport,
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
        `,"output_schema":${t.outputSchema ?? "null"},"auth":${JSON.stringify(t.needsAuthToken ? "user" : "none")},"roles":[],"annotations":${JSON.stringify(annotations)}}`
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
      const ws = new WebSocket(url, { headers: { Authorization: "Bearer " + o.apiKey }, handshakeTimeout: 15_000, maxPayload: Math.max(o.readLimit * 4, 10 << 20), perMessageDeflate: false });
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
    const connectedAt = o.clock.now();
    o.logger.info("atp: connected", { url: platoolsURL(o.url) });
    this.setState({ kind: "connected" });
    const early = takeEarly(ws);
    return { connectedAt, reason: await new PlatoolsSession(this, ws, early).run() };
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


class PlatoolsSession {
  private readonly o: ResolvedOptions;
  private draining = false;
  private running = 0;
  private onIdle: (() => void) | undefined;
  private readonly lost = new AbortController();
  private lastError = "";
  private lastSeen = Date.now();
  private readonly closed: Promise<{ code: number; reason: string }>;
  private registerTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly t: PlatoolsTransport,
    private readonly ws: WebSocket,
    private readonly early: Buffer[],
  ) {
    this.o = t.options;
    // Every running call listens on it.
    setMaxListeners(0, this.lost.signal);
    this.closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })));
  }

  private send(frame: string): void {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(frame);
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
    this.send(this.t.registerFrame());
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
      clearTimeout(this.registerTimer);
    }
  }

  private onMessage(data: Buffer): void {
    const log = this.o.logger;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(data.toString("utf8")) as Record<string, unknown>;
      if (m === null || typeof m !== "object" || Array.isArray(m)) throw new Error("not an object");
    } catch {
      log.warn("atp: platools: ignoring a frame that is not a JSON object", { bytes: data.length });
      return;
    }
    switch (m["type"]) {
      case "welcome":
        log.info("atp: platools: welcome", {
          sdk_connection_id: m["sdk_connection_id"],
          organization_id: m["organization_id"] ?? m["org_id"],
          entity_id: m["entity_id"],
          environment_id: m["environment_id"],
        });
        return;
      case "tools_registered":
        log.info("atp: platools: tools registered", { count: m["count"], new_tools: m["new_tools"], updated: m["updated"], pruned: m["pruned"] });
        return;
      case "register_throttled": {
        const after = typeof m["retry_after_ms"] === "number" ? (m["retry_after_ms"] as number) : 10_000;
        log.warn("atp: platools: tool_register throttled; sending it again later", { error: m["error"], retry_after_ms: after });
        clearTimeout(this.registerTimer);
        this.registerTimer = setTimeout(() => this.send(this.t.registerFrame()), Math.max(0, after));
        return;
      }
      case "heartbeat_ack":
        return;
      case "tool_health_alert":
        log.warn("atp: platools: tool health alert", { tool: m["tool"], status: m["status"], details: m["details"] });
        return;
      case "error":
        this.lastError = typeof m["error"] === "string" ? (m["error"] as string) : JSON.stringify(m["error"]);
        log.error("atp: platools: the platform reported an error", { error: this.lastError });
        return;
      case "tool_call":
        this.toolCall(data);
        return;
      default:
        log.warn("atp: platools: ignoring unknown frame type", { type: String(m["type"]).slice(0, 64) });
    }
  }

  private toolCall(data: Buffer): void {
    const o = this.o;
    const received = Date.now();
    const d = this.t.decoder;
    d.reset(data);
    let callId: unknown;
    let tool = "";
    let params: string | null = null;
    if (d.object()) {
      while (d.next()) {
        switch (d.key()) {
          case "call_id": {
            const raw = d.raw();
            callId = raw === null ? undefined : JSON.parse(raw);
            break;
          }
          case "tool_name":
            tool = d.string();
            break;
          case "params":
            params = d.raw();
            break;
          default:
            d.skip();
        }
      }
    }
    if (callId === undefined || callId === null) {
      o.logger.warn("atp: platools: ignoring tool_call without call_id", { tool: tool.slice(0, 64) });
      return;
    }
    if (d.failed()) {
      const problems = d.getProblems().map((p) => (p.path === "" ? "params: " + p.message : p.path + ": " + p.message)).join("; ");
      this.send(JSON.stringify({ type: "tool_error", call_id: callId, error: `malformed tool_call: ${problems}`, traceback: null }));
      return;
    }
    if (!this.t.toolkit.get(tool)) {
      this.send(JSON.stringify({ type: "tool_error", call_id: callId, error: `unknown tool: ${tool}`, traceback: null }));
      return;
    }
    // The envelope and the context are not params: pop them.
    let platos: Record<string, unknown> | undefined;
    let context: Record<string, unknown> | undefined;
    let paramsText = params ?? "{}";
    try {
      const v = JSON.parse(paramsText) as Record<string, unknown> | null;
      if (v && typeof v === "object" && !Array.isArray(v) && ("__platos" in v || "_context" in v)) {
        platos = (v["__platos"] as Record<string, unknown> | undefined) ?? undefined;
        context = (v["_context"] as Record<string, unknown> | undefined) ?? undefined;
        delete v["__platos"];
        delete v["_context"];
        paramsText = JSON.stringify(v);
      }
    } catch {
      // Not JSON: the validator words it.
    }
    const userToken = typeof platos?.["userToken"] === "string" ? (platos["userToken"] as string) : "";
    const req: Request = {
      idText: JSON.stringify(callId),
      tool,
      params: paramsText,
      authToken: userToken,
      received,
      ...(platos ? { platos } : {}),
      ...(context ? { context } : {}),
    };
    if (this.draining) {
      this.answer(req, callId, this.t.run.errorAnswer(new Error(errShuttingDown)), received);
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
          this.answer(req, callId, a, received);
        } finally {
          r.slots.release();
        }
      } finally {
        this.running--;
        this.onIdle?.();
      }
    })();
  }

  private answer(_req: Request, callId: unknown, a: Answer, received: number): void {
    const latency = Date.now() - received;
    if (!a.isError) {
      this.send(`{"type":"tool_result","call_id":${JSON.stringify(callId)},"result":${a.result},"latency_ms":${latency}}`);
      return;
    }
    let error = "the tool call failed";
    let problems: unknown;
    try {
      const body = JSON.parse(a.result) as { error?: string; problems?: unknown };
      error = body.error ?? error;
      problems = body.problems;
    } catch {
      // errorAnswer always writes {"error": ...}
    }
    const traceback = a.traceback ?? null;
    // problems (invalid params, field by field) is an extension the Go
    // runtime sends too; atp serve passes it on to the LLM client.
    this.send(JSON.stringify({ type: "tool_error", call_id: callId, error, traceback, ...(problems ? { problems } : {}) }));
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
