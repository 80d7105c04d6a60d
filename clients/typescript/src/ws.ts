// The ATP v1 WebSocket session of a toolkit: atp_tool_request in,
// tool_response out (with is_error and latency_ms), every request answered
// exactly once, keepalive pings, and a graceful drain that announces itself
// ({"type":"draining"}) and closes with 1000. The session counts as
// connected once it is routable: at the server's atp_client_connected
// greeting, at a first tool request, or, with a server that never greets,
// a second after the handshake (docs/extensions.md of atp-go).

import type { IncomingMessage } from "node:http";
import { setMaxListeners } from "node:events";
import WebSocket from "ws";
import { Decoder } from "./decoder.js";
import { Registrar } from "./register.js";
import {
  type Answer, Endpoints, errConnectionLost, errDrainTimeout, errShuttingDown, idString, parseFrame, PermanentError, type Request,
  requestIdInPrefix, type ResolvedOptions, type Runner, type State, statusLine, quoteBody, toolResponse, type Transport, validId,
} from "./serve.js";
import type { Toolkit } from "./toolkit.js";

/** How long after the handshake a session that the server has not greeted
 * counts as connected: `atp serve` greets once the connection is routable;
 * a server that never greets gets the benefit of the doubt after this long,
 * or at its first tool request. */
export const connectGraceMs = 1000;

/** The frame that tells the server the toolkit is shutting down: no new
 * call should be routed to the connection, whose calls in flight are still
 * answered. */
const drainingFrame = '{"type":"draining"}';

export class WSTransport implements Transport {
  setState: (s: State) => void = () => {};
  private readonly ep: Endpoints;
  private readonly reg: Registrar;
  private readonly dec = new Decoder();

  constructor(
    private readonly tk: Toolkit,
    private readonly o: ResolvedOptions,
    private readonly runner: Runner,
  ) {
    this.ep = new Endpoints(o.url, o.apiKey);
    this.reg = new Registrar(tk, o, this.ep);
  }

  async session(): Promise<{ connectedAt: number; reason: Error | null }> {
    await this.reg.register();
    if (this.o.signal.aborted) return { connectedAt: 0, reason: null };
    const ws = await this.dial();
    const early = takeEarly(ws);
    let connectedAt = 0;
    let over = false;
    const grace = new AbortController();
    // routable reports the session connected, once: calls can reach it.
    const routable = (evidence: string) => {
      if (connectedAt !== 0 || over) return;
      grace.abort();
      connectedAt = this.o.clock.now();
      this.o.logger.info("atp: connected", { url: this.ep.ws(), on: evidence });
      this.setState({ kind: "connected" });
    };
    this.o.clock.sleep(connectGraceMs, grace.signal).then(
      () => routable(`no greeting from the server within ${connectGraceMs / 1000}s`),
      () => {},
    );
    try {
      const reason = await new Session(this, ws, early, routable).run();
      return { connectedAt, reason };
    } finally {
      over = true; // no late report says a finished session is connected
      grace.abort();
    }
  }

  private dial(): Promise<WebSocket> {
    const o = this.o;
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.ep.ws(), {
        headers: { Authorization: "Bearer " + o.apiKey },
        handshakeTimeout: 15_000,
        maxPayload: Math.max(o.readLimit * 4, 32 << 20),
        perMessageDeflate: false,
        // A text frame that is not UTF-8 would otherwise fail the whole
        // connection (1007); read as bytes, it fails only its call, with
        // the problem at its path, as in the Go runtime.
        skipUTF8Validation: true,
      });
      keepEarly(ws);
      const onAbort = () => ws.terminate();
      o.signal.addEventListener("abort", onAbort, { once: true });
      const done = () => o.signal.removeEventListener("abort", onAbort);
      ws.once("open", () => {
        done();
        resolve(ws);
      });
      ws.once("unexpected-response", (_req, res: IncomingMessage) => {
        done();
        const chunks: Buffer[] = [];
        let n = 0;
        res.on("data", (c: Buffer) => {
          if (n < 1024) chunks.push(c);
          n += c.length;
        });
        const finish = () => {
          const body = Buffer.concat(chunks).subarray(0, 1024).toString("utf8");
          const status = res.statusCode ?? 0;
          const msg = `websocket handshake: the server answered ${statusLine(status)}: ${quoteBody(body)}`;
          reject(status === 401 || status === 403 ? new PermanentError(msg) : new Error(msg));
          ws.terminate();
        };
        res.on("end", finish);
        res.on("error", finish);
      });
      ws.once("error", (e) => {
        done();
        reject(new Error(`websocket dial: ${(e as NodeJS.ErrnoException).code ?? ""} ${e.message}`.replace(/\s+/g, " ").trim()));
      });
    });
  }

  // for Session
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
}

