/**
 * Chain switching and peer blocks: the time a reorg of depth 1, 10 and 100 full blocks takes
 * (`Store.acceptBlock` of the block that makes the other branch longer), and applying a run of
 * peer blocks (`acceptBlock` one by one) against building the same transactions locally
 * (`Builder.pass`). Run alone: `deno run -A bench/reorg.ts`.
 */
import { Builder } from "../lib/node/builder.ts";
import { MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import { openStore } from "../lib/store/store.ts";
import type { Tx } from "../lib/core/transaction.ts";
import { BENCH_RULES, blocksOf, GENESIS, T0, tempDir } from "./fixtures.ts";

/** One reorg measurement. */
export interface ReorgRow {
  /** Blocks abandoned. */
  depth: number;
  /** Transactions per block. */
  blockSize: number;
  /** Seconds for the switch (the last block's acceptBlock). */
  seconds: number;
}

/** Peer blocks applied vs the same transactions built locally. */
export interface PeerApplyRow {
  /** Blocks. */
  blocks: number;
  /** Transactions in all. */
  transactions: number;
  /** Seconds to accept them as peer blocks. */
  applySeconds: number;
  /** Seconds to build them locally from the pool. */
  buildSeconds: number;
}

function mints(n: number, start: number, to: number): Tx[] {
  return Array.from({ length: n }, (_, i) => ({
    sender: GENESIS,
    receiver: `00000000-0000-4000-8000-${(to + i).toString(16).padStart(12, "0")}`,
    amount: 1,
    t: start + i / 1e4,
  }));
}

/** Times reorgs of `depth` full blocks on a KV file under `dir`. */
export async function timeReorg(dir: string, depth: number): Promise<ReorgRow> {
  const store = await openStore(`${dir}/reorg-${depth}.kv`, { rules: BENCH_RULES });
  try {
    const [root] = blocksOf(mints(1, T0, 1), 1);
    const ours = blocksOf(
      mints(depth * MAX_BLOCK_ITEMS, T0 + 10, 1000),
      MAX_BLOCK_ITEMS,
      0,
      root.hash,
    );
    const theirs = blocksOf(
      mints((depth + 1) * MAX_BLOCK_ITEMS, T0 + 20_000, 900_000),
      MAX_BLOCK_ITEMS,
      0,
      root.hash,
    );
    for (const block of [root, ...ours]) {
      const r = await store.appendBlock(block);
      if (!r.ok) throw new Error(r.reason);
    }
    for (const block of theirs.slice(0, -1)) await store.acceptBlock(block);
    const started = performance.now();
    const result = await store.acceptBlock(theirs[theirs.length - 1]);
    const seconds = (performance.now() - started) / 1000;
    if (result.status !== "reorged" && (await store.tip()).hash !== theirs.at(-1)!.hash) {
      throw new Error(`no switch: ${JSON.stringify(result)}`);
    }
    return { depth, blockSize: MAX_BLOCK_ITEMS, seconds };
  } finally {
    await store.close();
  }
}

/** Times `blocks` peer blocks of 200 mints accepted one by one vs built locally. */
export async function timePeerApply(dir: string, blocks: number): Promise<PeerApplyRow> {
  const txs = mints(blocks * 200, T0, 1);
  const chain = blocksOf(txs, 200);
  const peer = await openStore(`${dir}/apply.kv`, { rules: BENCH_RULES });
  let applySeconds;
  try {
    const started = performance.now();
    for (const block of chain) {
      const r = await peer.acceptBlock(block);
      if (r.status !== "extended") throw new Error(JSON.stringify(r));
    }
    applySeconds = (performance.now() - started) / 1000;
  } finally {
    await peer.close();
  }
  const local = await openStore(`${dir}/build.kv`, { rules: BENCH_RULES });
  let buildSeconds;
  try {
    for (let i = 0; i < txs.length; i += 1000) await local.addToPool(txs.slice(i, i + 1000));
    const started = performance.now();
    const pass = await new Builder(local, { maxBlock: 200 }).pass();
    buildSeconds = (performance.now() - started) / 1000;
    if (pass.added !== blocks) throw new Error(`built ${pass.added} blocks, not ${blocks}`);
  } finally {
    await local.close();
  }
  return { blocks, transactions: txs.length, applySeconds, buildSeconds };
}

if (import.meta.main) {
  const dir = await tempDir();
  try {
    await Deno.mkdir(`${dir.path}/warm`);
    await timeReorg(`${dir.path}/warm`, 1); // the first switch pays for compiling the code
    for (const depth of [1, 10, 100]) console.log(await timeReorg(dir.path, depth));
    console.log(await timePeerApply(dir.path, 100));
  } finally {
    await dir.cleanup();
  }
}
