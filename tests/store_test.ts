import assert from "node:assert/strict";
import { Builder } from "../lib/node/builder.ts";
import { type Block, makeBlock } from "../lib/core/block.ts";
import { commitWithRetry, isLockedError } from "../lib/store/kv.ts";
import { BODY_PART_ITEMS, MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import { openStore, Store, StoreError } from "../lib/store/store.ts";
import { type Tx, txId } from "../lib/core/transaction.ts";
import { verifyStore } from "../lib/store/audit.ts";
import {
  A,
  addr,
  appendChain,
  assertEachInOnePlace,
  B,
  C,
  D,
  fakeClock,
  GENESIS,
  LOOSE_RULES,
  mints,
  racingStore,
  T0,
  tx,
  withStore,
  wrapKv,
} from "./fixtures/helpers.ts";

const oneRule = { rules: [{ kind: "count" as const, size: 1 }] };

Deno.test("addToPool: idempotent by id, says where a known transaction is", async () => {
  await withStore(async (store) => {
    const [t1, t2, t3] = [
      tx(GENESIS, A, 1, T0),
      tx(GENESIS, B, 2, T0 + 1),
      tx(GENESIS, C, 3, T0 + 2),
    ];
    assert.deepEqual(await store.addToPool([t1, t2]), [
      { id: txId(t1), status: "added" },
      { id: txId(t2), status: "added" },
    ]);
    assert.deepEqual(await store.addToPool([t1]), [{
      id: txId(t1),
      status: "known",
      state: "pool",
    }]);
    // A copy (another object, same fields) is the same transaction.
    assert.deepEqual(await store.addToPool([{ ...t2 }]), [
      { id: txId(t2), status: "known", state: "pool" },
    ]);
    // The same transaction twice in one call.
    assert.deepEqual(await store.addToPool([t3, { ...t3 }]), [
      { id: txId(t3), status: "added" },
      { id: txId(t3), status: "known", state: "pool" },
    ]);
    assert.equal((await store.poolStats()).size, 3);

    const block = makeBlock(0, null, [t1]);
    assert.ok((await store.appendBlock(block)).ok);
    assert.deepEqual(await store.addToPool([t1]), [{
      id: txId(t1),
      status: "known",
      state: "chain",
    }]);
    assert.deepEqual(await store.lookupTx(txId(t1)), {
      state: "chain",
      tx: t1,
      height: 0,
      index: 0,
      block: block.hash,
    });
    assert.deepEqual(await store.lookupTx(txId(t2)), { state: "pool", tx: t2 });
    assert.equal(await store.lookupTx("0".repeat(64)), null);
    assert.equal((await store.poolStats()).size, 2);
  });
});

Deno.test("addToPool: many concurrent callers of one transaction add it once", async () => {
  await withStore(async (store) => {
    const t = tx(GENESIS, A, 1, T0);
    const outcomes = (await Promise.all(Array.from({ length: 20 }, () => store.addToPool([t]))))
      .flat();
    assert.equal(outcomes.filter((o) => o.status === "added").length, 1);
    assert.equal(outcomes.filter((o) => o.status === "known").length, 19);
    assert.equal((await store.poolStats()).size, 1);
  });
});

Deno.test("addToPool: more than one commit's worth at once", async () => {
  await withStore(async (store) => {
    const txs = mints(250);
    const outcomes = await store.addToPool(txs);
    assert.equal(outcomes.length, 250);
    assert.ok(outcomes.every((o, i) => o.status === "added" && o.id === txId(txs[i])));
    assert.equal((await store.poolStats()).size, 250);
  });
});

Deno.test("a dropped transaction can be merged again and later succeed", async () => {
  await withStore(async (store) => {
    const spend = tx(A, B, 5, T0);
    await store.addToPool([spend]);
    const builder = new Builder(store, oneRule);
    assert.equal((await builder.pass()).dropped.length, 1);
    assert.equal((await store.lookupTx(txId(spend)))?.state, "dropped");

    assert.deepEqual(await store.addToPool([spend]), [{ id: txId(spend), status: "added" }]);
    assert.deepEqual(await store.lookupTx(txId(spend)), { state: "pool", tx: spend });
    assert.equal((await store.poolStats()).size, 1);
    await store.addToPool([tx(GENESIS, A, 5, T0 - 1)]);
    const result = await builder.pass();
    assert.deepEqual(result.blocks[0].items.map(txId)[1], txId(spend));
    assert.equal((await store.lookupTx(txId(spend)))?.state, "chain");
    assert.equal(await store.balance(B), 5);
  });
});

Deno.test("poolStats: size, earliest and latest, kept up to date", async () => {
  await withStore(async (store) => {
    assert.deepEqual(await store.poolStats(), { size: 0, earliest: null, latest: null });
    const txs = [tx(GENESIS, A, 1, T0 + 5), tx(GENESIS, B, 1, T0 + 1), tx(GENESIS, C, 1, T0 + 9)];
    await store.addToPool(txs);
    assert.deepEqual(await store.poolStats(), { size: 3, earliest: T0 + 1, latest: T0 + 9 });
    assert.ok((await store.appendBlock(makeBlock(0, null, [txs[1]]))).ok);
    assert.deepEqual(await store.poolStats(), { size: 2, earliest: T0 + 5, latest: T0 + 9 });
    await new Builder(store, oneRule).pass();
    assert.deepEqual(await store.poolStats(), { size: 0, earliest: null, latest: null });
  });
});

Deno.test("poolStats does not scan the pool: one counter read and two one-key range reads", async () => {
  const kv = await Deno.openKv(":memory:");
  const lists: Deno.KvListOptions[] = [];
  let gets = 0;
  const watched = new Proxy(kv, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target);
      if (prop === "list") {
        return (selector: Deno.KvListSelector, options: Deno.KvListOptions = {}) => {
          lists.push(options);
          return target.list(selector, options);
        };
      }
      if (prop === "get") {
        return (key: Deno.KvKey) => {
          gets++;
          return target.get(key);
        };
      }
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const store = new Store(watched, { rules: LOOSE_RULES });
  try {
    await store.init();
    await store.addToPool(mints(300));
    lists.length = 0;
    gets = 0;
    const stats = await store.poolStats();
    assert.deepEqual(stats, { size: 300, earliest: T0, latest: T0 + 0.299 });
    assert.equal(gets, 1);
    assert.equal(lists.length, 2);
    assert.ok(lists.every((o) => o.limit === 1), JSON.stringify(lists));
  } finally {
    await store.close();
  }
});

Deno.test("poolPage: t order, pages of `limit`, cursor null at the end", async () => {
  await withStore(async (store) => {
    const txs = mints(10);
    const shuffled = [7, 2, 9, 0, 5, 1, 8, 3, 6, 4].map((i) => txs[i]);
    await store.addToPool(shuffled);
    const pages: Tx[][] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await store.poolPage(4, cursor);
      pages.push(page.txs);
      if (page.cursor === null) break;
      cursor = page.cursor;
    }
    assert.deepEqual(pages.map((p) => p.length), [4, 4, 2]);
    assert.deepEqual(pages.flat(), txs);

    // An exact multiple: the last full page still has a cursor, the next one is empty.
    const first = await store.poolPage(5);
    assert.deepEqual(first.txs, txs.slice(0, 5));
    assert.ok(first.cursor);
    const second = await store.poolPage(5, first.cursor);
    assert.deepEqual(second.txs, txs.slice(5));
    assert.ok(second.cursor);
    assert.deepEqual(await store.poolPage(5, second.cursor), { txs: [], cursor: null });
    assert.deepEqual((await store.poolPage(100)).txs, txs);
  });
});

