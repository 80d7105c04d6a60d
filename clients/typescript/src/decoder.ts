// A port of the Go runtime's Decoder (runtime/atpimpl): a strict,
// one-pass JSON reader over UTF-8 bytes that tracks the JSON path of the
// value it is at and collects every problem, worded exactly as the Go
// decoders word them. The schema validator drives it the way atpgen's
// generated code drives the Go one, so that an LLM reading errors from a Go
// toolkit and from a Node toolkit reads the same sentences. Byte offsets in
// syntax errors are UTF-8 offsets, as in Go. It reads bytes, not a string, so
// that it sees what JSON.parse would hide: text that is not UTF-8 is a
// problem ("name: invalid UTF-8 in string", "invalid UTF-8 in key"), since
// such params would reach a tool altered.

import { checkFormat, parseGoDuration, parseRFC3339 } from "./formats.js";

/** One thing wrong with a call's params: where (a JSON path such as
 * "location.city" or "tags[2]", "" for the params object itself) and what. */
export interface Problem {
  path: string;
  message: string;
}

/** The one-line form of a problem, as the Go runtime prints it. */
export function problemString(p: Problem): string {
  return p.path === "" ? "params: " + p.message : p.path + ": " + p.message;
}

const maxDepth = 1000;
const maxProblems = 50;
const maxGotRunes = 40;
const maxExactExponent = 400;
/** How many allowed values an enum's problem lists: past it, the problem
 * says how many there are ("expected one of 20000 values"). */
export const maxListed = 10;
/** How many names an unknown field's problem lists. */
const maxListedFields = 20;

/** The problems of text that is not UTF-8 (RFC 8259 requires it). */
const invalidUTF8String = "invalid UTF-8 in string";
const invalidUTF8Key = "invalid UTF-8 in key";

const enum FrameKind {
  Object,
  Array,
}
const enum FrameState {
  Open,
  Value,
  Read,
}

interface Frame {
  key: string;
  index: number;
  kind: FrameKind;
  state: FrameState;
}

const emptyObject = new Uint8Array([0x7b, 0x7d]);
const utf8 = new TextEncoder();

/** Result of reading an integer exactly. */
const enum IntResult {
  OK,
  Fraction,
  TooBig,
}

const maxUint64 = (1n << 64n) - 1n;

/** Decoder reads one JSON params document. See the Go runtime's Decoder for
 * the contract of each method: every read consumes exactly one value and, on
 * a mismatch, records a problem, skips the value and returns a zero value. */
export class Decoder {
  private data: Uint8Array = emptyObject;
  private pos = 0;
  private coerce = false;
  private curKey = "";
  private frames: Frame[] = [];
  private problems: Problem[] = [];
  private overflow = false;
  private syntax: Problem | null = null;
  private normalized = false;
  private rootStarted = false;
  private rootDone = false;
  /** The literal of the number just read, for MultipleOf. */
  private lastNumber: string | null = null;
  /** The value just read already has a problem: checks on it stay silent. */
  private valueBad = false;
  /** The string scanString just checked holds bytes that are not UTF-8. */
  private scanInvalid = false;
  /** The string readString just read holds bytes that are not UTF-8. */
  private strInvalid = false;
  /** The key nextKey just read holds bytes that are not UTF-8. */
  private keyInvalid = false;
  /** Turns the invalid UTF-8 problems off: see setLenientUTF8. */
  private lenientUTF8 = false;

  constructor(data?: Uint8Array | string) {
    this.reset(data ?? new Uint8Array());
  }

  /** Prepares the decoder for data, dropping all state, problems and
   * settings (coercion, lenient UTF-8). Empty data and "null" decode as an
   * empty object. */
  reset(data: Uint8Array | string): void {
    this.data = typeof data === "string" ? utf8.encode(data) : data;
    this.pos = 0;
    this.curKey = "";
    this.frames = [];
    this.problems = [];
    this.overflow = false;
    this.syntax = null;
    this.normalized = false;
    this.rootStarted = false;
    this.rootDone = false;
    this.lastNumber = null;
    this.valueBad = false;
    this.scanInvalid = false;
    this.strInvalid = false;
    this.keyInvalid = false;
    this.coerce = false;
    this.lenientUTF8 = false;
  }

  setCoercion(on: boolean): void {
    this.coerce = on;
  }

  /** setLenientUTF8 turns off the problems about invalid UTF-8 (such bytes
   * read as U+FFFD), for reading an envelope whose nested params are
   * checked again by their own decoder. Call it after reset. */
  setLenientUTF8(on: boolean): void {
    this.lenientUTF8 = on;
  }

  failed(): boolean {
    this.finish();
    return this.problems.length > 0 || this.syntax !== null;
  }

  /** The problems recorded (only the syntax error when there is one). */
  getProblems(): Problem[] {
    this.finish();
    if (this.syntax) return [this.syntax];
    return this.problems.slice();
  }

  /** The problems recorded so far, without checking unread params. */
  problemCount(): number {
    return this.syntax ? 1 : this.problems.length;
  }

  key(): string {
    return this.curKey;
  }

  private finish(): void {
    if (this.rootStarted || this.syntax) return;
    if (this.object()) {
      while (this.next()) {
        /* members are skipped */
      }
    }
  }

  private normalizeRoot(): void {
    if (this.normalized) return;
    this.normalized = true;
    const d = this.data;
    const i = skipSpace(d, this.pos);
    const restLen = d.length - i;
    if (
      restLen === 0 ||
      (restLen >= 4 && d[i] === 0x6e && d[i + 1] === 0x75 && d[i + 2] === 0x6c && d[i + 3] === 0x6c && skipSpace(d, i + 4) === d.length)
    ) {
      this.data = emptyObject;
      this.pos = 0;
    }
  }

