// JSON text exactly as Go's encoding/json writes it, for the registration
// hashes: a toolkit's code_hash must be the one a Go toolkit with the same
// contract sends, so that a server keeps one notion of "unchanged".

import { parseRaw, type RawValue } from "./rawjson.js";
import { compareUTF8 } from "./schema.js";

const hex = "0123456789abcdef";

/** goQuote quotes s as json.Marshal does: HTML characters, U+2028 and
 * U+2029 escaped; a lone surrogate becomes U+FFFD. */
export function goQuote(s: string): string {
  let b = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x3c && c !== 0x3e && c !== 0x26) {
        b += s[i];
        continue;
      }
      switch (c) {
        case 0x22:
        case 0x5c:
          b += "\\" + s[i];
          break;
        case 8:
          b += "\\b";
          break;
        case 12:
          b += "\\f";
          break;
        case 10:
          b += "\\n";
          break;
        case 13:
          b += "\\r";
          break;
        case 9:
          b += "\\t";
          break;
        default:
          b += "\\u00" + hex[c >> 4] + hex[c & 0xf];
      }
      continue;
    }
    if (c === 0x2028 || c === 0x2029) {
      b += "\\u202" + hex[c & 0xf];
      continue;
    }
    if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
      const c2 = s.charCodeAt(i + 1);
      if (c2 >= 0xdc00 && c2 < 0xe000) {
        b += s[i]! + s[i + 1]!;
        i++;
        continue;
      }
    }
    if (c >= 0xd800 && c < 0xe000) {
      b += "\ufffd";
      continue;
    }
    b += s[i];
  }
  return b + '"';
}

/** goCanonical writes a JSON document as Go does after decoding it into
 * interface values with UseNumber: object keys sorted by bytes (the last of
 * repeated keys wins), numbers as written, no whitespace. */
export function goCanonical(text: string): string {
  return writeRaw(parseRaw(text));
}

function writeRaw(v: RawValue): string {
  switch (v.kind) {
    case "object": {
      const m = new Map<string, RawValue>();
      for (const [k, x] of v.members!) m.set(k, x);
      const keys = [...m.keys()].sort(compareUTF8);
      return "{" + keys.map((k) => goQuote(k) + ":" + writeRaw(m.get(k)!)).join(",") + "}";
    }
    case "array":
      return "[" + v.items!.map(writeRaw).join(",") + "]";
    case "string":
      return goQuote(v.str!);
    default:
      return v.text;
  }
}
