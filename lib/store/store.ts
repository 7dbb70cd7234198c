/**
 * The node's one store: pool, ledger, indexes and peers in one Deno KV database. A facade over
 * the modules that each own one part: `Pool` (lib/store/pool.ts), `Chain` (the block tree,
 * fork choice and reorgs, lib/store/chain.ts) and `Peers`. The key schema and the reasons
 * behind it are in docs/storage.md.
 */
import type { Block, WireBlock } from "../core/block.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import type { PoolStats } from "../core/rules.ts";
import type { Tx } from "../core/transaction.ts";
import { type ChainRules, DEFAULT_CHAIN_RULES } from "../consensus/rules.ts";
import { type AcceptResult, type AppendResult, Chain, type Dropped } from "./chain.ts";
import { readBalances, readRecords } from "./branch_state.ts";
import { commitWithRetry } from "./kv.ts";
import { Peers } from "./peers.ts";
import { type AddOutcome, Pool } from "./pool.ts";
import { type MergeRequestEntry, MergeRequests } from "./requests.ts";
import {
  type BuilderInfo,
  K,
  type MergeRequest,
  SCHEMA_VERSION,
  type StoredTip,
  type Tip,
  type TxRecord,
} from "./schema.ts";

export type {
  AcceptResult,
  AddOutcome,
  AppendResult,
  BuilderInfo,
  Dropped,
  MergeRequest,
  StoredTip,
  Tip,
  TxRecord,
};

export type { MergeRequestEntry } from "./requests.ts";

/** The result of trying to append a run of blocks (all or none). */
export type AppendBlocksResult =
  | { ok: true; blocks: Block[] }
  | { ok: false; conflict: boolean; reason: string };

/** Thrown when the KV file holds data this version cannot read. */
export class StoreError extends Error {}

/** Options of a store. */
export interface StoreOptions {
  /** The network's consensus rules every block is validated under (default: the defaults). */
  rules?: ChainRules;
  /** The receiver's clock, for block times (default: the system clock). */
  clock?: Clock;
}

/**
 * Opens a store on a KV file (or `:memory:`); creates the schema on first use, and finishes a
 * reorg that a crash interrupted.
 */
export async function openStore(path: string, opts: StoreOptions = {}): Promise<Store> {
  // Deno KV is unstable in Deno 2: without the flag (or deno.json's "unstable"), openKv is
  // missing, and the plain TypeError would not say why.
  if (typeof Deno.openKv !== "function") {
    throw new StoreError("Deno KV is not enabled: run deno with --unstable-kv");
  }
  const kv = await Deno.openKv(path);
  const store = new Store(kv, opts);
  try {
    await store.init();
  } catch (error) {
    kv.close();
    throw error;
  }
  return store;
}

/** Pool, ledger, indexes and peers on one Deno KV database. */
export class Store {
  readonly #pool: Pool;
  readonly #chain: Chain;
  readonly #peers: Peers;
  readonly #requests: MergeRequests;

  /** Wraps an open KV database; call `init` before use (`openStore` does both). */
  constructor(readonly kv: Deno.Kv, opts: StoreOptions = {}) {
    this.#chain = new Chain(kv, opts.rules ?? DEFAULT_CHAIN_RULES, opts.clock ?? systemClock);
    this.#pool = new Pool(kv, () => this.#chain.gate());
    this.#peers = new Peers(kv);
    this.#requests = new MergeRequests(kv);
  }

  /** The consensus rules this store validates blocks under. */
  get rules(): ChainRules {
    return this.#chain.rules;
  }

  /**
   * Writes the schema marker and an empty tip if the database is new; refuses another schema
   * version; finishes an interrupted reorg.
   */
  async init(): Promise<void> {
    const schema = await this.kv.get<number>(K.schema);
    if (schema.value !== null && schema.value !== SCHEMA_VERSION) {
      throw new StoreError(
        `database has schema version ${schema.value}; this foxchain reads version ` +
          `${SCHEMA_VERSION} (blocks stored by hash, with proof-of-write evidence) and cannot ` +
          `open it: start a new database (docs/storage.md, "Schema versions")`,
      );
    }
    if (schema.value === null) {
      await commitWithRetry(() =>
        this.kv.atomic()
          .check({ key: K.schema, versionstamp: null })
          .set(K.schema, SCHEMA_VERSION)
          .set(K.tip, { height: -1, hash: null, time: null } satisfies StoredTip)
          .commit()
      );
    }
    await this.#chain.recover();
  }

