/**
 * A simulated network for many nodes in one process: links behind the same `Link`/`Dialer`
 * interface as WebSocket links, carrying the same JSON text to each node's `Protocol.handle`,
 * with seeded latency, lost and duplicated requests, partitions, and nodes that go down.
 */
import {
  DeadlineExceeded,
  DEFAULT_DEADLINE_MS,
  type Dialer,
  DialFailed,
  type DialOptions,
  type Link,
  LinkClosed,
  type Reply,
  type RequestOptions,
} from "../../lib/net/link.ts";
import { newSession, type Protocol } from "../../lib/node/protocol.ts";
import type { SimClock } from "./clock.ts";

/** Fault rates and delays of the simulated network. */
export interface Faults {
  /** Shortest and longest one-way delay, ms. */
  minDelayMs: number;
  maxDelayMs: number;
  /** Chance a request is lost (its link then dies by the deadline). */
  dropRate: number;
  /** Chance a request is delivered twice (the second reply is discarded). */
  duplicateRate: number;
}

/** A network without faults: 1-5 ms delays. */
export const CALM: Faults = { minDelayMs: 1, maxDelayMs: 5, dropRate: 0, duplicateRate: 0 };

/** Counts of what the network did, for the summary. */
export interface NetStats {
  requests: number;
  dropped: number;
  duplicated: number;
  refusedDials: number;
}

/** The simulated network. */
export class SimNetwork {
  readonly #clock: SimClock;
  readonly #nodes = new Map<string, Protocol>();
  readonly #links = new Set<SimLink>();
  /** Group of each URL while partitioned; nodes in different groups cannot talk. */
  #groups: Map<string, number> | null = null;
  faults: Faults = CALM;
  readonly stats: NetStats = { requests: 0, dropped: 0, duplicated: 0, refusedDials: 0 };

  /** A network on `clock`. */
  constructor(clock: SimClock) {
    this.#clock = clock;
  }

  /** Puts a node's protocol handler at `url` (a restarted node comes back the same way). */
  attach(url: string, protocol: Protocol): void {
    this.#nodes.set(url, protocol);
  }

  /** Takes the node at `url` off the network: its links close both ways. */
  detach(url: string): void {
    this.#nodes.delete(url);
    for (const link of this.#links) {
      if (link.from === url || link.url === url) link.close("the node went down");
    }
  }

  /** Splits the network into groups of URLs; links between groups close. */
  partition(groups: readonly (readonly string[])[]): void {
    this.#groups = new Map(groups.flatMap((g, i) => g.map((url) => [url, i] as [string, number])));
    for (const link of this.#links) {
      if (!this.canTalk(link.from, link.url)) link.close("network partition");
    }
  }

  /** Ends a partition. */
  heal(): void {
    this.#groups = null;
  }

  /** Whether `a` and `b` can reach each other now. */
  canTalk(a: string, b: string): boolean {
    if (!this.#nodes.has(a) || !this.#nodes.has(b)) return false;
    return this.#groups === null || this.#groups.get(a) === this.#groups.get(b);
  }

  /** The dialer the node at `from` uses. */
  dialerFor(from: string): Dialer {
    return {
      dial: (url: string, opts: DialOptions) =>
        new Promise<Link>((resolve, reject) => {
          this.#clock.setTimeout(() => {
            if (opts.signal?.aborted) {
              reject(new DialFailed(url, "aborted", "the dial was aborted"));
            } else if (!this.canTalk(from, url)) {
              this.stats.refusedDials++;
              reject(new DialFailed(url, "connect", "connection refused (simulated)"));
            } else {
              const link = new SimLink(this, this.#clock, from, url);
              this.#links.add(link);
              link.closed.then(() => this.#links.delete(link));
              resolve(link);
            }
          }, this.delay());
        }),
    };
  }

  /** A one-way delay drawn from the seed. */
  delay(): number {
    const { minDelayMs, maxDelayMs } = this.faults;
    return minDelayMs + Math.floor(this.#clock.random() * (maxDelayMs - minDelayMs + 1));
  }

  /** The handler at `url`, if it is up. */
  handler(url: string): Protocol | undefined {
    return this.#nodes.get(url);
  }
}

/** One simulated link: requests answered in order, a deadline on each. */
class SimLink implements Link {
  readonly #net: SimNetwork;
  readonly #clock: SimClock;
  /** The connection's session on the receiving node (its `hello` sets the peer). */
  readonly #session = newSession();
  #closedReason: string | null = null;
  #resolveClosed!: (reason: string) => void;
  readonly closed: Promise<string>;
  #pending = new Set<(error: Error) => void>();
  /** Replies leave in request order: none before the one before it. */
  #lastReplyAt = 0;

  constructor(net: SimNetwork, clock: SimClock, readonly from: string, readonly url: string) {
    this.#net = net;
    this.#clock = clock;
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  request(op: string, args?: Record<string, unknown>, opts?: RequestOptions): Promise<Reply> {
    if (this.#closedReason !== null) {
      return Promise.reject(new LinkClosed(this.url, this.#closedReason));
    }
    const deadline = opts?.deadlineMs ?? DEFAULT_DEADLINE_MS;
    const text = JSON.stringify(args === undefined ? { op } : { op, args });
    const stats = this.#net.stats;
    stats.requests++;
    return new Promise<Reply>((resolve, reject) => {
      let done = false;
      const fail = (error: Error) => {
        if (done) return;
        done = true;
        this.#pending.delete(fail);
        reject(error);
      };
      this.#pending.add(fail);
      this.#clock.setTimeout(() => {
        if (done) return;
        fail(new DeadlineExceeded(this.url, op, deadline));
        this.close(`no reply to "${op}" within ${deadline} ms`);
      }, deadline);
      const faults = this.#net.faults;
      if (this.#clock.random() < faults.dropRate) {
        stats.dropped++;
        return; // lost: the deadline closes the link
      }
      const copies = this.#clock.random() < faults.duplicateRate ? 2 : 1;
      if (copies === 2) stats.duplicated++;
      for (let copy = 0; copy < copies; copy++) {
        this.#clock.setTimeout(() => {
          const target = this.#net.handler(this.url);
          if (done || this.#closedReason !== null || !target) return;
          if (!this.#net.canTalk(this.from, this.url)) return;
          void this.#clock.track(target.handle(text, this.#session)).then((reply) => {
            if (copy > 0) return; // a duplicate's reply is not the one awaited
            const at = Math.max(this.#clock.now() + this.#net.delay(), this.#lastReplyAt);
            this.#lastReplyAt = at;
            const wire = JSON.stringify(reply);
            this.#clock.setTimeout(() => {
              if (done || this.#closedReason !== null) return;
              done = true;
              this.#pending.delete(fail);
              resolve(JSON.parse(wire) as Reply);
            }, at - this.#clock.now());
          });
        }, this.#net.delay() + copy);
      }
    });
  }

  close(reason = "closed"): void {
    if (this.#closedReason !== null) return;
    this.#closedReason = reason;
    for (const fail of [...this.#pending]) fail(new LinkClosed(this.url, reason));
    this.#resolveClosed(reason);
  }
}
