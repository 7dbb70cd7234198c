/**
 * Keeps one outbound link to a peer's URL alive: dial with a timeout, a handshake on every new
 * link before it counts as up, a heartbeat that finds a dead link, and reconnects with capped,
 * jittered exponential backoff. A handshake that refuses the peer for good (another network)
 * stops the reconnects. Time and randomness come from a Scheduler, so a simulation with a fake
 * clock drives it exactly as the real timers do.
 *
 * States: `idle` (not started), `connecting` (dialling or shaking hands), `up`, `down` (waiting
 * to retry), `refused` (the handshake refused the peer for good), `stopped`.
 */
import type { Logger } from "@logtape/logtape";
import { logger } from "../node/log.ts";
import type { Reply } from "../node/protocol.ts";
import { type Dialer, DialFailed, type Link, LinkClosed, type RequestOptions } from "./link.ts";
import { realScheduler, type Scheduler, type TimerHandle } from "../core/scheduler.ts";
import { wsDialer } from "./ws_conn.ts";

/** Where a peer connection is. */
export type PeerState = "idle" | "connecting" | "up" | "down" | "refused" | "stopped";

/**
 * Thrown by a handshake hook to refuse a peer. `fatal` (e.g. another network or other rules)
 * stops the reconnects; otherwise the link is retried with backoff.
 */
export class HandshakeRefused extends Error {
  /** `message` is the reason, logged and reported. */
  constructor(message: string, readonly fatal = false) {
    super(message);
    this.name = "HandshakeRefused";
  }
}

/** Timings of a peer connection, in milliseconds; every field has a default (PEER_DEFAULTS). */
export interface PeerTimings {
  /** Longest dial (connect, TLS, upgrade). */
  dialTimeoutMs: number;
  /** Longest handshake hook run. */
  handshakeTimeoutMs: number;
  /** First retry delay; each failure doubles it, up to `maxBackoffMs`. Jittered to 50-100%. */
  initialBackoffMs: number;
  /** Longest retry delay. */
  maxBackoffMs: number;
  /** A link up at least this long starts the backoff over when it goes down. */
  stableMs: number;
  /** A link quiet this long gets a heartbeat request (`time`). */
  heartbeatMs: number;
  /** A heartbeat with no reply in this time closes the link as dead. */
  heartbeatDeadlineMs: number;
}

/** The default timings. */
export const PEER_DEFAULTS: PeerTimings = {
  dialTimeoutMs: 5_000,
  handshakeTimeoutMs: 10_000,
  initialBackoffMs: 500,
  maxBackoffMs: 30_000,
  stableMs: 30_000,
  heartbeatMs: 10_000,
  heartbeatDeadlineMs: 5_000,
};

/** Options of a peer connection. */
export interface PeerConnectionOptions<H> extends Partial<PeerTimings> {
  /** Opens links (default: WebSocket). */
  dialer?: Dialer;
  /** Timers, clock and randomness (default: the real ones). */
  scheduler?: Scheduler;
  /**
   * Runs on every new link before it is up; what it returns is kept as `hello`. Throwing
   * closes the link; HandshakeRefused with `fatal` stops the reconnects. `signal` aborts when
   * the connection is stopped meanwhile (the link is closed then too).
   */
  handshake?: (link: Link, signal: AbortSignal) => Promise<H>;
  /** Where to log (default: foxchain's `net` logger). */
  log?: Logger;
}

/** What happened to a peer connection. */
export type PeerEvent<H> =
  | { type: "up"; link: Link; hello: H }
  | { type: "down"; reason: string; retryInMs: number }
  | { type: "refused"; reason: string }
  | { type: "stopped"; reason: string };

/** A snapshot of a peer connection, for status displays. */
export interface PeerInfo<H> {
  url: string;
  state: PeerState;
  /** When the state was entered (scheduler ms). */
  since: number;
  /** When the peer last answered a request (scheduler ms), or null. */
  lastSeen: number | null;
  /** Why the last link or attempt failed, or null. */
  lastError: string | null;
  /** When the next attempt is due while `down` (scheduler ms), else null. */
  retryAt: number | null;
  /** Failed attempts since the link was last stably up. */
  failures: number;
  /** What the handshake of the current link returned, while `up`. */
  hello: H | undefined;
}

