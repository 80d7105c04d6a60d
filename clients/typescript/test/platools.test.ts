// The Platools transport against a fake Platos platform that drives every
// frame and close code of the wire.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { platoolsURL, serve, type ServeOptions, type State, Toolkit } from "../src/index.js";
import { FakeClock, LogBuffer, Queue } from "./fakeatp.js";
import { waitFor } from "./helpers.js";

const secret = "psk_live_0123456789abcdef";

class PlatosConn {
  readonly frames = new Queue<Record<string, unknown>>();
  readonly closed: Promise<number>;
  constructor(readonly ws: WebSocket, readonly url: string, readonly auth: string) {
    ws.on("message", (d: Buffer) => this.frames.push(JSON.parse(d.toString("utf8")) as Record<string, unknown>));
    this.closed = new Promise((r) => ws.on("close", (code: number) => r(code)));
  }
  send(f: object | Buffer): void {
    // Bytes go as a text frame, whatever they hold, as a platform sends.
    this.ws.send(Buffer.isBuffer(f) ? f : JSON.stringify(f), { binary: false });
  }
  /** flush returns once everything the toolkit sent before now has
   * arrived: a ping's pong comes after it on the connection. */
  flush(): Promise<void> {
    return new Promise((resolve) => {
      this.ws.once("pong", () => resolve());
      this.ws.ping();
    });
  }
  /** next returns the next frame of the type, skipping heartbeats unless
   * asked for. */
  async next(type: string): Promise<Record<string, unknown>> {
    for (;;) {
      const f = await this.frames.next(`a ${type} frame`);
      if (f["type"] === type) return f;
      if (f["type"] !== "heartbeat") throw new Error(`got ${JSON.stringify(f)}, want ${type}`);
    }
  }
}

