// End to end against the real `atp serve` built from this repository: a
// TypeScript toolkit called by Go's llmclient, by `atp call` and by the
// TypeScript agent client (HTTP and WebSocket, every provider shape); the
// Go hello toolkit called by the TypeScript agent client; a TypeScript
// toolkit served to atp serve over the Platools wire.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { z } from "zod";
import { APIError, Client, serve, type State, Toolkit, tool } from "../src/index.js";
import { type Binaries, buildGo, cleanup, execFileAsync, type Server, startGoToolkit, startServer } from "./atpserver.js";
import { LogBuffer } from "./fakeatp.js";
import { waitFor } from "./helpers.js";

let bins: Binaries;
let srv: Server;
let llmKey: string;
const ctrl = new AbortController();
const states: State[] = [];
const tsLogs = new LogBuffer();
let tsDone: Promise<void>;
let goToolkit: { stop(): Promise<void> };

function weather(name = "weather"): Toolkit {
  return new Toolkit(name, { logger: new LogBuffer().logger }).add(
    tool({
      name: "forecast",
      description: "Weather for the next days.",
      input: z.object({ city: z.string().describe("City name"), days: z.number().int().min(1).max(14), units: z.enum(["celsius", "fahrenheit"]).optional() }),
      hints: { readOnly: true },
      handler: ({ city, days, units }) => ({ city, days, units: units ?? "celsius", summary: `${days} days of sun in ${city}` }),
    }),
    { name: "fail", description: "Always fails.", handler: () => { throw new Error("the weather service is down"); } },
    { name: "slow", description: "Sleeps.", inputSchema: { type: "object", properties: { ms: { type: "integer" } }, required: ["ms"] }, handler: (p) => new Promise((r) => setTimeout(() => r({ slept: p["ms"] }), p["ms"] as number)) },
  );
}

before(async () => {
  bins = await buildGo();
  srv = await startServer(bins);
  const tsKey = await srv.key("toolkit", "ts-weather");
  const goKey = await srv.key("toolkit", "go-hello");
  llmKey = await srv.key("llm", "agent");
  tsDone = serve(weather(), { url: srv.url, apiKey: tsKey, signal: ctrl.signal, logger: tsLogs.logger, onState: (s) => states.push(s) });
  await waitFor(() => states.some((s) => s.kind === "connected"), "the TypeScript toolkit to connect", 30_000);
  goToolkit = await startGoToolkit(bins, srv.url, goKey);
});

after(async () => {
  ctrl.abort();
  await tsDone?.catch(() => {});
  await goToolkit?.stop();
  await srv?.stop();
  if (bins) await cleanup(bins);
});

test("Go's llmclient calls the TypeScript toolkit (Anthropic shapes, HTTP and WebSocket)", async () => {
  const calls = JSON.stringify([
    { type: "tool_use", id: "toolu_1", name: "forecast", input: { city: "Paris", days: 3 } },
    { type: "tool_use", id: "toolu_2", name: "forecast", input: { city: 7, days: "three", dayz: 1 } },
    { type: "tool_use", id: "toolu_3", name: "fail", input: {} },
  ]);
  for (const transport of ["http", "ws"]) {
    const { stdout } = await execFileAsync(bins.llmcall, ["-url", srv.url, "-toolkit", "weather", "-provider", "anthropic", "-transport", transport, "-calls", calls], { env: { ...process.env, ATP_API_KEY: llmKey } });
    const out = JSON.parse(stdout) as { tools: { name: string; input_schema: unknown }[]; messages: { role: string; content: { tool_use_id: string; content: string; is_error?: boolean }[] }[] };
    assert.deepEqual(out.tools.map((t) => t.name).sort(), ["fail", "forecast", "slow"]);
    const forecast = out.tools.find((t) => t.name === "forecast")!;
    assert.deepEqual((forecast.input_schema as { required: string[] }).required, ["city", "days"]);
    assert.equal(out.messages.length, 1);
    const [ok, bad, failed] = out.messages[0]!.content;
    assert.equal(ok!.tool_use_id, "toolu_1");
    assert.deepEqual(JSON.parse(ok!.content), { city: "Paris", days: 3, units: "celsius", summary: "3 days of sun in Paris" });
    assert.equal(ok!.is_error, undefined);
    assert.equal(bad!.is_error, true);
    assert.equal(bad!.content, 'invalid params for forecast: city: expected string, got 7; days: expected integer, got "three"; dayz: unknown field (allowed: city, days, units)');
    assert.equal(failed!.is_error, true);
    assert.match(failed!.content, /the weather service is down/);
  }
});

