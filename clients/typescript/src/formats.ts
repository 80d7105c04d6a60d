// The format checks of the Go runtime's Decoder (runtime/decoder_check.go),
// and the parsers of the Go standard library it relies on (time's RFC 3339
// and duration parsers, net/netip's IPv6 parser, net/url's URL parser),
// ported so that a value accepted or rejected by a Go toolkit is accepted or
// rejected here, in the same words.

/** checkFormat reports whether s is valid in the JSON Schema format, and
 * the words for what the format wants. Unknown formats are valid. */
export function checkFormat(s: string, format: string): [boolean, string] {
  switch (format) {
    case "date-time":
      return [isDateTime(s), "RFC 3339 date-time"];
    case "date":
      return [isFullDate(s), "date (YYYY-MM-DD)"];
    case "time":
      return [isFullTime(s), "time (HH:MM:SS with offset)"];
    case "email":
      return [isEmail(s), "email address"];
    case "hostname":
      return [isHostname(s), "hostname"];
    case "ipv4":
      return [isIPv4(s), "IPv4 address"];
    case "ipv6":
      return [isIPv6(s), "IPv6 address"];
    case "uri":
      return [isAbsoluteURI(s), "absolute URI"];
    case "uuid":
      return [isUUID(s), "UUID"];
  }
  return [true, ""];
}

function isDigitCode(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

function decimal(s: string): number | null {
  if (s === "") return null;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!isDigitCode(c)) return null;
    n = n * 10 + (c - 0x30);
  }
  return n;
}

function daysIn(month: number, year: number): number {
  const days = [0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month] ?? 0;
  if (month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0)) return 29;
  return days;
}

function isDateTime(s: string): boolean {
  return s.length > 11 && isFullDate(s.slice(0, 10)) && (s[10] === "T" || s[10] === "t") && isFullTime(s.slice(11));
}

function isFullDate(s: string): boolean {
  if (s.length !== 10 || s[4] !== "-" || s[7] !== "-") return false;
  const y = decimal(s.slice(0, 4));
  const m = decimal(s.slice(5, 7));
  const d = decimal(s.slice(8));
  if (y === null || m === null || d === null || m < 1 || m > 12 || d < 1) return false;
  return d <= daysIn(m, y);
}

function isFullTime(s: string): boolean {
  if (s.length < 9 || s[2] !== ":" || s[5] !== ":") return false;
  const h = decimal(s.slice(0, 2));
  const m = decimal(s.slice(3, 5));
  const sec = decimal(s.slice(6, 8));
  if (h === null || m === null || sec === null || h > 23 || m > 59 || sec > 60) return false;
  let i = 8;
  if (s[i] === ".") {
    i++;
    const start = i;
    while (i < s.length && isDigitCode(s.charCodeAt(i))) i++;
    if (i === start) return false;
  }
  if (i >= s.length) return false;
  let offset = 0;
  const c = s[i];
  if (c === "Z" || c === "z") {
    if (i + 1 !== s.length) return false;
  } else if (c === "+" || c === "-") {
    const rest = s.slice(i + 1);
    if (rest.length !== 5 || rest[2] !== ":") return false;
    const oh = decimal(rest.slice(0, 2));
    const om = decimal(rest.slice(3));
    if (oh === null || om === null || oh > 23 || om > 59) return false;
    offset = oh * 60 + om;
    if (c === "-") offset = -offset;
  } else return false;
  if (sec === 60) {
    const utc = ((((h * 60 + m - offset) % 1440) + 1440) % 1440);
    return utc === 23 * 60 + 59;
  }
  return true;
}

function isEmail(s: string): boolean {
  let local: string;
  let domain: string;
  if (s.startsWith('"')) {
    let i = 1;
    for (; i < s.length && s[i] !== '"'; i++) {
      if (s[i] === "\\") i++;
      if (i >= s.length || s.charCodeAt(i) < 0x20 || s.charCodeAt(i) > 0x7e) return false;
    }
    if (i >= s.length || i + 1 >= s.length || s[i + 1] !== "@") return false;
    local = s.slice(0, i + 1);
    domain = s.slice(i + 2);
  } else {
    const at = s.indexOf("@");
    if (at < 0) return false;
    local = s.slice(0, at);
    domain = s.slice(at + 1);
    if (!isDotAtom(local)) return false;
  }
  if (utf8Len(local) > 64 || domain.includes("@")) return false;
  if (domain.length > 2 && domain[0] === "[" && domain[domain.length - 1] === "]") {
    const lit = domain.slice(1, -1);
    if (lit.length > 5 && lit.slice(0, 5).toLowerCase() === "ipv6:") return isIPv6(lit.slice(5));
    return isIPv4(lit);
  }
  return !domain.endsWith(".") && isHostname(domain);
}

