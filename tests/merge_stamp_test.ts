/**
 * Stamped transactions are never swallowed as duplicates: two processes (two Protocols on one
 * store) stamping an identical transfer in the same millisecond both get it stored, while a
 * resend of a transaction that carries its own `t` is still recognised as the same one.
 */
import assert from "node:assert/strict";
import { Protocol } from "../lib/node/protocol.ts";
import { openStore } from "../lib/store/store.ts";
import { txId } from "../lib/core/transaction.ts";
import { A, GENESIS, LOOSE_RULES, T0 } from "./fixtures/helpers.ts";

const frozen = { now: () => T0 * 1000 }; // both "processes" read the same millisecond

Deno.test("identical transfers stamped in one millisecond by two nodes are two transactions", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const first = new Protocol(store, { clock: frozen });
    const second = new Protocol(store, { clock: frozen });
    const transfer = JSON.stringify({
      op: "merge",
      args: { pool: [{ sender: GENESIS, receiver: A, amount: 7 }], verbose: true },
    });
    const one = await first.handle(transfer);
    const two = await second.handle(transfer);
    assert.equal(one.status, 202);
    assert.equal(two.status, 202);
    const ids = [one, two].map((r) => (r.response as { accepted: string[] }).accepted[0]);
    assert.notEqual(ids[0], ids[1]);
    assert.deepEqual((two.response as { known: string[] }).known, []);
    const pool = (await store.poolPage(10)).txs;
    assert.equal(pool.length, 2);
    assert.deepEqual(pool.map(txId).sort(), [...ids].sort());
    assert.equal((await store.poolStats()).size, 2);
  } finally {
    await store.close();
  }
});

Deno.test("a transaction with its own t sent twice is stored once and reported known", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const node = new Protocol(store, { clock: frozen });
    const tx = { sender: GENESIS, receiver: A, amount: 7, t: T0 - 1 };
    const request = JSON.stringify({ op: "merge", args: { pool: [tx], verbose: true } });
    assert.deepEqual(await node.handle(request), {
      status: 202,
      error: "Accepted",
      response: { accepted: [txId(tx)], known: [], rejected: [] },
    });
    assert.deepEqual(await node.handle(request), {
      status: 202,
      error: "Accepted",
      response: { accepted: [txId(tx)], known: [txId(tx)], rejected: [] },
    });
    // Without `verbose`, the lab's exact reply.
    const plain = JSON.stringify({ op: "merge", args: { pool: [tx] } });
    assert.deepEqual(await node.handle(plain), { status: 202, error: "Accepted" });
    assert.equal((await store.poolStats()).size, 1);
  } finally {
    await store.close();
  }
});

Deno.test("a bad blocks part is refused before the pool part is stored", async () => {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  try {
    const node = new Protocol(store, { clock: frozen });
    const reply = await node.handle(JSON.stringify({
      op: "merge",
      args: { pool: [{ sender: GENESIS, receiver: A, amount: 7 }], blocks: "oops" },
    }));
    assert.deepEqual(reply, {
      status: 400,
      error: '"blocks" must be a list of blocks',
      response: null,
    });
    assert.equal((await store.poolStats()).size, 0);
  } finally {
    await store.close();
  }
});
