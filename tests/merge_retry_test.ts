/**
 * Retrying a merge safely with an idempotency key (`request_id`): a retry of a finished merge
 * gets its result and stores nothing, a retry of one cut short completes it with the same
 * stamps, a key reused for another request is refused, and a key is forgotten after the
 * retention. Items without `t` (the lab's clients send none) are the case that matters.
 */
import assert from "node:assert/strict";
import { Protocol, type Reply } from "../lib/node/protocol.ts";
import { REQUEST_RETENTION_SECONDS } from "../lib/store/requests.ts";
import { openStore, Store } from "../lib/store/store.ts";
import { txId } from "../lib/core/transaction.ts";
import { addr, GENESIS, T0, withStore, wrapKv } from "./fixtures/helpers.ts";

/** A clock the test moves by hand (ms). */
function manualClock(start = T0 * 1000) {
  const clock = { ms: start, now: () => clock.ms };
  return clock;
}

/** `n` transfers without `t`, as a lab client sends them. */
function labItems(n: number) {
  return Array.from({ length: n }, (_, i) => ({
    sender: GENESIS,
    receiver: addr(i % 7),
    amount: 1 + (i % 3),
  }));
}

function merge(node: Protocol, args: Record<string, unknown>): Promise<Reply> {
  return node.handle(JSON.stringify({ op: "merge", args }));
}

async function poolIds(store: Store): Promise<string[]> {
  return (await store.poolPage(10_000)).txs.map(txId);
}

Deno.test("a retried keyed merge of items without t stores them once and answers as the first", async () => {
  await withStore(async (store) => {
    const clock = manualClock();
    const node = new Protocol(store, { clock });
    const args = { pool: labItems(30), request_id: "r-1", verbose: true };
    const first = await merge(node, args);
    assert.equal(first.status, 202);
    clock.ms += 5_000;
    const again = await merge(node, args);
    assert.deepEqual(again, {
      ...first,
      response: { ...first.response, replay: "stored" },
    });
    assert.equal((await store.poolStats()).size, 30);
    assert.deepEqual(
      (await poolIds(store)).sort(),
      [...(first.response!.accepted as string[])].sort(),
    );
    // Without verbose, both tries get the lab's exact reply.
    const lab = { pool: labItems(3), request_id: "r-2" };
    assert.deepEqual(await merge(node, lab), { status: 202, error: "Accepted" });
    assert.deepEqual(await merge(node, lab), { status: 202, error: "Accepted" });
    assert.equal((await store.poolStats()).size, 33);
  });
});

Deno.test("a keyed merge cut short mid-way is completed by its retry, nothing twice", async () => {
  const kv = await Deno.openKv(":memory:");
  let commits = 0;
  let failAt = 0;
  const store = new Store(wrapKv(kv, {
    before: (n) => {
      commits = n;
      if (n === failAt) throw new Error("injected: the process died here");
    },
  }));
  try {
    await store.init();
    const clock = manualClock();
    const args = { pool: labItems(250), request_id: "cut-short", verbose: true };
    // Commits: 1 init, 2 the request's record, 3-5 the pool in batches of 100.
    failAt = commits + 3;
    const cut = await merge(new Protocol(store, { clock }), args);
    assert.equal(cut.status, 500);
    const stored = (await store.poolStats()).size;
    assert.ok(stored > 0 && stored < 250, `stored ${stored} of 250 before the failure`);

    // The client retries against the restarted node (a new protocol: a new stamper).
    clock.ms += 3_000;
    const retry = await merge(new Protocol(store, { clock }), args);
    assert.equal(retry.status, 202);
    const response = retry.response!;
    assert.equal(response.replay, "resumed");
    const accepted = response.accepted as string[];
    assert.equal(new Set(accepted).size, 250);
    assert.equal((response.known as string[]).length, stored);
    assert.deepEqual((await poolIds(store)).sort(), [...accepted].sort());

    // A third try stores nothing and answers as the second did.
    const third = await merge(new Protocol(store, { clock }), args);
    assert.deepEqual(third.response, { ...response, replay: "stored" });
    assert.equal((await store.poolStats()).size, 250);
  } finally {
    await store.close();
  }
});

