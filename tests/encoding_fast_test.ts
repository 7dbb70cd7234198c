/**
 * The fast encoders of the fixed shapes (transactions, items, blocks) must give exactly the
 * text the general RFC 8785 encoder gives, for any field values, and fall back to it for
 * anything unusual.
 */
import assert from "node:assert/strict";
import { blockHash, checkBlockShape, makeBlock } from "../lib/core/block.ts";
import { canonicalJson, hashJson, type Json } from "../lib/core/hash.ts";
import {
  type Item,
  itemCanonical,
  itemHash,
  itemTexts,
  type Tx,
  txCanonical,
  txHash,
  txId,
} from "../lib/core/transaction.ts";
import { A, B, GENESIS, T0, tx } from "./fixtures/helpers.ts";

const general = (value: unknown) => canonicalJson(value as Json);
const txFields = (t: Tx) => ({ amount: t.amount, receiver: t.receiver, sender: t.sender, t: t.t });
const itemFields = (i: Item) => ({ ...txFields(i), prev_hash: i.prev_hash });

// Numbers whose shortest form is tricky, strings that need escaping, and wrong types.
const amounts: unknown[] = [1, 10, 2 ** 53 - 1, 1e21, 1.5e-7, -0, 0.1 + 0.2, "5", null];
const times: unknown[] = [T0, T0 + 0.000001, 1704067200.1234567, 4102444800, 1e300, "x", {}];
const strings: unknown[] = [A, GENESIS, 'quote " and \\ back', "é ✓ \u2028 \u0000", "", 7];
const prevs: unknown[] = [null, "a".repeat(64), "\n", 3];

Deno.test("txCanonical and itemTexts equal the general encoder for every combination", () => {
  let checked = 0;
  for (const amount of amounts) {
    for (const t of times) {
      for (const receiver of strings) {
        for (const prev_hash of prevs) {
          const item = { amount, t, receiver, sender: B, prev_hash } as unknown as Item;
          const [itemJson, txJson] = itemTexts(item);
          assert.equal(itemJson, general(itemFields(item)));
          assert.equal(txJson, general(txFields(item)));
          assert.equal(itemCanonical(item), itemJson);
          assert.equal(txCanonical(item), txJson);
          assert.equal(txHash(item), hashJson(txFields(item) as unknown as Json));
          assert.equal(itemHash(item), hashJson(itemFields(item) as unknown as Json));
          checked++;
        }
      }
    }
  }
  assert.equal(checked, amounts.length * times.length * strings.length * prevs.length);
});

Deno.test("itemTexts of checked items (UUIDs, hex links) equals the general encoder", () => {
  let prev: string | null = null;
  for (let i = 0; i < 500; i++) {
    const item: Item = {
      amount: 1 + i * 7919,
      prev_hash: prev,
      receiver: i % 2 ? A : GENESIS,
      sender: i % 3 ? B : A,
      t: T0 + i / 1e6 + (i % 7) * 0.1,
    };
    const [itemJson, txJson] = itemTexts(item, true);
    assert.equal(itemJson, general(itemFields(item)));
    assert.equal(txJson, general(txFields(item)));
    prev = itemHash(item);
  }
});

Deno.test("non-finite numbers are refused as the general encoder refuses them", () => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(() => txCanonical({ ...tx(GENESIS, A, 1, T0), t: bad }), RangeError);
    assert.throws(() => itemCanonical({ ...tx(GENESIS, A, bad, T0), prev_hash: null }));
  }
});

Deno.test("blockHash: items with extra or missing fields hash as the general encoder says", () => {
  const block = makeBlock(0, null, [tx(GENESIS, A, 5, T0), tx(GENESIS, B, 6, T0 + 1)]);
  const generalHash = (items: unknown[], prev: string | null) =>
    hashJson({ items, prev_hash: prev } as unknown as Json);
  assert.equal(block.hash, generalHash(block.items, null));
  const extra = block.items.map((item) => ({ ...item, note: "kept by the general encoder" }));
  assert.equal(blockHash(extra, "f".repeat(64)), generalHash(extra, "f".repeat(64)));
  const { t: _t, ...missing } = block.items[0];
  const odd = [{ ...missing, x: 1 } as unknown as Item];
  assert.equal(blockHash(odd, null), generalHash(odd, null));
  // Key order in the object does not matter.
  const shuffled = block.items.map((i) => ({
    t: i.t,
    sender: i.sender,
    receiver: i.receiver,
    prev_hash: i.prev_hash,
    amount: i.amount,
  }));
  assert.equal(blockHash(shuffled, null), block.hash);
});

Deno.test("checkBlockShape hands back each item's txId", () => {
  const txs = [tx(GENESIS, A, 5, T0), tx(A, B, 2, T0 + 1), tx(GENESIS, B, 1, T0 + 2)];
  const block = makeBlock(3, "c".repeat(64), txs);
  const ids: string[] = [];
  assert.equal(checkBlockShape(block, ids), null);
  assert.deepEqual(ids, txs.map(txId));
  assert.equal(checkBlockShape(block), null);
});

Deno.test("checkBlockShape refuses an item carrying a field an item does not have", () => {
  const block = makeBlock(0, null, [tx(GENESIS, A, 5, T0), tx(A, B, 2, T0 + 1)]);
  const extra = { ...block, items: block.items.map((i) => ({ ...i, extra: true })) };
  assert.equal(checkBlockShape(extra), 'item 0: unknown field "extra"');
  // Even when the block's hash covers the extra field (the general encoding keeps it).
  const rehashed = { ...extra, hash: blockHash(extra.items, extra.prev_hash) };
  assert.notEqual(rehashed.hash, block.hash);
  assert.equal(checkBlockShape(rehashed), 'item 0: unknown field "extra"');
});
