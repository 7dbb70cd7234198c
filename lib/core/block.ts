/**
 * Blocks: the lab's `{items, prev_hash}` plus a height and a hash. Items are hash-chained
 * inside the block; blocks are linked by `prev_hash`.
 */
import { canonicalJson, type Json, sha256Hex } from "./hash.ts";
import { MAX_T, MIN_T } from "./params.ts";
import {
  checkTxFields,
  idOf,
  type Item,
  itemCanonical,
  itemHash,
  itemTexts,
  show,
  type Tx,
  withSignature,
} from "./transaction.ts";

/**
 * A block's proof-of-write evidence: the rule that held when it was cut, the pool statistics it
 * held on, and the block time. It is covered by the block's hash, so nobody can change it
 * after the fact, and any node can re-check the rule from it (lib/consensus/proof.ts).
 */
export interface Proof {
  /** The rule that held: "span", "count" or "age". */
  rule: "span" | "count" | "age";
  /** Block time, POSIX seconds: the moment the rule held (see `proofFor`). */
  time: number;
  /** Pool size when the block was cut. */
  size: number;
  /** Earliest `t` in the pool when the block was cut. */
  earliest: number;
  /** Latest `t` in the pool when the block was cut. */
  latest: number;
}

/** A block as it is stored and sent on the wire. */
export interface Block {
  /** The block's transactions, hash-chained in order. */
  items: Item[];
  /** Hash of the block before it; null for height 0. */
  prev_hash: string | null;
  /** Position in the chain; the first block has height 0. */
  height: number;
  /** The block's hash (see `blockHash`). */
  hash: string;
  /** Proof-of-write evidence; absent only in a lab client's bare `{items, prev_hash}` block. */
  proof?: Proof;
}

/** A block as a client or a lab tracker may send it: the height is optional (it follows the parent). */
export type WireBlock = Omit<Block, "height"> & { height?: number };

/**
 * Chains transactions into items: each item's `prev_hash` is the hash of the item before it.
 * A signed transaction's `pubkey` and `sig` go into its item (the block hash covers them; the
 * item chain, like the id, covers the lab's five fields).
 */
export function chainItems(txs: readonly Tx[]): Item[] {
  const items: Item[] = [];
  let prev: string | null = null;
  for (const tx of txs) {
    const item: Item = withSignature({
      sender: tx.sender,
      receiver: tx.receiver,
      amount: tx.amount,
      t: tx.t,
      prev_hash: prev,
    }, tx);
    prev = itemHash(item);
    items.push(item);
  }
  return items;
}

/**
 * A block's hash: SHA-256 of the canonical JSON of `{items, prev_hash, proof}`, or of the lab's
 * own `{items, prev_hash}` for a bare block, so any language with a canonical JSON encoder can
 * recompute it.
 */
export function blockHash(
  items: readonly Item[],
  prevHash: string | null,
  proof?: Proof,
): string {
  return sha256Hex(blockCanonical(items.map(itemText), prevHash, proof));
}

/**
 * The canonical JSON of one item inside a block's encoding: the fixed five-field shape when
 * the item has exactly those fields, the fixed seven-field shape of a signed item, else the
 * general encoder (which keeps any extra field, so the hash covers everything an item holds).
 */
function itemText(item: Item): string {
  if (hasItemShape(item)) return itemCanonical(item);
  return signedItemText(item, false) ?? canonicalJson(item as unknown as Json);
}

const BASE64URL_CHARS = /^[A-Za-z0-9_-]*$/;

/**
 * A signed item's canonical JSON written out directly (keys in RFC 8785 order), or null when
 * the item is not exactly the seven fields with plain values. `checked`: the addresses and
 * `prev_hash` are known to need no escaping (checkBlockShape has checked them).
 */
function signedItemText(item: Item, checked: boolean): string | null {
  const { amount, prev_hash, pubkey, receiver, sender, sig, t } = item;
  if (
    Object.keys(item).length !== 7 || !Object.hasOwn(item, "pubkey") ||
    !Object.hasOwn(item, "sig") || !Object.hasOwn(item, "amount") ||
    !Object.hasOwn(item, "prev_hash") || !Object.hasOwn(item, "receiver") ||
    !Object.hasOwn(item, "sender") || !Object.hasOwn(item, "t") ||
    typeof pubkey !== "string" || typeof sig !== "string" || !BASE64URL_CHARS.test(pubkey) ||
    !BASE64URL_CHARS.test(sig) || typeof amount !== "number" || !Number.isFinite(amount) ||
    typeof t !== "number" || !Number.isFinite(t) || typeof receiver !== "string" ||
    typeof sender !== "string" || (prev_hash !== null && typeof prev_hash !== "string")
  ) {
    return null;
  }
  const q = checked ? (text: string) => `"${text}"` : (text: string) => JSON.stringify(text);
  return `{"amount":${amount},"prev_hash":${prev_hash === null ? "null" : q(prev_hash)},` +
    `"pubkey":"${pubkey}","receiver":${q(receiver)},"sender":${q(sender)},"sig":"${sig}",` +
    `"t":${t}}`;
}

