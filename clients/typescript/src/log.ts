// Logging: a small structured-logger interface (pino, winston and console
// wrappers fit it in one line), a default that writes one line per record
// to stderr, and a wrapper that takes an API key out of every message and
// attribute before it reaches the logger.

import { inspect } from "node:util";

/** Attributes of a log record. */
export type LogAttrs = Record<string, unknown>;

/** Logger receives the library's logs. */
export interface Logger {
  debug(msg: string, attrs?: LogAttrs): void;
  info(msg: string, attrs?: LogAttrs): void;
  warn(msg: string, attrs?: LogAttrs): void;
  error(msg: string, attrs?: LogAttrs): void;
}

type Level = "debug" | "info" | "warn" | "error";
const order: Record<Level, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** consoleLogger writes "time level msg key=value ..." lines to stderr, from
 * level upwards (default "info"). */
export function consoleLogger(level: Level = "info"): Logger {
  const out = (l: Level) => (msg: string, attrs?: LogAttrs) => {
    if (order[l] < order[level]) return;
    let line = `${new Date().toISOString()} ${l.toUpperCase()} ${msg}`;
    for (const [k, v] of Object.entries(attrs ?? {})) line += ` ${k}=${formatValue(v)}`;
    process.stderr.write(line + "\n");
  };
  return { debug: out("debug"), info: out("info"), warn: out("warn"), error: out("error") };
}

/** silentLogger drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

function formatValue(v: unknown): string {
  if (typeof v === "string") return /^[^\s"=]*$/.test(v) && v !== "" ? v : JSON.stringify(v);
  if (v instanceof Error) return JSON.stringify(v.message);
  if (typeof v === "number" || typeof v === "boolean" || v === null || v === undefined) return String(v);
  return inspect(v, { breakLength: Infinity, depth: 4 });
}

/** Redactor hides one secret in every spelling it can take in text: raw,
 * URL-escaped (path and query forms) and JSON-escaped. */
export class Redactor {
  private readonly forms: string[];

  constructor(secret: string) {
    const forms = new Set<string>();
    if (secret !== "") {
      forms.add(secret);
      forms.add(encodeURIComponent(secret));
      forms.add(encodeURIComponent(secret).replace(/%20/g, "+"));
      forms.add(JSON.stringify(secret).slice(1, -1));
    }
    this.forms = [...forms].filter((f) => f !== "").sort((a, b) => b.length - a.length);
  }

  leaks(s: string): boolean {
    return this.forms.some((f) => s.includes(f));
  }

  str(s: string): string {
    for (const f of this.forms) if (s.includes(f)) s = s.split(f).join("[REDACTED]");
    return s;
  }

  /** err returns an Error whose message (and cause's) never holds the
   * secret; the original is returned when it does not. */
  err(e: unknown): Error {
    const base = e instanceof Error ? e : new Error(String(e));
    if (!this.leaksDeep(base)) return base;
    const out = new Error(this.str(base.message), base.cause !== undefined ? { cause: this.err(base.cause) } : undefined);
    out.name = base.name;
    return out;
  }

  private leaksDeep(e: Error): boolean {
    for (let cur: unknown = e, depth = 0; cur instanceof Error && depth < 16; cur = cur.cause, depth++) {
      if (this.leaks(cur.message) || (cur.stack !== undefined && this.leaks(cur.stack))) return true;
    }
    return false;
  }

  /** logger wraps inner so that no record carries the secret. */
  logger(inner: Logger, base: LogAttrs = {}): Logger {
    const clean = (v: unknown): unknown => {
      if (typeof v === "string") return this.str(v);
      if (v instanceof Error) return this.str(v.message);
      if (v !== null && typeof v === "object") {
        const s = inspect(v, { breakLength: Infinity, depth: 4 });
        return this.leaks(s) ? this.str(s) : v;
      }
      return v;
    };
    const wrap = (f: (msg: string, attrs?: LogAttrs) => void) => (msg: string, attrs?: LogAttrs) => {
      const out: LogAttrs = {};
      for (const [k, v] of Object.entries({ ...base, ...attrs })) out[k] = clean(v);
      f.call(inner, this.str(msg), out);
    };
    return { debug: wrap(inner.debug), info: wrap(inner.info), warn: wrap(inner.warn), error: wrap(inner.error) };
  }
}

/** formatGoDuration formats milliseconds as Go's time.Duration.String does
 * ("20ms", "1.5s", "1m0s"), so that messages match the Go runtime's. */
export function formatGoDuration(ms: number): string {
  if (ms === 0) return "0s";
  const neg = ms < 0;
  let ns = BigInt(Math.round(Math.abs(ms) * 1e6));
  let out: string;
  if (ns < 1_000_000_000n) {
    // Below a second: the largest unit that keeps an integer part.
    const [unit, div] = ns < 1000n ? ["ns", 1n] : ns < 1_000_000n ? ["µs", 1000n] : ["ms", 1_000_000n];
    out = fraction(ns, div as bigint) + unit;
  } else {
    const h = ns / 3_600_000_000_000n;
    ns -= h * 3_600_000_000_000n;
    const m = ns / 60_000_000_000n;
    ns -= m * 60_000_000_000n;
    out = fraction(ns, 1_000_000_000n) + "s";
    if (h > 0n || m > 0n) out = m.toString() + "m" + out;
    if (h > 0n) out = h.toString() + "h" + out;
  }
  return neg ? "-" + out : out;
}

function fraction(v: bigint, div: bigint): string {
  const int = v / div;
  let frac = (v % div).toString().padStart(div.toString().length - 1, "0").replace(/0+$/, "");
  if (div === 1n) frac = "";
  return frac === "" ? int.toString() : int.toString() + "." + frac;
}
