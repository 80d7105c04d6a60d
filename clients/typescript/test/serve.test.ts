// The serve tests against a fake ATP server: the Go runtime's serve tests
// (runtime/serve_test.go) rewritten for Node, reconnect, backoff and drain
// included.

import { test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { serve, type ServeOptions, type State, Toolkit, tool, ValidationError } from "../src/index.js";
import { FakeATP, FakeClock, LogBuffer, Queue } from "./fakeatp.js";
import { waitFor } from "./helpers.js";

const key = "sk-test-0123456789";

class Gate {
  readonly started = new Queue<string>();
  private releases: (() => void)[] = [];
  running = 0;
  maxRunning = 0;
  private open = false;
  wait(id: string, signal: AbortSignal): Promise<unknown> {
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    this.started.push(id);
    return new Promise((resolve, reject) => {
      const done = () => {
        this.running--;
        resolve({ released: id });
      };
      if (this.open) return done();
      this.releases.push(done);
      signal.addEventListener("abort", () => {
        this.running--;
        reject(signal.reason);
      }, { once: true });
    });
  }
  releaseOne(): void {
    this.releases.shift()?.();
  }
  releaseAll(): void {
    this.open = true;
    for (const r of this.releases.splice(0)) r();
  }
}

function newToolkit(gate = new Gate()): Toolkit {
  return new Toolkit("testkit", { logger: new LogBuffer().logger }).add(
    { name: "echo", description: "Says hello.", inputSchema: { type: "object", properties: { name: { type: "string" } } }, outputSchema: { type: "object", properties: { hello: { type: "string" } } }, handler: (p) => ({ hello: p["name"] }) },
    tool({ name: "forecast", input: z.object({ days: z.number().int() }), handler: (p) => ({ days: p.days }) }),
    { name: "boom", handler: () => { throw new Error("kaboom"); } },
    { name: "sleepy", timeoutMs: 20, handler: (_p, c) => new Promise((_, rej) => c.signal.addEventListener("abort", () => rej(c.signal.reason))) },
    { name: "hang", handler: (_p, c) => new Promise((_, rej) => c.signal.addEventListener("abort", () => rej(c.signal.reason))) },
    { name: "whoami", auth: { provider: "hubspot" }, handler: (_p, c) => ({ token: c.authToken?.value() }) },
    { name: "peek", handler: (_p, c) => ({ token: c.authToken ? "leaked" : "", transport: c.transport, request_id: c.requestId }) },
    { name: "gated", handler: (_p, c) => gate.wait(c.requestId, c.signal) },
  );
}

interface Run {
  done: Promise<void>;
  ctrl: AbortController;
  logs: LogBuffer;
  states: State[];
}

// Every serve a test starts is stopped when its fake server closes, even
// when the test failed, so that no reconnect loop outlives its test.
const running = new Map<FakeATP, Run[]>();

function start(f: FakeATP, tk: Toolkit, edit: Partial<ServeOptions> = {}): Run {
  const ctrl = new AbortController();
  const logs = new LogBuffer();
  const states: State[] = [];
  const done = serve(tk, { url: f.url, apiKey: f.key, signal: ctrl.signal, logger: logs.logger, backoff: { baseMs: 1, maxMs: 5 }, onState: (s) => states.push(s), ...edit });
  done.catch(() => {});
  const run = { done, ctrl, logs, states };
  running.set(f, [...(running.get(f) ?? []), run]);
  return run;
}

async function withFake(fn: (f: FakeATP) => Promise<void>, prefix = "", k = key): Promise<void> {
  const f = await new FakeATP(k, prefix).start();
  try {
    await fn(f);
  } finally {
    for (const r of running.get(f) ?? []) r.ctrl.abort();
    await Promise.all((running.get(f) ?? []).map((r) => r.done.catch(() => {})));
    running.delete(f);
    await f.close();
  }
}

test("tool requests are answered with result, is_error and latency_ms", () =>
  withFake(async (f) => {
    const run = start(f, newToolkit());
    const c = await f.conns.next("a connection");
    c.request("r1", "echo", { name: "world" });
    let r = await c.response();
    assert.deepEqual(Object.keys(r).filter((k) => k !== "raw").sort(), ["latency_ms", "request_id", "result", "type"]);
    assert.equal(r["type"], "tool_response");
    assert.equal(r["request_id"], "r1");
    assert.deepEqual(r["result"], { hello: "world" });
    c.request(42, "peek");
    r = await c.response();
    assert.match(r.raw, /"request_id":42,/, "a numeric id is echoed as a number");
    assert.deepEqual(r["result"], { token: "", transport: "ws", request_id: "42" });
    assert.equal(f.wsAuth[0], "Bearer " + key);
    run.ctrl.abort();
    await run.done;
  }));

test("every failure is answered once, as an error result the caller can read", () =>
  withFake(async (f) => {
    const tk = newToolkit();
    const run = start(f, tk, { callTimeout: 30 });
    const c = await f.conns.next();
    const expectError = async (id: string, ...want: string[]) => {
      const r = await c.response();
      assert.equal(r["request_id"], id, r.raw);
      assert.equal(r["is_error"], true, r.raw);
      const err = (r["result"] as { error: string }).error;
      for (const w of want) assert.ok(err.includes(w), `${id}: ${err} does not mention ${w}`);
      return r;
    };
    c.request("u1", "nope");
    await expectError("u1", 'unknown tool "nope"', "echo", "forecast");
    c.request("p1", "boom");
    await expectError("p1", "kaboom");
    c.request("after", "echo", { name: "still here" });
    assert.deepEqual((await c.response())["result"], { hello: "still here" });
    c.request("t1", "sleepy");
    await expectError("t1", "tool sleepy timed out after 20ms");
    c.request("t2", "hang");
    await expectError("t2", "tool hang timed out after 30ms");
    c.request("a1", "whoami");
    await expectError("a1", "auth token");
    c.request("a2", "whoami", {}, "tok-user-1");
    assert.deepEqual((await c.response())["result"], { token: "tok-user-1" });
    c.request("a3", "peek", {}, "tok-user-1");
    assert.equal(((await c.response())["result"] as { token: string }).token, "", "a tool that declares no token gets none");

    const params = { days: "three", extra: 1 };
    c.request("v1", "forecast", params);
    const r = await expectError("v1");
    const want = await tk.invoke("forecast", JSON.stringify(params)).catch((e: unknown) => e);
    assert.ok(want instanceof ValidationError);
    assert.equal((r["result"] as { error: string }).error, want.message);
    assert.deepEqual((r["result"] as { problems: unknown }).problems, want.problems);
    assert.equal(want.problems.length, 2);
    assert.match(want.message, /^invalid params for forecast: days: expected integer, got "three"; extra: unknown field \(allowed: days\)$/);
    run.ctrl.abort();
    await run.done;
  }));

test("bad frames are ignored, a malformed request with an id is answered", () =>
  withFake(async (f) => {
    const run = start(f, newToolkit());
    const c = await f.conns.next();
    for (const fr of [
      `{"message_type":"atp_client_connected","payload":{"message":"welcome"}}`,
      `not json at all`,
      `[1,2,3]`,
      `{"message_type":"atp_app_request","payload":{"request_id":"x"}}`,
      `{"payload":{"request_id":"y"}}`,
      `{"message_type":"atp_tool_request","payload":{"tool_name":"echo"}}`,
      `{"message_type":"atp_tool_request","payload":{"request_id":"m1","tool_name":7}}`,
    ]) c.send(fr);
    c.request("ok", "echo", { name: "x" });
    let r = await c.response();
    assert.equal(r["request_id"], "m1");
    assert.match((r["result"] as { error: string }).error, /payload\.tool_name: expected string, got 7/);
    r = await c.response();
    assert.equal(r["request_id"], "ok");
    for (const w of ["ignoring malformed frame", "ignoring unknown message_type", "without message_type", "without request_id", "welcome"]) {
      assert.ok(run.logs.has(w), `log does not mention ${w}:\n${run.logs.text()}`);
    }
    run.ctrl.abort();
    await run.done;
  }));

test("a request over readLimit is refused when its id can be read; the session goes on", () =>
  withFake(async (f) => {
    const run = start(f, newToolkit(), { readLimit: 1024 });
    const c = await f.conns.next();
    const big = "x".repeat(4096);
    c.send(`{"message_type":"atp_tool_request","payload":{"request_id":"big","tool_name":"echo","params":{"name":"${big}"}}}`);
    const r = await c.response();
    assert.equal(r["request_id"], "big");
    assert.match((r["result"] as { error: string }).error, /read limit of 1024 bytes/);
    c.send(`{"message_type":"atp_tool_request","payload":{"params":{"name":"${big}"},"request_id":"late"}}`);
    c.request("small", "echo", { name: "y" });
    assert.equal((await c.response())["request_id"], "small");
    assert.equal(f.conns.length, 0, "no reconnect");
    assert.ok(run.logs.has("refused a frame larger than readLimit"));
    run.ctrl.abort();
    await run.done;
  }));

test("calls run concurrently, at most maxInFlight at once, none dropped", () =>
  withFake(async (f) => {
    const gate = new Gate();
    const run = start(f, newToolkit(gate), { maxInFlight: 2 });
    const c = await f.conns.next();
    const n = 6;
    for (let i = 0; i < n; i++) c.request(`g${i}`, "gated");
    c.request("probe", "nope");
    assert.equal((await c.response())["request_id"], "probe", "an unknown tool needs no slot");
    await gate.started.next();
    await gate.started.next();
    const answered = new Set<string>();
    for (let i = 0; i < n; i++) {
      gate.releaseOne();
      const r = await c.response();
      assert.equal(r["is_error"], undefined, r.raw);
      answered.add(String(r["request_id"]));
      if (answered.size < n - 1) await gate.started.next();
    }
    assert.equal(answered.size, n);
    assert.equal(gate.maxRunning, 2);
    run.ctrl.abort();
    await run.done;
  }));

test("abort drains: the server is told first, running calls are answered, new ones refused, close 1000", () =>
  withFake(async (f) => {
    const gate = new Gate();
    const run = start(f, newToolkit(gate));
    const c = await f.conns.next();
    c.request("inflight", "gated");
    await gate.started.next();
    run.ctrl.abort();
    await c.drainings.next("the draining announcement");
    c.request("late", "echo", { name: "z" });
    let r = await c.response();
    assert.equal(r["request_id"], "late");
    assert.match((r["result"] as { error: string }).error, /shutting down; the call was not run/);
    gate.releaseOne();
    r = await c.response();
    assert.equal(r["request_id"], "inflight");
    assert.equal(r["is_error"], undefined);
    assert.equal(await c.closed, 1000);
    await run.done;
    assert.deepEqual(c.log, ["draining", "late", "inflight"], "{\"type\":\"draining\"} goes before anything else");
  }));

test("the drain deadline cancels and still answers the calls left", () =>
  withFake(async (f) => {
    const gate = new Gate();
    const tk = newToolkit(gate).add({ name: "stubborn", handler: () => new Promise(() => {}) });
    const run = start(f, tk, { drainTimeoutMs: 20, pongTimeoutMs: 50 });
    const c = await f.conns.next();
    c.request("stuck", "gated");
    c.request("s", "stubborn");
    await gate.started.next();
    run.ctrl.abort();
    await c.drainings.next("the draining announcement");
    const got = new Map<string, string>();
    for (let i = 0; i < 2; i++) {
      const r = await c.response();
      got.set(String(r["request_id"]), (r["result"] as { error: string }).error);
    }
    assert.match(got.get("stuck")!, /shutdown deadline passed/);
    assert.equal(got.get("s"), "call to stubborn cancelled: the toolkit's shutdown deadline passed");
    assert.equal(await c.closed, 1000);
    await run.done;
  }));

test("registration sends what changed, with the Go runtime's bodies", () =>
  withFake(async (f) => {
    const tk = newToolkit();
    const run = start(f, tk);
    let c = await f.conns.next();
    const tools = tk.list();
    const want = ["toolkit/verify_hash", ...tools.flatMap((t) => [`toolkit/verify_tool_hash ${t.name}`, `register_tool ${t.name}`])];
    const regs = [...f.regs];
    assert.deepEqual(f.registrations(), want);
    assert.deepEqual(Object.keys(regs[0]!.body).sort(), ["api_key", "app_name", "toolkit_hash"]);
    const echo = regs.find((r) => r.body["function_id"] === "echo")!.body;
    assert.deepEqual(Object.keys(echo).sort(), ["api_key", "app_name", "code_hash", "function_id", "metadata", "programming_language", "toolkit_hash"]);
    assert.equal(echo["programming_language"], "TypeScript");
    assert.equal(echo["code_hash"], tk.get("echo")!.hash);
    assert.deepEqual(echo["metadata"], {
      params: ["name"], required_params: [], description: "Says hello.", auth_provider: null, auth_type: null, auth_with: null,
      sample_response: "", source_code: "", input_schema: { type: "object", properties: { name: { type: "string" } } },
      output_schema: { type: "object", properties: { hello: { type: "string" } } },
    });
    const who = regs.find((r) => r.body["function_id"] === "whoami")!.body["metadata"] as Record<string, unknown>;
    assert.equal(who["auth_provider"], "hubspot");
    assert.equal(who["needs_auth_token"], true);
    assert.ok(!("output_schema" in who));
    // Reconnect, server up to date: only verify_hash.
    c.drop();
    c = await f.conns.next();
    assert.deepEqual(f.registrations(), ["toolkit/verify_hash"]);
    // The server forgot the toolkit: everything again.
    f.forget();
    c.drop();
    c = await f.conns.next();
    assert.equal(f.registrations().filter((p) => p.startsWith("register_tool")).length, tools.length);
    // Only echo is stale.
    f.toolkitHash = "stale";
    f.toolHashes.delete("echo");
    c.drop();
    await f.conns.next();
    assert.deepEqual(f.registrations().filter((p) => p.startsWith("register_tool")), ["register_tool echo"]);
    run.ctrl.abort();
    await run.done;
  }));

test("without verify endpoints, what the server acknowledged is not re-sent", () =>
  withFake(async (f) => {
    f.verifyMissing = true;
    const tk = newToolkit();
    const run = start(f, tk);
    const c = await f.conns.next();
    assert.equal(f.registrations().filter((p) => p.startsWith("register_tool")).length, tk.list().length);
    c.drop();
    await f.conns.next();
    assert.equal(f.registrations().filter((p) => p.startsWith("register_tool")).length, 0);
    run.ctrl.abort();
    await run.done;
  }));

test("a refused registration stops serve; a 503 is retried up to maxAttempts", () =>
  withFake(async (f) => {
    f.registerReply = () => [400, '{"error": "app_name \\"testkit\\" belongs to another account"}'];
    let run = start(f, newToolkit());
    await assert.rejects(run.done, /register_tool .*400 Bad Request.*belongs to another account/);
    assert.equal(f.registrations().filter((p) => p.startsWith("register_tool")).length, 1);
    f.registerReply = () => [503, "busy"];
    run = start(f, newToolkit(), { maxAttempts: 3 });
    await assert.rejects(run.done, /gave up after 3 failed attempts in a row: register_tool .*503 Service Unavailable: busy/);
    assert.equal(f.registrations().filter((p) => p.startsWith("register_tool")).length, 3);
    f.registerReply = null;
    f.wsReject = 403;
    f.wsRejectBody = "key revoked";
    run = start(f, newToolkit());
    await assert.rejects(run.done, /websocket handshake: the server answered 403 Forbidden: key revoked/);
  }));

test("reconnects back off 1 s doubling to the cap, then give up after maxAttempts", () =>
  withFake(async (f) => {
    f.wsReject = 503;
    const clk = new FakeClock();
    const run = start(f, newToolkit(), { clock: clk, backoff: { baseMs: 1000, maxMs: 4000, jitter: -1 }, maxAttempts: 6 });
    const got: number[] = [];
    for (let i = 0; i < 5; i++) got.push(await clk.take());
    assert.deepEqual(got, [1000, 2000, 4000, 4000, 4000]);
    await assert.rejects(run.done, /gave up after 6 failed attempts in a row: websocket handshake: the server answered 503/);
    const re = run.states.filter((s) => s.kind === "reconnecting");
    assert.equal(re.length, 5);
    assert.equal(re[0]!.attempt, 2);
    assert.equal(re[0]!.inMs, 1000);
    for (let a = 2; a <= 6; a++) assert.ok(run.logs.has(`"attempt":${a},"in":"${got[a - 2]! / 1000}s"`), run.logs.text());
  }));

test("the backoff starts again after a healthy session, not after a short one", () =>
  withFake(async (f) => {
    f.wsReject = 503;
    const clk = new FakeClock();
    const run = start(f, newToolkit(), { clock: clk, backoff: { baseMs: 1000, jitter: -1, resetAfterMs: 30_000 } });
    await waitFor(() => f.handshakes === 1, "attempt 1");
    f.wsReject = 0;
    assert.equal(await clk.take(), 1000);
    let c = await f.conns.next();
    await waitFor(() => run.states.at(-1)?.kind === "connected", "connected");
    clk.advance(31_000);
    f.wsReject = 503;
    c.drop();
    assert.equal(await clk.take(), 1000, "a healthy session resets the delays");
    await waitFor(() => f.handshakes === 3, "attempt 2 of the new run");
    f.wsReject = 0;
    assert.equal(await clk.take(), 2000);
    c = await f.conns.next();
    await waitFor(() => run.states.at(-1)?.kind === "connected", "connected again");
    c.drop();
    assert.equal(await clk.take(), 4000, "a session dropped at once does not reset them");
    run.ctrl.abort();
    await run.done;
  }));

test("keepalive pings; a server that stops answering is dropped as dead", () =>
  withFake(async (f) => {
    let run = start(f, newToolkit(), { pingIntervalMs: 5 });
    const c = await f.conns.next();
    await c.pings.next("a ping");
    await c.pings.next("a second ping");
    run.ctrl.abort();
    await run.done;
    f.deaf = true;
    run = start(f, newToolkit(), { pingIntervalMs: 5, pongTimeoutMs: 20 });
    await f.conns.next();
    f.deaf = false;
    await f.conns.next("the reconnect");
    assert.ok(run.logs.has("connection presumed dead"), run.logs.text());
    run.ctrl.abort();
    await run.done;
  }));

test("states and the path prefix", () =>
  withFake(async (f) => {
    const run = start(f, newToolkit());
    let c = await f.conns.next();
    c.request("p", "echo", { name: "prefix" });
    assert.deepEqual((await c.response())["result"], { hello: "prefix" });
    c.drop();
    c = await f.conns.next();
    await waitFor(() => run.states.filter((s) => s.kind === "connected").length === 2, "two connected states");
    run.ctrl.abort();
    await run.done;
    assert.deepEqual(run.states.map((s) => s.kind), ["connected", "disconnected", "reconnecting", "connected", "disconnected"]);
    assert.ok(run.states[1]!.reason instanceof Error);
  }, "/atp", "key/with slash"));

test("the inbox transport long-polls, runs calls concurrently and retries answers", () =>
  withFake(async (f) => {
    f.longPoll = true;
    f.respondFails = 1;
    const gate = new Gate();
    const clk = new FakeClock();
    const run = start(f, newToolkit(gate), { transport: "http", inboxWaitSeconds: 3, clock: clk, backoff: { baseMs: 1 } });
    for (let i = 0; i < 3; i++) assert.equal((await f.polls.next("a poll")).get("wait"), "3", "held polls follow each other without a pause");
    for (let i = 0; i < 4; i++) f.enqueue(JSON.stringify({ request_id: `g${i}`, tool_name: "gated", params: {} }));
    for (let i = 0; i < 4; i++) await gate.started.next();
    gate.releaseAll();
    const d = await clk.take();
    assert.ok(d >= 0 && d <= 1, `retry delay ${d}`);
    const ids = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const a = await f.inboxAnswers.next("an answer");
      assert.equal(a["is_error"], undefined);
      assert.deepEqual(Object.keys(a).sort(), ["latency_ms", "request_id", "response"]);
      ids.add(String(a["request_id"]));
    }
    assert.equal(ids.size, 4);
    f.enqueue(`{"request_id":7,"tool_name":"nope","params":{}}`);
    const bad = await f.inboxAnswers.next();
    assert.equal(bad["request_id"], 7);
    assert.equal(bad["is_error"], true);
    assert.match(JSON.stringify(bad["response"]), /unknown tool \\"nope\\"/);
    run.ctrl.abort();
    await run.done;
  }));

