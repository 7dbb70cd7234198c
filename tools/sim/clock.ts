/**
 * Simulated time for the network simulation: a virtual clock, timers in a queue ordered by
 * (due time, scheduling order), and a seeded random source. Nothing waits on real time except
 * `settle`, which lets real I/O (Deno KV) finish before the clock moves on.
 */
import { setImmediate } from "node:timers";
import type { Scheduler, TimerHandle } from "../../lib/core/scheduler.ts";
import { seededRandom } from "../../lib/core/scheduler.ts";

interface Timer {
  at: number;
  seq: number;
  fn: () => void;
}

/** A Scheduler whose time moves only when the simulation runs its timers. */
export class SimClock implements Scheduler {
  #now: number;
  #seq = 0;
  #queue: Timer[] = [];
  #cancelled = new Set<number>();
  /** Real async work the simulation started and has not seen finish (handlers, builds). */
  active = 0;
  /** Bumped by anything that happens, so `settle` can tell when the system is quiet. */
  progress = 0;
  /** The seeded random source every random choice of the run draws from. */
  readonly random: () => number;

  /** A clock at `startMs` with randomness from `seed`. */
  constructor(seed: number, startMs: number) {
    this.#now = startMs;
    this.random = seededRandom(seed);
  }

  /** Simulated now, in ms. */
  now(): number {
    return this.#now;
  }

  /** Runs `fn` at now + `ms`. */
  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { at: this.#now + Math.max(0, ms), seq: ++this.#seq, fn };
    // Binary insertion keeps the queue ordered by (at, seq): the run order is a pure function
    // of the schedule, never of real timing.
    let lo = 0;
    let hi = this.#queue.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const q = this.#queue[mid];
      if (q.at < timer.at || (q.at === timer.at && q.seq < timer.seq)) lo = mid + 1;
      else hi = mid;
    }
    this.#queue.splice(lo, 0, timer);
    this.progress++;
    return timer.seq;
  }

  /** Cancels a timer; unknown or spent handles are ignored. */
  clearTimeout(handle: TimerHandle): void {
    if (typeof handle === "number") this.#cancelled.add(handle);
  }

  /** Timers waiting. */
  get pending(): number {
    return this.#queue.length;
  }

  /**
   * Runs timers in order until simulated time `until` (or `maxEvents`), letting real work
   * settle after each. Returns the number of timers run.
   */
  async runUntil(until: number, maxEvents = 1_000_000): Promise<number> {
    let ran = 0;
    while (this.#queue.length > 0 && this.#queue[0].at <= until && ran < maxEvents) {
      const timer = this.#queue.shift()!;
      if (this.#cancelled.delete(timer.seq)) continue;
      this.#now = Math.max(this.#now, timer.at);
      ran++;
      timer.fn();
      await this.settle();
    }
    if (this.#now < until) this.#now = until;
    return ran;
  }

  /**
   * Waits until the real work under way is done: no handler or build running, and nothing new
   * happened for two turns of the event loop (KV calls complete in between).
   */
  async settle(): Promise<void> {
    let quiet = 0;
    for (let turn = 0; turn < 100_000 && quiet < 1; turn++) {
      const before = this.progress;
      await new Promise((resolve) => setImmediate(resolve));
      if (this.active === 0 && this.progress === before) quiet++;
      else quiet = 0;
    }
  }

  /** Counts `work` as active until it settles, so time does not move under it. */
  track<T>(work: Promise<T>): Promise<T> {
    this.active++;
    this.progress++;
    return work.finally(() => {
      this.active--;
      this.progress++;
    });
  }
}

/**
 * `target` with every promise its methods return counted as active work of `clock`: how the
 * simulation waits for a component's own KV calls (the network layer's, made between timers).
 */
export function tracked<T extends object>(target: T, clock: SimClock): T {
  return new Proxy(target, {
    get(t, key) {
      const value = Reflect.get(t, key, t);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result = value.apply(t, args);
        return result instanceof Promise ? clock.track(result) : result;
      };
    },
  });
}
