/**
 * A seeded pseudo-random generator (sfc32), so that a chaos or fuzz run can be repeated from
 * its seed: the same seed makes the same choices (timing still differs between runs).
 */

/** Random choices from one seed. */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  /** A generator for `seed` (any 32-bit integer). */
  constructor(readonly seed: number) {
    this.#a = 0x9e3779b9;
    this.#b = 0x243f6a88;
    this.#c = 0xb7e15162;
    this.#d = seed >>> 0;
    for (let i = 0; i < 15; i++) this.next();
  }

  /** A float in [0, 1). */
  next(): number {
    const a = this.#a, b = this.#b, c = this.#c, d = this.#d;
    const t = (((a + b) | 0) + d) | 0;
    this.#d = (d + 1) | 0;
    this.#a = b ^ (b >>> 9);
    this.#b = (c + (c << 3)) | 0;
    this.#c = ((c << 21) | (c >>> 11)) + t | 0;
    return (t >>> 0) / 4294967296;
  }

  /** A whole number in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** A whole number in [min, max]. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(256);
    return out;
  }

  /** A version-4-shaped UUID from this generator (repeatable, unlike crypto.randomUUID). */
  uuid(): string {
    const hex = Array.from(this.bytes(16), (b) => b.toString(16).padStart(2, "0")).join("");
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${
      hex.slice(20, 32)
    }`;
  }

  /** A new generator seeded from this one: independent streams for concurrent workers. */
  fork(): Rng {
    return new Rng(this.int(2 ** 32));
  }
}

/** A seed from the clock, for runs that were given none (the summary prints it). */
export function freshSeed(): number {
  return Math.floor(Math.random() * 2 ** 31);
}
