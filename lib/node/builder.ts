/**
 * The block builder: checks the proof-of-write rules every `sleepSeconds` and, while they
 * hold, packs the pool (in `t` order, at most `maxBlock` at a time) into blocks.
 */
import type { Logger } from "@logtape/logtape";
import { RunningBalances } from "../core/balances.ts";
import { type Block, makeBlock } from "../core/block.ts";
import { type Clock, systemClock } from "../core/clock.ts";
import { logger } from "./log.ts";
import {
  DEFAULT_MAX_BLOCK,
  MAX_AGE_SECONDS,
  MAX_BLOCK_ITEMS,
  MAX_FUTURE_SECONDS,
} from "../core/params.ts";
import { describeRules, type PoolStats, type Rule, shouldCut } from "../core/rules.ts";
import { proofFor } from "../consensus/proof.ts";
import { checkSignature } from "../consensus/signatures.ts";
import type { Dropped, Store } from "../store/store.ts";
import { type Tx, txToWire } from "../core/transaction.ts";
import { plural } from "../core/words.ts";

/** How the builder works. */
export interface BuilderOptions {
  /**
   * Proof-of-write rules; a block is cut when any holds. Default: the store's network rules;
   * given, each must be at least as strict as one of them (a network's rule is the least a
   * block must wait; a builder may wait longer, never less).
   */
  rules?: readonly Rule[];
  /** Most transactions considered per block (default 200, at most MAX_BLOCK_ITEMS). */
  maxBlock?: number;
  /** Seconds between checks of the rules (default 3). */
  sleepSeconds?: number;
  /**
   * A random 0..jitterSeconds added to each wait between passes (default 0): builders of one
   * network that check at the same moment would cut competing blocks; spread out, the first
   * one's block reaches the others before they check, and they build on it.
   */
  jitterSeconds?: number;
  /** Random source for the jitter (default Math.random). */
  random?: () => number;
  /** Time source (default the system clock). */
  clock?: Clock;
}

/** What one tick (or one `pass`) did. */
export interface PassResult {
  /** Blocks appended (a long pass keeps only the last PASS_KEEP; `added` counts them all). */
  blocks: Block[];
  /** How many blocks were appended. */
  added: number;
  /** Transactions dropped from the pool, with their reasons. */
  dropped: Dropped[];
  /** Why the last check did or did not cut a block. */
  reason: string;
}

/** Blocks a pass keeps in its result: a backlog of thousands is counted, not held. */
export const PASS_KEEP = 100;

/** Tries per block when the chain changes under us (another builder, a peer's block). */
const CONFLICT_ATTEMPTS = 10;

/** Builds blocks from a store's pool. */
export class Builder {
  /** Proof-of-write rules; a block is cut when any holds. */
  readonly rules: readonly Rule[];
  /** Most transactions considered per block. */
  readonly maxBlock: number;
  /** Seconds between checks of the rules. */
  readonly sleepSeconds: number;
  /** Most seconds of random delay added to each wait. */
  readonly jitterSeconds: number;
  readonly #random: () => number;
  readonly #clock: Clock;
  readonly #log: Logger = logger("builder");
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running: Promise<void> | null = null;
  #stopped = true;
  /** Set by `stop`: a pass under way ends after the block it is building. */
  #halting = false;
  #ticks = 0;
  #waiters: { count: number; resolve: (r: PassResult) => void }[] = [];
  #last: PassResult = { blocks: [], added: 0, dropped: [], reason: "not run yet" };

  /** A stopped builder on `store`; throws RangeError for no rules or a bad `maxBlock`. */
  constructor(readonly store: Store, opts: BuilderOptions = {}) {
    this.rules = opts.rules ?? store.rules.rules;
    if (this.rules.length === 0) throw new RangeError("at least one rule is needed");
    for (const rule of this.rules) {
      if (!store.rules.rules.some((r) => atLeastAsStrict(rule, r))) {
        throw new RangeError(
          `the builder's rule ${describeRules([rule])} is looser than the network's (${
            describeRules(store.rules.rules)
          }): its blocks would be refused`,
        );
      }
    }
    this.maxBlock = opts.maxBlock ?? DEFAULT_MAX_BLOCK;
    if (!Number.isInteger(this.maxBlock) || this.maxBlock < 1 || this.maxBlock > MAX_BLOCK_ITEMS) {
      throw new RangeError(`max block must be a whole number from 1 to ${MAX_BLOCK_ITEMS}`);
    }
    this.sleepSeconds = opts.sleepSeconds ?? 3;
    this.jitterSeconds = opts.jitterSeconds ?? 0;
    if (!(this.jitterSeconds >= 0)) throw new RangeError("jitter must be 0 or more seconds");
    this.#random = opts.random ?? Math.random;
    this.#clock = opts.clock ?? systemClock;
  }

