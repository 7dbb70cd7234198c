/**
 * Deno KV helpers. Two processes on one SQLite-backed KV file make commits fail with
 * `TypeError: database is locked`, which Deno does not retry; `commitWithRetry` does, a bounded
 * number of times with jittered exponential back-off.
 */

/** Retry policy for locked-database errors. */
export interface RetryPolicy {
  /** Most tries in all, the first included. */
  attempts: number;
  /** Back-off base (ms): the ceiling of the wait after try `i` is `baseDelayMs * 2 ** i`. */
  baseDelayMs: number;
  /** Largest ceiling of one wait (ms); the actual wait is random below the ceiling. */
  maxDelayMs: number;
}

/** Up to 30 attempts over roughly five seconds in all. */
export const DEFAULT_RETRY: RetryPolicy = { attempts: 30, baseDelayMs: 2, maxDelayMs: 250 };

/** True for the transient error SQLite raises when another process holds the write lock. */
export function isLockedError(error: unknown): boolean {
  return error instanceof Error && /database is locked|database is busy/i.test(error.message);
}

/**
 * Runs `attempt` (which builds and commits one atomic operation) again while it throws a
 * locked-database error. Check failures (`ok: false`) are returned to the caller, who must
 * re-read before trying again.
 */
export async function commitWithRetry<T>(
  attempt: () => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY,
): Promise<T> {
  for (let i = 1;; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isLockedError(error) || i >= policy.attempts) throw error;
      const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** i);
      await new Promise((resolve) => setTimeout(resolve, Math.random() * ceiling));
    }
  }
}

/** Reads many keys, in chunks of 10 (the most `Kv.getMany` takes), concurrently. */
export async function getAll<T>(
  kv: Deno.Kv,
  keys: readonly Deno.KvKey[],
): Promise<Deno.KvEntryMaybe<T>[]> {
  const chunks: Promise<Deno.KvEntryMaybe<T>[]>[] = [];
  for (let i = 0; i < keys.length; i += 10) {
    chunks.push(kv.getMany<T[]>(keys.slice(i, i + 10)) as Promise<Deno.KvEntryMaybe<T>[]>);
  }
  return (await Promise.all(chunks)).flat();
}

/** The operand of `AtomicOperation.sum` that adds `n`: KV sums wrap modulo 2^64, so a
 * negative `n` becomes its two's complement and subtracts. */
export function delta(n: number): bigint {
  const big = BigInt(n);
  return big >= 0n ? big : (1n << 64n) + big;
}

/** Deno KV's limits per atomic commit, and the share of them foxchain lets one commit use. */
export const COMMIT_LIMITS = {
  /** Mutations per atomic (KV's own limit). */
  mutations: 1000,
  /** Bytes of keys and values as JSON, close to KV's count; KV allows 800 KiB. */
  bytes: 600 * 1024,
  /**
   * Bytes of encoded keys; KV refuses more than 80 KiB ("Total key size too large"), this
   * leaves 4 KiB to spare. The largest block writes about 65,100 bytes of keys.
   */
  keyBytes: 76 * 1024,
};

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

/**
 * An atomic operation that counts what it writes against COMMIT_LIMITS: the one place a
 * commit's mutations, bytes and key bytes are added up, so a commit too large is refused before
 * it is tried, never half-tried.
 */
export class CommitBudget {
  /** The underlying atomic operation. */
  readonly op: Deno.AtomicOperation;
  /** Mutations so far. */
  mutations = 0;
  /** Bytes of keys and values so far (as JSON). */
  bytes = 0;
  /** Bytes of encoded keys so far (deletes counted too, to stay on the safe side). */
  keyBytes = 0;

  /** A budget over a new atomic operation on `kv`. */
  constructor(kv: Deno.Kv) {
    this.op = kv.atomic();
  }

  /** Adds a versionstamp check. */
  check(key: Deno.KvKey, versionstamp: string | null): this {
    this.op.check({ key, versionstamp });
    return this;
  }

  /** Adds a set (`expireIn`: ms after which KV may delete the key). */
  set(key: Deno.KvKey, value: unknown, options?: { expireIn?: number }): this {
    this.op.set(key, value, options);
    this.mutations++;
    this.bytes += JSON.stringify(key).length + (JSON.stringify(value)?.length ?? 0);
    this.keyBytes += encodedKeySize(key);
    return this;
  }

  /** Adds a delete. */
  delete(key: Deno.KvKey): this {
    this.op.delete(key);
    this.mutations++;
    this.keyBytes += encodedKeySize(key);
    return this;
  }

  /** Adds `n` (which may be negative) to a KvU64 counter. */
  sum(key: Deno.KvKey, n: number | bigint): this {
    this.op.sum(key, typeof n === "bigint" ? n : delta(n));
    this.mutations++;
    this.keyBytes += encodedKeySize(key);
    return this;
  }

  /** Why the commit is over a limit, or null when it fits. */
  overLimit(): string | null {
    if (this.mutations > COMMIT_LIMITS.mutations || this.bytes > COMMIT_LIMITS.bytes) {
      return `needs ${this.mutations} mutations and about ${this.bytes} bytes; one commit takes ` +
        `at most ${COMMIT_LIMITS.mutations} and ${COMMIT_LIMITS.bytes}`;
    }
    if (this.keyBytes > COMMIT_LIMITS.keyBytes) {
      return `writes ${this.keyBytes} bytes of keys; one commit takes at most ${COMMIT_LIMITS.keyBytes}`;
    }
    return null;
  }

  /** Commits, retrying a locked database. */
  commit(): Promise<Deno.KvCommitResult | Deno.KvCommitError> {
    return commitWithRetry(() => this.op.commit());
  }
}
