// The real `atp serve`, built from this repository, for the end-to-end
// tests and the benchmark: the Go binaries are built once into a temporary
// directory, the server listens on a port the OS picks, keys are created
// with `atp keys create`.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { repoRoot } from "./helpers.js";

const run = promisify(execFile);

export interface Binaries {
  dir: string;
  atp: string;
  llmcall: string;
  hello: string;
  bench: string;
}

/** buildGo builds atp, the Go llmclient helper, the hello toolkit and the
 * benchmark driver from this checkout. */
export async function buildGo(): Promise<Binaries> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "atp-ts-"));
  const b: Binaries = {
    dir,
    atp: path.join(dir, "atp"),
    llmcall: path.join(dir, "llmcall"),
    hello: path.join(dir, "hello-toolkit"),
    bench: path.join(dir, "bench"),
  };
  const pkgs: [string, string][] = [
    [b.atp, "./cmd/atp"],
    [b.llmcall, "./clients/typescript/test/go/llmcall"],
    [b.hello, "./examples/hello/cmd/toolkit"],
    [b.bench, "./clients/typescript/bench/go"],
  ];
  for (const [out, pkg] of pkgs) {
    await run("go", ["build", "-o", out, pkg], { cwd: repoRoot, maxBuffer: 16 << 20 });
  }
  return b;
}

export interface Server {
  url: string;
  db: string;
  proc: ChildProcess;
  stderr: string[];
  key(kind: "toolkit" | "llm", name: string): Promise<string>;
  stop(): Promise<void>;
}

/** startServer runs `atp serve --addr 127.0.0.1:0` on a fresh database
 * and resolves once it has said where it listens. */
export async function startServer(b: Binaries): Promise<Server> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "atp-ts-db-"));
  const db = path.join(dir, "atp.db");
  const env = { ...process.env, HOME: dir, XDG_DATA_HOME: dir, ATP_SECRET_KEY: randomBytes(32).toString("base64") };
  const proc = spawn(b.atp, ["serve", "--addr", "127.0.0.1:0", "--db", db], { env, stdio: ["ignore", "pipe", "pipe"] });
  const stderr: string[] = [];
  proc.stderr!.on("data", (d: Buffer) => stderr.push(d.toString("utf8")));
  const url = await new Promise<string>((resolve, reject) => {
    let out = "";
    const t = setTimeout(() => reject(new Error(`atp serve did not start within 30 s: ${out}${stderr.join("")}`)), 30_000);
    proc.stdout!.on("data", (d: Buffer) => {
      out += d.toString("utf8");
      const m = /ATP server on (\S+)/.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`atp serve exited with ${code}: ${out}${stderr.join("")}`));
    });
  });
  return {
    url,
    db,
    proc,
    stderr,
    async key(kind, name) {
      const { stdout } = await run(b.atp, ["keys", "create", "--kind", kind, "--name", name, "--json", "--db", db], { env });
      return (JSON.parse(stdout) as { api_key: string }).api_key;
    },
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** startGoToolkit runs the hello example's toolkit against the server and
 * resolves once it is connected. */
export async function startGoToolkit(b: Binaries, url: string, key: string, transport = "ws"): Promise<{ stop(): Promise<void>; stderr: string[] }> {
  const proc = spawn(b.hello, [], { env: { ...process.env, ATP_URL: url, ATP_API_KEY: key, ATP_TRANSPORT: transport }, stdio: ["ignore", "ignore", "pipe"] });
  const stderr: string[] = [];
  await new Promise<void>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`the Go toolkit did not connect: ${stderr.join("")}`)), 30_000);
    proc.stderr!.on("data", (d: Buffer) => {
      stderr.push(d.toString("utf8"));
      if (stderr.join("").includes("atp: connected")) {
        clearTimeout(t);
        resolve();
      }
    });
    proc.once("exit", (code) => {
      clearTimeout(t);
      reject(new Error(`the Go toolkit exited with ${code}: ${stderr.join("")}`));
    });
  });
  return {
    stderr,
    async stop() {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await exited;
      }
    },
  };
}

export async function cleanup(b: Binaries): Promise<void> {
  await rm(b.dir, { recursive: true, force: true });
}

export { run as execFileAsync };
