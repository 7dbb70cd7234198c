/**
 * The state a block is validated against, held in memory: balances and transaction records
 * read from the store once, then advanced block by block as a run or a branch is validated and
 * written. Used by appends, reorgs and orphan settling alike.
 */
import { type Block, itemTx } from "../core/block.ts";
import { isAddress, type Item, type Tx } from "../core/transaction.ts";
import type { BlockEffects, ParentState } from "../consensus/validate.ts";
import { getAll } from "./kv.ts";
import { K, type Tip, type TxRecord } from "./schema.ts";

/** The addresses a run of items touches (malformed ones are left to the validator). */
export function addressesOf(items: readonly Item[] | readonly Tx[]): string[] {
  const out = new Set<string>();
  for (const item of items) {
    if (isAddress(item.sender)) out.add(item.sender);
    if (isAddress(item.receiver)) out.add(item.receiver);
  }
  return [...out];
}

/** Reads balances (0 for an address never seen). */
export async function readBalances(
  kv: Deno.Kv,
  addresses: readonly string[],
): Promise<Map<string, number>> {
  const entries = await getAll<number>(kv, addresses.map(K.balance));
  return new Map(addresses.map((a, i) => [a, entries[i].value ?? 0]));
}

/** Reads transaction records (null for an id never seen). */
export async function readRecords(
  kv: Deno.Kv,
  ids: readonly string[],
): Promise<Map<string, TxRecord | null>> {
  const unique = [...new Set(ids)];
  const entries = await getAll<TxRecord>(kv, unique.map(K.tx));
  return new Map(unique.map((id, i) => [id, entries[i].value]));
}

/**
 * A chain state in memory: a `ParentState` for the validator that can be advanced by a block
 * (connect) or wound back (disconnect). `balances` must hold every address the blocks touch;
 * `records` every id, as stored now.
 */
export class BranchState implements ParentState {
  /** Height of the current top. */
  height: number;
  /** Hash of the current top. */
  hash: string | null;
  /** Block time of the current top. */
  time: number | null;

  /**
   * Starts at `top`, with `balances` and `records` as stored. Records of chain blocks above
   * `chainLimit` are not part of this state (they belong to a branch being abandoned).
   */
  constructor(
    top: Tip,
    readonly balances: Map<string, number>,
    readonly records: Map<string, TxRecord | null>,
    private chainLimit: number = top.height,
  ) {
    this.height = top.height;
    this.hash = top.hash;
    this.time = top.time;
  }

  /** Balance of an address in this state. */
  balance(address: string): number {
    return this.balances.get(address) ?? 0;
  }

  /** The height of the block holding `id` in this state, or null. */
  chainHeight(id: string): number | null {
    const record = this.records.get(id);
    return record?.state === "chain" && record.height <= this.chainLimit ? record.height : null;
  }

  /** Moves the top to `block`, applying the effects the validator returned for it. */
  connect(block: Block, effects: BlockEffects): void {
    for (const [address, value] of effects.balances) this.balances.set(address, value);
    effects.ids.forEach((id, index) => {
      this.records.set(id, {
        state: "chain",
        tx: itemTx(block.items[index]),
        height: block.height,
        index,
        block: block.hash,
      });
    });
    this.height = block.height;
    this.hash = block.hash;
    this.time = block.proof?.time ?? null;
    this.chainLimit = block.height;
  }

  /**
   * Winds the top back below `block` (the current top), whose parent is `parent`: balances
   * restored and its transactions back in the pool.
   */
  disconnect(block: Block, ids: readonly string[], parent: Tip): void {
    for (let i = block.items.length - 1; i >= 0; i--) {
      const { sender, receiver, amount } = block.items[i];
      this.balances.set(sender, this.balance(sender) + amount);
      this.balances.set(receiver, this.balance(receiver) - amount);
      this.records.set(ids[i], { state: "pool", tx: itemTx(block.items[i]) });
    }
    this.height = parent.height;
    this.hash = parent.hash;
    this.time = parent.time;
    this.chainLimit = parent.height;
  }
}
