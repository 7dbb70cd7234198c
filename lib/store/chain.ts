/**
 * The ledger in Deno KV as a tree: every stored block under its hash, the best chain as a
 * height index, and the state (balances, transaction records, pool) of the best chain's tip.
 * Blocks from the builder, from peers and from clients all pass the one validator
 * (lib/consensus/validate.ts); fork choice (lib/consensus/fork_choice.ts) decides the tip; a
 * switch to a better branch is journaled, so a crash at any point leaves the old chain or,
 * once opening the store has finished the journal, the new one. docs/storage.md has the why.
 */
import { type Block, checkBlockShape, itemTx, type WireBlock } from "../core/block.ts";
import type { Clock } from "../core/clock.ts";
import { BODY_PART_ITEMS, MAX_BLOCK_ITEMS } from "../core/params.ts";
import { RunningBalances } from "../core/balances.ts";
import { type Tx, txId } from "../core/transaction.ts";
import { better } from "../consensus/fork_choice.ts";
import type { ChainRules } from "../consensus/rules.ts";
import { type BlockEffects, checkBlockHeader, validateBlock } from "../consensus/validate.ts";
import { addressesOf, BranchState, readBalances, readRecords } from "./branch_state.ts";
import { COMMIT_LIMITS, CommitBudget, commitWithRetry, getAll } from "./kv.ts";
import {
  type BlockHeader,
  headerOf,
  K,
  type OrphanEntry,
  type ReorgJournal,
  type StoredTip,
  type Tip,
  type TxRecord,
} from "./schema.ts";

/** A transaction the builder left out of a block, and why. */
export interface Dropped {
  /** The transaction left out. */
  tx: Tx;
  /** Why it was left out, e.g. the sender cannot pay. */
  reason: string;
}

/** The result of trying to append blocks on the tip. */
export type AppendResult =
  | { ok: true }
  | {
    ok: false;
    conflict: boolean;
    reason: string;
    /** The run is valid as far as checked but needs more than one KV commit: split it. */
    tooLarge?: boolean;
  };

/** What `accept` did with a block from a peer or a client. */
export type AcceptResult =
  /** It extended the tip, or is already stored, or was stored on a side branch. */
  | { status: "extended" | "known" | "side"; height: number }
  /** It made a side branch the best chain: `depth` blocks were abandoned. */
  | { status: "reorged"; height: number; depth: number }
  /** Its parent is not known here: fetch the parent first. */
  | { status: "orphan"; reason: string }
  /** It breaks a rule. */
  | { status: "invalid"; reason: string };

/** Side-branch blocks are kept while less than this many blocks below the tip (pruned after). */
export const SIDE_WINDOW = 1000;
/** Deepest reorg a node makes: its journal lists the abandoned blocks (~67 bytes each). */
export const MAX_REORG_DEPTH = 500;
/** Most transactions of abandoned or side blocks whose place follows the tip (oldest go first). */
export const ORPHAN_CAP = 2000;

/** One block's move in a switch: off the best chain, or onto it with its validated effects. */
type Step =
  | { kind: "disconnect"; block: Block; ids: string[]; parent: Tip }
  | { kind: "connect"; block: Block; ids: string[]; effects: BlockEffects };

/** A side branch's validated state and the best-chain tip and fork point it was made against. */
interface SideTrial {
  tip: { height: number; hash: string | null };
  fork: number;
  trial: BranchState;
}

/** Side branches whose state is kept between their blocks. */
const SIDE_TRIALS = 8;

/** A commit of blocks uses at most this share of KV's limits, by the estimate below. */
const CHUNK_SHARE = 0.9;

/** The ledger of one store. */
export class Chain {
  #lock: Promise<unknown> = Promise.resolve();
  #switching: Promise<void> | null = null;
  /**
   * The states on top of the side blocks checked last, by branch top (a few branches, e.g. one
   * per peer that builds): a branch arriving block by block is validated in O(its block) each
   * time, not from the fork point (which made a competing branch quadratic). Each holds the
   * best-chain tip it was made against; when our own chain only grew since, the new blocks are
   * taken out of the state rather than the state thrown away.
   */
  readonly #sideTrials = new Map<string, SideTrial>();
  readonly #tipListeners = new Set<() => void>();

  /** A chain on `kv`, validating under `rules` with `clock` as the receiver's time. */
  constructor(
    readonly kv: Deno.Kv,
    readonly rules: ChainRules,
    private readonly clock: Clock,
  ) {}

  /** A promise while a reorg is switching branches (pool writes and reads wait for it). */
  gate(): Promise<void> | null {
    return this.#switching;
  }

  /**
   * Calls `listener` after every change this process makes that can move the tip: a block
   * appended (the builder) or accepted (`merge {blocks}`, peers), a reorg, a reorg a crash left
   * finished on open; the pool is settled by then. It must not throw. Returns its removal.
   * Another process's commits are not seen: watch those by reading the tip.
   */
  onTipChange(listener: () => void): () => void {
    this.#tipListeners.add(listener);
    return () => this.#tipListeners.delete(listener);
  }

  #tipChanged(): void {
    for (const listener of this.#tipListeners) listener();
  }

