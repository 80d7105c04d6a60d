// The tool calls in a model's output, per provider, and the messages that
// carry their results back: a port of atp-go's provider.ParseToolCalls and
// provider.FormatToolResults, with the same shapes and the same words.

import { createHash } from "node:crypto";
import { Decoder } from "../decoder.js";

export type ProviderName = "openai" | "openai-chat" | "anthropic" | "mistral" | "gemini" | "mcp";

const aliases: Record<string, ProviderName> = {
  openai: "openai", "openai-responses": "openai", responses: "openai",
  "openai-chat": "openai-chat", openai_chat: "openai-chat", "openai-chat-completions": "openai-chat", "chat-completions": "openai-chat",
  anthropic: "anthropic", claude: "anthropic",
  mistral: "mistral", mistralai: "mistral",
  gemini: "gemini", google: "gemini", vertex: "gemini",
  mcp: "mcp",
};

/** normalizeProvider maps a provider name or alias to its canonical name. */
export function normalizeProvider(name: string): ProviderName {
  const key = String(name ?? "").trim().toLowerCase();
  const p = aliases[key];
  if (p) return p;
  const supported = "openai, openai-chat, anthropic, mistral (or mistralai), gemini, mcp";
  if (key === "") throw new Error(`provider: no provider named; supported: ${supported}`);
  throw new Error(`provider: unknown provider ${JSON.stringify(name)}; supported: ${supported}`);
}

/** One tool call the model asked for. */
export interface ToolCall {
  id: string;
  name: string;
  /** Compact JSON object text, keys in the model's order; "" when error
   * is set. */
  arguments: string;
  /** The model sent no id: this one was derived from the call. */
  generatedId: boolean;
  /** Why the arguments could not be read, worded for the model. */
  error?: string;
}

// ---- an order-keeping tree of plain values ----

type Tree = TreeObject | Tree[] | string | number | boolean | null | NumberText;

class NumberText {
  constructor(readonly text: string) {}
}

class TreeObject {
  readonly keys: string[] = [];
  readonly vals = new Map<string, Tree>();
  get(k: string): Tree | undefined {
    return this.vals.get(k);
  }
  has(k: string): boolean {
    return this.vals.has(k);
  }
  str(k: string): string | undefined {
    const v = this.vals.get(k);
    return typeof v === "string" ? v : undefined;
  }
}

class TreeError extends Error {}

/** parseTree reads JSON text into the tree; a syntax error is worded as the
 * Go runtime words it ("invalid character ... at offset N"), a repeated key
 * is refused. */
function parseTree(text: string): Tree {
  const d = new Decoder();
  d.reset(text);
  // Check the syntax with the Decoder, for its messages and offsets.
  d.skip();
  if (d.failed()) {
    const p = d.getProblems()[0]!;
    throw new TreeError(p.message.replace(/^invalid JSON: /, ""));
  }
  return treeFrom(text);
}

function treeFrom(text: string): Tree {
  let i = 0;
  const s = text;
  const ws = () => {
    while (i < s.length && (s[i] === " " || s[i] === "\n" || s[i] === "\r" || s[i] === "\t")) i++;
  };
  const str = (): string => {
    const start = i;
    i++;
    while (s[i] !== '"') i += s[i] === "\\" ? 2 : 1;
    i++;
    return JSON.parse(s.slice(start, i)) as string;
  };
  const value = (): Tree => {
    ws();
    const c = s[i];
    if (c === "{") {
      i++;
      const o = new TreeObject();
      ws();
      if (s[i] === "}") {
        i++;
        return o;
      }
      for (;;) {
        ws();
        const k = str();
        if (o.has(k)) throw new TreeError(`duplicate key ${JSON.stringify(k)}`);
        ws();
        i++;
        const v = value();
        o.keys.push(k);
        o.vals.set(k, v);
        ws();
        if (s[i++] === "}") return o;
      }
    }
    if (c === "[") {
      i++;
      const a: Tree[] = [];
      ws();
      if (s[i] === "]") {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (s[i++] === "]") return a;
      }
    }
    if (c === '"') return str();
    if (s.startsWith("true", i)) {
      i += 4;
      return true;
    }
    if (s.startsWith("false", i)) {
      i += 5;
      return false;
    }
    if (s.startsWith("null", i)) {
      i += 4;
      return null;
    }
    const m = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(s.slice(i, i + 400))!;
    i += m[0].length;
    return new NumberText(m[0]);
  };
  return value();
}

