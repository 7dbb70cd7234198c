import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { blockHash, chainItems, makeBlock } from "../lib/core/block.ts";
import { canonicalJson, hashJson, type Json, sha256Hex } from "../lib/core/hash.ts";
import { type Item, itemHash, type Tx, TX_ID, txHash, txId } from "../lib/core/transaction.ts";
import { A, B, C, fixture, GENESIS, runDeno, T0 } from "./fixtures/helpers.ts";

const sha256 = (text: string) => createHash("sha256").update(text, "utf8").digest("hex");

Deno.test("canonicalJson: RFC 8785 sample (section 3.2.2) encodes byte for byte", () => {
  // The RFC's own input and expected output, independent of our encoder.
  const input = `{
    "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
    "string": "\\u20ac$\\u000F\\u000aA'\\u0042\\u0022\\u005c\\\\\\"\\/",
    "literals": [null, true, false]
  }`;
  const expected =
    `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],` +
    `"string":"€$\\u000f\\nA'B\\"\\\\\\\\\\"/"}`;
  assert.equal(canonicalJson(JSON.parse(input)), expected);
});

Deno.test("canonicalJson: keys sorted by UTF-16 code units (RFC 8785 section 3.2.3)", () => {
  const input = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\ud83d\ude00": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
  };
  // The RFC lists the values in the order the sorted keys must put them in. (Object.keys of
  // the parsed text would move "1" first, so read the order from the text itself.)
  const text = canonicalJson(input);
  const positions = [
    "Carriage Return",
    "One",
    "Control",
    "Latin Small Letter O With Diaeresis",
    "Euro Sign",
    "Emoji: Grinning Face",
    "Hebrew Letter Dalet With Dagesh",
  ].map((value) => text.indexOf(`"${value}"`));
  assert.ok(positions.every((p) => p > 0), text);
  assert.deepEqual(positions, [...positions].sort((a, b) => a - b), text);
  assert.ok(text.startsWith(`{"\\r":"Carriage Return","1":"One",`), text);
});

Deno.test("canonicalJson: our shapes have sorted keys at every level and no whitespace", () => {
  const item = { t: 1.5, sender: A, receiver: B, prev_hash: null, amount: 7 };
  assert.equal(
    canonicalJson(item),
    `{"amount":7,"prev_hash":null,"receiver":"${B}","sender":"${A}","t":1.5}`,
  );
  const block = { prev_hash: "ab", items: [item, { z: [1, { b: 2, a: 1 }], a: true }] };
  assert.equal(
    canonicalJson(block as unknown as Json),
    `{"items":[{"amount":7,"prev_hash":null,"receiver":"${B}","sender":"${A}","t":1.5},` +
      `{"a":true,"z":[1,{"a":1,"b":2}]}],"prev_hash":"ab"}`,
  );
  // Insertion order does not matter.
  assert.equal(canonicalJson({ a: 1, b: 2 }), canonicalJson({ b: 2, a: 1 }));
  assert.equal(canonicalJson([]), "[]");
  assert.equal(canonicalJson({}), "{}");
});

Deno.test("canonicalJson: number forms (shortest round trip, no -0, exponents)", () => {
  const cases: [number, string][] = [
    [0, "0"],
    [-0, "0"],
    [1, "1"],
    [-1, "-1"],
    [10, "10"],
    [1.5, "1.5"],
    [0.1, "0.1"],
    [1e21, "1e+21"],
    [1e20, "100000000000000000000"],
    [1e-6, "0.000001"],
    [1e-7, "1e-7"],
    [Number.MAX_SAFE_INTEGER, "9007199254740991"],
    [T0 + 0.123456, "1704067200.123456"],
    [5e-324, "5e-324"],
    [1.7976931348623157e308, "1.7976931348623157e+308"],
  ];
  for (const [n, text] of cases) assert.equal(canonicalJson(n), text, `encoding ${n}`);
  for (const bad of [NaN, Infinity, -Infinity]) {
    assert.throws(() => canonicalJson(bad), RangeError);
    assert.throws(() => canonicalJson({ t: bad }), RangeError);
  }
});

Deno.test("sha256Hex and hashJson: SHA-256 of the canonical UTF-8 text, lowercase hex", () => {
  // FIPS 180-2 test vector.
  assert.equal(
    sha256Hex("abc"),
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
  );
  assert.equal(sha256Hex("€"), sha256("€"));
  assert.equal(hashJson({ b: 1, a: "x" }), sha256(`{"a":"x","b":1}`));
});

const sample: Tx = { sender: GENESIS, receiver: A, amount: 10, t: T0 + 0.5 };

