/**
 * A node's place in the network: live links to its peers, gossip of transactions and blocks,
 * catch-up by block locator, and pool reconciliation.
 *
 * Each node dials the peers it knows (`--peer`, `register`, addresses other peers share) and
 * talks to them over its own outbound links only, with the lab's ops (`merge {pool}`, `merge
 * {blocks}`) plus foxchain's (`hello`, `blocks {locator}`, `pool {ids}` / `{want}`). A peer
 * that dials us says in `hello` where it listens, and we dial it back: every pair of nodes ends
 * up with a link each way, and each side pushes on its own. What comes in over a connection
 * whose `hello` was accepted is attributed to that peer, so it is never relayed back to it.
 */
import type { Logger } from "@logtape/logtape";
import { describeChainRules } from "../consensus/rules.ts";
import { realScheduler, type Scheduler, type TimerHandle } from "../core/scheduler.ts";
import type { Block } from "../core/block.ts";
import { type Tx, txId, txToWire } from "../core/transaction.ts";
import { logger } from "../node/log.ts";
import {
  LIMITS,
  type NetworkHooks,
  newSession,
  type Protocol,
  type Reply,
  type Session,
  type TakenBlock,
} from "../node/protocol.ts";
import type { Store } from "../store/store.ts";
import { type Hello, helloMismatch, parseHello } from "./hello.ts";
import type { Dialer, Link } from "./link.ts";
import { HandshakeRefused, PeerConnection, type PeerTimings } from "./peer_connection.ts";
import { BoundedSet } from "./seen.ts";
import { wsDialer } from "./ws_conn.ts";

/** Timings and bounds of the network layer (milliseconds, counts). */
export interface NetworkTimings {
  /** Transactions wait at most this long to be relayed in one batch. */
  relayDelayMs: number;
  /** A relay batch is sent at once when it holds this many transactions. */
  relayBatch: number;
  /** Every this often each link is asked for blocks after our tip (a catch-up). */
  syncEveryMs: number;
  /** Every this often each link's pool is reconciled with ours. */
  reconcileEveryMs: number;
  /** How often the tip is read to push blocks this node's builder (in any process) cut. */
  tipPollMs: number;
  /** Blocks asked for in one catch-up page. */
  pageBlocks: number;
  /** Pages of one catch-up round at most (then the next round goes on). */
  maxPages: number;
  /** Outbound links kept at most. */
  maxLinks: number;
  /** Deadline of each request on a link. */
  deadlineMs: number;
  /** Transaction ids and block hashes remembered as seen. */
  seenCapacity: number;
  /** Invalid blocks or transactions from one peer before its link is dropped for a while. */
  faultLimit: number;
  /** How long a peer dropped for faults is left alone. */
  banMs: number;
}

/** The defaults. */
export const NETWORK_DEFAULTS: NetworkTimings = {
  relayDelayMs: 20,
  relayBatch: 1_000,
  syncEveryMs: 10_000,
  reconcileEveryMs: 30_000,
  tipPollMs: 250,
  pageBlocks: 500,
  maxPages: 1_000,
  maxLinks: 8,
  deadlineMs: 10_000,
  seenCapacity: 100_000,
  faultLimit: 20,
  banMs: 10 * 60_000,
};

/** Options of a network layer. */
export interface NetworkOptions {
  /** The node's store. */
  store: Store;
  /** The node's protocol handler: the network attaches to it. */
  protocol: Protocol;
  /** The network's name (default DEFAULT_NETWORK). */
  name: string;
  /** The URL peers can dial this node at, or null. */
  listen: string | null;
  /** Peers to link to from the start (`--peer`). */
  peers?: readonly string[];
  /** Opens links (default: WebSocket). */
  dialer?: Dialer;
  /** Timers, clock and randomness (default: the real ones). */
  scheduler?: Scheduler;
  /** This node's id (default: 16 random bytes in hex). */
  nodeId?: string;
  /** Timings of the network layer. */
  timings?: Partial<NetworkTimings>;
  /** Timings of each peer link. */
  linkTimings?: Partial<PeerTimings>;
}