/** Keeps one outbound link to `url` alive. */
export class PeerConnection<H = undefined> {
  readonly #dialer: Dialer;
  readonly #scheduler: Scheduler;
  readonly #handshake: (link: Link, signal: AbortSignal) => Promise<H>;
  readonly #log: Logger;
  readonly #t: PeerTimings;
  readonly #listeners = new Set<(event: PeerEvent<H>) => void>();

  #state: PeerState = "idle";
  #since: number;
  #generation = 0; // bumped by stop/start: callbacks of an older generation do nothing
  #link: Link | null = null; // the link while up
  #pending: Link | null = null; // a link whose handshake runs
  #attempt: Promise<void> = Promise.resolve();
  #dialSettled: Promise<void> = Promise.resolve(); // the latest dial, given up on or not
  #lateClosed: Promise<unknown> = Promise.resolve(); // a link that came after its dial gave up
  #abort = new AbortController(); // aborted by stop(): ends the attempt under way
  #hello: H | undefined;
  #upAt = 0;
  #lastSeen: number | null = null;
  #lastError: string | null = null;
  #failures = 0;
  #retryTimer: TimerHandle | undefined;
  #retryAt: number | null = null;
  #beatTimer: TimerHandle | undefined;
  #beating = false;

  /** A connection to `url`, idle until `start()`. */
  constructor(readonly url: string, opts: PeerConnectionOptions<H> = {}) {
    this.#dialer = opts.dialer ?? wsDialer;
    this.#scheduler = opts.scheduler ?? realScheduler;
    this.#handshake = opts.handshake ?? (() => Promise.resolve(undefined as H));
    this.#log = opts.log ?? logger("net");
    this.#t = { ...PEER_DEFAULTS };
    for (const key of Object.keys(PEER_DEFAULTS) as (keyof PeerTimings)[]) {
      const value = opts[key];
      if (value === undefined) continue;
      if (!(value > 0) || !Number.isFinite(value)) {
        throw new RangeError(`${key} must be a positive number of ms, got ${value}`);
      }
      this.#t[key] = value;
    }
    this.#since = this.#scheduler.now();
  }

  /** Where the connection is. */
  get state(): PeerState {
    return this.#state;
  }

  /** The link while up, else null. */
  get link(): Link | null {
    return this.#link;
  }

  /** A snapshot for status displays. */
  info(): PeerInfo<H> {
    return {
      url: this.url,
      state: this.#state,
      since: this.#since,
      lastSeen: this.#lastSeen,
      lastError: this.#lastError,
      retryAt: this.#retryAt,
      failures: this.#failures,
      hello: this.#state === "up" ? this.#hello : undefined,
    };
  }