Deno.test("blocks(): paging by maxItems and maxBlocks, at least one block", async () => {
  await withStore(async (store) => {
    const all = mints(10);
    const blocks = await appendChain(store, [
      all.slice(0, 4),
      all.slice(4, 5),
      all.slice(5, 8),
      all.slice(8),
    ]);
    const heights = (bs: Block[]) => bs.map((b) => b.height);
    assert.deepEqual(await store.blocks(0, 100, 1000), blocks);
    assert.deepEqual(heights(await store.blocks(0, 100, 5)), [0, 1]);
    assert.deepEqual(heights(await store.blocks(2, 100, 5)), [2, 3]);
    assert.deepEqual(heights(await store.blocks(0, 100, 3)), [0], "one block even if too big");
    assert.deepEqual(heights(await store.blocks(1, 100, 3)), [1]);
    assert.deepEqual(heights(await store.blocks(0, 2, 1000)), [0, 1]);
    assert.deepEqual(heights(await store.blocks(3, 100, 1000)), [3]);
    assert.deepEqual(await store.blocks(4, 100, 1000), []);
    assert.deepEqual(await store.block(2), blocks[2]);
    assert.equal(await store.block(4), null);
  });
});

Deno.test("a block larger than one body part reads back whole", async () => {
  await withStore(async (store) => {
    const txs = mints(BODY_PART_ITEMS + 50);
    const [block] = await appendChain(store, [txs]);
    assert.equal((await store.kv.get<unknown[]>(["body", block.hash, 1])).value?.length, 50);
    assert.deepEqual(await store.block(0), block);
    assert.deepEqual(await store.blocks(0, 10, 10), [block]);
  });
});