/** fromValue turns a JS value (as JSON.parse or a provider SDK gives it)
 * into the tree. */
function fromValue(v: unknown): Tree {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v)) return v.map(fromValue);
  if (typeof v === "object") {
    const o = new TreeObject();
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === undefined) continue;
      o.keys.push(k);
      o.vals.set(k, fromValue(x));
    }
    return o;
  }
  if (typeof v === "number") return new NumberText(JSON.stringify(v));
  if (typeof v === "string" || typeof v === "boolean") return v;
  return String(v);
}

/** encodeTree writes compact JSON, strings as Go writes them minus the
 * HTML escaping. */
function encodeTree(v: Tree): string {
  if (v instanceof TreeObject) return "{" + v.keys.map((k) => quote(k) + ":" + encodeTree(v.vals.get(k)!)).join(",") + "}";
  if (Array.isArray(v)) return "[" + v.map(encodeTree).join(",") + "]";
  if (v instanceof NumberText) return v.text;
  if (typeof v === "string") return quote(v);
  if (v === null) return "null";
  return String(v);
}

function quote(s: string): string {
  let b = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) b += "\\" + s[i];
    else if (c === 10) b += "\\n";
    else if (c === 13) b += "\\r";
    else if (c === 9) b += "\\t";
    else if (c < 0x20) b += "\\u00" + c.toString(16).padStart(2, "0");
    else if (c === 0x2028 || c === 0x2029) b += "\\u202" + (c & 0xf).toString(16);
    else if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) < 0xe000) {
      b += s[i]! + s[i + 1]!;
      i++;
    } else if (c >= 0xd800 && c < 0xe000) b += "\\ufffd";
    else b += s[i];
  }
  return b + '"';
}

function kindOf(v: Tree | undefined): string {
  if (v instanceof TreeObject) return "object";
  if (Array.isArray(v)) return "array";
  if (v instanceof NumberText) return "number";
  if (v === null || v === undefined) return "null";
  return typeof v === "string" ? "string" : "boolean";
}

/** compactJSON re-encodes JSON text compactly, keeping key order and
 * numbers as written. */
export function compactJSON(text: string): string {
  return encodeTree(treeFrom(text));
}

// ---- parsing ----

interface Fields {
  id?: Tree;
  name?: Tree;
  args?: Tree;
}

/** parseToolCalls extracts the tool calls from a model's output, in order,
 * skipping what is not a tool call. modelOutput is the provider's own shape
 * (a value as its SDK returns it, or JSON text). A call whose arguments
 * cannot be read comes back with error set. */
