// A fake ATP server for the serve tests, as runtime/fakeatp_test.go is for
// the Go runtime: registration endpoints that record what they get, the
// toolkit WebSocket (every connection handed to the test), and the inbox.

import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import type { Clock } from "../src/index.js";

/** Queue is an async FIFO: push never blocks, next waits (bounded). */
export class Queue<T> {
  private items: T[] = [];
  private waiters: ((v: T) => void)[] = [];
  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }
  next(what = "an item", ms = 10_000): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== done);
        reject(new Error(`timed out after ${ms} ms waiting for ${what}`));
      }, ms);
      const done = (x: T) => {
        clearTimeout(t);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }
  get length(): number {
    return this.items.length;
  }
  /** remove drops an item that no one took yet. */
  remove(v: T): void {
    this.items = this.items.filter((x) => x !== v);
  }
  drain(): T[] {
    const out = this.items;
    this.items = [];
    return out;
  }
}

export interface RegCall {
  path: string;
  body: Record<string, unknown>;
}

export class FakeConn {
  readonly frames = new Queue<Record<string, unknown> & { raw: string }>();
  /** The {"type":"draining"} announcements, kept out of frames. */
  readonly drainings = new Queue<true>();
  /** What the toolkit sent, in order: "draining", or a response's request
   * id. */
  readonly log: string[] = [];
  readonly pings = new Queue<true>();
  readonly closed: Promise<number>;
  constructor(readonly ws: WebSocket) {
    ws.on("message", (d: Buffer) => {
      const raw = d.toString("utf8");
      const f = JSON.parse(raw) as Record<string, unknown>;
      if (f["type"] === "draining") {
        this.log.push("draining");
        this.drainings.push(true);
        return;
      }
      this.log.push(String(f["request_id"]));
      this.frames.push({ ...f, raw });
    });
    ws.on("ping", () => this.pings.push(true));
    this.closed = new Promise((r) => ws.on("close", (code: number) => r(code)));
  }
  /** send sends a text frame (bytes as they are, UTF-8 or not). */
  send(frame: string | object | Buffer): void {
    this.ws.send(typeof frame === "string" || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame), { binary: false });
  }
  request(id: unknown, tool: string, params?: unknown, authToken?: string): void {
    const payload: Record<string, unknown> = { request_id: id, tool_name: tool, params: params ?? {} };
    if (authToken) payload["auth_token"] = authToken;
    this.send({ message_type: "atp_tool_request", payload });
  }
  response(): Promise<Record<string, unknown> & { raw: string }> {
    return this.frames.next("a tool_response");
  }
  drop(): void {
    this.ws.terminate();
  }
}

export class FakeATP {
  readonly server: http.Server;
  readonly wss: WebSocketServer;
  readonly conns = new Queue<FakeConn>();
  readonly regs: RegCall[] = [];
  readonly polls = new Queue<URLSearchParams>();
  readonly inboxQueue: (string | Buffer)[] = [];
  readonly inboxAnswers = new Queue<Record<string, unknown>>();
  readonly wsAuth: string[] = [];
  handshakes = 0;
  toolkitHash = "";
  toolHashes = new Map<string, string>();
  verifyMissing = false;
  wsReject = 0;
  wsRejectBody = "";
  registerReply: ((body: Record<string, unknown>) => [number, string]) | null = null;
  longPoll = false;
  respondFails = 0;
  /** New connections do not answer pings (a dead server). */
  deaf = false;
  /** New connections are greeted (atp_client_connected), as atp serve
   * greets them once they are routable. */
  greet = true;
  /** How long a long-poll is held before it answers {}. */
  holdMs = 200;
  /** POST inbox/release: how many came; whether the server has the
   * endpoint; what it writes into the polls it releases. */
  releases = 0;
  releaseMissing = false;
  /** The release answers 200 but leaves the held polls held (a broken
   * server). */
  releaseKeepsPolls = false;
  releaseWith: string | null = null;
  /** Held polls whose client went away before they were answered. */
  cutPolls = 0;
  private waitingPolls: ((body: string | Buffer) => void)[] = [];

