/**
 * Fork choice is a function of the set of blocks seen: fed the same blocks (forks, invalid
 * blocks and duplicates included) in any order, fresh stores end with the same tip, the same
 * balances and the same pool. Property-tested with fast-check (seeded; a failure prints the
 * seed and the path that replays it).
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import type { Block } from "../lib/core/block.ts";
import { best, better } from "../lib/consensus/fork_choice.ts";
import { BlockIntake } from "../lib/node/block_intake.ts";
import { verifyStore } from "../lib/store/audit.ts";
import { openStore } from "../lib/store/store.ts";
import { addr, GENESIS, T0, tx } from "./fixtures/helpers.ts";
import { child, COUNT1, LATER, snapshot } from "./fixtures/chain.ts";

Deno.test("better: more blocks win; at equal height the lower hash; never the empty chain", () => {
  assert.ok(better({ height: 2, hash: "ff" }, { height: 1, hash: "00" }));
  assert.ok(better({ height: 1, hash: "0a" }, { height: 1, hash: "0b" }));
  assert.ok(!better({ height: 1, hash: "0b" }, { height: 1, hash: "0a" }));
  assert.ok(!better({ height: 1, hash: "0a" }, { height: 1, hash: "0a" }));
  assert.ok(!better({ height: -1, hash: null }, { height: -1, hash: null }));
  assert.equal(best([{ height: 1, hash: "0b" }, { height: 1, hash: "0a" }])?.hash, "0a");
});

/**
 * A random block tree: each block hangs off a random earlier block (or starts a chain), holding
 * a mint and maybe a transfer that may overspend (making the block invalid).
 */
function tree(shape: { parent: number; to: number; spend: number; from: number }[]): Block[] {
  const blocks: Block[] = [];
  shape.forEach(({ parent, to, spend, from }, i) => {
    const above = parent < 0 || blocks.length === 0 ? null : blocks[parent % blocks.length];
    const txs = [tx(GENESIS, addr(to), 5, T0 + i * 2)];
    if (spend > 0) txs.push(tx(addr(from), addr(to + 1), spend, T0 + i * 2 + 1));
    blocks.push(child(above, txs));
  });
  return blocks;
}

const shapeArb = fc.array(
  fc.record({
    parent: fc.integer({ min: -1, max: 30 }),
    to: fc.integer({ min: 1, max: 6 }),
    spend: fc.integer({ min: 0, max: 12 }),
    from: fc.integer({ min: 1, max: 6 }),
  }),
  { minLength: 1, maxLength: 14 },
);

async function outcome(blocks: readonly Block[]) {
  const store = await openStore(":memory:", { rules: COUNT1, clock: LATER });
  try {
    const intake = new BlockIntake(store);
    for (const block of blocks) await intake.offer(block);
    const verdict = await verifyStore(store, { indexes: true, nowSeconds: LATER.now() / 1000 });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    return await snapshot(store);
  } finally {
    await store.close();
  }
}

Deno.test("fork choice: the same blocks in any order give the same tip, balances and pool", async () => {
  await fc.assert(
    fc.asyncProperty(
      shapeArb.chain((shape) => {
        const blocks = tree(shape);
        // Two orders of the blocks, each with some sent twice.
        const withDupes = fc.array(fc.integer({ min: 0, max: blocks.length - 1 }), {
          maxLength: 4,
        }).map((extra) => [...blocks, ...extra.map((i) => blocks[i])]);
        return fc.tuple(
          fc.constant(blocks),
          withDupes.chain((all) => fc.shuffledSubarray(all, { minLength: all.length })),
          withDupes.chain((all) => fc.shuffledSubarray(all, { minLength: all.length })),
        );
      }),
      async ([blocks, one, two]) => {
        const [a, b, inOrder] = await Promise.all([outcome(one), outcome(two), outcome(blocks)]);
        assert.deepEqual(a, inOrder);
        assert.deepEqual(b, inOrder);
      },
    ),
    { numRuns: 100, seed: 20261124 },
  );
});
