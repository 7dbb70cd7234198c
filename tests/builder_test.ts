import assert from "node:assert/strict";
import { Builder, type BuilderOptions, type PassResult } from "../lib/node/builder.ts";
import { MAX_SUPPLY } from "../lib/core/params.ts";
import { DEFAULT_RULES } from "../lib/core/rules.ts";
import { openStore, Store } from "../lib/store/store.ts";
import { txId } from "../lib/core/transaction.ts";
import { verifyStore } from "../lib/store/audit.ts";
import {
  A,
  B,
  C,
  type FakeClock,
  fakeClock,
  GENESIS,
  LOOSE_RULES,
  mints,
  T0,
  tx,
} from "./fixtures/helpers.ts";

interface Ctx {
  store: Store;
  builder: Builder;
  clock: FakeClock;
  /** Fires the next tick (after `sleepSeconds`, or `ms`) and waits for it to finish. */
  next: (ms?: number) => Promise<PassResult>;
}

/** Runs `body` with a started builder on a fresh in-memory store under a fake clock at T0. */
async function withBuilder(opts: BuilderOptions, body: (ctx: Ctx) => Promise<void>) {
  const clock = fakeClock();
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  const builder = new Builder(store, opts);
  const next = (ms = builder.sleepSeconds * 1000) => {
    const n = builder.ticks + 1;
    clock.tick(ms);
    return builder.ticked(n);
  };
  try {
    builder.start();
    await builder.ticked(1);
    await body({ store, builder, clock, next });
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.equal(verdict.height, (await store.tip()).height);
  } finally {
    await builder.stop();
    clock.uninstall();
    await store.close();
  }
}

const heights = (r: PassResult) => r.blocks.map((b) => b.height);
const sizes = (r: PassResult) => r.blocks.map((b) => b.items.length);

Deno.test("span rule (default 180 s): 179.999 s apart waits, a record at +180 s cuts one block", async () => {
  await withBuilder({ rules: DEFAULT_RULES }, async ({ store, builder, next }) => {
    assert.equal(builder.sleepSeconds, 3);
    const first = tx(GENESIS, A, 10); // t = T0
    await store.addToPool([first]);
    let result = await next(179_999);
    assert.deepEqual(result.blocks, []);
    const second = tx(GENESIS, B, 10); // t = T0 + 179.999
    assert.equal(second.t, T0 + 179.999);
    await store.addToPool([second]);
    for (let i = 0; i < 5; i++) {
      result = await next();
      assert.deepEqual(result.blocks, [], `tick ${builder.ticks}`);
      assert.match(result.reason, /pool spans 179\.999 s, rule needs 180 s/);
    }
    assert.equal((await store.tip()).height, -1);

    const third = tx(GENESIS, C, 10, T0 + 180);
    await store.addToPool([third]);
    result = await next();
    assert.deepEqual(heights(result), [0]);
    assert.deepEqual(result.blocks[0].items.map(txId), [first, second, third].map(txId));
    assert.deepEqual(await store.poolStats(), { size: 0, earliest: null, latest: null });
    // The block carries the span rule's evidence; its time (the latest t) is the tip's time.
    assert.deepEqual(result.blocks[0].proof, {
      rule: "span",
      time: T0 + 180,
      size: 3,
      earliest: T0,
      latest: T0 + 180,
    });
    assert.deepEqual(await store.tip(), {
      height: 0,
      hash: result.blocks[0].hash,
      time: T0 + 180,
    });
    // Nothing left: later ticks build nothing.
    assert.deepEqual((await next()).blocks, []);
  });
});

Deno.test("count rule k=3: two records wait, the third cuts a block", async () => {
  await withBuilder({ rules: [{ kind: "count", size: 3 }] }, async ({ store, next }) => {
    await store.addToPool([tx(GENESIS, A, 1), tx(GENESIS, B, 2)]);
    for (let i = 0; i < 3; i++) assert.deepEqual((await next()).blocks, []);
    await store.addToPool([tx(GENESIS, C, 3)]);
    const result = await next();
    assert.deepEqual(sizes(result), [3]);
    assert.deepEqual(await store.balances([A, B, C]), new Map([[A, 1], [B, 2], [C, 3]]));
  });
});

