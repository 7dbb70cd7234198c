/**
 * The lab's WebSocket protocol, independent of the transport: one request text in, one reply
 * object out. Envelope, ops, status codes and error texts follow the lab (PROTOCOL.md); the
 * ops `balance`, `tx` and `status` and the detailed `merge` replies are foxchain's additions.
 */
import type { Logger } from "@logtape/logtape";
import { blockHash, type Proof, type WireBlock } from "../core/block.ts";
import { describeChainRules } from "../consensus/rules.ts";
import { admitUnder } from "../consensus/signatures.ts";
import { type Clock, monotonicStamps, type Stamps, systemClock } from "../core/clock.ts";
import { sha256Hex } from "../core/hash.ts";
import { Feed, type FeedOptions, type Subscriber } from "./feed.ts";
import { logger } from "./log.ts";
import type { AcceptResult, AddOutcome, MergeRequest, Store } from "../store/store.ts";
import { BadCursor } from "../store/cursor.ts";
import { BlockIntake } from "./block_intake.ts";
import {
  checkTxFields,
  isAddress,
  type Item,
  show,
  type Tx,
  TX_ID,
  txId,
  txToWire,
  withSignature,
} from "../core/transaction.ts";
import { RELAY_MAX_AGE_SECONDS } from "../core/params.ts";
import { plural } from "../core/words.ts";

/** A reply envelope, as the lab sends it: `error` says "OK"/"Accepted" on success. */
export interface Reply {
  /** HTTP-like status code: 200, 202, 4xx or 500. */
  status: number;
  /** "OK" or "Accepted" on success, else the error text. */
  error: string;
  /** The op's result; null or absent when there is none. */
  response?: Record<string, unknown> | null;
}

/** Limits on what one request may ask for. */
export const LIMITS = {
  /** Transactions in one `merge`. */
  mergeItems: 10_000,
  /**
   * Blocks in one `merge`: as many as one `blocks` reply gives (blocksPage), so that a lab-5
   * tracker relaying a node's whole `blocks` list is taken whole; `--max-message` bounds the
   * bytes.
   */
  mergeBlocks: 1_000,
  /** Pool transactions in one `pool` reply. */
  poolPage: 10_000,
  /** Blocks in one `blocks` reply. */
  blocksPage: 1_000,
  /** Items (across blocks) in one `blocks` reply; at least one block is always returned. */
  blocksItems: 5_000,
  /** Peer URLs in one `register`, and peers kept in all. */
  peers: 1_000,
  /** Hashes in one block locator (`blocks {locator}`). */
  locator: 64,
  /** Ids in one `pool {ids: true}` reply, and asked for in one `pool {want}`. */
  poolIds: 10_000,
};

/**
 * What a connection knows about its other end: one per connection, kept by the server and
 * passed with each of its requests.
 */
export interface Session {
  /** The peer node's id once a `hello` on this connection was accepted; null for clients. */
  peer: string | null;
  /**
   * Faults a linked peer caused on this connection (invalid blocks or transactions, refused
   * requests); past PEER_FAULT_LIMIT the server closes the connection.
   */
  faults: number;
  /** Where events go once this connection sends `subscribe`; absent, `subscribe` is refused. */
  events?: Subscriber;
}

/**
 * A new session: a client until a `hello` says otherwise; `events` receives what it
 * `subscribe`s to.
 */
export function newSession(events?: Subscriber): Session {
  return events ? { peer: null, faults: 0, events } : { peer: null, faults: 0 };
}

/** Faults a linked peer may cause on one connection before it is closed. */
export const PEER_FAULT_LIMIT = 20;

/** What a block merge did with one block that was stored (tip, reorg or side branch). */
export interface TakenBlock {
  /** The block as offered. */
  block: WireBlock;
  /** Where it went. */
  result: AcceptResult;
}

/**
 * What the network layer adds to the protocol: the `hello` handshake, news of what a merge
 * took (to relay it), and the links for `status` and `peers`.
 */
export interface NetworkHooks {
  /** Answers `hello`; on acceptance it sets `session.peer`. */
  hello(args: Record<string, unknown>, session: Session): Promise<Reply>;
  /** Transactions a merge added to the pool; `from` is the peer that sent them, or null. */
  admitted(txs: readonly Tx[], from: string | null): void;
  /** Blocks a merge stored, in the order taken; `from` is the peer that sent them, or null. */
  taken(blocks: readonly TakenBlock[], from: string | null): void;
  /** A merge from peer `from` held a block whose parent is not known here: catch up. */
  unknownParent(from: string): void;
  /**
   * Peer `from` pushed a valid block at `height` with `hash` (new here or known): it holds that
   * block, so its link shows at least that height.
   */
  heard(from: string, height: number, hash: string): void;
  /** The network's name, this node's id and its links, for `status` and `peers`. */
  describe(): Record<string, unknown>;
  /** Links up now (for `/health`). */
  liveLinks(): number;
}
/** What a merge's `request_id` (idempotency key) may be: 1 to 128 printable ASCII characters. */
export const REQUEST_ID = /^[\x21-\x7e]{1,128}$/;

