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
