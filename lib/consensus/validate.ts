/**
 * The one block validator. Pure: it reads the parent state through `ParentState` and touches
 * no store, so the builder, blocks from peers and clients (`Store`), and `verify` all call this
 * same function and cannot disagree. It returns the block's effects, or the first reason it is
 * invalid.
 */
import { RunningBalances } from "../core/balances.ts";
import { type Block, checkBlockShape } from "../core/block.ts";
import { MAX_BLOCK_ITEMS } from "../core/params.ts";
import { checkProof, isFromTheFuture } from "./proof.ts";
import type { ChainRules } from "./rules.ts";
import { checkBlockSignatures } from "./signatures.ts";

/** What the validator needs to know of the chain a block extends. */
export interface ParentState {
  /** The parent's height; -1 when the block is the first of its chain. */
  height: number;
  /** The parent's hash; null when the block is the first. */
  hash: string | null;
  /** The parent's block time (its proof's); null for none or a bare parent. */
  time: number | null;
  /** An address's balance on the chain up to the parent (GENESIS's is minus the supply). */
  balance(address: string): number;
  /** The height of the block holding transaction `id` on the chain up to the parent, or null. */
  chainHeight(id: string): number | null;
}

/** What a valid block changes. */
export interface BlockEffects {
  /** Each item's transaction id, in order. */
  ids: string[];
  /** The balances the block changes, with their values after it. */
  balances: Map<string, number>;
}

/** The validator's verdict. */
export type Validation = { ok: true; effects: BlockEffects } | { ok: false; reason: string };

/**
 * Decides whether `block` is valid on top of `parent` under the network's rules, with the
 * receiver's clock at `nowSeconds` (for the block time). Checks, in order: item count, shape
 * (fields, item chain, hash, proof fields), height and link to the parent, proof-of-write
 * evidence, signatures (the network's signature rule, `checkSignature`), transactions already
 * in the chain or twice in the block, balances (running, so a double spend inside the block
 * fails). `checkedIds`: the ids `checkBlockHeader` gave for this
 * block on this parent, when the caller ran it first; the header checks are then not repeated.
 *
 * @example
 * ```ts
 * const verdict = validateBlock(block, genesisParent(), DEFAULT_CHAIN_RULES, Date.now() / 1000);
 * if (!verdict.ok) console.log(verdict.reason);
 * ```
 */
export function validateBlock(
  block: Block,
  parent: ParentState,
  chain: ChainRules,
  nowSeconds: number,
  opts: { checkedIds?: string[] } = {},
): Validation {
  const fail = (reason: string): Validation => ({ ok: false, reason });
  let ids: string[];
  if (opts.checkedIds) {
    // The caller ran checkBlockHeader already (to learn the ids it must read records for).
    ids = opts.checkedIds;
  } else {
    ids = [];
    const header = checkBlockHeader(block, parent, chain, nowSeconds, ids);
    if (header) return fail(header.reason);
  }
  const seen = new Set<string>();
  const balances = new RunningBalances((a) => parent.balance(a));
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (seen.has(id)) return fail(`item ${i}: the block holds transaction ${id} twice`);
    seen.add(id);
    const at = parent.chainHeight(id);
    if (at !== null) return fail(`item ${i}: transaction ${id} is already in block ${at}`);
    const overspend = balances.apply(block.items[i]);
    if (overspend) return fail(`item ${i}: ${overspend}`);
  }
  return { ok: true, effects: { ids, balances: balances.changed } };
}

/** Why a block's header is invalid, and whether that can change (a block from the future). */
export interface HeaderFault {
  /** The reason. */
  reason: string;
  /**
   * True when the block itself is at fault whatever the time: its hash matches its contents
   * and it breaks a rule, so a node may remember it as invalid. False for a hash that does not
   * match (the block is not what its hash names) or a block time too far ahead (valid later).
   */
  lasting: boolean;
}

/**
 * The checks that need only the parent's height, hash and time: item count, shape (fields,
 * item chain, hash, proof fields), height and link, the proof-of-write evidence and the
 * signatures. Given `ids`, each item's transaction id is pushed there. Returns null when all
 * pass.
 */
export function checkBlockHeader(
  block: Block,
  parent: Pick<ParentState, "height" | "hash" | "time">,
  chain: ChainRules,
  nowSeconds: number,
  ids: string[] = [],
): HeaderFault | null {
  if (Array.isArray(block.items) && block.items.length > MAX_BLOCK_ITEMS) {
    return {
      reason: `block holds ${block.items.length} items, max ${MAX_BLOCK_ITEMS}`,
      lasting: false,
    };
  }
  const shape = checkBlockShape(block, ids);
  if (shape) return { reason: shape, lasting: false };
  if (block.height !== parent.height + 1) {
    const gap = block.height - parent.height - 1;
    return {
      reason: gap > 0
        ? `block ${block.height} comes after ${
          parent.height < 0 ? "the start of the chain" : `block ${parent.height}`
        }: ${
          gap === 1
            ? `block ${parent.height + 1} is`
            : `blocks ${parent.height + 1}..${block.height - 1} are`
        } missing`
        : `block height ${block.height} does not follow its parent's ${parent.height}`,
      lasting: false,
    };
  }
  if (block.prev_hash !== parent.hash) {
    return {
      reason:
        `prev_hash ${block.prev_hash} is not the hash of block ${parent.height} (${parent.hash})`,
      lasting: false,
    };
  }
  const proof = checkProof(block, parent.time, chain, nowSeconds);
  if (proof) return { reason: proof, lasting: !isFromTheFuture(block, nowSeconds) };
  // Verified synchronously (node:crypto's Ed25519), so this stays one pure function: see
  // docs/decisions.md, "Signatures". The hash matched, so a bad signature is the block's own.
  const signatures = checkBlockSignatures(block.items, chain);
  if (signatures) return { reason: signatures, lasting: true };
  return null;
}

/** The parent state of a chain's first block: nothing before it. */
export function genesisParent(): ParentState {
  return { height: -1, hash: null, time: null, balance: () => 0, chainHeight: () => null };
}
