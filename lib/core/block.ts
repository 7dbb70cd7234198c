/**
 * Blocks: the lab's `{items, prev_hash}` plus a height and a hash. Items are hash-chained
 * inside the block; blocks are linked by `prev_hash`.
 */
import { canonicalJson, type Json, sha256Hex } from "./hash.ts";
import {
  checkTxFields,
  idOf,
  type Item,
  itemCanonical,
  itemHash,
  itemTexts,
  type Tx,
} from "./transaction.ts";

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
}

/** Chains transactions into items: each item's `prev_hash` is the hash of the item before it. */
export function chainItems(txs: readonly Tx[]): Item[] {
  const items: Item[] = [];
  let prev: string | null = null;
  for (const tx of txs) {
    const item: Item = {
      sender: tx.sender,
      receiver: tx.receiver,
      amount: tx.amount,
      t: tx.t,
      prev_hash: prev,
    };
    prev = itemHash(item);
    items.push(item);
  }
  return items;
}

/**
 * A block's hash: SHA-256 of the canonical JSON of `{items, prev_hash}`, the lab's own block
 * shape, so any language with a canonical JSON encoder can recompute it.
 */
export function blockHash(items: readonly Item[], prevHash: string | null): string {
  return sha256Hex(blockCanonical(items.map(itemText), prevHash));
}

/**
 * The canonical JSON of one item inside a block's encoding: the fixed five-field shape when
 * the item has exactly those fields, else the general encoder (which would keep any extra).
 */
function itemText(item: Item): string {
  return hasItemShape(item) ? itemCanonical(item) : canonicalJson(item as unknown as Json);
}

/** True when the item's own keys are exactly the five fields of an item. */
function hasItemShape(item: Item): boolean {
  return Object.keys(item).length === 5 && Object.hasOwn(item, "amount") &&
    Object.hasOwn(item, "prev_hash") && Object.hasOwn(item, "receiver") &&
    Object.hasOwn(item, "sender") && Object.hasOwn(item, "t");
}

/** `{items, prev_hash}` canonically, from the items' own canonical texts. */
function blockCanonical(itemTexts: readonly string[], prevHash: string | null): string {
  return `{"items":[${itemTexts.join(",")}],"prev_hash":${canonicalJson(prevHash)}}`;
}

/** Makes the block at `height` on top of `prevHash` holding `txs` in order. */
export function makeBlock(height: number, prevHash: string | null, txs: readonly Tx[]): Block {
  const items = chainItems(txs);
  return { items, prev_hash: prevHash, height, hash: blockHash(items, prevHash) };
}

/**
 * Checks a block on its own: at least one item, valid fields, the item chain, and the stored
 * hash. Returns the first problem, or null. Given `ids`, it also pushes each item's `txId`
 * there (validation needs them next, and they come cheap from the same encoding).
 */
export function checkBlockShape(block: Block, ids?: string[]): string | null {
  if (!Array.isArray(block.items) || block.items.length === 0) return "block has no items";
  let prev: string | null = null;
  // Each item is encoded once: its text is hashed for the item chain and reused in the block's.
  const texts: string[] = [];
  for (let i = 0; i < block.items.length; i++) {
    const item = block.items[i];
    const bad = checkTxFields(item);
    if (bad) return `item ${i}: ${bad}`;
    if (item.prev_hash !== prev) return `item ${i}: prev_hash does not match the item before it`;
    // checkTxFields passed and prev_hash is null or the hex hash before it: strings are plain.
    const [itemJson, txJson] = itemTexts(item, true);
    const shaped = hasItemShape(item);
    texts.push(shaped ? itemJson : canonicalJson(item as unknown as Json));
    prev = sha256Hex(itemJson);
    ids?.push(idOf(item.t, sha256Hex(txJson)));
  }
  const hash = sha256Hex(blockCanonical(texts, block.prev_hash));
  if (hash !== block.hash) return `block hash is ${block.hash}, contents hash to ${hash}`;
  return null;
}

/** The transaction inside an item (without its chain link). */
export function itemTx(item: Item): Tx {
  return { sender: item.sender, receiver: item.receiver, amount: item.amount, t: item.t };
}
