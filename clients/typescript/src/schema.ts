// A port of atp-go's schema validator (internal/schemavalidate): it checks
// params against a tool's JSON Schema by driving the Decoder with the calls
// atpgen's generated code makes for the Go type behind the schema, so every
// problem reads exactly as a Go toolkit (and `atp serve`, which validates
// with the same code) would word it. One pass over the params, every problem
// at once. The keywords it evaluates, and the ones it notes and leaves out
// (only ever in the direction of accepting more), are those of the Go
// package; see the package README.

import { Decoder, goStrconvQuote, type Problem, gotFloat, gotInt, gotString, maxListed, parseDecimal } from "./decoder.js";
import { compactText, cutBytes, parseRaw, pointer, type RawValue, unescapePointer } from "./rawjson.js";

const enum Kind {
  Any,
  Never,
  Object,
  Array,
  String,
  Integer,
  Number,
  Boolean,
  Null,
}

interface Property {
  name: string;
  node: Node;
  required: boolean;
}

interface Bound {
  set: boolean;
  isMin: boolean;
  exc: boolean;
  f: number;
  text: string;
  /** The bound when it is an integer; lim is it as an inclusive limit. */
  intVal: bigint | null;
  lim: bigint | null;
}

interface MultipleOf {
  set: boolean;
  text: string;
  /** The divisor when it is an integer that fits int64, else 0n. */
  i: bigint;
}

const noBound = (): Bound => ({ set: false, isMin: false, exc: false, f: 0, text: "", intVal: null, lim: null });

class Node {
  kind: Kind = Kind.Any;
  nullable = false;
  ref: Node | null = null;
  nullableOf: Node | null = null;

  props: Property[] = [];
  propIndex = new Map<string, number>();
  allowed = "";
  required: number[] = [];
  extraReq: string[] = [];
  closed = false;
  additional: Node | null = null;
  minProps = -1;
  maxProps = -1;
  keyEnum: string[] | null = null;
  /** keyEnum, when it is long. */
  keySet: Set<string> | undefined;
  inferred = false;
  /** Finds a name in extraReq, when there are many. */
  extraIndex: Map<string, number> | null = null;

  prefix: Node[] = [];
  items: Node | null = null;
  noExtra = false;
  minItems = -1;
  maxItems = -1;
  unique = false;
  uniqueScalars = false;
  fixedLen = -1;
  fixedWords = "";

  minLen = -1;
  maxLen = -1;
  pattern: RegExp | null = null;
  patternSrc = "";
  format = "";
  base64 = false;
  enumStrings: string[] | null = null;
  /** enumStrings, when they are many. */
  enumSet: Set<string> | undefined;
  hasEnum = false;

  bits = 64;
  unsigned = false;
  bounds: [Bound, Bound, Bound, Bound] = [noBound(), noBound(), noBound(), noBound()];
  multiple: MultipleOf = { set: false, text: "", i: 0n };
  enumInts: bigint[] | null = null;
  enumNums: number[] | null = null;
  enumBools: boolean[] | null = null;

  enumRaw: string[] | null = null;
  /** Dedupes enumRaw while the enum is read. */
  enumSeen: Set<string> | null = null;
  enumVals: RawValue[] = [];
  enumLits: string[] = [];

  expected = "";
  goTime = false;
  goDuration = false;

  /** The node that reads the value, through $ref and nullable wrappers
   * (the node itself for most); set once every node is compiled. */
  target: Node | null = null;
  /** null is valid at the node or on its way to target. */
  nullChain = false;
  /** On the chain resolveTarget follows. */
  resolving = false;

  /** src is the schema, for the JSON Pointer of errors and notes. */
  constructor(readonly src: RawValue) {}
}

const bMinimum = 0;
const bExclusiveMinimum = 1;
const bMaximum = 2;
const bExclusiveMaximum = 3;
const boundOps = [">=", ">", "<=", "<"];
const boundIndex: Record<string, number> = { minimum: bMinimum, exclusiveMinimum: bExclusiveMinimum, maximum: bMaximum, exclusiveMaximum: bExclusiveMaximum };

/** The pattern atpgen gives time.Duration properties. */
const goDurationPattern = "^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$";

/** What an error quotes from a schema (a pattern, a name) is cut after
 * this many bytes, so that a huge schema cannot make the error huge. */
const maxErrorBytes = 300;
/** JSON pointers in errors and notes are cut after this many bytes. */
const maxPointerBytes = 200;
/** Notes kept: a hostile schema could otherwise have one per keyword. */
const maxNotes = 100;

/** SchemaError is a schema the validator cannot interpret; the message names
 * the keyword and its JSON pointer. */
export class SchemaError extends Error {
  constructor(ptr: string, keyword: string, msg: string) {
    const at = ptr === "" ? "root" : ptr;
    msg = cutBytes(msg, maxErrorBytes);
    super(keyword === "" ? `schema at ${at}: ${msg}` : `schema at ${at}: ${keyword}: ${msg}`);
    this.name = "SchemaError";
  }
}

class Inner extends Error {}

const annotations = new Set([
  "$schema", "$id", "$comment", "$anchor", "$vocabulary", "$dynamicAnchor", "title", "description", "default",
  "examples", "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentSchema",
]);

