/**
 * The node's one store: pool, ledger, indexes and peers in Deno KV. The key schema and the
 * reasons behind it are in docs/storage.md. Every change that must happen together is one
 * atomic commit, so a crash leaves either all of it or none.
 */
import { type Block, checkBlockShape, itemTx } from "../core/block.ts";
import { RunningBalances } from "../core/balances.ts";
import { commitWithRetry, delta, getAll } from "./kv.ts";
import { BODY_PART_ITEMS, MAX_BLOCK_ITEMS } from "../core/params.ts";
import type { PoolStats } from "../core/rules.ts";
import { type Item, type Tx, txId } from "../core/transaction.ts";

/** Where a transaction is: waiting in the pool, in a block, or dropped with a reason. */
export type TxRecord =
  | { state: "pool"; tx: Tx }
  | { state: "chain"; tx: Tx; height: number; index: number }
  | { state: "dropped"; tx: Tx; reason: string; at: number };

/** The chain's tip; height -1 and a null hash for an empty chain. */
export interface Tip {
  /** Height of the top block; -1 when the chain is empty. */
  height: number;
  /** Hash of the top block; null when the chain is empty. */
  hash: string | null;
}

/** What `addToPool` did with one transaction. */
export type AddOutcome =
  | { id: string; status: "added" }
  | { id: string; status: "known"; state: "pool" | "chain" };

/** A transaction the builder left out of a block, and why. */
export interface Dropped {
  /** The transaction left out. */
  tx: Tx;
  /** Why it was left out, e.g. the sender cannot pay. */
  reason: string;
}

/** The result of trying to append a block. */
export type AppendResult =
  | { ok: true; block: Block }
  | { ok: false; conflict: true; reason: string }
  | { ok: false; conflict: false; reason: string };

/** The result of trying to append a run of blocks (all or none). */
export type AppendBlocksResult =
  | { ok: true; blocks: Block[] }
  | { ok: false; conflict: boolean; reason: string };

interface BlockHeader {
  height: number;
  hash: string;
  prev_hash: string | null;
  count: number;
  parts: number;
}

/** What the builder or a peer last said about itself (shown by `status`). */
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
}

// The key schema (docs/storage.md). Short prefixes keep keys small; each has one job.
const K = {
  schema: ["meta", "schema"] as const,
  tip: ["tip"] as const,
  poolSize: ["poolsize"] as const,
  poolGen: ["poolgen"] as const,
  builder: ["meta", "builder"] as const,
  tx: (id: string) => ["tx", id],
  pool: (t: number, id: string) => ["pool", t, id],
  block: (h: number) => ["block", h],
  body: (h: number, part: number) => ["body", h, part],
  balance: (address: string) => ["bal", address],
  peer: (url: string) => ["peer", url],
};

const SCHEMA_VERSION = 1;
/** Transactions per pool commit: each needs one `check`, and an atomic allows 100. */
const POOL_BATCH = 100;
/** Most mutations one `appendBlocks` commit may make: Deno KV's limit per atomic. */
export const MAX_RUN_MUTATIONS = 1000;
/** Most bytes of keys and values (as JSON, close to KV's own count) one run may write; KV's
 * limit per atomic is 800 KiB, and this leaves room for its encoding overhead. */
export const MAX_RUN_BYTES = 600 * 1024;
/**
 * Most bytes of encoded keys one `appendBlocks` commit may write. KV refuses an atomic whose
 * written keys total more than 80 KiB ("Total key size too large (max 81920 bytes)"); this
 * leaves 4 KiB to spare. The largest possible block (MAX_BLOCK_ITEMS pool transactions between
 * distinct addresses) writes about 65,100 bytes of keys, so any one block fits.
 */
export const MAX_RUN_KEY_BYTES = 76 * 1024;
/** Peers per commit: 100 keys of at most ~520 bytes (URLs are capped at 512) stay under 80 KiB. */
const PEER_BATCH = 100;
/** Check conflicts tolerated before an operation gives up (each retry re-reads first). */
const CONFLICT_ATTEMPTS = 20;

const utf8 = new TextEncoder();

/**
 * The size of a key as KV encodes it (the FoundationDB tuple layout it uses): a string part is
 * a type byte, its UTF-8 bytes with each NUL doubled, and a terminator; a number part is a
 * type byte and 8 bytes. Other part types, which this store never writes, are overestimated.
 */