Deno.test("max block splits a large pool; what is left waits while the count rule fails", async () => {
  await withBuilder(
    { rules: [{ kind: "count", size: 3 }], maxBlock: 4 },
    async ({ store, next }) => {
      const txs = mints(10);
      await store.addToPool(txs);
      const result = await next();
      assert.deepEqual(sizes(result), [4, 4]);
      assert.deepEqual(heights(result), [0, 1]);
      // Blocks take the pool in t order.
      assert.deepEqual(
        result.blocks.flatMap((b) => b.items.map(txId)),
        txs.slice(0, 8).map(txId),
      );
      assert.equal(result.blocks[1].prev_hash, result.blocks[0].hash);
      const stats = await store.poolStats();
      assert.deepEqual(stats, { size: 2, earliest: txs[8].t, latest: txs[9].t });
      for (let i = 0; i < 3; i++) assert.deepEqual((await next()).blocks, []);
      assert.equal((await store.poolStats()).size, 2);
    },
  );
});

Deno.test("max block with an age rule as well: the remainder is drained once old enough", async () => {
  await withBuilder(
    { rules: [{ kind: "count", size: 3 }, { kind: "age", seconds: 30 }], maxBlock: 4 },
    async ({ store, next }) => {
      const txs = mints(10, T0);
      await store.addToPool(txs);
      assert.deepEqual(sizes(await next()), [4, 4]); // at T0 + 3
      let ticks = 0;
      let result: PassResult;
      do {
        result = await next();
        ticks++;
      } while (result.blocks.length === 0 && ticks < 20);
      // The oldest of the two left has t = T0 + 0.008: 30 s later is the tick at T0 + 33.
      assert.equal(Date.now() / 1000, T0 + 33);
      assert.deepEqual(sizes(result), [2]);
      assert.equal((await store.poolStats()).size, 0);
      assert.equal((await store.tip()).height, 2);
    },
  );
});

Deno.test("age rule releases a lone transaction after S seconds and not before", async () => {
  await withBuilder(
    { rules: [{ kind: "span", seconds: 180 }, { kind: "age", seconds: 9 }] },
    async ({ store, next }) => {
      // Ticks run at T0 + 3, 6, 9, ...; the record is 1 ms younger than T0.
      const lone = tx(GENESIS, A, 5, T0 + 0.001);
      await store.addToPool([lone]);
      for (const at of [3, 6, 9]) {
        const result = await next();
        assert.equal(Date.now() / 1000, T0 + at);
        assert.deepEqual(result.blocks, [], `released at +${at} s`);
        if (at === 9) {
          assert.match(result.reason, /oldest record is 8\.999 s old, rule needs 9 s/);
          // The span rule alone would never release it.
          assert.match(result.reason, /span: pool spans 0\.000 s/);
        }
      }
      const result = await next();
      assert.equal(Date.now() / 1000, T0 + 12);
      assert.deepEqual(sizes(result), [1]);
      assert.equal((await store.lookupTx(txId(lone)))?.state, "chain");
    },
  );
});

Deno.test("age rule: a record exactly S seconds old is released", async () => {
  await withBuilder({ rules: [{ kind: "age", seconds: 9 }] }, async ({ store, next }) => {
    await store.addToPool([tx(GENESIS, A, 5, T0)]);
    assert.deepEqual((await next()).blocks, []);
    assert.deepEqual((await next()).blocks, []);
    assert.deepEqual(sizes(await next()), [1]); // at T0 + 9 exactly
  });
});

Deno.test("an overspend is dropped with its reason, the rest of the block goes in", async () => {
  await withBuilder({ rules: [{ kind: "count", size: 1 }] }, async ({ store, next }) => {
    const overspend = tx(A, B, 5);
    const mint = tx(GENESIS, C, 1, overspend.t + 0.001);
    await store.addToPool([overspend, mint]);
    const result = await next();
    assert.deepEqual(sizes(result), [1]);
    assert.equal(txId(result.blocks[0].items[0]), txId(mint));
    assert.equal(result.dropped.length, 1);
    assert.equal(txId(result.dropped[0].tx), txId(overspend));
    const record = await store.lookupTx(txId(overspend));
    assert.equal(record?.state, "dropped");
    assert.ok(record?.state === "dropped");
    assert.match(record.reason, /not enough balance/);
    assert.match(record.reason, new RegExp(`${A} has 0, needs 5`));
    assert.deepEqual(record.tx, overspend);
    assert.equal(await store.balance(B), 0);
    assert.equal((await store.poolStats()).size, 0);
  });
});