const widening: Record<string, string> = {
  oneOf: "general oneOf is not evaluated",
  allOf: "allOf is not evaluated",
  anyOf: "general anyOf is not evaluated",
  not: "not is not evaluated",
  if: "if/then/else is not evaluated",
  then: "if/then/else is not evaluated",
  else: "if/then/else is not evaluated",
  dependentRequired: "dependentRequired is not evaluated",
  dependentSchemas: "dependentSchemas is not evaluated",
  dependencies: "dependencies is not evaluated",
  contains: "contains is not evaluated",
  minContains: "minContains is not evaluated",
  maxContains: "maxContains is not evaluated",
  unevaluatedItems: "unevaluatedItems is not evaluated",
  unevaluatedProperties: "unevaluatedProperties is not evaluated",
  $dynamicRef: "$dynamicRef is not evaluated",
};

const typedKeywords = [
  "properties", "required", "additionalProperties", "minProperties", "maxProperties", "propertyNames",
  "items", "prefixItems", "minItems", "maxItems", "uniqueItems",
  "minLength", "maxLength", "pattern", "format", "contentEncoding",
  "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
];

const T = { object: 1, array: 2, string: 4, integer: 8, number: 16, boolean: 32, null: 64 } as const;

const anyNode = (() => {
  const n = new Node({ kind: "object", text: "{}", members: [] });
  n.expected = "any value";
  n.target = n;
  return n;
})();

const neverNode = (() => {
  const n = new Node({ kind: "boolean", text: "false", bool: false });
  n.kind = Kind.Never;
  n.expected = "no value";
  n.target = n;
  return n;
})();

function kindWord(v: RawValue): string {
  return v.kind;
}

function members(v: RawValue): [string, RawValue][] {
  if (v.kind !== "object") throw new Inner(`expected an object, got ${kindWord(v)}`);
  const seen = new Set<string>();
  for (const [k] of v.members!) {
    if (seen.has(k)) throw new Inner(`key ${goStrconvQuote(k)} appears twice`);
    seen.add(k);
  }
  return v.members!;
}

function elements(v: RawValue): RawValue[] {
  if (v.kind !== "array") throw new Inner(`expected an array, got ${kindWord(v)}`);
  return v.items!;
}

function str(v: RawValue): string {
  if (v.kind !== "string") throw new Inner(`expected a string, got ${kindWord(v)}`);
  return v.str!;
}

function bool(v: RawValue): boolean {
  if (v.kind !== "boolean") throw new Inner(`expected true or false, got ${kindWord(v)}`);
  return v.bool!;
}

function num(v: RawValue): { text: string; f: number } {
  if (v.kind !== "number") throw new Inner(`expected a number, got ${kindWord(v)}`);
  return { text: v.text, f: Number(v.text) };
}

function countOf(v: RawValue): number {
  let n: { text: string; f: number };
  try {
    n = num(v);
  } catch (e) {
    throw new Inner(`expected a non-negative integer: ${(e as Error).message}`);
  }
  if (n.f < 0 || !Number.isInteger(n.f) || n.f > 2 ** 31) throw new Inner(`expected a non-negative integer, got ${n.text}`);
  return n.f;
}

/** resolvePointer finds the value at the JSON pointer ptr ("" or "/a/b")
 * in doc; of a repeated key the last member counts, as JSON decoders
 * keep it. */
function resolvePointer(doc: RawValue, ptr: string): RawValue {
  if (ptr === "") return doc;
  if (ptr[0] !== "/") throw new Inner(`JSON pointer ${goStrconvQuote(ptr)} does not start with /`);
  let cur = doc;
  for (const raw of ptr.slice(1).split("/")) {
    const tok = unescapePointer(raw);
    if (cur.kind === "object") {
      let found: RawValue | undefined;
      for (const [k, v] of cur.members!) if (k === tok) found = v;
      if (!found) throw new Inner(`no ${goStrconvQuote(tok)}`);
      cur = found;
    } else if (cur.kind === "array") {
      const i = /^[+-]?\d+$/.test(tok) ? Number(tok) : -1;
      if (!(i >= 0 && i < cur.items!.length)) throw new Inner(`no element ${goStrconvQuote(tok)}`);
      cur = cur.items![i]!;
    } else throw new Inner(`cannot go into a ${cur.kind} with ${goStrconvQuote(tok)}`);
  }
  return cur;
}

/** goPathUnescape is Go's url.PathUnescape: %XX escapes decoded, an
 * escape that is not one is an error worded as Go words it. */
function goPathUnescape(s: string): string {
  if (!s.includes("%")) return s;
  const bytes = Buffer.from(s, "utf8");
  const out: number[] = [];
  const hex = (c: number | undefined) => c !== undefined && /[0-9A-Fa-f]/.test(String.fromCharCode(c));
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x25) {
      out.push(bytes[i]!);
      continue;
    }
    if (i + 2 >= bytes.length || !hex(bytes[i + 1]) || !hex(bytes[i + 2])) {
      throw new Inner(`invalid URL escape ${goStrconvQuote(bytes.subarray(i, i + 3).toString("utf8"))}`);
    }
    out.push(Number.parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16));
    i += 2;
  }
  return Buffer.from(out).toString("utf8");
}

/** canonical is a text equal for equal JSON values (1 equals 1.0; key order
 * does not matter), for enum and const comparisons. */
function canonical(v: RawValue): string {
  switch (v.kind) {
    case "object": {
      const ms = [...v.members!];
      const m = new Map<string, RawValue>();
      for (const [k, x] of ms) m.set(k, x);
      const keys = [...m.keys()].sort(compareUTF8);
      return "{" + keys.map((k) => JSON.stringify(k) + ":" + canonical(m.get(k)!)).join(",") + "}";
    }
    case "array":
      return "[" + v.items!.map(canonical).join(",") + "]";
    case "number":
      return canonicalNumber(v.text);
    case "string":
      return JSON.stringify(v.str);
    default:
      return v.text;
  }
}

