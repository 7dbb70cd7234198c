import assert from "node:assert/strict";
import { Builder } from "../lib/node/builder.ts";
import { openStore, Store } from "../lib/store/store.ts";
import type { Tx } from "../lib/core/transaction.ts";
import { verifyStore } from "../lib/store/audit.ts";
import {
  assertEachInOnePlace,
  fixture,
  LOOSE_RULES,
  workload,
  wrapKv,
} from "./fixtures/helpers.ts";

class Injected extends Error {}

/**
 * Merges a workload in batches with builder passes in between, on a KV whose `failAt`-th
 * commit (counted after init) fails: before it runs ("before") or after it went through, as
 * if the reply were lost ("after"). A merge that fails is retried once, as a client would; a
 * failed pass is followed by the next one, as the builder's loop does. Returns the number of
 * commits made and whether the failure happened.
 */
async function scenario(mode: "before" | "after", failAt: number, txs: readonly Tx[]) {
  let armed = false;
  let commits = 0;
  let failed = false;
  const hook = () => {
    if (!armed) return;
    if (++commits === failAt) {
      failed = true;
      throw new Injected(`commit ${failAt} fails ${mode} it runs`);
    }
  };
  const store = new Store(
    wrapKv(await Deno.openKv(":memory:"), mode === "before" ? { before: hook } : { after: hook }),
    { rules: LOOSE_RULES },
  );
  try {
    await store.init();
    armed = true;
    const builder = new Builder(store, { rules: [{ kind: "count", size: 1 }], maxBlock: 4 });
    const expectInjected = (error: unknown) => {
      if (!(error instanceof Injected)) throw error;
    };
    for (let i = 0; i < txs.length; i += 10) {
      const batch = txs.slice(i, i + 10);
      await store.addToPool(batch).catch(async (error) => {
        expectInjected(error);
        const again = await store.addToPool(batch);
        // After a lost reply the batch is there already; after a failed commit it is new.
        const added = again.filter((o) => o.status === "added").length;
        assert.equal(added, mode === "before" ? batch.length : 0, `retry of ${failAt}`);
      });
      await builder.pass().catch(expectInjected);
    }
    const context = `${mode} commit ${failAt}`;
    // Consistent right after the failure, nothing lost.
    let verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, `${context}: ${JSON.stringify(verdict)}`);
    await assertEachInOnePlace(store, txs);
    // The next pass succeeds and empties the pool.
    await builder.pass();
    assert.equal((await store.poolStats()).size, 0, context);
    verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, `${context}: ${JSON.stringify(verdict)}`);
    const counts = await assertEachInOnePlace(store, txs);
    assert.equal(counts.chain + counts.dropped, txs.length);
    return { commits, failed };
  } finally {
    await store.close();
  }
}

for (const mode of ["before", "after"] as const) {
  Deno.test(`a commit failing ${mode} it runs, at every point of a run, loses nothing`, async () => {
    const txs = workload(40);
    const dry = await scenario(mode, Infinity, txs);
    assert.equal(dry.failed, false);
    assert.ok(dry.commits > 10, `only ${dry.commits} commits`);
    for (let n = 1; n <= dry.commits; n++) {
      const run = await scenario(mode, n, txs);
      assert.ok(run.failed, `commit ${n} did not fail`);
    }
  });
}

/** Spawns the builder child and kills it once it has logged `blocks` added blocks. */
async function killAfterBlocks(path: string, blocks: number): Promise<Deno.CommandStatus> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-kv", fixture("builder_child.ts"), path, "10"],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const lines = child.stderr.pipeThrough(new TextDecoderStream());
  let text = "";
  let killed = false;
  for await (const chunk of lines) {
    text += chunk;
    if (!killed && text.split("Block is added to the blockchain.").length > blocks) {
      child.kill("SIGKILL");
      killed = true;
    }
  }
  const status = await child.status;
  assert.ok(killed, `the builder never added a block:\n${text}`);
  return status;
}

Deno.test("a builder process killed with SIGKILL mid-run leaves a consistent store", async () => {
  const dir = await Deno.makeTempDir({ prefix: "foxchain-crash-" });
  const path = `${dir}/ledger.kv`;
  const txs = workload(2000);
  try {
    let store = await openStore(path, { rules: LOOSE_RULES });
    await store.addToPool(txs);
    await store.close();

    let lastHeight = -1;
    // No sleeps: each kill follows the 1st, 4th and 15th "Block is added" line of a run.
    for (const [kill, blocks] of [[1, 1], [2, 4], [3, 15]]) {
      const status = await killAfterBlocks(path, blocks);
      assert.equal(status.signal, "SIGKILL", `kill ${kill}: ${JSON.stringify(status)}`);
      store = await openStore(path, { rules: LOOSE_RULES });
      try {
        const verdict = await verifyStore(store, { indexes: true });
        assert.ok(verdict.ok, `after kill ${kill}: ${JSON.stringify(verdict)}`);
        assert.ok(verdict.height > lastHeight, `kill ${kill}: no progress`);
        lastHeight = verdict.height;
        const counts = await assertEachInOnePlace(store, txs);
        assert.ok(counts.pool > 0, `kill ${kill} came too late: the pool is empty`);
      } finally {
        await store.close();
      }
    }

    // A builder that is left alone finishes the work.
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--unstable-kv", fixture("builder_child.ts"), path, "10"],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    store = await openStore(path, { rules: LOOSE_RULES });
    try {
      const verdict = await verifyStore(store, { indexes: true });
      assert.ok(verdict.ok, JSON.stringify(verdict));
      const counts = await assertEachInOnePlace(store, txs);
      assert.equal(counts.pool, 0);
      assert.equal(verdict.transactions, counts.chain);
    } finally {
      await store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
