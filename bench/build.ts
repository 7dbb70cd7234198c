/**
 * Block building: the time Builder.pass() takes to pack a pool into blocks on a KV file, with
 * senders that need balance checks (accounts funded in earlier blocks paying each other).
 */
import { Builder } from "../lib/node/builder.ts";
import { DEFAULT_MAX_BLOCK, MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import { openStore } from "../lib/store/store.ts";
import { BENCH_RULES, blocksOf, fundingTxs, T0, transfer } from "./fixtures.ts";

/** What packing one pool took. */
export interface BuildResult {
  pool: number;
  blocks: number;
  dropped: number;
  seconds: number;
  txPerSecond: number;
  blocksPerSecond: number;
}

/**
 * Funds `accounts` accounts in blocks, fills the pool with `pool` transfers among them (not
 * timed), then times one Builder.pass() with the count rule, which packs the whole pool.
 */
export async function timeBuild(
  path: string,
  pool: number,
  accounts = 1_000,
): Promise<BuildResult> {
  const store = await openStore(path, { rules: BENCH_RULES });
  try {
    for (const block of blocksOf(fundingTxs(accounts), MAX_BLOCK_ITEMS)) {
      const result = await store.appendBlock(block);
      if (!result.ok) throw new Error(result.reason);
    }
    for (let i = 0; i < pool; i += 10_000) {
      const txs = [];
      for (let j = i; j < Math.min(i + 10_000, pool); j++) txs.push(transfer(j, accounts, T0 + 10));
      await store.addToPool(txs);
    }
    const builder = new Builder(store, {
      rules: [{ kind: "count", size: 1 }],
      maxBlock: DEFAULT_MAX_BLOCK,
    });
    const started = performance.now();
    const result = await builder.pass();
    const seconds = (performance.now() - started) / 1000;
    // A pass reports its last PASS_KEEP blocks only: count what left the pool instead.
    const left = (await store.poolStats()).size;
    if (left !== 0 || result.dropped.length !== 0) {
      throw new Error(`${left} of ${pool} left in the pool, ${result.dropped.length} dropped`);
    }
    return {
      pool,
      blocks: result.added,
      dropped: result.dropped.length,
      seconds,
      txPerSecond: pool / seconds,
      blocksPerSecond: result.added / seconds,
    };
  } finally {
    await store.close();
  }
}
