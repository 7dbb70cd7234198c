/**
 * One validator: every invalid block is refused by `appendBlock` (the builder's path),
 * `acceptBlock` (peers' and clients' path) and `verifyBlocks` (the audit) with the same reason.
 */
import assert from "node:assert/strict";
import { type Block, blockHash, makeBlock } from "../lib/core/block.ts";
import { MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import { type Item, signTx, type Tx } from "../lib/core/transaction.ts";
import { newWallet } from "../lib/core/keys.ts";
import type { ChainRules } from "../lib/consensus/rules.ts";
import { verifyBlocks } from "../lib/consensus/verify.ts";
import { openStore } from "../lib/store/store.ts";
import { addr, GENESIS, T0, tx } from "./fixtures/helpers.ts";
import { child, LATER } from "./fixtures/chain.ts";
import { canonicalJson, type Json } from "../lib/core/hash.ts";

const A = addr(1);
const B = addr(2);
const C = addr(3);
const NOW = LATER.now() / 1000;
/** The network of this table: count >= 1 or span >= 180 s; bare blocks refused. */
const RULES: ChainRules = {
  rules: [{ kind: "count", size: 1 }, { kind: "span", seconds: 180 }],
  acceptBareBlocks: false,
};
const b0 = child(null, [tx(GENESIS, A, 100, T0)]);

/** A block at height 1 whose items were edited after chaining, with the hash recomputed. */
function edited(edit: (items: Item[]) => void): Block {
  const good = child(b0, [tx(A, B, 10, T0 + 1), tx(A, C, 10, T0 + 2)]);
  const items = good.items.map((i) => ({ ...i }));
  edit(items);
  return { ...good, items, hash: blockHash(items, good.prev_hash, good.proof) };
}

/** A block whose proof was edited, with the hash recomputed so only the proof is wrong. */
function proven(edit: (proof: NonNullable<Block["proof"]>) => void): Block {
  const good = child(b0, [tx(A, B, 10, T0 + 1)]);
  const proof = { ...good.proof! };
  edit(proof);
  return { ...good, proof, hash: blockHash(good.items, good.prev_hash, proof) };
}

const CASES: [name: string, block: Block, reason: RegExp][] = [
  ["bad hash", { ...child(b0, [tx(A, B, 1, T0 + 1)]), hash: "ab".repeat(32) }, /block hash is/],
  ["bad link", { ...child(b0, [tx(A, B, 1, T0 + 1)]) }, /prev_hash/],
  ["bad item link", edited((items) => (items[1].prev_hash = "cd".repeat(32))), /item 1: prev_hash/],
  ["overspend", child(b0, [tx(A, B, 101, T0 + 1)]), /item 0: not enough balance/],
  [
    "in-block double spend",
    child(b0, [tx(A, B, 60, T0 + 1), tx(A, C, 60, T0 + 2)]),
    /item 1: not enough balance/,
  ],
  [
    "oversize: an item padded with an extra field",
    edited((items) => ((items[0] as unknown as Record<string, string>).memo = "x".repeat(100_000))),
    /item 0: unknown field "memo"/,
  ],
  [
    "too many items (241)",
    child(
      b0,
      Array.from({ length: MAX_BLOCK_ITEMS + 1 }, (_, i) => tx(GENESIS, addr(10 + i), 1, T0 + i)),
    ),
    /block holds 241 items, max 240/,
  ],
  ["bad t", edited((items) => (items[0].t = 9_999_999_999)), /item 0: t must be POSIX seconds/],
  [
    "duplicate tx",
    child(b0, [tx(GENESIS, A, 100, T0)]),
    /item 0: transaction .* is already in block 0/,
  ],
  [
    "the same tx twice in the block",
    child(b0, [tx(A, B, 1, T0 + 1), tx(A, B, 1, T0 + 1)]),
    /item 1: the block holds transaction .* twice/,
  ],
  [
    "missing rule evidence",
    makeBlock(1, b0.hash, [tx(A, B, 1, T0 + 1)]),
    /no proof-of-write evidence/,
  ],
  [
    "evidence that does not hold",
    proven((p) => Object.assign(p, { rule: "span" })),
    /proof-of-write does not hold: span: pool spans 0.000 s, rule needs 180 s/,
  ],
  ["evidence under a rule the network does not use", proven((p) => (p.rule = "age")), /age rule/],
  [
    "evidence not covering the block's own transactions",
    proven((p) => (p.latest = T0)),
    /latest t was/,
  ],
  ["a block time in the future", proven((p) => (p.time = NOW + 60)), /in the future/],
  ["a block time before its parent's", proven((p) => (p.time = T0 - 1)), /before its parent's/],
];
// The bad link case needs its own block: linked to a hash that is not b0's.
CASES[1][1] = makeBlock(1, "ef".repeat(32), [tx(A, B, 1, T0 + 1)], CASES[1][1].proof);

/**
 * Asserts that `block` on top of `base` is refused by verify, appendBlock and acceptBlock
 * with one reason matching `reason`, and that nothing was appended.
 */
async function assertRefusedAlike(
  name: string,
  base: Block,
  block: Block,
  reason: RegExp,
  rules: ChainRules,
): Promise<void> {
  const verdict = await verifyBlocks([base, block], rules, NOW);
  assert.equal(verdict.ok, false, `verify passed ${name}`);
  assert.ok(!verdict.ok);
  assert.equal(verdict.height, 1);
  assert.match(verdict.reason, reason);

  const store = await openStore(":memory:", { rules, clock: LATER });
  try {
    assert.ok((await store.appendBlock(base)).ok);
    const appended = await store.appendBlock(block);
    assert.deepEqual(appended, { ok: false, conflict: false, reason: verdict.reason });
    const accepted = await store.acceptBlock(block);
    if (name === "bad link") {
      // A block linked to an unknown parent cannot be judged yet: it waits for the parent.
      assert.equal(accepted.status, "orphan");
    } else {
      assert.deepEqual(accepted, { status: "invalid", reason: verdict.reason });
    }
    assert.equal((await store.tip()).hash, base.hash, "nothing was appended");
  } finally {
    await store.close();
  }
}

for (const [name, block, reason] of CASES) {
  Deno.test(`one validator: ${name} is refused alike by appendBlock, acceptBlock and verify`, async () => {
    await assertRefusedAlike(name, b0, block, reason, RULES);
  });
}

// ---- signatures (issue 10): the same table on a network that requires them ------------------

const minter = await newWallet();
const alice = await newWallet();
const bob = await newWallet();
/** The table's network with the signature rule: `minter` may mint. */
const SIGNED: ChainRules = { ...RULES, signatures: { required: true, minters: [minter.address] } };
const s0 = child(null, [
  await signTx({ sender: GENESIS, receiver: alice.address, amount: 100, t: T0 }, minter),
]);
const spend = await signTx({ sender: alice.address, receiver: B, amount: 10, t: T0 + 1 }, alice);
/** A block on s0 holding `items` as given (chained and hashed, nothing checked). */
const onS0 = (txs: Tx[]) => child(s0, txs);

const SIGNED_CASES: [name: string, block: Block, reason: RegExp][] = [
  [
    "a forged transfer (alice's key and address, signed by bob)",
    onS0([{ ...spend, sig: (await signTx({ ...spend }, bob)).sig }]),
    /item 0: signature does not verify/,
  ],
  [
    "a transfer changed after signing",
    onS0([{ ...spend, amount: 90 }]),
    /item 0: signature does not verify/,
  ],
  [
    "an unsigned transfer",
    onS0([{ sender: alice.address, receiver: B, amount: 10, t: T0 + 1 }]),
    /item 0: missing signature/,
  ],
  [
    "a transfer signed by a key that is not the sender's",
    onS0([await signTx({ ...spend, sender: alice.address }, bob)]),
    /item 0: public key does not match the sender address/,
  ],
  [
    "a mint by a non-minter",
    onS0([await signTx({ sender: GENESIS, receiver: bob.address, amount: 5, t: T0 + 1 }, alice)]),
    /item 0: mint by a non-minter/,
  ],
  [
    "a malformed signature",
    onS0([{ ...spend, sig: "AAAA" }]),
    /item 0: malformed signature/,
  ],
  [
    "a malformed public key",
    onS0([{ ...spend, pubkey: "AAAA" }]),
    /item 0: malformed public key/,
  ],
];

for (const [name, block, reason] of SIGNED_CASES) {
  Deno.test(`one validator: ${name} is refused alike by appendBlock, acceptBlock and verify`, async () => {
    await assertRefusedAlike(name, s0, block, reason, SIGNED);
  });
}

Deno.test("one validator: a signed spend passes all three under the signature rule", async () => {
  const good = onS0([spend]);
  assert.deepEqual(await verifyBlocks([s0, good], SIGNED, NOW), {
    ok: true,
    height: 1,
    transactions: 2,
  });
  const store = await openStore(":memory:", { rules: SIGNED, clock: LATER });
  try {
    assert.ok((await store.appendBlock(s0)).ok);
    assert.deepEqual(await store.acceptBlock(good), { status: "extended", height: 1 });
    assert.equal(await store.balance(alice.address), 90);
  } finally {
    await store.close();
  }
});

Deno.test("one validator: the valid block of the table's shape passes all three", async () => {
  const good = child(b0, [tx(A, B, 60, T0 + 1), tx(A, C, 40, T0 + 2)]);
  assert.deepEqual(await verifyBlocks([b0, good], RULES, NOW), {
    ok: true,
    height: 1,
    transactions: 3,
  });
  const store = await openStore(":memory:", { rules: RULES, clock: LATER });
  try {
    assert.deepEqual(await store.acceptBlock(b0), { status: "extended", height: 0 });
    assert.deepEqual(await store.acceptBlock(good), { status: "extended", height: 1 });
    assert.equal(await store.balance(A), 0);
  } finally {
    await store.close();
  }
});

Deno.test("block hash covers the proof: the same items with other evidence hash differently", () => {
  const a = child(null, [tx(GENESIS, A, 1, T0)]);
  const b = { ...a.proof!, size: 2 };
  assert.notEqual(blockHash(a.items, null, b), a.hash);
  // A bare block hashes exactly as the lab's {items, prev_hash}.
  const bare = makeBlock(0, null, [tx(GENESIS, A, 1, T0)]);
  assert.equal(
    bare.hash,
    blockHash(bare.items, null),
  );
  assert.ok(canonicalJson({ items: bare.items, prev_hash: null } as unknown as Json).length > 0);
});