export function parseToolCalls(provider: string, modelOutput: unknown): ToolCall[] {
  const p = normalizeProvider(provider);
  let v: Tree;
  if (typeof modelOutput === "string") {
    if (modelOutput.trim() === "") throw new Error(`provider: ${p}: no tool calls given (empty input)`);
    try {
      v = parseTree(modelOutput);
    } catch (e) {
      throw new Error(`provider: ${p}: tool calls are not valid JSON: ${(e as Error).message}`);
    }
  } else v = fromValue(modelOutput);
  let items: Tree[];
  try {
    switch (p) {
      case "openai":
      case "openai-chat":
      case "mistral":
        items = openAIItems(v);
        break;
      case "anthropic":
        items = unwrapList(v, "content");
        break;
      case "gemini":
        items = geminiParts(v);
        break;
      default:
        items = unwrapList(v, "");
    }
  } catch (e) {
    throw new Error(`provider: ${p}: ${(e as Error).message}`);
  }
  const calls: ToolCall[] = [];
  items.forEach((it, i) => {
    if (!(it instanceof TreeObject)) throw new Error(`provider: ${p}: tool call ${i}: expected a JSON object, got ${kindOf(it)}`);
    let f: Fields | null;
    let err: string | null = null;
    try {
      f = fieldsOf(p, it);
    } catch (e) {
      f = (e as { fields?: Fields }).fields ?? {};
      err = (e as Error).message;
    }
    if (f === null) return;
    let call: ToolCall | null = null;
    if (err === null) {
      try {
        call = toolCall(p, f, calls.length);
      } catch (e) {
        err = (e as Error).message;
      }
    }
    if (err !== null) throw new Error(`provider: ${p}: tool call ${i}${describe(f)}: ${err}`);
    calls.push(call!);
  });
  return calls;
}

function describe(f: Fields): string {
  const parts: string[] = [];
  if (typeof f.id === "string" && f.id !== "") parts.push(`id ${JSON.stringify(f.id)}`);
  if (typeof f.name === "string" && f.name !== "") parts.push(`name ${JSON.stringify(f.name)}`);
  return parts.length === 0 ? "" : ` (${parts.join(", ")})`;
}

function fail(msg: string, fields: Fields): never {
  const e = new Error(msg) as Error & { fields: Fields };
  e.fields = fields;
  throw e;
}

function fieldsOf(p: ProviderName, o: TreeObject): Fields | null {
  const typ = o.str("type") ?? "";
  switch (p) {
    case "openai":
    case "openai-chat":
    case "mistral": {
      const fn = o.get("function");
      if (typ === "function" || (typ === "" && o.has("function"))) {
        if (!(fn instanceof TreeObject)) fail(`function: expected an object, got ${kindOf(fn)}`, { id: o.get("id") });
        return { id: o.get("id"), name: fn.get("name"), args: fn.get("arguments") };
      }
      if (typ === "function_call" || (typ === "" && o.has("name"))) {
        let id = o.get("call_id");
        if (id === undefined && typ === "") id = o.get("id");
        return { id, name: o.get("name"), args: o.get("arguments") };
      }
      if (typ === "") fail(`not a tool call: expected {"type":"function_call","call_id","name","arguments"} or {"id","type":"function","function":{"name","arguments"}}`, { id: o.get("id") });
      return null;
    }
    case "anthropic":
      if (typ === "tool_use" || (typ === "" && o.has("name"))) return { id: o.get("id"), name: o.get("name"), args: o.get("input") };
      if (typ === "") fail(`not a tool call: expected {"type":"tool_use","id","name","input"}`, { id: o.get("id") });
      return null;
    case "gemini": {
      let fc = o.has("functionCall") ? o.get("functionCall") : o.get("function_call");
      if (fc === undefined) {
        if (!o.has("name")) return null;
        fc = o;
      }
      if (!(fc instanceof TreeObject)) fail(`functionCall: expected an object, got ${kindOf(fc)}`, {});
      return { id: fc.get("id"), name: fc.get("name"), args: fc.get("args") };
    }
    default: {
      const m = o.str("method");
      if (m !== undefined) {
        if (m !== "tools/call") return null;
        const params = o.get("params");
        if (!(params instanceof TreeObject)) fail("params: expected an object", { id: o.get("id") });
        return { id: o.get("id"), name: params.get("name"), args: params.get("arguments") };
      }
      return { id: o.get("id"), name: o.get("name"), args: o.get("arguments") };
    }
  }
}

