// The Node side of the benchmark: the same trivial echo tool as the Go
// driver's, served over ATP v1 WebSocket until SIGTERM.
import { serve, silentLogger, Toolkit } from "../src/index.js";

const tk = new Toolkit("nodebench", { logger: silentLogger }).add({
  name: "echo",
  description: "Echoes msg.",
  inputSchema: '{"type":"object","properties":{"msg":{"type":"string"}},"required":["msg"],"additionalProperties":false}',
  handler: (p) => ({ msg: p["msg"] }),
});
const ctrl = new AbortController();
process.on("SIGTERM", () => ctrl.abort());
await serve(tk, {
  url: process.env["ATP_URL"]!,
  apiKey: process.env["ATP_API_KEY"]!,
  signal: ctrl.signal,
  logger: silentLogger,
  onState: (s) => {
    if (s.kind === "connected") process.stdout.write("connected\n");
  },
});
