/**
 * Fork choice and reorgs in the store: the longer valid branch wins (a tie goes to the lower tip
 * hash), abandoned transactions go back to the pool or are dropped with a reason, nothing is
 * lost, and a crash at any commit of a switch leaves the old chain or the new one.
 */
import assert from "node:assert/strict";
import type { Block } from "../lib/core/block.ts";
import { MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import { type Tx, txId } from "../lib/core/transaction.ts";
import { better } from "../lib/consensus/fork_choice.ts";
import { verifyStore } from "../lib/store/audit.ts";
import { openStore, Store } from "../lib/store/store.ts";
import { addr, assertEachInOnePlace, GENESIS, T0, tx, wrapKv } from "./fixtures/helpers.ts";
import { chainOn, COUNT1, LATER, snapshot } from "./fixtures/chain.ts";

const X = addr(1);
const Y = addr(2);
const Z = addr(3);

async function fresh(): Promise<Store> {
  return await openStore(":memory:", { rules: COUNT1, clock: LATER });
}

async function feed(store: Store, blocks: readonly Block[]) {
  const results = [];
  for (const block of blocks) results.push(await store.acceptBlock(block));
  return results;
}

async function assertHealthy(store: Store, txs: readonly Tx[]) {
  const verdict = await verifyStore(store, { indexes: true, nowSeconds: LATER.now() / 1000 });
  assert.ok(verdict.ok, JSON.stringify(verdict));
  await assertEachInOnePlace(store, txs);
}

/** n blocks of `size` mints each on `parent`, t from `start`. */
function mints(parent: Block | null, n: number, size: number, start: number, to = 100): Block[] {
  return chainOn(
    parent,
    Array.from(
      { length: n },
      (_, b) =>
        Array.from(
          { length: size },
          (_, i) => tx(GENESIS, addr(to + i), 1 + b, start + b + i / 1e4),
        ),
    ),
  );
}

Deno.test("a longer branch wins: depth 1, its blocks become the chain, ours go back to the pool", async () => {
  const store = await fresh();
  try {
    const [a0, a1] = chainOn(null, [[tx(GENESIS, X, 10, T0)], [tx(GENESIS, Y, 5, T0 + 1)]]);
    const [b1, b2] = chainOn(a0, [[tx(GENESIS, Z, 7, T0 + 2)], [tx(GENESIS, Z, 8, T0 + 3)]]);
    await feed(store, [a0, a1]);
    const first = await store.acceptBlock(b1);
    // Same height: the lower hash wins.
    assert.equal(first.status, better(b1, a1) ? "reorged" : "side");
    assert.deepEqual(
      await store.acceptBlock(b2),
      first.status === "reorged"
        ? { status: "extended", height: 2 }
        : { status: "reorged", height: 2, depth: 1 },
    );
    assert.deepEqual(await store.tip(), { height: 2, hash: b2.hash, time: b2.proof!.time });
    assert.equal(await store.balance(Z), 15);
    assert.equal(await store.balance(Y), 0);
    assert.equal((await store.lookupTx(txId(a1.items[0])))?.state, "pool");
    assert.deepEqual((await store.block(1))?.hash, b1.hash);
    await assertHealthy(store, [...a0.items, ...a1.items, ...b1.items, ...b2.items]);
  } finally {
    await store.close();
  }
});

Deno.test("two fresh nodes that both cut a first block converge: a fork at height 0", async () => {
  const a = chainOn(null, [[tx(GENESIS, X, 1, T0)]]);
  const b = chainOn(null, [[tx(GENESIS, Y, 2, T0 + 1)], [tx(GENESIS, Z, 3, T0 + 2)]]);
  const one = await fresh();
  const two = await fresh();
  try {
    await feed(one, [...a, ...b]);
    await feed(two, [...b, ...a]);
    assert.deepEqual(await snapshot(one), await snapshot(two));
    assert.equal((await one.tip()).hash, b[1].hash);
    assert.equal((await one.lookupTx(txId(a[0].items[0])))?.state, "pool");
    await assertHealthy(one, [...a, ...b].flatMap((x) => x.items));
  } finally {
    await one.close();
    await two.close();
  }
});

Deno.test("a transaction in both branches stays once, in the new chain", async () => {
  const store = await fresh();
  try {
    const shared = tx(GENESIS, X, 4, T0 + 5);
    const [a0] = chainOn(null, [[tx(GENESIS, Y, 1, T0)]]);
    const [a1] = chainOn(a0, [[shared]]);
    const [b1, b2] = chainOn(a0, [[tx(GENESIS, Z, 1, T0 + 1), shared], [
      tx(GENESIS, Z, 2, T0 + 2),
    ]]);
    await feed(store, [a0, a1, b1, b2]);
    assert.equal((await store.tip()).hash, b2.hash);
    const record = await store.lookupTx(txId(shared));
    assert.deepEqual(record, { state: "chain", tx: shared, height: 1, index: 1, block: b1.hash });
    assert.equal(await store.balance(X), 4);
    await assertHealthy(store, [...a0.items, shared, ...b1.items, ...b2.items]);
  } finally {
    await store.close();
  }
});

Deno.test("an abandoned spend whose funds the new branch spent is dropped, saying so", async () => {
  const store = await fresh();
  try {
    const [a0] = chainOn(null, [[tx(GENESIS, X, 10, T0)]]);
    const lost = tx(X, Y, 10, T0 + 1);
    const [a1] = chainOn(a0, [[lost]]);
    const [b1, b2] = chainOn(a0, [[tx(X, Z, 10, T0 + 2)], [tx(GENESIS, Z, 1, T0 + 3)]]);
    await feed(store, [a0, a1, b1, b2]);
    assert.equal((await store.tip()).hash, b2.hash);
    const record = await store.lookupTx(txId(lost));
    assert.equal(record?.state, "dropped");
    assert.match(
      record?.state === "dropped" ? record.reason : "",
      /after a reorg: not enough balance: .* has 0, needs 10/,
    );
    assert.equal((await store.poolStats()).size, 0);
    await assertHealthy(store, [...a0.items, lost, ...b1.items, ...b2.items]);
  } finally {
    await store.close();
  }
});

Deno.test("an abandoned spend funded by an abandoned mint goes back to the pool with it", async () => {
  const store = await fresh();
  try {
    const [a0] = chainOn(null, [[tx(GENESIS, Z, 1, T0)]]);
    const mint = tx(GENESIS, X, 10, T0 + 1);
    const spend = tx(X, Y, 10, T0 + 2);
    const [a1] = chainOn(a0, [[mint, spend]]);
    const b = chainOn(a0, [[tx(GENESIS, Z, 2, T0 + 3)], [tx(GENESIS, Z, 3, T0 + 4)]]);
    await feed(store, [a0, a1, ...b]);
    assert.equal((await store.lookupTx(txId(mint)))?.state, "pool");
    assert.equal((await store.lookupTx(txId(spend)))?.state, "pool");
    await assertHealthy(store, [...a0.items, mint, spend, ...b.flatMap((x) => x.items)]);
  } finally {
    await store.close();
  }
});

for (const depth of [10, 100]) {
  Deno.test(`a reorg of depth ${depth}${depth === 100 ? " with full blocks" : ""} fits KV's limits and loses nothing`, async () => {
    const store = await fresh();
    try {
      const size = depth === 100 ? MAX_BLOCK_ITEMS : 3;
      const [root] = chainOn(null, [[tx(GENESIS, X, 1, T0)]]);
      // Two branches of distinct mints to 2 x size distinct receivers per block.
      const ours = mints(root, depth, size, T0 + 10, 1000);
      const theirs = mints(root, depth + 1, size, T0 + 5000, 5000);
      for (const block of [root, ...ours]) {
        const result = await store.appendBlock(block);
        assert.ok(result.ok, !result.ok ? result.reason : "");
      }
      assert.equal((await store.tip()).height, depth);
      const results = await feed(store, theirs);
      // The switch comes at the tie (if their hash is lower) or with their longer chain.
      const switched = results.find((r) => r.status === "reorged");
      assert.ok(
        switched?.status === "reorged" && switched.depth === depth,
        JSON.stringify(switched),
      );
      assert.equal((await store.tip()).hash, theirs.at(-1)!.hash);
      assert.equal((await store.poolStats()).size, depth * size);
      await assertHealthy(store, [root, ...ours, ...theirs].flatMap((b) => b.items));
    } finally {
      await store.close();
    }
  });
}

Deno.test("a branch holding an invalid block is not switched to, and its block is remembered", async () => {
  const store = await fresh();
  try {
    const [a0, a1] = chainOn(null, [[tx(GENESIS, X, 1, T0)], [tx(GENESIS, X, 1, T0 + 1)]]);
    const [b1] = chainOn(a0, [[tx(Y, Z, 5, T0 + 2)]]); // Y has nothing: invalid
    const [b2, b3] = chainOn(b1, [[tx(GENESIS, Z, 1, T0 + 3)], [tx(GENESIS, Z, 2, T0 + 4)]]);
    await feed(store, [a0, a1, b1]);
    assert.equal((await store.tip()).hash, a1.hash);
    const late = await feed(store, [b2, b3]);
    assert.equal(late[0].status, "invalid");
    assert.equal(late[1].status, "invalid");
    assert.equal((await store.tip()).hash, a1.hash);
    await assertHealthy(store, [...a0.items, ...a1.items]);
  } finally {
    await store.close();
  }
});

Deno.test("a crash at any commit of a reorg leaves the old chain or the new one, nothing lost", async () => {
  const [a0] = chainOn(null, [[tx(GENESIS, X, 10, T0)]]);
  const ours = chainOn(a0, [
    [tx(X, Y, 3, T0 + 1), tx(GENESIS, Y, 1, T0 + 2)],
    [tx(Y, Z, 2, T0 + 3)],
    [tx(GENESIS, Z, 9, T0 + 4)],
  ]);
  const theirs = chainOn(a0, [
    [tx(X, Z, 10, T0 + 5)],
    [tx(GENESIS, Y, 2, T0 + 6), tx(GENESIS, Y, 3, T0 + 7)],
    [tx(Y, X, 4, T0 + 8)],
    [tx(GENESIS, X, 1, T0 + 9)],
  ]);
  const all = [a0, ...ours, ...theirs].flatMap((b) => b.items);
  let commits = Infinity;
  for (let failAt = 1; failAt <= commits; failAt++) {
    const kv = await Deno.openKv(":memory:");
    try {
      const setup = new Store(kv, { rules: COUNT1, clock: LATER });
      await setup.init();
      await feed(setup, [a0, ...ours, ...theirs.slice(0, 3)]);
      const before = await snapshot(setup);
      let n = 0;
      const crashing = new Store(
        wrapKv(kv, {
          before: () => {
            if (++n === failAt) throw new Error(`crash at commit ${failAt}`);
          },
        }),
        { rules: COUNT1, clock: LATER },
      );
      // A crash inside the switch may surface as a thrown error or as a refusal after the
      // store finished the journal itself; either way commit `failAt` never happened.
      await crashing.acceptBlock(theirs[3]).catch(() => {});
      if (n < failAt) {
        commits = n; // the dry run past the last commit: every commit has been crashed at
        assert.equal((await setup.tip()).hash, theirs[3].hash);
        break;
      }
      // Reopening finishes a journaled switch; before the journal, the old chain stands.
      const reopened = new Store(kv, { rules: COUNT1, clock: LATER });
      await reopened.init();
      const tip = (await reopened.tip()).hash;
      assert.ok(
        tip === before.tip.hash || tip === theirs[3].hash,
        `crash at commit ${failAt}: tip ${tip} is neither branch's`,
      );
      if (tip === before.tip.hash) {
        assert.deepEqual(await snapshot(reopened), before);
        await assertHealthy(reopened, all.slice(0, -1)); // the offered block's is not known yet
      } else {
        await assertHealthy(reopened, all);
      }
      // The block can be offered again and wins.
      await reopened.acceptBlock(theirs[3]);
      assert.equal((await reopened.tip()).hash, theirs[3].hash, `after crash ${failAt}`);
      await assertHealthy(reopened, all);
    } finally {
      kv.close();
    }
  }
  assert.ok(commits > 4 && commits < Infinity, `the switch made ${commits} commits`);
});

/**
 * A store on a KV file with a side block arriving while a second writer on the same file (the
 * merge of a peer's relay) adds that block's transactions just before the store's commit
 * number `relayAt` of the accept (null: never). Returns the commits the accept made and the
 * store's health afterwards.
 */
async function sideBlockWithRelay(relayAt: number | null) {
  const path = await Deno.makeTempFile({ suffix: ".kv" });
  const other = await openStore(path, { rules: COUNT1, clock: LATER });
  const txs = Array.from({ length: 30 }, (_, i) => tx(GENESIS, addr(i + 1), 5, T0 + i));
  let counting = false;
  let commits = 0;
  const kv = wrapKv(await Deno.openKv(path), {
    before: async () => {
      if (!counting) return;
      commits++;
      if (commits === relayAt) await other.addToPool(txs);
    },
  });
  const store = new Store(kv, { rules: COUNT1, clock: LATER });
  await store.init();
  try {
    // Our chain is longer: their block stays on a side branch, and its transactions (new
    // here) are settled into the pool from the orphan list.
    const ours = chainOn(null, [[tx(GENESIS, addr(99), 1, T0 + 50)], [
      tx(GENESIS, addr(98), 1, T0 + 60),
    ]]);
    const [theirs] = chainOn(null, [txs]);
    await feed(store, ours);
    counting = true;
    assert.equal((await store.acceptBlock(theirs)).status, "side");
    counting = false;
    const verdict = await verifyStore(store, { indexes: true, nowSeconds: LATER.now() / 1000 });
    return { commits, verdict, pool: (await store.poolStats()).size };
  } finally {
    await store.close();
    await other.close();
    await Deno.remove(path).catch(() => {});
  }
}

Deno.test("a relay of a side block's transactions while they are settled into the pool counts each once", async () => {
  const { commits } = await sideBlockWithRelay(null);
  // The relay lands just before each of the accept's commits in turn (the last one settles
  // the orphans into the pool, from records it read before the relay).
  for (let at = 1; at <= commits; at++) {
    const { verdict, pool } = await sideBlockWithRelay(at);
    assert.ok(verdict.ok, `relay before commit ${at} of ${commits}: ${JSON.stringify(verdict)}`);
    assert.equal(pool, 30);
  }
});

Deno.test("a side branch is judged on its own state after our chain grew under it", async () => {
  const store = await fresh();
  try {
    const [root] = chainOn(null, [[tx(GENESIS, X, 10, T0)]]);
    const main = chainOn(root, [
      [tx(GENESIS, Y, 1, T0 + 1)],
      [tx(GENESIS, Y, 1, T0 + 2)],
    ]);
    const [s1] = chainOn(root, [[tx(GENESIS, Y, 2, T0 + 3)]]);
    await feed(store, [root, ...main]);
    assert.equal((await store.acceptBlock(s1)).status, "side"); // its state is kept now
    // Our chain grows: a transfer T, and a mint to Z that only this chain has.
    const t = tx(GENESIS, Y, 3, T0 + 4);
    const [m3, m4, m5] = chainOn(main[1], [
      [t, tx(GENESIS, Z, 10, T0 + 5)],
      [tx(GENESIS, Y, 1, T0 + 6)],
      [tx(GENESIS, Y, 1, T0 + 6.5)],
    ]);
    await feed(store, [m3, m4, m5]);
    assert.equal((await store.tip()).hash, m5.hash);
    // The side branch grows to T's height, staying shorter than ours.
    const [s2, s3] = chainOn(s1, [[tx(GENESIS, Y, 4, T0 + 7)], [tx(GENESIS, Y, 5, T0 + 8)]]);
    assert.deepEqual((await feed(store, [s2, s3])).map((r) => r.status), ["side", "side"]);
    // On the side branch T is not in the chain (so it may be there too), and Z has nothing.
    const [withT] = chainOn(s3, [[t]]);
    assert.equal((await store.acceptBlock(withT)).status, "side");
    const [spendsZ] = chainOn(withT, [[tx(Z, Y, 5, T0 + 9)]]);
    const refused = await store.acceptBlock(spendsZ);
    assert.equal(refused.status, "invalid");
    assert.match((refused as { reason: string }).reason, /balance|funds|has 0/);
    // And the branch, grown past our chain, is switched to with the same verdicts.
    const [longer, longest] = chainOn(withT, [[tx(GENESIS, Y, 1, T0 + 10)], [
      tx(GENESIS, Y, 1, T0 + 11),
    ]]);
    await feed(store, [longer, longest]);
    assert.equal((await store.tip()).hash, longest.hash);
    assert.equal((await store.lookupTx(txId(t)))?.state, "chain");
    const verdict = await verifyStore(store, { indexes: true, nowSeconds: LATER.now() / 1000 });
    assert.ok(verdict.ok, JSON.stringify(verdict));
  } finally {
    await store.close();
  }
});