Deno.test("a pool of only overspends is dropped without a block", async () => {
  await withBuilder({ rules: [{ kind: "count", size: 1 }] }, async ({ store, next }) => {
    const bad = [tx(A, B, 5), tx(B, C, 1, T0 + 0.5)];
    await store.addToPool(bad);
    const result = await next();
    assert.deepEqual(result.blocks, []);
    assert.equal(result.dropped.length, 2);
    assert.equal((await store.tip()).height, -1);
    for (const t of bad) {
      const record = await store.lookupTx(txId(t));
      assert.ok(record?.state === "dropped");
      assert.match(record.reason, /not enough balance/);
    }
    assert.equal((await store.poolStats()).size, 0);
  });
});

Deno.test("in-block double spend: A gets 10, A->B 7 and A->C 7 in one block, the second is dropped", async () => {
  await withBuilder({ rules: [{ kind: "count", size: 3 }] }, async ({ store, next }) => {
    const fund = tx(GENESIS, A, 10, T0);
    const toB = tx(A, B, 7, T0 + 0.001);
    const toC = tx(A, C, 7, T0 + 0.002);
    await store.addToPool([toC, fund, toB]);
    const result = await next();
    assert.deepEqual(result.blocks[0].items.map(txId), [fund, toB].map(txId));
    assert.deepEqual(result.dropped.map((d) => txId(d.tx)), [txId(toC)]);
    assert.match(result.dropped[0].reason, new RegExp(`not enough balance: ${A} has 3, needs 7`));
    assert.deepEqual(
      await store.balances([GENESIS, A, B, C]),
      new Map([[GENESIS, -10], [A, 3], [B, 7], [C, 0]]),
    );
    const record = await store.lookupTx(txId(toC));
    assert.ok(record?.state === "dropped");
    assert.match(record.reason, /not enough balance/);
  });
});

Deno.test("balances carry across blocks: a spend in a later block uses the stored balance", async () => {
  await withBuilder({ rules: [{ kind: "count", size: 1 }] }, async ({ store, next }) => {
    await store.addToPool([tx(GENESIS, A, 10)]);
    assert.deepEqual(sizes(await next()), [1]);
    const ok = tx(A, B, 6);
    const over = tx(A, C, 6, ok.t + 0.001);
    await store.addToPool([ok]);
    assert.deepEqual(sizes(await next()), [1]);
    await store.addToPool([over]);
    const result = await next();
    assert.deepEqual(result.blocks, []);
    assert.match(result.dropped[0].reason, new RegExp(`${A} has 4, needs 6`));
  });
});

Deno.test("GENESIS mints any amount; its balance is minus the supply", async () => {
  await withBuilder({ rules: [{ kind: "count", size: 1 }] }, async ({ store, next }) => {
    await store.addToPool([tx(GENESIS, A, 1_000_000), tx(GENESIS, B, 5, T0 + 1)]);
    assert.deepEqual(sizes(await next()), [2]);
    assert.deepEqual(
      await store.balances([GENESIS, A, B]),
      new Map([[GENESIS, -1_000_005], [A, 1_000_000], [B, 5]]),
    );
  });
});

