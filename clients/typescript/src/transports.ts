import { InboxTransport } from "./inbox.js";
import { PlatoolsTransport } from "./platools.js";
import type { ResolvedOptions, Runner, Transport } from "./serve.js";
import type { Toolkit } from "./toolkit.js";
import { WSTransport } from "./ws.js";

export function makeTransport(tk: Toolkit, o: ResolvedOptions, runner: Runner): Transport {
  switch (o.transport) {
    case "http":
      return new InboxTransport(tk, o, runner);
    case "platools":
      return new PlatoolsTransport(tk, o, runner);
    default:
      return new WSTransport(tk, o, runner);
  }
}
