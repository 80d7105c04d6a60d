// Registration (ATP v1 over HTTP, before every connection): verify_hash with
// the toolkit hash and, when the server is not up to date, verify_tool_hash
// for each tool and register_tool for those that are not. The hashes are
// the Go runtime's, so the server keeps one notion of "unchanged".

import { type Endpoints, type ResolvedOptions, PermanentError, refusal } from "./serve.js";
import { type Tool, type Toolkit, toolkitHash } from "./toolkit.js";

const registerTimeoutMs = 15_000;
const maxReplyBytes = 64 << 10;

class NoEndpoint extends Error {}

export class Registrar {
  /** Tool name to the code_hash a server without verify endpoints
   * accepted during this serve. */
  private readonly acked = new Map<string, string>();

  constructor(
    private readonly tk: Toolkit,
    private readonly o: ResolvedOptions,
    private readonly ep: Endpoints,
  ) {}

  async register(): Promise<void> {
    const tools = this.tk.list();
    const kitHash = toolkitHash(tools);
    let upToDate = false;
    try {
      upToDate = await this.verify("verify_hash", "/api/v1/toolkit/verify_hash", { api_key: this.o.apiKey, app_name: this.tk.name, toolkit_hash: kitHash });
    } catch (e) {
      if (!(e instanceof NoEndpoint)) throw e;
    }
    if (upToDate) {
      this.o.logger.debug("atp: registration up to date", { toolkit_hash: kitHash });
      return;
    }
    let sent = 0;
    for (const t of tools) {
      let fresh: boolean;
      try {
        fresh = await this.verify(`verify_tool_hash ${t.name}`, "/api/v1/toolkit/verify_tool_hash", { api_key: this.o.apiKey, tool_name: t.name, tool_hash: t.hash });
      } catch (e) {
        if (!(e instanceof NoEndpoint)) throw e;
        fresh = this.acked.get(t.name) === t.hash;
      }
      if (fresh) continue;
      await this.registerTool(t, kitHash);
      this.acked.set(t.name, t.hash);
      sent++;
    }
    this.o.logger.info("atp: registered tools", { sent, unchanged: tools.length - sent, toolkit_hash: kitHash });
  }

  private async verify(op: string, path: string, body: object): Promise<boolean> {
    const [status, reply] = await this.post(op, path, body);
    if (status === 404 || status === 405) {
      this.o.logger.debug(`atp: server has no ${path}; registering without it`, { status });
      throw new NoEndpoint();
    }
    if (status < 200 || status > 299) throw refusal(op, status, reply);
    try {
      return (JSON.parse(reply) as { up_to_date?: unknown }).up_to_date === true;
    } catch (e) {
      this.o.logger.warn(`atp: unreadable ${op} reply; assuming not up to date`, { err: e as Error });
      return false;
    }
  }

  private async registerTool(t: Tool, kitHash: string): Promise<void> {
    // Built by hand so that the schemas go out as the text that was hashed.
    const metadata =
      `{"params":${JSON.stringify(t.params)},"required_params":${JSON.stringify(t.requiredParams)},"description":${JSON.stringify(t.description)}` +
      `,"auth_provider":${JSON.stringify(t.authProvider || null)},"auth_type":${JSON.stringify(t.authType || null)},"auth_with":${JSON.stringify(t.authWith || null)}` +
      `,"sample_response":"","source_code":"","input_schema":${t.inputSchema}` +
      (t.outputSchema !== undefined ? `,"output_schema":${t.outputSchema}` : "") +
      (t.needsAuthToken ? ',"needs_auth_token":true' : "") +
      "}";
    const body =
      `{"function_id":${JSON.stringify(t.name)},"api_key":${JSON.stringify(this.o.apiKey)},"app_name":${JSON.stringify(this.tk.name)}` +
      `,"programming_language":"TypeScript","code_hash":"${t.hash}","toolkit_hash":"${kitHash}","metadata":${metadata}}`;
    const op = `register_tool ${t.name}`;
    const [status, reply] = await this.post(op, "/api/v1/register_tool", body);
    if (status < 200 || status > 299) throw refusal(op, status, reply);
  }

  /** post sends one registration request (the key in the body, as the
   * Python SDK sends it; no Authorization header). */
  private async post(op: string, path: string, body: object | string): Promise<[number, string]> {
    const signal = AbortSignal.any([this.o.signal, AbortSignal.timeout(registerTimeoutMs)]);
    let res: Response;
    try {
      res = await fetch(this.ep.api(path), {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: typeof body === "string" ? body : JSON.stringify(body),
        signal,
      });
    } catch (e) {
      throw new Error(`${op}: ${describeFetchError(e)}`, { cause: e });
    }
    const text = await readCapped(res, maxReplyBytes).catch((e: unknown) => {
      throw new Error(`${op}: read reply: ${describeFetchError(e)}`);
    });
    return [res.status, text];
  }
}

export async function readCapped(res: Response, max: number): Promise<string> {
  return (await readCappedBytes(res, max)).toString("utf8");
}

/** readCappedBytes reads a reply body up to max+1 bytes (one more than
 * allowed, so that the caller can tell it was larger). */
export async function readCappedBytes(res: Response, max: number): Promise<Buffer> {
  if (!res.body) return Buffer.alloc(0);
  const chunks: Uint8Array[] = [];
  let n = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    n += chunk.length;
    if (n > max) break;
  }
  return Buffer.concat(chunks).subarray(0, max + 1);
}

/** describeFetchError words a fetch failure with its cause (fetch's own
 * message is only "fetch failed"). */
export function describeFetchError(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  if (e.name === "TimeoutError") return "no answer in time";
  if (e.name === "AbortError") return "aborted";
  const c = e.cause;
  if (c instanceof Error) return `${e.message}: ${(c as NodeJS.ErrnoException).code ?? ""} ${c.message}`.replace(/\s+/g, " ");
  return e.message;
}

export { PermanentError };