  private beginValue(op: string): boolean {
    if (this.syntax) return false;
    this.valueBad = false;
    this.lastNumber = null;
    const n = this.frames.length;
    if (n > 0) {
      const f = this.frames[n - 1]!;
      if (f.state !== FrameState.Value) {
        this.misuse(op);
        return false;
      }
      f.state = FrameState.Read;
      return true;
    }
    if (this.rootStarted) {
      this.misuse(op);
      return false;
    }
    this.normalizeRoot();
    this.rootStarted = true;
    return true;
  }

  private endValue(): void {
    if (this.frames.length === 0) this.checkTrailing();
  }

  private checkTrailing(): void {
    if (this.rootDone) return;
    this.rootDone = true;
    const i = skipSpace(this.data, this.pos);
    if (i < this.data.length) this.syntaxChar(i, "after top-level value");
  }

  private push(kind: FrameKind): boolean {
    if (this.frames.length >= maxDepth) {
      this.syntaxAt(this.pos, "nested deeper than 1000 levels");
      return false;
    }
    this.pos++;
    this.frames.push({ key: "", index: 0, kind, state: FrameState.Open });
    return true;
  }

  private pop(): void {
    this.pos++;
    this.frames.pop();
    this.valueBad = false;
    this.curKey = "";
    const n = this.frames.length;
    if (n === 0) {
      this.checkTrailing();
      return;
    }
    const p = this.frames[n - 1]!;
    if (p.kind === FrameKind.Object) this.curKey = p.key;
  }

  // ---- structure ----

  object(): boolean {
    if (!this.beginValue("Object")) return false;
    if (this.peek() === 0x7b) return this.push(FrameKind.Object);
    this.wrongType("object");
    return false;
  }

  array(): boolean {
    if (!this.beginValue("Array")) return false;
    if (this.peek() === 0x5b) return this.push(FrameKind.Array);
    this.wrongType("array");
    return false;
  }

  next(): boolean {
    for (;;) {
      const ok = this.nextKey();
      if (!ok || !this.keyInvalid || this.lenientUTF8) return ok;
      // The member is dropped: its key cannot name anything, and its
      // value needs no problem of its own.
      this.report(invalidUTF8Key);
      this.skipQuietly();
    }
  }

  /** nextKey is next for one member; keyInvalid tells a key that is not
   * UTF-8. */
  private nextKey(): boolean {
    this.keyInvalid = false;
    if (this.syntax) return false;
    const n = this.frames.length;
    if (n === 0 || this.frames[n - 1]!.kind !== FrameKind.Object) {
      this.misuse("Next");
      return false;
    }
    this.valueBad = false;
    let f = this.frames[n - 1]!;
    const d = this.data;
    if (f.state === FrameState.Open) {
      this.skipWS();
      if (this.pos < d.length && d[this.pos] === 0x7d) {
        this.pop();
        return false;
      }
    } else {
      if (f.state === FrameState.Value) {
        f.state = FrameState.Read;
        this.skipValue();
        if (this.syntax) return false;
        f = this.frames[n - 1]!;
      }
      f.state = FrameState.Open;
      this.skipWS();
      if (this.pos >= d.length) {
        this.syntaxChar(this.pos, "after object key:value pair");
        return false;
      }
      const c = d[this.pos];
      if (c === 0x2c) {
        this.pos++;
        this.skipWS();
      } else if (c === 0x7d) {
        this.pop();
        return false;
      } else {
        this.syntaxChar(this.pos, "after object key:value pair");
        return false;
      }
    }
    if (this.pos >= d.length || d[this.pos] !== 0x22) {
      this.syntaxChar(this.pos, "looking for beginning of object key string");
      return false;
    }
    const s = this.readString();
    if (s === null) return false;
    f.key = s;
    this.keyInvalid = this.strInvalid;
    this.skipWS();
    if (this.pos >= d.length || d[this.pos] !== 0x3a) {
      this.syntaxChar(this.pos, "after object key");
      return false;
    }
    this.pos++;
    f.state = FrameState.Value;
    this.curKey = f.key;
    return true;
  }

  nextItem(): boolean {
    if (this.syntax) return false;
    const n = this.frames.length;
    if (n === 0 || this.frames[n - 1]!.kind !== FrameKind.Array) {
      this.misuse("NextItem");
      return false;
    }
    this.valueBad = false;
    let f = this.frames[n - 1]!;
    const d = this.data;
    if (f.state === FrameState.Open) {
      this.skipWS();
      if (this.pos < d.length && d[this.pos] === 0x5d) {
        this.pop();
        return false;
      }
      f.index = 0;
      f.state = FrameState.Value;
      return true;
    }
    if (f.state === FrameState.Value) {
      f.state = FrameState.Read;
      this.skipValue();
      if (this.syntax) return false;
      f = this.frames[n - 1]!;
    }
    f.state = FrameState.Open;
    this.skipWS();
    if (this.pos < d.length) {
      const c = d[this.pos];
      if (c === 0x2c) {
        this.pos++;
        f.index++;
        f.state = FrameState.Value;
        return true;
      }
      if (c === 0x5d) {
        this.pop();
        return false;
      }
    }
    this.syntaxChar(this.pos, "after array element");
    return false;
  }

