/**
 * The chain databases the lookup, start-up and memory benchmarks share: one KV file per chain
 * length. bench/run.ts makes them once and names a JSON list of them in FOXCHAIN_BENCH_CHAINS;
 * run alone, a benchmark makes its own.
 */
import { BENCH_RULES } from "./fixtures.ts";
import { openStore } from "../lib/store/store.ts";
import { type ChainInfo, generateChain } from "./chain.ts";

/** Chain lengths compared for flatness. */
export const CHAIN_LENGTHS = [1_000, 100_000];

/** A chain database on disk and what it holds. */
export interface ChainDb extends ChainInfo {
  path: string;
  seconds: number;
}

/** Generates one chain database of `blocks` blocks at `path` and closes it. */
export async function makeChainDb(path: string, blocks: number): Promise<ChainDb> {
  const store = await openStore(path, { rules: BENCH_RULES });
  try {
    const started = performance.now();
    const info = await generateChain(store, blocks);
    return { ...info, path, seconds: (performance.now() - started) / 1000 };
  } finally {
    await store.close();
  }
}

/**
 * Writes the list next to the databases and returns what FOXCHAIN_BENCH_CHAINS should hold:
 * the list's path (the ids it carries are too long for an environment variable).
 */
export async function chainsToEnv(dbs: readonly ChainDb[], path: string): Promise<string> {
  await Deno.writeTextFile(path, JSON.stringify(dbs));
  return path;
}

/** Chain databases listed in the file FOXCHAIN_BENCH_CHAINS names, or null when unset. */
export function chainsFromEnv(): ChainDb[] | null {
  const path = Deno.env.get("FOXCHAIN_BENCH_CHAINS");
  return path ? JSON.parse(Deno.readTextFileSync(path)) as ChainDb[] : null;
}