function utf8Len(s: string): number {
  return Buffer.byteLength(s, "utf8");
}

function isDotAtom(s: string): boolean {
  if (s === "" || s[0] === "." || s[s.length - 1] === "." || s.includes("..")) return false;
  for (const c of s) if (!/^[A-Za-z0-9.!#$%&'*+\-/=?^_`{|}~]$/.test(c)) return false;
  return true;
}

function isHostname(s: string): boolean {
  if (s.endsWith(".")) s = s.slice(0, -1);
  if (s === "" || utf8Len(s) > 253) return false;
  for (const label of s.split(".")) {
    if (label === "" || utf8Len(label) > 63 || label[0] === "-" || label[label.length - 1] === "-") return false;
    if (!/^[A-Za-z0-9-]+$/.test(label)) return false;
  }
  return true;
}

function isIPv4(s: string): boolean {
  const parts = s.split(".");
  if (parts.length !== 4) return false;
  for (const part of parts) {
    const n = decimal(part);
    if (n === null || part.length > 3 || n > 255 || (part.length > 1 && part[0] === "0")) return false;
  }
  return true;
}

function isIPv6(s: string): boolean {
  const a = parseIPv6(s);
  return a !== null && a.zone === "";
}

/** netip.ParseAddr for addresses with a colon: the IPv6 parser, zone
 * included; null when Go would fail. */
function parseIPv6(s: string): { zone: string } | null {
  let zone = "";
  const pct = s.indexOf("%");
  if (pct >= 0) {
    zone = s.slice(pct + 1);
    s = s.slice(0, pct);
    if (zone === "") return null;
  }
  let groups = 0;
  let ellipsis = -1;
  let i = 0;
  if (s.length >= 2 && s[0] === ":" && s[1] === ":") {
    ellipsis = 0;
    i = 2;
    if (i === s.length) return { zone };
  }
  while (groups < 8) {
    let off = 0;
    let acc = 0;
    for (; i + off < s.length; off++) {
      const c = s.charCodeAt(i + off);
      let v: number;
      if (c >= 0x30 && c <= 0x39) v = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) v = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) v = c - 0x41 + 10;
      else break;
      if (off > 3) return null;
      acc = acc * 16 + v;
    }
    if (off === 0) return null;
    if (i + off < s.length && s[i + off] === ".") {
      if (ellipsis < 0 && groups !== 6) return null;
      if (groups + 1 > 7) return null;
      if (!isIPv4Netip(s.slice(i))) return null;
      groups += 2;
      i = s.length;
      break;
    }
    groups++;
    i += off;
    if (i === s.length) break;
    if (s[i] !== ":") return null;
    if (i + 1 === s.length) return null;
    i++;
    if (s[i] === ":") {
      if (ellipsis >= 0) return null;
      ellipsis = groups;
      i++;
      if (i === s.length) break;
    }
  }
  if (i !== s.length) return null;
  if (groups < 8) {
    if (ellipsis < 0) return null;
  } else if (ellipsis >= 0) return null;
  return { zone };
}

/** netip's IPv4 parser: four decimal fields without leading zeros. */
function isIPv4Netip(s: string): boolean {
  return isIPv4(s);
}

function isUUID(s: string): boolean {
  return /^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$/.test(s);
}

// ---- net/url.Parse, for "uri" ----

function isAbsoluteURI(s: string): boolean {
  const u = parseGoURL(s);
  return u !== null && u.scheme !== "";
}