class FakePlatos {
  readonly server = http.createServer((_req, res) => res.writeHead(404).end());
  readonly wss = new WebSocketServer({ noServer: true });
  readonly conns = new Queue<PlatosConn>();
  reject = 0;
  /** The platform greets new connections (welcome), as Platos does. */
  welcome = true;
  constructor() {
    this.server.on("upgrade", (req, socket, head) => {
      if (this.reject) {
        socket.end(`HTTP/1.1 ${this.reject} No\r\nContent-Length: 9\r\nConnection: close\r\n\r\nforbidden`);
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        const c = new PlatosConn(ws, req.url ?? "", String(req.headers.authorization ?? ""));
        if (this.welcome) c.send({ type: "welcome", sdk_connection_id: "c1", organization_id: "org", entity_id: "ent", environment_id: "dev" });
        this.conns.push(c);
      });
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return this;
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/`;
  }
  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

const waitStarted = new Queue<string>();
let releaseWait: () => void = () => {};

function toolkit(): Toolkit {
  return new Toolkit("platkit", { logger: new LogBuffer().logger }).add(
    { name: "add", description: "Adds.", inputSchema: { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } }, required: ["a", "b"], additionalProperties: false }, hints: { readOnly: true }, handler: (p) => (p["a"] as number) + (p["b"] as number) },
    { name: "me", auth: { provider: "crm" }, handler: (_p, c) => ({ token: c.authToken?.value(), user: c.platos?.["userId"], ctx: c.context, envelope: Object.keys(c.platos ?? {}) }) },
    { name: "big", inputSchema: { type: "object", properties: { n: { type: "integer", maximum: 9007199254740992 }, s: { type: "string" } }, additionalProperties: false }, handler: (p) => ({ s: p["s"] ?? null }) },
    { name: "fail", handler: () => { throw new Error("no such record"); } },
    { name: "wait", handler: (_p, c) => { waitStarted.push(c.requestId); return new Promise((r) => (releaseWait = () => r("done"))).then((v) => (c.signal.aborted ? "aborted" : v)); } },
  );
}

async function withPlatos(fn: (p: FakePlatos, run: (o?: Partial<ServeOptions>) => { done: Promise<void>; ctrl: AbortController; logs: LogBuffer; states: State[] }) => Promise<void>): Promise<void> {
  const p = await new FakePlatos().start();
  const runs: { done: Promise<void>; ctrl: AbortController }[] = [];
  try {
    await fn(p, (o = {}) => {
      const ctrl = new AbortController();
      const logs = new LogBuffer();
      const states: State[] = [];
      const done = serve(toolkit(), { url: p.url + "?entity=crm", apiKey: secret, transport: "platools", signal: ctrl.signal, logger: logs.logger, onState: (s) => states.push(s), backoff: { baseMs: 1, maxMs: 5 }, ...o });
      done.catch(() => {});
      runs.push({ done, ctrl });
      return { done, ctrl, logs, states };
    });
  } finally {
    // No serve outlives its test, failed or not.
    for (const r of runs) r.ctrl.abort();
    await Promise.all(runs.map((r) => r.done.catch(() => {})));
    await p.close();
  }
}

test("an empty URL or secret names the Platools variable to set", async () => {
  const tk = toolkit();
  await assert.rejects(serve(tk, { url: "", apiKey: secret, transport: "platools" }), /url is empty: set it to the Platos platform's URL \(PLATOS_URL\)/);
  await assert.rejects(serve(tk, { url: "https://p.example", apiKey: "", transport: "platools" }), /apiKey is empty: set it to the Platos service secret \(PLATOS_SECRET\)/);
});

test("the URL is rewritten as the Platools SDKs do", () => {
  assert.equal(platoolsURL("wss://x.example/y?z=1"), "wss://x.example/y/ws/sdk?z=1");
  assert.equal(platoolsURL("http://host:9000"), "ws://host:9000/ws/sdk");
  assert.equal(platoolsURL("https://h/p///?entity=a&env=b"), "wss://h/p/ws/sdk?entity=a&env=b");
});

test("register on open, answer calls, pop __platos and _context, exact unknown-tool words", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next("a connection");
    assert.equal(c.url, "/ws/sdk?entity=crm");
    assert.equal(c.auth, "Bearer " + secret);
    const reg = await c.next("tool_register");
    const tools = reg["tools"] as Record<string, unknown>[];
    assert.deepEqual(tools.map((t) => t["name"]), ["add", "big", "fail", "me", "wait"]);
    assert.deepEqual(tools[0], {
      name: "add", description: "Adds.", input_schema: { type: "object", properties: { a: { type: "integer" }, b: { type: "integer" } }, required: ["a", "b"], additionalProperties: false },
      output_schema: null, auth: "none", roles: [], annotations: { readOnlyHint: true },
    });
    assert.equal(tools[3]!["auth"], "user");
    assert.equal(tools[3]!["auth_provider"], "crm", "the OAuth platform goes along, as from the Go runtime");
    c.send({ type: "tools_registered", entity_id: "ent", environment_id: "dev", count: 4, new_tools: 4, updated: 0, pruned: 0 });

    c.send({ type: "tool_call", call_id: "k1", tool_name: "add", params: { a: 2, b: 3, __platos: { userId: "u1", organizationId: "org" }, _context: { "user.id": "u1" } } });
    let f = await c.next("tool_result");
    assert.equal(f["call_id"], "k1");
    assert.equal(f["result"], 5);
    assert.equal(typeof f["latency_ms"], "number");

    c.send({ type: "tool_call", call_id: "k2", tool_name: "me", params: { __platos: { userId: "u7", userToken: "tok-7", entityToken: "ent-secret", organizationId: "org" }, _context: { "user.id": "u7" } } });
    f = await c.next("tool_result");
    assert.deepEqual(f["result"], { token: "tok-7", user: "u7", ctx: { "user.id": "u7" }, envelope: ["userId", "organizationId"] }, "the tokens are not in call.platos");

    c.send({ type: "tool_call", call_id: "k3", tool_name: "ghost", params: {} });
    f = await c.next("tool_error");
    assert.deepEqual(f, { type: "tool_error", call_id: "k3", error: "unknown tool: ghost", traceback: null });

    c.send({ type: "tool_call", call_id: "k4", tool_name: "add", params: { a: "two", c: 1 } });
    f = await c.next("tool_error");
    assert.equal(f["error"], 'invalid params for add: a: expected integer, got "two"; c: unknown field (allowed: a, b); b: missing required field (expected integer)');
    // The problem list goes along, as from the Go runtime.
    assert.deepEqual(f["problems"], [
      { path: "a", message: 'expected integer, got "two"' },
      { path: "c", message: "unknown field (allowed: a, b)" },
      { path: "b", message: "missing required field (expected integer)" },
    ]);

    c.send({ type: "tool_call", call_id: "k5", tool_name: "fail", params: {} });
    f = await c.next("tool_error");
    assert.equal(f["error"], "no such record");
    assert.match(String(f["traceback"]), /^Error: no such record\n\s+at /, "a thrown error's stack is the traceback");

    c.send({ type: "tool_call", call_id: "k6", tool_name: "me", params: {} });
    f = await c.next("tool_error");
    assert.match(String(f["error"]), /needs the end user's auth token/);
    c.send({ type: "heartbeat_ack" });
    c.send({ type: "tool_health_alert", tool: "fail", status: "degraded", details: { error_count_1h: 1 } });
    await waitFor(() => run.logs.has("the platform reports a tool's health"), "the alert to be logged");
    run.ctrl.abort();
    assert.equal(await c.closed, 1000);
    await run.done;
  }));

test("the heartbeat carries each tool's real health", () =>
  withPlatos(async (p, start) => {
    const run = start({ heartbeatIntervalMs: 20 });
    const c = await p.conns.next();
    await c.next("tool_register");
    for (let i = 0; i < 5; i++) c.send({ type: "tool_call", call_id: `f${i}`, tool_name: "fail", params: {} });
    c.send({ type: "tool_call", call_id: "ok", tool_name: "add", params: { a: 1, b: 1 } });
    // Calls refused before the tool ran say nothing about its health.
    for (let i = 0; i < 3; i++) c.send({ type: "tool_call", call_id: `bad${i}`, tool_name: "add", params: { a: "x" } });
    c.send({ type: "tool_call", call_id: "notoken", tool_name: "me", params: {} });
    for (;;) {
      const hb = await c.frames.next("a heartbeat");
      if (hb["type"] !== "heartbeat") continue;
      const h = hb["tools_health"] as Record<string, Record<string, unknown>>;
      if ((h["add"]?.["avg_latency_ms"] === undefined) || (h["fail"]?.["error_count_1h"] as number) < 5) continue;
      assert.deepEqual(Object.keys(h).sort(), ["add", "big", "fail", "me", "wait"]);
      assert.equal(h["fail"]!["status"], "down");
      assert.equal(h["fail"]!["last_error"], "no such record");
      assert.equal(h["me"]!["status"], "healthy");
      assert.equal(h["me"]!["error_count_1h"], 0);
      assert.ok(!("last_error" in h["me"]!));
      assert.equal(h["add"]!["status"], "healthy");
      assert.equal(h["add"]!["error_count_1h"], 0);
      break;
    }
    run.ctrl.abort();
    await run.done;
  }));

test("register_throttled sends the declaration again after retry_after_ms", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    await c.next("tool_register");
    c.send({ type: "register_throttled", error: "tool_register exceeded 6/min; retry after 1s", retry_after_ms: 10 });
    await c.next("tool_register");
    assert.ok(run.logs.has("throttled"));
    run.ctrl.abort();
    await run.done;
  }));

test("error then close 1008 stops serving with the platform's words", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    c.send({ type: "error", error: "Invalid service secret or entity not found" });
    c.ws.close(1008, "");
    await assert.rejects(run.done, /the platform refused the connection \(close 1008\): Invalid service secret or entity not found/);
    assert.equal(p.conns.length, 0, "no reconnect");
  }));

test("close 4001 (secret rotated) stops serving", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    c.ws.close(4001, "secret rotated; reconnect with new secret");
    await assert.rejects(run.done, /close 4001.*secret rotated/);
  }));

test("close 1000 superseded by new connection: step aside, do not fight", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    await c.next("tool_register");
    c.send({ type: "tools_registered", count: 5 });
    await waitFor(() => run.states.length === 1, "connected");
    c.ws.close(1000, "superseded by new connection");
    await run.done;
    assert.equal(p.conns.length, 0, "no reconnect");
    assert.ok(run.logs.has("superseded by new connection"));
    assert.deepEqual(run.states.map((s) => s.kind), ["connected", "disconnected"]);
  }));

test("other drops reconnect with backoff and register again", () =>
  withPlatos(async (p, start) => {
    const run = start();
    let c = await p.conns.next();
    await c.next("tool_register");
    c.ws.terminate();
    c = await p.conns.next("the reconnect");
    await c.next("tool_register");
    c.ws.close(1011, "server restart");
    c = await p.conns.next("the second reconnect");
    await c.next("tool_register");
    assert.ok(run.logs.has("close 1011 server restart"), run.logs.text());
    run.ctrl.abort();
    await run.done;
  }));

test("a refused handshake is permanent for 401/403", () =>
  withPlatos(async (p, start) => {
    p.reject = 401;
    const run = start();
    await assert.rejects(run.done, /platools handshake: the server answered 401 Unauthorized: forbidden/);
  }));

test("abort drains running calls before closing", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    await c.next("tool_register");
    c.send({ type: "tool_call", call_id: "w1", tool_name: "wait", params: {} });
    await waitStarted.next("the call to start");
    run.ctrl.abort();
    await waitFor(() => run.logs.has("shutting down"), "the drain to start");
    c.send({ type: "tool_call", call_id: "late", tool_name: "add", params: { a: 1, b: 2 } });
    const got = new Map<string, Record<string, unknown>>();
    for (let i = 0; i < 2; i++) {
      const f = await c.frames.next();
      if (f["type"] === "heartbeat") {
        i--;
        continue;
      }
      got.set(String(f["call_id"]), f);
      // The running call finishes only once the late one was refused.
      if (f["call_id"] === "late") releaseWait();
    }
    assert.equal(got.get("w1")!["result"], "done");
    assert.equal(got.get("late")!["type"], "tool_error");
    assert.match(String(got.get("late")!["error"]), /shutting down/);
    assert.equal(await c.closed, 1000);
    await run.done;
  }));

test("tool_register goes on welcome, not on open; connected on tools_registered", () =>
  withPlatos(async (p, start) => {
    p.welcome = false;
    const clk = new FakeClock();
    const run = start({ clock: clk });
    const c = await p.conns.next();
    const grace = await clk.sleeps.next("the welcome grace");
    assert.equal(grace.ms, 1000);
    await c.flush();
    assert.equal(c.frames.length, 0, "nothing is declared before the welcome");
    assert.equal(run.states.length, 0, "an open socket is not connected");
    c.send({ type: "welcome", sdk_connection_id: "c9", organization_id: "org" });
    await c.next("tool_register");
    assert.ok(grace.signal.aborted, "the welcome ends the grace");
    await c.flush();
    assert.equal(c.frames.length, 0, "the tools are declared once");
    assert.equal(run.states.length, 0, "a declaration the platform has not confirmed is not connected");
    c.send({ type: "tools_registered", count: 5, new_tools: ["add", "big"] });
    await waitFor(() => run.states.length === 1, "connected");
    assert.equal(run.states[0]!.kind, "connected");
    assert.ok(run.logs.has('"on":"the platform registered the tools"'), run.logs.text());
    c.send({ type: "welcome" });
    await c.flush();
    assert.equal(c.frames.length, 0, "a second welcome declares nothing again");
    run.ctrl.abort();
    await run.done;
  }));

test("without a welcome within a second, the tools are declared anyway, with a warning", () =>
  withPlatos(async (p, start) => {
    p.welcome = false;
    const clk = new FakeClock();
    const run = start({ clock: clk });
    const c = await p.conns.next();
    assert.equal(await clk.take(), 1000);
    await c.next("tool_register");
    assert.ok(run.logs.has("WARN atp: platools: no welcome from the platform; declaring the tools anyway"), run.logs.text());
    c.send({ type: "welcome" });
    await c.flush();
    assert.equal(c.frames.length, 0, "a late welcome declares nothing again");
    run.ctrl.abort();
    await run.done;
  }));

test("a first tool_call counts as connected, without tools_registered", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    await c.next("tool_register");
    assert.equal(run.states.length, 0);
    c.send({ type: "tool_call", call_id: 1, tool_name: "add", params: { a: 1, b: 2 } });
    const f = await c.next("tool_result");
    assert.equal(f["call_id"], 1, "a numeric call_id is echoed as a number");
    assert.deepEqual(run.states.map((s) => s.kind), ["connected"]);
    assert.ok(run.logs.has('"on":"a tool call"'), run.logs.text());
    run.ctrl.abort();
    await run.done;
  }));

test("params reach the validator as sent: invalid UTF-8 and exact numbers, the envelope taken out", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    await c.next("tool_register");
    const envelope = '"__platos":{"userId":"u1","userToken":"tok"},"_context":{"k":"v"}';
    // JSON.parse then JSON.stringify would read 9007199254740993 as
    // 9007199254740992 and let it through.
    c.send(Buffer.from(`{"type":"tool_call","call_id":"n1","tool_name":"big","params":{${envelope},"n":9007199254740993}}`));
    let f = await c.next("tool_error");
    assert.deepEqual(f["problems"], [{ path: "n", message: "expected integer <= 9007199254740992, got 9007199254740993" }]);
    c.send(Buffer.concat([Buffer.from(`{"type":"tool_call","call_id":"u1","tool_name":"big","params":{"s":"a`), Buffer.from([0xff]), Buffer.from(`",${envelope}}}`)]));
    f = await c.next("tool_error");
    assert.equal(f["error"], "invalid params for big: s: invalid UTF-8 in string");
    c.send(Buffer.concat([Buffer.from(`{"type":"tool_call","call_id":"u2","tool_name":"big","params":{"s":"a`), Buffer.from([0xff]), Buffer.from(`"}}`)]));
    f = await c.next("tool_error");
    assert.deepEqual(f["problems"], [{ path: "s", message: "invalid UTF-8 in string" }], "without an envelope too");
    c.send(Buffer.from(`{"type":"tool_call","call_id":"ok","tool_name":"big","params":{"s":"caf\u00e9",${envelope},"n":1.0e1}}`));
    f = await c.next("tool_result");
    assert.deepEqual(f["result"], { s: "café" });
    run.ctrl.abort();
    await run.done;
  }));

test("a malformed envelope is answered without quoting the token", () =>
  withPlatos(async (p, start) => {
    const run = start();
    const c = await p.conns.next();
    await c.next("tool_register");
    c.send({ type: "tool_call", call_id: "e1", tool_name: "me", params: { __platos: 5 } });
    let f = await c.next("tool_error");
    assert.equal(f["error"], "malformed tool_call: params.__platos: expected object, got 5");
    c.send({ type: "tool_call", call_id: "e2", tool_name: "me", params: { __platos: { userToken: { secret: "s3cr3t" } } } });
    f = await c.next("tool_error");
    assert.equal(f["error"], "malformed tool_call: params.__platos.userToken: expected string, got another JSON type");
    c.send({ type: "tool_call", call_id: "e3", tool_name: 7 });
    f = await c.next("tool_error");
    assert.equal(f["error"], "malformed tool_call: tool_name: expected string, got 7");
    c.send({ type: "frobnicate" });
    c.send(Buffer.from("[1,2]"));
    await waitFor(() => run.logs.has("ignoring an unknown frame type") && run.logs.has("ignoring malformed frame"), "the frames to be logged");
    run.ctrl.abort();
    await run.done;
  }));
