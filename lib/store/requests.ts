/**
 * Merge requests by idempotency key (`request_id` in a merge's args): what the node needs to
 * answer a retried merge with the first one's result, or to complete it when the first was
 * cut short. One record per key under `K.request(id)` (lib/store/schema.ts), kept
 * REQUEST_RETENTION_SECONDS. docs/decisions.md ("Retrying a merge") says why it is built this
 * way.
 */
import { CommitBudget } from "./kv.ts";
import { K, type MergeRequest } from "./schema.ts";

export type { MergeRequest };

/** How long a merge request's record is kept, and so how long a retry is recognised. */
export const REQUEST_RETENTION_SECONDS = 24 * 60 * 60;

/**
 * Most stamps a keyed merge may draw again (each a clash with a transfer another process
 * stamped in the same microsecond, so in practice a handful): it bounds the record well under
 * KV's 64 KiB per value (about 12 bytes an entry, plus 1,250 bytes of `known` bits).
 */
export const MAX_RESTAMPED = 2_000;

/** A record as read, with the versionstamp a write checks (null: no key at all). */
export interface MergeRequestEntry {
  /** The record; null when there is none, or it is older than the retention. */
  request: MergeRequest | null;
  /** The key's KV versionstamp, null when there is no key. */
  versionstamp: string | null;
}

/** The records of keyed merge requests in a KV database. */
export class MergeRequests {
  /** Records in `kv`. */
  constructor(readonly kv: Deno.Kv) {}

  /** The record of `id`, if there is one within the retention. */
  async get(id: string, nowSeconds: number): Promise<MergeRequestEntry> {
    const entry = await this.kv.get<MergeRequest>(K.request(id));
    // KV deletes expired keys lazily; the record's own time is what counts.
    const stale = entry.value !== null && entry.value.at < nowSeconds - REQUEST_RETENTION_SECONDS;
    return { request: stale ? null : entry.value, versionstamp: entry.versionstamp };
  }

  /**
   * Writes the record of a new request, before any of its items is stored, unless another
   * record of `id` appeared meanwhile (`previous` is the versionstamp read, null for none).
   * Returns false then: the caller re-reads it.
   */
  async begin(id: string, request: MergeRequest, previous: string | null): Promise<boolean> {
    return (await this.#write(id, request, previous)).ok;
  }

  /** Rewrites the record (stamps drawn again, or the merge finished). Last write wins. */
  async update(id: string, request: MergeRequest): Promise<void> {
    await this.#write(id, request, undefined);
  }

  #write(
    id: string,
    request: MergeRequest,
    previous: string | null | undefined,
  ): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    if (Object.keys(request.restamped).length > MAX_RESTAMPED) {
      throw new Error(
        `merge ${id} clashed with other stamps more than ${MAX_RESTAMPED} times; not recorded`,
      );
    }
    const expireIn = Math.max(
      1000,
      Math.ceil((request.at + REQUEST_RETENTION_SECONDS) * 1000 - Date.now()),
    );
    const budget = new CommitBudget(this.kv);
    if (previous !== undefined) budget.check(K.request(id), previous);
    budget.set(K.request(id), request, { expireIn });
    // One key of at most 134 bytes and one bounded value: always within one commit.
    return budget.commit();
  }
}