Deno.test("txId: t in microseconds, a dash, SHA-256 of canonical {amount, receiver, sender, t}", () => {
  const hash = sha256(`{"amount":10,"receiver":"${A}","sender":"${GENESIS}","t":${T0 + 0.5}}`);
  assert.equal(txHash(sample), hash);
  assert.equal(txId(sample), `${String((T0 + 0.5) * 1e6).padStart(16, "0")}-${hash}`);
  assert.match(txId(sample), TX_ID);
  // Ids sort by time, whatever their hashes: the index keyed by id grows at its end.
  const later = { ...sample, t: sample.t + 1e-6 };
  assert.ok(txId(later) > txId(sample) && txId({ ...sample, t: sample.t + 1 }) > txId(later));
  // An item carries the same id wherever it sits in a block.
  const withPrev = { ...sample, prev_hash: "f".repeat(64) } as Item;
  assert.equal(txId(withPrev), txId(sample));
  assert.equal(txId({ ...withPrev, prev_hash: null } as Item), txId(sample));
  // Every field matters.
  assert.notEqual(txId({ ...sample, amount: 11 }), txId(sample));
  assert.notEqual(txId({ ...sample, receiver: B }), txId(sample));
  assert.notEqual(txId({ ...sample, sender: B }), txId(sample));
  assert.notEqual(txId({ ...sample, t: sample.t + 1e-6 }), txId(sample));
});

Deno.test("itemHash: covers prev_hash as well as the four fields", () => {
  const first: Item = { ...sample, prev_hash: null };
  const later: Item = { ...sample, prev_hash: "0".repeat(64) };
  assert.equal(
    itemHash(first),
    sha256(
      `{"amount":10,"prev_hash":null,"receiver":"${A}","sender":"${GENESIS}","t":${T0 + 0.5}}`,
    ),
  );
  assert.notEqual(itemHash(first), itemHash(later));
  assert.notEqual(itemHash(first), txId(sample));
});

Deno.test("chainItems: each item's prev_hash is the hash of the item before it", () => {
  const txs = [sample, { sender: A, receiver: B, amount: 3, t: T0 + 1 }];
  const items = chainItems(txs);
  assert.equal(items[0].prev_hash, null);
  assert.equal(items[1].prev_hash, itemHash(items[0]));
  assert.deepEqual(items.map(({ prev_hash: _, ...tx }) => tx), txs);
});

Deno.test("blockHash: SHA-256 of canonical {items, prev_hash}, recomputed by hand", () => {
  const txs: Tx[] = [
    sample,
    { sender: A, receiver: B, amount: 3, t: T0 + 1.25 },
    { sender: B, receiver: C, amount: 1, t: T0 + 2 },
  ];
  const prev = "1".repeat(64);
  const block = makeBlock(4, prev, txs);
  // Build the canonical text by hand, field by field in sorted order.
  let prevItem: string | null = null;
  const parts: string[] = [];
  for (const t of txs) {
    const text = `{"amount":${t.amount},"prev_hash":${JSON.stringify(prevItem)},` +
      `"receiver":"${t.receiver}","sender":"${t.sender}","t":${t.t}}`;
    parts.push(text);
    prevItem = sha256(text);
  }
  const expected = sha256(`{"items":[${parts.join(",")}],"prev_hash":"${prev}"}`);
  assert.equal(block.hash, expected);
  assert.equal(blockHash(block.items, prev), expected);
  assert.equal(block.height, 4);
  assert.equal(block.prev_hash, prev);
  // The first block links to null, and that is part of the hash.
  const genesisBlock = makeBlock(0, null, txs);
  assert.equal(
    genesisBlock.hash,
    sha256(`{"items":[${parts.join(",")}],"prev_hash":null}`),
  );
  assert.notEqual(genesisBlock.hash, block.hash);
});

Deno.test("hashes are identical in a separately spawned Deno process", async () => {
  const txs: Tx[] = [
    sample,
    { sender: A, receiver: B, amount: 3, t: T0 + 1.000001 },
    { sender: B, receiver: C, amount: Number.MAX_SAFE_INTEGER, t: T0 + 0.1 },
  ];
  // Send the fields in another key order: the encoding must not depend on it.
  const reordered = txs.map((t) => ({
    t: t.t,
    amount: t.amount,
    receiver: t.receiver,
    sender: t.sender,
  }));
  const { code, stdout, stderr } = await runDeno([
    "run",
    fixture("hash_child.ts"),
    JSON.stringify(reordered),
  ]);
  assert.equal(code, 0, stderr);
  const child = JSON.parse(stdout);
  const block = makeBlock(0, null, txs);
  assert.deepEqual(child.txIds, txs.map(txId));
  assert.deepEqual(child.itemHashes, block.items.map(itemHash));
  assert.equal(child.blockHash, block.hash);
  assert.deepEqual(child.canonical, txs.map((t) => canonicalJson({ ...t })));
});
