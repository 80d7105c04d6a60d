// The HTTP inbox transport: GET .../inbox?wait=N (the long-poll extension:
// a server that holds polls says so with ATP-Inbox-Wait), answers POSTed to
// .../inbox/respond. Calls outlive failed polls: their answers do not depend
// on the poll that brought them. On shutdown a held poll is not cut (a
// request the server writes into it at that moment would be lost): the
// toolkit asks the server to release it (POST .../inbox/release) and reads
// it to the end, running the request it brings.

import { setMaxListeners } from "node:events";
import { Decoder, type Problem } from "./decoder.js";
import { describeFetchError, readCapped, readCappedBytes, Registrar } from "./register.js";
import {
  type Answer, backoffDelay, Endpoints, errDrainTimeout, errShuttingDown, idString, PermanentError, type Request, requestIdInPrefix,
  type ResolvedOptions, refusal, type Runner, type State, statusLine, quoteBody, type Transport, validId,
} from "./serve.js";
import type { Toolkit } from "./toolkit.js";

const minHeldPollMs = 10;
const respondAttempts = 3;
const registerTimeoutMs = 15_000;
/** Bounds the release request, and the wait for the last poll to come
 * back once the server has released it. */
const releaseWaitMs = 2000;

export class InboxTransport implements Transport {
  setState: (s: State) => void = () => {};
  private readonly ep: Endpoints;
  private readonly reg: Registrar;
  private running = 0;
  private readonly dec = new Decoder();
  private onIdle: (() => void) | undefined;
  /** Ends the calls still running at the drain deadline. */
  private readonly cancelCalls = new AbortController();
  /** Ends answer posting after the drain. */
  private readonly stopSend = new AbortController();

  constructor(
    tk: Toolkit,
    private readonly o: ResolvedOptions,
    private readonly runner: Runner,
  ) {
    this.ep = new Endpoints(o.url, o.apiKey);
    this.reg = new Registrar(tk, o, this.ep);
    // Every running call listens on it.
    setMaxListeners(0, this.cancelCalls.signal);
  }

  async session(): Promise<{ connectedAt: number; reason: Error | null }> {
    await this.reg.register();
    let connectedAt = 0;
    const { o, runner } = this;
    for (;;) {
      if (o.signal.aborted) return { connectedAt, reason: null };
      // Take a slot before polling: while every slot is busy the server
      // keeps its requests.
      await runner.slots.take();
      let polled: { req: Request | null; held: boolean };
      try {
        polled = await this.poll();
      } catch (e) {
        runner.slots.release();
        if (o.signal.aborted) return { connectedAt, reason: null };
        return { connectedAt, reason: e as Error };
      }
      if (connectedAt === 0) {
        connectedAt = o.clock.now();
        o.logger.info("atp: connected", { url: this.ep.inbox(0) });
        this.setState({ kind: "connected" });
      }
      const req = polled.req;
      if (!req) {
        runner.slots.release();
        if (!polled.held) {
          try {
            await o.clock.sleep(o.pollIntervalMs, o.signal);
          } catch {
            return { connectedAt, reason: null };
          }
        }
        continue;
      }
      this.running++;
      void runner.run(req, "http-inbox", this.cancelCalls.signal).then(async (a) => {
        runner.slots.release();
        try {
          await this.answer(req, a);
        } finally {
          this.running--;
          this.onIdle?.();
        }
      });
    }
  }