  null(): boolean {
    if (this.syntax) return false;
    const n = this.frames.length;
    if ((n > 0 && this.frames[n - 1]!.state !== FrameState.Value) || (n === 0 && this.rootStarted)) {
      this.misuse("Null");
      return false;
    }
    if (n === 0) this.normalizeRoot();
    this.skipWS();
    if (this.pos >= this.data.length || this.data[this.pos] !== 0x6e) return false;
    this.beginValue("Null");
    if (this.literal("null")) {
      this.endValue();
      return true;
    }
    return false;
  }

  skip(): void {
    if (this.beginValue("Skip")) {
      this.skipValue();
      this.endValue();
    }
  }

  /** skipQuietly skips the pending value of a member that already has its
   * problem: invalid UTF-8 inside it would only repeat that the member is
   * refused. */
  private skipQuietly(): void {
    const lenient = this.lenientUTF8;
    this.lenientUTF8 = true;
    this.skipPending();
    this.lenientUTF8 = lenient;
  }

  private skipPending(): void {
    const n = this.frames.length;
    if (!this.syntax && n > 0 && this.frames[n - 1]!.state === FrameState.Value) {
      this.frames[n - 1]!.state = FrameState.Read;
      this.skipValue();
    }
  }

  private skipValue(): void {
    const c = this.peek();
    if (c === 0x7b) {
      if (this.push(FrameKind.Object)) while (this.next()) {}
    } else if (c === 0x5b) {
      if (this.push(FrameKind.Array)) while (this.nextItem()) {}
    } else if (c === 0x22) {
      const end = this.scanString(this.pos);
      if (end >= 0) {
        this.pos = end;
        if (this.scanInvalid && !this.lenientUTF8) this.report(invalidUTF8String);
      }
    } else if (c === 0x2d || isDigit(c)) {
      const end = this.scanNumberAt(this.pos);
      if (end >= 0) this.pos = end;
    } else if (c === 0x74) this.literal("true");
    else if (c === 0x66) this.literal("false");
    else if (c === 0x6e) this.literal("null");
    else this.syntaxChar(this.pos, "looking for a value");
  }

  // ---- scalars ----

  string(): string {
    if (!this.beginValue("String")) return "";
    if (this.peek() !== 0x22) {
      this.wrongType("string");
      return "";
    }
    return this.text() ?? "";
  }

  /** text reads the string at pos for a method that returns or parses its
   * value, and ends the value. Text that is not UTF-8 is the value's
   * problem: it returns null then, as after a syntax error. */
  private text(): string | null {
    const s = this.readString();
    if (s === null) return null;
    this.endValue();
    if (this.strInvalid && !this.lenientUTF8) {
      this.valueBad = true;
      this.report(invalidUTF8String);
      return null;
    }
    return s;
  }

  bool(): boolean {
    if (!this.beginValue("Bool")) return false;
    const c = this.peek();
    if (c === 0x74) {
      if (this.literal("true")) {
        this.endValue();
        return true;
      }
      return false;
    }
    if (c === 0x66) {
      if (this.literal("false")) this.endValue();
      return false;
    }
    if (c === 0x22 && this.coerce) {
      const s = this.readString();
      if (s === null) return false;
      this.endValue();
      if (s === "true") return true;
      if (s === "false") return false;
      this.badValue("boolean", gotString(s));
      return false;
    }
    this.wrongType("boolean");
    return false;
  }

  private numberLiteral(expected: string): { lit: string; quoted: boolean } | null {
    const c = this.peek();
    if (c === 0x2d || isDigit(c)) {
      const start = this.pos;
      const end = this.scanNumberAt(start);
      if (end < 0) return null;
      this.pos = end;
      this.endValue();
      this.lastNumber = latin(this.data, start, end);
      return { lit: this.lastNumber, quoted: false };
    }
    if (c === 0x22 && this.coerce) {
      const s = this.readString();
      if (s === null) return null;
      this.endValue();
      if (!isNumber(s)) {
        this.badValue(expected, gotString(s));
        return null;
      }
      this.lastNumber = s;
      return { lit: s, quoted: true };
    }
    this.wrongType(expected);
    return null;
  }

  /** Reads an integer that fits in a signed integer of bits (8 to 64). */
  int(bits = 64): bigint {
    if (!this.beginValue("Int")) return 0n;
    const n = this.numberLiteral("integer");
    if (!n) return 0n;
    const { neg, mag, res } = parseIntLiteral(n.lit);
    const limit = (1n << BigInt(bits - 1)) - 1n;
    if (res === IntResult.Fraction) {
      this.badValue("integer", gotLiteral(n.lit, n.quoted));
      return 0n;
    }
    if (res === IntResult.TooBig || (!neg && mag > limit) || (neg && mag > limit + 1n)) {
      this.badValue("integer from " + (-limit - 1n).toString() + " to " + limit.toString(), gotLiteral(n.lit, n.quoted));
      return 0n;
    }
    return neg ? -mag : mag;
  }

  /** Reads a non-negative integer that fits in bits. */
  uint(bits = 64): bigint {
    if (!this.beginValue("Uint")) return 0n;
    const n = this.numberLiteral("integer");
    if (!n) return 0n;
    const { neg, mag, res } = parseIntLiteral(n.lit);
    const limit = (1n << BigInt(bits)) - 1n;
    if (res === IntResult.Fraction) {
      this.badValue("integer", gotLiteral(n.lit, n.quoted));
      return 0n;
    }
    if (res === IntResult.TooBig || (neg && mag !== 0n) || mag > limit) {
      this.badValue("integer from 0 to " + limit.toString(), gotLiteral(n.lit, n.quoted));
      return 0n;
    }
    return mag;
  }

