import { fileURLToPath } from "node:url";
import path from "node:path";

/** The package's directory (tests run from .test-build/test/). */
export const pkgRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The repository root. */
export const repoRoot = path.resolve(pkgRoot, "..", "..");

/** waitFor polls cond until it holds, for at most ms: a bounded wait on a
 * condition, never a fixed sleep. */
export async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}