const hostSafe = /^[A-Za-z0-9\-_.~!$&'()*+,;=:[\]<>"]$/;

function unescapeOK(s: string, host: boolean): boolean {
  for (let i = 0; i < s.length; ) {
    const c = s[i]!;
    if (c === "%") {
      if (i + 2 >= s.length + 0 && !(i + 2 < s.length)) return false;
      const h1 = s[i + 1];
      const h2 = s[i + 2];
      if (h1 === undefined || h2 === undefined || !/[0-9A-Fa-f]/.test(h1) || !/[0-9A-Fa-f]/.test(h2)) return false;
      if (host && parseInt(h1, 16) < 8 && s.slice(i, i + 3) !== "%25") return false;
      i += 3;
      continue;
    }
    if (host && s.charCodeAt(i) < 0x80 && !hostSafe.test(c)) return false;
    i++;
  }
  return true;
}

function validOptionalPort(port: string): boolean {
  if (port === "") return true;
  if (port[0] !== ":") return false;
  return /^[0-9]*$/.test(port.slice(1));
}

function parseHost(scheme: string, host: string): boolean {
  const open = host.lastIndexOf("[");
  if (open > 0) return false;
  if (open === 0) {
    const close = host.lastIndexOf("]");
    if (close < 0) return false;
    const colonPort = host.slice(close + 1);
    if (!validOptionalPort(colonPort)) return false;
    const hostname = host.slice(1, close);
    const zi = hostname.indexOf("%25");
    let unescaped: string;
    if (zi >= 0) {
      if (!unescapeOK(hostname.slice(0, zi), true)) return false;
      unescaped = decodeURIComponentSafe(hostname.slice(0, zi)) + "%" + decodeURIComponentSafe(hostname.slice(zi + 3));
    } else {
      if (!unescapeOK(hostname, true)) return false;
      unescaped = decodeURIComponentSafe(hostname);
    }
    if (!unescaped.includes(":")) return false; // an IPv4 literal, or not an address
    return parseIPv6(unescaped) !== null;
  }
  let i = host.indexOf(":");
  if (i !== -1) {
    const last = host.lastIndexOf(":");
    if (last !== i && scheme !== "http" && scheme !== "https") i = last;
    if (!validOptionalPort(host.slice(i))) return false;
  }
  return unescapeOK(host, true);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

function validUserinfo(s: string): boolean {
  return /^[A-Za-z0-9\-._:~!$&'()*+,;=%@]*$/.test(s);
}

/** A port of Go's url.Parse, enough to say whether it fails and what the
 * scheme is. */
export function parseGoURL(raw: string): { scheme: string } | null {
  const hash = raw.indexOf("#");
  const u = hash >= 0 ? raw.slice(0, hash) : raw;
  const frag = hash >= 0 ? raw.slice(hash + 1) : "";
  for (let i = 0; i < u.length; i++) {
    const c = u.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return null;
  }
  if (u === "*") return frag === "" || unescapeOK(frag, false) ? { scheme: "" } : null;
  let scheme = "";
  let rest = u;
  for (let i = 0; i < u.length; i++) {
    const c = u[i]!;
    if (/[A-Za-z]/.test(c)) continue;
    if (/[0-9+\-.]/.test(c)) {
      if (i === 0) break;
      continue;
    }
    if (c === ":") {
      if (i === 0) return null;
      scheme = u.slice(0, i).toLowerCase();
      rest = u.slice(i + 1);
    }
    break;
  }
  if (rest.endsWith("?") && rest.split("?").length === 2) rest = rest.slice(0, -1);
  else {
    const q = rest.indexOf("?");
    if (q >= 0) rest = rest.slice(0, q);
  }
  if (!rest.startsWith("/")) {
    if (scheme !== "") return frag === "" || unescapeOK(frag, false) ? { scheme } : null;
    const seg = rest.split("/")[0]!;
    if (seg.includes(":")) return null;
  }
  if ((scheme !== "" || !rest.startsWith("///")) && rest.startsWith("//")) {
    let authority = rest.slice(2);
    rest = "";
    const slash = authority.indexOf("/");
    if (slash >= 0) {
      rest = authority.slice(slash);
      authority = authority.slice(0, slash);
    }
    const at = authority.lastIndexOf("@");
    if (!parseHost(scheme, at < 0 ? authority : authority.slice(at + 1))) return null;
    if (at >= 0) {
      const userinfo = authority.slice(0, at);
      if (!validUserinfo(userinfo) || !unescapeOK(userinfo, false)) return null;
    }
  }
  if (!unescapeOK(rest, false)) return null;
  if (frag !== "" && !unescapeOK(frag, false)) return null;
  return { scheme };
}

// ---- time ----

/** Go's time.Time.UnmarshalText (RFC 3339, strict fast path): whether s
 * parses. */
export function parseRFC3339(s: string): boolean {
  if (s.length < 19) return false;
  let ok = true;
  const num = (t: string, min: number, max: number): number => {
    let x = 0;
    for (let i = 0; i < t.length; i++) {
      const c = t.charCodeAt(i);
      if (!isDigitCode(c)) {
        ok = false;
        return min;
      }
      x = x * 10 + c - 0x30;
    }
    if (x < min || x > max) {
      ok = false;
      return min;
    }
    return x;
  };
  const year = num(s.slice(0, 4), 0, 9999);
  const month = num(s.slice(5, 7), 1, 12);
  num(s.slice(8, 10), 1, daysIn(month, year));
  num(s.slice(11, 13), 0, 23);
  num(s.slice(14, 16), 0, 59);
  num(s.slice(17, 19), 0, 59);
  if (!ok || !(s[4] === "-" && s[7] === "-" && s[10] === "T" && s[13] === ":" && s[16] === ":")) return false;
  let rest = s.slice(19);
  if (rest.length >= 2 && rest[0] === "." && isDigitCode(rest.charCodeAt(1))) {
    let n = 2;
    while (n < rest.length && isDigitCode(rest.charCodeAt(n))) n++;
    rest = rest.slice(n);
  }
  if (rest.length === 1 && rest[0] === "Z") return true;
  if (rest.length !== 6) return false;
  num(rest.slice(1, 3), 0, 23);
  num(rest.slice(4, 6), 0, 59);
  return ok && (rest[0] === "-" || rest[0] === "+") && rest[3] === ":";
}

const durationUnits: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  "µs": 1000n,
  "μs": 1000n,
  ms: 1000000n,
  s: 1000000000n,
  m: 60000000000n,
  h: 3600000000000n,
};

/** Go's time.ParseDuration: nanoseconds, or null when Go would fail. */
export function parseGoDuration(s: string): bigint | null {
  let neg = false;
  if (s !== "" && (s[0] === "-" || s[0] === "+")) {
    neg = s[0] === "-";
    s = s.slice(1);
  }
  if (s === "0") return 0n;
  if (s === "") return null;
  const limit = 1n << 63n;
  let d = 0n;
  while (s !== "") {
    const c0 = s[0]!;
    if (!(c0 === "." || (c0 >= "0" && c0 <= "9"))) return null;
    let i = 0;
    let v = 0n;
    while (i < s.length && s[i]! >= "0" && s[i]! <= "9") {
      if (v > limit / 10n) return null;
      v = v * 10n + BigInt(s.charCodeAt(i) - 0x30);
      if (v > limit) return null;
      i++;
    }
    const pre = i > 0;
    s = s.slice(i);
    let post = false;
    let f = 0n;
    let scale = 1;
    if (s !== "" && s[0] === ".") {
      s = s.slice(1);
      let k = 0;
      let overflow = false;
      while (k < s.length && s[k]! >= "0" && s[k]! <= "9") {
        if (!overflow) {
          if (f > ((1n << 63n) - 1n) / 10n) overflow = true;
          else {
            f = f * 10n + BigInt(s.charCodeAt(k) - 0x30);
            scale *= 10;
          }
        }
        k++;
      }
      post = k > 0;
      s = s.slice(k);
    }
    if (!pre && !post) return null;
    let u = 0;
    while (u < s.length && s[u] !== "." && !(s[u]! >= "0" && s[u]! <= "9")) u++;
    if (u === 0) return null;
    const unit = durationUnits[s.slice(0, u)];
    if (unit === undefined) return null;
    s = s.slice(u);
    if (v > limit / unit) return null;
    v *= unit;
    if (f > 0n) {
      v += BigInt(Math.floor(Number(f) * (Number(unit) / scale)));
      if (v > limit) return null;
    }
    d += v;
    if (d > limit) return null;
  }
  if (neg) return -d;
  if (d > limit - 1n) return null;
  return d;
}
