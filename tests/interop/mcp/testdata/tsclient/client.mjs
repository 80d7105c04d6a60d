// Drives an MCP server with the official TypeScript client and prints what
// it saw as one JSON object. Usage:
//   node client.mjs stdio <command> [args...]
//   node client.mjs http <url>
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ToolListChangedNotificationSchema } from "@modelcontextprotocol/sdk/types.js";

const [mode, target, ...rest] = process.argv.slice(2);
const transport =
  mode === "stdio"
    ? new StdioClientTransport({ command: target, args: rest, env: { ...process.env }, stderr: "inherit" })
    : new StreamableHTTPClientTransport(new URL(target));
const client = new Client({ name: "ts-test", version: "1.0.0" });
let listChanged = 0;
client.setNotificationHandler(ToolListChangedNotificationSchema, () => { listChanged++; });
await client.connect(transport);

const out = {};
out.protocolVersion = transport.protocolVersion ?? null;
out.capabilities = client.getServerCapabilities();
out.tools = (await client.listTools()).tools.map((t) => ({ name: t.name, annotations: t.annotations, hasOutputSchema: !!t.outputSchema }));
out.greet = await client.callTool({ name: "greet", arguments: { name: "Ada", times: 2 } });
out.invalid = await client.callTool({ name: "greet", arguments: { name: "Ada", times: 0 } });
out.object = await client.callTool({ name: "report", arguments: {} });
out.progress = [];
out.work = await client.callTool({ name: "work", arguments: {} }, undefined, {
  onprogress: (p) => {
    out.progress.push(p);
    // The tool waits for this before it goes on (see tsKit).
    client.callTool({ name: "ack", arguments: {} }).catch((e) => console.error("ack:", e));
  },
});
try {
  await client.callTool({ name: "nope", arguments: {} });
  out.unknown = "no error";
} catch (e) {
  out.unknown = String(e.message ?? e);
}
await client.close();
console.log(JSON.stringify(out));
