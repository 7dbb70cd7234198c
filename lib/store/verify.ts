/**
 * Full-ledger validation: walks the chain from height 0 and checks every block's items, item
 * chain, hash, link to the block below, and balances with running totals. Optionally checks
 * that the indexes (balances, transaction records, pool) agree with the chain.
 */
import { type Block, checkBlockShape } from "../core/block.ts";
import { RunningBalances } from "../core/balances.ts";
import type { Store } from "./store.ts";
import { txId } from "../core/transaction.ts";

/** The verdict on a ledger. `height` is the first bad block (or the tip, for index faults). */
export type Verdict =
  | { ok: true; height: number; transactions: number }
  | { ok: false; height: number; reason: string };

/** Validates a sequence of blocks as a chain starting at height 0. */
export async function verifyBlocks(
  blocks: AsyncIterable<Block> | Iterable<Block>,
): Promise<Verdict> {
  return (await walkChain(blocks)).verdict;
}

interface Walk {
  verdict: Verdict;
  /** Balances and transaction ids the chain implies (meaningful when the verdict is ok). */
  balances: RunningBalances;
  /** Where each transaction id sits in the chain. */
  ids: Map<string, { height: number; index: number }>;
  /** Hash of the last block (null for an empty chain). */
  lastHash: string | null;
}

async function walkChain(blocks: AsyncIterable<Block> | Iterable<Block>): Promise<Walk> {
  const balances = new RunningBalances(() => 0);
  const ids = new Map<string, { height: number; index: number }>();
  let expected = 0;
  let prevHash: string | null = null;
  let transactions = 0;
  for await (const block of blocks) {
    const fail = (reason: string): Walk => ({
      verdict: { ok: false, height: expected, reason },
      balances,
      ids,
      lastHash: prevHash,
    });
    if (block.height !== expected) {
      return fail(`block ${expected} is missing (found ${block.height})`);
    }
    if (block.prev_hash !== prevHash) {
      return fail(`prev_hash is ${block.prev_hash}, block ${expected - 1} hashes to ${prevHash}`);
    }
    const blockIds: string[] = [];
    const bad = checkBlockShape(block, blockIds);
    if (bad) return fail(bad);
    for (let i = 0; i < block.items.length; i++) {
      const id = blockIds[i];
      if (ids.has(id)) return fail(`item ${i}: transaction ${id} appears twice in the chain`);
      ids.set(id, { height: expected, index: i });
      // An item is a transaction plus its link; apply reads only the transaction's fields.
      const overspend = balances.apply(block.items[i]);
      if (overspend) return fail(`item ${i}: ${overspend}`);
    }
    transactions += block.items.length;
    prevHash = block.hash;
    expected++;
  }
  return {
    verdict: { ok: true, height: expected - 1, transactions },
    balances,
    ids,
    lastHash: prevHash,
  };
}

/**
 * Verifies the stored ledger. With `indexes`, also checks the tip, every stored balance, the
 * transaction index and the pool against what the chain implies (a full scan of the store).
 */
export async function verifyStore(
  store: Store,
  opts: { indexes?: boolean } = {},
): Promise<Verdict> {
  const { verdict, balances, ids: chainIds, lastHash } = await walkChain(store.allBlocks());
  if (!verdict.ok) return verdict;
  const tip = await store.tip();
  const fail = (reason: string): Verdict => ({ ok: false, height: verdict.height, reason });
  if (tip.height > verdict.height) {
    const missing = verdict.height + 1;
    return {
      ok: false,
      height: missing,
      reason: `block ${missing} is missing (tip is ${tip.height})`,
    };
  }
  if (tip.height !== verdict.height) {
    return fail(`tip says height ${tip.height}, chain ends at ${verdict.height}`);
  }
  if (tip.hash !== lastHash) {
    return fail(`tip says hash ${tip.hash}, block ${verdict.height} hashes to ${lastHash}`);
  }
  if (!opts.indexes) return verdict;

  const seen = new Set<string>();
  for await (const [address, value] of store.allBalances()) {
    seen.add(address);
    if (balances.get(address) !== value) {
      return fail(
        `balance index says ${address} has ${value}, chain says ${balances.get(address)}`,
      );
    }
  }
  for (const [address, value] of balances.changed) {
    if (value !== 0 && !seen.has(address)) return fail(`balance index lacks ${address}`);
  }
  let pooled = 0;
  let chained = 0;
  for await (const [id, record] of store.allTxRecords()) {
    if (txId(record.tx) !== id) return fail(`transaction record ${id} holds another transaction`);
    if ((record.state === "chain") !== chainIds.has(id)) {
      return fail(`transaction ${id} is recorded as ${record.state} but the chain disagrees`);
    }
    if (record.state === "chain") {
      chained++;
      const at = chainIds.get(id)!;
      if (record.height !== at.height || record.index !== at.index) {
        return fail(
          `transaction ${id} is recorded at ${record.height}/${record.index}, ` +
            `the chain has it at ${at.height}/${at.index}`,
        );
      }
    }
    if (record.state === "pool") pooled++;
  }
  if (chained !== chainIds.size) {
    return fail(`${chainIds.size - chained} transactions in the chain have no record`);
  }
  let poolEntries = 0;
  for await (const [id, tx] of store.allPoolEntries()) {
    poolEntries++;
    const record = await store.lookupTx(id);
    if (record?.state !== "pool" || txId(tx) !== id) {
      return fail(`pool entry ${id} has no matching pool record`);
    }
  }
  const stats = await store.poolStats();
  if (poolEntries !== pooled || stats.size !== pooled) {
    return fail(`pool holds ${poolEntries} entries, ${pooled} records, counter ${stats.size}`);
  }
  return verdict;
}
