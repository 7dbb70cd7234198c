/**
 * Proof-of-write as a consensus rule. A block carries the evidence that a rule held when it was
 * cut (`Proof`); the builder makes it with `proofFor`, and every node re-checks it with
 * `checkProof`. The evidence is deterministic: two nodes whose pools hold the same transactions
 * make the same proof, so they cut byte-identical blocks.
 */
import type { Block, Proof } from "../core/block.ts";
import { MAX_FUTURE_SECONDS } from "../core/params.ts";
import { checkRule, type PoolStats, type Rule } from "../core/rules.ts";
import type { ChainRules } from "./rules.ts";

/**
 * The proof for a block cut under `rule` from a pool with `stats`. The block time is the moment
 * the rule first held, computed from the pool rather than read from a clock: the latest `t` for
 * span and count, earliest `t` + the age for age; never before the parent's time.
 */
export function proofFor(rule: Rule, stats: PoolStats, parentTime: number | null): Proof {
  if (stats.earliest === null || stats.latest === null || stats.size === 0) {
    throw new RangeError("an empty pool proves nothing");
  }
  const moment = rule.kind === "age" ? stats.earliest + rule.seconds : stats.latest;
  return {
    rule: rule.kind,
    time: Math.max(moment, parentTime ?? -Infinity),
    size: stats.size,
    earliest: stats.earliest,
    latest: stats.latest,
  };
}

/**
 * Checks a block's evidence against the network's rules, its parent's time and the receiver's
 * clock (`nowSeconds`). Returns the first problem, or null. The checks: the proof names one of
 * the network's rules; its statistics cover the block's own transactions; its time is not
 * before the parent's nor further in the future than admission allows a `t`; and the rule
 * holds on it.
 */
export function checkProof(
  block: Block,
  parentTime: number | null,
  chain: ChainRules,
  nowSeconds: number,
): string | null {
  const proof = block.proof;
  if (proof === undefined) {
    return chain.acceptBareBlocks ? null : "block carries no proof-of-write evidence (a bare lab " +
      "block); this network refuses them (a node started with --accept-bare-blocks takes them)";
  }
  const rule = chain.rules.find((r) => r.kind === proof.rule);
  if (!rule) return `proof names the ${proof.rule} rule, which this network does not use`;
  if (proof.size < block.items.length) {
    return `proof says the pool held ${proof.size}, the block holds ${block.items.length}`;
  }
  let first = Infinity;
  let last = -Infinity;
  for (const item of block.items) {
    if (item.t < first) first = item.t;
    if (item.t > last) last = item.t;
  }
  if (proof.earliest > first) {
    return `proof says the earliest t was ${proof.earliest}, the block holds t ${first}`;
  }
  if (proof.latest < last) {
    return `proof says the latest t was ${proof.latest}, the block holds t ${last}`;
  }
  if (parentTime !== null && proof.time < parentTime) {
    return `block time ${proof.time} is before its parent's ${parentTime}`;
  }
  if (isFromTheFuture(block, nowSeconds)) {
    return `block time is ${
      (proof.time - nowSeconds).toFixed(3)
    } s in the future (max ${MAX_FUTURE_SECONDS} s)`;
  }
  const [holds, why] = checkRule(
    rule,
    { size: proof.size, earliest: proof.earliest, latest: proof.latest },
    proof.time,
  );
  return holds ? null : `proof-of-write does not hold: ${proof.rule}: ${why}`;
}

/** True when a block's time is further ahead of `nowSeconds` than admission allows a `t`. */
export function isFromTheFuture(block: Block, nowSeconds: number): boolean {
  return block.proof !== undefined && block.proof.time > nowSeconds + MAX_FUTURE_SECONDS;
}
