/** Time sources. Everything that reads the time takes a Clock, so tests can use a fake one. */

/** A source of wall-clock time in milliseconds since the epoch. */
export interface Clock {
  /** Current time in milliseconds since the epoch. */
  now(): number;
}

/** The real clock (Date.now, which fake timers replace in tests). */
export const systemClock: Clock = { now: () => Date.now() };

/** A node's source of `t` stamps: whole microseconds, never the same twice. */
export interface Stamps {
  /** The next stamp, in POSIX seconds. */
  next(): number;
  /**
   * Reserves `count` consecutive stamps and returns the first, in whole microseconds: stamp
   * `i` of the range is `(first + i) / 1e6`, and `next` never returns one of them.
   */
  reserve(count: number): number;
}

/**
 * Stamps from the clock in microsecond POSIX seconds that never repeat, so two identical
 * transfers stamped in one millisecond still get different `t` and therefore different ids.
 */
export function monotonicStamps(clock: Clock): Stamps {
  let lastMicros = 0;
  const reserve = (count: number) => {
    let first = Math.round(clock.now() * 1000);
    if (first <= lastMicros) first = lastMicros + 1;
    lastMicros = first + Math.max(1, count) - 1;
    return first;
  };
  return { next: () => reserve(1) / 1e6, reserve };
}

/** Returns a stamper: `monotonicStamps(clock).next` (see there). */
export function monotonicStamper(clock: Clock): () => number {
  return monotonicStamps(clock).next;
}