/** The window of merge logging (ms): at most MERGE_LOG_BURST lines of their own in each. */
export const MERGE_LOG_MS = 1000;
/** Merges logged one line each per window; past it, merges are summed into one line. */
export const MERGE_LOG_BURST = 10;

const OK = (response: Record<string, unknown>): Reply => ({ status: 200, error: "OK", response });
const ACCEPTED: Reply = { status: 202, error: "Accepted" };
const fail = (status: number, error: string): Reply => ({ status, error, response: null });
const requires = (op: string, arg: string) =>
  fail(500, `Operation "${op}" requires the following "args": "${arg}"`);

type Args = Record<string, unknown>;
type Handler = (args: Args | undefined, session: Session) => Promise<Reply>;

/** Options of a protocol handler. */
export interface ProtocolOptions {
  /** Time source (default the system clock). */
  clock?: Clock;
  /** The time zone `time` reports (default: this machine's). */
  timeZone?: string;
  /** How often `subscribe`d connections' sources are read, and how many may subscribe. */
  feed?: FeedOptions;
}

/** Answers protocol requests against a store. One instance serves all connections. */
export class Protocol {
  readonly #clock: Clock;
  readonly #stamps: Stamps;
  readonly #timeZone: string;
  readonly #log: Logger = logger("node");
  readonly #ops: Record<string, Handler>;
  readonly #noSession = newSession();
  readonly #intake: BlockIntake;
  readonly #feed: Feed;
  readonly #untip: () => void;
  /** Merges since the last merge log line, and when that line was written (clock ms). */
  #unlogged = { requests: 0, added: 0, known: 0, rejected: 0, since: 0 };
  #window = { start: -Infinity, lines: 0 };
  #network: NetworkHooks | null = null;
  /** The session of the request being handled (requests of one handle call run in turn). */