  /** Runs chain changes of this process one at a time. */
  #exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(work, work);
    this.#lock = run.catch(() => {});
    return run;
  }

  #now(): number {
    return this.clock.now() / 1000;
  }

  // ---- reads ------------------------------------------------------------------------------

  /** The tip as stored, with the versionstamp every chain change checks. */
  async tipEntry(): Promise<{ tip: StoredTip; versionstamp: string }> {
    const entry = await this.kv.get<StoredTip>(K.tip);
    if (entry.value === null) throw new Error("database has no tip; was it initialised?");
    return { tip: entry.value, versionstamp: entry.versionstamp };
  }

  /** The tip: height -1 for an empty chain. */
  async tip(): Promise<Tip> {
    const { height, hash, time } = (await this.tipEntry()).tip;
    return { height, hash, time };
  }

  /** A stored block's header by hash (on any branch), or null. */
  async header(hash: string): Promise<BlockHeader | null> {
    return (await this.kv.get<BlockHeader>(K.block(hash))).value;
  }

  /** The header of the best chain's block at `height`, or null. */
  async mainHeader(height: number): Promise<BlockHeader | null> {
    return (await this.kv.get<BlockHeader>(K.main(height))).value;
  }

  /** A block from its header. */
  async readBody(header: BlockHeader): Promise<Block> {
    const keys = Array.from({ length: header.parts }, (_, p) => K.body(header.hash, p));
    const parts = await getAll<Block["items"]>(this.kv, keys);
    const block: Block = {
      items: parts.flatMap((p) => p.value ?? []),
      prev_hash: header.prev_hash,
      height: header.height,
      hash: header.hash,
    };
    if (header.proof !== undefined) block.proof = header.proof;
    return block;
  }

  /** The best chain's block at `height`, or null. */
  async block(height: number): Promise<Block | null> {
    const header = await this.mainHeader(height);
    return header ? await this.readBody(header) : null;
  }

  /** A stored (valid or not yet validated) block by hash, on any branch, or null. */
  async blockByHash(hash: string): Promise<Block | null> {
    const header = await this.header(hash);
    return header && !header.bad ? await this.readBody(header) : null;
  }

  /**
   * Best-chain blocks from `start` in height order, until `maxItems` items are collected (at
   * least one block is returned when there is one) or `maxBlocks` blocks.
   */
  async blocks(start: number, maxBlocks: number, maxItems: number): Promise<Block[]> {
    const out: Block[] = [];
    let items = 0;
    const iter = this.kv.list<BlockHeader>({ start: K.main(start), end: ["main", Infinity] }, {
      limit: maxBlocks,
      batchSize: Math.min(maxBlocks, 100),
    });
    for await (const entry of iter) {
      if (out.length > 0 && items + entry.value.count > maxItems) break;
      out.push(await this.readBody(entry.value));
      items += entry.value.count;
    }
    return out;
  }

  /**
   * Every best-chain block from height 0 up, read in batches; the next body is read while the
   * caller works on this one.
   */
  async *allBlocks(): AsyncGenerator<Block> {
    let ahead: Promise<Block> | null = null;
    for await (
      const entry of this.kv.list<BlockHeader>({ prefix: ["main"] }, { batchSize: 500 })
    ) {
      const reading = this.readBody(entry.value);
      // Awaited below; this only keeps a walk that stops early from leaving it unhandled.
      reading.catch(() => {});
      if (ahead) yield await ahead;
      ahead = reading;
    }
    if (ahead) yield await ahead;
  }

  // ---- appending on the tip (the builder, bulk runs) ----------------------------------------

  /**
   * Validates blocks that extend the tip and appends them in one atomic commit, with every
   * change that depends on them (tip, balances, records, pool removal, and the builder's
   * `dropped` transactions with their reasons). `conflict: true`: the chain or pool changed
   * meanwhile, re-read and retry; `conflict: false`: invalid, or too large for one commit.
   */
  append(run: readonly { block: Block; dropped: readonly Dropped[] }[]): Promise<AppendResult> {
    return this.#exclusive(async () => {
      const result = await this.#append(run);
      if (result.ok) {
        await this.#housekeeping();
        this.#tipChanged();
      }
      return result;
    });
  }

  async #append(
    run: readonly { block: Block; dropped: readonly Dropped[] }[],
  ): Promise<AppendResult> {
    const named = (block: Block, reason: string) =>
      run.length === 1 ? reason : `block ${block.height}: ${reason}`;
    const invalid = (reason: string): AppendResult => ({ ok: false, conflict: false, reason });
    const [{ tip, versionstamp }, poolGen] = await Promise.all([
      this.tipEntry(),
      this.kv.get(K.poolGen),
    ]);
    if (tip.switching) return { ok: false, conflict: true, reason: "chain is being switched" };
    // Header checks first: they give the ids whose records must be read.
    const idsOf: string[][] = [];
    let above: Tip = tip;
    for (const { block } of run) {
      const ids: string[] = [];
      const fault = checkBlockHeader(block, above, this.rules, this.#now(), ids);
      if (fault) return invalid(named(block, fault.reason));
      idsOf.push(ids);
      above = { height: block.height, hash: block.hash, time: block.proof?.time ?? null };
    }
    for (const { block, dropped } of run) {
      // A store budget, not a consensus rule: a block and its drops must fit one commit.
      const considered = block.items.length + dropped.length;
      if (considered > MAX_BLOCK_ITEMS) {
        return invalid(
          named(block, `block considers ${considered} transactions, max ${MAX_BLOCK_ITEMS}`),
        );
      }
    }
    const droppedIds = run.map(({ dropped }) => dropped.map((d) => txId(d.tx)));
    const [records, balances] = await Promise.all([
      readRecords(this.kv, [...idsOf.flat(), ...droppedIds.flat()]),
      readBalances(this.kv, addressesOf(run.flatMap(({ block }) => block.items))),
    ]);
    const state = new BranchState(tip, balances, records);
    const budget = new CommitBudget(this.kv).check(K.tip, versionstamp);
    const touched = new Set<string>();
    let leaving = 0;
    let unknown = false;
    for (let b = 0; b < run.length; b++) {
      const { block, dropped } = run[b];
      const verdict = validateBlock(block, state, this.rules, this.#now(), {
        checkedIds: idsOf[b],
      });
      if (!verdict.ok) return invalid(named(block, verdict.reason));
      writeBlockData(budget, block);
      const moved = writeConnect(budget, block, idsOf[b], state);
      leaving += moved.leaving;
      unknown ||= moved.unknown;
      for (const address of verdict.effects.balances.keys()) touched.add(address);
      state.connect(block, verdict.effects);
      for (let j = 0; j < dropped.length; j++) {
        const id = droppedIds[b][j];
        if (state.records.get(id)?.state !== "pool") {
          return { ok: false, conflict: true, reason: "pool changed" };
        }
        const { tx, reason } = dropped[j];
        budget.delete(K.pool(tx.t, id));
        budget.set(K.tx(id), { state: "dropped", tx, reason, at: this.#now() } satisfies TxRecord);
        leaving++;
      }
    }
    writeBalances(budget, state, touched);
    budget.set(K.tip, { height: state.height, hash: state.hash, time: state.time } satisfies Tip);
    if (leaving > 0) budget.sum(K.poolSize, -leaving);
    // A transaction we did not have in the pool could be merged between our read and our
    // commit, leaving a pool entry for a transaction in the chain. Every pool add bumps
    // poolgen, so checking it rules that out (only blocks from elsewhere ever need this).
    if (unknown) budget.check(K.poolGen, poolGen.versionstamp);
    const over = budget.overLimit();
    if (over) {
      return {
        ok: false,
        conflict: false,
        tooLarge: true,
        reason: `run of ${run.length} blocks ${over}`,
      };
    }
    const result = await budget.commit();
    if (!result.ok) return { ok: false, conflict: true, reason: "chain or pool changed meanwhile" };
    return { ok: true };
  }

  /**
   * Records pool transactions as dropped without making a block (every candidate failed).
   * Checks and rewrites the tip so that two builders cannot drop the same transaction twice.
   */
  dropFromPool(dropped: readonly Dropped[]): Promise<boolean> {
    return this.#exclusive(async () => {
      const { tip, versionstamp } = await this.tipEntry();
      if (tip.switching) return false;
      const ids = dropped.map((d) => txId(d.tx));
      const records = await getAll<TxRecord>(this.kv, ids.map(K.tx));
      if (records.some((r) => r.value?.state !== "pool")) return false;
      const budget = new CommitBudget(this.kv).check(K.tip, versionstamp).set(K.tip, tip);
      const at = this.#now();
      dropped.forEach(({ tx, reason }, i) => {
        budget.delete(K.pool(tx.t, ids[i]));
        budget.set(K.tx(ids[i]), { state: "dropped", tx, reason, at } satisfies TxRecord);
      });
      budget.sum(K.poolSize, -dropped.length);
      return (await budget.commit()).ok;
    });
  }

  // ---- blocks from peers and clients: the tree and fork choice ------------------------------

  /**
   * Takes a block from a peer or a client: stores it under its hash, and makes it (or its
   * branch) the best chain when fork choice says so, switching branches if needed. A block
   * whose parent is unknown is not stored (`orphan`): fetch the parent and offer it again.
   */
  accept(block: WireBlock): Promise<AcceptResult> {
    return this.#exclusive(async () => {
      const result = await this.#accept(block);
      if (result.status !== "known" && result.status !== "orphan") {
        await this.#housekeeping();
        this.#tipChanged();
      }
      return result;
    });
  }

  async #accept(wire: WireBlock): Promise<AcceptResult> {
    // A lab block has no height: it is whatever follows its parent.
    const block = { ...wire, height: wire.height ?? -1 } as Block;
    if (typeof block?.hash !== "string" || !/^[0-9a-f]{64}$/.test(block.hash)) {
      return { status: "invalid", reason: "block hash must be 64 hex digits" };
    }
    const known = await this.header(block.hash);
    if (known) {
      // A block claiming a stored hash is that block only if its contents hash to it; new
      // blocks get this check (and more) from checkBlockHeader below.
      const shape = checkBlockShape(block);
      if (shape) return { status: "invalid", reason: shape };
    }
    if (known?.bad) return { status: "invalid", reason: `known invalid: ${known.bad}` };
    if (known) {
      // Stored before, but a crash or a lost race may have kept it from the switch it earned.
      const { tip } = await this.tipEntry();
      if (better(known, tip) && (await this.mainHeader(known.height))?.hash !== known.hash) {
        return await this.#trySwitch(known.hash);
      }
      return { status: "known", height: known.height };
    }
    let parent: Tip = { height: -1, hash: null, time: null };
    if (block.prev_hash !== null) {
      if (typeof block.prev_hash !== "string") {
        return { status: "invalid", reason: "prev_hash must be a hash or null" };
      }
      const above = await this.header(block.prev_hash);
      if (!above) return { status: "orphan", reason: `parent ${block.prev_hash} is not known` };
      parent = { height: above.height, hash: above.hash, time: above.proof?.time ?? null };
      if (wire.height === undefined) block.height = above.height + 1;
      if (above.bad) {
        const reason = `its parent ${above.hash} is invalid`;
        // Remembered only when the block is what its hash says (else anyone could poison it).
        if (checkBlockHeader(block, parent, this.rules, this.#now())?.lasting !== false) {
          await this.#markBad(block, reason);
        }
        return { status: "invalid", reason };
      }
    }
    if (wire.height === undefined && block.prev_hash === null) block.height = 0;
    const fault = checkBlockHeader(block, parent, this.rules, this.#now());
    if (fault) {
      if (fault.lasting) await this.#markBad(block, fault.reason);
      return { status: "invalid", reason: fault.reason };
    }
    for (let attempt = 0; attempt < 5; attempt++) {
      const { tip } = await this.tipEntry();
      if (tip.switching) await this.#recover();
      if (block.prev_hash === tip.hash && !tip.switching) {
        const result = await this.#append([{ block, dropped: [] }]);
        if (result.ok) return { status: "extended", height: block.height };
        if (result.conflict) continue;
        await this.#markBad(block, result.reason);
        return { status: "invalid", reason: result.reason };
      }
      await this.#storeSide(block);
      if (better(block, tip)) return await this.#trySwitch(block.hash);
      // Validated now on its own branch, so that what a node keeps of it (invalid, or its
      // transactions as orphans) does not depend on the order blocks arrived in.
      const checked = await this.#switchTo(block.hash, { dryRun: true });
      if (checked.status === "side") await this.#addOrphans([block]);
      return checked;
    }
    return {
      status: "invalid",
      reason: "the chain kept changing under this block; offer it again",
    };
  }

  async #storeSide(block: Block): Promise<void> {
    const budget = new CommitBudget(this.kv).check(K.block(block.hash), null);
    writeBlockData(budget, block);
    budget.set(K.side(block.height, block.hash), true);
    await budget.commit(); // a failed check: someone stored it first, which is as good
  }

  /** Remembers a block as invalid (header only, no body) so it is never fetched or tried again. */
  async #markBad(block: Block, reason: string): Promise<void> {
    const header: BlockHeader = { ...headerOf(block, 0), bad: reason };
    const op = this.kv.atomic()
      .set(K.block(block.hash), header)
      .set(K.side(block.height, block.hash), true);
    // On a side branch only: a block of the best chain is valid by construction.
    const main = await this.mainHeader(block.height);
    if (main?.hash !== block.hash) await op.commit();
  }

  /**
   * Makes the branch ending at `target` the best chain, if it is valid and better: validates it
   * in memory on top of the fork point, then commits the switch block by block under a journal
   * (or, when nothing is abandoned, moving the tip with each commit). With `resume`, finishes
   * the journal a crash left.
   */
  async #switchTo(
    target: string,
    opts: { resume?: ReorgJournal; dryRun?: boolean } = {},
  ): Promise<AcceptResult> {
    const resume = opts.resume;
    if (opts.dryRun) {
      const quick = await this.#extendSideTrial(target);
      if (quick) return quick;
    }
    // The branch from the fork point up to `target`.
    const branch: BlockHeader[] = [];
    for (let hash: string | null = target; hash !== null;) {
      const header: BlockHeader | null = await this.header(hash);
      if (!header) return { status: "invalid", reason: `branch block ${hash} is not stored` };
      if (header.bad) return { status: "invalid", reason: `branch holds invalid block ${hash}` };
      if ((await this.mainHeader(header.height))?.hash === hash) break;
      branch.unshift(header);
      hash = header.prev_hash;
    }
    const fork = branch.length > 0 ? branch[0].height - 1 : (await this.header(target))!.height;
    const { tip, versionstamp } = await this.tipEntry();
    const applied = await this.#appliedTop();
    const depth = applied.height - fork;
    if (depth > MAX_REORG_DEPTH) {
      return {
        status: "invalid",
        reason:
          `switching would abandon ${depth} blocks; this node goes at most ${MAX_REORG_DEPTH} deep`,
      };
    }
    const abandoned = await this.#mainBlocks(fork + 1, applied.height);
    const adopted = await Promise.all(branch.map((h) => this.readBody(h)));

    // Validate the branch in memory on the fork point's state before writing anything.
    const idsOf = (block: Block) => block.items.map((item) => txId(item));
    const allItems = [...abandoned, ...adopted].flatMap((b) => b.items);
    const [balances, records] = await Promise.all([
      readBalances(this.kv, addressesOf(allItems)),
      readRecords(this.kv, allItems.map((item) => txId(item))),
    ]);
    const trial = new BranchState(applied, new Map(balances), new Map(records));
    const steps: Step[] = [];
    for (let i = abandoned.length - 1; i >= 0; i--) {
      const block = abandoned[i];
      const below = i > 0 ? abandoned[i - 1] : await this.mainHeader(fork);
      const parent: Tip = below
        ? { height: below.height, hash: below.hash, time: below.proof?.time ?? null }
        : { height: -1, hash: null, time: null };
      const ids = idsOf(block);
      trial.disconnect(block, ids, parent);
      steps.push({ kind: "disconnect", block, ids, parent });
    }
    let reason = "";
    for (const block of adopted) {
      const verdict = validateBlock(block, trial, this.rules, this.#now());
      if (!verdict.ok) {
        reason = verdict.reason;
        if (checkBlockHeader(block, trial, this.rules, this.#now())?.lasting !== false) {
          await this.#markBad(block, verdict.reason);
        }
        break;
      }
      steps.push({ kind: "connect", block, ids: verdict.effects.ids, effects: verdict.effects });
      trial.connect(block, verdict.effects);
    }
    const end: Tip = { height: trial.height, hash: trial.hash, time: trial.time };
    if (opts.dryRun) {
      if (reason) return { status: "invalid", reason };
      this.#keepSideTrial(target, { tip: { height: tip.height, hash: tip.hash }, fork, trial });
      return { status: "side", height: (await this.header(target))!.height };
    }
    const from = resume?.from ?? tip;
    if (!resume && !better(end, from)) {
      return reason
        ? { status: "invalid", reason }
        : { status: "side", height: (await this.header(target))!.height };
    }

    // Commit: journal first when blocks are abandoned, then the steps, then the new tip.
    const state = new BranchState(applied, balances, records);
    const journaled = resume !== undefined || abandoned.length > 0;
    let tipStamp = versionstamp;
    if (journaled) {
      const journal: ReorgJournal = {
        from,
        to: end,
        fork,
        abandoned: [...new Set([...(resume?.abandoned ?? []), ...abandoned.map((b) => b.hash)])],
      };
      const result = await new CommitBudget(this.kv)
        .check(K.tip, versionstamp)
        .set(K.reorg, journal)
        .set(K.tip, { ...from, switching: true } satisfies StoredTip)
        .commit();
      if (!result.ok) {
        return { status: "invalid", reason: "the chain changed meanwhile; offer it again" };
      }
      tipStamp = result.versionstamp;
    }
    let release = () => {};
    this.#switching = new Promise<void>((resolve) => (release = resolve));
    try {
      tipStamp = await this.#commitSteps(steps, state, tipStamp, !journaled);
      if (journaled) {
        const journal = (await this.kv.get<ReorgJournal>(K.reorg)).value!;
        await this.#orphanAbandoned(journal.abandoned);
        const done = await new CommitBudget(this.kv)
          .check(K.tip, tipStamp)
          .set(K.tip, end satisfies Tip)
          .delete(K.reorg)
          .commit();
        if (!done.ok) throw new Error("the tip changed during a reorg");
      }
    } finally {
      this.#switching = null;
      release();
    }
    return reason && end.hash !== target
      ? { status: "invalid", reason }
      : { status: "reorged", height: end.height, depth: abandoned.length };
  }

  /**
   * Dry-runs `target` on the cached state of its parent's branch, when that is still valid
   * (same tip); null when there is no such state.
   */
  async #extendSideTrial(target: string): Promise<AcceptResult | null> {
    const header = await this.header(target);
    const cached = header?.prev_hash ? this.#sideTrials.get(header.prev_hash) : undefined;
    if (!header || !cached) return null;
    this.#sideTrials.delete(header.prev_hash!);
    const { tip } = await this.tipEntry();
    if (tip.switching) return null;
    if (tip.hash !== cached.tip.hash && !await this.#absorbMain(cached, tip)) return null;
    const block = await this.readBody(header);
    const { trial } = cached;
    // Ids and addresses new to this branch are read as stored: none is in a best-chain block
    // above the fork (those were read, or taken out, when the state was made or moved), so the
    // stored state is this branch's.
    const ids = block.items.map((item) => txId(item)).filter((id) => !trial.records.has(id));
    const addresses = addressesOf(block.items).filter((a) => !trial.balances.has(a));
    const [balances, records] = await Promise.all([
      readBalances(this.kv, addresses),
      readRecords(this.kv, ids),
    ]);
    for (const [a, v] of balances) trial.balances.set(a, v);
    for (const [id, r] of records) trial.records.set(id, r);
    const verdict = validateBlock(block, trial, this.rules, this.#now());
    if (!verdict.ok) {
      if (checkBlockHeader(block, trial, this.rules, this.#now())?.lasting !== false) {
        await this.#markBad(block, verdict.reason);
      }
      return { status: "invalid", reason: verdict.reason };
    }
    trial.connect(block, verdict.effects);
    this.#keepSideTrial(target, cached);
    return { status: "side", height: header.height };
  }

  /**
   * Brings a side branch's state from the best-chain tip it was made against to `tip`, when
   * the best chain only grew since: the new blocks are above the fork, so their effects are
   * taken out of what the state reads from now on (addresses it holds already are the
   * branch's). False when the chain switched meanwhile, or the branch is now too deep.
   */
  async #absorbMain(cached: SideTrial, tip: Tip): Promise<boolean> {
    if (tip.height < cached.tip.height) return false;
    if ((await this.mainHeader(cached.tip.height))?.hash !== cached.tip.hash) return false;
    if (tip.height - cached.fork > MAX_REORG_DEPTH) return false;
    const added = await this.#mainBlocks(cached.tip.height + 1, tip.height);
    const { trial } = cached;
    const items = added.flatMap((b) => b.items);
    const fresh = addressesOf(items).filter((a) => !trial.balances.has(a));
    const stored = await readBalances(this.kv, fresh);
    for (const { sender, receiver, amount } of items) {
      if (stored.has(sender)) stored.set(sender, stored.get(sender)! + amount);
      if (stored.has(receiver)) stored.set(receiver, stored.get(receiver)! - amount);
    }
    for (const [a, v] of stored) trial.balances.set(a, v);
    // Their transactions are not in this branch's chain (unless it holds them: those it knows).
    for (const item of items) {
      const id = txId(item);
      if (!trial.records.has(id)) trial.records.set(id, { state: "pool", tx: itemTx(item) });
    }
    cached.tip = { height: tip.height, hash: tip.hash };
    return true;
  }

  #keepSideTrial(top: string, state: SideTrial): void {
    this.#sideTrials.set(top, state);
    while (this.#sideTrials.size > SIDE_TRIALS) {
      this.#sideTrials.delete(this.#sideTrials.keys().next().value!);
    }
  }

  async #trySwitch(target: string): Promise<AcceptResult> {
    try {
      return await this.#switchTo(target);
    } catch (error) {
      // A commit failed mid-switch (another writer, a KV error); a journal left behind is
      // finished now, or when the store is next opened.
      await this.#recover();
      return { status: "invalid", reason: `switch interrupted: ${(error as Error).message}` };
    }
  }

  /** The best chain's top as the index says (during a reorg it runs ahead of the tip key). */
  async #appliedTop(): Promise<Tip> {
    for await (
      const entry of this.kv.list<BlockHeader>({ prefix: ["main"] }, { reverse: true, limit: 1 })
    ) {
      const h = entry.value;
      return { height: h.height, hash: h.hash, time: h.proof?.time ?? null };
    }
    return { height: -1, hash: null, time: null };
  }

  async #mainBlocks(from: number, to: number): Promise<Block[]> {
    if (to < from) return [];
    const headers: BlockHeader[] = [];
    for await (
      const entry of this.kv.list<BlockHeader>({ start: K.main(from), end: K.main(to + 1) })
    ) headers.push(entry.value);
    return await Promise.all(headers.map((h) => this.readBody(h)));
  }

  /**
   * Commits the steps of a switch in chunks that fit one commit each. Each chunk writes the
   * balances it changed and, when `moveTip`, the tip it reached. Returns the tip's versionstamp.
   */
  async #commitSteps(
    steps: readonly Step[],
    state: BranchState,
    tipStamp: string,
    moveTip: boolean,
  ): Promise<string> {
    let i = 0;
    while (i < steps.length) {
      const poolGen = await this.kv.get(K.poolGen);
      const budget = new CommitBudget(this.kv).check(K.tip, tipStamp);
      const touched = new Set<string>();
      const cost = { mutations: 8, keyBytes: 400, bytes: 2000 };
      let entering = 0;
      let leaving = 0;
      let unknown = false;
      const start = i;
      while (i < steps.length) {
        const step = steps[i];
        const next = estimate(step.block);
        if (i > start && !fits(cost, next)) break;
        cost.mutations += next.mutations;
        cost.keyBytes += next.keyBytes;
        cost.bytes += next.bytes;
        if (step.kind === "disconnect") {
          entering += writeDisconnect(budget, step.block, step.ids, state);
          addressesOf(step.block.items).forEach((a) => touched.add(a));
          state.disconnect(step.block, step.ids, step.parent);
        } else {
          const moved = writeConnect(budget, step.block, step.ids, state);
          leaving += moved.leaving;
          unknown ||= moved.unknown;
          for (const a of step.effects.balances.keys()) touched.add(a);
          state.connect(step.block, step.effects);
        }
        i++;
      }
      writeBalances(budget, state, touched);
      if (entering !== leaving) budget.sum(K.poolSize, entering - leaving);
      if (entering > 0) budget.sum(K.poolGen, 1n);
      if (unknown) budget.check(K.poolGen, poolGen.versionstamp);
      if (moveTip) {
        budget.set(
          K.tip,
          { height: state.height, hash: state.hash, time: state.time } satisfies Tip,
        );
      }
      const over = budget.overLimit();
      if (over) throw new Error(`a chunk of a switch ${over}`); // the estimate is conservative
      const result = await budget.commit();
      if (!result.ok) throw new Error("another writer changed the chain during a switch");
      if (moveTip) tipStamp = result.versionstamp;
    }
    return tipStamp;
  }

  /** Writes orphan entries for the abandoned blocks' transactions that are not in the chain. */
  async #orphanAbandoned(hashes: readonly string[]): Promise<void> {
    const blocks: Block[] = [];
    for (const hash of hashes) {
      const header = await this.header(hash);
      if (header && !header.bad) blocks.push(await this.readBody(header));
    }
    await this.#addOrphans(blocks);
  }

  /** Records the transactions of `blocks` that are not in the chain as orphans to settle. */
  async #addOrphans(blocks: readonly Block[]): Promise<void> {
    const items = blocks.flatMap((b) => b.items.map((item) => ({ item, height: b.height })));
    const ids = items.map(({ item }) => txId(item));
    const records = await readRecords(this.kv, ids);
    const entries = items.flatMap(({ item, height }, i) =>
      records.get(ids[i])?.state === "chain" ? [] : [{ id: ids[i], item, height }]
    );
    for (let i = 0; i < entries.length; i += 500) {
      const op = this.kv.atomic();
      for (const { id, item, height } of entries.slice(i, i + 500)) {
        const tx = { sender: item.sender, receiver: item.receiver, amount: item.amount, t: item.t };
        op.set(K.orphan(item.t, id), { tx, height } satisfies OrphanEntry);
      }
      await commitWithRetry(() => op.commit());
    }
  }

  // ---- upkeep after every tip change and on open -----------------------------------------

  /** Finishes a reorg a crash left, then settles orphans and prunes old side blocks. */
  recover(): Promise<void> {
    return this.#exclusive(async () => {
      await this.#recover();
      await this.#housekeeping();
      this.#tipChanged();
    });
  }

  async #recover(): Promise<void> {
    const journal = (await this.kv.get<ReorgJournal>(K.reorg)).value;
    if (journal && journal.to.hash) await this.#switchTo(journal.to.hash, { resume: journal });
  }

  async #housekeeping(): Promise<void> {
    await this.#settleOrphans();
    await this.#pruneSide();
  }

  /**
   * Puts every orphan (a transaction of an abandoned or side block, not in the chain) where the
   * current tip says: in the pool when it can be paid, taken in (t, id) order with running
   * balances, else dropped with a reason that says so. Recomputed after every tip change, so the
   * pool depends on which blocks a node has seen, not on the order they came in. Entries whose
   * block is older than the side-branch window are final and leave the list.
   */
  async #settleOrphans(): Promise<void> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const entries: { key: Deno.KvKey; value: OrphanEntry }[] = [];
      for await (
        const e of this.kv.list<OrphanEntry>({ prefix: ["orphan"] }, { limit: ORPHAN_CAP * 2 })
      ) {
        entries.push({ key: e.key, value: e.value });
      }
      if (entries.length === 0) return;
      const [{ tip, versionstamp }, poolGen] = await Promise.all([
        this.tipEntry(),
        this.kv.get(K.poolGen),
      ]);
      if (tip.switching) return;
      const ids = entries.map((e) => txId(e.value.tx));
      const [records, balances] = await Promise.all([
        readRecords(this.kv, ids),
        readBalances(this.kv, addressesOf(entries.map((e) => e.value.tx))),
      ]);
      const running = new RunningBalances((a) => balances.get(a) ?? 0);
      const writes: ((b: CommitBudget) => number)[] = [];
      const live = entries.length - ORPHAN_CAP; // past the cap, the oldest become final
      entries.forEach(({ key, value }, i) => {
        const id = ids[i];
        const record = records.get(id);
        const final = i < live || value.height < tip.height - SIDE_WINDOW;
        if (record?.state === "chain" || final) {
          writes.push((b) => (b.delete(key), 0));
          return;
        }
        const { tx } = value;
        const problem = running.apply(tx);
        if (problem === null && record?.state !== "pool") {
          writes.push((b) => {
            b.set(K.tx(id), { state: "pool", tx } satisfies TxRecord).set(K.pool(tx.t, id), tx);
            return 1;
          });
        } else if (problem !== null && record?.state !== "dropped") {
          const reason = `left out of the best chain after a reorg: ${problem}`;
          writes.push((b) => {
            b.set(K.tx(id), { state: "dropped", tx, reason, at: this.#now() } satisfies TxRecord);
            if (record?.state === "pool") {
              b.delete(K.pool(tx.t, id));
              return -1;
            }
            return 0;
          });
        }
      });
      let conflicted = false;
      let genStamp = poolGen.versionstamp;
      for (let i = 0; i < writes.length && !conflicted; i += 300) {
        const budget = new CommitBudget(this.kv).check(K.tip, versionstamp);
        let poolDelta = 0;
        let entering = false;
        for (const write of writes.slice(i, i + 300)) {
          const d = write(budget);
          poolDelta += d;
          entering ||= d > 0;
        }
        if (poolDelta !== 0) budget.sum(K.poolSize, poolDelta);
        if (entering) budget.sum(K.poolGen, 1n);
        // A merge may have pooled one of these since the records were read: its commit bumped
        // poolgen, and pooling it again here would count it twice (the counter then drifts).
        budget.check(K.poolGen, genStamp);
        const result = await budget.commit();
        conflicted = !result.ok;
        if (result.ok && entering) genStamp = result.versionstamp;
      }
      if (!conflicted) return;
    }
  }

  /** Deletes side-branch blocks that are SIDE_WINDOW or more below the tip, oldest first. */
  async #pruneSide(): Promise<void> {
    const { tip } = await this.tipEntry();
    const below = tip.height - SIDE_WINDOW;
    if (below < 0) return;
    const old: Deno.KvKey[] = [];
    for await (
      const e of this.kv.list({ start: ["side"], end: K.side(below, "") }, { limit: 100 })
    ) old.push(e.key);
    if (old.length === 0) return;
    const headers = await getAll<BlockHeader>(this.kv, old.map((k) => K.block(k[2] as string)));
    const budget = new CommitBudget(this.kv);
    old.forEach((key, i) => {
      budget.delete(key).delete(K.block(key[2] as string));
      const parts = headers[i].value?.parts ?? 0;
      for (let p = 0; p < parts; p++) budget.delete(K.body(key[2] as string, p));
    });
    await budget.commit();
  }
}

