/**
 * Auditing a stored ledger: the best chain walked from height 0 through the one validator
 * (lib/consensus/verify.ts), then, with `indexes`, every index checked against what the chain
 * implies (tip, balances, transaction records, pool and its counter).
 */
import { txId } from "../core/transaction.ts";
import { type Verdict, walkChain } from "../consensus/verify.ts";
import type { Store } from "./store.ts";

export type { Verdict };

/**
 * Verifies the stored ledger under the store's rules. With `indexes`, also checks the tip, every
 * stored balance, the transaction index and the pool against the chain (a full scan).
 */
export async function verifyStore(
  store: Store,
  opts: { indexes?: boolean; nowSeconds?: number } = {},
): Promise<Verdict> {
  const now = opts.nowSeconds ?? Date.now() / 1000;
  const { verdict, balances, ids: chainIds, lastHash } = await walkChain(
    store.allBlocks(),
    store.rules,
    now,
  );
  if (!verdict.ok) return verdict;
  const { tip } = await store.tipEntry();
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
  if (tip.switching) return fail("a reorg is under way (reopen the store to finish it)");
  if (!opts.indexes) return verdict;

  const seen = new Set<string>();
  for await (const [address, value] of store.allBalances()) {
    seen.add(address);
    if ((balances.get(address) ?? 0) !== value) {
      return fail(
        `balance index says ${address} has ${value}, chain says ${balances.get(address) ?? 0}`,
      );
    }
  }
  for (const [address, value] of balances) {
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
      if (record.height !== at.height || record.index !== at.index || record.block !== at.hash) {
        return fail(
          `transaction ${id} is recorded at ${record.height}/${record.index} in ${record.block}, ` +
            `the chain has it at ${at.height}/${at.index} in ${at.hash}`,
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
