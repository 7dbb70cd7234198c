/** Defects found in review of the store, each pinned by a test. */
import assert from "node:assert/strict";
import { LIMITS, Protocol } from "../lib/node/protocol.ts";
import { Builder, PASS_KEEP } from "../lib/node/builder.ts";
import { BlockIntake } from "../lib/node/block_intake.ts";
import { makeBlock } from "../lib/core/block.ts";
import { DEFAULT_CHAIN_RULES } from "../lib/consensus/rules.ts";
import { openStore } from "../lib/store/store.ts";
import { addr, GENESIS, LOOSE_RULES, T0, tx } from "./fixtures/helpers.ts";
import { child, COUNT1, LATER } from "./fixtures/chain.ts";

Deno.test("addToPool([]) resolves at once, and later adds and close() still work", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  assert.deepEqual(await store.addToPool([]), []);
  const [outcome] = await store.addToPool([tx(GENESIS, addr(1), 1, T0)]);
  assert.equal(outcome.status, "added");
  await store.close();
});

Deno.test("the peer cap holds under concurrent register requests", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const protocol = new Protocol(store);
    const urls = (k: number) =>
      Array.from({ length: LIMITS.peers }, (_, i) => `ws://10.${k}.${i >> 8}.${i & 255}:9000/ws`);
    const replies = await Promise.all(
      [1, 2, 3].map((k) =>
        protocol.handle(JSON.stringify({ op: "register", args: { addr: urls(k) } }))
      ),
    );
    for (const reply of replies) assert.equal(reply.status, 202);
    assert.equal((await store.peers()).length, LIMITS.peers);
  } finally {
    await store.close();
  }
});

Deno.test("a pass over a long backlog keeps the last blocks only and counts them all", async () => {
  const store = await openStore(":memory:", { rules: COUNT1, clock: LATER });
  try {
    await store.addToPool(
      Array.from({ length: PASS_KEEP + 20 }, (_, i) => tx(GENESIS, addr(i), 1, T0 + i)),
    );
    const pass = await new Builder(store, { clock: LATER, maxBlock: 1 }).pass();
    assert.equal(pass.added, PASS_KEEP + 20);
    assert.equal(pass.blocks.length, PASS_KEEP);
    assert.equal(pass.blocks.at(-1)?.height, PASS_KEEP + 19);
  } finally {
    await store.close();
  }
});

Deno.test("merge of a bare lab block: refused with the reason by default, taken under --accept-bare-blocks", async () => {
  const bare = makeBlock(0, null, [tx(GENESIS, addr(1), 5, T0)]);
  const wire = { items: bare.items, prev_hash: null }; // the lab's shape: no height, no hash
  const request = JSON.stringify({ op: "merge", args: { blocks: [wire] } });
  const strict = await openStore(":memory:", { rules: DEFAULT_CHAIN_RULES });
  const lab = await openStore(":memory:", { rules: { ...COUNT1, acceptBareBlocks: true } });
  try {
    const refused = await new Protocol(strict).handle(request);
    assert.equal(refused.status, 400);
    assert.match(refused.error, /block 0: block carries no proof-of-write evidence/);
    assert.equal((await strict.tip()).height, -1);
    const taken = await new Protocol(lab).handle(request);
    assert.equal(taken.status, 202);
    assert.deepEqual(await lab.tip(), { height: 0, hash: bare.hash, time: null });
  } finally {
    await strict.close();
    await lab.close();
  }
});

Deno.test("status says the network's rules", async () => {
  const store = await openStore(":memory:", { rules: DEFAULT_CHAIN_RULES });
  try {
    const reply = await new Protocol(store).handle(JSON.stringify({ op: "status" }));
    assert.equal(
      reply.response?.rules,
      "span >= 180 s or age >= 600 s; bare blocks refused",
    );
  } finally {
    await store.close();
  }
});

Deno.test("a tracker relaying a whole chain from height 0 gets its blocks skipped as known", async () => {
  const store = await openStore(":memory:", { rules: COUNT1, clock: LATER });
  try {
    const protocol = new Protocol(store);
    const b0 = child(null, [tx(GENESIS, addr(1), 5, T0)]);
    const b1 = child(b0, [tx(GENESIS, addr(2), 5, T0 + 1)]);
    const merge = (blocks: unknown[]) =>
      protocol.handle(JSON.stringify({ op: "merge", args: { blocks, verbose: true } }));
    assert.deepEqual((await merge([b0])).response?.blocks, {
      appended: 1,
      known: 0,
      side: 0,
      rejected: [],
    });
    assert.deepEqual((await merge([b0, b1])).response?.blocks, {
      appended: 1,
      known: 1,
      side: 0,
      rejected: [],
    });
  } finally {
    await store.close();
  }
});

Deno.test("a block claiming a stored block's hash with other contents is refused, not known", async () => {
  const store = await openStore(":memory:", { rules: COUNT1, clock: LATER });
  try {
    const first = child(null, [tx(GENESIS, addr(1), 5, T0)]);
    assert.equal((await store.acceptBlock(first)).status, "extended");
    const forged = { ...first, items: [{ ...first.items[0], amount: 6 }] };
    const result = await store.acceptBlock(forged);
    assert.equal(result.status, "invalid");
    assert.match((result as { reason: string }).reason, /contents hash to/);
    assert.equal((await store.acceptBlock(first)).status, "known");
  } finally {
    await store.close();
  }
});

Deno.test("blocks waiting for a parent keep waiting when junk arrives under the parent's hash", async () => {
  const store = await openStore(":memory:", { rules: COUNT1, clock: LATER });
  try {
    const intake = new BlockIntake(store);
    const first = child(null, [tx(GENESIS, addr(1), 5, T0)]);
    const second = child(first, [tx(GENESIS, addr(2), 5, T0 + 1)]);
    assert.equal((await intake.offer(second)).result.status, "orphan");
    const junk = { ...first, items: [{ ...first.items[0], amount: 6 }] };
    assert.equal((await intake.offer(junk)).result.status, "invalid");
    assert.equal(intake.waiting, 1);
    const { result, released } = await intake.offer(first);
    assert.equal(result.status, "extended");
    assert.deepEqual(released.map((r) => r.result.status), ["extended"]);
    assert.equal((await store.tip()).hash, second.hash);
  } finally {
    await store.close();
  }
});

Deno.test("a relayed transaction older than the t window is known when held, refused when not", async () => {
  let now = T0 * 1000;
  const clock = { now: () => now };
  const store = await openStore(":memory:", { rules: COUNT1, clock });
  try {
    const protocol = new Protocol(store, { clock });
    const merge = (pool: unknown[]) =>
      protocol.handle(JSON.stringify({ op: "merge", args: { pool, verbose: true } }));
    const held = tx(GENESIS, addr(1), 5, T0);
    assert.equal((await merge([held])).status, 202);
    now += 120_000; // two minutes later: past the 90 s window
    const reply = await merge([held]);
    assert.equal(reply.status, 202);
    assert.equal((reply.response!.known as string[]).length, 1);
    const unknown = await merge([tx(GENESIS, addr(2), 5, T0)]);
    assert.equal(unknown.status, 400);
    assert.match(unknown.error, /s old \(max 90 s\)/);
  } finally {
    await store.close();
  }
});
