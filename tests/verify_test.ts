import assert from "node:assert/strict";
import { type Block, itemTx, makeBlock } from "../lib/core/block.ts";
import { openStore, type Store } from "../lib/store/store.ts";
import { type Item, txId } from "../lib/core/transaction.ts";
import { type Verdict, verifyStore } from "../lib/store/audit.ts";
import { verifyBlocks as verifyUnder } from "../lib/consensus/verify.ts";
import {
  A,
  appendChain,
  B,
  C,
  D,
  GENESIS,
  LOOSE_RULES,
  sampleChain,
  T0,
  tx,
} from "./fixtures/helpers.ts";

/** Validates blocks as a chain under the loose test rules. */
const verifyBlocks = (blocks: AsyncIterable<Block> | Iterable<Block>) =>
  verifyUnder(blocks, LOOSE_RULES);

/** A fresh in-memory store holding the three-block sample chain and one pooled transaction. */
async function withChain(body: (store: Store, blocks: Block[]) => Promise<void>) {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const blocks = await appendChain(store, sampleChain());
    await store.addToPool([tx(A, D, 1, T0 + 9)]);
    const verdict = await verifyStore(store, { indexes: true });
    assert.deepEqual(verdict, { ok: true, height: 2, transactions: 9 });
    await body(store, blocks);
  } finally {
    await store.close();
  }
}

function assertFails(verdict: Verdict, height: number, pattern: RegExp) {
  assert.equal(
    verdict.ok,
    false,
    `expected a failure at ${height}, got ${JSON.stringify(verdict)}`,
  );
  assert.equal(verdict.height, height, JSON.stringify(verdict));
  if (!verdict.ok) assert.match(verdict.reason, pattern);
}

/** The stored header of the best chain's block at `height` (`["main", height]`). */
async function header(store: Store, height: number) {
  return (await store.kv.get<{ hash: string; prev_hash: string | null }>(["main", height]))
    .value!;
}

/** The key of the first body part of the best chain's block at `height`. */
async function bodyKey(store: Store, height: number): Promise<Deno.KvKey> {
  return ["body", (await header(store, height)).hash, 0];
}

async function body(store: Store, height: number): Promise<Item[]> {
  return (await store.kv.get<Item[]>(await bodyKey(store, height))).value!;
}

/** Rewrites the body of the best chain's block at `height`. */
async function setBody(store: Store, height: number, items: Item[]): Promise<void> {
  await store.kv.set(await bodyKey(store, height), items);
}

/** Rewrites the header of the best chain's block at `height`, in the height index and by hash. */
async function setHeader(store: Store, height: number, fields: Record<string, unknown>) {
  const changed = { ...(await header(store, height)), ...fields };
  await store.kv.set(["main", height], changed);
  await store.kv.set(["blk", changed.hash], changed);
}

Deno.test("a valid multi-block chain passes, with and without indexes", async () => {
  await withChain(async (store, blocks) => {
    assert.deepEqual(await verifyStore(store), { ok: true, height: 2, transactions: 9 });
    assert.deepEqual(await verifyBlocks(blocks), { ok: true, height: 2, transactions: 9 });
    assert.deepEqual(await verifyBlocks([]), { ok: true, height: -1, transactions: 0 });
  });
  const empty = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    assert.deepEqual(await verifyStore(empty, { indexes: true }), {
      ok: true,
      height: -1,
      transactions: 0,
    });
  } finally {
    await empty.close();
  }
});

Deno.test("tampering: an amount in a body part", async () => {
  await withChain(async (store) => {
    const items = await body(store, 1);
    items[0].amount += 1; // breaks the link from item 1
    await setBody(store, 1, items);
    assertFails(await verifyStore(store), 1, /item 1: prev_hash does not match the item before it/);
  });
  await withChain(async (store, blocks) => {
    const items = await body(store, 1);
    items[2].amount = 2; // the last item: only the block hash covers it
    await setBody(store, 1, items);
    const verdict = await verifyStore(store);
    assertFails(verdict, 1, /block hash is [0-9a-f]{64}, contents hash to [0-9a-f]{64}/);
    assert.ok(!verdict.ok && verdict.reason.includes(blocks[1].hash));
  });
});

