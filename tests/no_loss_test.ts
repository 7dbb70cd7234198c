import assert from "node:assert/strict";
import { Builder } from "../lib/node/builder.ts";
import { isLockedError } from "../lib/store/kv.ts";
import { openStore, Store } from "../lib/store/store.ts";
import { type Tx, txId } from "../lib/core/transaction.ts";
import { verifyStore } from "../lib/store/audit.ts";
import {
  assertEachInOnePlace,
  fixture,
  LOOSE_RULES,
  mints,
  T0,
  workload,
  wrapKv,
} from "./fixtures/helpers.ts";

/**
 * Runs builder passes until `done()` and the pool is empty; returns the blocks built. Like the
 * builder's own loop, a pass that lost its races to another builder is simply run again.
 */
async function buildUntil(
  builder: Builder,
  done: () => boolean,
): Promise<number> {
  let blocks = 0;
  for (;;) {
    const finished = done();
    blocks += (await builder.pass()).added;
    if (finished && (await builder.store.poolStats()).size === 0) return blocks;
  }
}

Deno.test("one process: concurrent merges racing two builders lose nothing", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const txs = workload(1200);
    // Each transaction is submitted once, in 10-transaction merges, and some mints a second
    // time (a mint is never dropped, so its second submission is always "known"; a dropped
    // transaction would be admitted again).
    const merges: Tx[][] = [];
    for (let i = 0; i < txs.length; i += 10) merges.push(txs.slice(i, i + 10));
    const again = txs.filter((_, i) => i % 3 === 0 && i % 4 === 0);
    for (let i = 0; i < again.length; i += 2) merges.push(again.slice(i, i + 2));
    merges.sort((a, b) => txId(a[0]).localeCompare(txId(b[0]))); // a fixed, scrambled order

    let merging = true;
    const builders = [1, 2].map(() =>
      new Builder(store, { rules: [{ kind: "count", size: 1 }], maxBlock: 7 })
    );
    // Two builders in one process run in lockstep and the second often loses every race.
    const building = builders.map((b) => buildUntil(b, () => !merging));
    let added = 0;
    let known = 0;
    for (let i = 0; i < merges.length; i += 8) {
      // A wave of concurrent merges, then let the builders run.
      const outcomes = await Promise.all(merges.slice(i, i + 8).map((m) => store.addToPool(m)));
      added += outcomes.flat().filter((o) => o.status === "added").length;
      known += outcomes.flat().filter((o) => o.status === "known").length;
      await new Promise((resolve) => queueMicrotask(() => resolve(null)));
    }
    merging = false;
    const blocks = (await Promise.all(building)).reduce((a, b) => a + b, 0);

    assert.equal(added, txs.length, "each transaction is added exactly once");
    assert.equal(known, again.length);
    assert.ok(blocks > 10, `only ${blocks} blocks`);
    console.log(`blocks ${blocks}`);
    const counts = await assertEachInOnePlace(store, txs);
    assert.equal(counts.pool, 0);
    assert.equal(counts.chain + counts.dropped, txs.length);
    assert.ok(counts.dropped > 0 && counts.chain > 0, JSON.stringify(counts));
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.equal(verdict.transactions, counts.chain);
  } finally {
    await store.close();
  }
});

Deno.test("two processes on one KV file: child merges while we build, locked commits retried", async () => {
  const dir = await Deno.makeTempDir({ prefix: "foxchain-noloss-" });
  const path = `${dir}/ledger.kv`;
  let locked = 0;
  const kv = wrapKv(await Deno.openKv(path), {
    onError: (e) => {
      if (isLockedError(e)) locked++;
    },
  });
  const store = new Store(kv, { rules: LOOSE_RULES });
  try {
    await store.init();
    const mixed = workload(1000);
    const shared = mints(500, T0 + 10);
    const txs = [...mixed, ...shared];
    // Two children, both merging the 500 mints: those must be added once in all. (Only
    // mints are shared: a dropped transaction merged again would rightly be re-admitted.)
    const halves = [[...mixed.slice(0, 500), ...shared], [...shared, ...mixed.slice(500)]];
    const files = await Promise.all(halves.map(async (half, i) => {
      const file = `${dir}/txs${i}.json`;
      await Deno.writeTextFile(file, JSON.stringify(half));
      return file;
    }));
    const children = files.map((file) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-kv", fixture("merge_child.ts"), path, file, "5", "4"],
        stdout: "piped",
        stderr: "piped",
      }).output()
    );
    let merging = true;
    const outputs = Promise.all(children).finally(() => merging = false);
    const builder = new Builder(store, { rules: [{ kind: "count", size: 1 }], maxBlock: 10 });
    const blocks = await buildUntil(builder, () => !merging);
    const reports = (await outputs).map((out) => {
      assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      return JSON.parse(new TextDecoder().decode(out.stdout)) as {
        added: number;
        known: number;
        locked: number;
      };
    });

    assert.equal(reports.reduce((n, r) => n + r.added, 0), txs.length);
    assert.equal(reports.reduce((n, r) => n + r.known, 0), 500);
    assert.ok(blocks > 0);
    const counts = await assertEachInOnePlace(store, txs);
    assert.equal(counts.pool, 0);
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    // SQLite refused some commits with "database is locked"; every one was retried.
    const lockedAll = locked + reports.reduce((n, r) => n + r.locked, 0);
    console.log(`locked commits retried: ${lockedAll} (builder ${locked}), blocks ${blocks}`);
    assert.ok(lockedAll > 0, "no commit met a locked database: the test proved nothing");
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("two builder processes and our merges on one KV file: one chain, nothing lost", async () => {
  const dir = await Deno.makeTempDir({ prefix: "foxchain-builders-" });
  const path = `${dir}/ledger.kv`;
  const store = await openStore(path, { rules: LOOSE_RULES });
  try {
    const txs = workload(2000);
    await store.addToPool(txs.slice(0, 1000));
    const builders = [1, 2].map(() =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "--unstable-kv", fixture("builder_child.ts"), path, "10"],
        stdout: "piped",
        stderr: "piped",
      }).output()
    );
    // Merge the rest while they build, in small concurrent merges.
    const rest = txs.slice(1000);
    for (let i = 0; i < rest.length; i += 40) {
      await Promise.all([0, 10, 20, 30].map((j) => store.addToPool(rest.slice(i + j, i + j + 10))));
    }
    const dec = new TextDecoder();
    for (const out of await Promise.all(builders)) {
      const stderr = dec.decode(out.stderr);
      assert.equal(out.code, 0, stderr);
      // Losing a race to the other builder is no error (it used to log "Block is invalid").
      assert.doesNotMatch(stderr, /ERROR/);
      assert.match(stderr, /Block is added to the blockchain\./);
    }
    // A child stops when it finds the pool empty; build what arrived after that.
    await new Builder(store, { rules: [{ kind: "count", size: 1 }], maxBlock: 10 }).pass();
    const counts = await assertEachInOnePlace(store, txs);
    assert.equal(counts.pool, 0);
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
    assert.equal(verdict.transactions, counts.chain);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