/** True when the item's own keys are exactly the five fields of an item. */
function hasItemShape(item: Item): boolean {
  return Object.keys(item).length === 5 && Object.hasOwn(item, "amount") &&
    Object.hasOwn(item, "prev_hash") && Object.hasOwn(item, "receiver") &&
    Object.hasOwn(item, "sender") && Object.hasOwn(item, "t");
}

/** `{items, prev_hash[, proof]}` canonically, from the items' own canonical texts. */
function blockCanonical(
  itemTexts: readonly string[],
  prevHash: string | null,
  proof: Proof | undefined,
): string {
  const head = `{"items":[${itemTexts.join(",")}],"prev_hash":${canonicalJson(prevHash)}`;
  return proof === undefined ? `${head}}` : `${head},"proof":${proofCanonical(proof)}}`;
}

/** The canonical JSON of a proof: its five fields in RFC 8785 order, or the general encoder. */
function proofCanonical(proof: Proof): string {
  return canonicalJson(
    {
      earliest: proof.earliest,
      latest: proof.latest,
      rule: proof.rule,
      size: proof.size,
      time: proof.time,
    } as unknown as Json,
  );
}

/**
 * Makes the block at `height` on top of `prevHash` holding `txs` in order, with the proof of
 * the rule that allowed it (none makes a bare lab block).
 */
export function makeBlock(
  height: number,
  prevHash: string | null,
  txs: readonly Tx[],
  proof?: Proof,
): Block {
  const items = chainItems(txs);
  const block: Block = {
    items,
    prev_hash: prevHash,
    height,
    hash: blockHash(items, prevHash, proof),
  };
  if (proof !== undefined) block.proof = proof;
  return block;
}

/**
 * Checks a block on its own: at least one item, valid fields, the item chain, and the stored
 * hash. Returns the first problem, or null. Given `ids`, it also pushes each item's `txId`
 * there (validation needs them next, and they come cheap from the same encoding).
 */
export function checkBlockShape(block: Block, ids?: string[]): string | null {
  if (!Array.isArray(block.items) || block.items.length === 0) return "block has no items";
  if (block.proof !== undefined) {
    const bad = checkProofShape(block.proof);
    if (bad) return bad;
  }
  let prev: string | null = null;
  // Each item is encoded once: its text is hashed for the item chain and reused in the block's.
  const texts: string[] = [];
  for (let i = 0; i < block.items.length; i++) {
    const item = block.items[i];
    const bad = checkTxFields(item);
    if (bad) return `item ${i}: ${bad}`;
    if (item.prev_hash !== prev) return `item ${i}: prev_hash does not match the item before it`;
    // checkTxFields passed and prev_hash is null or the hex hash before it: strings are plain.
    const extra = Object.keys(item).find((k) => !ITEM_FIELDS.has(k));
    if (extra !== undefined) return `item ${i}: unknown field ${JSON.stringify(extra)}`;
    const [itemJson, txJson] = itemTexts(item, true);
    texts.push(
      hasItemShape(item)
        ? itemJson
        : signedItemText(item, true) ?? canonicalJson(item as unknown as Json),
    );
    prev = sha256Hex(itemJson);
    ids?.push(idOf(item.t, sha256Hex(txJson)));
  }
  const hash = sha256Hex(blockCanonical(texts, block.prev_hash, block.proof));
  if (hash !== block.hash) return `block hash is ${block.hash}, contents hash to ${hash}`;
  return null;
}

/** The transaction inside an item (without its chain link, with its signature if any). */
export function itemTx(item: Item): Tx {
  return withSignature(
    { sender: item.sender, receiver: item.receiver, amount: item.amount, t: item.t },
    item,
  );
}

/** The fields an item may carry: the lab's five, and a signed transaction's two. */
const ITEM_FIELDS = new Set(["sender", "receiver", "amount", "t", "prev_hash", "pubkey", "sig"]);

/** The rules a proof may name. */
const PROOF_RULES = new Set(["span", "count", "age"]);

/** Checks a proof's fields for type and range (not whether it holds: see lib/consensus). */
export function checkProofShape(proof: unknown): string | null {
  if (typeof proof !== "object" || proof === null || Array.isArray(proof)) {
    return "proof must be an object";
  }
  const p = proof as Record<string, unknown>;
  const extra = Object.keys(p).find((k) =>
    !["rule", "time", "size", "earliest", "latest"].includes(k)
  );
  if (extra !== undefined) return `proof has unknown field ${JSON.stringify(extra)}`;
  if (typeof p.rule !== "string" || !PROOF_RULES.has(p.rule)) {
    return `proof rule must be span, count or age, got ${show(p.rule)}`;
  }
  for (const field of ["time", "earliest", "latest"] as const) {
    const v = p[field];
    if (typeof v !== "number" || !Number.isFinite(v) || v < MIN_T || v > MAX_T) {
      return `proof ${field} must be POSIX seconds between ${MIN_T} and ${MAX_T}, got ${show(v)}`;
    }
  }
  if (!Number.isSafeInteger(p.size) || (p.size as number) < 1) {
    return `proof size must be a positive whole number, got ${show(p.size)}`;
  }
  return null;
}
