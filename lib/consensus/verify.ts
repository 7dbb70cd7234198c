/**
 * Validating a whole chain from its first block: each block through the one validator
 * (`validateBlock`) on top of the state the blocks before it imply.
 */
import type { Block } from "../core/block.ts";
import { type ParentState, validateBlock } from "./validate.ts";
import type { ChainRules } from "./rules.ts";

/** The verdict on a ledger. `height` is the first bad block (or the tip, for index faults). */
export type Verdict =
  | { ok: true; height: number; transactions: number }
  | { ok: false; height: number; reason: string };

/** The state a chain walk has built: balances and where each transaction sits. */
export interface ChainWalk {
  /** The verdict. */
  verdict: Verdict;
  /** Every balance the chain implies (addresses that never moved are absent). */
  balances: Map<string, number>;
  /** Where each transaction id sits in the chain. */
  ids: Map<string, { height: number; index: number; hash: string }>;
  /** The last valid block's hash (null for an empty chain). */
  lastHash: string | null;
}

/**
 * Walks blocks as a chain starting at height 0, validating each with `validateBlock` under
 * `chain` rules, with `nowSeconds` as the receiver's clock.
 */
export async function walkChain(
  blocks: AsyncIterable<Block> | Iterable<Block>,
  chain: ChainRules,
  nowSeconds: number,
): Promise<ChainWalk> {
  const balances = new Map<string, number>();
  const ids = new Map<string, { height: number; index: number; hash: string }>();
  const parent: ParentState = {
    height: -1,
    hash: null,
    time: null,
    balance: (a) => balances.get(a) ?? 0,
    chainHeight: (id) => ids.get(id)?.height ?? null,
  };
  let transactions = 0;
  const walk = (verdict: Verdict): ChainWalk => ({
    verdict,
    balances,
    ids,
    lastHash: parent.hash,
  });
  for await (const block of blocks) {
    const verdict = validateBlock(block, parent, chain, nowSeconds);
    if (!verdict.ok) {
      return walk({ ok: false, height: parent.height + 1, reason: verdict.reason });
    }
    verdict.effects.ids.forEach((id, index) =>
      ids.set(id, { height: block.height, index, hash: block.hash })
    );
    for (const [address, value] of verdict.effects.balances) balances.set(address, value);
    transactions += block.items.length;
    parent.height = block.height;
    parent.hash = block.hash;
    parent.time = block.proof?.time ?? null;
  }
  return walk({ ok: true, height: parent.height, transactions });
}

/** Validates a sequence of blocks as a chain starting at height 0. */
export async function verifyBlocks(
  blocks: AsyncIterable<Block> | Iterable<Block>,
  chain: ChainRules,
  nowSeconds: number = Date.now() / 1000,
): Promise<Verdict> {
  return (await walkChain(blocks, chain, nowSeconds)).verdict;
}
