import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { inspect } from "node:util";
import { z } from "zod";
import {
  AuthToken, MissingAuthTokenError, TimeoutError, Toolkit, ToolError, UnknownToolError, ValidationError, silentLogger, tool, toolkitHash,
} from "../src/index.js";
import { pkgRoot } from "./helpers.js";

interface HashFixture {
  name: string;
  description: string;
  input_schema?: string;
  output_schema?: string;
  auth_provider?: string;
  needs_auth_token?: boolean;
  hints: { readOnlyHint?: boolean; destructiveHint?: boolean; idempotentHint?: boolean };
  timeout_ms?: number;
  code_hash: string;
}

test("registration hashes are the Go runtime's for the same contracts", () => {
  const file = JSON.parse(readFileSync(path.join(pkgRoot, "test/go/hashes/testdata/hashes.json"), "utf8")) as {
    toolkit_hash: string;
    tools: HashFixture[];
  };
  const tools = file.tools.map((f) => {
    const t = tool({
      name: f.name,
      description: f.description,
      ...(f.input_schema ? { inputSchema: JSON.parse(f.input_schema) as object } : {}),
      ...(f.output_schema ? { outputSchema: JSON.parse(f.output_schema) as object } : {}),
      ...(f.auth_provider ? { auth: { provider: f.auth_provider } } : {}),
      ...(f.needs_auth_token ? { needsAuthToken: true } : {}),
      hints: { readOnly: f.hints.readOnlyHint, destructive: f.hints.destructiveHint, idempotent: f.hints.idempotentHint },
      ...(f.timeout_ms ? { timeoutMs: f.timeout_ms } : {}),
      handler: () => null,
    });
    assert.equal(t.hash, f.code_hash, `code_hash of ${f.name}`);
    return t;
  });
  assert.equal(toolkitHash(tools), file.toolkit_hash);
  // Any change to the contract changes the hash.
  const base = tool({ name: "x", handler: () => 1 });
  for (const other of [
    tool({ name: "x", description: "d", handler: () => 1 }),
    tool({ name: "x", hints: { readOnly: true }, handler: () => 1 }),
    tool({ name: "x", timeoutMs: 5, handler: () => 1 }),
    tool({ name: "x", needsAuthToken: true, handler: () => 1 }),
    tool({ name: "x", inputSchema: { type: "object", properties: { a: { type: "string" } } }, handler: () => 1 }),
  ]) {
    assert.notEqual(other.hash, base.hash);
  }
  assert.equal(tool({ name: "x", handler: () => 2 }).hash, base.hash, "the handler's code is not part of the contract");
});

function kit(): Toolkit {
  return new Toolkit("testkit", { logger: silentLogger }).add(
    tool({
      name: "forecast",
      input: z.object({ city: z.string(), days: z.number().int().min(1).max(14).default(3), units: z.enum(["celsius", "fahrenheit"]).optional() }),
      handler: (p) => ({ city: p.city, days: p.days }),
    }),
    {
      name: "plain",
      inputSchema: { type: "object", properties: { n: { type: "integer" } }, required: ["n"], additionalProperties: false },
      handler: (p) => (p["n"] as number) * 2,
    },
    { name: "whoami", auth: { provider: "hubspot" }, handler: (_p, call) => ({ token: call.authToken?.value(), shown: String(call.authToken) }) },
    { name: "peek", handler: (_p, call) => ({ token: call.authToken === undefined ? null : "leaked", id: call.requestId, transport: call.transport }) },
    { name: "boom", handler: () => { throw new Error("kaboom"); } },
    { name: "throws_string", handler: () => { throw "just a string"; } },
    { name: "nothing", handler: () => undefined },
    { name: "slow", timeoutMs: 20, handler: (_p, call) => new Promise((_, reject) => call.signal.addEventListener("abort", () => reject(call.signal.reason))) },
    { name: "stubborn", handler: () => new Promise(() => {}) },
    tool({ name: "refined", input: z.object({ a: z.number(), b: z.number() }).refine((v) => v.a < v.b, { message: "a must be below b", path: ["a"] }), handler: () => "ok" }),
  );
}

