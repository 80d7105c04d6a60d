// An order-keeping JSON tree that remembers each value's text: the schema
// compiler needs the members of "properties" in document order (they are
// listed in "unknown field (allowed: ...)") and the literal text of numbers
// and enum values, both of which JSON.parse loses.

export type RawKind = "object" | "array" | "string" | "number" | "boolean" | "null";

export interface RawValue {
  kind: RawKind;
  /** The value's text as written in the document. */
  text: string;
  members?: [string, RawValue][];
  items?: RawValue[];
  str?: string;
  bool?: boolean;
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
        this.ws();
        if (s[this.pos] === "}") {
          this.pos++;
          return { kind: "object", text: s.slice(start, this.pos), members };
        }
        for (;;) {
          this.ws();
          if (s[this.pos] !== '"') this.fail("expected a key");
          const k = this.string();
          this.ws();
          if (s[this.pos] !== ":") this.fail("expected ':'");
          this.pos++;
          this.ws();
          members.push([k, this.value(depth + 1)]);
          this.ws();
          if (s[this.pos] === ",") {
            this.pos++;
            continue;
          }
          if (s[this.pos] === "}") {
            this.pos++;
            return { kind: "object", text: s.slice(start, this.pos), members };
          }
          this.fail("expected ',' or '}'");
        }
      }
      case "[": {
        this.pos++;
        const items: RawValue[] = [];
        this.ws();
        if (s[this.pos] === "]") {
          this.pos++;
          return { kind: "array", text: s.slice(start, this.pos), items };
        }
        for (;;) {
          this.ws();
          items.push(this.value(depth + 1));
          this.ws();
          if (s[this.pos] === ",") {
            this.pos++;
            continue;
          }
          if (s[this.pos] === "]") {
            this.pos++;
            return { kind: "array", text: s.slice(start, this.pos), items };
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
