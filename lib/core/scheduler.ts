/**
 * Time and randomness for the network layer, behind one small interface, so a deterministic
 * simulation (a fake clock, a seeded random source) can drive links and peer connections
 * exactly as the real timers do.
 */
import type { Clock } from "./clock.ts";

/** An opaque handle of a scheduled callback. */
export type TimerHandle = unknown;

/** Timers, a clock and a random source. */
export interface Scheduler extends Clock {
  /** Runs `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancels a callback `setTimeout` scheduled; unknown or spent handles are ignored. */
  clearTimeout(handle: TimerHandle): void;
  /** A number in [0, 1). */
  random(): number;
}

/** The real timers, `Date.now` and `Math.random`. */
export const realScheduler: Scheduler = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as number),
  random: () => Math.random(),
};

/**
 * A seeded random source (mulberry32): the same seed gives the same sequence, so a run that
 * failed can be replayed exactly.
 */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
