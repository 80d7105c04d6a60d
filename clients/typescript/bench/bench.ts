// The benchmark of one served call: the Node toolkit next to the Go
// toolkit, on the same `atp serve`, in the same run (npm run bench). A Go
// agent (bench/go) drives both over one llmclient WebSocket and measures
// the p50 latency of one call at a time and the calls/s with 64 in flight;
// this prints them and the Node toolkit's ratios to the Go toolkit's.
import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { buildGo, cleanup, execFileAsync, startServer } from "../test/atpserver.js";

const here = path.dirname(fileURLToPath(import.meta.url));
const bins = await buildGo();
const srv = await startServer(bins);
// BENCH_PROFILE=dir writes a CPU profile of the Node toolkit there.
const profile = process.env["BENCH_PROFILE"] ? ["--cpu-prof", "--cpu-prof-dir", process.env["BENCH_PROFILE"]] : [];
const node = spawn(process.execPath, [...profile, path.join(here, "node-toolkit.js")], {
  env: { ...process.env, ATP_URL: srv.url, ATP_API_KEY: await srv.key("toolkit", "node-bench") },
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error("the Node toolkit did not connect")), 30_000);
    node.stdout!.on("data", (d: Buffer) => {
      if (d.toString().includes("connected")) {
        clearTimeout(t);
        resolve();
      }
    });
  });
  const args = ["-url", srv.url, "-go-key", await srv.key("toolkit", "go-bench"), "-node-toolkit", "nodebench", ...process.argv.slice(2)];
  const { stdout } = await execFileAsync(bins.bench, args, { env: { ...process.env, ATP_API_KEY: await srv.key("llm", "bench") }, maxBuffer: 1 << 20 });
  const r = JSON.parse(stdout) as Record<"go" | "node", { p50_us: number; calls_per_s: number }>;
  const row = (name: string, x: { p50_us: number; calls_per_s: number }) => `| ${name} | ${x.p50_us.toFixed(1)} µs | ${Math.round(x.calls_per_s)} |`;
  console.log("| toolkit | p50, one call at a time | calls/s, 64 in flight |\n| --- | --- | --- |");
  console.log(row("Go (runtime.Serve)", r.go));
  console.log(row("Node (@atpgo/atp serve)", r.node));
  console.log(`\nNode/Go: p50 ${(r.node.p50_us / r.go.p50_us).toFixed(2)}x, calls/s ${((100 * r.node.calls_per_s) / r.go.calls_per_s).toFixed(0)}%`);
  console.log(JSON.stringify(r));
} finally {
  const exited = new Promise((res) => node.once("exit", res));
  node.kill("SIGTERM");
  await exited;
  await srv.stop();
  await cleanup(bins);
}
