/** A block is a pure function of its parent, the pool, the block size and the rule. */
import assert from "node:assert/strict";
import { Builder } from "../lib/node/builder.ts";
import { openStore } from "../lib/store/store.ts";
import type { ChainRules } from "../lib/consensus/rules.ts";
import { addr, GENESIS, T0, tx } from "./fixtures/helpers.ts";

const RULES: ChainRules = {
  rules: [{ kind: "span", seconds: 180 }, { kind: "age", seconds: 600 }],
  acceptBareBlocks: false,
};

Deno.test("two stores whose pools hold the same transactions cut the same block hash", async () => {
  const txs = Array.from(
    { length: 30 },
    (_, i) =>
      i % 3 === 0
        ? tx(GENESIS, addr(i % 7), 10, T0 + i * 7)
        : tx(addr(i % 7), addr((i + 1) % 7), 3, T0 + i * 7),
  );
  // Two transactions with the same t: (t, id) order decides, not arrival.
  txs.push(tx(GENESIS, addr(9), 1, T0 + 7), tx(GENESIS, addr(8), 1, T0 + 7));
  const hashes: string[][] = [];
  for (const order of [txs, [...txs].reverse()]) {
    // Cut at different moments: the block time comes from the pool, not the clock.
    const now = (T0 + 400 + hashes.length * 50) * 1000;
    const clock = { now: () => now };
    const store = await openStore(":memory:", { rules: RULES, clock });
    try {
      for (const t of order) await store.addToPool([t]);
      const pass = await new Builder(store, { clock, maxBlock: 12 }).pass();
      hashes.push(pass.blocks.map((b) => b.hash));
    } finally {
      await store.close();
    }
  }
  assert.ok(hashes[0].length >= 1);
  assert.deepEqual(hashes[0], hashes[1]);
});