  /** Reads a number (float64). */
  float(): number {
    if (!this.beginValue("Float")) return 0;
    const n = this.numberLiteral("number");
    if (!n) return 0;
    const f = Number(n.lit);
    if (!Number.isFinite(f)) {
      this.badValue("number from -1.7976931348623157e+308 to 1.7976931348623157e+308", gotLiteral(n.lit, n.quoted));
      return 0;
    }
    return f;
  }

  /** Reads a string of standard base64 (with padding), as encoding/json
   * does for []byte. */
  bytes(): Uint8Array | null {
    if (!this.beginValue("Bytes")) return null;
    if (this.peek() !== 0x22) {
      this.wrongType("base64 string");
      return null;
    }
    const s = this.text();
    if (s === null) return null;
    const out = decodeStdBase64(s);
    if (!out) {
      this.badValue("base64 string", gotString(s));
      return null;
    }
    return out;
  }

  /** Reads an RFC 3339 date-time string, as Go's time.Time decodes it. */
  time(): boolean {
    const expected = "RFC 3339 date-time string";
    if (!this.beginValue("Time")) return false;
    if (this.peek() !== 0x22) {
      this.wrongType(expected);
      return false;
    }
    const s = this.text();
    if (s === null) return false;
    if (!parseRFC3339(s)) {
      this.badValue(expected, gotString(s));
      return false;
    }
    return true;
  }

  /** Reads a duration string in Go's syntax ("1h30m", "90s"). */
  duration(): boolean {
    const expected = `duration string such as "1h30m" or "90s"`;
    if (!this.beginValue("Duration")) return false;
    if (this.peek() !== 0x22) {
      this.wrongType(expected);
      return false;
    }
    const s = this.text();
    if (s === null) return false;
    if (parseGoDuration(s) === null) {
      this.badValue(expected, gotString(s));
      return false;
    }
    return true;
  }

  /** Returns the next value's text, whatever valid JSON it is; null after
   * a syntax error. Bytes that are not UTF-8 read as U+FFFD: see
   * rawBytes. */
  raw(): string | null {
    const b = this.rawBytes();
    return b === null ? null : utf8Decoder.decode(b);
  }

  /** Returns the next value's bytes as received (a view of the input),
   * whatever valid JSON it is; null after a syntax error. */
  rawBytes(): Uint8Array | null {
    if (!this.beginValue("Raw")) return null;
    this.skipWS();
    const start = this.pos;
    this.skipValue();
    const end = this.pos;
    this.endValue();
    if (this.syntax) return null;
    return this.data.subarray(start, end);
  }

  // ---- problems ----

  /** unknown records that the current member is not a known field, naming
   * the allowed ones (a comma-separated list, cut after twenty names), and
   * skips its value. */
  unknown(allowed: string): void {
    if (allowed === "") this.report("unknown field (no fields are allowed)");
    else if (this.canReport()) this.report("unknown field (allowed: " + shortList(allowed) + ")");
    this.skipQuietly();
  }

  duplicate(): void {
    this.report("duplicate field");
    this.skipQuietly();
  }

  missing(name: string, expected: string): void {
    if (!this.canReport()) return;
    let msg = "missing required field";
    if (expected !== "") msg += " (expected " + expected + ")";
    this.problems.push({ path: appendPathKey(this.path(), name), message: msg });
  }

  fail(expected: string, got: string): void {
    if (!this.valueBad) this.report("expected " + expected + ", got " + got);
  }

  /** enum records a problem unless s is one of allowed (a set finds it in
   * a long list). */
  enum(s: string, allowed: readonly string[], set?: ReadonlySet<string>): void {
    if (this.valueBad) return;
    if (set ? set.has(s) : allowed.includes(s)) return;
    const words = allowed.length > maxListed ? allowed.length + " values" : allowed.map((a) => quoteJSON(a, -1)).join(", ");
    this.report("expected one of " + words + ", got " + quoteJSON(s, maxGotRunes));
  }

  minLength(s: string, n: number): void {
    if (this.valueBad) return;
    if (runeCount(s) < n) {
      this.report("expected string of at least " + count(n, "character", "characters") + ", got " + gotString(s));
    }
  }

  maxLength(s: string, n: number): void {
    if (this.valueBad) return;
    const c = runeCount(s);
    if (c > n) {
      this.report("expected string of at most " + count(n, "character", "characters") + ", got " + gotString(s) + " (" + count(c, "character", "characters") + ")");
    }
  }

  minItems(n: number, min: number): void {
    if (n < min) this.report("expected at least " + count(min, "item", "items") + ", got " + n);
  }

  maxItems(n: number, max: number): void {
    if (n > max) this.report("expected at most " + count(max, "item", "items") + ", got " + n);
  }

  minProperties(n: number, min: number): void {
    if (n < min) this.report("expected at least " + count(min, "entry", "entries") + ", got " + n);
  }

  maxProperties(n: number, max: number): void {
    if (n > max) this.report("expected at most " + count(max, "entry", "entries") + ", got " + n);
  }

  pattern(s: string, re: RegExp, source: string): void {
    if (this.valueBad) return;
    re.lastIndex = 0;
    if (re.test(s)) return;
    this.report("expected string matching " + source + ", got " + gotString(s));
  }

  format(s: string, format: string): void {
    if (this.valueBad) return;
    const [ok, expected] = checkFormat(s, format);
    if (!ok) this.report("expected " + expected + ", got " + gotString(s));
  }

  multipleOf(m: string): void {
    if (this.valueBad || this.lastNumber === null) return;
    const lit = this.lastNumber;
    if (!smallExponent(lit) || !smallExponent(m)) return;
    const x = parseDecimal(lit);
    const y = parseDecimal(m);
    if (!x || !y || y.n <= 0n) return;
    if (!isIntegerQuotient(x, y)) this.report("expected multiple of " + m + ", got " + gotLiteral(lit, false));
  }

