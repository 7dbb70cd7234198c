/**
 * A set that remembers at most `capacity` keys, forgetting the oldest first: what a node has
 * seen of the network (transaction ids, block hashes) without letting peers grow it forever.
 */
export class BoundedSet<K> {
  readonly #keys = new Set<K>();

  /** An empty set keeping at most `capacity` keys. */
  constructor(readonly capacity: number) {
    if (!(capacity >= 1)) throw new RangeError("capacity must be at least 1");
  }

  /** Keys held. */
  get size(): number {
    return this.#keys.size;
  }

  /** Whether `key` is held. */
  has(key: K): boolean {
    return this.#keys.has(key);
  }

  /** Adds `key`; returns false when it was held already. Past capacity the oldest goes. */
  add(key: K): boolean {
    if (this.#keys.has(key)) return false;
    this.#keys.add(key);
    if (this.#keys.size > this.capacity) {
      this.#keys.delete(this.#keys.values().next().value as K);
    }
    return true;
  }
}