  /**
   * Builds at most one block if a rule holds now. Transactions that break the signature rule,
   * or whose sender cannot pay (given the balances after the ones before it in this block),
   * are dropped with their reason.
   */
  async buildOnce(): Promise<PassResult> {
    const none = (reason: string): PassResult => ({ blocks: [], added: 0, dropped: [], reason });
    for (let attempt = 0; attempt < CONFLICT_ATTEMPTS; attempt++) {
      const stats = await this.store.poolStats();
      const decision = shouldCut(this.rules, stats, this.#clock.now() / 1000);
      if (!decision.cut || !decision.rule) {
        this.#log.debug`Currently ${plural(stats.size, "record")}, not cutting: ${decision.reason}`;
        return none(decision.reason);
      }
      const [{ tip }, { txs }] = await Promise.all([
        this.store.tipEntry(),
        this.store.poolPage(this.maxBlock),
      ]);
      if (tip.switching) {
        this.#log.info`The chain is being switched to another branch; building after it.`;
        return none("the chain is being switched");
      }
      this.#log.debug`Rule holds: ${decision.reason}`;
      this.#log.info`Packing ${plural(txs.length, "transaction")}...`;
      // GENESIS included: its balance (minus the supply so far) decides the supply cap.
      const senders = [...new Set(txs.map((tx) => tx.sender))];
      const stored = await this.store.balances(senders);
      const balances = new RunningBalances((a) => stored.get(a) ?? 0);
      const included = [];
      const dropped: Dropped[] = [];
      for (const tx of txs) {
        // Admission checked the signature rule; a pool filled another way (a library caller)
        // must not make a block the validator refuses, which would stall the builder.
        const reason = checkSignature(tx, this.store.rules) ?? balances.apply(tx);
        if (reason === null) {
          included.push(tx);
        } else {
          dropped.push({ tx, reason });
          this.#log.warn`Dropped transaction due to ${reason}: ${JSON.stringify(txToWire(tx))}`;
        }
      }
      if (included.length === 0) {
        if (await this.store.dropFromPool(dropped)) {
          this.#log.info`Block is created with 0 records; nothing to add.`;
          return { ...none(decision.reason), dropped };
        }
        this.#log.info`Pool changed while packing; trying again.`;
        continue;
      }
      // The evidence covers what was read: a merge between the two reads may have widened it.
      const proof = proofFor(decision.rule, coverStats(stats, txs), tip.time);
      const block = makeBlock(tip.height + 1, tip.hash, included, proof);
      this.#log.info`Block is created with ${plural(block.items.length, "record")}.`;
      const result = await this.store.appendBlock(block, dropped);
      if (result.ok) {
        this.#log.info`Block is added to the blockchain.`;
        this.#log.debug`Block ${block.height} has hash ${block.hash}.`;
        return { blocks: [block], added: 1, dropped, reason: decision.reason };
      }
      if (!result.conflict && (await this.store.tip()).hash !== tip.hash) {
        // Another builder or a peer's block moved the tip after we read it.
        this.#log.info`Chain changed while packing (${result.reason}); trying again.`;
        continue;
      }
      if (!result.conflict) {
        // Cannot happen for a block built from a consistent store; say so loudly.
        this.#log.error`Block is invalid and dropped: ${result.reason}`;
        return none(result.reason);
      }
      this.#log.info`Chain changed while packing (${result.reason}); trying again.`;
    }
    // Every lost race means another writer (a second builder, a peer's block) moved the chain,
    // so the pool is being served; try again at the next tick rather than fail.
    this.#log
      .warn`Lost ${CONFLICT_ATTEMPTS} races to other writers in a row; trying again next tick.`;
    return none("other writers kept changing the chain");
  }

  /** Builds blocks while a rule holds: one tick's work. */
  async pass(): Promise<PassResult> {
    const total: PassResult = { blocks: [], added: 0, dropped: [], reason: "" };
    while (true) {
      const once = await this.buildOnce();
      total.blocks.push(...once.blocks);
      if (total.blocks.length > PASS_KEEP) total.blocks.splice(0, total.blocks.length - PASS_KEEP);
      total.added += once.added;
      total.dropped.push(...once.dropped);
      if (total.dropped.length > PASS_KEEP) {
        total.dropped.splice(0, total.dropped.length - PASS_KEEP);
      }
      total.reason = once.reason;
      if (once.added === 0 && once.dropped.length === 0) return total;
      // Under a steady load a rule holds again after every block, so a pass could go on for
      // ever: a stop ends it between blocks.
      if (this.#halting) return total;
    }
  }

  /** Starts the loop: a pass now, then one `sleepSeconds` after each pass ends. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#halting = false;
    this.#log.info`Builder started: ${
      describeRules(this.rules)
    }, at most ${this.maxBlock} per block, checking every ${this.sleepSeconds} s.`;
    // A made-up `t` can move the pool's times by up to the admission window, so a span or age
    // no longer than it can be satisfied by one client at will.
    const window = MAX_FUTURE_SECONDS + MAX_AGE_SECONDS;
    for (const rule of this.rules) {
      if (rule.kind !== "count" && rule.seconds <= window) {
        this.#log
          .warn`The ${rule.kind} rule's ${rule.seconds} s is not longer than the ${window} s a client may set t within: any client can satisfy it at once.`;
      }
    }
    void this.announce();
    this.#tick();
  }

  /**
   * Records in the store what this builder does, for `status`: its rules, and whether it runs
   * a loop or made one pass (`once`, as `build --once`). A failure is logged, never thrown.
   */
  async announce(opts: { once?: boolean } = {}): Promise<void> {
    try {
      await this.store.setBuilderInfo({
        rules: describeRules(this.rules),
        maxBlock: this.maxBlock,
        sleepSeconds: this.sleepSeconds,
        pid: Deno.pid,
        updated: this.#clock.now() / 1000,
        ...(opts.once ? { once: true } : {}),
      });
    } catch (e) {
      this.#log.warn`Could not record builder info: ${String(e)}`;
    }
  }

  #tick(): void {
    this.#running = (async () => {
      let result: PassResult;
      try {
        result = await this.pass();
      } catch (error) {
        this.#log.error`Build pass failed: ${
          error instanceof Error ? error.message : String(error)
        }`;
        result = { blocks: [], added: 0, dropped: [], reason: String(error) };
      }
      this.#last = result;
      this.#ticks++;
      this.#waiters = this.#waiters.filter((w) => {
        if (this.#ticks < w.count) return true;
        w.resolve(result);
        return false;
      });
      const wait = this.sleepSeconds + this.#random() * this.jitterSeconds;
      if (!this.#stopped) this.#timer = setTimeout(() => this.#tick(), wait * 1000);
    })();
  }

  /** Resolves with the result of tick number `count` (1-based) once it has finished. */
  ticked(count: number): Promise<PassResult> {
    if (this.#ticks >= count) return Promise.resolve(this.#last);
    return new Promise((resolve) => this.#waiters.push({ count, resolve }));
  }

  /** Ticks finished so far. */
  get ticks(): number {
    return this.#ticks;
  }

  /**
   * Stops the loop and waits for a pass under way to finish the block it is building (its
   * commit is never cut short); the pass builds no block after it.
   */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#halting = true;
    clearTimeout(this.#timer);
    await this.#running;
  }
}

/** Pool statistics widened to cover `txs` (read after the statistics, so possibly newer). */
function coverStats(stats: PoolStats, txs: readonly Tx[]): PoolStats {
  let { size, earliest, latest } = stats;
  for (const tx of txs) {
    if (earliest === null || tx.t < earliest) earliest = tx.t;
    if (latest === null || tx.t > latest) latest = tx.t;
  }
  return { size: Math.max(size, txs.length), earliest, latest };
}

/** True when a block cut under `mine` also satisfies `network`: same kind, waits as long or longer. */
function atLeastAsStrict(mine: Rule, network: Rule): boolean {
  if (mine.kind !== network.kind) return false;
  return mine.kind === "count"
    ? mine.size >= (network as typeof mine).size
    : mine.seconds >= (network as typeof mine).seconds;
}