  minimumFloat(v: number, min: number, exclusive: boolean): void {
    if (this.valueBad) return;
    if (exclusive && !(v > min)) this.report("expected number > " + gotFloat(min) + ", got " + gotFloat(v));
    else if (!exclusive && !(v >= min)) this.report("expected number >= " + gotFloat(min) + ", got " + gotFloat(v));
  }

  maximumFloat(v: number, max: number, exclusive: boolean): void {
    if (this.valueBad) return;
    if (exclusive && !(v < max)) this.report("expected number < " + gotFloat(max) + ", got " + gotFloat(v));
    else if (!exclusive && !(v <= max)) this.report("expected number <= " + gotFloat(max) + ", got " + gotFloat(v));
  }

  private report(msg: string): void {
    if (this.canReport()) this.problems.push({ path: this.path(), message: msg });
  }

  private canReport(): boolean {
    if (this.syntax || this.overflow) return false;
    if (this.problems.length < maxProblems) return true;
    this.overflow = true;
    this.problems.push({ path: "", message: "too many problems; the first " + maxProblems + " are shown" });
    return false;
  }

  private badValue(expected: string, got: string): void {
    this.valueBad = true;
    this.report("expected " + expected + ", got " + got);
  }

  private wrongType(expected: string): void {
    const got = this.describeAndSkip();
    if (this.syntax) return;
    this.endValue();
    this.badValue(expected, got);
  }

  private describeAndSkip(): string {
    const c = this.peek();
    if (c === 0x22) {
      const s = this.readString();
      if (s !== null) return gotString(s);
    } else if (c === 0x7b || c === 0x5b) {
      // The value has its problem already: strings inside it need none.
      const lenient = this.lenientUTF8;
      this.lenientUTF8 = true;
      this.skipValue();
      this.lenientUTF8 = lenient;
      return c === 0x7b ? "object" : "array";
    } else if (c === 0x2d || isDigit(c)) {
      const start = this.pos;
      const end = this.scanNumberAt(start);
      if (end >= 0) {
        this.pos = end;
        return gotLiteral(latin(this.data, start, end), false);
      }
    } else if (c === 0x74) {
      this.literal("true");
      return "true";
    } else if (c === 0x66) {
      this.literal("false");
      return "false";
    } else if (c === 0x6e) {
      this.literal("null");
      return "null";
    } else {
      this.syntaxChar(this.pos, "looking for a value");
    }
    return "";
  }

  private misuse(op: string): void {
    if (!this.syntax) {
      this.syntax = { path: this.path(), message: "internal error: Decoder." + op + " called out of order" };
    }
  }

  private syntaxChar(i: number, context: string): void {
    if (i >= this.data.length) {
      this.syntaxAt(this.data.length, "unexpected end of input");
      return;
    }
    this.syntaxAt(i, "invalid character " + quoteChar(this.data, i) + " " + context);
  }

  private syntaxAt(offset: number, what: string): void {
    if (!this.syntax) this.syntax = { path: this.path(), message: "invalid JSON: " + what + " at offset " + offset };
  }

  /** The current JSON path: location.city, tags[2], meta["x-y"]. */
  path(): string {
    let b = "";
    for (const f of this.frames) {
      if (f.state === FrameState.Open) continue;
      if (f.kind === FrameKind.Array) b += "[" + f.index + "]";
      else b = appendPathKey(b, f.key);
    }
    return b;
  }

  // ---- scanner ----

  private skipWS(): void {
    this.pos = skipSpace(this.data, this.pos);
  }

  private peek(): number {
    this.skipWS();
    return this.pos < this.data.length ? this.data[this.pos]! : 0;
  }

  private literal(word: string): boolean {
    for (let k = 0; k < word.length; k++) {
      const i = this.pos + k;
      if (i >= this.data.length || this.data[i] !== word.charCodeAt(k)) {
        this.syntaxChar(i, "in literal " + word + " (expecting " + quoteRune(word.charCodeAt(k)) + ")");
        return false;
      }
    }
    this.pos += word.length;
    return true;
  }

  /** Checks the string whose quote is at i; returns the index after its
   * closing quote, or -1 after a syntax error. scanInvalid tells bytes that
   * are not UTF-8. */
  private scanString(i: number): number {
    const d = this.data;
    this.scanInvalid = false;
    i++;
    for (;;) {
      while (i < d.length && d[i]! >= 0x20 && d[i]! < 0x80 && d[i] !== 0x22 && d[i] !== 0x5c) i++;
      if (i >= d.length) {
        this.syntaxAt(d.length, "unexpected end of input");
        return -1;
      }
      const c = d[i]!;
      if (c === 0x22) return i + 1;
      if (c === 0x5c) {
        i++;
        if (i >= d.length) {
          this.syntaxAt(d.length, "unexpected end of input");
          return -1;
        }
        const e = d[i]!;
        if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) {
          i++;
        } else if (e === 0x75) {
          i++;
          for (let k = 0; k < 4; k++) {
            if (i >= d.length || hexValue(d[i]!) < 0) {
              this.syntaxChar(i, "in \\u hexadecimal character escape");
              return -1;
            }
            i++;
          }
        } else {
          this.syntaxChar(i, "in string escape code");
          return -1;
        }
      } else if (c < 0x20) {
        this.syntaxChar(i, "in string literal");
        return -1;
      } else {
        const [r, size] = decodeRune(d, i);
        if (r === 0xfffd && size === 1) this.scanInvalid = true; // the value gets U+FFFD
        i += size;
      }
    }
  }

  /** Reads the string at pos and returns its value, or null on a syntax
   * error. */
  private readString(): string | null {
    const start = this.pos + 1;
    const end = this.scanString(this.pos);
    this.strInvalid = this.scanInvalid;
    if (end < 0) return null;
    this.pos = end;
    return unescape(this.data, start, end - 1);
  }

  private scanNumberAt(i: number): number {
    const d = this.data;
    const [end, bad] = scanNumber(d, i);
    if (bad >= 0) {
      if (bad > i && d[bad - 1] === 0x2e) this.syntaxChar(bad, "after decimal point in numeric literal");
      else if (
        (bad > i && (d[bad - 1]! | 0x20) === 0x65) ||
        (bad > i + 1 && (d[bad - 1] === 0x2b || d[bad - 1] === 0x2d) && (d[bad - 2]! | 0x20) === 0x65)
      )
        this.syntaxChar(bad, "in exponent of numeric literal");
      else this.syntaxChar(bad, "in numeric literal");
      return -1;
    }
    return end;
  }
}