/** What `status` and `peers` show of one link. */
export interface LinkInfo {
  /** The URL dialled. */
  url: string;
  /** idle, connecting, up, down, refused, stopped or banned. */
  state: string;
  /** The peer's node id, once a handshake succeeded. */
  node: string | null;
  /** The peer's height as last heard. */
  height: number | null;
  /** The peer's tip as last heard. */
  tip: string | null;
  /** Blocks the peer is ahead of us (negative: behind), or null before its hello. */
  lag: number | null;
  /** When the peer last answered (POSIX seconds), or null. */
  lastSeen: number | null;
  /** Why the link failed or was refused last, or null. */
  error: string | null;
  /** `lab` when the peer speaks only the lab's ops (no `hello`). */
  kind: "foxchain" | "lab";
}

/** One outbound link and what we know of its peer. */
interface Peer {
  conn: PeerConnection<Hello | null>;
  /** The peer's hello (null for a lab node), while up. */
  hello: Hello | null;
  /** Height and tip as last heard. */
  height: number | null;
  tip: string | null;
  lastSeen: number | null;
  /** The session its fetched blocks and transactions are merged under. */
  session: Session;
  /** A catch-up runs; `again` asks for one more round when it ends. */
  syncing: boolean;
  again: boolean;
  reconciling: boolean;
  /** Relays waiting for the merge in flight on this link, and whether one is. */
  outbox: Tx[];
  sending: boolean;
  bannedUntil: number;
  error: string | null;
}

/** The network layer of one node. */
export class Network implements NetworkHooks {
  /** This node's id. */
  readonly nodeId: string;
  /** The network's name. */
  readonly name: string;
  readonly #store: Store;
  readonly #protocol: Protocol;
  readonly #dialer: Dialer;
  readonly #scheduler: Scheduler;
  readonly #t: NetworkTimings;
  readonly #linkTimings: Partial<PeerTimings>;
  readonly #log: Logger = logger("net");
  readonly #listen: string | null;
  readonly #initial: readonly string[];
  readonly #peers = new Map<string, Peer>();
  readonly #seenTx: BoundedSet<string>;
  readonly #announced: BoundedSet<string>;
  readonly #tasks = new Set<Promise<unknown>>();
  #relay: { tx: Tx; from: string | null }[] = [];
  #relayTimer: TimerHandle | undefined;
  readonly #timers = new Map<string, TimerHandle>();
  #tip: { height: number; hash: string | null } = { height: -1, hash: null };
  #started = false;
  #polling = false;
  #stopped = false;

  /** A network layer for one node; attaches to `opts.protocol`. Call `start()` to link. */
  constructor(opts: NetworkOptions) {
    this.#store = opts.store;
    this.#protocol = opts.protocol;
    this.name = opts.name;
    this.#listen = opts.listen;
    this.#initial = opts.peers ?? [];
    this.#dialer = opts.dialer ?? wsDialer;
    this.#scheduler = opts.scheduler ?? realScheduler;
    this.#t = { ...NETWORK_DEFAULTS, ...opts.timings };
    this.#linkTimings = opts.linkTimings ?? {};
    this.nodeId = opts.nodeId ?? randomId();
    this.#seenTx = new BoundedSet(this.#t.seenCapacity);
    this.#announced = new BoundedSet(this.#t.seenCapacity);
    opts.protocol.attach(this);
  }