test("an old inbox without long-poll is polled every pollIntervalMs", () =>
  withFake(async (f) => {
    const clk = new FakeClock();
    const run = start(f, newToolkit(), { transport: "http", pollIntervalMs: 7000, clock: clk });
    assert.equal(await clk.take(), 7000);
    f.enqueue(`{"request_id":"i1","tool_name":"echo","params":{"name":"inbox"},"auth_token":null}`);
    assert.equal(await clk.take(), 7000);
    const a = await f.inboxAnswers.next();
    assert.deepEqual(a["response"], { hello: "inbox" });
    run.ctrl.abort();
    await run.done;
  }));

test("the inbox transport drains on abort", () =>
  withFake(async (f) => {
    f.longPoll = true;
    const gate = new Gate();
    const run = start(f, newToolkit(gate), { transport: "http" });
    f.enqueue(`{"request_id":"d1","tool_name":"gated","params":{}}`);
    await gate.started.next();
    run.ctrl.abort();
    gate.releaseOne();
    const a = await f.inboxAnswers.next();
    assert.equal(a["request_id"], "d1");
    assert.equal(a["is_error"], undefined);
    await run.done;
  }));

test("the API key is in no log line and no error", async () => {
  const secret = "sk-live/SECRET key+42";
  const f = await new FakeATP(secret).start();
  const lines: string[] = [];
  try {
    f.wsReject = 503;
    f.wsRejectBody = `no route for /ws/v1/atp/toolkit-client/${encodeURIComponent(secret)}/ (${secret})`;
    const logs = new LogBuffer();
    const ctrl = new AbortController();
    const err = await serve(newToolkit(), { url: f.url, apiKey: secret, signal: ctrl.signal, logger: logs.logger, maxAttempts: 2, backoff: { baseMs: 1 } }).catch((e: unknown) => e as Error);
    assert.ok(err instanceof Error);
    lines.push(err.message, String(err.cause), ...logs.lines);
    const dead = await new FakeATP(secret).start();
    const deadURL = dead.url;
    await dead.close();
    const err2 = await serve(newToolkit(), { url: deadURL, apiKey: secret, logger: logs.logger, maxAttempts: 1, transport: "http" }).catch((e: unknown) => e as Error);
    lines.push((err2 as Error).message, ...logs.lines);
    const err3 = await serve(newToolkit(), { url: "ftp://x", apiKey: secret }).catch((e: unknown) => e as Error);
    lines.push((err3 as Error).message);
  } finally {
    await f.close();
  }
  for (const l of lines) {
    for (const form of [secret, encodeURIComponent(secret), "SECRET"]) assert.ok(!l.includes(form), `leak in: ${l}`);
  }
  assert.ok(lines.some((l) => l.includes("[REDACTED]")), "the redaction is visible");
});

