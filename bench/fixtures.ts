/**
 * Shared workload makers for the benchmarks: addresses, transactions and chains that need
 * real balance checks (funded accounts paying each other), all deterministic.
 */
import { type Block, makeBlock } from "../lib/core/block.ts";
import { type Rule, statsOf } from "../lib/core/rules.ts";
import { proofFor } from "../lib/consensus/proof.ts";
import type { ChainRules } from "../lib/consensus/rules.ts";
import { GENESIS, MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import type { Tx } from "../lib/core/transaction.ts";

export { GENESIS };

/** 2024-01-01T00:00:00Z: `t` for store-level workloads (the consensus bounds allow it). */
export const T0 = 1_704_067_200;

/** The n-th account: a lowercase version-4 UUID, never GENESIS. */
export function account(n: number): string {
  return `00000000-0000-4000-8000-${(n + 1).toString(16).padStart(12, "0")}`;
}

/** What every account is funded with: enough for any number of 1-unit transfers here. */
export const FUNDING = 1_000_000_000;

/** Mints funding `accounts` accounts, `t` from `start`, one microsecond apart. */
export function fundingTxs(accounts: number, start = T0): Tx[] {
  return Array.from({ length: accounts }, (_, i) => ({
    sender: GENESIS,
    receiver: account(i),
    amount: FUNDING,
    t: start + i / 1e6,
  }));
}

/**
 * The i-th transfer between funded accounts (a sender other than GENESIS, so every one needs
 * a balance check). Distinct `i` give distinct transactions.
 */
export function transfer(i: number, accounts: number, start: number): Tx {
  const from = i % accounts;
  // A stride coprime with typical account counts spreads receivers; never pays itself.
  const to = (from + 1 + (i * 7919) % (accounts - 1)) % accounts;
  return { sender: account(from), receiver: account(to), amount: 1, t: start + i / 1e6 };
}

/** The benchmarks' network: a block may be cut as soon as the pool holds a transaction. */
export const BENCH_RULE: Rule = { kind: "count", size: 1 };
/** The benchmarks' network rules (every block carries its proof, as a real chain's does). */
export const BENCH_RULES: ChainRules = { rules: [BENCH_RULE], acceptBareBlocks: false };

/** The block at `height` on `hash` holding `txs`, with its proof under BENCH_RULE. */
export function provenBlock(
  height: number,
  hash: string | null,
  txs: readonly Tx[],
  parentTime: number | null,
): Block {
  return makeBlock(height, hash, txs, proofFor(BENCH_RULE, statsOf(txs), parentTime));
}

/** Splits transactions into blocks of at most `size`, chained on top of `height`/`hash`. */
export function blocksOf(
  txs: readonly Tx[],
  size: number,
  height = -1,
  hash: string | null = null,
): Block[] {
  const blocks: Block[] = [];
  let time: number | null = null;
  for (let i = 0; i < txs.length; i += size) {
    const block = provenBlock(height + 1, hash, txs.slice(i, i + size), time);
    time = block.proof!.time;
    blocks.push(block);
    height = block.height;
    hash = block.hash;
  }
  return blocks;
}

/** A chain in memory: blocks funding `accounts`, then `transfers` in full blocks. */
export function memoryChain(accounts: number, transfers: number): Block[] {
  const funding = blocksOf(fundingTxs(accounts), MAX_BLOCK_ITEMS);
  const last = funding[funding.length - 1];
  const txs = Array.from({ length: transfers }, (_, i) => transfer(i, accounts, T0 + 10));
  return [...funding, ...blocksOf(txs, 200, last.height, last.hash)];
}

/** The verify benchmark's chain: funded accounts, then transfers in blocks of 200. */
export const VERIFY_CHAIN = { accounts: 1_000, transfers: 20_000 };

/** Rows already in the table for the raw KV ceiling "near 100,000". */
export const LARGE_TABLE = 100_000;

/** A fresh temporary directory for KV files; `cleanup` removes it. */
export async function tempDir(): Promise<{ path: string; cleanup: () => Promise<void> }> {
  const path = await Deno.makeTempDir({ prefix: "foxchain-bench-" });
  return { path, cleanup: () => Deno.remove(path, { recursive: true }) };
}
