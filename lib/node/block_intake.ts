/**
 * Where blocks from peers and clients enter a node: each goes to the store's block tree
 * (`Store.acceptBlock`); one whose parent is not known yet waits in a bounded buffer and is
 * offered again as soon as its parent is taken, so blocks may arrive in any order.
 */
import type { WireBlock } from "../core/block.ts";
import type { AcceptResult, Store } from "../store/store.ts";

/** Blocks waiting for their parent, at most; past it the oldest waiting block is forgotten. */
export const MAX_WAITING_BLOCKS = 1000;

/** What became of one offered block, and of the waiting blocks it let in. */
export interface IntakeResult {
  /** The offered block's result. */
  result: AcceptResult;
  /** Waiting blocks taken because this one was their missing ancestor, with their results. */
  released: { block: WireBlock; result: AcceptResult }[];
}

/** The entry point of blocks into one store. */
export class BlockIntake {
  /** Waiting blocks by the parent hash they need, in arrival order. */
  readonly #waiting = new Map<string, WireBlock[]>();
  #count = 0;

  /** An intake feeding `store`. */
  constructor(readonly store: Store) {}

  /** Blocks waiting for a parent. */
  get waiting(): number {
    return this.#count;
  }

  /**
   * Offers a block. If its parent is unknown it waits (`orphan`) until the parent arrives;
   * when it is taken, the blocks waiting for it are offered in turn.
   */
  async offer(block: WireBlock): Promise<IntakeResult> {
    const result = await this.store.acceptBlock(block);
    const released: IntakeResult["released"] = [];
    if (result.status === "orphan" && typeof block.prev_hash === "string") {
      this.#wait(block.prev_hash, block);
      return { result, released };
    }
    // Waiting children are offered whatever this block's fate: under an invalid parent the
    // store refuses (and remembers) them, which empties the buffer too.
    const ready = [block.hash];
    for (let i = 0; i < ready.length && i < MAX_WAITING_BLOCKS; i++) {
      const children = this.#waiting.get(ready[i]);
      if (!children) continue;
      this.#waiting.delete(ready[i]);
      this.#count -= children.length;
      for (const child of children) {
        const taken = await this.store.acceptBlock(child);
        // Still no parent (what came under its hash was junk, or is from the future): it
        // waits on for the real one.
        if (taken.status === "orphan") this.#wait(ready[i], child);
        else {
          released.push({ block: child, result: taken });
          ready.push(child.hash);
        }
      }
    }
    return { result, released };
  }

  #wait(parent: string, block: WireBlock): void {
    const list = this.#waiting.get(parent) ?? [];
    if (list.some((b) => b.hash === block.hash)) return;
    list.push(block);
    this.#waiting.set(parent, list);
    this.#count++;
    while (this.#count > MAX_WAITING_BLOCKS) {
      const [oldest, blocks] = this.#waiting.entries().next().value!;
      blocks.shift();
      this.#count--;
      if (blocks.length === 0) this.#waiting.delete(oldest);
    }
  }
}