function toolCall(p: ProviderName, f: Fields, index: number): ToolCall {
  let name = "";
  if (typeof f.name === "string") name = f.name;
  else if (f.name !== undefined && f.name !== null) throw new Error(`name: expected a string, got ${kindOf(f.name)}`);
  if (name === "") throw new Error("name is missing");
  let id = "";
  if (typeof f.id === "string") id = f.id;
  else if (f.id instanceof NumberText) {
    if (p !== "mcp") throw new Error("id: expected a string, got number");
    id = f.id.text;
  } else if (f.id !== undefined && f.id !== null) throw new Error(`id: expected a string, got ${kindOf(f.id)}`);
  const call: ToolCall = { id, name, arguments: "", generatedId: false };
  let argsText = "";
  const a = f.args;
  if (a === undefined || a === null) call.arguments = "{}";
  else if (a instanceof TreeObject) call.arguments = encodeTree(a);
  else if (typeof a === "string") {
    if (a.trim() === "") call.arguments = "{}";
    else {
      try {
        const t = parseTree(a);
        if (!(t instanceof TreeObject)) call.error = `arguments: expected a JSON object, got ${kindOf(t)}`;
        else call.arguments = encodeTree(t);
      } catch (e) {
        const msg = (e as Error).message;
        call.error = msg.startsWith("duplicate key") ? `arguments: ${msg}` : `arguments: not valid JSON: ${msg}`;
      }
    }
    argsText = a;
  } else call.error = `arguments: expected a JSON object (or a string holding one), got ${kindOf(a)}`;
  if (id === "") {
    const text = call.arguments !== "" ? call.arguments : typeof a === "string" ? argsText : encodeTree(a ?? null);
    call.id = generatedId(p, index, name, text);
    call.generatedId = true;
  }
  return call;
}

const idAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

function generatedId(p: string, index: number, name: string, args: string): string {
  const sum = createHash("sha256").update(`${p}\x00${index}\x00${name}\x00`).update(args, "utf8").digest();
  let id = "";
  for (let i = 0; i < 9; i++) id += idAlphabet[sum[i]! % idAlphabet.length];
  return id;
}

function unwrapList(v: Tree, field: string): Tree[] {
  if (v === null) return [];
  if (Array.isArray(v)) return v;
  if (v instanceof TreeObject) {
    if (field !== "" && v.has(field)) {
      const inner = v.get(field)!;
      if (Array.isArray(inner) || inner === null) return unwrapList(inner, "");
      if (typeof inner === "string") return [];
    }
    return [v];
  }
  throw new Error(`expected tool calls as a JSON array or object, got ${kindOf(v)}`);
}

function openAIItems(v: Tree): Tree[] {
  if (!(v instanceof TreeObject)) return unwrapList(v, "");
  if (v.has("output")) return unwrapList(v.get("output")!, "");
  if (v.has("tool_calls")) return unwrapList(v.get("tool_calls")!, "");
  const ch = v.get("choices");
  if (Array.isArray(ch)) {
    if (ch.length === 0) return [];
    const choice = ch[0];
    if (!(choice instanceof TreeObject)) throw new Error(`choices[0]: expected an object, got ${kindOf(choice)}`);
    const msg = choice.get("message");
    if (!(msg instanceof TreeObject)) throw new Error("choices[0].message: expected an object");
    return openAIItems(msg);
  }
  if (v.has("role") && !v.has("name") && !v.has("function")) return [];
  return [v];
}

function geminiParts(v: Tree): Tree[] {
  if (!(v instanceof TreeObject)) return unwrapList(v, "");
  const cands = v.get("candidates");
  if (Array.isArray(cands)) return cands.length === 0 ? [] : geminiParts(cands[0]!);
  const content = v.get("content");
  if (content instanceof TreeObject) return geminiParts(content);
  if (v.has("parts")) return unwrapList(v.get("parts")!, "");
  return [v];
}

/** chatShaped reports whether OpenAI tool calls came from Chat Completions
 * rather than the Responses API. */