  /** Starts linking: to the `--peer` URLs and the peers the store knows, up to `maxLinks`. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const tip = await this.#store.tip();
    this.#tip = { height: tip.height, hash: tip.hash };
    // The blocks we hold are announced already as far as pushing goes: peers catch up on link.
    if (tip.hash) this.#announced.add(tip.hash);
    await this.#store.addPeers(this.#initial, LIMITS.peers);
    for (const url of [...this.#initial, ...await this.#store.peers()]) this.#link(url);
    this.#every("tip", this.#t.tipPollMs, () => this.#task(this.#pollTip()));
    this.#every("sync", this.#t.syncEveryMs, () => {
      for (const url of this.#peers.keys()) this.#sync(url);
    });
    this.#every("reconcile", this.#t.reconcileEveryMs, () => {
      for (const url of this.#peers.keys()) this.#reconcile(url);
    });
  }

  /** Stops every link and timer, and waits for the work under way. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers.values()) this.#scheduler.clearTimeout(timer);
    this.#scheduler.clearTimeout(this.#relayTimer);
    await Promise.all([...this.#peers.values()].map((p) => p.conn.stop("node stopping")));
    await this.idle();
  }

  /** Resolves once no network task runs (for tests and the simulation). */
  async idle(): Promise<void> {
    for (let round = 0; round < 1000 && this.#tasks.size > 0; round++) {
      await Promise.allSettled([...this.#tasks]);
    }
  }

  /** The links, for `status` and `peers`. */
  links(): LinkInfo[] {
    const now = this.#scheduler.now();
    return [...this.#peers.entries()].map(([url, p]) => {
      const info = p.conn.info();
      const banned = p.bannedUntil > now;
      return {
        url,
        state: banned ? "banned" : info.state,
        node: p.hello?.node ?? null,
        height: p.height,
        tip: p.tip,
        lag: p.height === null ? null : p.height - this.#tip.height,
        lastSeen: p.lastSeen === null ? null : p.lastSeen / 1000,
        error: p.error ?? info.lastError,
        kind: info.state === "up" && p.hello === null ? "lab" : "foxchain",
      };
    });
  }

  /** Links that are up now. */
  liveLinks(): number {
    return [...this.#peers.values()].filter((p) => p.conn.state === "up").length;
  }

  // ---- NetworkHooks: what the protocol tells us -------------------------------------------

  /** `hello` from a peer that dialled us. */
  async hello(args: Record<string, unknown>, session: Session): Promise<Reply> {
    const theirs = parseHello(args);
    if (typeof theirs === "string") return { status: 400, error: theirs, response: null };
    const mismatch = helloMismatch(theirs, this.name, this.#store.rules, this.nodeId);
    if (mismatch) {
      this.#log.warn`Refused a link from node ${theirs.node}: ${mismatch}.`;
      // Our hello goes with the refusal, so the other side can say in its own words why.
      return { status: 409, error: `Refused: ${mismatch}`, response: { ...await this.#hello() } };
    }
    session.peer = theirs.node;
    // Dial it back, so that we push to it too.
    if (theirs.listen && theirs.listen !== this.#listen) {
      const url = normalUrl(theirs.listen);
      if (url) {
        await this.#store.addPeers([url], LIMITS.peers);
        this.#link(url);
      }
    }
    return { status: 200, error: "OK", response: { ...await this.#hello() } };
  }

  /** Transactions a merge added: relay them to every link but the one they came from. */
  admitted(txs: readonly Tx[], from: string | null): void {
    for (const tx of txs) {
      if (!this.#seenTx.add(txId(tx))) continue;
      this.#relay.push({ tx, from });
    }
    if (this.#relay.length >= this.#t.relayBatch) this.#flushRelay();
    else if (this.#relay.length > 0 && this.#relayTimer === undefined) {
      this.#relayTimer = this.#scheduler.setTimeout(() => this.#flushRelay(), this.#t.relayDelayMs);
    }
  }

  /** Blocks a merge stored: push them to every link but the source, competing tips too. */
  taken(blocks: readonly TakenBlock[], from: string | null): void {
    const fresh = blocks.filter((b) => this.#announced.add(b.block.hash)).map((b) => b.block);
    if (fresh.length > 0) this.#pushBlocks(fresh as Block[], from);
    // A block that moved the tip: the poll would find it, but pushing now is faster.
    this.#task(this.#pollTip());
  }

  /** A peer's merge held a block whose parent we lack: catch up from that peer. */
  unknownParent(from: string): void {
    for (const [url, p] of this.#peers) if (p.hello?.node === from) this.#sync(url);
  }

  /** A peer pushed us a block it holds: its link shows it from now on, if higher. */
  heard(from: string, height: number, hash: string): void {
    for (const p of this.#peers.values()) {
      if (p.hello?.node !== from) continue;
      p.lastSeen = this.#scheduler.now();
      if (p.height === null || height >= p.height) {
        p.height = height;
        p.tip = hash;
      }
    }
  }

  /** For `status`: the network's name, this node's id, the links. */
  describe(): Record<string, unknown> {
    return {
      name: this.name,
      node: this.nodeId,
      listen: this.#listen,
      live: this.liveLinks(),
      links: this.links(),
    };
  }

  // ---- links ------------------------------------------------------------------------------

  /** Starts an outbound link to `url` unless there is one or the cap is reached. */
  #link(url: string): void {
    if (this.#stopped || this.#peers.has(url) || url === this.#listen) return;
    // A refused peer (another network) stays listed with its reason but holds no slot.
    const holding = [...this.#peers.values()].filter((p) => p.conn.state !== "refused").length;
    if (holding >= this.#t.maxLinks) return;
    const conn = new PeerConnection<Hello | null>(url, {
      ...this.#linkTimings,
      dialer: this.#dialer,
      scheduler: this.#scheduler,
      handshake: (link) => this.#handshake(link),
    });
    const peer: Peer = {
      conn,
      hello: null,
      height: null,
      tip: null,
      lastSeen: null,
      session: newSession(),
      syncing: false,
      again: false,
      reconciling: false,
      outbox: [],
      sending: false,
      bannedUntil: 0,
      error: null,
    };
    this.#peers.set(url, peer);
    conn.on((event) => {
      if (event.type === "up") {
        peer.hello = event.hello;
        peer.session = { peer: event.hello?.node ?? null, faults: 0 };
        peer.height = event.hello?.height ?? null;
        peer.tip = event.hello?.tip ?? null;
        peer.lastSeen = this.#scheduler.now();
        peer.error = null;
        this.#log.debug`Linked to ${url}${
          event.hello
            ? ` (node ${event.hello.node.slice(0, 8)}, height ${event.hello.height})`
            : " (a lab node)"
        }.`;
        if (event.hello) {
          this.#sync(url);
          this.#reconcile(url);
          this.#task(this.#sharePeers(url, event.link));
        }
      } else if (event.type === "down") {
        peer.error = event.reason;
      } else if (event.type === "refused") {
        // The connection logged it ("Link to ... is refused: ...").
        peer.error = event.reason;
      }
    });
    conn.start();
  }

  /** Our side of `hello` on a new outbound link. */
  async #handshake(link: Link): Promise<Hello | null> {
    const reply = await link.request("hello", { ...await this.#hello() }, {
      deadlineMs: this.#t.deadlineMs,
    });
    // A lab node does not know `hello`: link anyway, pushing it the lab's merges.
    if (reply.status === 404) return null;
    if (reply.status === 409) {
      // "it is on network X, this node on Y" from the peer is about us: said from our side.
      const refuser = parseHello(reply.response);
      const why = typeof refuser === "string"
        ? null
        : helloMismatch(refuser, this.name, this.#store.rules, this.nodeId);
      throw new HandshakeRefused(why ?? `the peer refused: ${reply.error}`, true);
    }
    if (reply.status !== 200) throw new HandshakeRefused(`hello: ${reply.status} ${reply.error}`);
    const theirs = parseHello(reply.response);
    if (typeof theirs === "string") throw new HandshakeRefused(`bad hello: ${theirs}`, true);
    const mismatch = helloMismatch(theirs, this.name, this.#store.rules, this.nodeId);
    if (mismatch) throw new HandshakeRefused(mismatch, true);
    for (const [url, p] of this.#peers) {
      // Two URLs of one node (an alias, or it dialled us and we it under another name).
      if (p.hello?.node === theirs.node && p.conn.state === "up" && url !== link.url) {
        throw new HandshakeRefused(`already linked to that node at ${url}`, true);
      }
    }
    return theirs;
  }

  async #hello(): Promise<Hello> {
    const tip = await this.#store.tip();
    return {
      network: this.name,
      rules: describeChainRules(this.#store.rules),
      node: this.nodeId,
      height: tip.height,
      tip: tip.hash,
      listen: this.#listen,
    };
  }

  /** Asks a peer for the peers it knows and links to new ones while under the cap. */
  async #sharePeers(url: string, link: Link): Promise<void> {
    const reply = await this.#request(url, link, "peers");
    const urls = reply?.status === 200 && Array.isArray(reply.response?.peers)
      ? (reply.response.peers as unknown[]).flatMap((u) => {
        const n = typeof u === "string" ? normalUrl(u) : null;
        return n ? [n] : [];
      }).slice(0, LIMITS.peers)
      : [];
    if (urls.length === 0) return;
    await this.#store.addPeers(urls, LIMITS.peers);
    for (const u of urls) this.#link(u);
  }

  /** A request on a peer's link, with the deadline; null when the link failed. */
  async #request(
    url: string,
    link: Link,
    op: string,
    args?: Record<string, unknown>,
  ): Promise<Reply | null> {
    const peer = this.#peers.get(url);
    try {
      const reply = await link.request(op, args, { deadlineMs: this.#t.deadlineMs });
      if (peer) peer.lastSeen = this.#scheduler.now();
      return reply;
    } catch (error) {
      if (peer) peer.error = error instanceof Error ? error.message : String(error);
      return null;
    }
  }

  /** Up links other than the one to node `except`, with their URL. */
  #upLinks(except: string | null): [string, Peer, Link][] {
    const now = this.#scheduler.now();
    return [...this.#peers.entries()].flatMap(([url, p]) => {
      const link = p.conn.link;
      if (!link || p.conn.state !== "up" || p.bannedUntil > now) return [];
      if (except !== null && p.hello?.node === except) return [];
      return [[url, p, link] as [string, Peer, Link]];
    });
  }

  /** Counts a peer's fault; past the limit its link is dropped for `banMs`. */
  #fault(url: string, peer: Peer, why: string): void {
    peer.session.faults++;
    if (peer.session.faults < this.#t.faultLimit) return;
    peer.bannedUntil = this.#scheduler.now() + this.#t.banMs;
    peer.session.faults = 0;
    peer.error = `dropped for ${this.#t.banMs / 1000} s: ${why}`;
    this.#log.warn`Dropping the link to ${url} for ${this.#t.banMs / 1000} s: ${why}.`;
    peer.conn.link?.close("too many invalid blocks or transactions");
  }

  // ---- gossip -----------------------------------------------------------------------------

  #flushRelay(): void {
    this.#scheduler.clearTimeout(this.#relayTimer);
    this.#relayTimer = undefined;
    const batch = this.#relay;
    this.#relay = [];
    if (batch.length === 0) return;
    for (const [url, peer] of this.#upLinks(null)) {
      const node = peer.hello?.node ?? null;
      for (const r of batch) if (r.from === null || r.from !== node) peer.outbox.push(r.tx);
      this.#sendOutbox(url, peer);
    }
  }

  /**
   * Sends a peer's queued relays, one merge in flight at a time: a link answers in order, so
   * relays sent all at once would queue every block push behind them (forks then last as long
   * as the queue). What queues meanwhile goes in the next merge. The queue is bounded: past
   * `seenCapacity` the oldest relays are dropped (reconciliation brings them).
   */
  #sendOutbox(url: string, peer: Peer): void {
    if (peer.outbox.length > this.#t.seenCapacity) {
      peer.outbox.splice(0, peer.outbox.length - this.#t.seenCapacity);
    }
    if (peer.sending || peer.outbox.length === 0) return;
    const link = peer.conn.link;
    if (!link || peer.conn.state !== "up") return;
    const part = peer.outbox.splice(0, RELAY_ITEMS).map(txToWire);
    peer.sending = true;
    this.#task(
      this.#request(url, link, "merge", { pool: part }).finally(() => {
        peer.sending = false;
        this.#sendOutbox(url, peer);
      }),
    );
  }

  #pushBlocks(blocks: readonly Block[], from: string | null): void {
    const parts = chunks(blocks, RELAY_ITEMS, (b) => b.items.length);
    for (const [url, peer, link] of this.#upLinks(from)) {
      for (const part of parts) {
        this.#task((async () => {
          const reply = await this.#request(url, link, "merge", { blocks: part });
          // A plain 202 took every block (stored or known): the peer holds the last one.
          const last = part[part.length - 1];
          if (reply?.status === 202 && !reply.response && (peer.height ?? -1) <= last.height) {
            peer.height = last.height;
            peer.tip = last.hash;
          }
        })());
      }
    }
  }

  /**
   * Pushes the blocks of the best chain that no peer was told of yet: those this node's
   * builder cut (in this process or another on the same database) and the new branch after a
   * reorg. At most a page; peers further behind catch up by locator.
   */
  async #pollTip(): Promise<void> {
    if (this.#polling) return; // what it would find, the next timed poll finds
    this.#polling = true;
    try {
      await this.#pushNewTip();
    } finally {
      this.#polling = false;
    }
  }

  async #pushNewTip(): Promise<void> {
    const tip = await this.#store.tip();
    if (tip.hash === this.#tip.hash) return;
    this.#tip = { height: tip.height, hash: tip.hash };
    const fresh: Block[] = [];
    for (let h = tip.height; h >= 0 && fresh.length < PUSH_WINDOW; h--) {
      const block = await this.#store.block(h);
      if (!block || this.#announced.has(block.hash)) break;
      fresh.unshift(block);
    }
    for (const block of fresh) this.#announced.add(block.hash);
    if (fresh.length > 0) this.#pushBlocks(fresh, null);
  }

  // ---- catch-up and reconciliation --------------------------------------------------------

  /** Catches up from the peer at `url` by block locator, page by page. One at a time per link. */
  #sync(url: string): void {
    const peer = this.#peers.get(url);
    if (!peer || peer.hello === null || this.#stopped) return;
    if (peer.syncing) {
      peer.again = true;
      return;
    }
    peer.syncing = true;
    this.#task((async () => {
      try {
        do {
          peer.again = false;
          await this.#syncRound(url, peer);
        } while (peer.again && !this.#stopped);
      } finally {
        peer.syncing = false;
      }
    })());
  }

  async #syncRound(url: string, peer: Peer): Promise<void> {
    let extra: string[] = [];
    for (let page = 0; page < this.#t.maxPages; page++) {
      const link = peer.conn.link;
      if (!link || this.#stopped) return;
      const locator = [...extra, ...await this.#store.locator()].slice(0, LIMITS.locator);
      const reply = await this.#request(url, link, "blocks", {
        locator,
        limit: this.#t.pageBlocks,
      });
      if (!reply) return;
      if (reply.status !== 200 || !Array.isArray(reply.response?.blocks)) {
        this.#fault(url, peer, `blocks: ${reply.status} ${reply.error}`);
        return;
      }
      const response = reply.response!;
      const blocks = response.blocks as Record<string, unknown>[];
      if (typeof response.height === "number") peer.height = response.height;
      if (typeof response.tip === "string") peer.tip = response.tip;
      if (blocks.length === 0) return;
      const first = blocks[0].height;
      const last = blocks[blocks.length - 1];
      const total = typeof response.height === "number" ? response.height + 1 : "?";
      if (blocks.length > 1 || page > 0) {
        this.#log.info`Syncing from ${url}: blocks ${first}..${last.height} of ${total}`;
      }
      const invalidBefore = peer.session.faults;
      // Blocks that extend our tip go in by runs, one commit each; the rest (a fork, or the
      // first block a run refused) one by one through the merge path, which says why.
      const appended = await this.#appendRuns(blocks);
      for (let i = appended; i < blocks.length; i += LIMITS.mergeBlocks) {
        await this.#protocol.mergeFrom(
          { blocks: blocks.slice(i, i + LIMITS.mergeBlocks) },
          peer.session,
        );
        if (peer.session.faults > invalidBefore) break;
      }
      if (peer.session.faults > invalidBefore) {
        this.#fault(url, peer, "it sent invalid blocks");
        return;
      }
      if (typeof last.hash === "string") {
        // The next page starts after this one even while it is a side branch here.
        extra = [last.hash];
      }
      if (response.next === undefined) return;
    }
  }

  /**
   * Appends the leading blocks of a catch-up page that extend our tip, in runs that fit one
   * KV commit each (`Store.appendBlocks`: the same validator, one commit per run instead of
   * per block). Returns how many were appended; it stops at the first run refused.
   */
  async #appendRuns(wire: readonly Record<string, unknown>[]): Promise<number> {
    const tip = await this.#store.tip();
    if (wire.length < 2 || wire[0].prev_hash !== tip.hash) return 0;
    const blocks: Block[] = [];
    for (const b of wire) {
      if (typeof b.height !== "number" || !Array.isArray(b.items)) break;
      blocks.push(b as unknown as Block);
    }
    let done = 0;
    // A run the store finds too large for one commit is halved until it fits (the store's
    // budget, not a guess here, decides); any other refusal ends the fast path.
    let size = APPEND_RUN_BLOCKS;
    while (done < blocks.length) {
      const run = blocks.slice(done, done + size);
      const result = await this.#store.appendBlocks(run);
      if (!result.ok) {
        if ("tooLarge" in result && result.tooLarge && size > 1) {
          size = Math.max(1, size >> 1);
          continue;
        }
        break;
      }
      done += run.length;
      for (const block of run) this.#announced.add(block.hash);
    }
    if (done > 0) this.#task(this.#pollTip());
    return done;
  }

  /** Reconciles pools with the peer at `url`: its ids first, then what we lack. */
  #reconcile(url: string): void {
    const peer = this.#peers.get(url);
    if (!peer || peer.hello === null || peer.reconciling || this.#stopped) return;
    peer.reconciling = true;
    this.#task((async () => {
      try {
        const link = peer.conn.link;
        if (!link) return;
        const reply = await this.#request(url, link, "pool", {
          ids: true,
          limit: LIMITS.poolIds,
        });
        if (!reply || reply.status !== 200 || !Array.isArray(reply.response?.ids)) return;
        const ids = (reply.response.ids as unknown[]).filter((id): id is string =>
          typeof id === "string"
        ).slice(0, LIMITS.poolIds);
        const records = await this.#store.lookupTxs(ids);
        const missing = ids.filter((_, i) => records[i] === null);
        for (let i = 0; i < missing.length; i += 1_000) {
          const got = await this.#request(url, link, "pool", { want: missing.slice(i, i + 1_000) });
          if (!got || got.status !== 200 || !Array.isArray(got.response?.pool)) return;
          await this.#protocol.mergeFrom({ pool: got.response.pool }, peer.session);
        }
      } finally {
        peer.reconciling = false;
      }
    })());
  }

  // ---- bookkeeping ------------------------------------------------------------------------

  /** Runs `fn` every `ms` until the network stops. */
  #every(name: string, ms: number, fn: () => void): void {
    const tick = () => {
      if (this.#stopped) return;
      try {
        fn();
      } finally {
        if (!this.#stopped) this.#timers.set(name, this.#scheduler.setTimeout(tick, ms));
      }
    };
    this.#timers.set(name, this.#scheduler.setTimeout(tick, ms));
  }

  /** Tracks background work so `idle()` and `stop()` can wait for it; logs its failure. */
  #task(work: Promise<unknown>): void {
    const tracked = work.catch((error) => {
      if (!this.#stopped) {
        this.#log.warn`Network task failed: ${error instanceof Error ? error.message : error}`;
      }
    });
    this.#tasks.add(tracked);
    tracked.finally(() => this.#tasks.delete(tracked));
  }
}

