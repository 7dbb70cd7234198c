/** Time sources. Everything that reads the time takes a Clock, so tests can use a fake one. */

/** A source of wall-clock time in milliseconds since the epoch. */
export interface Clock {
  /** Current time in milliseconds since the epoch. */
  now(): number;
}

/** The real clock (Date.now, which fake timers replace in tests). */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * Returns a stamper that turns the clock into POSIX seconds with microsecond precision and never
 * returns the same value twice, so two identical transfers stamped in one millisecond still get
 * different `t` and therefore different ids.
 */
export function monotonicStamper(clock: Clock): () => number {
  let lastMicros = 0;
  return () => {
    let micros = Math.round(clock.now() * 1000);
    if (micros <= lastMicros) micros = lastMicros + 1;
    lastMicros = micros;
    return micros / 1e6;
  };
}