test("options are checked before anything is sent", async () => {
  const tk = newToolkit();
  const cases: [Partial<ServeOptions>, RegExp][] = [
    [{ apiKey: "k" }, /url is empty/],
    [{ url: "http://127.0.0.1:1" }, /apiKey is empty/],
    [{ url: "ftp://example.com", apiKey: "k" }, /scheme "ftp" not supported/],
    [{ url: "example.com/atp", apiKey: "k" }, /not a URL with a scheme/],
    [{ url: "https://u:p@example.com", apiKey: "k" }, /must not hold a user name or password/],
    [{ url: "http://127.0.0.1:1", apiKey: "k", transport: "grpc" as "ws" }, /transport: expected "ws", "http" or "platools", got "grpc"/],
    [{ url: "http://127.0.0.1:1", apiKey: "k", maxInFlight: -1 }, /maxInFlight: expected a positive number or 0 for the default, got -1/],
    [{ url: "http://127.0.0.1:1", apiKey: "k", backoff: { baseMs: 60_000, maxMs: 1000 } }, /backoff.maxMs \(1000\) is less than backoff.baseMs \(60000\)/],
    [{ url: "http://127.0.0.1:1", apiKey: "k", inboxWaitSeconds: 1.5 }, /whole seconds/],
    [{ url: "http://127.0.0.1:1", apiKey: "k", callTimeout: Number.NaN }, /callTimeout: expected milliseconds, 0 for the default or negative for no bound, got NaN/],
    [{ url: "http://127.0.0.1:1", apiKey: "k", backoff: { baseMs: -1 } }, /backoff.baseMs: expected a positive number or 0 for the default, got -1/],
  ];
  for (const [o, want] of cases) await assert.rejects(serve(tk, o as ServeOptions), want);
  await assert.rejects(serve(new Toolkit("empty"), { url: "http://127.0.0.1:1", apiKey: "k" }), /no tools/);
});