// ---- helpers shared with the validator ----

function isDigit(c: number | undefined): boolean {
  return c !== undefined && c >= 0x30 && c <= 0x39;
}

function skipSpace(d: Uint8Array, i: number): number {
  while (i < d.length) {
    const c = d[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
    i++;
  }
  return i;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

function latin(d: Uint8Array, start: number, end: number): string {
  let s = "";
  for (let i = start; i < end; i++) s += String.fromCharCode(d[i]!);
  return s;
}

const utf8Decoder = new TextDecoder();

/** shortList cuts a comma-separated list of field names after twenty:
 * "a, b, ..., t, and 980 more", so that an object with a thousand
 * properties does not put them all in every problem. */
export function shortList(names: string): string {
  let i = 0;
  for (let n = 0; n < maxListedFields; n++) {
    const j = names.indexOf(", ", i);
    if (j < 0) return names;
    i = j + 2;
  }
  return names.slice(0, i) + "and " + names.slice(i).split(", ").length + " more";
}

/** Decodes one rune at i as Go's utf8.DecodeRune: [rune, size], with
 * [0xFFFD, 1] for an invalid or short sequence. */
export function decodeRune(d: Uint8Array, i: number): [number, number] {
  const c0 = d[i]!;
  if (c0 < 0x80) return [c0, 1];
  const cont = (k: number) => i + k < d.length && (d[i + k]! & 0xc0) === 0x80;
  if (c0 >= 0xc2 && c0 <= 0xdf) {
    if (cont(1)) return [((c0 & 0x1f) << 6) | (d[i + 1]! & 0x3f), 2];
  } else if (c0 >= 0xe0 && c0 <= 0xef) {
    if (cont(1) && cont(2)) {
      const c1 = d[i + 1]!;
      if ((c0 === 0xe0 && c1 < 0xa0) || (c0 === 0xed && c1 > 0x9f)) return [0xfffd, 1];
      return [((c0 & 0x0f) << 12) | ((c1 & 0x3f) << 6) | (d[i + 2]! & 0x3f), 3];
    }
  } else if (c0 >= 0xf0 && c0 <= 0xf4) {
    if (cont(1) && cont(2) && cont(3)) {
      const c1 = d[i + 1]!;
      if ((c0 === 0xf0 && c1 < 0x90) || (c0 === 0xf4 && c1 > 0x8f)) return [0xfffd, 1];
      return [((c0 & 0x07) << 18) | ((c1 & 0x3f) << 12) | ((d[i + 2]! & 0x3f) << 6) | (d[i + 3]! & 0x3f), 4];
    }
  }
  return [0xfffd, 1];
}

function hex4(d: Uint8Array, i: number, end: number): number {
  if (i + 6 > end || d[i] !== 0x5c || d[i + 1] !== 0x75) return -1;
  let r = 0;
  for (let k = 2; k < 6; k++) {
    const v = hexValue(d[i + k]!);
    if (v < 0) return -1;
    r = (r << 4) | v;
  }
  return r;
}

/** The value of a checked string's text d[start:end], as encoding/json
 * unescapes it: invalid UTF-8 and unpaired surrogates become U+FFFD. */
function unescape(d: Uint8Array, start: number, end: number): string {
  let plain = true;
  for (let i = start; i < end; i++) {
    if (d[i]! >= 0x80 || d[i] === 0x5c) {
      plain = false;
      break;
    }
  }
  if (plain) return latin(d, start, end);
  const out: number[] = [];
  for (let i = start; i < end; ) {
    const c = d[i]!;
    if (c === 0x5c) {
      const e = d[i + 1]!;
      switch (e) {
        case 0x62:
          out.push(8);
          break;
        case 0x66:
          out.push(12);
          break;
        case 0x6e:
          out.push(10);
          break;
        case 0x72:
          out.push(13);
          break;
        case 0x74:
          out.push(9);
          break;
        case 0x75: {
          let r = hex4(d, i, end);
          i += 6;
          if (r >= 0xd800 && r < 0xe000) {
            const r2 = hex4(d, i, end);
            if (r < 0xdc00 && r2 >= 0xdc00 && r2 < 0xe000) {
              out.push(((r - 0xd800) << 10) + (r2 - 0xdc00) + 0x10000);
              i += 6;
              continue;
            }
            r = 0xfffd;
          }
          out.push(r);
          continue;
        }
        default:
          out.push(e);
      }
      i += 2;
      continue;
    }
    const [r, size] = decodeRune(d, i);
    out.push(r);
    i += size;
  }
  let s = "";
  for (let k = 0; k < out.length; k += 4096) s += String.fromCodePoint(...out.slice(k, k + 4096));
  return s;
}

/** scanNumber returns [end, -1] for the JSON number at i, or [0, bad] with
 * the index of the first byte that breaks the grammar. */
function scanNumber(d: Uint8Array, i: number): [number, number] {
  if (i < d.length && d[i] === 0x2d) i++;
  if (i >= d.length) return [0, i];
  if (d[i] === 0x30) i++;
  else if (d[i]! >= 0x31 && d[i]! <= 0x39) {
    i++;
    while (i < d.length && isDigit(d[i])) i++;
  } else return [0, i];
  if (i < d.length && d[i] === 0x2e) {
    i++;
    if (i >= d.length || !isDigit(d[i])) return [0, i];
    while (i < d.length && isDigit(d[i])) i++;
  }
  if (i < d.length && (d[i] === 0x65 || d[i] === 0x45)) {
    i++;
    if (i < d.length && (d[i] === 0x2b || d[i] === 0x2d)) i++;
    if (i >= d.length || !isDigit(d[i])) return [0, i];
    while (i < d.length && isDigit(d[i])) i++;
  }
  return [i, -1];
}

function isNumber(s: string): boolean {
  const b = utf8.encode(s);
  const [end, bad] = scanNumber(b, 0);
  return bad < 0 && end === b.length;
}

/** parseIntLiteral reads a valid JSON number as an integer's sign and
 * magnitude, exactly: 2.0, 1e2 and -0 are integers. */
function parseIntLiteral(lit: string): { neg: boolean; mag: bigint; res: IntResult } {
  let i = 0;
  let neg = false;
  if (lit[0] === "-") {
    neg = true;
    i = 1;
  }
  let j = i;
  while (j < lit.length && lit.charCodeAt(j) >= 0x30 && lit.charCodeAt(j) <= 0x39) j++;
  const intPart = lit.slice(i, j);
  let frac = "";
  if (j < lit.length && lit[j] === ".") {
    let k = j + 1;
    while (k < lit.length && lit.charCodeAt(k) >= 0x30 && lit.charCodeAt(k) <= 0x39) k++;
    frac = lit.slice(j + 1, k);
    j = k;
  }
  let exp = 0;
  if (j < lit.length) {
    j++;
    let expNeg = false;
    if (lit[j] === "+" || lit[j] === "-") {
      expNeg = lit[j] === "-";
      j++;
    }
    for (; j < lit.length; j++) if (exp < 1e9) exp = exp * 10 + (lit.charCodeAt(j) - 0x30);
    if (expNeg) exp = -exp;
  }
  exp -= frac.length;
  let digits = intPart + frac;
  let lo = 0;
  while (lo < digits.length && digits[lo] === "0") lo++;
  if (lo === digits.length) return { neg, mag: 0n, res: IntResult.OK };
  let hi = digits.length;
  while (digits[hi - 1] === "0") {
    hi--;
    exp++;
  }
  if (exp < 0) return { neg, mag: 0n, res: IntResult.Fraction };
  if (hi - lo + exp > 20) return { neg, mag: 0n, res: IntResult.TooBig };
  digits = digits.slice(lo, hi);
  const mag = BigInt(digits) * 10n ** BigInt(exp);
  if (mag > maxUint64) return { neg, mag: 0n, res: IntResult.TooBig };
  return { neg, mag, res: IntResult.OK };
}

/** A decimal literal as n·10^e. */
export interface Decimal {
  n: bigint;
  e: number;
}

/** parseDecimal reads a JSON number literal exactly; null when it is not
 * one or its exponent is beyond maxExactExponent. */
export function parseDecimal(lit: string): Decimal | null {
  const m = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(lit);
  if (!m) return null;
  const exp = m[4] ? Number(m[4]) : 0;
  if (!Number.isFinite(exp) || Math.abs(exp) > maxExactExponent) return null;
  const frac = m[3] ?? "";
  let n = BigInt(m[2]! + frac);
  if (m[1] === "-") n = -n;
  return { n, e: exp - frac.length };
}

function isIntegerQuotient(x: Decimal, y: Decimal): boolean {
  const d = x.e - y.e;
  if (d >= 0) return (x.n * 10n ** BigInt(d)) % y.n === 0n;
  return x.n % (y.n * 10n ** BigInt(-d)) === 0n;
}

function smallExponent(lit: string): boolean {
  const i = lit.search(/[eE]/);
  if (i < 0) return true;
  let n = 0;
  for (const c of lit.slice(i + 1).replace(/^[+-]/, "")) {
    n = n * 10 + (c.charCodeAt(0) - 0x30);
    if (n > maxExactExponent) return false;
  }
  return true;
}

function count(n: number, one: string, many: string): string {
  return n === 1 ? "1 " + one : n + " " + many;
}

/** The number of Unicode code points in s (Go's rune count). */
export function runeCount(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const c2 = s.charCodeAt(i + 1);
      if (c2 >= 0xdc00 && c2 < 0xe000) i++;
    }
    n++;
  }
  return n;
}