export function chatShaped(modelOutput: unknown): boolean {
  let v: unknown = modelOutput;
  if (typeof v === "string") {
    try {
      v = JSON.parse(v);
    } catch {
      return false;
    }
  }
  const nested = (o: unknown) => o !== null && typeof o === "object" && !Array.isArray(o) && typeof (o as Record<string, unknown>)["function"] === "object" && (o as Record<string, unknown>)["function"] !== null && !Array.isArray((o as Record<string, unknown>)["function"]);
  if (Array.isArray(v)) {
    const first = v.find((x) => x !== null && typeof x === "object" && !Array.isArray(x));
    return first !== undefined && nested(first);
  }
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return "choices" in o || "tool_calls" in o || nested(o);
  }
  return false;
}

// ---- formatting ----

/** A call's outcome, for formatToolResults. */
export interface ToolResult {
  call: ToolCall;
  /** The result's JSON text ("" is null). */
  result: string;
  isError: boolean;
  error: string;
}

function failed(r: ToolResult): boolean {
  return r.isError || r.error !== "" || r.call.error !== undefined;
}

function valueText(raw: string): string {
  const t = raw.trim();
  if (t === "") return "null";
  if (t.startsWith('"')) {
    try {
      return JSON.parse(t) as string;
    } catch {
      /* fall through */
    }
  }
  try {
    return compactJSON(t);
  } catch {
    return t;
  }
}

function resultText(r: ToolResult): [string, boolean] {
  if (failed(r)) {
    if (r.error !== "") return [r.error, true];
    if (r.call.error !== undefined) return [r.call.error, true];
    const t = valueText(r.result);
    if (t !== "" && t !== "null") return [t, true];
    return ["the tool call failed without a message", true];
  }
  return [valueText(r.result), false];
}

function flagless(r: ToolResult): string {
  const [text, isFailed] = resultText(r);
  return isFailed ? "{" + quote("error") + ":" + quote(text) + "}" : text;
}

function rawValue(text: string): unknown {
  return text.trim() === "" ? null : (JSON.parse(text) as unknown);
}

/** formatToolResults returns the messages (or input items) to append to the
 * conversation, in the order of results, each echoing its call's id: see
 * the package README for the shape per provider. */
export function formatToolResults(provider: string, results: ToolResult[]): unknown[] {
  const p = normalizeProvider(provider);
  results.forEach((r, i) => {
    const where = `provider: ${p}: results[${i}]${describe({ id: r.call.id, name: r.call.name })}`;
    if (r.call.id === "" && p !== "gemini" && p !== "mcp") throw new Error(`${where}: the call's id is empty: ${p} matches results to calls by id`);
    if (r.call.name === "" && p === "gemini") throw new Error(`${where}: the call's name is empty: Gemini matches results to calls by name`);
  });
  switch (p) {
    case "openai":
      return results.map((r) => ({ type: "function_call_output", call_id: r.call.id, output: flagless(r) }));
    case "openai-chat":
    case "mistral":
      return results.map((r) => ({ role: "tool", tool_call_id: r.call.id, ...(p === "mistral" && r.call.name ? { name: r.call.name } : {}), content: flagless(r) }));
    case "anthropic":
      if (results.length === 0) return [];
      return [
        {
          role: "user",
          content: results.map((r) => {
            const [text, isFailed] = resultText(r);
            return { type: "tool_result", tool_use_id: r.call.id, content: text, ...(isFailed ? { is_error: true } : {}) };
          }),
        },
      ];
    case "gemini":
      if (results.length === 0) return [];
      return [
        {
          role: "user",
          parts: results.map((r) => ({
            functionResponse: {
              name: r.call.name,
              ...(r.call.id !== "" && !r.call.generatedId ? { id: r.call.id } : {}),
              response: failed(r) ? { error: resultText(r)[0] } : { output: rawValue(r.result) },
            },
          })),
        },
      ];
    default:
      return results.map((r) => {
        const [text, isFailed] = resultText(r);
        const structured = !isFailed && r.result.trim().startsWith("{");
        return { content: [{ type: "text", text }], ...(structured ? { structuredContent: rawValue(r.result) } : {}), ...(isFailed ? { isError: true } : {}) };
      });
  }
}