Deno.test("a request_id reused for a different merge is refused 409 and stores nothing", async () => {
  await withStore(async (store) => {
    const node = new Protocol(store, { clock: manualClock() });
    assert.equal((await merge(node, { pool: labItems(2), request_id: "k" })).status, 202);
    const other = await merge(node, { pool: labItems(3), request_id: "k" });
    assert.deepEqual(other, {
      status: 409,
      error: '"request_id" "k" was used for a different merge',
      response: null,
    });
    assert.equal((await store.poolStats()).size, 2);
  });
});

Deno.test("a retry judges t at the first try's time: a late retry answers the same", async () => {
  await withStore(async (store) => {
    const clock = manualClock();
    const node = new Protocol(store, { clock });
    const item = { sender: GENESIS, receiver: addr(1), amount: 5, t: T0 - 60 };
    const args = { pool: [item, { ...item, amount: 0 }], request_id: "late", verbose: true };
    const first = await merge(node, args);
    assert.deepEqual(first.response!.accepted, [txId(item)]);
    clock.ms += 120_000; // the item's t is now 180 s old: a new merge would refuse it
    const again = await merge(node, args);
    assert.deepEqual(again.response, { ...first.response, replay: "stored" });
    assert.equal(again.status, first.status);
    assert.equal(again.error, first.error);
  });
});

Deno.test("a request_id is forgotten after the retention: the same key is a new merge", async () => {
  await withStore(async (store) => {
    const clock = manualClock();
    const node = new Protocol(store, { clock });
    const args = { pool: labItems(1), request_id: "old" };
    await merge(node, args);
    clock.ms += (REQUEST_RETENTION_SECONDS + 1) * 1000;
    await merge(node, args);
    assert.equal((await store.poolStats()).size, 2);
  });
});

Deno.test("keyed merges from two nodes stamping one microsecond stay two transfers, retries too", async () => {
  const store = await openStore(":memory:");
  try {
    const frozen = { now: () => T0 * 1000 };
    const [one, two] = [
      new Protocol(store, { clock: frozen }),
      new Protocol(store, { clock: frozen }),
    ];
    const pool = [{ sender: GENESIS, receiver: addr(0), amount: 7 }];
    const a = await merge(one, { pool, request_id: "a", verbose: true });
    const b = await merge(two, { pool, request_id: "b", verbose: true });
    const ids = [a, b].map((r) => (r.response!.accepted as string[])[0]);
    assert.notEqual(ids[0], ids[1]);
    assert.deepEqual(b.response!.known, []);
    // The second node's retry uses the stamp it drew again, not the one that clashed.
    const b2 = await merge(two, { pool, request_id: "b", verbose: true });
    assert.deepEqual(b2.response!.accepted, [ids[1]]);
    assert.equal((await store.poolStats()).size, 2);
  } finally {
    await store.close();
  }
});

Deno.test("request_id must be printable ASCII up to 128 characters, and only with a pool", async () => {
  await withStore(async (store) => {
    const node = new Protocol(store, { clock: manualClock() });
    const bad = '"request_id" must be 1 to 128 printable ASCII characters, no spaces';
    for (const request_id of ["", "a b", "x".repeat(129), 7, { a: 1 }, ["k"], "é"]) {
      assert.deepEqual(await merge(node, { pool: labItems(1), request_id }), {
        status: 400,
        error: bad,
        response: null,
      });
    }
    assert.deepEqual(await merge(node, { pool: [], blocks: [], request_id: "k" }), {
      status: 400,
      error: '"request_id" applies to a merge of "pool" only',
      response: null,
    });
    // null counts as absent, as for the other optional args.
    assert.equal((await merge(node, { pool: labItems(1), request_id: null })).status, 202);
    assert.equal((await store.poolStats()).size, 1);
  });
});
