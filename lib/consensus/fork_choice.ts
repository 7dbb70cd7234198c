/**
 * Fork choice, pure and deterministic: the valid chain with the most blocks wins, and a tie goes
 * to the lower tip hash. Every node that has seen the same blocks picks the same tip, whatever
 * order they arrived in (docs/decisions.md says why).
 */

/** The end of a chain, as fork choice compares it. */
export interface ChainEnd {
  /** Height of the tip; -1 for the empty chain. */
  height: number;
  /** Hash of the tip; null for the empty chain. */
  hash: string | null;
}

/**
 * True when chain `a` beats chain `b`: more blocks, or as many with a lower tip hash.
 *
 * @example
 * ```ts
 * better({ height: 5, hash: "0a" }, { height: 5, hash: "0b" }); // true: same length, lower hash
 * ```
 */
export function better(a: ChainEnd, b: ChainEnd): boolean {
  if (a.height !== b.height) return a.height > b.height;
  if (a.hash === null || b.hash === null) return false;
  return a.hash < b.hash;
}

/** The best of several chain ends (the first of the empty chain when none is given). */
export function best<T extends ChainEnd>(ends: readonly T[]): T | undefined {
  let top: T | undefined;
  for (const end of ends) if (top === undefined || better(end, top)) top = end;
  return top;
}