Deno.test("minting past MAX_SUPPLY is dropped, within one block and across blocks", async () => {
  await withBuilder({ rules: [{ kind: "count", size: 1 }] }, async ({ store, next }) => {
    const big = tx(GENESIS, A, MAX_SUPPLY - 5, T0);
    const fits = tx(GENESIS, B, 5, T0 + 0.001);
    const tooMuch = tx(GENESIS, C, 1, T0 + 0.002);
    await store.addToPool([big, fits, tooMuch]);
    let result = await next();
    assert.deepEqual(result.blocks[0].items.map(txId), [big, fits].map(txId));
    assert.deepEqual(result.dropped.map((d) => txId(d.tx)), [txId(tooMuch)]);
    assert.match(result.dropped[0].reason, /exceed the total supply cap/);
    assert.equal(await store.balance(GENESIS), -MAX_SUPPLY);

    // The supply is exhausted: a mint in a later block is dropped too, and the pool moves on.
    const later = tx(GENESIS, C, 1);
    const transfer = tx(A, C, 1, later.t + 0.001);
    await store.addToPool([later, transfer]);
    result = await next();
    assert.deepEqual(result.blocks.map((b) => b.items.map(txId)), [[txId(transfer)]]);
    assert.deepEqual(result.dropped.map((d) => txId(d.tx)), [txId(later)]);
    const record = await store.lookupTx(txId(later));
    assert.ok(record?.state === "dropped");
    assert.match(record.reason, /exceed the total supply cap/);
    assert.equal((await store.poolStats()).size, 0);
  });
});

Deno.test("stop() waits for the block under way, builds no more; no tick runs after it", async () => {
  const clock = fakeClock();
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  const builder = new Builder(store, { rules: [{ kind: "count", size: 1 }], maxBlock: 1 });
  try {
    await store.addToPool(mints(5));
    builder.start();
    // The first pass was building block 0: it finishes that block and stops, though the rule
    // still holds (under a steady load it always would; the pool waits for the next start).
    await builder.stop();
    assert.equal(builder.ticks, 1);
    assert.equal((await store.tip()).height, 0);
    await store.addToPool([tx(GENESIS, A, 1, T0 + 1)]);
    clock.tick(60_000);
    await Promise.resolve();
    assert.equal(builder.ticks, 1);
    assert.equal((await store.poolStats()).size, 5);
    const info = await store.builderInfo();
    assert.equal(info?.rules, "count >= 1");
    assert.equal(info?.maxBlock, 1);
  } finally {
    await builder.stop();
    clock.uninstall();
    await store.close();
  }
});

Deno.test("Builder refuses bad options", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    assert.throws(() => new Builder(store, { rules: [] }), RangeError);
    for (const maxBlock of [0, -1, 1.5, 241]) {
      assert.throws(() => new Builder(store, { rules: DEFAULT_RULES, maxBlock }), RangeError);
    }
    assert.equal(new Builder(store, { rules: DEFAULT_RULES }).maxBlock, 200);
    assert.equal(new Builder(store, { rules: DEFAULT_RULES, maxBlock: 240 }).maxBlock, 240);
  } finally {
    await store.close();
  }
});

Deno.test("a builder whose tip moved under it (another builder appended) packs again on the new tip", async () => {
  const kv = await Deno.openKv(":memory:");
  const store = new Store(kv, { rules: LOOSE_RULES });
  try {
    await store.init();
    const [first, second] = [tx(GENESIS, A, 1, T0), tx(GENESIS, B, 2, T0 + 1)];
    await store.addToPool([first, second]);
    const rules = [{ kind: "count" as const, size: 1 }];
    const other = new Builder(new Store(kv, { rules: LOOSE_RULES }), { rules, maxBlock: 1 });
    // Our builder reads the tip and the pool, then the other one appends before we do.
    const ours = new Store(kv, { rules: LOOSE_RULES });
    const append = ours.appendBlock.bind(ours);
    let raced = false;
    ours.appendBlock = async (block, dropped) => {
      if (!raced) {
        raced = true;
        assert.deepEqual(sizes(await other.buildOnce()), [1]);
      }
      return await append(block, dropped);
    };
    const result = await new Builder(ours, { rules, maxBlock: 1 }).buildOnce();
    assert.ok(raced);
    assert.deepEqual(heights(result), [1], `no block built: ${result.reason}`);
    assert.equal(txId(result.blocks[0].items[0]), txId(second));
    const verdict = await verifyStore(store, { indexes: true });
    assert.deepEqual(verdict, { ok: true, height: 1, transactions: 2 });
  } finally {
    await store.close();
  }
});