  /** Calls `listener` on every event until the returned function is called. */
  on(listener: (event: PeerEvent<H>) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Starts connecting (again, after `stop()` or a refusal). Does nothing while running. */
  start(): void {
    if (this.#state !== "idle" && this.#state !== "stopped" && this.#state !== "refused") return;
    this.#generation++;
    this.#abort = new AbortController();
    this.#failures = 0;
    this.#connect();
  }

  /**
   * Stops: no more attempts, the link (or the one shaking hands) is closed with `reason`.
   * Resolves once everything under way has ended.
   */
  async stop(reason = "stopped"): Promise<void> {
    if (this.#state === "stopped" || this.#state === "idle") return;
    this.#generation++;
    this.#abort.abort();
    this.#clearTimers();
    const link = this.#link ?? this.#pending;
    this.#link = null;
    this.#hello = undefined;
    this.#setState("stopped");
    this.#log.debug`Link to ${this.url} is stopped: ${reason}.`;
    this.#emit({ type: "stopped", reason });
    link?.close(reason);
    await this.#attempt;
    await link?.closed;
    // The dial under way was aborted; a link it opened in the meantime is closed.
    await this.#dialSettled;
    await this.#lateClosed;
  }

  /**
   * A request on the current link; rejects with LinkClosed when no link is up. A reply counts
   * as the peer being seen, so a busy link needs no heartbeat.
   */
  async request(
    op: string,
    args?: Record<string, unknown>,
    opts?: RequestOptions,
  ): Promise<Reply> {
    const link = this.#link;
    if (!link) throw new LinkClosed(this.url, `not connected (${this.#state})`);
    const reply = await link.request(op, args, opts);
    if (this.#link === link) this.#lastSeen = this.#scheduler.now();
    return reply;
  }

  // ---- connecting -----------------------------------------------------------------------------

  #connect(): void {
    this.#retryTimer = undefined;
    this.#retryAt = null;
    this.#setState("connecting");
    const generation = this.#generation;
    this.#attempt = this.#tryLink(generation).catch((error) => {
      // Not expected (every failure is handled inside); never leave the peer stuck.
      this.#log.error`Link to ${this.url}: unexpected error ${String(error)}`;
      if (generation === this.#generation) this.#retry(`unexpected error: ${String(error)}`);
    });
  }

  async #tryLink(generation: number): Promise<void> {
    const signal = this.#abort.signal;
    let link: Link;
    try {
      const dialing = this.#dialer.dial(this.url, { timeoutMs: this.#t.dialTimeoutMs, signal });
      const within = this.#within(
        signal,
        dialing,
        this.#t.dialTimeoutMs,
        `no link within ${this.#t.dialTimeoutMs} ms`,
        (late) => {
          late.close("dial gave up");
          this.#lateClosed = late.closed;
        },
      );
      this.#dialSettled = dialing.then(() => {}, () => {});
      link = await within;
    } catch (error) {
      if (generation === this.#generation) this.#retry(reasonOf(error));
      return;
    }
    if (generation !== this.#generation) {
      link.close("stopped");
      await link.closed;
      return;
    }
    this.#pending = link;
    let hello: H;
    try {
      hello = await this.#within(
        signal,
        this.#handshake(link, signal),
        this.#t.handshakeTimeoutMs,
        `no handshake within ${this.#t.handshakeTimeoutMs} ms`,
      );
    } catch (error) {
      this.#pending = null;
      const reason = `handshake failed: ${reasonOf(error)}`;
      link.close(reason);
      if (generation === this.#generation) {
        if (error instanceof HandshakeRefused && error.fatal) this.#refuse(error.message);
        else this.#retry(reason);
      }
      await link.closed;
      return;
    }
    this.#pending = null;
    if (generation !== this.#generation) {
      link.close("stopped");
      return;
    }
    this.#up(link, hello, generation);
  }