  /** poll asks the inbox for one request; null when there is none, and
   * whether the server held the poll open (so the next can go at once).
   *
   * The poll does not end with o.signal: cut mid-reply, it would lose a
   * request the server had just written into it, which would then wait
   * for its timeout. On abort the poller asks the server to release its
   * polls and reads this one to its end, request included. It cuts the
   * poll only when the release fails (an old server), or when the poll is
   * not back within releaseWaitMs of a release. */
  private async poll(): Promise<{ req: Request | null; held: boolean }> {
    const o = this.o;
    const cut = new AbortController();
    const signal = AbortSignal.any([cut.signal, AbortSignal.timeout(o.inboxWaitSeconds * 1000 + registerTimeoutMs)]);
    let done = false;
    let late: NodeJS.Timeout | undefined;
    const onAbort = () => {
      void this.release().then((released) => {
        if (done) return;
        if (!released) {
          cut.abort(new Error("the server could not release the poll"));
          return;
        }
        late = setTimeout(() => cut.abort(new Error("the released poll did not come back")), releaseWaitMs);
      });
    };
    if (o.signal.aborted) onAbort();
    else o.signal.addEventListener("abort", onAbort, { once: true });
    try {
      return await this.pollOnce(signal);
    } finally {
      done = true;
      clearTimeout(late);
      o.signal.removeEventListener("abort", onAbort);
    }
  }

  private async pollOnce(signal: AbortSignal): Promise<{ req: Request | null; held: boolean }> {
    const o = this.o;
    const start = Date.now();
    let res: Response;
    try {
      res = await fetch(this.ep.inbox(o.inboxWaitSeconds), { headers: { Accept: "application/json" }, signal });
    } catch (e) {
      throw new Error(`inbox poll: ${describeFetchError(e)}`, { cause: e });
    }
    let raw: Buffer;
    try {
      raw = await readCappedBytes(res, o.readLimit);
    } catch (e) {
      throw new Error(`inbox poll: read reply: ${describeFetchError(e)}`);
    }
    const body = raw.toString("utf8"); // for messages; the request is read from raw
    const received = Date.now();
    if (res.status !== 200) {
      if (res.status === 404) {
        throw new PermanentError(`inbox poll: the server answered ${statusLine(404)} (${quoteBody(body)}): it has no inbox for this key; try transport "ws"`);
      }
      throw refusal("inbox poll", res.status, body);
    }
    const applied = Number.parseInt(res.headers.get("ATP-Inbox-Wait") ?? "", 10);
    const held = applied > 0 && received - start >= minHeldPollMs;
    if (raw.length > o.readLimit) {
      const id = requestIdInPrefix(raw.subarray(0, o.readLimit).toString("utf8"), true);
      o.logger.warn("atp: refused an inbox request larger than readLimit", { limit: o.readLimit, request_id_found: validId(id) });
      if (validId(id)) {
        void this.answer({ idText: id, tool: "", params: "", authToken: "", received }, this.runner.errorAnswer(new Error(`request refused: it is larger than the toolkit's read limit of ${o.readLimit} bytes`)));
      }
      return { req: null, held };
    }
    if (["", "{}", "null", "[]", '""'].includes(body.trim())) return { req: null, held };
    const f = parseFlat(this.dec, raw);
    if (f.problems.length > 0) {
      const problems = f.problems.map((p) => (p.path === "" ? "params: " + p.message : p.path + ": " + p.message)).join("; ");
      if (validId(f.idText)) {
        o.logger.warn("atp: malformed inbox request", { request_id: idString(f.idText), err: problems });
        void this.answer({ idText: f.idText, tool: "", params: "", authToken: "", received }, this.runner.errorAnswer(new Error(`malformed inbox request: ${problems}`)));
        return { req: null, held };
      }
      o.logger.warn("atp: ignoring malformed inbox reply", { bytes: body.length, err: problems });
      return { req: null, held };
    }
    if (!validId(f.idText)) {
      o.logger.warn("atp: ignoring inbox reply without request_id", { bytes: body.length });
      return { req: null, held };
    }
    return { req: { idText: f.idText, tool: f.tool, params: f.params ?? "", authToken: f.authToken, received }, held };
  }

  /** release asks the server to end the key's held polls at once; it
   * reports whether the server did (an old server answers 404). */
  private async release(): Promise<boolean> {
    try {
      const res = await fetch(this.ep.inboxRelease(), { method: "POST", headers: { Accept: "application/json" }, signal: AbortSignal.timeout(releaseWaitMs) });
      await readCapped(res, 64 << 10);
      if (res.status >= 200 && res.status <= 299) {
        this.o.logger.debug("atp: the server released the inbox polls");
        return true;
      }
      this.o.logger.debug("atp: the server could not release the inbox polls; cutting the poll", { status: res.status });
    } catch (e) {
      this.o.logger.debug("atp: inbox release failed; cutting the poll", { err: describeFetchError(e) });
    }
    return false;
  }