Deno.test("tampering: a t in a body part", async () => {
  await withChain(async (store) => {
    const items = await body(store, 2);
    items[2].t += 0.000001;
    await setBody(store, 2, items);
    assertFails(await verifyStore(store), 2, /contents hash to/);
  });
  await withChain(async (store) => {
    const items = await body(store, 0);
    items[1].t -= 1;
    await setBody(store, 0, items);
    assertFails(await verifyStore(store), 0, /item 2: prev_hash does not match/);
  });
});

Deno.test("tampering: swapping the order of items", async () => {
  await withChain(async (store) => {
    const items = await body(store, 1);
    await setBody(store, 1, [items[1], items[0], items[2]]);
    assertFails(await verifyStore(store), 1, /item 0: prev_hash does not match/);
  });
});

Deno.test("tampering: an item's prev_hash in a body part", async () => {
  await withChain(async (store) => {
    const items = await body(store, 2);
    items[1].prev_hash = "0".repeat(64);
    await setBody(store, 2, items);
    assertFails(await verifyStore(store), 2, /item 1: prev_hash does not match/);
  });
  await withChain(async (store) => {
    const items = await body(store, 0);
    items[0].prev_hash = items[1].prev_hash; // the first item must link to null
    await setBody(store, 0, items);
    assertFails(await verifyStore(store), 0, /item 0: prev_hash does not match/);
  });
});

Deno.test("tampering: a removed body part leaves an empty block", async () => {
  await withChain(async (store) => {
    await store.kv.delete(await bodyKey(store, 1));
    assertFails(await verifyStore(store), 1, /block has no items/);
  });
});

Deno.test("tampering: a block header's prev_hash or hash", async () => {
  await withChain(async (store, blocks) => {
    // The hash covers prev_hash: a changed link alone shows as a hash that does not match.
    await setHeader(store, 1, { prev_hash: "f".repeat(64) });
    const verdict = await verifyStore(store);
    assertFails(verdict, 1, /block hash is [0-9a-f]{64}, contents hash to [0-9a-f]{64}/);
    assert.ok(!verdict.ok && verdict.reason.includes(blocks[1].hash));
  });
  await withChain(async (store) => {
    await setHeader(store, 0, { prev_hash: "f".repeat(64) });
    assertFails(await verifyStore(store), 0, /block hash is [0-9a-f]{64}, contents hash to/);
  });
  await withChain(async (store, blocks) => {
    // A whole consistent block (header, hash, body) on another parent: the link gives it away.
    const forged = makeBlock(1, "f".repeat(64), blocks[1].items.map(itemTx));
    await setHeader(store, 1, { prev_hash: forged.prev_hash, hash: forged.hash });
    await store.kv.set(["body", forged.hash, 0], forged.items);
    const verdict = await verifyStore(store);
    assertFails(verdict, 1, /prev_hash f{64} is not the hash of block 0/);
    assert.ok(!verdict.ok && verdict.reason.includes(blocks[0].hash));
  });
  await withChain(async (store) => {
    // The header names another hash and the body is found under it: the contents give it away.
    const items = await body(store, 1);
    await setHeader(store, 1, { hash: "e".repeat(64) });
    await store.kv.set(["body", "e".repeat(64), 0], items);
    assertFails(await verifyStore(store), 1, /block hash is e{64}, contents hash to/);
  });
  await withChain(async (store) => {
    // A header naming a hash whose body is not stored reads as a block without items.
    await setHeader(store, 1, { hash: "e".repeat(64) });
    assertFails(await verifyStore(store), 1, /block has no items/);
  });
});

Deno.test("tampering: a deleted middle block", async () => {
  await withChain(async (store) => {
    await store.kv.delete(["main", 1]);
    assertFails(await verifyStore(store), 1, /block 2 comes after block 0: block 1 is missing/);
  });
  await withChain(async (store) => {
    await store.kv.delete(["main", 0]);
    assertFails(
      await verifyStore(store),
      0,
      /block 1 comes after the start of the chain: block 0 is missing/,
    );
  });
});