  /** A handler answering requests against `store`. */
  constructor(readonly store: Store, opts: ProtocolOptions = {}) {
    this.#clock = opts.clock ?? systemClock;
    this.#stamps = monotonicStamps(this.#clock);
    this.#intake = new BlockIntake(store);
    this.#timeZone = opts.timeZone ?? Intl.DateTimeFormat().resolvedOptions().timeZone;
    this.#ops = {
      register: (a) => this.#register(a),
      peers: () => this.#peers(),
      time: () => this.#time(),
      pool: (a) => this.#pool(a),
      merge: (a, session) => this.#merge(a, session),
      blocks: (a) => this.#blocks(a),
      balance: (a) => this.#balance(a),
      tx: (a) => this.#tx(a),
      status: () => this.#status(),
      hello: (a, session) => this.#hello(a, session),
      subscribe: (_, session) => this.#subscribe(session.events),
      unsubscribe: (_, session) => this.#unsubscribe(session.events),
    };
    // Events carry exactly what the ops of the same names answer, read as `handle` reads:
    // after a reorg under way in this process, never from half of it.
    const read = (op: () => Promise<Reply>) => async () => {
      await this.store.idle();
      return (await op()).response ?? {};
    };
    this.#feed = new Feed({
      status: read(() => this.#status()),
      peers: read(() => this.#peers()),
    }, opts.feed);
    // A new tip (built here, merged as blocks, or a reorg) reaches subscribers at once.
    this.#untip = store.onTipChange(() => this.#feed.poke());
  }

  /**
   * A `merge` as if received on `session`'s connection: how the network layer takes what it
   * fetched from a peer, through the same checks, logs and relays as a merge sent to us.
   */
  async mergeFrom(args: Record<string, unknown>, session: Session): Promise<Reply> {
    await this.store.idle();
    return await this.#merge(args, session);
  }

  /** Links to peers that are up now, or null when no network is attached. */
  liveLinks(): number | null {
    return this.#network ? this.#network.liveLinks() : null;
  }

  /** Connects the network layer: `hello` is answered, merges are relayed. Once only. */
  attach(network: NetworkHooks): void {
    if (this.#network) throw new Error("a network is attached already");
    this.#network = network;
  }

  /** The ops this node answers. */
  get ops(): string[] {
    return Object.keys(this.#ops);
  }

  /**
   * Answers one request message from the connection `session` describes (a client when
   * absent; `session.events` is where `subscribe` sends events, and without it `subscribe` is
   * refused). Never throws: a failure becomes a 500 reply.
   */
  async handle(text: string, session: Session = this.#noSession): Promise<Reply> {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return fail(500, "Cannot parse request message.");
    }
    if (typeof message !== "object" || message === null || Array.isArray(message)) {
      return fail(500, "Message body is not supported.");
    }
    const { op, args } = message as { op?: unknown; args?: unknown };
    if (typeof op !== "string") return fail(500, "Message body is not supported.");
    const handler = Object.hasOwn(this.#ops, op) ? this.#ops[op] : undefined;
    if (!handler) return fail(404, `Operation "${clip(op)}" is not supported`);
    // `args` that is not an object holds no named argument: the lab's `'pool' in args` was
    // false for it, so ops that need one answer "requires", and the others ignore it.
    const named = typeof args === "object" && args !== null && !Array.isArray(args);
    try {
      // A reorg under way in this process: answer once it is done, never from half of it.
      await this.store.idle();
      return await handler(named ? args as Args : undefined, session);
    } catch (error) {
      // The details (a KV error, a stack) are for the node's log, not for the client.
      this.#log.error`Operation ${op} failed: ${error}`;
      return fail(500, `Operation "${op}" failed on the node; try again later`);
    }
  }

  /** Connections subscribed to events now. */
  get subscribers(): number {
    return this.#feed.size;
  }

  /** Stops sending events to a connection (the server calls it when one closes). */
  disconnect(connection: Subscriber): void {
    this.#feed.unsubscribe(connection);
  }

  /** Stops all events and waits for a read under way; call before closing the store. */
  async close(): Promise<void> {
    this.#untip();
    await this.#feed.close();
  }

  #subscribe(connection: Subscriber | undefined): Promise<Reply> {
    if (!connection) {
      return Promise.resolve(fail(400, `Operation "subscribe" needs a WebSocket connection`));
    }
    if (!this.#feed.subscribe(connection)) {
      return Promise.resolve(
        fail(503, `Too many subscribers (at most ${this.#feed.maxSubscribers}); try again later`),
      );
    }
    return Promise.resolve(
      OK({ events: this.#feed.events, interval: this.#feed.intervalMs / 1000 }),
    );
  }

  #unsubscribe(connection: Subscriber | undefined): Promise<Reply> {
    if (connection) this.#feed.unsubscribe(connection);
    return Promise.resolve(OK({ events: [] }));
  }

  async #register(args: Args | undefined): Promise<Reply> {
    if (!args || !("addr" in args)) return requires("register", "addr");
    const given = Array.isArray(args.addr) ? args.addr : [args.addr];
    if (given.length > LIMITS.peers) {
      return fail(400, `register takes at most ${LIMITS.peers} addresses, got ${given.length}`);
    }
    const urls: string[] = [];
    const ignored: unknown[] = [];
    for (const addr of given) {
      const url = peerUrl(addr);
      if (url) urls.push(url);
      else ignored.push(addr);
    }
    // The cap is checked in the same commit as the add, so concurrent registers cannot pass it.
    const added = await this.store.addPeers(urls, LIMITS.peers);
    if (added > 0) this.#log.info`Registered ${plural(added, "new peer")}.`;
    // The lab ignores what is not a ws:// or wss:// URL; we still say so.
    if (ignored.length === 0) return ACCEPTED;
    return {
      ...ACCEPTED,
      response: { added, ignored: ignored.map((a) => typeof a === "string" ? clip(a) : show(a)) },
    };
  }

  async #peers(): Promise<Reply> {
    const links = this.#network?.describe().links;
    return OK({ peers: await this.store.peers(), ...(links ? { links } : {}) });
  }

  #time(): Promise<Reply> {
    return Promise.resolve(OK({ time: this.#clock.now() / 1000, time_zone: this.#timeZone }));
  }

  async #pool(args: Args | undefined): Promise<Reply> {
    if (args?.want !== undefined) return await this.#poolWant(args.want);
    const idsOnly = args?.ids === true;
    const max = idsOnly ? LIMITS.poolIds : LIMITS.poolPage;
    const limit = intArg(args, "limit", 1, max) ?? max;
    if (typeof limit === "string") return fail(400, limit);
    const cursor = args?.cursor;
    if (cursor !== undefined && typeof cursor !== "string") {
      return fail(400, `"cursor" must be the string a previous "pool" reply gave as "next"`);
    }
    let page;
    try {
      page = await this.store.poolPage(limit, cursor);
    } catch (error) {
      if (!(error instanceof BadCursor)) throw error;
      return fail(400, `"cursor" is not one a "pool" reply gave`);
    }
    const response: Record<string, unknown> = idsOnly
      ? { ids: page.txs.map(txId) }
      : { pool: page.txs.map(txToWire) };
    if (page.cursor) response.next = page.cursor;
    return OK(response);
  }

  /** `pool {want: [ids]}` (foxchain): those of the transactions that are in the pool. */
  async #poolWant(want: unknown): Promise<Reply> {
    if (
      !Array.isArray(want) || want.length > LIMITS.poolIds ||
      !want.every((id) => typeof id === "string" && TX_ID.test(id))
    ) {
      return fail(400, `"want" must be a list of at most ${LIMITS.poolIds} transaction ids`);
    }
    const records = await this.store.lookupTxs(want as string[]);
    const pool = records.flatMap((r) => r?.state === "pool" ? [txToWire(r.tx)] : []);
    return OK({ pool });
  }

  /** `hello` (foxchain): the handshake of a peer link, answered by the network layer. */
  async #hello(args: Args | undefined, session: Session): Promise<Reply> {
    if (!this.#network) return fail(503, "this node does not link to peers");
    if (!args) return requires("hello", "network");
    return await this.#network.hello(args, session);
  }

  async #merge(args: Args | undefined, session: Session): Promise<Reply> {
    if (!args || (!("pool" in args) && !("blocks" in args))) return requires("merge", "pool");
    // Both parts are checked for shape before anything is stored, so a malformed `blocks`
    // cannot answer 400 for a request whose `pool` was stored.
    const { pool, blocks } = args;
    if ("pool" in args) {
      if (!Array.isArray(pool)) return fail(400, `"pool" must be a list of transactions`);
      if (pool.length > LIMITS.mergeItems) {
        return fail(
          400,
          `merge takes at most ${LIMITS.mergeItems} transactions, got ${pool.length}`,
        );
      }
    }
    if ("blocks" in args) {
      if (!Array.isArray(blocks)) return fail(400, `"blocks" must be a list of blocks`);
      if (blocks.length > LIMITS.mergeBlocks) {
        return fail(400, `merge takes at most ${LIMITS.mergeBlocks} blocks, got ${blocks.length}`);
      }
    }
    // An idempotency key makes a retried merge safe (docs/decisions.md, "Retrying a merge").
    const requestId = args.request_id ?? undefined;
    if (requestId !== undefined) {
      if (typeof requestId !== "string" || !REQUEST_ID.test(requestId)) {
        return fail(400, `"request_id" must be 1 to 128 printable ASCII characters, no spaces`);
      }
      if ("blocks" in args) return fail(400, `"request_id" applies to a merge of "pool" only`);
    }
    // `verbose: true` asks for the ids in every reply (foxchain's `send` uses it); without it a
    // fully accepted merge gets exactly the lab's reply.
    const verbose = args.verbose === true;
    const details: Record<string, unknown> = {};
    let acceptedAny = false;
    let firstProblem = "";
    if (Array.isArray(pool)) {
      const result = requestId === undefined
        ? await this.#mergePool(pool, session)
        : await this.#mergeKeyed(requestId, pool, session);
      if ("status" in result) return result;
      const { accepted, known, rejected, replay, added } = result;
      if (session.peer) session.faults += rejected.length;
      if (this.#network && added.length > 0) this.#network.admitted(added, session.peer);
      if (pool.length > 0 && replay !== "stored") {
        this.#logMerge(accepted.length - known.length, known.length, rejected.length);
      }
      if (rejected.length > 0 || verbose) {
        for (const r of rejected) this.#log.debug`Rejected item ${r.index}: ${r.reason}`;
        details.accepted = accepted;
        details.known = known;
        details.rejected = rejected;
        if (replay) details.replay = replay;
        if (rejected.length > 0) firstProblem = `item ${rejected[0].index}: ${rejected[0].reason}`;
      }
      acceptedAny ||= accepted.length > 0 || pool.length === 0;
    }
    if (Array.isArray(blocks)) {
      const result = await this.#mergeBlocks(blocks, session);
      if (result.rejected.length > 0 || verbose) details.blocks = result;
      if (result.rejected.length > 0) {
        firstProblem ||= `block ${result.rejected[0].index}: ${result.rejected[0].reason}`;
      }
      acceptedAny ||= result.rejected.length === 0 || result.appended > 0 || result.known > 0 ||
        result.side > 0;
    }
    if (Object.keys(details).length === 0) return ACCEPTED;
    if (!acceptedAny) {
      return { status: 400, error: `Nothing accepted: ${firstProblem}`, response: details };
    }
    return { ...ACCEPTED, response: details };
  }

  /**
   * Checks every item of a merge's pool at time `now` (POSIX seconds); item `index` without a
   * `t` gets `stamp(index)`. Returns the valid ones and the reasons for the others.
   */
  #admitAll(
    pool: unknown[],
    now: number,
    stamp: (index: number) => number,
    session: Session,
  ): Admission {
    const valid: Admitted[] = [];
    const rejected: Rejection[] = [];
    const tooOld: { index: number; id: string }[] = [];
    pool.forEach((item, index) => {
      let stamped = false;
      // A linked peer relays what it admitted, maybe late (queued behind a partition, or
      // found by pool reconciliation): its transactions may be older than a client's.
      const stamper = () => {
        stamped = true;
        return stamp(index);
      };
      const checked = admitUnder(item, {
        now,
        stamp: stamper,
        maxAgeSeconds: session.peer ? RELAY_MAX_AGE_SECONDS : undefined,
      }, this.store.rules);
      if (checked.ok) valid.push({ tx: checked.value, stamped, index });
      else {
        rejected.push({ index, reason: checked.reason });
        // Too old, but maybe one we hold already (a tracker relays whole pools).
        const late = admitUnder(
          item,
          { now, stamp: stamper, maxAgeSeconds: Infinity },
          this.store.rules,
        );
        if (late.ok) tooOld.push({ index, id: txId(late.value) });
      }
    });
    return { valid, rejected, tooOld };
  }

  /** A merge of `pool` without a request id: each item without `t` is stamped now. */
  async #mergePool(pool: unknown[], session: Session): Promise<PoolResult> {
    const now = this.#clock.now() / 1000;
    const admission = this.#admitAll(pool, now, () => this.#stamps.next(), session);
    const outcomes = await this.#addStamped(admission.valid);
    const result = poolResult(admission, outcomes);
    // A too-old transaction this node holds is "known", not a rejection.
    const held = await this.store.lookupTxs(admission.tooOld.map((o) => o.id));
    const late = admission.tooOld.filter((_, i) => held[i] !== null);
    if (late.length === 0) return result;
    const lateIndexes = new Set(late.map((o) => o.index));
    return {
      ...result,
      accepted: [...result.accepted, ...late.map((o) => o.id)],
      known: [...result.known, ...late.map((o) => o.id)],
      rejected: result.rejected.filter((r) => !lateIndexes.has(r.index)),
    };
  }

  /**
   * A merge of `pool` under an idempotency key. The first time, the node records the key, the
   * time and a range of reserved stamps before it stores anything; items are admitted at that
   * time with stamps from that range, so every retry of the request admits exactly the same
   * transactions. A retry of a finished merge stores nothing and gets its result back
   * (`replay: "stored"`); a retry of one that was cut short (or still runs on another
   * connection) adds what is missing (`replay: "resumed"`; its `known` may list items the
   * first try stored). The same key with a different request is refused (409).
   */
  async #mergeKeyed(
    requestId: string,
    pool: unknown[],
    session: Session,
  ): Promise<PoolResult | Reply> {
    // A second try only when another merge with this key began between our read and write.
    for (let attempt = 0; attempt < 2; attempt++) {
      const now = this.#clock.now() / 1000;
      const { request, versionstamp } = await this.store.mergeRequest(requestId, now);
      if (request) {
        const admission = this.#admitAll(
          pool,
          request.at,
          (i) => (request.restamped[i] ?? request.base + i) / 1e6,
          session,
        );
        if (admissionDigest(pool.length, admission) !== request.digest) {
          return fail(409, `"request_id" ${show(requestId)} was used for a different merge`);
        }
        if (request.known) {
          const outcomes: AddOutcome[] = admission.valid.map((v) => {
            const id = txId(v.tx);
            return hasBit(request.known!, v.index)
              ? { id, status: "known", state: "pool" }
              : { id, status: "added" };
          });
          this.#log.debug`Merge ${requestId} answered with its stored result.`;
          // Nothing was added now (and what the first try added was relayed then).
          return { ...poolResult(admission, outcomes), replay: "stored", added: [] };
        }
        const outcomes = await this.store.addToPool(admission.valid.map((v) => v.tx));
        await this.store.updateMergeRequest(requestId, {
          ...request,
          known: knownBits(pool.length, admission, outcomes),
        });
        return { ...poolResult(admission, outcomes), replay: "resumed" };
      }
      const base = this.#stamps.reserve(pool.length);
      const admission = this.#admitAll(pool, now, (i) => (base + i) / 1e6, session);
      const fresh: MergeRequest = {
        at: now,
        base,
        restamped: {},
        digest: admissionDigest(pool.length, admission),
      };
      if (!await this.store.beginMergeRequest(requestId, fresh, versionstamp)) continue;
      const outcomes = await this.#addStamped(admission.valid, async (again) => {
        for (const v of again) fresh.restamped[v.index] = Math.round(v.tx.t * 1e6);
        await this.store.updateMergeRequest(requestId, fresh);
      });
      await this.store.updateMergeRequest(requestId, {
        ...fresh,
        known: knownBits(pool.length, admission, outcomes),
      });
      return poolResult(admission, outcomes);
    }
    return fail(409, `"request_id" ${show(requestId)} is being used by another merge`);
  }

  /**
   * Adds transactions to the pool. One this node stamped cannot be a resend (its sender gave
   * no `t`), so if its id is already known, another process stamped an identical transfer in
   * the same microsecond: it is stamped again and added, never swallowed as a duplicate.
   * `beforeRetry` sees the items stamped again before they are added (a keyed merge records
   * their new stamps first, so that a retry of it uses them too).
   */
  async #addStamped(
    valid: Admitted[],
    beforeRetry?: (again: Admitted[]) => Promise<void>,
  ): Promise<AddOutcome[]> {
    if (valid.length === 0) return [];
    const outcomes = await this.store.addToPool(valid.map((v) => v.tx));
    for (let attempt = 0; attempt < 5; attempt++) {
      const clashes = outcomes.flatMap((o, i) =>
        o.status === "known" && valid[i].stamped ? [i] : []
      );
      if (clashes.length === 0) break;
      for (const i of clashes) valid[i].tx = { ...valid[i].tx, t: this.#stamps.next() };
      await beforeRetry?.(clashes.map((i) => valid[i]));
      const again = await this.store.addToPool(clashes.map((i) => valid[i].tx));
      clashes.forEach((i, j) => (outcomes[i] = again[j]));
    }
    return outcomes;
  }

  /**
   * Logs each merge in the lab's words, up to MERGE_LOG_BURST lines a second: a person merging
   * by hand sees every merge as it happens. Past that, merges are summed, and the next line
   * (the first merge of a later second) reports them first. A line per merge under load cost a
   * fifth of the throughput with 50 clients sending one transaction each (docs/performance.md).
   * At debug level every merge has its own line.
   */
  #logMerge(added: number, known: number, rejected: number): void {
    const now = this.#clock.now();
    const line = () =>
      `Merged ${plural(added, "new transaction")} (${known} already known, ${rejected} rejected).`;
    if (now - this.#window.start >= MERGE_LOG_MS) this.#window = { start: now, lines: 0 };
    const m = this.#unlogged;
    if (this.#window.lines >= MERGE_LOG_BURST) {
      if (m.requests === 0) m.since = now;
      m.requests++;
      m.added += added;
      m.known += known;
      m.rejected += rejected;
      this.#log.debug`${line()}`;
      return;
    }
    this.#window.lines++;
    if (m.requests > 0) {
      this.#log.info`Merged ${plural(m.added, "new transaction")} in ${
        plural(m.requests, "more request")
      } over ${
        ((now - m.since) / 1000).toFixed(1)
      } s (${m.known} already known, ${m.rejected} rejected).`;
      this.#unlogged = { requests: 0, added: 0, known: 0, rejected: 0, since: 0 };
    }
    this.#log.info`${line()}`;
  }

  /**
   * Lab 5's `merge` of blocks: each block goes to the block tree through the one validator;
   * fork choice decides whether it becomes the tip (switching branches if it must). Blocks
   * already stored are skipped; a whole chain from height 0, as the lab's tracker relays it,
   * is taken block by block.
   */
  async #mergeBlocks(input: unknown[], session: Session): Promise<{
    appended: number;
    known: number;
    side: number;
    rejected: { index: number; reason: string }[];
  }> {
    let appended = 0;
    let known = 0;
    let side = 0;
    const rejected: { index: number; reason: string }[] = [];
    const taken: TakenBlock[] = [];
    let highest: { height: number; hash: string } | null = null;
    const log = this.#log;
    for (let index = 0; index < input.length; index++) {
      const parsed = parseWireBlock(input[index]);
      if (typeof parsed === "string") {
        rejected.push({ index, reason: parsed });
        if (session.peer) session.faults++;
        continue;
      }
      const { result, released } = await this.#intake.offer(parsed);
      // Blocks that waited for this one as their parent are counted with it.
      for (const one of [{ block: parsed, result }, ...released]) {
        countResult(one.result);
        if (stored(one.result)) taken.push(one);
      }
      if (
        result.status !== "orphan" && result.status !== "invalid" &&
        (highest === null || result.height > highest.height)
      ) {
        highest = { height: result.height, hash: parsed.hash };
      }
      if (result.status === "orphan" || result.status === "invalid") {
        rejected.push({ index, reason: result.reason });
        if (session.peer && result.status === "invalid") session.faults++;
      }
      if (result.status === "orphan" && session.peer) this.#network?.unknownParent(session.peer);
    }
    if (this.#network && session.peer && highest) {
      this.#network.heard(session.peer, highest.height, highest.hash);
    }
    if (this.#network && taken.length > 0) this.#network.taken(taken, session.peer);
    return { appended, known, side, rejected };

    // Orphans and invalid blocks are counted as rejections (the offered one's) above.
    function countResult(result: AcceptResult): void {
      switch (result.status) {
        case "extended":
          appended++;
          log.info`Block ${result.height} from a peer is added to the blockchain.`;
          break;
        case "reorged":
          appended++;
          log.info`Switched to a better branch: tip is now block ${result.height} (${
            plural(result.depth, "block")
          } abandoned).`;
          break;
        case "known":
          known++;
          break;
        case "side":
          side++;
          log.info`Block ${result.height} from a peer is kept on a side branch.`;
          break;
      }
    }
  }

  async #blocks(args: Args | undefined): Promise<Reply> {
    const tip = await this.store.tip();
    let start = 0;
    let fork: number | undefined;
    if (args && args.locator !== undefined && args.locator !== null) {
      // A block locator (foxchain): the blocks after the first of its hashes on our chain.
      const locator = args.locator;
      if (
        !Array.isArray(locator) || locator.length > LIMITS.locator ||
        !locator.every((h) => typeof h === "string" && /^[0-9a-f]{64}$/.test(h))
      ) {
        return fail(
          400,
          `"locator" must be a list of at most ${LIMITS.locator} block hashes (64 hex digits)`,
        );
      }
      fork = await this.store.forkPoint(locator);
      start = fork + 1;
    } else if (args && args.start !== undefined && args.start !== null) {
      // The lab does int(start) and slices, so "2" works and -1 means the last block.
      const n = typeof args.start === "string" && /^-?\d+$/.test(args.start.trim())
        ? Number(args.start)
        : args.start;
      if (typeof n !== "number" || !Number.isSafeInteger(n)) {
        return fail(400, `"start" must be a whole number`);
      }
      start = n < 0 ? Math.max(0, tip.height + 1 + n) : n;
    }
    const limit = intArg(args, "limit", 1, LIMITS.blocksPage) ?? LIMITS.blocksPage;
    if (typeof limit === "string") return fail(400, limit);
    const blocks = start > tip.height
      ? []
      : await this.store.blocks(start, limit, LIMITS.blocksItems);
    const response: Record<string, unknown> = { blocks };
    if (fork !== undefined) {
      response.fork = fork;
      response.height = tip.height;
      response.tip = tip.hash;
    }
    const last = blocks.at(-1);
    if (last && last.height < tip.height) response.next = last.height + 1;
    return OK(response);
  }

  async #balance(args: Args | undefined): Promise<Reply> {
    if (!args || !("address" in args)) return requires("balance", "address");
    const address = typeof args.address === "string" ? args.address.toLowerCase() : args.address;
    if (!isAddress(address)) return fail(400, `"address" must be a UUID`);
    return OK({ address, balance: await this.store.balance(address) });
  }

  async #tx(args: Args | undefined): Promise<Reply> {
    if (!args || !("id" in args)) return requires("tx", "id");
    const id = typeof args.id === "string" ? args.id.toLowerCase() : "";
    if (!TX_ID.test(id)) {
      return fail(400, `"id" must be a transaction id: 16 digits, a dash, 64 hex digits`);
    }
    const record = await this.store.lookupTx(id);
    if (!record) return fail(404, `Transaction "${id}" is not known`);
    const { tx, ...where } = record;
    return OK({ id, ...where, tx: txToWire(tx) });
  }

  async #status(): Promise<Reply> {
    const [tip, pool, builder] = await Promise.all([
      this.store.tip(),
      this.store.poolStats(),
      this.store.builderInfo(),
    ]);
    const span = pool.earliest !== null && pool.latest !== null
      ? Math.round((pool.latest - pool.earliest) * 1e6) / 1e6
      : 0;
    return OK({
      height: tip.height,
      tip: tip.hash,
      pool: { ...pool, span },
      rules: describeChainRules(this.store.rules),
      builder,
      time: this.#clock.now() / 1000,
      ...(this.#network ? { network: this.#network.describe() } : {}),
    });
  }
}

function stored(result: AcceptResult): boolean {
  return result.status === "extended" || result.status === "reorged" || result.status === "side";
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}...` : text;
}

/** A `ws://` or `wss://` URL in normal form, or null. */
function peerUrl(addr: unknown): string | null {
  if (typeof addr !== "string" || addr.length > MAX_PEER_URL_BYTES) return null;
  let url: URL;
  try {
    url = new URL(addr);
  } catch {
    return null;
  }
  if (url.protocol !== "ws:" && url.protocol !== "wss:") return null;
  // Normalising can grow a URL (percent-encoding makes "é" six bytes), so the cap is checked
  // on what is stored: at most 512 bytes keeps the key ["peer", url] far inside KV's 2 KiB.
  return new TextEncoder().encode(url.href).length <= MAX_PEER_URL_BYTES ? url.href : null;
}

/** Longest peer URL kept, in UTF-8 bytes after normalisation. */
const MAX_PEER_URL_BYTES = 512;

/** An optional whole-number arg within bounds: the number, undefined, or an error text. */
function intArg(args: Args | undefined, name: string, min: number, max: number) {
  const v = args?.[name];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min || v > max) {
    return `"${name}" must be a whole number from ${min} to ${max}`;
  }
  return v;
}