  /** answer posts a result, retrying failures that may pass. */
  private async answer(req: Request, a: Answer): Promise<void> {
    const body = `{"request_id":${req.idText},"response":${a.result}${a.isError ? ',"is_error":true' : ""},"latency_ms":${Date.now() - req.received}}`;
    let err: Error | null = null;
    for (let attempt = 1; attempt <= respondAttempts; attempt++) {
      if (attempt > 1) {
        try {
          await this.o.clock.sleep(backoffDelay(this.o.backoff, attempt - 1, this.o.random), this.stopSend.signal);
        } catch {
          break;
        }
      }
      err = await this.post(body);
      if (err === null || err instanceof PermanentError) break;
    }
    if (err) this.o.logger.warn("atp: could not post the answer to the inbox", { request_id: idString(req.idText), tool: req.tool, err: this.runner.red.str(err.message) });
  }

  private async post(body: string): Promise<Error | null> {
    const signal = AbortSignal.any([this.stopSend.signal, AbortSignal.timeout(registerTimeoutMs)]);
    try {
      const res = await fetch(this.ep.inboxRespond(), { method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" }, body, signal });
      const reply = await readCapped(res, 64 << 10);
      if (res.status < 200 || res.status > 299) return refusal("inbox respond", res.status, reply);
      return null;
    } catch (e) {
      return new Error(`inbox respond: ${describeFetchError(e)}`);
    }
  }

  /** stop drains: running calls get drainTimeoutMs to finish and post. */
  async stop(): Promise<void> {
    const o = this.o;
    const idle = () =>
      new Promise<void>((resolve) => {
        if (this.running === 0) return resolve();
        this.onIdle = () => {
          if (this.running === 0) resolve();
        };
      });
    let t: NodeJS.Timeout | undefined;
    const deadline = new Promise<"timeout">((r) => (t = setTimeout(() => r("timeout"), o.drainTimeoutMs)));
    const first = await Promise.race([idle().then(() => "idle" as const), deadline]);
    clearTimeout(t);
    if (first === "timeout") {
      o.logger.warn("atp: drain deadline passed; cancelling the calls still running");
      this.cancelCalls.abort(new Error(errDrainTimeout));
      let g: NodeJS.Timeout | undefined;
      await Promise.race([idle(), new Promise((r) => (g = setTimeout(r, Math.min(1000, o.pongTimeoutMs))))]);
      clearTimeout(g);
    }
    this.cancelCalls.abort(new Error(errShuttingDown));
    this.stopSend.abort(new Error(errShuttingDown));
  }
}

/** parseFlat reads the flat request object of an inbox reply with the
 * Decoder, keeping the params' bytes as sent: their own decoder reports
 * invalid UTF-8 in them, so the envelope is read leniently. */
function parseFlat(d: Decoder, data: Uint8Array): { idText: string | null; tool: string; params: Uint8Array | null; authToken: string; problems: Problem[] } {
  const f = { idText: null as string | null, tool: "", params: null as Uint8Array | null, authToken: "", problems: [] as Problem[] };
  d.reset(data);
  d.setLenientUTF8(true);
  if (d.object()) {
    while (d.next()) {
      switch (d.key()) {
        case "request_id":
          f.idText = d.raw();
          break;
        case "tool_name":
          f.tool = d.string();
          break;
        case "params":
          f.params = d.rawBytes()?.slice() ?? null;
          break;
        case "auth_token": {
          const raw = d.raw();
          if (raw !== null && raw.startsWith('"')) f.authToken = JSON.parse(raw) as string;
          else if (raw !== null && raw !== "null") d.fail("string", "another JSON type");
          break;
        }
        default:
          d.skip();
      }
    }
  }
  f.problems = d.failed() ? d.getProblems() : [];
  return f;
}