/**
 * Transactions (loose, or inside blocks) in one relayed `merge`: about 150 bytes each, so a
 * merge stays near 600 KB, under the 1 MiB a node takes by default (`--max-message`).
 */
const RELAY_ITEMS = 4_000;

/** New best-chain blocks pushed at most at once; peers further behind catch up by locator. */
const PUSH_WINDOW = 100;

/** Blocks tried in one catch-up run at first; halved while the store says it is too large. */
const APPEND_RUN_BLOCKS = 128;

/** Splits `list` into runs of at most `max` weight and LIMITS.mergeBlocks entries. */
function chunks<T>(list: readonly T[], max: number, weight: (x: T) => number): T[][] {
  const out: T[][] = [];
  let run: T[] = [];
  let sum = 0;
  for (const x of list) {
    const w = weight(x);
    if (run.length > 0 && (sum + w > max || run.length >= LIMITS.mergeBlocks)) {
      out.push(run);
      run = [];
      sum = 0;
    }
    run.push(x);
    sum += w;
  }
  if (run.length > 0) out.push(run);
  return out;
}

/** A `ws://` or `wss://` URL in normal form, or null. */
export function normalUrl(input: string): string | null {
  if (input.length > 512) return null;
  try {
    const url = new URL(input);
    return url.protocol === "ws:" || url.protocol === "wss:" ? url.href : null;
  } catch {
    return null;
  }
}

function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