Deno.test("a block from a peer applies and leaves our other pool transactions alone", async () => {
  await withStore(async (store) => {
    const ours = [tx(GENESIS, A, 10, T0 + 1), tx(GENESIS, B, 10, T0 + 2)];
    await store.addToPool(ours);
    const theirs = [tx(GENESIS, C, 7, T0), tx(C, D, 3, T0 + 0.5)];
    const peer0 = makeBlock(0, null, theirs);
    assert.deepEqual(await store.acceptBlock(peer0), { status: "extended", height: 0 });
    assert.deepEqual(await store.poolStats(), { size: 2, earliest: T0 + 1, latest: T0 + 2 });
    assert.deepEqual(await store.balances([C, D]), new Map([[C, 4], [D, 3]]));
    for (const t of theirs) assert.equal((await store.lookupTx(txId(t)))?.state, "chain");
    for (const t of ours) assert.equal((await store.lookupTx(txId(t)))?.state, "pool");
    assert.deepEqual(await verifyStore(store, { indexes: true }), {
      ok: true,
      height: 0,
      transactions: 2,
    });

    // A peer block holding one of ours and one we never saw takes only ours out of the pool.
    const overspend = tx(D, A, 100, T0 + 3);
    await store.addToPool([overspend]);
    const result = await new Builder(store, { rules: [{ kind: "count", size: 4 }] }).pass();
    assert.deepEqual(result.blocks, []); // only 3 waiting
    const peer1 = makeBlock(1, peer0.hash, [ours[0], tx(D, C, 1, T0 + 4)]);
    assert.deepEqual(await store.acceptBlock(peer1), { status: "extended", height: 1 });
    assert.deepEqual(await store.poolStats(), { size: 2, earliest: T0 + 2, latest: T0 + 3 });
    assert.deepEqual(await store.lookupTx(txId(ours[0])), {
      state: "chain",
      tx: ours[0],
      height: 1,
      index: 0,
      block: peer1.hash,
    });
    await assertEachInOnePlace(store, [...ours, ...theirs, overspend]);
  });
});

Deno.test("a peer block including a transaction we had dropped puts it in the chain", async () => {
  await withStore(async (store) => {
    const spend = tx(A, B, 5, T0 + 1);
    await store.addToPool([spend]);
    await new Builder(store, oneRule).pass();
    assert.equal((await store.lookupTx(txId(spend)))?.state, "dropped");
    const peer = makeBlock(0, null, [tx(GENESIS, A, 5, T0), spend]);
    assert.deepEqual(await store.acceptBlock(peer), { status: "extended", height: 0 });
    assert.deepEqual(await store.lookupTx(txId(spend)), {
      state: "chain",
      tx: spend,
      height: 0,
      index: 1,
      block: peer.hash,
    });
    assert.equal((await store.poolStats()).size, 0);
  });
});

Deno.test("a merge racing a peer block of the same transaction: conflict, then no stray pool entry", async () => {
  const kv = await Deno.openKv(":memory:");
  const plain = new Store(kv, { rules: LOOSE_RULES });
  let racing: Tx | null = null;
  const store = new Store(
    wrapKv(kv, {
      // Just before the block's commit, another writer merges the block's transaction.
      before: async () => {
        const t = racing;
        racing = null;
        if (t) assert.deepEqual(await plain.addToPool([t]), [{ id: txId(t), status: "added" }]);
      },
    }),
    { rules: LOOSE_RULES },
  );
  try {
    await store.init();
    const mint = tx(GENESIS, A, 5, T0);
    const block = makeBlock(0, null, [mint]);
    racing = mint;
    const first = await store.appendBlock(block);
    assert.deepEqual(first, {
      ok: false,
      conflict: true,
      reason: "chain or pool changed meanwhile",
    });
    assert.equal((await store.lookupTx(txId(mint)))?.state, "pool");
    assert.deepEqual(await store.appendBlock(block), { ok: true, block });
    assert.deepEqual(await store.poolStats(), { size: 0, earliest: null, latest: null });
    await assertEachInOnePlace(store, [mint]);
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
  } finally {
    await store.close();
  }
});

Deno.test("a merge racing the builder's commit stays in the pool", async () => {
  const kv = await Deno.openKv(":memory:");
  const { store, race } = racingStore(kv);
  try {
    await store.init();
    await store.addToPool([tx(GENESIS, A, 5, T0)]);
    const late = tx(GENESIS, B, 5, T0 - 1); // sorts first: the builder must not have read it
    race(late);
    const result = await new Builder(store, { rules: [{ kind: "count", size: 1 }], maxBlock: 10 })
      .buildOnce();
    assert.equal(result.blocks[0].items.length, 1);
    assert.deepEqual(await store.poolStats(), { size: 1, earliest: T0 - 1, latest: T0 - 1 });
    assert.deepEqual(await store.lookupTx(txId(late)), { state: "pool", tx: late });
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
  } finally {
    await store.close();
  }
});