/**
 * A block as the wire carries it: the lab's items and prev_hash, plus the height, hash and
 * proof a foxchain sends. A missing height is taken as "whatever follows the parent" and a
 * missing hash is computed: both are checked by the validator against the block's contents.
 */
function parseWireBlock(input: unknown): string | WireBlock {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return "a block must be a JSON object";
  }
  const b = input as Record<string, unknown>;
  if (!Array.isArray(b.items) || b.items.length === 0) return `"items" must be a non-empty list`;
  if (b.prev_hash !== null && typeof b.prev_hash !== "string") {
    return `"prev_hash" must be a hash or null`;
  }
  const items: Item[] = [];
  for (const [i, raw] of b.items.entries()) {
    if (typeof raw !== "object" || raw === null) return `item ${i} is not an object`;
    const r = raw as Record<string, unknown>;
    // A signed item keeps its pubkey and sig (the block hash covers them, the validator checks
    // them); whatever else an item carries is dropped, as the lab did.
    const item = withSignature(
      {
        sender: r.sender,
        receiver: r.receiver,
        amount: r.amount,
        t: r.t,
        prev_hash: r.prev_hash ?? null,
      } as Item,
      { pubkey: r.pubkey ?? undefined, sig: r.sig ?? undefined } as Tx,
    );
    const bad = checkTxFields(item);
    if (bad) return `item ${i}: ${bad}`;
    if (item.prev_hash !== null && typeof item.prev_hash !== "string") {
      return `item ${i}: prev_hash must be a hash or null`;
    }
    items.push(item);
  }
  const prev = b.prev_hash as string | null;
  const proof = b.proof === undefined || b.proof === null ? undefined : b.proof as Proof;
  const block: WireBlock = {
    items,
    prev_hash: prev,
    hash: typeof b.hash === "string" ? b.hash : blockHash(items, prev, proof),
  };
  if (b.height !== undefined && b.height !== null) block.height = b.height as number;
  if (proof !== undefined) block.proof = proof;
  return block;
}