Deno.test("tampering: a deleted tip block", async () => {
  await withChain(async (store) => {
    await store.kv.delete(["main", 2]);
    assertFails(await verifyStore(store), 2, /block 2 is missing \(tip is 2\)/);
  });
});

Deno.test("tampering: the tip record", async () => {
  await withChain(async (store, blocks) => {
    await store.kv.set(["tip"], { height: 1, hash: blocks[1].hash, time: null });
    assertFails(await verifyStore(store), 2, /tip says height 1, chain ends at 2/);
  });
  await withChain(async (store, blocks) => {
    await store.kv.set(["tip"], { height: 4, hash: blocks[2].hash, time: null });
    assertFails(await verifyStore(store), 3, /block 3 is missing \(tip is 4\)/);
  });
  // A tip hash that is not the last block's would make the next block link to nothing.
  await withChain(async (store, blocks) => {
    await store.kv.set(["tip"], { height: 2, hash: blocks[1].hash, time: null });
    const verdict = await verifyStore(store);
    assertFails(verdict, 2, /tip says hash [0-9a-f]{64}, block 2 hashes to [0-9a-f]{64}/);
    assert.ok(!verdict.ok && verdict.reason.includes(blocks[2].hash));
  });
});

Deno.test("tampering the indexes is found with indexes: true only", async () => {
  const cases: [string, (store: Store, blocks: Block[]) => Promise<unknown>, RegExp][] = [
    ["a balance", (s) => s.kv.set(["bal", A], 1_000), /balance index says .* has 1000, chain says/],
    ["a missing balance", (s) => s.kv.delete(["bal", C]), /balance index lacks/],
    [
      "a chain transaction put back in the pool",
      async (s, blocks) => {
        const t = { ...blocks[1].items[0] } as Partial<Item>;
        delete t.prev_hash;
        const id = txId(t as Item);
        await s.kv.set(["tx", id], { state: "pool", tx: t });
      },
      /recorded as pool but the chain disagrees/,
    ],
    [
      "a chain transaction with no record",
      (s, blocks) => s.kv.delete(["tx", txId(blocks[0].items[2])]),
      /1 transactions in the chain have no record/,
    ],
    [
      "a chain record pointing at the wrong place",
      async (s, blocks) => {
        const id = txId(blocks[1].items[1]);
        const record = (await s.lookupTx(id))!;
        await s.kv.set(["tx", id], { ...record, index: 2 });
      },
      /is recorded at 1\/2 in [0-9a-f]{64}, the chain has it at 1\/1 in [0-9a-f]{64}/,
    ],
    [
      "a chain record naming another block",
      async (s, blocks) => {
        const id = txId(blocks[1].items[1]);
        const record = (await s.lookupTx(id))!;
        await s.kv.set(["tx", id], { ...record, block: blocks[0].hash });
      },
      /is recorded at 1\/1 in [0-9a-f]{64}, the chain has it at 1\/1 in [0-9a-f]{64}/,
    ],
    [
      "a pool entry without a record",
      (s) => s.kv.set(["pool", T0 + 20, "x".repeat(64)], tx(A, B, 1, T0 + 20)),
      /pool entry x{64} has no matching pool record/,
    ],
    [
      "a pool counter out of step",
      (s) => s.kv.set(["poolsize"], new Deno.KvU64(5n)),
      /pool holds 1 entries, 1 records, counter 5/,
    ],
  ];
  for (const [name, tamper, pattern] of cases) {
    await withChain(async (store, blocks) => {
      await tamper(store, blocks);
      assert.deepEqual(await verifyStore(store), { ok: true, height: 2, transactions: 9 }, name);
      const verdict = await verifyStore(store, { indexes: true });
      assert.equal(verdict.ok, false, `${name} not found`);
      if (!verdict.ok) assert.match(verdict.reason, pattern, name);
    });
  }
});