test("atp serve greets the TypeScript toolkit, which counts itself connected then", () => {
  assert.ok(tsLogs.has("INFO atp: server greeting"), tsLogs.text());
  assert.ok(tsLogs.has('"on":"the server\'s greeting"'), tsLogs.text());
  assert.deepEqual(states.map((s) => s.kind), ["connected"]);
});

test("a draining TypeScript toolkit gets no new calls from atp serve, and answers those it has", async () => {
  const key = await srv.key("toolkit", "ts-drain");
  const started: (() => void)[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((r) => (release = r));
  const tk = new Toolkit("drainkit", { logger: new LogBuffer().logger }).add(
    { name: "gated", handler: async () => { started.push(() => {}); await released; return "finished"; } },
    { name: "quick", handler: () => "ran" },
  );
  const stop = new AbortController();
  const st: State[] = [];
  const done = serve(tk, { url: srv.url, apiKey: key, signal: stop.signal, logger: new LogBuffer().logger, onState: (s) => st.push(s), drainTimeoutMs: 60_000 });
  done.catch(() => {});
  const c = new Client({ apiKey: llmKey, baseUrl: srv.url, transport: "ws", logger: new LogBuffer().logger });
  try {
    await waitFor(() => st.some((s) => s.kind === "connected"), "the toolkit to connect", 30_000);
    const running = c.call("drainkit", "gated", {});
    await waitFor(() => started.length === 1, "the gated call to start");
    stop.abort();
    // The toolkit announces the drain before anything else it sends: once
    // a call comes back refused by the toolkit, atp serve has read the
    // announcement, and routes nothing more to the connection.
    let r = await c.call("drainkit", "quick", {});
    if (!r.error.includes("is offline")) {
      assert.match(r.error, /the toolkit is shutting down; the call was not run/);
      r = await c.call("drainkit", "quick", {});
    }
    assert.match(r.error, /toolkit "drainkit" is offline: its connections are shutting down/);
    release();
    const first = await running;
    assert.equal(first.error, "");
    assert.equal(first.value, '"finished"');
    await done;
  } finally {
    release();
    stop.abort();
    c.close();
    await done.catch(() => {});
  }
});

test("an inbox toolkit that shuts down has atp serve release its held poll", async () => {
  const key = await srv.key("toolkit", "ts-inbox-release");
  const logs = new LogBuffer();
  const stop = new AbortController();
  const st: State[] = [];
  const done = serve(weather("inboxkit"), { url: srv.url, apiKey: key, signal: stop.signal, logger: logs.logger, onState: (s) => st.push(s), transport: "http" });
  done.catch(() => {});
  await waitFor(() => st.some((s) => s.kind === "connected"), "the inbox toolkit to connect", 30_000);
  const env = { ...process.env, ATP_API_KEY: llmKey };
  const { stdout } = await execFileAsync(bins.atp, ["call", "--url", srv.url, "--toolkit", "inboxkit", "--tool", "forecast", "--params", '{"city":"Lima","days":1}'], { env });
  assert.equal(JSON.parse(stdout).city, "Lima");
  // A poll is held now: the shutdown asks atp serve to release it rather
  // than cut it, and takes no longer than the release.
  const t0 = Date.now();
  stop.abort();
  await done;
  assert.ok(logs.has("the server released the inbox polls"), logs.text());
  assert.ok(!logs.has("cutting the poll"), logs.text());
  assert.ok(Date.now() - t0 < 2000, `the shutdown took ${Date.now() - t0} ms`);
});

test("atp call calls the TypeScript toolkit", async () => {
  const env = { ...process.env, ATP_API_KEY: llmKey };
  const { stdout } = await execFileAsync(bins.atp, ["call", "--url", srv.url, "--toolkit", "weather", "--tool", "forecast", "--params", '{"city":"Oslo","days":2}'], { env });
  assert.deepEqual(JSON.parse(stdout), { city: "Oslo", days: 2, units: "celsius", summary: "2 days of sun in Oslo" });
  const err = await execFileAsync(bins.atp, ["call", "--url", srv.url, "--toolkit", "weather", "--tool", "fail"], { env }).catch((e: { code: number; stdout: string; stderr: string }) => e);
  assert.equal((err as { code: number }).code, 1);
  assert.match((err as { stdout: string; stderr: string }).stderr + (err as { stdout: string }).stdout, /the weather service is down/);
});

test("the TypeScript agent calls the Go hello toolkit, every provider shape, HTTP and WebSocket", async () => {
  for (const transport of ["http", "ws"] as const) {
    const c = new Client({ apiKey: llmKey, baseUrl: srv.url, transport, logger: new LogBuffer().logger });
    try {
      const ctx = await c.getToolkitContext("hello", "anthropic");
      assert.deepEqual((ctx.tools as { name: string }[]).map((t) => t.name).sort(), ["add", "greet"]);
      const gem = await c.getToolkitContext("hello", "gemini");
      assert.deepEqual(Object.keys(gem.requestTools()[0] as object), ["functionDeclarations"]);

      // Anthropic: one user message of tool_result blocks, errors flagged.
      let msgs = (await c.callTools("hello", "anthropic", {
        role: "assistant",
        content: [
          { type: "text", text: "Let me greet." },
          { type: "tool_use", id: "toolu_a", name: "greet", input: { name: "Ada", times: 2 } },
          { type: "tool_use", id: "toolu_b", name: "greet", input: { name: "Ada", times: "two" } },
        ],
      }, { externalUserId: "user-42" })) as { role: string; content: { tool_use_id: string; content: string; is_error?: boolean }[] }[];
      assert.equal(msgs.length, 1);
      assert.equal(msgs[0]!.role, "user");
      assert.deepEqual(msgs[0]!.content[0], { type: "tool_result", tool_use_id: "toolu_a", content: "Hello, Ada! Hello, Ada!" });
      assert.deepEqual(msgs[0]!.content[1], { type: "tool_result", tool_use_id: "toolu_b", content: 'invalid params for greet: times: expected integer, got "two"', is_error: true });

      // OpenAI Responses: function_call_output items.
      const items = (await c.callTools("hello", "openai", { output: [{ type: "function_call", call_id: "call_1", name: "add", arguments: '{"a":2,"b":3}' }, { type: "function_call", call_id: "call_2", name: "add", arguments: '{"a":2,' }] })) as Record<string, unknown>[];
      assert.deepEqual(items[0], { type: "function_call_output", call_id: "call_1", output: "5" });
      assert.deepEqual(items[1], { type: "function_call_output", call_id: "call_2", output: '{"error":"arguments: not valid JSON: unexpected end of input at offset 7"}' });

      // OpenAI Chat: role "tool" messages.
      msgs = (await c.callTools("hello", "openai", { choices: [{ message: { role: "assistant", tool_calls: [{ id: "c1", type: "function", function: { name: "add", arguments: '{"a":1,"b":1}' } }] } }] })) as never;
      assert.deepEqual(msgs, [{ role: "tool", tool_call_id: "c1", content: "2" }]);

      // Mistral: arguments as an object, "name" in the reply.
      const mis = await c.callTools("hello", "mistral", { role: "assistant", tool_calls: [{ id: "abcDEF123", function: { name: "greet", arguments: { name: "Bo", times: 1 } } }] });
      assert.deepEqual(mis, [{ role: "tool", tool_call_id: "abcDEF123", name: "greet", content: "Hello, Bo!" }]);

      // Gemini: functionResponse parts, errors in response.error.
      const gm = (await c.callTools("hello", "gemini", { candidates: [{ content: { role: "model", parts: [{ functionCall: { name: "add", args: { a: 1, b: 2 } } }, { functionCall: { name: "nope", args: {} } }] } }] })) as { parts: { functionResponse: { name: string; response: Record<string, unknown> } }[] }[];
      assert.deepEqual(gm[0]!.parts[0], { functionResponse: { name: "add", response: { output: 3 } } });
      assert.equal(gm[0]!.parts[1]!.functionResponse.name, "nope");
      assert.match(String(gm[0]!.parts[1]!.functionResponse.response["error"]), /nope/);

      // Plain call.
      const r = await c.call("hello", "add", { a: 20, b: 22 });
      assert.equal(r.value, "42");
      assert.equal(r.error, "");

      // The key is refused as a toolkit that does not exist.
      await assert.rejects(c.getToolkitContext("nosuch", "openai"), /atp client: get the context of toolkit "nosuch"/);
    } finally {
      c.close();
    }
  }
});

test("the TypeScript agent runs independent calls concurrently", async () => {
  const c = new Client({ apiKey: llmKey, baseUrl: srv.url, transport: "ws", logger: new LogBuffer().logger });
  try {
    const calls = Array.from({ length: 8 }, (_, i) => ({ type: "tool_use", id: `t${i}`, name: "slow", input: { ms: 200 } }));
    const start = Date.now();
    const msgs = (await c.callTools("weather", "anthropic", calls)) as { content: { content: string }[] }[];
    const concurrent = Date.now() - start;
    assert.equal(msgs[0]!.content.length, 8);
    for (const b of msgs[0]!.content) assert.deepEqual(JSON.parse(b.content), { slept: 200 });
    const startSeq = Date.now();
    await c.callTools("weather", "anthropic", calls.slice(0, 3), { sequential: true });
    const sequential = Date.now() - startSeq;
    // Eight 200 ms calls at once take far less than the three run in turn.
    assert.ok(concurrent < sequential, `8 concurrent calls took ${concurrent} ms, 3 sequential ${sequential} ms`);
  } finally {
    c.close();
  }
});

test("a wrong LLM key is refused with the server's reason, and never printed", async () => {
  const bad = "sk-wrong-key-123456";
  for (const transport of ["http", "ws"] as const) {
    const logs = new LogBuffer();
    const c = new Client({ apiKey: bad, baseUrl: srv.url, transport, logger: logs.logger, backoff: { maxAttempts: 1 } });
    const err = await c.getToolkitContext("hello", "openai").catch((e: unknown) => e as Error);
    c.close();
    assert.ok(err instanceof Error);
    assert.ok(err.cause instanceof APIError || err instanceof APIError, `${transport}: ${err.message}`);
    for (const text of [err.message, String(err.cause), ...logs.lines]) assert.ok(!text.includes(bad), `${transport} leaked the key: ${text}`);
  }
});

test("the TypeScript toolkit's registration is up to date after a reconnect", async () => {
  // A second serve of the same contracts with the same key finds the
  // server up to date: the contract hashes match what it stored.
  const key2 = await srv.key("toolkit", "ts-weather-2");
  const logs = new LogBuffer();
  const c2 = new AbortController();
  const st: State[] = [];
  const done = serve(weather("weather2"), { url: srv.url, apiKey: key2, signal: c2.signal, logger: logs.logger, onState: (s) => st.push(s), transport: "http" });
  await waitFor(() => st.some((s) => s.kind === "connected"), "the inbox toolkit to connect", 30_000);
  assert.ok(logs.has('"sent":3'), logs.text());
  c2.abort();
  await done;
  const logs2 = new LogBuffer();
  const c3 = new AbortController();
  const st2: State[] = [];
  const done2 = serve(weather("weather2"), { url: srv.url, apiKey: key2, signal: c3.signal, logger: logs2.logger, onState: (s) => st2.push(s) });
  await waitFor(() => st2.some((s) => s.kind === "connected"), "the second serve to connect", 30_000);
  assert.ok(logs2.has("registration up to date"), logs2.text());
  c3.abort();
  await done2;
});

test("a TypeScript toolkit served over the Platools wire is called by Go's llmclient, atp call and the TypeScript agent", async () => {
  const key = await srv.key("toolkit", "ts-platools");
  const logs = new LogBuffer();
  const stop = new AbortController();
  const st: State[] = [];
  const done = serve(weather("pt-weather"), { url: srv.url + "/?entity=pt-weather&env=prod", apiKey: key, transport: "platools", signal: stop.signal, logger: logs.logger, onState: (s) => st.push(s) });
  done.catch(() => {});
  try {
    await waitFor(() => st.some((s) => s.kind === "connected"), "atp serve to take the Platools toolkit's tools", 30_000);
    assert.ok(logs.has("INFO atp: platools: welcome"), logs.text());
    assert.ok(logs.has('"on":"the platform registered the tools"'), logs.text());
    assert.ok(!logs.has("no welcome from the platform"), logs.text());
    const calls = JSON.stringify([
      { type: "tool_use", id: "toolu_1", name: "forecast", input: { city: "Rome", days: 2 } },
      { type: "tool_use", id: "toolu_2", name: "forecast", input: { city: 7, days: "three", dayz: 1 } },
      { type: "tool_use", id: "toolu_3", name: "fail", input: {} },
    ]);
    for (const transport of ["http", "ws"]) {
      const { stdout } = await execFileAsync(bins.llmcall, ["-url", srv.url, "-toolkit", "pt-weather", "-provider", "anthropic", "-transport", transport, "-calls", calls], { env: { ...process.env, ATP_API_KEY: llmKey } });
      const out = JSON.parse(stdout) as { tools: { name: string }[]; messages: { content: { tool_use_id: string; content: string; is_error?: boolean }[] }[] };
      assert.deepEqual(out.tools.map((t) => t.name).sort(), ["fail", "forecast", "slow"]);
      const [ok, bad, failed] = out.messages[0]!.content;
      assert.deepEqual(JSON.parse(ok!.content), { city: "Rome", days: 2, units: "celsius", summary: "2 days of sun in Rome" });
      assert.equal(bad!.is_error, true);
      assert.equal(bad!.content, 'invalid params for forecast: city: expected string, got 7; days: expected integer, got "three"; dayz: unknown field (allowed: city, days, units)');
      assert.equal(failed!.is_error, true);
      assert.match(failed!.content, /the weather service is down/);
      assert.doesNotMatch(failed!.content, /\n\s+at /, "the toolkit's traceback stays with atp serve");
    }
    const env = { ...process.env, ATP_API_KEY: llmKey };
    const { stdout } = await execFileAsync(bins.atp, ["call", "--url", srv.url, "--toolkit", "pt-weather", "--tool", "forecast", "--params", '{"city":"Oslo","days":1}'], { env });
    assert.deepEqual(JSON.parse(stdout), { city: "Oslo", days: 1, units: "celsius", summary: "1 days of sun in Oslo" });
    const c = new Client({ apiKey: llmKey, baseUrl: srv.url, transport: "ws", logger: new LogBuffer().logger });
    try {
      const r = await c.call("pt-weather", "fail", {});
      assert.equal(r.error, "the weather service is down");
    } finally {
      c.close();
    }
  } finally {
    stop.abort();
    await done;
  }
});