/** A merge item that was admitted: the transaction, whether this node stamped it, its index. */
interface Admitted {
  tx: Tx;
  stamped: boolean;
  index: number;
}

/** A merge item that was refused, by index, with the reason. */
interface Rejection {
  index: number;
  reason: string;
}

/** The items of a merge's pool, checked. */
interface Admission {
  valid: Admitted[];
  rejected: Rejection[];
  /** Rejected only for being too old: their ids, to answer "known" if held. */
  tooOld: { index: number; id: string }[];
}

/** What a merge of a pool did: ids accepted (and of them, those known before), rejections. */
interface PoolResult {
  accepted: string[];
  known: string[];
  rejected: Rejection[];
  /** Set when a keyed merge was a retry: answered from its record, or completed. */
  replay?: "stored" | "resumed";
  /** The transactions this merge added to the pool (for the network to relay). */
  added: Tx[];
}

function poolResult(admission: Admission, outcomes: AddOutcome[]): PoolResult {
  return {
    accepted: outcomes.map((o) => o.id),
    known: outcomes.filter((o) => o.status === "known").map((o) => o.id),
    rejected: admission.rejected,
    added: admission.valid.flatMap((v, i) => outcomes[i].status === "added" ? [v.tx] : []),
  };
}

/**
 * A digest of a merge as admitted: each item's transaction (without the stamp of one that had
 * no `t`, which is the node's) or its reason for refusal, in order. Two tries of one request
 * give the same digest because both are admitted at the same time with the same stamps.
 */
function admissionDigest(count: number, admission: Admission): string {
  const lines = new Array<string>(count);
  for (const { tx, stamped, index } of admission.valid) {
    lines[index] = `${tx.sender} ${tx.receiver} ${tx.amount} ${stamped ? "-" : tx.t}`;
  }
  for (const { index, reason } of admission.rejected) lines[index] = `! ${reason}`;
  return sha256Hex(lines.join("\n"));
}

/** One bit per item of the pool, set for the valid items that were known before. */
function knownBits(count: number, admission: Admission, outcomes: AddOutcome[]): Uint8Array {
  const bits = new Uint8Array(Math.ceil(count / 8));
  admission.valid.forEach((v, i) => {
    if (outcomes[i].status === "known") bits[v.index >> 3] |= 1 << (v.index & 7);
  });
  return bits;
}

function hasBit(bits: Uint8Array, index: number): boolean {
  return ((bits[index >> 3] ?? 0) & (1 << (index & 7))) !== 0;
}