/** compareUTF8 orders strings by their UTF-8 bytes, as Go sorts strings. */
export function compareUTF8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function canonicalNumber(text: string): string {
  const d = parseDecimal(text);
  if (!d) return gotFloat(Number(text));
  if (d.e >= 0) return (d.n * 10n ** BigInt(d.e)).toString();
  let num = d.n;
  let den = 10n ** BigInt(-d.e);
  const g = gcd(num < 0n ? -num : num, den);
  num /= g;
  den /= g;
  return den === 1n ? num.toString() : num.toString() + "/" + den.toString();
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a === 0n ? 1n : a;
}

/** exactInt returns the value of an integer literal (1, 1.0, 1e2), or null
 * for a fraction or a huge exponent. */
function exactInt(text: string): bigint | null {
  const d = parseDecimal(text);
  if (!d) return null;
  if (d.e >= 0) return d.n * 10n ** BigInt(d.e);
  const den = 10n ** BigInt(-d.e);
  return d.n % den === 0n ? d.n / den : null;
}

const goIntMin: Record<number, bigint> = {};
const goIntMax: Record<number, bigint> = {};
const goUintMax: Record<number, bigint> = {};
for (const bits of [8, 16, 32, 64]) {
  goIntMax[bits] = (1n << BigInt(bits - 1)) - 1n;
  goIntMin[bits] = -(1n << BigInt(bits - 1));
  goUintMax[bits] = (1n << BigInt(bits)) - 1n;
}
const minInt64 = -(1n << 63n);
const maxInt64 = (1n << 63n) - 1n;

class Compiler {
  /** The node of each subschema: each is compiled once. */
  nodes = new Map<RawValue, Node>();
  /** The nodes in the order they were made, which follows the document:
   * errors and notes do not depend on map order. */
  order: Node[] = [];
  notes: string[] = [];
  /** Notes past maxNotes, which are not kept. */
  moreNotes = 0;
  constructor(readonly doc: RawValue) {}

  fail(at: RawValue, keyword: string, msg: string): SchemaError {
    return new SchemaError(pointer(at, maxPointerBytes), keyword, msg);
  }

  note(src: RawValue, keyword: string, why: string): void {
    if (this.notes.length >= maxNotes) {
      this.moreNotes++;
      return;
    }
    const at = pointer(src, maxPointerBytes);
    this.notes.push(`${keyword} at ${at === "" ? "root" : at}: ${why}`);
  }

  compileRef(ptr: string): Node {
    return this.compileAt(resolvePointer(this.doc, ptr));
  }

  /** compileAt compiles the subschema raw, once. The node is registered
   * before it is filled in, so that a schema that refers to itself gets
   * the node being built. */
  compileAt(raw: RawValue): Node {
    const have = this.nodes.get(raw);
    if (have) return have;
    const n = new Node(raw);
    this.nodes.set(raw, n);
    this.order.push(n);
    this.fill(n, raw);
    return n;
  }

  fill(n: Node, raw: RawValue): void {
    const ptr = raw;
    if (raw.kind === "boolean") {
      if (!raw.bool) n.kind = Kind.Never;
      return;
    }
    if (raw.kind !== "object") throw this.fail(ptr, "", `expected a schema (an object or a boolean), got ${raw.kind}`);
    let ms: [string, RawValue][];
    try {
      ms = members(raw);
    } catch (e) {
      throw this.fail(ptr, "", (e as Error).message);
    }
    const kw = new Map<string, RawValue>(ms);

    for (const defs of ["$defs", "definitions"]) {
      const d = kw.get(defs);
      if (!d) continue;
      let dm: [string, RawValue][];
      try {
        dm = members(d);
      } catch (e) {
        throw this.fail(ptr, defs, (e as Error).message);
      }
      for (const [, v] of dm) this.compileAt(v);
    }

    const isAside = (k: string) => k !== "$defs" && k !== "definitions" && !annotations.has(k) && !k.startsWith("x-");

    const ref = kw.get("$ref");
    if (ref) {
      n.ref = this.refTarget(ref, ptr);
      for (const [k] of ms) if (k !== "$ref" && isAside(k)) this.note(ptr, k, "keywords beside $ref are not evaluated");
      return;
    }

    const inf = kw.get("x-atp-inferred");
    if (inf && raw.parent === undefined) {
      try {
        if (bool(inf)) n.inferred = true;
      } catch (e) {
        throw this.fail(ptr, "x-atp-inferred", (e as Error).message);
      }
    }

    let types = 0;
    const t = kw.get("type");
    if (t) {
      try {
        types = parseType(t);
      } catch (e) {
        throw this.fail(ptr, "type", (e as Error).message);
      }
    }
    const nb = kw.get("nullable");
    if (nb) {
      let b: boolean;
      try {
        b = bool(nb);
      } catch (e) {
        throw this.fail(ptr, "nullable", (e as Error).message);
      }
      if (b && types !== 0) types |= T.null;
    }

    const any = kw.get("anyOf");
    if (any) {
      const branch = this.nullableBranch(any);
      if (branch) {
        n.nullable = true;
        n.nullableOf = branch;
        for (const [k] of ms) if (k !== "anyOf" && isAside(k)) this.note(ptr, k, "keywords beside a nullable anyOf are not evaluated");
        return;
      }
    }

    if (types & T.null) {
      n.nullable = true;
      types &= ~T.null;
      if (types === 0) n.kind = Kind.Null;
    }
    if ((types & (T.integer | T.number)) === (T.integer | T.number)) types &= ~T.integer;
    switch (types) {
      case 0:
        if (n.kind !== Kind.Null) n.kind = Kind.Any;
        break;
      case T.object:
        n.kind = Kind.Object;
        break;
      case T.array:
        n.kind = Kind.Array;
        break;
      case T.string:
        n.kind = Kind.String;
        break;
      case T.integer:
        n.kind = Kind.Integer;
        break;
      case T.number:
        n.kind = Kind.Number;
        break;
      case T.boolean:
        n.kind = Kind.Boolean;
        break;
      default:
        n.kind = Kind.Any;
        this.note(ptr, "type", "a value of several types is not type-checked");
    }

    for (const [key, val] of ms) {
      if (annotations.has(key) || key.startsWith("x-") || key === "type" || key === "nullable" || key === "$defs" || key === "definitions") continue;
      if (key === "anyOf" || widening[key] !== undefined) {
        this.note(ptr, key, widening[key]!);
        continue;
      }
      this.keyword(n, key, val, kw);
    }
    this.finish(n, kw);
  }