// ---- what each move writes --------------------------------------------------------------------

/** Writes a block's header (by hash) and body parts. */
function writeBlockData(budget: CommitBudget, block: Block): void {
  const parts = Math.ceil(block.items.length / BODY_PART_ITEMS);
  for (let p = 0; p < parts; p++) {
    budget.set(
      K.body(block.hash, p),
      block.items.slice(p * BODY_PART_ITEMS, (p + 1) * BODY_PART_ITEMS),
    );
  }
  budget.set(K.block(block.hash), headerOf(block, parts));
}

/**
 * Writes a block joining the best chain at its height: its transactions' records (leaving the
 * pool where they were in it) and the height index. `state` holds the records as they are
 * before the block (the caller advances it after).
 */
function writeConnect(
  budget: CommitBudget,
  block: Block,
  ids: readonly string[],
  state: BranchState,
): { leaving: number; unknown: boolean } {
  let leaving = 0;
  let unknown = false;
  block.items.forEach((item, index) => {
    const id = ids[index];
    const tx = { sender: item.sender, receiver: item.receiver, amount: item.amount, t: item.t };
    if (state.records.get(id)?.state === "pool") {
      budget.delete(K.pool(item.t, id));
      leaving++;
    } else {
      unknown = true; // not in our pool: a merge of it could race us
    }
    budget.set(
      K.tx(id),
      { state: "chain", tx, height: block.height, index, block: block.hash } satisfies TxRecord,
    );
  });
  const parts = Math.ceil(block.items.length / BODY_PART_ITEMS);
  budget.set(K.main(block.height), headerOf(block, parts)).delete(K.side(block.height, block.hash));
  return { leaving, unknown };
}