Deno.test("verifyBlocks reports an in-block double spend at its height", async () => {
  const b0 = makeBlock(0, null, [tx(GENESIS, A, 10, T0)]);
  const b1 = makeBlock(1, b0.hash, [tx(A, B, 7, T0 + 1), tx(A, C, 7, T0 + 2)]);
  assertFails(
    await verifyBlocks([b0, b1]),
    1,
    new RegExp(`item 1: not enough balance: ${A} has 3, needs 7`),
  );
  // The same funds spent twice inside the block that brings them in.
  const one = makeBlock(0, null, [
    tx(GENESIS, A, 10, T0),
    tx(A, B, 7, T0 + 1),
    tx(A, C, 7, T0 + 2),
  ]);
  assertFails(await verifyBlocks([one]), 0, /item 2: not enough balance/);
  // Async iterables work as well.
  async function* gen() {
    yield b0;
    yield b1;
  }
  assertFails(await verifyBlocks(gen()), 1, /not enough balance/);
});

Deno.test("verifyBlocks: a transaction twice in the chain, a chain not starting at 0", async () => {
  const mint = tx(GENESIS, A, 10, T0);
  const b0 = makeBlock(0, null, [mint]);
  const b1 = makeBlock(1, b0.hash, [mint]);
  assertFails(
    await verifyBlocks([b0, b1]),
    1,
    new RegExp(`item 0: transaction ${txId(mint)} is already in block 0`),
  );
  assertFails(
    await verifyBlocks([makeBlock(1, null, [mint])]),
    0,
    /block 1 comes after the start of the chain: block 0 is missing/,
  );
});

Deno.test("appendBlock refuses an overspending block (conflict: false) and changes nothing", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const [b0] = await appendChain(store, [[tx(GENESIS, A, 10, T0)]]);
    const bad = makeBlock(1, b0.hash, [tx(A, B, 7, T0 + 1), tx(A, C, 7, T0 + 2)]);
    const result = await store.appendBlock(bad);
    assert.equal(result.ok, false);
    assert.ok(!result.ok && result.conflict === false);
    assert.match(result.reason, new RegExp(`item 1: not enough balance: ${A} has 3, needs 7`));
    assert.deepEqual(await store.tip(), { height: 0, hash: b0.hash, time: null });
    assert.deepEqual(await store.balances([A, B, C]), new Map([[A, 10], [B, 0], [C, 0]]));
    assert.equal(await store.lookupTx(txId(bad.items[0])), null);
    assert.deepEqual(await verifyStore(store, { indexes: true }), {
      ok: true,
      height: 0,
      transactions: 1,
    });
  } finally {
    await store.close();
  }
});

Deno.test("appendBlock refuses blocks that do not extend the tip or are malformed", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const [b0] = await appendChain(store, [[tx(GENESIS, A, 10, T0)]]);
    const next = [tx(GENESIS, B, 1, T0 + 1)];
    const refusals: [Block, RegExp][] = [
      [
        makeBlock(1, "a".repeat(64), next),
        new RegExp(`prev_hash a{64} is not the hash of block 0 \\(${b0.hash}\\)`),
      ],
      [makeBlock(1, null, next), /prev_hash null is not the hash of block 0/],
      [makeBlock(0, null, next), /block height 0 does not follow its parent's 0/],
      [makeBlock(2, b0.hash, next), /block 2 comes after block 0: block 1 is missing/],
      [{ ...makeBlock(1, b0.hash, next), hash: "b".repeat(64) }, /block hash is b{64}/],
      [makeBlock(1, b0.hash, []), /block has no items/],
      [makeBlock(1, b0.hash, [next[0], next[0]]), /item 1: the block holds transaction \S+ twice/],
      [makeBlock(1, b0.hash, [tx(GENESIS, A, 10, T0)]), /already in block 0/],
      [makeBlock(1, b0.hash, [tx(A, A, 1, T0 + 1)]), /item 0: sender and receiver/],
    ];
    for (const [block, pattern] of refusals) {
      const result = await store.appendBlock(block);
      assert.ok(!result.ok && result.conflict === false, JSON.stringify(result));
      assert.match(result.reason, pattern);
    }
    assert.deepEqual(await store.tip(), { height: 0, hash: b0.hash, time: null });
    const ok = makeBlock(1, b0.hash, next);
    assert.deepEqual(await store.appendBlock(ok), { ok: true, block: ok });
    assert.deepEqual(await verifyStore(store, { indexes: true }), {
      ok: true,
      height: 1,
      transactions: 2,
    });
  } finally {
    await store.close();
  }
});