  refTarget(raw: RawValue, ptr: RawValue): Node {
    let ref: string;
    try {
      ref = str(raw);
    } catch (e) {
      throw this.fail(ptr, "$ref", (e as Error).message);
    }
    if (!ref.startsWith("#")) throw this.fail(ptr, "$ref", `only local references (#/...) are supported, got ${goStrconvQuote(ref)}`);
    let frag: string;
    try {
      frag = goPathUnescape(ref.slice(1));
    } catch (e) {
      throw this.fail(ptr, "$ref", `bad reference ${goStrconvQuote(ref)}: ${(e as Error).message}`);
    }
    if (frag !== "" && frag[0] !== "/") throw this.fail(ptr, "$ref", `anchors are not supported, got ${goStrconvQuote(ref)}`);
    try {
      return this.compileRef(frag);
    } catch (e) {
      if (e instanceof SchemaError) throw e; // a problem in the target, reported where it is
      throw this.fail(ptr, "$ref", `cannot resolve ${goStrconvQuote(ref)}: ${(e as Error).message}`);
    }
  }

  nullableBranch(raw: RawValue): Node | null {
    let els: RawValue[];
    try {
      els = elements(raw);
    } catch (e) {
      throw this.fail(raw, "", (e as Error).message);
    }
    if (els.length !== 2) return null;
    for (let i = 0; i < 2; i++) {
      if (!isNullSchema(els[i]!)) continue;
      return this.compileAt(els[1 - i]!);
    }
    return null;
  }

  keyword(n: Node, key: string, val: RawValue, kw: Map<string, RawValue>): void {
    try {
      this.keywordInner(n, key, val, kw);
    } catch (e) {
      if (e instanceof SchemaError) throw e;
      throw this.fail(n.src, key, (e as Error).message);
    }
  }

  keywordInner(n: Node, key: string, val: RawValue, kw: Map<string, RawValue>): void {
    switch (key) {
      case "properties": {
        const ms = members(val);
        const names: string[] = [];
        ms.forEach(([k, v], i) => {
          const p = this.compileAt(v);
          n.props.push({ name: k, node: p, required: false });
          n.propIndex.set(k, i);
          names.push(k);
        });
        n.allowed = names.join(", ");
        return;
      }
      case "required": {
        // Sorted out in finish, once properties are known.
        const seen = new Set<string>();
        for (const el of elements(val)) {
          const s = str(el);
          if (seen.has(s)) continue;
          seen.add(s);
          n.extraReq.push(s);
        }
        return;
      }
      case "additionalProperties":
        if (val.kind === "boolean") {
          n.closed = !val.bool;
          return;
        }
        n.additional = this.compileAt(val);
        if (n.additional.kind === Kind.Never && !n.additional.ref && !n.additional.nullableOf && !n.additional.nullable) {
          n.closed = true;
          n.additional = null;
        }
        return;
      case "patternProperties": {
        const ap = kw.get("additionalProperties");
        if (ap && ap.text !== "true") throw this.fail(n.src, key, "not supported together with additionalProperties");
        this.note(n.src, key, "patternProperties is not evaluated");
        return;
      }
      case "propertyNames": {
        const names = enumOfStrings(val);
        if (names) {
          n.keyEnum = names;
          n.keySet = stringSet(names);
        } else this.note(n.src, key, "propertyNames other than an enum of strings is not evaluated");
        return;
      }
      case "minProperties":
        n.minProps = countOf(val);
        return;
      case "maxProperties":
        n.maxProps = countOf(val);
        return;
      case "items":
        if (val.kind === "array") {
          this.prefixItems(n, val);
          return;
        }
        if (val.kind === "boolean" && val.bool === false) {
          n.noExtra = true;
          return;
        }
        n.items = this.compileAt(val);
        return;
      case "additionalItems": {
        const it = kw.get("items");
        if (!it || it.kind !== "array") {
          this.note(n.src, key, "additionalItems without a tuple items is ignored");
          return;
        }
        if (val.text === "false") {
          n.noExtra = true;
          return;
        }
        n.items = this.compileAt(val);
        return;
      }
      case "prefixItems":
        this.prefixItems(n, val);
        return;
      case "minItems":
        n.minItems = countOf(val);
        return;
      case "maxItems":
        n.maxItems = countOf(val);
        return;
      case "uniqueItems":
        n.unique = bool(val);
        return;
      case "minLength":
        n.minLen = countOf(val);
        return;
      case "maxLength":
        n.maxLen = countOf(val);
        return;
      case "pattern": {
        const s = str(val);
        try {
          n.pattern = new RegExp(s, "u");
        } catch (e) {
          throw this.fail(n.src, key, `JavaScript cannot compile ${goStrconvQuote(s)}: ${(e as Error).message}`);
        }
        n.patternSrc = s;
        return;
      }
      case "format":
        n.format = str(val);
        return;
      case "contentEncoding": {
        const s = str(val);
        if (s === "base64") n.base64 = true;
        else this.note(n.src, key, `content encoding ${goStrconvQuote(s)} is not checked`);
        return;
      }
      case "minimum":
      case "maximum":
      case "exclusiveMinimum":
      case "exclusiveMaximum": {
        const v = num(val);
        const i = boundIndex[key]!;
        const b: Bound = { set: true, isMin: i === bMinimum || i === bExclusiveMinimum, exc: i === bExclusiveMinimum || i === bExclusiveMaximum, f: v.f, text: v.text, intVal: null, lim: null };
        const iv = exactInt(v.text);
        if (iv !== null) {
          b.intVal = iv;
          b.lim = b.exc ? (b.isMin ? iv + 1n : iv - 1n) : iv;
        }
        n.bounds[i] = b;
        return;
      }
      case "multipleOf": {
        const v = num(val);
        if (!(v.f > 0)) throw new Inner(`expected a number above 0, got ${v.text}`);
        const iv = exactInt(v.text);
        n.multiple = { set: true, text: v.text, i: iv !== null && iv >= minInt64 && iv <= maxInt64 ? iv : 0n };
        return;
      }
      case "enum":
        this.setEnum(n, elements(val));
        return;
      case "const":
        this.setEnum(n, [val]);
        return;
      default:
        this.note(n.src, key, "unknown keyword, ignored");
    }
  }

