/**
 * The pool in Deno KV: adds with group commit, statistics without a scan, pages in (t, id)
 * order. A transaction's record (`["tx", id]`) and its pool entry are written together.
 */
import type { PoolStats } from "../core/rules.ts";
import { type Tx, txId } from "../core/transaction.ts";
import { BadCursor, isPoolCursor } from "./cursor.ts";
import { commitWithRetry, delta, getAll } from "./kv.ts";
import { K, type TxRecord } from "./schema.ts";

/** What `addToPool` did with one transaction. */
export type AddOutcome =
  | { id: string; status: "added" }
  | { id: string; status: "known"; state: "pool" | "chain" };

interface Pending {
  tx: Tx;
  id: string;
  resolve: (outcome: AddOutcome) => void;
  reject: (error: unknown) => void;
}

/** Transactions per pool commit: each needs one `check`, and an atomic allows 100. */
const POOL_BATCH = 100;
/** Check conflicts tolerated before a pool write gives up (each retry re-reads first). */
const CONFLICT_ATTEMPTS = 20;

/** The pool of one store. */
export class Pool {
  #queue: Pending[] = [];
  #flushing: Promise<void> | null = null;

  /**
   * A pool on `kv`. `gate` returns a promise while the chain is being switched: pool writes
   * wait for it, so no merge commits against a half-switched chain.
   */
  constructor(readonly kv: Deno.Kv, private readonly gate: () => Promise<void> | null) {}

  /**
   * Adds transactions and resolves once they are durably stored. A transaction whose id is
   * already in the pool or the chain is not added again (`known`); one that was dropped is
   * admitted again. Concurrent callers share commits (group commit).
   */
  add(txs: readonly Tx[]): Promise<AddOutcome[]> {
    if (txs.length === 0) return Promise.resolve([]);
    const results = txs.map((tx) =>
      new Promise<AddOutcome>((resolve, reject) => {
        this.#queue.push({ tx, id: txId(tx), resolve, reject });
      })
    );
    this.#flushing ??= this.#flush();
    return Promise.all(results);
  }

  /** Resolves once every queued add has been committed (or failed). */
  async drain(): Promise<void> {
    while (this.#flushing) await this.#flushing;
  }

  async #flush(): Promise<void> {
    // Start after the caller's turn, so `#flushing` is set before the loop can clear it.
    await Promise.resolve();
    try {
      while (this.#queue.length > 0) {
        const gate = this.gate();
        if (gate) await gate;
        const batch = this.#queue.splice(0, POOL_BATCH);
        try {
          const outcomes = await this.#commitBatch(batch);
          batch.forEach((p, i) => p.resolve(outcomes[i]));
        } catch (error) {
          batch.forEach((p) => p.reject(error));
        }
      }
    } finally {
      this.#flushing = null;
    }
  }

  async #commitBatch(batch: Pending[]): Promise<AddOutcome[]> {
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
  async stats(): Promise<PoolStats> {
    const [size, first, last] = await Promise.all([
      this.kv.get<Deno.KvU64>(K.poolSize),
      this.#edge(false),
      this.#edge(true),
    ]);
    return {
      size: Number(size.value?.value ?? 0n),
      earliest: first?.t ?? null,
      latest: last?.t ?? null,
    };
  }

  async #edge(reverse: boolean): Promise<Tx | null> {
    for await (const entry of this.kv.list<Tx>({ prefix: ["pool"] }, { limit: 1, reverse })) {
      return entry.value;
    }
    return null;
  }

  /**
   * Pool transactions in (t, id) order, at most `limit`, starting after the `cursor` a previous
   * call returned (null when there is nothing more). Throws BadCursor for a cursor no page gave.
   */
  async page(limit: number, cursor?: string): Promise<{ txs: Tx[]; cursor: string | null }> {
    if (cursor !== undefined && !isPoolCursor(cursor)) throw new BadCursor();
    const iter = this.kv.list<Tx>({ prefix: ["pool"] }, {
      limit,
      cursor,
      batchSize: Math.min(limit, 500),
    });
    const txs: Tx[] = [];
    for await (const entry of iter) txs.push(entry.value);
    return { txs, cursor: txs.length === limit && iter.cursor ? iter.cursor : null };
  }
}
