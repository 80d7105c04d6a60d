// An order-keeping JSON tree that remembers each value's text: the schema
// compiler needs the members of "properties" in document order (they are
// listed in "unknown field (allowed: ...)") and the literal text of numbers
// and enum values, both of which JSON.parse loses. Each value knows its
// parent, so that its JSON Pointer, which only errors and notes need, is
// built on demand.

export type RawKind = "object" | "array" | "string" | "number" | "boolean" | "null";

export interface RawValue {
  kind: RawKind;
  /** The value's text as written in the document. */
  text: string;
  members?: [string, RawValue][];
  items?: RawValue[];
  str?: string;
  bool?: boolean;
  /** The object or array that holds the value, and the key or index it
   * has there (none for the root). */
  parent?: RawValue;
  token?: string;
}

/** escapePointer escapes a key for a JSON Pointer. */
export function escapePointer(s: string): string {
  return s.replace(/~/g, "~0").replace(/\//g, "~1");
}

/** unescapePointer undoes escapePointer. */
export function unescapePointer(s: string): string {
  return s.replace(/~1/g, "/").replace(/~0/g, "~");
}

/** pointer returns v's JSON Pointer ("" for the root), cut after max
 * UTF-8 bytes (on a character boundary, with "…") when max >= 0. */
export function pointer(v: RawValue, max: number): string {
  const toks: string[] = [];
  for (let cur = v; cur.parent; cur = cur.parent) toks.push(cur.token!);
  let b = "";
  for (let i = toks.length - 1; i >= 0; i--) {
    b += "/" + escapePointer(toks[i]!);
    if (max >= 0 && Buffer.byteLength(b) > max) return cutBytes(b, max);
  }
  return b;
}

/** cutBytes returns s cut to at most max UTF-8 bytes on a character
 * boundary, with "…" when it was cut. */
export function cutBytes(s: string, max: number): string {
  if (s.length <= max / 3) return s; // a UTF-16 unit is at most 3 UTF-8 bytes
  const b = Buffer.from(s, "utf8");
  if (b.length <= max) return s;
  let m = max;
  while (m > 0 && (b[m]! & 0xc0) === 0x80) m--;
  return b.subarray(0, m).toString("utf8") + "…";
}

export class RawJSONError extends Error {}

/** parseRaw parses one JSON document. Duplicate keys are kept (the schema
 * compiler refuses them where it reads members). */
export function parseRaw(text: string): RawValue {
  const p = new RawParser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.pos !== text.length) throw new RawJSONError(`invalid character after top-level value at offset ${p.pos}`);
  return v;
}

class RawParser {
  pos = 0;
  constructor(private readonly s: string) {}

  ws(): void {
    const s = this.s;
    while (this.pos < s.length) {
      const c = s.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  fail(what: string): never {
    throw new RawJSONError(`${what} at offset ${this.pos}`);
  }

  value(depth: number): RawValue {
    if (depth > 10000) this.fail("nested too deep");
    const s = this.s;
    const start = this.pos;
    const c = s[this.pos];
    switch (c) {
      case "{": {
        this.pos++;
        const members: [string, RawValue][] = [];
        const v: RawValue = { kind: "object", text: "", members };
        this.ws();
        if (s[this.pos] === "}") {
          this.pos++;
          v.text = s.slice(start, this.pos);
          return v;
        }
        for (;;) {
          this.ws();
          if (s[this.pos] !== '"') this.fail("expected a key");
          const k = this.string();
          this.ws();
          if (s[this.pos] !== ":") this.fail("expected ':'");
          this.pos++;
          this.ws();
          const m = this.value(depth + 1);
          m.parent = v;
          m.token = k;
          members.push([k, m]);
          this.ws();
          if (s[this.pos] === ",") {
            this.pos++;
            continue;
          }
          if (s[this.pos] === "}") {
            this.pos++;
            v.text = s.slice(start, this.pos);
            return v;
          }
          this.fail("expected ',' or '}'");
        }
      }
      case "[": {
        this.pos++;
        const items: RawValue[] = [];
        const v: RawValue = { kind: "array", text: "", items };
        this.ws();
        if (s[this.pos] === "]") {
          this.pos++;
          v.text = s.slice(start, this.pos);
          return v;
        }
        for (;;) {
          this.ws();
          const el = this.value(depth + 1);
          el.parent = v;
          el.token = String(items.length);
          items.push(el);
          this.ws();
          if (s[this.pos] === ",") {
            this.pos++;
            continue;
          }
          if (s[this.pos] === "]") {
            this.pos++;
            v.text = s.slice(start, this.pos);
            return v;
          }
          this.fail("expected ',' or ']'");
        }
      }
      case '"': {
        const str = this.string();
        return { kind: "string", text: s.slice(start, this.pos), str };
      }
      case "t":
        if (s.startsWith("true", this.pos)) {
          this.pos += 4;
          return { kind: "boolean", text: "true", bool: true };
        }
        break;
      case "f":
        if (s.startsWith("false", this.pos)) {
          this.pos += 5;
          return { kind: "boolean", text: "false", bool: false };
        }
        break;
      case "n":
        if (s.startsWith("null", this.pos)) {
          this.pos += 4;
          return { kind: "null", text: "null" };
        }
        break;
      default: {
        const m = /^-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/.exec(s.slice(this.pos, this.pos + 4096));
        if (m && m[0] !== "" && m[0] !== "-") {
          this.pos += m[0].length;
          return { kind: "number", text: m[0] };
        }
      }
    }
    this.fail("invalid value");
  }

  string(): string {
    const s = this.s;
    const start = this.pos;
    this.pos++;
    for (;;) {
      if (this.pos >= s.length) this.fail("unterminated string");
      const c = s.charCodeAt(this.pos);
      if (c === 0x22) break;
      if (c < 0x20) this.fail("control character in string");
      if (c === 0x5c) {
        const e = s[this.pos + 1];
        if (e === "u") {
          if (!/^[0-9A-Fa-f]{4}$/.test(s.slice(this.pos + 2, this.pos + 6))) this.fail("bad \\u escape");
          this.pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail("bad escape");
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
    this.pos++;
    return JSON.parse(s.slice(start, this.pos)) as string;
  }
}

/** compactText removes the whitespace outside strings of a valid JSON text,
 * as Go's json.Compact does (escapes are kept as written). */
export function compactText(text: string): string {
  let out = "";
  let inStr = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inStr) {
      out += c;
      if (c === "\\") {
        out += text[++i] ?? "";
      } else if (c === '"') inStr = false;
      continue;
    }
    if (c === " " || c === "\n" || c === "\r" || c === "\t") continue;
    if (c === '"') inStr = true;
    out += c;
  }
  return out;
}