test("a session is connected on the server's greeting, not on the handshake", () =>
  withFake(async (f) => {
    f.greet = false;
    const clk = new FakeClock();
    const run = start(f, newToolkit(), { clock: clk });
    const c = await f.conns.next();
    const grace = await clk.sleeps.next("the greeting's grace");
    assert.equal(grace.ms, 1000);
    assert.equal(run.states.length, 0, "an open WebSocket is not yet routable");
    c.send({ message_type: "atp_client_connected", payload: { message: "routable now" } });
    await waitFor(() => run.states.length === 1, "connected");
    assert.equal(run.states[0]!.kind, "connected");
    assert.ok(grace.signal.aborted, "the greeting ends the grace");
    assert.ok(run.logs.has('"on":"the server\'s greeting"'), run.logs.text());
    c.send({ message_type: "atp_client_connected", payload: { message: "again" } });
    c.request("after", "echo", { name: "x" });
    await c.response();
    assert.equal(run.states.length, 1, "connected once");
    run.ctrl.abort();
    await run.done;
  }));

test("without a greeting, the first request or a second on the clock counts as connected", () =>
  withFake(async (f) => {
    f.greet = false;
    const clk = new FakeClock();
    const run = start(f, newToolkit(), { clock: clk, backoff: { baseMs: 3, maxMs: 3, jitter: -1 } });
    let c = await f.conns.next();
    const grace = await clk.sleeps.next("the greeting's grace");
    c.request("first", "echo", { name: "x" });
    await c.response();
    assert.deepEqual(run.states.map((s) => s.kind), ["connected"]);
    assert.ok(grace.signal.aborted);
    assert.ok(run.logs.has('"on":"a tool request"'), run.logs.text());
    c.drop();
    assert.equal(await clk.take(), 3, "the reconnect backoff");
    c = await f.conns.next("the reconnect");
    assert.equal(run.states.at(-1)!.kind, "reconnecting");
    assert.equal(await clk.take(), 1000, "the grace, on the injected clock");
    await waitFor(() => run.states.at(-1)?.kind === "connected", "connected after the grace");
    assert.ok(run.logs.has('"on":"no greeting from the server within 1s"'), run.logs.text());
    run.ctrl.abort();
    await run.done;
  }));

