// The agent client's parsing and formatting of tool calls, and its
// WebSocket transport against a fake LLM endpoint: authentication, a
// connection lost mid-call, a context request retried on a new connection.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { WebSocketServer, type WebSocket } from "ws";
import { Client, ConnectionLostError, formatToolResults, parseToolCalls } from "../src/index.js";
import { LogBuffer, Queue } from "./fakeatp.js";

test("tool calls are read from every provider's shapes", () => {
  const oa = parseToolCalls("openai", { output: [{ type: "reasoning" }, { type: "function_call", call_id: "c1", name: "add", arguments: '{"b":2,"a":1.0}' }] });
  assert.deepEqual(oa, [{ id: "c1", name: "add", arguments: '{"b":2,"a":1.0}', generatedId: false }]);
  const chat = parseToolCalls("openai-chat", '{"choices":[{"message":{"role":"assistant","tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":""}}]}}]}');
  assert.deepEqual(chat, [{ id: "x", name: "f", arguments: "{}", generatedId: false }]);
  const an = parseToolCalls("claude", { content: [{ type: "text", text: "hi" }, { type: "tool_use", id: "t", name: "g", input: { q: "é<>" } }] });
  assert.deepEqual(an, [{ id: "t", name: "g", arguments: '{"q":"é<>"}', generatedId: false }]);
  const gem = parseToolCalls("gemini", { candidates: [{ content: { parts: [{ text: "x" }, { functionCall: { name: "h", args: { n: 1 } } }] } }] });
  assert.equal(gem.length, 1);
  assert.match(gem[0]!.id, /^[0-9A-Za-z]{9}$/);
  assert.equal(gem[0]!.generatedId, true);
  assert.deepEqual(parseToolCalls("gemini", { parts: [{ functionCall: { name: "h", args: { n: 1 } } }] }), gem, "the same call gets the same id");

  const bad = parseToolCalls("openai", [
    { type: "function_call", call_id: "a", name: "f", arguments: '{"x":' },
    { type: "function_call", call_id: "b", name: "f", arguments: "[1]" },
    { type: "function_call", call_id: "c", name: "f", arguments: '{"x":1,"x":2}' },
    { type: "function_call", call_id: "d", name: "f", arguments: 7 },
  ]);
  assert.deepEqual(bad.map((c) => c.error), [
    "arguments: not valid JSON: unexpected end of input at offset 5",
    "arguments: expected a JSON object, got array",
    'arguments: duplicate key "x"',
    "arguments: expected a JSON object (or a string holding one), got number",
  ]);
  assert.throws(() => parseToolCalls("cohere", []), /provider: unknown provider "cohere"; supported: openai, openai-chat, anthropic, mistral \(or mistralai\), gemini, mcp/);
  assert.throws(() => parseToolCalls("anthropic", [{ id: "z" }]), /provider: anthropic: tool call 0 \(id "z"\): not a tool call/);
  assert.throws(() => parseToolCalls("openai", [{ type: "function_call", call_id: "q", arguments: "{}" }]), /tool call 0 \(id "q"\): name is missing/);
  assert.throws(() => parseToolCalls("openai", "{nope"), /tool calls are not valid JSON: invalid character 'n' looking for beginning of object key string at offset 1/);
  assert.deepEqual(parseToolCalls("anthropic", { role: "assistant", content: "just text" }), []);
});