  /**
   * `work`, or a rejection with `why` after `ms`, or with "stopped" when `signal` aborts; a
   * result that comes after either goes to `late`.
   */
  #within<T>(
    signal: AbortSignal,
    work: Promise<T>,
    ms: number,
    why: string,
    late?: (value: T) => void,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const settle = (fn: () => void) => {
        if (done) return false;
        done = true;
        this.#scheduler.clearTimeout(timer);
        signal.removeEventListener("abort", stopped);
        fn();
        return true;
      };
      const stopped = () => settle(() => reject(new Error("stopped")));
      const timer = this.#scheduler.setTimeout(() => settle(() => reject(new Error(why))), ms);
      if (signal.aborted) stopped();
      else signal.addEventListener("abort", stopped);
      work.then(
        (value) => settle(() => resolve(value)) || late?.(value),
        (error) => settle(() => reject(error)),
      );
    });
  }

  #up(link: Link, hello: H, generation: number): void {
    const now = this.#scheduler.now();
    this.#link = link;
    this.#hello = hello;
    this.#upAt = now;
    this.#lastSeen = now;
    this.#lastError = null;
    this.#setState("up");
    this.#log.info`Link to ${this.url} is up.`;
    this.#emit({ type: "up", link, hello });
    this.#scheduleBeat();
    link.closed.then((reason) => {
      if (generation === this.#generation && this.#link === link) this.#down(reason);
    });
  }

  #down(reason: string): void {
    this.#link = null;
    this.#hello = undefined;
    this.#scheduler.clearTimeout(this.#beatTimer);
    this.#beatTimer = undefined;
    if (this.#scheduler.now() - this.#upAt >= this.#t.stableMs) this.#failures = 0;
    this.#retry(reason, true);
  }

  /** Schedules the next attempt after a failure; `wasUp` when a live link went down. */
  #retry(reason: string, wasUp = false): void {
    this.#failures++;
    const delay = this.#backoff(this.#failures);
    const repeated = !wasUp && reason === this.#lastError;
    this.#lastError = reason;
    this.#setState("down");
    this.#retryAt = this.#scheduler.now() + delay;
    const line = `retrying in ${showMs(delay)}`;
    if (wasUp) this.#log.warn`Link to ${this.url} is down: ${reason}; ${line}.`;
    else if (repeated) this.#log.debug`Link to ${this.url} is still down: ${reason}; ${line}.`;
    else this.#log.info`Link to ${this.url} is down: ${reason}; ${line}.`;
    this.#emit({ type: "down", reason, retryInMs: delay });
    this.#retryTimer = this.#scheduler.setTimeout(() => this.#connect(), delay);
  }

  #refuse(reason: string): void {
    this.#lastError = reason;
    this.#setState("refused");
    this.#log.warn`Link to ${this.url} is refused: ${reason}; not retrying.`;
    this.#emit({ type: "refused", reason });
  }

  /** Capped exponential backoff with "equal jitter": between half and all of the step. */
  #backoff(failures: number): number {
    const step = Math.min(
      this.#t.maxBackoffMs,
      this.#t.initialBackoffMs * 2 ** Math.min(failures - 1, 30),
    );
    return Math.round(step / 2 + this.#scheduler.random() * step / 2);
  }

  // ---- the heartbeat --------------------------------------------------------------------------

  /** The next heartbeat is due `heartbeatMs` after the peer was last seen. */
  #scheduleBeat(): void {
    const due = (this.#lastSeen ?? this.#scheduler.now()) + this.#t.heartbeatMs;
    const wait = Math.max(1, due - this.#scheduler.now());
    this.#beatTimer = this.#scheduler.setTimeout(() => this.#beat(), wait);
  }

  #beat(): void {
    const link = this.#link;
    if (!link || this.#beating) return;
    if (this.#scheduler.now() - (this.#lastSeen ?? 0) < this.#t.heartbeatMs) {
      this.#scheduleBeat(); // requests answered since: the link is alive
      return;
    }
    this.#beating = true;
    const deadline = this.#t.heartbeatDeadlineMs;
    this.#within(
      this.#abort.signal,
      link.request("time", undefined, { deadlineMs: deadline }),
      deadline,
      `no reply to a heartbeat within ${deadline} ms`,
    ).then(() => {
      if (this.#link !== link) return;
      this.#lastSeen = this.#scheduler.now();
      this.#scheduleBeat();
    }, (error) => {
      // The link's own deadline closes it too; this covers a link that does not keep one.
      link.close(`heartbeat failed: ${reasonOf(error)}`);
    }).finally(() => (this.#beating = false));
  }

  // ---- bookkeeping ----------------------------------------------------------------------------

  #setState(state: PeerState): void {
    this.#state = state;
    this.#since = this.#scheduler.now();
  }

  #clearTimers(): void {
    this.#scheduler.clearTimeout(this.#retryTimer);
    this.#scheduler.clearTimeout(this.#beatTimer);
    this.#retryTimer = this.#beatTimer = undefined;
    this.#retryAt = null;
  }

  #emit(event: PeerEvent<H>): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.#log.error`A listener of the link to ${this.url} failed: ${String(error)}`;
      }
    }
  }
}

/** Why a dial, a handshake or a request failed, in words without the URL where possible. */
function reasonOf(error: unknown): string {
  if (error instanceof DialFailed) {
    return error.kind === "connect" ? `cannot connect: ${error.detail}` : error.detail;
  }
  if (error instanceof LinkClosed) return error.reason;
  return error instanceof Error ? error.message : String(error);
}

/** Milliseconds as people read them in a log: `800 ms`, `1.2 s`, `30 s`. */
export function showMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return `${s < 10 ? Math.round(s * 10) / 10 : Math.round(s)} s`;
}