/** Writes a block leaving the best chain: its transactions back in the pool. Returns how many. */
function writeDisconnect(
  budget: CommitBudget,
  block: Block,
  ids: readonly string[],
  _state: BranchState,
): number {
  block.items.forEach((item, index) => {
    const tx = { sender: item.sender, receiver: item.receiver, amount: item.amount, t: item.t };
    budget.set(K.tx(ids[index]), { state: "pool", tx } satisfies TxRecord)
      .set(K.pool(item.t, ids[index]), tx);
  });
  budget.delete(K.main(block.height)).set(K.side(block.height, block.hash), true);
  return block.items.length;
}

/** Writes the current balances of `addresses` (deleting zeros). */
function writeBalances(budget: CommitBudget, state: BranchState, addresses: Iterable<string>) {
  for (const address of addresses) {
    const value = state.balance(address);
    if (value === 0) budget.delete(K.balance(address));
    else budget.set(K.balance(address), value);
  }
}

/** A generous estimate of what one block's move writes. */
function estimate(block: Block): { mutations: number; keyBytes: number; bytes: number } {
  const n = block.items.length;
  const addresses = 2 * n;
  return {
    mutations: 2 * n + addresses + 4,
    keyBytes: n * 200 + addresses * 45 + 300,
    bytes: n * 700 + addresses * 60 + 1500,
  };
}

function fits(
  cost: { mutations: number; keyBytes: number; bytes: number },
  next: { mutations: number; keyBytes: number; bytes: number },
): boolean {
  return cost.mutations + next.mutations <= COMMIT_LIMITS.mutations * CHUNK_SHARE &&
    cost.keyBytes + next.keyBytes <= COMMIT_LIMITS.keyBytes * CHUNK_SHARE &&
    cost.bytes + next.bytes <= COMMIT_LIMITS.bytes * CHUNK_SHARE;
}