/** quoteJSON quotes s as the runtime's appendQuoted does: JSON escapes for
 * quote, backslash and control characters, cut after limit code points with
 * "…" when limit >= 0. */
export function quoteJSON(s: string, limit: number): string {
  let b = '"';
  let n = 0;
  for (const ch of s) {
    if (n === limit) {
      b += "…";
      break;
    }
    n++;
    const r = ch.codePointAt(0)!;
    if (ch === '"' || ch === "\\") b += "\\" + ch;
    else if (r === 10) b += "\\n";
    else if (r === 13) b += "\\r";
    else if (r === 9) b += "\\t";
    else if (r < 0x20) b += "\\u00" + r.toString(16).padStart(2, "0");
    else if (r >= 0xd800 && r < 0xe000) b += "\ufffd";
    else b += ch;
  }
  return b + '"';
}

/** Words for a string value in a problem: quoted, cut when long. */
export function gotString(s: string): string {
  return quoteJSON(s, maxGotRunes);
}

/** Words for an integer value in a problem. */
export function gotInt(v: bigint | number): string {
  return v.toString();
}

/** Words for a number in a problem, as Go's strconv.FormatFloat(v, 'g', -1, 64). */
export function gotFloat(v: number): string {
  return formatFloatG(v);
}

function gotLiteral(lit: string, quoted: boolean): string {
  if (quoted) return gotString(lit);
  if (lit.length > maxGotRunes) return lit.slice(0, maxGotRunes) + "…";
  return lit;
}