/** Session is one WebSocket connection. */
class Session {
  private readonly o: ResolvedOptions;
  private draining = false;
  private running = 0;
  private readonly lost = new AbortController();
  private lastSeen = Date.now();
  private closed: Promise<{ code: number; reason: string }>;
  private idle: number;

  constructor(
    private readonly t: WSTransport,
    private readonly ws: WebSocket,
    private readonly early: Buffer[],
    private readonly routable: (evidence: string) => void,
  ) {
    this.o = t.options;
    // Every running call listens on it.
    setMaxListeners(0, this.lost.signal);
    this.idle = this.o.pingIntervalMs + this.o.pongTimeoutMs;
    this.closed = new Promise((resolve) => ws.once("close", (code, reason) => resolve({ code, reason: reason.toString("utf8") })));
  }

  async run(): Promise<Error | null> {
    const { ws, o } = this;
    const alive = () => {
      this.lastSeen = Date.now();
    };
    ws.on("pong", alive);
    ws.on("ping", alive);
    ws.on("message", (data: Buffer, isBinary: boolean) => {
      alive();
      void isBinary;
      this.onMessage(data, Date.now());
    });
    for (const data of this.early.splice(0)) this.onMessage(data, Date.now());
    let socketError: Error | null = null;
    ws.on("error", (e) => {
      socketError = e;
    });
    let dead = false;
    // Pings go out every pingIntervalMs; the check above runs more often.
    let lastPing = Date.now();
    const pingTimer = setInterval(() => {
      if (Date.now() - lastPing >= o.pingIntervalMs && ws.readyState === WebSocket.OPEN) {
        lastPing = Date.now();
        ws.ping();
      }
    }, o.pingIntervalMs);
    const watchdog = setInterval(() => {
      if (Date.now() - this.lastSeen >= this.idle) {
        dead = true;
        ws.terminate();
      }
    }, Math.max(1, Math.min(1000, this.idle / 4)));

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
      if (dead) return new Error(`nothing received for ${this.idle / 1000}s (no frame, no pong): connection presumed dead`);
      const e = socketError as Error | null;
      if (first.code === 1006 && e) return new Error(`websocket read: ${e.message}`);
      return new Error(`the server closed the connection: websocket: close ${first.code}${first.reason ? " " + first.reason : ""}`);
    } finally {
      clearInterval(pingTimer);
      clearInterval(watchdog);
    }
  }

  private onMessage(data: Buffer, received: number): void {
    const o = this.o;
    const log = o.logger;
    if (data.length > o.readLimit) {
      const id = requestIdInPrefix(data.subarray(0, o.readLimit).toString("utf8"), false);
      if (!validId(id)) {
        log.warn("atp: refused a frame larger than readLimit", { limit: o.readLimit });
        return;
      }
      log.warn("atp: refused a request larger than readLimit", { limit: o.readLimit, request_id: idString(id) });
      this.reply({ idText: id, tool: "", params: "", authToken: "", received }, this.t.run.errorAnswer(new Error(`request refused: the frame is larger than the toolkit's read limit of ${o.readLimit} bytes`)));
      return;
    }
    const f = parseFrame(this.t.decoder, data);
    // A request, even a malformed one, shows that calls reach the session,
    // greeting or not.
    if (f.messageType === "atp_tool_request") this.routable("a tool request");
    if (f.problems.length > 0) {
      const problems = f.problems.map((p) => (p.path === "" ? "params: " + p.message : p.path + ": " + p.message)).join("; ");
      if (f.messageType === "atp_tool_request" && validId(f.idText)) {
        log.warn("atp: malformed atp_tool_request", { request_id: idString(f.idText), problems });
        this.reply({ idText: f.idText, tool: "", params: "", authToken: "", received }, this.t.run.errorAnswer(new Error(`malformed atp_tool_request: ${problems}`)));
        return;
      }
      log.warn("atp: ignoring malformed frame", { bytes: data.length, problems });
      return;
    }
    switch (f.messageType) {
      case "atp_tool_request":
        if (!validId(f.idText)) {
          log.warn("atp: ignoring atp_tool_request without request_id", { tool: f.tool.slice(0, 64) });
          return;
        }
        this.request({ idText: f.idText, tool: f.tool, params: f.params ?? "", authToken: f.authToken, received });
        return;
      case "atp_client_connected":
        log.info("atp: server greeting", { message: f.message.slice(0, 200) });
        this.routable("the server's greeting");
        return;
      case "":
        log.warn("atp: ignoring frame without message_type", { bytes: data.length });
        return;
      default:
        log.warn("atp: ignoring unknown message_type", { message_type: f.messageType.slice(0, 64) });
    }
  }

  private request(req: Request): void {
    const r = this.t.run;
    if (!this.t.toolkit.get(req.tool)) {
      // Answered without running anything: no slot needed.
      void r.run(req, "ws", this.lost.signal).then((a) => this.reply(req, a));
      return;
    }
    if (this.draining) {
      this.reply(req, r.errorAnswer(new Error(errShuttingDown)));
      return;
    }
    this.running++;
    void (async () => {
      try {
        await r.slots.take();
        try {
          if (this.draining) {
            // The shutdown began while this call waited for a slot.
            this.reply(req, r.errorAnswer(new Error(errShuttingDown)));
            return;
          }
          if (this.lost.signal.aborted) {
            this.reply(req, r.errorAnswer(this.lost.signal.reason as Error));
            return;
          }
          this.reply(req, await r.run(req, "ws", this.lost.signal));
        } finally {
          r.slots.release();
        }
      } finally {
        this.running--;
        this.onIdle?.();
      }
    })();
  }

  private onIdle: (() => void) | undefined;

  private reply(req: Request, a: Answer): void {
    if (this.ws.readyState !== WebSocket.OPEN) {
      this.o.logger.warn("atp: tool_response not sent: the connection is closed", { request_id: idString(req.idText), tool: req.tool });
      return;
    }
    this.batch();
    this.ws.send(toolResponse(req.idText, a, Date.now() - req.received));
  }

  private corked = false;

  /** batch corks the socket until the end of this tick, so that the
   * answers of calls that finish together leave in one write. */
  private batch(): void {
    const sock = (this.ws as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
    if (this.corked || !sock || typeof sock.cork !== "function") return;
    this.corked = true;
    sock.cork();
    process.nextTick(() => {
      this.corked = false;
      sock.uncork();
    });
  }

  /** drain: the server is told first, new requests are refused, running
   * calls get drainTimeoutMs, then the rest are cancelled (and answered),
   * then close with 1000. */
  private async drain(): Promise<void> {
    const o = this.o;
    const log = o.logger;
    this.draining = true;
    log.info("atp: shutting down; draining running calls", { deadline_ms: o.drainTimeoutMs });
    // Ask the server to route no new call here: it would otherwise keep
    // sending calls to a connection that can only refuse them, and,
    // answered at once, such a connection looks the least busy of a
    // toolkit's instances. A server that does not know the message
    // ignores it.
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(drainingFrame);
    const idle = () => new Promise<void>((resolve) => {
      if (this.running === 0) return resolve();
      this.onIdle = () => {
        if (this.running === 0) resolve();
      };
    });
    const timer = (ms: number) => {
      let t: NodeJS.Timeout;
      const p = new Promise<"timeout">((r) => (t = setTimeout(() => r("timeout"), ms)));
      return { p, cancel: () => clearTimeout(t) };
    };
    const deadline = timer(o.drainTimeoutMs);
    const first = await Promise.race([idle().then(() => "idle" as const), deadline.p, this.closed.then(() => "closed" as const)]);
    deadline.cancel();
    if (first === "closed") {
      this.lost.abort(new Error(errConnectionLost));
      log.warn("atp: connection lost while draining; answers of running calls are lost");
      return;
    }
    if (first === "timeout") {
      log.warn("atp: drain deadline passed; cancelling the calls still running");
      this.lost.abort(new Error(errDrainTimeout));
      const grace = timer(Math.min(1000, o.pongTimeoutMs));
      await Promise.race([idle(), grace.p]);
      grace.cancel();
    }
    this.lost.abort(new Error(errShuttingDown));
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000, "toolkit shutting down");
    const wait = timer(o.pongTimeoutMs);
    await Promise.race([this.closed, wait.p]);
    wait.cancel();
    if (this.ws.readyState !== WebSocket.CLOSED) this.ws.terminate();
    log.info("atp: connection closed");
  }
}

const earlyFrames = new WeakMap<WebSocket, { frames: Buffer[]; listener: (d: Buffer) => void }>();

/** keepEarly holds the frames that arrive before the session listens: a
 * server may send its first request in the same packet as the handshake
 * reply, and ws emits it right after "open". */
export function keepEarly(ws: WebSocket): void {
  const frames: Buffer[] = [];
  const listener = (d: Buffer) => frames.push(d);
  ws.on("message", listener);
  earlyFrames.set(ws, { frames, listener });
}

/** takeEarly stops holding frames and returns those held. */
export function takeEarly(ws: WebSocket): Buffer[] {
  const e = earlyFrames.get(ws);
  if (!e) return [];
  ws.off("message", e.listener);
  earlyFrames.delete(ws);
  return e.frames;
}