test("results go back in each provider's shape, failures readable", () => {
  const call = { id: "c1", name: "add", arguments: "{}", generatedId: false };
  const ok = { call, result: '{"sum":3}', isError: false, error: "" };
  const ko = { call: { ...call, id: "c2" }, result: '{"error":"boom"}', isError: true, error: "boom" };
  assert.deepEqual(formatToolResults("openai", [ok, ko]), [
    { type: "function_call_output", call_id: "c1", output: '{"sum":3}' },
    { type: "function_call_output", call_id: "c2", output: '{"error":"boom"}' },
  ]);
  assert.deepEqual(formatToolResults("anthropic", [ok, ko]), [
    { role: "user", content: [{ type: "tool_result", tool_use_id: "c1", content: '{"sum":3}' }, { type: "tool_result", tool_use_id: "c2", content: "boom", is_error: true }] },
  ]);
  assert.deepEqual(formatToolResults("mistral", [ok]), [{ role: "tool", tool_call_id: "c1", name: "add", content: '{"sum":3}' }]);
  assert.deepEqual(formatToolResults("gemini", [{ ...ok, call: { ...call, generatedId: true } }, ko]), [
    { role: "user", parts: [{ functionResponse: { name: "add", response: { output: { sum: 3 } } } }, { functionResponse: { name: "add", id: "c2", response: { error: "boom" } } }] },
  ]);
  assert.deepEqual(formatToolResults("openai-chat", [{ ...ok, result: '"plain text"' }]), [{ role: "tool", tool_call_id: "c1", content: "plain text" }]);
  assert.throws(() => formatToolResults("openai", [{ ...ok, call: { ...call, id: "" } }]), /the call's id is empty/);
});

/** FakeLLM is the LLM side of an ATP server over WebSocket. */
class FakeLLM {
  readonly server = http.createServer((_q, r) => r.writeHead(404).end());
  readonly wss = new WebSocketServer({ server: this.server });
  readonly requests = new Queue<{ ws: WebSocket; m: Record<string, unknown> }>();
  connections = 0;
  constructor(readonly key: string) {
    this.wss.on("connection", (ws, req) => {
      this.connections++;
      const pathKey = decodeURIComponent((req.url ?? "").split("/").at(-2) ?? "");
      ws.on("message", (d: Buffer) => {
        const m = JSON.parse(d.toString()) as Record<string, unknown>;
        if (m["type"] === "auth") {
          const ok = m["api_key"] === this.key && pathKey === this.key;
          ws.send(JSON.stringify(ok ? { type: "auth_response", success: true } : { type: "auth_response", success: false, error: `invalid API key ${String(m["api_key"])}` }));
          if (!ok) ws.close();
          return;
        }
        this.requests.push({ ws, m });
      });
    });
  }
  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, "127.0.0.1", r));
    return this;
  }
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }
  async close(): Promise<void> {
    for (const c of this.wss.clients) c.terminate();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

test("over one WebSocket: multiplexed answers, a lost task is not resent, a context request is", async () => {
  const f = await new FakeLLM("llm-key-1").start();
  const c = new Client({ apiKey: "llm-key-1", baseUrl: f.url, transport: "ws", logger: new LogBuffer().logger, backoff: { baseMs: 1 } });
  try {
    // Two calls in flight on one connection, answered in reverse order.
    const p1 = c.call("kit", "a", { n: 1 });
    const p2 = c.call("kit", "b", { n: 2 });
    const r1 = await f.requests.next();
    const r2 = await f.requests.next();
    assert.equal(r1.m["type"], "task_request");
    assert.deepEqual(r1.m["payload"], { function: "a", parameters: { n: 1 }, auth_token: null });
    for (const r of [r2, r1]) {
      const fn = (r.m["payload"] as { function: string }).function;
      r.ws.send(JSON.stringify({ type: "task_response", request_id: r.m["request_id"], status: "success", result: { tool: { name: fn, result: { fn } } } }));
    }
    assert.deepEqual([JSON.parse((await p1).value), JSON.parse((await p2).value)], [{ fn: "a" }, { fn: "b" }]);
    assert.equal(f.connections, 1);

    // The connection drops before the answer: the task fails, not resent.
    const p3 = c.call("kit", "a", {});
    const r3 = await f.requests.next();
    r3.ws.terminate();
    await assert.rejects(p3, (e: unknown) => e instanceof Error && e.cause instanceof ConnectionLostError && /the tool may have run/.test(e.message));
    assert.equal(f.requests.length, 0);

    // A context request lost the same way is sent again on a new connection.
    const p4 = c.getToolkitContext("kit", "openai");
    const r4 = await f.requests.next();
    r4.ws.terminate();
    const r5 = await f.requests.next("the context request again");
    assert.equal(r5.m["type"], "get_toolkit_context");
    r5.ws.send(JSON.stringify({ type: "toolkit_context", request_id: r5.m["request_id"], status: "success", payload: { toolkit_id: "kit", provider: "openai", tools: [{ type: "function", name: "a" }] } }));
    const ctx = await p4;
    assert.deepEqual(ctx.tools, [{ type: "function", name: "a" }]);
  } finally {
    c.close();
    await f.close();
  }
});

test("a refused key is not retried and not printed", async () => {
  const f = await new FakeLLM("right-key").start();
  const logs = new LogBuffer();
  const c = new Client({ apiKey: "wrong-key-999", baseUrl: f.url, transport: "ws", logger: logs.logger, backoff: { baseMs: 1 } });
  try {
    const err = await c.call("kit", "a", {}).catch((e: unknown) => e as Error);
    assert.ok(err instanceof Error);
    assert.match(err.message, /auth: invalid API key \[REDACTED\]/);
    assert.equal(f.connections, 1, "a refused key is not retried");
    for (const l of [err.message, ...logs.lines]) assert.ok(!l.includes("wrong-key-999"), l);
  } finally {
    c.close();
    await f.close();
  }
});

test("options are checked", () => {
  assert.throws(() => new Client({ apiKey: "" }), /apiKey is empty/);
  assert.throws(() => new Client({ apiKey: "a b" }), /whitespace/);
  assert.throws(() => new Client({ apiKey: "k", baseUrl: "ftp://x" }), /expected an http or https URL/);
  assert.throws(() => new Client({ apiKey: "k", baseUrl: "http://x/?q=1" }), /expected no query or fragment/);
  assert.throws(() => new Client({ apiKey: "k", transport: "grpc" as "ws" }), /transport: expected "http" or "ws", got "grpc"/);
  assert.equal(new Client({ apiKey: "k" }).transport, "http", "HTTP by default, as llmclient");
  assert.equal(new Client({ apiKey: "k", transport: "wss" as "ws" }).transport, "ws");
});

test("callTimeout: 0 leaves the bound to the server, a value is sent and waited for, a negative one is refused", async () => {
  const f = await new FakeLLM("llm-key-2").start();
  const c = new Client({ apiKey: "llm-key-2", baseUrl: f.url, transport: "ws", logger: new LogBuffer().logger });
  try {
    for (const opts of [{}, { callTimeout: 0 }]) {
      const p = c.call("kit", "a", {}, opts);
      const r = await f.requests.next();
      assert.ok(!("timeout_ms" in r.m), `${JSON.stringify(opts)}: the server's default`);
      r.ws.send(JSON.stringify({ type: "task_response", request_id: r.m["request_id"], status: "success", result: 1 }));
      await p;
    }
    // The server ignores the bound: the client stops waiting a moment
    // after it, and the call is a result that says so.
    const p = c.call("kit", "a", {}, { callTimeout: 40 });
    const r = await f.requests.next();
    assert.equal(r.m["timeout_ms"], 40);
    const res = await p;
    assert.equal(res.error, "the call to a got no answer within 40ms");
    await assert.rejects(c.call("kit", "a", {}, { callTimeout: -1 }), /callTimeout: expected a positive number of milliseconds or 0 for the server's default, got -1/);
  } finally {
    c.close();
    await f.close();
  }
});
