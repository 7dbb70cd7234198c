/**
 * Live updates for subscribed connections (the `subscribe` op). The node notices changes by
 * reading its store every `intervalMs` while anyone is subscribed, and not at all otherwise:
 * `kv.watch()` does not see writes by another process, and the builder may be one (`foxchain
 * build` beside `foxchain serve` on one file).
 */
import type { Logger } from "@logtape/logtape";
import { logger } from "./log.ts";

/**
 * A pushed event: `{"event": "<name>", "data": {...}}`. It never has a `status`, so a client
 * that matches replies to requests by order can always tell an event from a reply.
 */
export interface FeedEvent {
  /** The source's name, e.g. "status" or "peers". */
  event: string;
  /** What the op of the same name would answer as its `response` now. */
  data: Record<string, unknown>;
}

/** True for a pushed event: an object with an `event` name and no `status` (replies have one). */
export function isEvent(message: unknown): message is FeedEvent {
  return typeof message === "object" && message !== null && !("status" in message) &&
    typeof (message as { event?: unknown }).event === "string";
}

/** Whoever receives events: a connection, in the server. */
export interface Subscriber {
  /** Delivers one event; must not throw. */
  push(event: FeedEvent): void;
}

/** What the feed watches: an event name and how to read its current data. */
export type FeedSources = Record<string, () => Promise<Record<string, unknown>>>;

/** How often the feed reads its sources and how many may subscribe. */
export interface FeedOptions {
  /** Milliseconds between reads while anyone is subscribed (default 250). */
  intervalMs?: number;
  /** Most subscribers at once (default 100); `subscribe` refuses more. */
  maxSubscribers?: number;
}

/** Default read interval: a change shows within a quarter of a second. */
export const FEED_INTERVAL_MS = 250;
/** Default bound on subscribers: each costs one send per change, the reads are shared. */
export const FEED_MAX_SUBSCRIBERS = 100;

/**
 * Reads every source each interval while it has subscribers and pushes an event for each
 * source whose data changed (top-level `time` fields do not count as a change). A new
 * subscriber is sent every source's data at the next read, which is started at once.
 *
 * @example
 * ```ts
 * import { Feed, type FeedEvent } from "../../mod.ts";
 * let height = -1;
 * const feed = new Feed({ status: () => Promise.resolve({ height }) });
 * feed.subscribe({ push: (e: FeedEvent) => console.log(e.event, e.data) }); // status {height: -1}
 * height = 0; // within 250 ms: "status" {height: 0}
 * await feed.close();
 * ```
 */
export class Feed {
  /** Milliseconds between reads while anyone is subscribed. */
  readonly intervalMs: number;
  /** Most subscribers at once. */
  readonly maxSubscribers: number;
  readonly #sources: FeedSources;
  readonly #log: Logger = logger("node");
  /** Subscribers that have been sent a full snapshot, and those still waiting for one. */
  readonly #current = new Set<Subscriber>();
  readonly #fresh = new Set<Subscriber>();
  /** Each source's last data as compared (JSON without `time`). */
  #last = new Map<string, string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  #again = false;
  #closed = false;
  #failing = false;

  /** A feed over `sources`; nothing is read until someone subscribes. */
  constructor(sources: FeedSources, opts: FeedOptions = {}) {
    this.#sources = sources;
    this.intervalMs = opts.intervalMs ?? FEED_INTERVAL_MS;
    this.maxSubscribers = opts.maxSubscribers ?? FEED_MAX_SUBSCRIBERS;
  }

  /** The event names a subscriber receives. */
  get events(): string[] {
    return Object.keys(this.#sources);
  }

  /** How many are subscribed. */
  get size(): number {
    return this.#current.size + this.#fresh.size;
  }

  /** True when `s` is subscribed. */
  has(s: Subscriber): boolean {
    return this.#current.has(s) || this.#fresh.has(s);
  }

  /**
   * Subscribes `s` (again is harmless); it is sent every source's data at once, then each
   * change. False when the feed is full or closed.
   */
  subscribe(s: Subscriber): boolean {
    if (this.has(s)) return true;
    if (this.#closed || this.size >= this.maxSubscribers) return false;
    this.#fresh.add(s);
    this.#readSoon();
    return true;
  }

  /**
   * Says a source may have changed: with anyone subscribed, a read starts now (or right after
   * the one under way) instead of at the next interval. The interval still finds what no one
   * pokes for, such as another process's commits.
   */
  poke(): void {
    if (this.#closed || this.size === 0) return;
    this.#readSoon();
  }

  /** Stops sending to `s`; the reads stop with the last subscriber. */
  unsubscribe(s: Subscriber): void {
    this.#current.delete(s);
    this.#fresh.delete(s);
    if (this.size === 0) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#last.clear();
    }
  }

  /** Drops every subscriber and waits for a read under way, so the store may be closed. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#current.clear();
    this.#fresh.clear();
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** Starts a read now, or right after the one under way. */
  #readSoon(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#running = this.#read().finally(() => {
      this.#running = null;
      if (this.#closed || this.size === 0) return;
      if (this.#again) {
        this.#again = false;
        this.#readSoon();
      } else {
        this.#timer = setTimeout(() => this.#readSoon(), this.intervalMs);
      }
    });
  }

  async #read(): Promise<void> {
    const names = Object.keys(this.#sources);
    let values: Record<string, unknown>[];
    try {
      values = await Promise.all(names.map((name) => this.#sources[name]()));
    } catch (error) {
      // Logged once per run of failures: the next read tries again.
      if (!this.#failing) {
        this.#log.warn`Live updates could not read the store: ${
          error instanceof Error ? error.message : String(error)
        }`;
      }
      this.#failing = true;
      return;
    }
    this.#failing = false;
    if (this.#closed) return;
    const changed: FeedEvent[] = [];
    const all: FeedEvent[] = [];
    names.forEach((name, i) => {
      const event = { event: name, data: values[i] };
      const { time: _time, ...compared } = values[i];
      const key = JSON.stringify(compared);
      if (this.#last.get(name) !== key) changed.push(event);
      this.#last.set(name, key);
      all.push(event);
    });
    for (const s of this.#current) for (const event of changed) s.push(event);
    for (const s of this.#fresh) {
      for (const event of all) s.push(event);
      this.#current.add(s);
    }
    this.#fresh.clear();
  }
}