  prefixItems(n: Node, val: RawValue): void {
    let els: RawValue[];
    try {
      els = elements(val);
    } catch (e) {
      throw this.fail(n.src, "prefixItems", (e as Error).message);
    }
    for (const el of els) n.prefix.push(this.compileAt(el));
  }

  /** setEnum records the allowed values of enum or const, each once. */
  setEnum(n: Node, els: RawValue[]): void {
    n.hasEnum = true;
    n.enumRaw ??= [];
    n.enumSeen ??= new Set();
    for (const el of els) {
      const c = canonical(el);
      if (n.enumSeen.has(c)) continue;
      n.enumSeen.add(c);
      n.enumRaw.push(c);
      n.enumVals.push(el);
      n.enumLits.push(compactText(el.text));
    }
  }

  finish(n: Node, kw: Map<string, RawValue>): void {
    if (n.kind === Kind.Object || n.kind === Kind.Any || n.inferred) {
      const req = n.extraReq;
      n.extraReq = [];
      for (const name of req) {
        const i = n.propIndex.get(name);
        if (i !== undefined) n.props[i]!.required = true;
        else n.extraReq.push(name);
      }
      if (n.extraReq.length > 8) n.extraIndex = new Map(n.extraReq.map((name, j) => [name, j]));
      n.props.forEach((p, i) => {
        if (p.required) n.required.push(i);
      });
    }
    if (n.inferred) {
      n.kind = Kind.Object;
      if (!kw.has("additionalProperties")) n.closed = true;
    }
    if (n.kind === Kind.Object && n.extraReq.length > 0 && n.closed) {
      throw this.fail(n.src, "required", `${goStrconvQuote(n.extraReq[0]!)} is required but not in properties, and additionalProperties is false: no value is valid`);
    }
    if (n.hasEnum) {
      typedEnum(n);
      if (n.enumStrings) n.enumSet = stringSet(n.enumStrings);
      if (n.enumRaw !== null && n.kind !== Kind.Any) {
        this.note(n.src, "enum", "an enum of objects or arrays is not evaluated");
        n.enumRaw = null;
      }
    }
    if (n.kind === Kind.Any) {
      for (const key of typedKeywords) if (kw.has(key)) this.note(n.src, key, "the schema has no single type, so this keyword is not evaluated");
    }
    if (n.kind === Kind.Integer) integerRange(n);
    if (n.kind === Kind.Array && n.minItems >= 0 && n.minItems === n.maxItems && n.prefix.length === 0 && !n.noExtra) {
      n.fixedLen = n.minItems;
      n.fixedWords = `array of exactly ${n.fixedLen} items`;
    }
    if (n.kind === Kind.String) {
      const plain = !n.base64 && n.minLen < 0 && n.maxLen < 0 && !n.hasEnum;
      if (n.format === "date-time" && plain && n.pattern === null) n.goTime = true;
      else if (n.patternSrc === goDurationPattern && n.format === "" && plain) n.goDuration = true;
    }
  }

  /** resolveTarget sets n.target, the node that reads n's value through
   * $ref and nullable wrappers, and fails when following them comes back
   * to a node without reading any value: such a schema has no meaning. A
   * chain is followed once: the nodes on it get their target from its
   * end. */
  resolveTarget(n: Node): void {
    const chain: Node[] = [];
    let cur = n;
    while (cur.target === null) {
      if (cur.resolving) {
        for (const m of chain) m.resolving = false;
        throw this.fail(n.src, "$ref", "the reference leads back to itself");
      }
      cur.resolving = true;
      chain.push(cur);
      if (cur.ref) cur = cur.ref;
      else if (cur.nullableOf) cur = cur.nullableOf;
      else {
        cur.target = cur;
        cur.nullChain = cur.nullable;
      }
    }
    // cur ends the chain: from the back, each node gets its target and
    // whether null is valid somewhere between it and the target.
    let nul = cur.nullChain;
    for (let i = chain.length - 1; i >= 0; i--) {
      const m = chain[i]!;
      m.resolving = false;
      if (m === cur) continue;
      nul = nul || m.nullable;
      m.target = cur.target;
      m.nullChain = nul;
    }
  }
}

