/**
 * Proof-of-write rules: pure functions deciding, from the pool's statistics and the time,
 * whether the builder may cut a block now. Several rules combine as "cut when any holds".
 */

import { plural } from "./words.ts";

/** What the rules look at; the store reads it without scanning the pool. */
export interface PoolStats {
  /** Number of transactions in the pool. */
  size: number;
  /** Earliest and latest `t` in the pool (POSIX seconds), null when the pool is empty. */
  earliest: number | null;
  /** Latest `t` in the pool (POSIX seconds), null when the pool is empty. */
  latest: number | null;
}

/** One proof-of-write rule. */
export type Rule =
  /** The homework: latest `t` − earliest `t` >= seconds. */
  | { kind: "span"; seconds: number }
  /** The lab's original: pool size >= size. */
  | { kind: "count"; size: number }
  /** Fabric's BatchTimeout: now − earliest `t` >= seconds, so a lone transaction is not stuck. */
  | { kind: "age"; seconds: number };

/** The span rule's default duration (seconds). */
export const DEFAULT_SPAN_SECONDS = 180;
/** The age rule's default duration (seconds). */
export const DEFAULT_AGE_SECONDS = 600;

/**
 * The default: the homework's span of 3 minutes, with a 10-minute age rule behind it so that a
 * lone transaction, whose pool never spans anything, is still packed (the lab's defect 6).
 */
export const DEFAULT_RULES: readonly Rule[] = [
  { kind: "span", seconds: DEFAULT_SPAN_SECONDS },
  { kind: "age", seconds: DEFAULT_AGE_SECONDS },
];

// Times are compared in whole microseconds: `t` carries microseconds, and comparing float
// seconds directly would make 180.000 s read as 179.99999999997 s.
const micros = (seconds: number) => Math.round(seconds * 1e6);

/** Whether one rule holds, and a sentence saying why or why not. */
export function checkRule(rule: Rule, pool: PoolStats, nowSeconds: number): [boolean, string] {
  if (pool.size === 0 || pool.earliest === null || pool.latest === null) {
    return [false, "pool is empty"];
  }
  switch (rule.kind) {
    case "count":
      return [
        pool.size >= rule.size,
        `pool holds ${plural(pool.size, "record")}, rule needs ${rule.size}`,
      ];
    case "span": {
      const span = micros(pool.latest) - micros(pool.earliest);
      return [
        span >= micros(rule.seconds),
        `pool spans ${(span / 1e6).toFixed(3)} s, rule needs ${rule.seconds} s`,
      ];
    }
    case "age": {
      const age = micros(nowSeconds) - micros(pool.earliest);
      return [
        age >= micros(rule.seconds),
        `oldest record is ${(age / 1e6).toFixed(3)} s old, rule needs ${rule.seconds} s`,
      ];
    }
  }
}

/** Whether any of the rules holds, with the first that does and why (or the reasons of all). */
export function shouldCut(
  rules: readonly Rule[],
  pool: PoolStats,
  nowSeconds: number,
): { cut: boolean; reason: string; rule?: Rule } {
  const reasons: string[] = [];
  for (const rule of rules) {
    const [holds, reason] = checkRule(rule, pool, nowSeconds);
    if (holds) return { cut: true, reason: `${rule.kind}: ${reason}`, rule };
    reasons.push(`${rule.kind}: ${reason}`);
  }
  return { cut: false, reason: reasons.join("; ") };
}

/** A short human description, e.g. "span >= 180 s or count >= 3". */
export function describeRules(rules: readonly Rule[]): string {
  return rules.map((r) => r.kind === "count" ? `count >= ${r.size}` : `${r.kind} >= ${r.seconds} s`)
    .join(" or ");
}

/** The statistics of a set of transactions, as if they were the whole pool. */
export function statsOf(txs: readonly { t: number }[]): PoolStats {
  let earliest: number | null = null;
  let latest: number | null = null;
  for (const { t } of txs) {
    if (earliest === null || t < earliest) earliest = t;
    if (latest === null || t > latest) latest = t;
  }
  return { size: txs.length, earliest, latest };
}