  /** Closes the database; waits for queued pool writes first. */
  async close(): Promise<void> {
    await this.#pool.drain();
    this.kv.close();
  }

  /** Resolves when no reorg is switching branches (readers wait, so none sees half a switch). */
  async idle(): Promise<void> {
    for (let gate = this.#chain.gate(); gate; gate = this.#chain.gate()) await gate;
  }

  /**
   * Calls `listener` after every change this process makes that can move the tip (see
   * `Chain.onTipChange`): built blocks, `merge {blocks}`, reorgs. Returns its removal.
   */
  onTipChange(listener: () => void): () => void {
    return this.#chain.onTipChange(listener);
  }

  // ---- pool -------------------------------------------------------------------------------

  /**
   * Adds transactions to the pool and resolves once they are durably stored. A transaction
   * whose id is already in the pool or the chain is not added again (`known`); one that was
   * dropped earlier is admitted again. Concurrent callers share commits (group commit).
   */
  addToPool(txs: readonly Tx[]): Promise<AddOutcome[]> {
    return this.#pool.add(txs);
  }

  /** Pool size and earliest/latest `t`: one counter read and two one-key range reads. */
  poolStats(): Promise<PoolStats> {
    return this.#pool.stats();
  }

  /** Pool transactions in (t, id) order, `limit` at a time from a `cursor` (see `Pool.page`). */
  poolPage(limit: number, cursor?: string): Promise<{ txs: Tx[]; cursor: string | null }> {
    return this.#pool.page(limit, cursor);
  }

  // ---- keyed merges (request_id) ----------------------------------------------------------

  /** The record of the keyed merge `id`, if one is kept (see lib/store/requests.ts). */
  mergeRequest(id: string, nowSeconds: number): Promise<MergeRequestEntry> {
    return this.#requests.get(id, nowSeconds);
  }

  /**
   * Records a new keyed merge before any of its items is stored; false when another record of
   * `id` appeared since `previous` (its versionstamp as read, null for none) was read.
   */
  beginMergeRequest(id: string, request: MergeRequest, previous: string | null): Promise<boolean> {
    return this.#requests.begin(id, request, previous);
  }

  /** Rewrites a keyed merge's record (stamps drawn again, or the merge finished). */
  updateMergeRequest(id: string, request: MergeRequest): Promise<void> {
    return this.#requests.update(id, request);
  }

  // ---- chain ------------------------------------------------------------------------------

  /** The tip as stored (with `switching` during a reorg) and its versionstamp. */
  tipEntry(): Promise<{ tip: StoredTip; versionstamp: string }> {
    return this.#chain.tipEntry();
  }

  /** The tip: height -1 for an empty chain. */
  tip(): Promise<Tip> {
    return this.#chain.tip();
  }

  /** The best chain's block at a height, or null. */
  block(height: number): Promise<Block | null> {
    return this.#chain.block(height);
  }

  /** A stored block by hash, on any branch, or null. */
  blockByHash(hash: string): Promise<Block | null> {
    return this.#chain.blockByHash(hash);
  }

  /** Best-chain blocks from `start`, at most `maxBlocks` or about `maxItems` items. */
  blocks(start: number, maxBlocks: number, maxItems: number): Promise<Block[]> {
    return this.#chain.blocks(start, maxBlocks, maxItems);
  }

  /**
   * The fork point of a block locator: the height of its first hash that is on this node's
   * best chain, or -1 when none is (the chains share nothing, or the list is empty).
   */
  async forkPoint(locator: readonly string[]): Promise<number> {
    for (const hash of locator) {
      const header = await this.#chain.header(hash);
      if (header && (await this.#chain.mainHeader(header.height))?.hash === hash) {
        return header.height;
      }
    }
    return -1;
  }

  /**
   * A block locator of the best chain: the hashes of the last 10 blocks, then of blocks
   * exponentially further back, then of block 0 (bitcoin's `GetLocator`): about 2 log2(height)
   * hashes whatever the length, and any fork point is found within a factor of two.
   */
  async locator(): Promise<string[]> {
    const { height } = await this.tip();
    const heights: number[] = [];
    let step = 1;
    for (let h = height; h > 0 && heights.length < 64; h -= step) {
      heights.push(h);
      if (heights.length >= 10) step *= 2;
    }
    if (height >= 0) heights.push(0);
    const headers = await Promise.all(heights.map((h) => this.#chain.mainHeader(h)));
    return headers.flatMap((h) => h ? [h.hash] : []);
  }

  /** Balance of an address (0 if it never received anything). O(1) in the chain length. */
  async balance(address: string): Promise<number> {
    return (await this.kv.get<number>(K.balance(address))).value ?? 0;
  }

  /** Balances of many addresses at once. */
  balances(addresses: readonly string[]): Promise<Map<string, number>> {
    return readBalances(this.kv, addresses);
  }

  /** Where each of many transactions is, by id (null for unknown ids). */
  async lookupTxs(ids: readonly string[]): Promise<(TxRecord | null)[]> {
    const records = await readRecords(this.kv, ids);
    return ids.map((id) => records.get(id) ?? null);
  }

  /** Where a transaction is, by id, or null if this node never saw it. */
  async lookupTx(id: string): Promise<TxRecord | null> {
    return (await this.kv.get<TxRecord>(K.tx(id))).value;
  }

  /**
   * Validates a block that extends the tip (the builder's) and appends it in one atomic commit
   * with everything that depends on it, recording `dropped` pool transactions with their
   * reasons. `conflict: true`: the chain or pool changed meanwhile; re-read and try again.
   */
  async appendBlock(
    block: Block,
    dropped: readonly Dropped[] = [],
  ): Promise<AppendResult & { block?: Block }> {
    const result = await this.#chain.append([{ block, dropped }]);
    return result.ok ? { ok: true, block } : result;
  }

  /**
   * Appends consecutive blocks that extend the tip in one atomic commit, each validated as
   * `appendBlock` validates one; all or none. The run must fit one KV commit (docs/storage.md);
   * a larger run is refused whole with `tooLarge: true` (split it). Reasons name the block.
   */
  async appendBlocks(blocks: readonly Block[]): Promise<AppendBlocksResult> {
    if (blocks.length === 0) return { ok: true, blocks: [] };
    const result = await this.#chain.append(blocks.map((block) => ({ block, dropped: [] })));
    return result.ok ? { ok: true, blocks: [...blocks] } : result;
  }

  /**
   * Takes a block from a peer or a client: stored in the block tree, made the tip (switching
   * branches if fork choice says so), kept on a side branch, or refused with the reason.
   */
  acceptBlock(block: WireBlock): Promise<AcceptResult> {
    return this.#chain.accept(block);
  }

  /** Records pool transactions as dropped without making a block (every candidate failed). */
  dropFromPool(dropped: readonly Dropped[]): Promise<boolean> {
    return this.#chain.dropFromPool(dropped);
  }

  // ---- peers and node info ----------------------------------------------------------------

  /** Remembers peer URLs while fewer than `cap` are known; returns how many were new. */
  addPeers(urls: readonly string[], cap = Infinity): Promise<number> {
    return this.#peers.add(urls, cap);
  }

  /** All known peer URLs, sorted. */
  peers(): Promise<string[]> {
    return this.#peers.list();
  }

  /** Records what the running builder does, for `status`. */
  async setBuilderInfo(info: BuilderInfo): Promise<void> {
    await commitWithRetry(() => this.kv.set(K.builder, info));
  }

  /** What the builder last recorded, or null if none ever ran on this database. */
  async builderInfo(): Promise<BuilderInfo | null> {
    return (await this.kv.get<BuilderInfo>(K.builder)).value;
  }

  // ---- whole-store walks (verify, audit) -------------------------------------------------

  /** Every best-chain block from height 0 up, in order. */
  allBlocks(): AsyncGenerator<Block> {
    return this.#chain.allBlocks();
  }

  /** Every stored balance. */
  async *allBalances(): AsyncGenerator<[string, number]> {
    for await (const entry of this.kv.list<number>({ prefix: ["bal"] }, { batchSize: 1000 })) {
      yield [entry.key[1] as string, entry.value];
    }
  }

  /** Every transaction record, with its id. */
  async *allTxRecords(): AsyncGenerator<[string, TxRecord]> {
    for await (const entry of this.kv.list<TxRecord>({ prefix: ["tx"] }, { batchSize: 1000 })) {
      yield [entry.key[1] as string, entry.value];
    }
  }

  /** Every pool entry, with the id from its key. */
  async *allPoolEntries(): AsyncGenerator<[string, Tx]> {
    for await (const entry of this.kv.list<Tx>({ prefix: ["pool"] }, { batchSize: 1000 })) {
      yield [entry.key[2] as string, entry.value];
    }
  }
}