/** stringSet returns a set of a long list, for lookups; undefined for a
 * short one, which a scan searches as fast. */
function stringSet(list: string[]): Set<string> | undefined {
  return list.length > 16 ? new Set(list) : undefined;
}

function parseType(raw: RawValue): number {
  let names: string[];
  if (raw.kind === "string") names = [raw.str!];
  else {
    let els: RawValue[];
    try {
      els = elements(raw);
    } catch (e) {
      throw new Inner(`expected a type name or an array of them: ${(e as Error).message}`);
    }
    if (els.length === 0) throw new Inner("expected at least one type name");
    names = els.map(str);
  }
  let set = 0;
  for (const name of names) {
    const t = (T as Record<string, number>)[name];
    if (t === undefined || !Object.hasOwn(T, name)) throw new Inner(`unknown type ${goStrconvQuote(name)} (expected object, array, string, integer, number, boolean or null)`);
    set |= t;
  }
  return set;
}

function isNullSchema(raw: RawValue): boolean {
  if (raw.kind !== "object") return false;
  let ms: [string, RawValue][];
  try {
    ms = members(raw);
  } catch {
    return false;
  }
  let isNull = false;
  for (const [k, v] of ms) {
    if (k === "type") {
      try {
        if (parseType(v) !== T.null) return false;
      } catch {
        return false;
      }
      isNull = true;
    } else if (!annotations.has(k) && !k.startsWith("x-")) return false;
  }
  return isNull;
}

function enumOfStrings(raw: RawValue): string[] | null {
  if (raw.kind !== "object") return null;
  let ms: [string, RawValue][];
  try {
    ms = members(raw);
  } catch {
    return null;
  }
  let out: string[] | null = null;
  for (const [k, v] of ms) {
    if (k === "enum") {
      if (v.kind !== "array") return null;
      out = [];
      for (const el of v.items!) {
        if (el.kind !== "string") return null;
        out.push(el.str!);
      }
    } else if (!((k === "type" && compactText(v.text) === '"string"') || annotations.has(k) || k.startsWith("x-"))) return null;
  }
  return out;
}

function typedEnum(n: Node): void {
  const raw = n.enumRaw!;
  let allStrings = true;
  for (const c of raw) {
    if (c !== "null" && c[0] !== '"') allStrings = false;
    if (c === "null" && n.kind === Kind.Any) n.nullable = true;
  }
  if (n.kind === Kind.Any && allStrings) n.kind = Kind.String;
  const lits = n.enumLits;
  n.enumLits = [];
  raw.forEach((c, i) => {
    const v = n.enumVals[i]!;
    switch (n.kind) {
      case Kind.String:
        if (v.kind === "string") {
          (n.enumStrings ??= []).push(v.str!);
          n.enumLits.push(lits[i]!);
        }
        break;
      case Kind.Integer:
        if (/^-?\d+$/.test(c)) {
          const b = BigInt(c);
          if (b >= minInt64 && b <= maxInt64) {
            (n.enumInts ??= []).push(b);
            n.enumLits.push(lits[i]!);
          }
        }
        break;
      case Kind.Number:
        if (v.kind === "number") {
          (n.enumNums ??= []).push(Number(v.text));
          n.enumLits.push(lits[i]!);
        }
        break;
      case Kind.Boolean:
        if (v.kind === "boolean") {
          (n.enumBools ??= []).push(v.bool!);
          n.enumLits.push(lits[i]!);
        }
        break;
      default:
        n.enumLits.push(lits[i]!);
    }
  });
  switch (n.kind) {
    case Kind.String:
      n.enumRaw = null;
      n.enumStrings ??= [];
      break;
    case Kind.Integer:
      n.enumRaw = null;
      n.enumInts ??= [];
      break;
    case Kind.Number:
      n.enumRaw = null;
      n.enumNums ??= [];
      break;
    case Kind.Boolean:
      n.enumRaw = null;
      n.enumBools ??= [];
      break;
  }
}

function integerRange(n: Node): void {
  n.bits = 64;
  const lo = n.bounds[bMinimum].lim;
  const hi = n.bounds[bMaximum].lim;
  const eq = (a: bigint | null, b: bigint | undefined) => a !== null && b !== undefined && a === b;
  const within = (a: bigint | null, min: bigint, max: bigint) => a !== null && a >= min && a <= max;
  const use = (bits: number, unsigned: boolean, dropLo: boolean, dropHi: boolean) => {
    n.bits = bits;
    n.unsigned = unsigned;
    if (dropLo) n.bounds[bMinimum] = noBound();
    if (dropHi) n.bounds[bMaximum] = noBound();
  };
  for (const bits of [8, 16, 32, 64]) {
    if (eq(lo, goIntMin[bits]) && eq(hi, goIntMax[bits])) return use(bits, false, true, true);
    if (lo === 0n && eq(hi, goUintMax[bits])) return use(bits, true, true, true);
  }
  if (lo === 0n && hi === null && !n.bounds[bExclusiveMaximum].set) return use(64, true, true, false);
  for (const bits of [8, 16, 32]) {
    if (eq(hi, goIntMax[bits]) && within(lo, goIntMin[bits]!, goIntMax[bits]!)) return use(bits, false, false, true);
    if (eq(lo, goIntMin[bits]) && within(hi, goIntMin[bits]!, goIntMax[bits]!)) return use(bits, false, true, false);
    if (eq(hi, goUintMax[bits]) && within(lo, 0n, goUintMax[bits]!)) return use(bits, true, false, true);
  }
}