test("params that are not UTF-8 reach the validator as bytes: the call fails, not the connection", () =>
  withFake(async (f) => {
    const run = start(f, newToolkit());
    const c = await f.conns.next();
    const frame = (id: string, tool: Buffer, params: Buffer) =>
      Buffer.concat([Buffer.from(`{"message_type":"atp_tool_request","payload":{"request_id":"${id}","tool_name":"`), tool, Buffer.from('","params":'), params, Buffer.from("}}")]);
    c.send(frame("u1", Buffer.from("echo"), Buffer.concat([Buffer.from('{"name":"a'), Buffer.from([0xc3]), Buffer.from('"}')])));
    let r = await c.response();
    assert.equal(r["request_id"], "u1");
    assert.deepEqual((r["result"] as { problems: unknown }).problems, [{ path: "name", message: "invalid UTF-8 in string" }]);
    assert.equal((r["result"] as { error: string }).error, "invalid params for echo: name: invalid UTF-8 in string");
    // The envelope is read leniently: a tool name that is not UTF-8 is an
    // unknown tool, not a malformed frame.
    c.send(frame("u2", Buffer.from([0x65, 0xff]), Buffer.from("{}")));
    r = await c.response();
    assert.match((r["result"] as { error: string }).error, /^unknown tool "e\ufffd"/);
    c.request("still", "echo", { name: "here" });
    assert.deepEqual((await c.response())["result"], { hello: "here" });
    assert.equal(f.conns.length, 0, "the connection stayed up");
    run.ctrl.abort();
    await run.done;
  }));