Deno.test("init refuses a database of another schema version", async () => {
  for (const version of [1, 99]) {
    const kv = await Deno.openKv(":memory:");
    try {
      await kv.set(["meta", "schema"], version);
      await assert.rejects(
        () => new Store(kv, { rules: LOOSE_RULES }).init(),
        (error: Error) =>
          error instanceof StoreError &&
          error.message.includes(`database has schema version ${version}`),
      );
    } finally {
      kv.close();
    }
  }
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    await store.init(); // a second init of our own database is harmless
    assert.deepEqual(await store.tip(), { height: -1, hash: null, time: null });
  } finally {
    await store.close();
  }
});

Deno.test("peers: remembered once, listed sorted", async () => {
  await withStore(async (store) => {
    assert.equal(await store.addPeers(["ws://b:9000/ws", "ws://a:9000/ws"]), 2);
    assert.equal(await store.addPeers(["ws://a:9000/ws", "ws://c:9000/ws"]), 1);
    assert.deepEqual(await store.peers(), ["ws://a:9000/ws", "ws://b:9000/ws", "ws://c:9000/ws"]);
  });
});

Deno.test("a block of MAX_BLOCK_ITEMS transfers between new addresses fits one atomic commit", async () => {
  await withStore(async (store) => {
    // The worst case for a commit: every transaction touches two balances no other one does.
    const funds = Array.from(
      { length: MAX_BLOCK_ITEMS },
      (_, i) => tx(GENESIS, addr(i), 5, T0 + i / 1000),
    );
    await appendChain(store, [funds]);
    const transfers = Array.from(
      { length: MAX_BLOCK_ITEMS },
      (_, i) => tx(addr(i), addr(1000 + i), 5, T0 + 1 + i / 1000),
    );
    await store.addToPool(transfers);
    const builder = new Builder(store, { ...oneRule, maxBlock: MAX_BLOCK_ITEMS });
    const result = await builder.pass();
    assert.deepEqual(result.blocks.map((b) => b.items.length), [MAX_BLOCK_ITEMS]);
    assert.equal(await store.balance(addr(1000 + MAX_BLOCK_ITEMS - 1)), 5);
  });
});

Deno.test("a block considering more than MAX_BLOCK_ITEMS transactions is refused", async () => {
  await withStore(async (store) => {
    // Too many items is a consensus rule: the block itself is invalid.
    const block = makeBlock(0, null, mints(MAX_BLOCK_ITEMS + 1));
    const result = await store.appendBlock(block);
    assert.ok(!result.ok && !result.conflict);
    assert.match(result.reason, /block holds 241 items, max 240/);
    // A full block plus a dropped transaction would not fit one commit: refused as well.
    const txs = mints(MAX_BLOCK_ITEMS + 1);
    await store.addToPool(txs);
    const full = makeBlock(0, null, txs.slice(0, MAX_BLOCK_ITEMS));
    const dropped = [{ tx: txs[MAX_BLOCK_ITEMS], reason: "left out" }];
    const considered = await store.appendBlock(full, dropped);
    assert.ok(!considered.ok && !considered.conflict);
    assert.match(considered.reason, /considers 241 transactions, max 240/);
    assert.equal((await store.tip()).height, -1);
    assert.equal((await store.poolStats()).size, MAX_BLOCK_ITEMS + 1);
  });
});

Deno.test("commitWithRetry retries locked-database errors with back-off, nothing else", async () => {
  assert.ok(isLockedError(new TypeError("database is locked")));
  assert.ok(isLockedError(new Error("Database is busy")));
  assert.ok(!isLockedError(new Error("disk I/O error")));
  assert.ok(!isLockedError("database is locked"));
  const policy = { attempts: 4, baseDelayMs: 10, maxDelayMs: 100 };
  const clock = fakeClock();
  try {
    let calls = 0;
    const flaky = commitWithRetry(() => {
      calls++;
      return calls < 4
        ? Promise.reject(new TypeError("database is locked"))
        : Promise.resolve("ok");
    }, policy);
    await clock.runAllAsync();
    assert.equal(await flaky, "ok");
    assert.equal(calls, 4);
    // Waits are bounded by 2^i * base, capped: 20 + 40 + 80 ms at most here.
    assert.ok(Date.now() - T0 * 1000 <= 140, `waited ${Date.now() - T0 * 1000} ms`);

    calls = 0;
    const stuck = commitWithRetry(() => {
      calls++;
      return Promise.reject(new TypeError("database is locked"));
    }, policy);
    const refused = assert.rejects(stuck, /database is locked/);
    await clock.runAllAsync();
    await refused;
    assert.equal(calls, policy.attempts);

    calls = 0;
    await assert.rejects(
      commitWithRetry(() => {
        calls++;
        return Promise.reject(new Error("disk I/O error"));
      }, policy),
      /disk I\/O error/,
    );
    assert.equal(calls, 1, "other errors are not retried");
  } finally {
    clock.uninstall();
  }
});
