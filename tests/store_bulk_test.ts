/**
 * Store.appendBlocks: a run of consecutive blocks in one atomic commit, validated as
 * appendBlock validates each block, all or nothing.
 */
import assert from "node:assert/strict";
import { type Block, makeBlock } from "../lib/core/block.ts";
import { openStore, Store } from "../lib/store/store.ts";
import { COMMIT_LIMITS } from "../lib/store/kv.ts";
import { type Tx, txId } from "../lib/core/transaction.ts";
import { verifyStore } from "../lib/store/audit.ts";
import {
  A,
  addr,
  appendChain,
  assertEachInOnePlace,
  B,
  C,
  GENESIS,
  LOOSE_RULES,
  placesOf,
  racingStore,
  sampleChain,
  T0,
  tx,
  withStore,
  wrapKv,
} from "./fixtures/helpers.ts";

/** KV's limit on one commit's mutations, which a run of blocks must fit. */
const MAX_RUN_MUTATIONS = COMMIT_LIMITS.mutations;

/** Blocks on top of `height`/`hash`, one per group, each linked to the one before. */
function chainOf(groups: readonly Tx[][], height = -1, hash: string | null = null): Block[] {
  const blocks: Block[] = [];
  for (const txs of groups) {
    const block = makeBlock(height + 1, hash, txs);
    blocks.push(block);
    height = block.height;
    hash = block.hash;
  }
  return blocks;
}

/** Everything a store holds, in key order, for comparing two stores. */
async function dump(store: Store): Promise<[Deno.KvKey, unknown][]> {
  const out: [Deno.KvKey, unknown][] = [];
  for await (const entry of store.kv.list({ prefix: [] })) {
    // KvU64 counters compare by their number.
    const value = entry.value instanceof Deno.KvU64 ? entry.value.value : entry.value;
    out.push([entry.key, value]);
  }
  return out;
}

Deno.test("appendBlocks writes exactly what appendBlock block by block writes", async () => {
  const one = await openStore(":memory:", { rules: LOOSE_RULES });
  const many = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const groups = sampleChain();
    // Some of the transactions wait in the pool first: they must leave it.
    await one.addToPool([groups[0][1], groups[2][0]]);
    await many.addToPool([groups[0][1], groups[2][0]]);
    const blocks = await appendChain(one, groups);
    const result = await many.appendBlocks(blocks);
    assert.deepEqual(result, { ok: true, blocks });
    assert.deepEqual(await dump(many), await dump(one));
    assert.deepEqual(await many.tip(), { height: 2, hash: blocks[2].hash, time: null });
    assert.equal((await many.poolStats()).size, 0);
    await assertEachInOnePlace(many, groups.flat());
    const verdict = await verifyStore(many, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
  } finally {
    await one.close();
    await many.close();
  }
});

Deno.test("appendBlocks extends an existing chain; an empty run changes nothing", async () => {
  await withStore(async (store) => {
    const [first, ...rest] = sampleChain();
    const [b0] = await appendChain(store, [first]);
    assert.deepEqual(await store.appendBlocks([]), { ok: true, blocks: [] });
    const blocks = chainOf(rest, b0.height, b0.hash);
    assert.ok((await store.appendBlocks(blocks)).ok);
    assert.equal((await store.tip()).height, 2);
    assert.equal(await store.balance(A), 100 - 10 - 5 + 7 + 1);
  });
});

Deno.test("a later block of the run may spend what an earlier one paid in", async () => {
  await withStore(async (store) => {
    const blocks = chainOf([[tx(GENESIS, A, 10, T0)], [tx(A, B, 10, T0 + 1)], [
      tx(B, C, 4, T0 + 2),
    ]]);
    assert.ok((await store.appendBlocks(blocks)).ok);
    assert.deepEqual(
      [await store.balance(A), await store.balance(B), await store.balance(C)],
      [0, 6, 4],
    );
  });
});

