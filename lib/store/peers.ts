/**
 * Known peer URLs in Deno KV, with a cap that holds under concurrency: a counter key is checked
 * and summed in the same commit as the URLs it counts.
 */
import { commitWithRetry, getAll } from "./kv.ts";
import { K } from "./schema.ts";

/** Peers per commit: 100 keys of at most ~520 bytes (URLs are capped at 512) stay under 80 KiB. */
const PEER_BATCH = 100;
/** Check conflicts tolerated before an add gives up. */
const CONFLICT_ATTEMPTS = 20;

/** The peer list of one store. */
export class Peers {
  /** A peer list on `kv`. */
  constructor(readonly kv: Deno.Kv) {}

  /**
   * Remembers peer URLs while fewer than `cap` are known; returns how many were new. Each
   * chunk checks the counter it updates, so concurrent adds can never pass the cap together.
   */
  async add(urls: readonly string[], cap: number): Promise<number> {
    const unique = [...new Set(urls)];
    let added = 0;
    for (let i = 0; i < unique.length; i += PEER_BATCH) {
      const chunk = unique.slice(i, i + PEER_BATCH);
      const n = await this.#addChunk(chunk, cap);
      added += n;
      if (n < chunk.length && (await this.count()) >= cap) break;
    }
    return added;
  }

  async #addChunk(urls: string[], cap: number): Promise<number> {
    for (let attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
      const [count, ...existing] = await getAll<unknown>(this.kv, [
        K.peerCount,
        ...urls.map(K.peer),
      ]);
      const known = Number((count.value as Deno.KvU64 | null)?.value ?? 0n);
      const fresh = urls.filter((_, j) => existing[j].value === null).slice(
        0,
        Math.max(0, cap - known),
      );
      if (fresh.length === 0) return 0;
      const added = Date.now() / 1000;
      const op = this.kv.atomic().check({ key: K.peerCount, versionstamp: count.versionstamp });
      // Whoever else adds a peer moves the counter, so its check covers the URLs too.
      for (const url of fresh) op.set(K.peer(url), { added });
      op.set(K.peerCount, new Deno.KvU64(BigInt(known + fresh.length)));
      if ((await commitWithRetry(() => op.commit())).ok) return fresh.length;
    }
    throw new Error("peer list kept conflicting with other writers; try again");
  }

  /** How many peers are known. */
  async count(): Promise<number> {
    return Number((await this.kv.get<Deno.KvU64>(K.peerCount)).value?.value ?? 0n);
  }

  /** All known peer URLs, sorted. */
  async list(): Promise<string[]> {
    const out: string[] = [];
    for await (const entry of this.kv.list({ prefix: ["peer"] })) out.push(entry.key[1] as string);
    return out;
  }
}