/** Go's strconv.FormatFloat(v, 'g', -1, 64): the shortest digits that
 * read back as v, in %e form (two exponent digits at least) when the
 * decimal exponent is below -4 or at least 6, as Go's shortest 'g' does:
 * 1234567 is "1.234567e+06", 0.0001 is "0.0001". */
export function formatFloatG(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  const neg = v < 0 || Object.is(v, -0);
  const a = Math.abs(v);
  if (a === 0) return neg ? "-0" : "0";
  const [mant, expStr] = a.toExponential().split("e");
  const digits = mant!.replace(".", "");
  const exp = Number(expStr);
  let out: string;
  if (exp < -4 || exp >= 6) {
    out = digits[0]! + (digits.length > 1 ? "." + digits.slice(1) : "") + "e" + (exp < 0 ? "-" : "+") + String(Math.abs(exp)).padStart(2, "0");
  } else if (exp >= 0) {
    const intLen = exp + 1;
    const padded = digits.padEnd(intLen, "0");
    out = padded.slice(0, intLen) + (digits.length > intLen ? "." + digits.slice(intLen) : "");
  } else {
    out = "0." + "0".repeat(-exp - 1) + digits;
  }
  return neg ? "-" + out : out;
}

function quoteChar(d: Uint8Array, i: number): string {
  const [r, size] = decodeRune(d, i);
  if (r === 0xfffd && size === 1) return "'\\x" + d[i]!.toString(16).padStart(2, "0") + "'";
  return quoteRune(r);
}

/** Go's strconv.QuoteRune for the runes a syntax error can show. */
function quoteRune(r: number): string {
  switch (r) {
    case 0x27:
      return "'\\''";
    case 0x5c:
      return "'\\\\'";
    case 7:
      return "'\\a'";
    case 8:
      return "'\\b'";
    case 12:
      return "'\\f'";
    case 10:
      return "'\\n'";
    case 13:
      return "'\\r'";
    case 9:
      return "'\\t'";
    case 11:
      return "'\\v'";
  }
  if (r < 0x20 || r === 0x7f) return "'\\x" + r.toString(16).padStart(2, "0") + "'";
  if (!isPrintRune(r)) {
    if (r < 0x10000) return "'\\u" + r.toString(16).padStart(4, "0") + "'";
    return "'\\U" + r.toString(16).padStart(8, "0") + "'";
  }
  return "'" + String.fromCodePoint(r) + "'";
}

/** Go's strconv.Quote (fmt's %q), as the Go validator quotes what it
 * cites from a schema: printable characters as they are, the others
 * escaped (\n, \x01, \u00a0). */
export function goStrconvQuote(s: string): string {
  let b = '"';
  for (const ch of s) {
    let r = ch.codePointAt(0)!;
    if (r >= 0xd800 && r < 0xe000) r = 0xfffd; // a lone surrogate: Go reads U+FFFD
    if (r === 0x22 || r === 0x5c) b += "\\" + String.fromCodePoint(r);
    else if (isPrintRune(r)) b += String.fromCodePoint(r);
    else if (r === 7) b += "\\a";
    else if (r === 8) b += "\\b";
    else if (r === 12) b += "\\f";
    else if (r === 10) b += "\\n";
    else if (r === 13) b += "\\r";
    else if (r === 9) b += "\\t";
    else if (r === 11) b += "\\v";
    else if (r < 0x20 || r === 0x7f) b += "\\x" + r.toString(16).padStart(2, "0");
    else if (r < 0x10000) b += "\\u" + r.toString(16).padStart(4, "0");
    else b += "\\U" + r.toString(16).padStart(8, "0");
  }
  return b + '"';
}

function isPrintRune(r: number): boolean {
  // Close to Go's unicode.IsPrint: letters, marks, numbers, punctuation,
  // symbols and the ASCII space.
  if (r === 0x20) return true;
  return /[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(String.fromCodePoint(r));
}

/** appendPathKey appends one key to a path: .name for identifiers, else
 * ["quoted"]. */
export function appendPathKey(b: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) return b === "" ? key : b + "." + key;
  return b + "[" + quoteJSON(key, -1) + "]";
}

/** Go's base64.StdEncoding.Decode: padded standard alphabet; \r and \n are
 * skipped. */
function decodeStdBase64(s: string): Uint8Array | null {
  const t = s.replace(/[\r\n]/g, "");
  if (t.length % 4 !== 0) return null;
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(t)) return null;
  const pad = t.endsWith("==") ? 2 : t.endsWith("=") ? 1 : 0;
  if (pad > 0 && t.length === 0) return null;
  return new Uint8Array(Buffer.from(t, "base64"));
}