  constructor(readonly key: string, readonly prefix = "") {
    this.wss = new WebSocketServer({ noServer: true, autoPong: false });
    this.server = http.createServer((req, res) => void this.http(req, res));
    this.server.on("upgrade", (req, socket, head) => {
      this.handshakes++;
      const want = `${prefix}/ws/v1/atp/toolkit-client/${encodeURIComponent(key)}/`;
      if (this.wsReject) {
        socket.end(`HTTP/1.1 ${this.wsReject} Refused\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(this.wsRejectBody)}\r\nConnection: close\r\n\r\n${this.wsRejectBody}`);
        return;
      }
      if (decodeURIComponent(req.url ?? "") !== decodeURIComponent(want)) {
        socket.end("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
      }
      this.wsAuth.push(String(req.headers.authorization ?? ""));
      // Whether a connection answers pings is decided when it opens.
      const deaf = this.deaf;
      const greet = this.greet;
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        ws.on("ping", (data) => {
          if (!deaf) ws.pong(data);
        });
        const c = new FakeConn(ws);
        if (greet) c.send({ message_type: "atp_client_connected", payload: { message: "welcome to the fake" } });
        this.conns.push(c);
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return this;
  }

  get url(): string {
    const a = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${a.port}${this.prefix}`;
  }

  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    for (const w of this.waitingPolls) w("{}");
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  registrations(): string[] {
    const out = this.regs.map((c) => {
      const p = c.path.replace(/^\/api\/v1\//, "");
      if (p === "toolkit/verify_tool_hash") return `${p} ${String(c.body["tool_name"])}`;
      if (p === "register_tool") return `${p} ${String(c.body["function_id"])}`;
      return p;
    });
    this.regs.length = 0;
    return out;
  }

  /** forget drops everything the server knew of the toolkit. */
  forget(): void {
    this.toolkitHash = "";
    this.toolHashes.clear();
  }

  enqueue(req: string | Buffer): void {
    const w = this.waitingPolls.shift();
    if (w) w(req);
    else this.inboxQueue.push(req);
  }

  private async http(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString("utf8");
    const u = new URL(req.url ?? "/", "http://x");
    const path = u.pathname.slice(this.prefix.length);
    const json = (status: number, body: string | Buffer, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "Content-Type": "application/json", ...headers });
      res.end(body);
    };
    const inbox = `/api/v1/toolkit/${encodeURIComponent(this.key)}/inbox`;
    if (path === "/api/v1/toolkit/verify_hash" || path === "/api/v1/toolkit/verify_tool_hash" || path === "/api/v1/register_tool") {
      const body = JSON.parse(text) as Record<string, unknown>;
      this.regs.push({ path, body });
      if (body["api_key"] !== this.key) return json(401, '{"error":"bad key"}');
      if (path === "/api/v1/register_tool") {
        if (this.registerReply) {
          const [status, reply] = this.registerReply(body);
          return json(status, reply);
        }
        this.toolHashes.set(String(body["function_id"]), String(body["code_hash"]));
        this.toolkitHash = String(body["toolkit_hash"]);
        return json(200, '{"exchange_token":"x"}');
      }
      if (this.verifyMissing) return json(404, '{"error":"not found"}');
      if (path === "/api/v1/toolkit/verify_hash") return json(200, JSON.stringify({ up_to_date: body["toolkit_hash"] === this.toolkitHash }));
      return json(200, JSON.stringify({ up_to_date: this.toolHashes.get(String(body["tool_name"])) === body["tool_hash"] }));
    }
    if (decodeURIComponent(path) === decodeURIComponent(inbox) && req.method === "GET") {
      this.polls.push(u.searchParams);
      const next = this.inboxQueue.shift();
      if (next !== undefined) return json(200, next, this.longPoll ? { "ATP-Inbox-Wait": u.searchParams.get("wait") ?? "1" } : {});
      if (!this.longPoll) return json(200, "{}");
      const wait = Number(u.searchParams.get("wait") ?? "1");
      const body = await new Promise<string | Buffer | null>((resolve) => {
        const t = setTimeout(() => {
          this.waitingPolls = this.waitingPolls.filter((w) => w !== done);
          resolve("{}");
        }, Math.min(wait, 1) * this.holdMs);
        const done = (b: string | Buffer) => {
          clearTimeout(t);
          resolve(b);
        };
        this.waitingPolls.push(done);
        res.on("close", () => {
          if (res.writableEnded) return;
          // The toolkit cut the poll before it was answered.
          clearTimeout(t);
          this.waitingPolls = this.waitingPolls.filter((w) => w !== done);
          this.cutPolls++;
          resolve(null);
        });
      });
      if (body === null) return;
      return json(200, body, { "ATP-Inbox-Wait": String(wait) });
    }
    if (decodeURIComponent(path) === decodeURIComponent(inbox + "/release") && req.method === "POST") {
      this.releases++;
      if (this.releaseMissing) return json(404, '{"error":"no such endpoint"}');
      if (this.releaseKeepsPolls) return json(200, '{"released":0}');
      const held = this.waitingPolls.splice(0);
      for (const w of held) {
        const next = this.releaseWith;
        this.releaseWith = null;
        w(next ?? "{}");
      }
      return json(200, JSON.stringify({ released: held.length }));
    }
    if (decodeURIComponent(path) === decodeURIComponent(inbox + "/respond") && req.method === "POST") {
      if (this.respondFails > 0) {
        this.respondFails--;
        return json(503, '{"error":"busy"}');
      }
      this.inboxAnswers.push(JSON.parse(text) as Record<string, unknown>);
      return json(200, '{"ok":true}');
    }
    json(404, '{"error":"no such endpoint"}');
  }
}

/** FakeClock hands each sleep to the test, which takes its duration and
 * lets it end; now() moves only when the test says. */
export class FakeClock implements Clock {
  private t = 1_000_000;
  readonly sleeps = new Queue<{ ms: number; wake: () => void; signal: AbortSignal }>();
  now(): number {
    return this.t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      const s = { ms, wake: resolve, signal };
      signal.addEventListener("abort", () => {
        this.sleeps.remove(s); // a cancelled sleep is no longer the test's to take
        reject(signal.reason);
      }, { once: true });
      this.sleeps.push(s);
    });
  }
  /** sleep takes the next sleep, lets it end and returns its duration. */
  async take(): Promise<number> {
    const s = await this.sleeps.next("a sleep");
    s.wake();
    return s.ms;
  }
}

/** A logger that keeps every line, for assertions. */
export class LogBuffer {
  readonly lines: string[] = [];
  private make(level: string) {
    return (msg: string, attrs?: Record<string, unknown>) => this.lines.push(`${level} ${msg} ${JSON.stringify(attrs ?? {})}`);
  }
  readonly logger = { debug: this.make("DEBUG"), info: this.make("INFO"), warn: this.make("WARN"), error: this.make("ERROR") };
  text(): string {
    return this.lines.join("\n");
  }
  has(s: string): boolean {
    return this.lines.some((l) => l.includes(s));
  }
}
