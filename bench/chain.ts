/**
 * Long chains for the lookup and start-up benchmarks, written through Store.appendBlocks: runs
 * of consecutive one-transaction blocks per atomic commit, each block validated as
 * appendBlock validates it (about 90x fewer commits than one block per commit).
 */
import { MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import type { Store } from "../lib/store/store.ts";
import { type Tx, txId } from "../lib/core/transaction.ts";
import { blocksOf, fundingTxs, provenBlock, T0, transfer } from "./fixtures.ts";

/** Blocks per appendBlocks run: one transfer per block is about 5 mutations, so ~750 of 1,000. */
const RUN = 150;

/** What a generated chain holds, for lookups. */
export interface ChainInfo {
  blocks: number;
  accounts: number;
  /** Ids of some transactions spread over the whole chain. */
  sampleIds: string[];
}

/**
 * Appends `blocks` blocks to an empty store: first blocks funding `accounts` accounts (240
 * mints each), then one transfer between funded accounts per block.
 */
export async function generateChain(
  store: Store,
  blocks: number,
  accounts = 1_000,
): Promise<ChainInfo> {
  const funding = blocksOf(fundingTxs(accounts), MAX_BLOCK_ITEMS);
  for (const block of funding) {
    const result = await store.appendBlock(block);
    if (!result.ok) throw new Error(`funding block ${block.height}: ${result.reason}`);
  }
  const top = funding[funding.length - 1];
  let { height, hash } = { height: top.height, hash: top.hash };
  let time = top.proof!.time;
  const sampleIds: string[] = [];
  const transfers = blocks - funding.length;
  const every = Math.max(1, Math.floor(transfers / 1000));
  for (let i = 0; i < transfers; i += RUN) {
    const run = [];
    for (let j = i; j < Math.min(i + RUN, transfers); j++) {
      const tx: Tx = transfer(j, accounts, T0 + 10);
      if (j % every === 0) sampleIds.push(txId(tx));
      const block = provenBlock(height + 1, hash, [tx], time);
      run.push(block);
      ({ height, hash } = block);
      time = block.proof!.time;
    }
    const result = await store.appendBlocks(run);
    if (!result.ok) throw new Error(`blocks from ${run[0].height}: ${result.reason}`);
  }
  return { blocks: height + 1, accounts, sampleIds };
}