export function encodedKeySize(key: Deno.KvKey): number {
  let size = 0;
  for (const part of key) {
    if (typeof part === "string") {
      const bytes = utf8.encode(part);
      size += 2 + bytes.length + bytes.filter((b) => b === 0).length;
    } else if (typeof part === "number") size += 9;
    else if (part instanceof Uint8Array) size += 2 + 2 * part.length;
    else size += 2 + 2 * String(part).length;
  }
  return size;
}

interface Pending {
  tx: Tx;
  id: string;
  resolve: (outcome: AddOutcome) => void;
  reject: (error: unknown) => void;
}

/** Thrown when the KV file holds data this version cannot read. */
export class StoreError extends Error {}

/** Opens a store on a KV file (or `:memory:`); creates the schema on first use. */
export async function openStore(path: string): Promise<Store> {
  const kv = await Deno.openKv(path);
  const store = new Store(kv);
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
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;

  /** Wraps an open KV database; call `init` before use (`openStore` does both). */
  constructor(readonly kv: Deno.Kv) {}

  /** Writes the schema marker and an empty tip if the database is new. */
  async init(): Promise<void> {
    const schema = await this.kv.get<number>(K.schema);
    if (schema.value !== null && schema.value !== SCHEMA_VERSION) {
      throw new StoreError(
        `database has schema version ${schema.value}; this foxchain reads version ${SCHEMA_VERSION}`,
      );
    }
    if (schema.value === null) {
      await commitWithRetry(() =>
        this.kv.atomic()
          .check({ key: K.schema, versionstamp: null })
          .set(K.schema, SCHEMA_VERSION)
          .set(K.tip, { height: -1, hash: null } satisfies Tip)
          .commit()
      );
    }
  }

  /** Closes the database; waits for queued pool writes first. */
  async close(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    this.kv.close();
  }

  // ---- pool -------------------------------------------------------------------------------

  /**
   * Adds transactions to the pool and resolves once they are durably stored. A transaction
   * whose id is already in the pool or the chain is not added again (`known`); one that was
   * dropped earlier is admitted again. Concurrent callers share commits (group commit), so
   * many small merges cost few KV transactions.
   */
  addToPool(txs: readonly Tx[]): Promise<AddOutcome[]> {
    const results = txs.map((tx) =>
      new Promise<AddOutcome>((resolve, reject) => {
        this.#queue.push({ tx, id: txId(tx), resolve, reject });
      })
    );
    if (!this.#flushing) this.#flushing = this.#flush();
    return Promise.all(results);
  }

  async #flush(): Promise<void> {
    try {
      while (this.#queue.length > 0) {
        const batch = this.#queue.splice(0, POOL_BATCH);
        try {
          const outcomes = await this.#commitPoolBatch(batch);
          batch.forEach((p, i) => p.resolve(outcomes[i]));
        } catch (error) {
          batch.forEach((p) => p.reject(error));
        }
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #commitPoolBatch(batch: Pending[]): Promise<AddOutcome[]> {
    // What we know of each id after a failed check; undefined until then (assume new).
    let known = new Map<string, Deno.KvEntryMaybe<TxRecord>>();
    for (let attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
      const outcomes: AddOutcome[] = [];
      const seen = new Set<string>();
      const op = this.kv.atomic();
      let added = 0;
      for (const { tx, id } of batch) {
        const entry = known.get(id);
        const record = entry?.value;
        if (seen.has(id)) {
          outcomes.push({ id, status: "known", state: "pool" });
          continue;
        }
        if (record && record.state !== "dropped") {
          outcomes.push({ id, status: "known", state: record.state });
          continue;
        }
        seen.add(id);
        added++;
        outcomes.push({ id, status: "added" });
        op.check({ key: K.tx(id), versionstamp: entry?.versionstamp ?? null })
          .set(K.tx(id), { state: "pool", tx } satisfies TxRecord)
          .set(K.pool(tx.t, id), tx);
      }
      if (added === 0) return outcomes;
      op.sum(K.poolSize, delta(added)).sum(K.poolGen, 1n);
      const result = await commitWithRetry(() => op.commit());
      if (result.ok) return outcomes;
      const entries = await getAll<TxRecord>(this.kv, batch.map((p) => K.tx(p.id)));
      known = new Map(entries.map((e, i) => [batch[i].id, e]));
    }
    throw new Error("pool write kept conflicting with other writers; try again");
  }

  /** Pool size and earliest/latest `t`: one counter read and two one-key range reads. */
  async poolStats(): Promise<PoolStats> {
    const [size, first, last] = await Promise.all([
      this.kv.get<Deno.KvU64>(K.poolSize),
      this.#poolEdge(false),
      this.#poolEdge(true),
    ]);
    return {
      size: Number(size.value?.value ?? 0n),
      earliest: first?.t ?? null,
      latest: last?.t ?? null,
    };
  }

  async #poolEdge(reverse: boolean): Promise<Tx | null> {
    for await (const entry of this.kv.list<Tx>({ prefix: ["pool"] }, { limit: 1, reverse })) {
      return entry.value;
    }
    return null;
  }

  /**
   * Pool transactions in `t` order, at most `limit`, starting after the `cursor` a previous
   * call returned (null when there is nothing more).
   */
  async poolPage(
    limit: number,
    cursor?: string,
  ): Promise<{ txs: Tx[]; cursor: string | null }> {
    const iter = this.kv.list<Tx>({ prefix: ["pool"] }, {
      limit,
      cursor,
      batchSize: Math.min(limit, 500),
    });
    const txs: Tx[] = [];
    for await (const entry of iter) txs.push(entry.value);
    return { txs, cursor: txs.length === limit && iter.cursor ? iter.cursor : null };
  }

  // ---- chain ------------------------------------------------------------------------------

  /** The tip, with the versionstamp every chain change checks. */
  async tipEntry(): Promise<{ tip: Tip; versionstamp: string }> {
    const entry = await this.kv.get<Tip>(K.tip);
    if (entry.value === null) throw new StoreError("database has no tip; was it initialised?");
    return { tip: entry.value, versionstamp: entry.versionstamp };
  }

  /** The tip: height -1 for an empty chain. */
  async tip(): Promise<Tip> {
    return (await this.tipEntry()).tip;
  }

  /** The block at a height, or null. */
  async block(height: number): Promise<Block | null> {
    const header = await this.kv.get<BlockHeader>(K.block(height));
    return header.value ? await this.#readBody(header.value) : null;
  }

  async #readBody(header: BlockHeader): Promise<Block> {
    const keys = Array.from({ length: header.parts }, (_, p) => K.body(header.height, p));
    const parts = await getAll<Item[]>(this.kv, keys);
    const items = parts.flatMap((p) => p.value ?? []);
    return { items, prev_hash: header.prev_hash, height: header.height, hash: header.hash };
  }

  /**
   * Blocks from `start` in height order, until `maxItems` items are collected (at least one
   * block is returned when there is one) or `maxBlocks` blocks.
   */
  async blocks(start: number, maxBlocks: number, maxItems: number): Promise<Block[]> {
    const out: Block[] = [];
    let items = 0;
    const iter = this.kv.list<BlockHeader>({ start: K.block(start), end: ["block", Infinity] }, {
      limit: maxBlocks,
      batchSize: Math.min(maxBlocks, 100),
    });
    for await (const entry of iter) {
      if (out.length > 0 && items + entry.value.count > maxItems) break;
      out.push(await this.#readBody(entry.value));
      items += entry.value.count;
    }
    return out;
  }

  /** Balance of an address (0 if it never received anything). O(1) in the chain length. */
  async balance(address: string): Promise<number> {
    return (await this.kv.get<number>(K.balance(address))).value ?? 0;
  }

  /** Balances of many addresses at once. */
  async balances(addresses: readonly string[]): Promise<Map<string, number>> {
    const entries = await getAll<number>(this.kv, addresses.map(K.balance));
    return new Map(addresses.map((a, i) => [a, entries[i].value ?? 0]));
  }

  /** Where a transaction is, by id, or null if this node never saw it. */
  async lookupTx(id: string): Promise<TxRecord | null> {
    return (await this.kv.get<TxRecord>(K.tx(id))).value;
  }

  /**
   * Validates a block against the current state and appends it, in one atomic commit with
   * everything that depends on it: tip, balances, transaction index, removal of its
   * transactions (and of `dropped` ones, recorded with their reasons) from the pool. Blocks
   * built here and blocks received from peers both come through this method.
   *
   * `conflict: true` means the state changed while we worked (another builder, a concurrent
   * merge of the same transaction): re-read and try again. `conflict: false` means the block
   * itself is invalid on top of this chain.
   */
  async appendBlock(block: Block, dropped: readonly Dropped[] = []): Promise<AppendResult> {
    const result = await this.#appendRun([{ block, dropped }]);
    return result.ok ? { ok: true, block } : result;
  }

  /**
   * Appends consecutive blocks in one atomic commit: each is validated exactly as
   * `appendBlock` validates one, on top of the blocks before it in the run, and either all of
   * them are appended or none. This is what syncing from a peer wants (and what generates long
   * chains for the benchmark). The run must fit one KV commit: at most MAX_RUN_MUTATIONS
   * mutations, MAX_RUN_BYTES of values and MAX_RUN_KEY_BYTES of keys (a block of one
   * transaction takes about five mutations; a transaction's keys take about 230 bytes); a
   * larger run is refused whole with `conflict: false`. Reasons name the block.
   */
  async appendBlocks(blocks: readonly Block[]): Promise<AppendBlocksResult> {
    if (blocks.length === 0) return { ok: true, blocks: [] };
    const result = await this.#appendRun(blocks.map((block) => ({ block, dropped: [] })));
    return result.ok ? { ok: true, blocks: [...blocks] } : result;
  }

  async #appendRun(
    run: readonly { block: Block; dropped: readonly Dropped[] }[],
  ): Promise<{ ok: true } | { ok: false; conflict: boolean; reason: string }> {
    // A lone block keeps appendBlock's reasons word for word; in a run they name the block.
    const named = (block: Block, reason: string) =>
      run.length === 1 ? reason : `block ${block.height}: ${reason}`;
    const invalid = (reason: string) => ({ ok: false as const, conflict: false, reason });
    const idsOf: string[][] = [];
    for (const { block, dropped } of run) {
      if (block.items.length + dropped.length > MAX_BLOCK_ITEMS) {
        return invalid(named(
          block,
          `block considers ${
            block.items.length + dropped.length
          } transactions, max ${MAX_BLOCK_ITEMS}`,
        ));
      }
      const ids: string[] = [];
      const shape = checkBlockShape(block, ids);
      if (shape) return invalid(named(block, shape));
      idsOf.push(ids);
    }

    const [{ tip, versionstamp }, poolGen] = await Promise.all([
      this.tipEntry(),
      this.kv.get(K.poolGen),
    ]);
    let below: Tip = tip;
    for (const { block } of run) {
      if (block.height !== below.height + 1) {
        return invalid(named(
          block,
          `block height ${block.height} does not follow tip height ${below.height}`,
        ));
      }
      if (block.prev_hash !== below.hash) {
        return invalid(
          named(block, `block prev_hash ${block.prev_hash} is not the tip hash ${below.hash}`),
        );
      }
      below = { height: block.height, hash: block.hash };
    }

    const txsOf = run.map(({ block }) => block.items.map(itemTx));
    const droppedIdsOf = run.map(({ dropped }) => dropped.map((d) => txId(d.tx)));
    const everyId = [...idsOf.flat(), ...droppedIdsOf.flat()];
    if (new Set(everyId).size !== everyId.length) {
      for (let b = 0; b < run.length; b++) {
        const own = [...idsOf[b], ...droppedIdsOf[b]];
        if (new Set(own).size !== own.length) {
          return invalid(named(run[b].block, "block holds the same transaction twice"));
        }
      }
      return invalid("two blocks of the run hold the same transaction");
    }
    const records = await getAll<TxRecord>(this.kv, everyId.map(K.tx));
    const recordOf = new Map(everyId.map((id, i) => [id, records[i].value]));
    const addresses = [...new Set(txsOf.flat().flatMap((tx) => [tx.sender, tx.receiver]))];
    const base = await this.balances(addresses);
    const balances = new RunningBalances((a) => base.get(a) ?? 0);

    const op = this.kv.atomic().check({ key: K.tip, versionstamp });
    let mutations = 0;
    let bytes = 0;
    // KV counts only the keys of sets and sums against its 80 KiB; deletes count here too, to
    // stay on the safe side (a maximal block still fits, see MAX_RUN_KEY_BYTES).
    let keyBytes = 0;
    const set = (key: Deno.KvKey, value: unknown) => {
      op.set(key, value);
      mutations++;
      bytes += JSON.stringify(key).length + (JSON.stringify(value)?.length ?? 0);
      keyBytes += encodedKeySize(key);
    };
    const remove = (key: Deno.KvKey) => {
      op.delete(key);
      mutations++;
      keyBytes += encodedKeySize(key);
    };
    let leavingPool = 0;
    let unknown = false;
    const now = Date.now() / 1000;
    for (let b = 0; b < run.length; b++) {
      const { block, dropped } = run[b];
      const txs = txsOf[b];
      const ids = idsOf[b];
      for (let i = 0; i < txs.length; i++) {
        const record = recordOf.get(ids[i]);
        if (record?.state === "chain") {
          return invalid(named(
            block,
            `item ${i}: transaction ${ids[i]} is already in block ${record.height}`,
          ));
        }
        const bad = balances.apply(txs[i]);
        if (bad) return invalid(named(block, `item ${i}: ${bad}`));
        if (record?.state === "pool") {
          remove(K.pool(txs[i].t, ids[i]));
          leavingPool++;
        } else {
          unknown = true; // not in our pool: a merge of it could race us, see below
        }
        set(
          K.tx(ids[i]),
          {
            state: "chain",
            tx: txs[i],
            height: block.height,
            index: i,
          } satisfies TxRecord,
        );
      }
      for (let j = 0; j < dropped.length; j++) {
        const id = droppedIdsOf[b][j];
        if (recordOf.get(id)?.state !== "pool") {
          return { ok: false, conflict: true, reason: "pool changed" };
        }
        const { tx, reason } = dropped[j];
        remove(K.pool(tx.t, id));
        set(K.tx(id), { state: "dropped", tx, reason, at: now } satisfies TxRecord);
        leavingPool++;
      }
      const parts = Math.ceil(block.items.length / BODY_PART_ITEMS);
      for (let p = 0; p < parts; p++) {
        set(
          K.body(block.height, p),
          block.items.slice(p * BODY_PART_ITEMS, (p + 1) * BODY_PART_ITEMS),
        );
      }
      set(
        K.block(block.height),
        {
          height: block.height,
          hash: block.hash,
          prev_hash: block.prev_hash,
          count: block.items.length,
          parts,
        } satisfies BlockHeader,
      );
    }
    // A transaction we did not have in the pool could be merged between our read and our
    // commit, leaving a pool entry for a transaction in the chain. Every pool commit bumps
    // poolGen, so checking it rules that out (only blocks from peers ever need this).
    if (unknown) op.check({ key: K.poolGen, versionstamp: poolGen.versionstamp });
    for (const [address, value] of balances.changed) set(K.balance(address), value);
    const last = run[run.length - 1].block;
    set(K.tip, { height: last.height, hash: last.hash } satisfies Tip);
    if (leavingPool > 0) {
      op.sum(K.poolSize, delta(-leavingPool));
      mutations++;
      keyBytes += encodedKeySize(K.poolSize);
    }
    // Checked before committing so that a run too large is refused, never half-tried.
    if (mutations > MAX_RUN_MUTATIONS || bytes > MAX_RUN_BYTES) {
      return invalid(
        `run of ${run.length} blocks needs ${mutations} mutations and about ${bytes} bytes; ` +
          `one commit takes at most ${MAX_RUN_MUTATIONS} and ${MAX_RUN_BYTES}`,
      );
    }
    if (keyBytes > MAX_RUN_KEY_BYTES) {
      return invalid(
        `run of ${run.length} blocks writes ${keyBytes} bytes of keys; ` +
          `one commit takes at most ${MAX_RUN_KEY_BYTES}`,
      );
    }
    const result = await commitWithRetry(() => op.commit());
    if (!result.ok) return { ok: false, conflict: true, reason: "chain or pool changed meanwhile" };
    return { ok: true };
  }

  /**
   * Records pool transactions as dropped without making a block (every candidate failed).
   * Checks and rewrites the tip so that two builders cannot drop the same transaction twice.
   */
  async dropFromPool(dropped: readonly Dropped[]): Promise<boolean> {
    const { tip, versionstamp } = await this.tipEntry();
    const ids = dropped.map((d) => txId(d.tx));
    const records = await getAll<TxRecord>(this.kv, ids.map(K.tx));
    if (records.some((r) => r.value?.state !== "pool")) return false;
    const op = this.kv.atomic().check({ key: K.tip, versionstamp }).set(K.tip, tip);
    const now = Date.now() / 1000;
    dropped.forEach(({ tx, reason }, i) => {
      op.delete(K.pool(tx.t, ids[i]))
        .set(K.tx(ids[i]), { state: "dropped", tx, reason, at: now } satisfies TxRecord);
    });
    op.sum(K.poolSize, delta(-dropped.length));
    return (await commitWithRetry(() => op.commit())).ok;
  }

  /**
   * Undoes the tip block in one atomic step: its balances restored, its transactions back in
   * the pool, indexes and tip updated. The building block of switching to a longer chain.
   * Returns the removed block, or null for an empty chain.
   */
  async undoTip(): Promise<Block | null> {
    for (let attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
      const { tip, versionstamp } = await this.tipEntry();
      if (tip.height < 0) return null;
      const [block, below] = await Promise.all([
        this.block(tip.height),
        tip.height > 0 ? this.kv.get<BlockHeader>(K.block(tip.height - 1)) : null,
      ]);
      if (!block) throw new StoreError(`tip block ${tip.height} is missing`);
      const txs = block.items.map(itemTx);
      const addresses = [...new Set(txs.flatMap((tx) => [tx.sender, tx.receiver]))];
      const balances = await this.balances(addresses);
      const op = this.kv.atomic().check({ key: K.tip, versionstamp });
      for (const tx of txs) {
        balances.set(tx.sender, balances.get(tx.sender)! + tx.amount);
        balances.set(tx.receiver, balances.get(tx.receiver)! - tx.amount);
        const id = txId(tx);
        op.set(K.tx(id), { state: "pool", tx } satisfies TxRecord).set(K.pool(tx.t, id), tx);
      }
      for (const [address, value] of balances) {
        if (value === 0) op.delete(K.balance(address));
        else op.set(K.balance(address), value);
      }
      const parts = Math.ceil(block.items.length / BODY_PART_ITEMS);
      for (let p = 0; p < parts; p++) op.delete(K.body(block.height, p));
      op.delete(K.block(block.height))
        .set(K.tip, { height: tip.height - 1, hash: below?.value?.hash ?? null } satisfies Tip)
        .sum(K.poolSize, delta(txs.length))
        .sum(K.poolGen, 1n);
      if ((await commitWithRetry(() => op.commit())).ok) return block;
    }
    throw new Error("undo kept conflicting with other writers; try again");
  }

  // ---- peers and node info ----------------------------------------------------------------

  /**
   * Remembers peer URLs; returns how many were new. They are committed PEER_BATCH at a time,
   * since one atomic's keys may total at most 80 KiB: a crash part-way keeps the batches
   * already written, which is harmless for a list of peers.
   */
  async addPeers(urls: readonly string[]): Promise<number> {
    const existing = await getAll(this.kv, urls.map(K.peer));
    const fresh = [...new Set(urls.filter((_, i) => existing[i].value === null))];
    for (let i = 0; i < fresh.length; i += PEER_BATCH) {
      const op = this.kv.atomic();
      const added = Date.now() / 1000;
      for (const url of fresh.slice(i, i + PEER_BATCH)) op.set(K.peer(url), { added });
      await commitWithRetry(() => op.commit());
    }
    return fresh.length;
  }

  /** All known peer URLs, sorted. */
  async peers(): Promise<string[]> {
    const out: string[] = [];
    for await (const entry of this.kv.list({ prefix: ["peer"] })) out.push(entry.key[1] as string);
    return out;
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

  /**
   * Every block from height 0 up, in order, read in batches. The next block's body is read
   * while the caller works on this one, so a walk's KV reads overlap its validation.
   */
  async *allBlocks(): AsyncGenerator<Block> {
    let ahead: Promise<Block> | null = null;
    for await (
      const entry of this.kv.list<BlockHeader>({ prefix: ["block"] }, { batchSize: 500 })
    ) {
      const reading = this.#readBody(entry.value);
      // Awaited below; this only keeps a walk that stops early from leaving it unhandled.
      reading.catch(() => {});
      if (ahead) yield await ahead;
      ahead = reading;
    }
    if (ahead) yield await ahead;
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
