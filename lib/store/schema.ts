/**
 * The Deno KV key schema (docs/storage.md) and the records stored under it. One module owns
 * every key, so no other file spells a key out.
 */
import type { Item, Tx } from "../core/transaction.ts";
import type { Proof } from "../core/block.ts";

/** The schema this foxchain reads and writes. Version 1 (blocks by height) cannot be opened. */
export const SCHEMA_VERSION = 2;

/** Where a transaction is: waiting in the pool, in a block, or dropped with a reason. */
export type TxRecord =
  | { state: "pool"; tx: Tx }
  | { state: "chain"; tx: Tx; height: number; index: number; block: string }
  | { state: "dropped"; tx: Tx; reason: string; at: number };

/** The chain's tip; height -1 and a null hash for an empty chain. */
export interface Tip {
  /** Height of the top block; -1 when the chain is empty. */
  height: number;
  /** Hash of the top block; null when the chain is empty. */
  hash: string | null;
  /** Block time of the top block (its proof's); null when empty or bare. */
  time: number | null;
}

/** The tip as stored: `switching` while a reorg is under way (builders wait). */
export interface StoredTip extends Tip {
  /** Set while a reorg is switching branches: nothing may build on the tip. */
  switching?: boolean;
}

/** A block's header as stored under its hash (and, on the best chain, its height). */
export interface BlockHeader {
  /** The block's hash. */
  hash: string;
  /** Its parent's hash. */
  prev_hash: string | null;
  /** Its height. */
  height: number;
  /** Items in the block. */
  count: number;
  /** Body parts stored under `["body", hash, part]`. */
  parts: number;
  /** Proof-of-write evidence, when the block has it. */
  proof?: Proof;
  /** Set for a block found invalid: the reason. Its body is not kept. */
  bad?: string;
}

/** A transaction of an abandoned or side block, whose place (pool or dropped) follows the tip. */
export interface OrphanEntry {
  /** The transaction. */
  tx: Tx;
  /** Height of the block it came from: entries older than the side-branch window are final. */
  height: number;
}

/** The journal of a reorg under way: opening the store finishes it. */
export interface ReorgJournal {
  /** The tip before the switch. */
  from: Tip;
  /** The tip being switched to. */
  to: Tip;
  /** Height of the last block both branches share (-1: none). */
  fork: number;
  /** Hashes of the abandoned blocks, lowest first: their transactions are re-settled. */
  abandoned: string[];
}

/** What the builder last said about itself (shown by `status`). */
export interface BuilderInfo {
  /** The builder's rules, described as by `describeRules`. */
  rules: string;
  /** Most transactions the builder considers per block. */
  maxBlock: number;
  /** Seconds between the builder's checks of its rules. */
  sleepSeconds: number;
  /** Process id of the builder. */
  pid: number;
  /** When this was recorded (POSIX seconds). */
  updated: number;
  /** True when the builder made one pass and exited (`build --once`) rather than looping. */
  once?: boolean;
}

/** What a node remembers of one keyed merge (`request_id`), under `K.request`. */
export interface MergeRequest {
  /** When it first arrived (POSIX seconds): every retry judges `t` against this time. */
  at: number;
  /** The first of the stamps reserved for it, in whole microseconds: item i without `t` is
   * stamped `(base + i) / 1e6`, on the first try and on every retry. */
  base: number;
  /** Stamps drawn again for items whose reserved stamp clashed (index to microseconds). */
  restamped: Record<number, number>;
  /** Digest of the request as admitted: a retry must be the same request. */
  digest: string;
  /** Set once the merge finished: one bit per item, set when the item was known already. */
  known?: Uint8Array;
}

/** Every key the store writes. Short prefixes keep keys small; each has one job. */
export const K = {
  schema: ["meta", "schema"] as const,
  builder: ["meta", "builder"] as const,
  tip: ["tip"] as const,
  reorg: ["reorg"] as const,
  poolSize: ["poolsize"] as const,
  poolGen: ["poolgen"] as const,
  peerCount: ["peercount"] as const,
  tx: (id: string): Deno.KvKey => ["tx", id],
  pool: (t: number, id: string): Deno.KvKey => ["pool", t, id],
  /** Every stored block's header, by hash: the block tree. */
  block: (hash: string): Deno.KvKey => ["blk", hash],
  body: (hash: string, part: number): Deno.KvKey => ["body", hash, part],
  /** The best chain: height -> header. */
  main: (height: number): Deno.KvKey => ["main", height],
  /** Stored blocks off the best chain, by height (for pruning oldest-first). */
  side: (height: number, hash: string): Deno.KvKey => ["side", height, hash],
  orphan: (t: number, id: string): Deno.KvKey => ["orphan", t, id],
  balance: (address: string): Deno.KvKey => ["bal", address],
  peer: (url: string): Deno.KvKey => ["peer", url],
  /** A keyed merge's record, by its `request_id`. */
  request: (id: string): Deno.KvKey => ["req", id],
};

/** A header for a block. */
export function headerOf(
  block: { hash: string; prev_hash: string | null; height: number; items: Item[]; proof?: Proof },
  parts: number,
): BlockHeader {
  const header: BlockHeader = {
    hash: block.hash,
    prev_hash: block.prev_hash,
    height: block.height,
    count: block.items.length,
    parts,
  };
  if (block.proof !== undefined) header.proof = block.proof;
  return header;
}