test("params are validated before the handler, every problem at once, in the Go words", async () => {
  const tk = kit();
  assert.deepEqual(await tk.invoke("forecast", '{"city":"Paris"}'), { city: "Paris", days: 3 });
  await assert.rejects(tk.invoke("forecast", '{"city":7,"days":"three","dayz":1,"units":"kelvin"}'), (e: unknown) => {
    assert.ok(e instanceof ValidationError);
    assert.equal(
      e.message,
      'invalid params for forecast: city: expected string, got 7; days: expected integer, got "three"; dayz: unknown field (allowed: city, days, units); units: expected one of "celsius", "fahrenheit", got "kelvin"',
    );
    assert.equal(e.problems.length, 4);
    return true;
  });
  await assert.rejects(tk.invoke("plain", "{}"), /invalid params for plain: n: missing required field \(expected integer\)/);
  assert.equal(await tk.invoke("plain", '{"n":2.0}'), 4);
  await assert.rejects(tk.invoke("refined", '{"a":2,"b":1}'), /invalid params for refined: a: a must be below b/);
  await assert.rejects(tk.invoke("plain", '{"n":1'), /invalid params for plain: params: invalid JSON: unexpected end of input at offset 6/);
});

test("every failure is an error worded as the Go runtime words it", async () => {
  const tk = kit();
  await assert.rejects(tk.invoke("nope", "{}"), (e: unknown) => e instanceof UnknownToolError && /^unknown tool "nope" \(available: boom, forecast, nothing, peek/.test(e.message));
  await assert.rejects(tk.invoke("whoami", "{}"), (e: unknown) => e instanceof MissingAuthTokenError && e.message === "tool whoami needs the end user's auth token and the call has none: missing auth token");
  await assert.rejects(tk.invoke("boom", "{}"), (e: unknown) => e instanceof ToolError && e.message === "kaboom");
  await assert.rejects(tk.invoke("throws_string", "{}"), (e: unknown) => e instanceof ToolError && e.message === "tool throws_string failed: just a string");
  await assert.rejects(tk.invoke("slow", "{}"), (e: unknown) => e instanceof TimeoutError && e.message === "tool slow timed out after 20ms");
  await assert.rejects(tk.invoke("stubborn", "{}", { callTimeout: 15 }), /tool stubborn timed out after 15ms/);
  assert.equal(await tk.invoke("nothing", ""), null);
  const ctrl = new AbortController();
  const p = tk.invoke("stubborn", "{}", { signal: ctrl.signal });
  ctrl.abort(new Error("shutting down"));
  await assert.rejects(p, /shutting down/);
});

test("the auth token reaches only the tools that need it, and never prints", async () => {
  const tk = kit();
  assert.deepEqual(await tk.invoke("whoami", "{}", { authToken: "tok-1" }), { token: "tok-1", shown: "[REDACTED]" });
  assert.deepEqual(await tk.invoke("peek", "{}", { authToken: "tok-1", requestId: "r9" }), { token: null, id: "r9", transport: "invoke" });
  const t = new AuthToken("secret-token-value");
  for (const shown of [String(t), `${t}`, JSON.stringify({ t }), inspect(t), inspect({ nested: { t } })]) {
    assert.ok(!shown.includes("secret-token-value"), shown);
  }
  assert.equal(t.value(), "secret-token-value");
});

test("tools are checked when added", () => {
  const tk = new Toolkit("k", { logger: silentLogger });
  assert.throws(() => tk.add({ name: "bad name", handler: () => 1 }), /invalid tool name "bad name"/);
  assert.throws(() => tk.add({ name: "a", handler: () => 1 }, { name: "a", handler: () => 1 }), /duplicate tool name "a"/);
  assert.equal(tk.list().length, 0, "a failed add adds nothing");
  assert.throws(() => tk.add({ name: "s", inputSchema: { type: "nope" }, handler: () => 1 }), /tool s: input schema: schema at root: type: unknown type "nope"/);
  assert.throws(() => tk.add({ name: "j", inputSchema: "{", handler: () => 1 }), /inputSchema is not valid JSON/);
  assert.throws(() => tk.add({ name: "z", input: {} as never, handler: () => 1 }), /not a zod v4 schema/);
});