test("the inbox reads params as bytes too", () =>
  withFake(async (f) => {
    f.longPoll = true;
    const run = start(f, newToolkit(), { transport: "http" });
    f.enqueue(Buffer.concat([Buffer.from('{"request_id":"b1","tool_name":"echo","params":{"name":"'), Buffer.from([0xff]), Buffer.from('"}}')]));
    const a = await f.inboxAnswers.next();
    assert.equal(a["request_id"], "b1");
    assert.equal(a["is_error"], true);
    assert.deepEqual((a["response"] as { problems: unknown }).problems, [{ path: "name", message: "invalid UTF-8 in string" }]);
    run.ctrl.abort();
    await run.done;
  }));

test("inbox shutdown releases the held poll and runs the request it brings", () =>
  withFake(async (f) => {
    f.longPoll = true;
    f.holdMs = 60_000;
    const run = start(f, newToolkit(), { transport: "http" });
    await f.polls.next("a held poll");
    // The server writes a request into the poll as it releases it: cut,
    // the poll would lose it.
    f.releaseWith = '{"request_id":"rel1","tool_name":"echo","params":{"name":"released"}}';
    run.ctrl.abort();
    const a = await f.inboxAnswers.next("the answer of the released request");
    assert.equal(a["request_id"], "rel1");
    assert.deepEqual(a["response"], { hello: "released" });
    await run.done;
    assert.equal(f.releases, 1);
    assert.equal(f.cutPolls, 0, "the poll was read to its end");
    assert.equal(f.polls.length, 0, "no poll after the shutdown began");
  }));

test("inbox shutdown cuts the poll when the server cannot release it", () =>
  withFake(async (f) => {
    f.longPoll = true;
    f.holdMs = 60_000;
    f.releaseMissing = true;
    const run = start(f, newToolkit(), { transport: "http" });
    await f.polls.next("a held poll");
    run.ctrl.abort();
    await run.done;
    assert.equal(f.releases, 1, "the release was tried");
    await waitFor(() => f.cutPolls === 1, "the poll to be cut");
  }));

test("a released poll that does not come back is cut after two seconds", () =>
  withFake(async (f) => {
    f.longPoll = true;
    f.holdMs = 60_000;
    f.releaseKeepsPolls = true;
    const run = start(f, newToolkit(), { transport: "http" });
    await f.polls.next("a held poll");
    const t0 = Date.now();
    run.ctrl.abort();
    await run.done;
    assert.ok(Date.now() - t0 >= 1900, "the poll had its time to come back");
    await waitFor(() => f.cutPolls === 1, "the poll to be cut");
  }));