/** expectedWords describes the value n (a target: see resolveTarget)
 * wants, as atpgen's generated code does for the Go type behind it. Past
 * ten values an enum is worded by its size ("one of 20000 values"), so
 * that a huge enum is never echoed back on every call. */
function expectedWords(n: Node): string {
  if (n.enumLits.length > maxListed) return "one of " + n.enumLits.length + " values";
  if (n.enumLits.length > 0) return "one of " + n.enumLits.join(", ");
  switch (n.kind) {
    case Kind.Object:
      return "object";
    case Kind.Array:
      return "array";
    case Kind.String:
      if (n.base64) return "base64 string";
      if (n.goTime) return "RFC 3339 date-time string";
      if (n.goDuration) return "duration string";
      return "string";
    case Kind.Integer:
      return "integer";
    case Kind.Number:
      return "number";
    case Kind.Boolean:
      return "boolean";
    case Kind.Null:
      return "null";
    case Kind.Never:
      return "no value";
  }
  return "any value";
}

function isScalar(n: Node): boolean {
  if (n.nullChain) return false;
  n = n.target!;
  switch (n.kind) {
    case Kind.String:
      return !n.base64 && !n.goTime && !n.goDuration;
    case Kind.Integer:
    case Kind.Number:
    case Kind.Boolean:
      return true;
  }
  return false;
}

/** A compiled schema. validate returns the problems with params in the
 * order and words of the Go runtime's Decoder (none when valid). */
export class Validator {
  private constructor(
    private readonly root: Node,
    /** The keywords of the schema that are not evaluated, each with where
     * it is and why: they can only make validate accept more. */
    readonly notes: readonly string[],
  ) {}

  /** compile prepares a schema (its JSON text, or a value to encode). It
   * throws a SchemaError naming the keyword and pointer of what it cannot
   * interpret. */
  static compile(schema: string | object | boolean): Validator {
    const text = typeof schema === "string" ? schema : JSON.stringify(schema);
    let doc: RawValue;
    try {
      doc = parseRaw(text);
    } catch {
      throw new SchemaError("", "", "not valid JSON");
    }
    const c = new Compiler(doc);
    const root = c.compileAt(doc);
    // In the order the nodes were made, which follows the document.
    for (const n of c.order) c.resolveTarget(n);
    for (const n of c.order) {
      n.enumSeen = null; // only needed while compiling
      n.expected = expectedWords(n.target!);
      if (n.unique) {
        if (n.items && n.prefix.length === 0 && isScalar(n.items)) n.uniqueScalars = true;
        else c.note(n.src, "uniqueItems", "only items that are strings, numbers or booleans (not null) are compared");
      }
    }
    c.notes.sort(compareUTF8);
    if (c.moreNotes > 0) c.notes.push(`and ${c.moreNotes} more notes`);
    return new Validator(root, c.notes);
  }

  /** validate checks params (the raw JSON bytes or text as received; empty
   * and null count as {}). */
  validate(params: Uint8Array | string, d: Decoder = new Decoder()): Problem[] {
    d.reset(params);
    value(d, this.root);
    return d.getProblems();
  }
}

/** missingWords is the "expected" of a missing property p of object n. A
 * Python tool's inferred schema knows names, not types: it says nothing. */
function missingWords(n: Node, p: Node): string {
  return n.inferred ? "" : p.target!.expected;
}

/** value reads one value described by n, as generated code for the Go type
 * behind n would. */
function value(d: Decoder, n: Node): void {
  if (n.nullChain && d.null()) return; // null is valid on the way to the target
  read(d, n.target!);
}

function read(d: Decoder, n: Node): void {
  switch (n.kind) {
    case Kind.Object:
      return object(d, n);
    case Kind.Array:
      return array(d, n);
    case Kind.String:
      readString(d, n);
      return;
    case Kind.Integer:
      readInteger(d, n, false);
      return;
    case Kind.Number:
      readNumber(d, n);
      return;
    case Kind.Boolean:
      readBool(d, n);
      return;
    case Kind.Null:
      if (!d.null()) d.fail("null", describe(d.raw()));
      return;
    case Kind.Never:
      d.fail("no value", describe(d.raw()));
      return;
  }
  if (n.enumRaw !== null) {
    const raw = d.raw();
    if (raw === null) return;
    let c: string | null = null;
    try {
      c = canonical(parseRaw(raw));
    } catch {
      c = null;
    }
    if (c === null || !n.enumRaw.includes(c)) d.fail(n.expected, describe(raw));
    return;
  }
  d.skip();
}