Deno.test("one bad block refuses the whole run, names the block, and writes nothing", async () => {
  await withStore(async (store) => {
    const [b0] = await appendChain(store, [[tx(GENESIS, A, 10, T0)]]);
    const before = await dump(store);
    const cases: [Block[], RegExp][] = [
      // An overspend in the second block of the run.
      [
        chainOf([[tx(A, B, 6, T0 + 1)], [tx(A, C, 6, T0 + 2)]], 0, b0.hash),
        /^block 2: item 0: not enough balance/,
      ],
      // A broken link inside the run.
      [
        [
          ...chainOf([[tx(A, B, 1, T0 + 1)]], 0, b0.hash),
          makeBlock(2, "f".repeat(64), [tx(A, C, 1, T0 + 2)]),
        ],
        /^block 2: prev_hash f{64} is not the hash of block 1 \([0-9a-f]{64}\)/,
      ],
      // A height gap inside the run.
      [
        [
          ...chainOf([[tx(A, B, 1, T0 + 1)]], 0, b0.hash),
          makeBlock(3, null, [tx(A, C, 1, T0 + 2)]),
        ],
        /^block 3: block 3 comes after block 1: block 2 is missing/,
      ],
      // A run that does not start at the tip.
      [
        chainOf([[tx(A, B, 1, T0 + 1)]], 1, "e".repeat(64)),
        /block 2 comes after block 0: block 1 is missing/,
      ],
      // A transaction already in the chain.
      [
        chainOf([[tx(A, B, 1, T0 + 1)], [tx(GENESIS, A, 10, T0)]], 0, b0.hash),
        /^block 2: item 0: transaction \d{16}-[0-9a-f]{64} is already in block 0/,
      ],
      // The same transaction in two blocks of the run.
      [
        chainOf([[tx(A, B, 1, T0 + 1)], [tx(A, B, 1, T0 + 1)]], 0, b0.hash),
        /^block 2: item 0: transaction \d{16}-[0-9a-f]{64} is already in block 1/,
      ],
      // A malformed block (its stored hash is wrong).
      [
        [
          ...chainOf([[tx(A, B, 1, T0 + 1)]], 0, b0.hash),
          { ...chainOf([[tx(A, C, 1, T0 + 2)]], 1, null)[0], hash: "d".repeat(64) },
        ],
        /^block 2: block hash is d{64}/,
      ],
    ];
    for (const [blocks, reason] of cases) {
      const result = await store.appendBlocks(blocks);
      assert.equal(result.ok, false, String(reason));
      assert.ok(!result.ok && !result.conflict, String(reason));
      assert.match(!result.ok ? result.reason : "", reason);
      assert.deepEqual(await dump(store), before, `store changed after ${reason}`);
    }
  });
});

Deno.test("a run too large for one KV commit is refused before it is tried", async () => {
  await withStore(async (store) => {
    // One mint to a new address per block: about five mutations each.
    const count = Math.ceil(MAX_RUN_MUTATIONS / 4);
    const blocks = chainOf(
      Array.from({ length: count }, (_, i) => [tx(GENESIS, addr(i), 1, T0 + i)]),
    );
    let commits = 0;
    const counted = new Store(wrapKv(store.kv, { before: () => void commits++ }), {
      rules: LOOSE_RULES,
    });
    const result = await counted.appendBlocks(blocks);
    assert.equal(result.ok, false);
    assert.match(!result.ok ? result.reason : "", /needs \d+ mutations.*at most 1000/);
    assert.equal(commits, 0);
    assert.equal((await store.tip()).height, -1);
    // Split in two, it fits.
    const half = Math.ceil(count / 2);
    assert.ok((await store.appendBlocks(blocks.slice(0, half))).ok);
    assert.ok((await store.appendBlocks(blocks.slice(half))).ok);
    assert.equal((await store.tip()).height, count - 1);
  });
});

Deno.test("a merge racing a run of peer blocks: conflict, then no stray pool entry", async () => {
  const kv = await Deno.openKv(":memory:");
  const { store, race } = racingStore(kv);
  try {
    await store.init();
    const mint = tx(GENESIS, A, 5, T0);
    const blocks = chainOf([[tx(GENESIS, B, 1, T0 + 1)], [mint]]);
    race(mint);
    const first = await store.appendBlocks(blocks);
    assert.deepEqual(first, {
      ok: false,
      conflict: true,
      reason: "chain or pool changed meanwhile",
    });
    assert.equal((await store.tip()).height, -1);
    assert.equal((await store.lookupTx(txId(mint)))?.state, "pool");
    assert.ok((await store.appendBlocks(blocks)).ok);
    const places = await placesOf(store);
    assert.equal(places.pool.size, 0);
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
  } finally {
    await store.close();
  }
});

Deno.test("allBlocks reads ahead yet yields every block in order; stopping early is clean", async () => {
  await withStore(async (store) => {
    const blocks = chainOf(
      Array.from({ length: 30 }, (_, i) => [tx(GENESIS, addr(i), 1, T0 + i)]),
    );
    assert.ok((await store.appendBlocks(blocks)).ok);
    const seen: Block[] = [];
    for await (const block of store.allBlocks()) seen.push(block);
    assert.deepEqual(seen, blocks);
    for await (const block of store.allBlocks()) {
      if (block.height === 2) break;
    }
  });
});