function object(d: Decoder, n: Node): void {
  if (!d.object()) return;
  const seen = new Set<number>();
  const extraSeen = n.extraReq.map(() => false);
  let mapKeys: Set<string> | null = null;
  let count = 0;
  while (d.next()) {
    count++;
    const key = d.key();
    const i = n.propIndex.get(key);
    if (i !== undefined) {
      if (n.inferred) {
        seen.add(i);
        d.skip();
        continue;
      }
      if (seen.has(i)) {
        d.duplicate();
        continue;
      }
      seen.add(i);
      value(d, n.props[i]!.node);
      continue;
    }
    if (n.extraIndex) {
      const j = n.extraIndex.get(key);
      if (j !== undefined) extraSeen[j] = true;
    } else {
      n.extraReq.forEach((name, j) => {
        if (name === key) extraSeen[j] = true;
      });
    }
    if (n.additional) {
      mapKeys ??= new Set();
      if (mapKeys.has(key)) {
        d.duplicate();
        continue;
      }
      mapKeys.add(key);
      if (n.keyEnum) d.enum(key, n.keyEnum, n.keySet);
      value(d, n.additional);
    } else if (n.closed) d.unknown(n.allowed);
    else d.skip();
  }
  for (const i of n.required) {
    if (!seen.has(i)) {
      const p = n.props[i]!;
      d.missing(p.name, missingWords(n, p.node));
    }
  }
  n.extraReq.forEach((name, j) => {
    if (!extraSeen[j]) d.missing(name, missingWords(n, anyNode));
  });
  if (n.minProps >= 0) d.minProperties(count, n.minProps);
  if (n.maxProps >= 0) d.maxProperties(count, n.maxProps);
}

function array(d: Decoder, n: Node): void {
  if (!d.array()) return;
  const uniq = { keys: new Set<string>(), repeated: false, got: "" };
  const problemsBefore = n.uniqueScalars ? d.problemCount() : 0;
  let count = 0;
  while (d.nextItem()) {
    if (n.fixedLen >= 0 && count >= n.fixedLen) {
      d.skip();
      count++;
      continue;
    }
    let item: Node;
    if (count < n.prefix.length) item = n.prefix[count]!;
    else if (n.noExtra) item = neverNode;
    else item = n.items ?? anyNode;
    count++;
    if (n.uniqueScalars) {
      const [key, got] = readKey(d, item);
      if (!uniq.repeated) {
        if (uniq.keys.has(key)) {
          uniq.repeated = true;
          uniq.got = got;
        } else uniq.keys.add(key);
      }
      continue;
    }
    value(d, item);
  }
  if (n.fixedLen >= 0) {
    if (count !== n.fixedLen) {
      d.fail(n.fixedWords, gotInt(count));
      return;
    }
  } else {
    if (n.minItems >= 0) d.minItems(count, n.minItems);
    if (n.maxItems >= 0) d.maxItems(count, n.maxItems);
  }
  if (uniq.repeated && d.problemCount() === problemsBefore) d.fail("array of unique items", "repeated item " + uniq.got);
}

function readString(d: Decoder, n: Node): string {
  if (n.base64) {
    d.bytes();
    return "";
  }
  if (n.goTime) {
    d.time();
    return "";
  }
  if (n.goDuration) {
    d.duration();
    return "";
  }
  const s = d.string();
  if (n.enumStrings !== null) d.enum(s, n.enumStrings, n.enumSet);
  if (n.minLen >= 0) d.minLength(s, n.minLen);
  if (n.maxLen >= 0) d.maxLength(s, n.maxLen);
  if (n.pattern) d.pattern(s, n.pattern, n.patternSrc);
  if (n.format !== "") d.format(s, n.format);
  return s;
}

function readInteger(d: Decoder, n: Node, words: boolean): string {
  const v = n.unsigned ? d.uint(n.bits) : d.int(n.bits);
  if (n.enumInts !== null && !n.enumInts.includes(v)) d.fail(n.expected, gotInt(v));
  n.bounds.forEach((b, k) => {
    if (!b.set) return;
    if (b.intVal === null) checkFloat(d, b, Number(v));
    else if (!allows(b, v)) d.fail("integer " + boundOps[k] + " " + b.intVal.toString(), gotInt(v));
  });
  const m = n.multiple;
  if (m.set && m.i === 0n) d.multipleOf(m.text);
  else if (m.set && v % m.i !== 0n) d.fail("multiple of " + m.text, gotInt(v));
  return words ? gotInt(v) : "";
}

function allows(b: Bound, v: bigint): boolean {
  return b.isMin ? v >= b.lim! : v <= b.lim!;
}

function readNumber(d: Decoder, n: Node): number {
  const f = d.float();
  if (n.enumNums !== null && !n.enumNums.includes(f)) d.fail(n.expected, gotFloat(f));
  for (const b of n.bounds) if (b.set) checkFloat(d, b, f);
  if (n.multiple.set) d.multipleOf(n.multiple.text);
  return f;
}

function readBool(d: Decoder, n: Node): boolean {
  const b = d.bool();
  if (n.enumBools !== null && !n.enumBools.includes(b)) d.fail(n.expected, String(b));
  return b;
}

function checkFloat(d: Decoder, b: Bound, v: number): void {
  if (b.isMin) d.minimumFloat(v, b.f, b.exc);
  else d.maximumFloat(v, b.f, b.exc);
}

function readKey(d: Decoder, n: Node): [string, string] {
  n = n.target!;
  switch (n.kind) {
    case Kind.String: {
      const s = readString(d, n);
      return ["s" + s, gotString(s)];
    }
    case Kind.Integer: {
      const g = readInteger(d, n, true);
      return [g, g];
    }
    case Kind.Number: {
      const f = readNumber(d, n);
      if (f === 0) return ["0", gotFloat(f)];
      return [gotFloat(f), gotFloat(f)];
    }
    default: {
      const b = readBool(d, n);
      return [String(b), String(b)];
    }
  }
}

function describe(raw: string | null): string {
  if (raw === null || raw === "") return "";
  switch (raw[0]) {
    case '"':
      return gotString(JSON.parse(raw) as string);
    case "{":
      return "object";
    case "[":
      return "array";
  }
  return raw.length > 40 ? raw.slice(0, 40) + "…" : raw;
}
