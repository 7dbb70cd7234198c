/**
 * End-to-end tests of the node: a real server on a free port, real WebSocket clients, the
 * lab's session replayed reply for reply, every error the protocol defines, paging, peer
 * blocks (lab 5), many clients at once, a client that floods without reading, and the
 * serve + build processes sharing one KV file.
 */
import assert from "node:assert/strict";
import { type Block, blockHash, checkBlockShape, makeBlock } from "../lib/core/block.ts";
import { Builder } from "../lib/node/builder.ts";
import { NodeClient } from "../lib/net/client.ts";
import { GENESIS } from "../lib/core/params.ts";
import type { Reply } from "../lib/node/protocol.ts";
import { type Item, itemHash, type Tx, txId } from "../lib/core/transaction.ts";
import { verifyStore } from "../lib/store/audit.ts";
import { A, addr, B, BF0, BF1, BF2, C, T0 } from "./fixtures/helpers.ts";
import {
  closeSocket,
  nextMessage,
  openSocket,
  poll,
  startNode,
  type TestNode,
  withNode,
  withProcesses,
  withTempDir,
} from "./fixtures/node.ts";

const ACCEPTED = { status: 202, error: "Accepted" };
const OK = (response: Record<string, unknown>) => ({ status: 200, error: "OK", response });
const FAIL = (status: number, error: string) => ({ status, error, response: null });

/** Runs `body` with a connected client, always closed afterwards. */
async function withClient<T>(node: TestNode, body: (c: NodeClient) => Promise<T>): Promise<T> {
  const client = await NodeClient.connect(node.url);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}

/** A pool or block item without its chain link. */
const txOf = (i: Item): Tx => ({
  sender: i.sender,
  receiver: i.receiver,
  amount: i.amount,
  t: i.t,
});

/** The pool as the node reports it. */
async function poolOf(c: NodeClient): Promise<Item[]> {
  const reply = await c.request("pool");
  assert.equal(reply.status, 200, reply.error);
  return reply.response!.pool as Item[];
}

/** Asserts a block's item chain and hash, independently of the code that built it. */
function assertBlockVerifies(block: Block) {
  assert.equal(checkBlockShape(block), null);
  assert.equal(block.items[0].prev_hash, null);
  for (let i = 1; i < block.items.length; i++) {
    assert.equal(block.items[i].prev_hash, itemHash(block.items[i - 1]), `item ${i} link`);
  }
  assert.equal(block.hash, blockHash(block.items, block.prev_hash, block.proof));
}

/** A fake clock the protocol and builder share; `set` moves it. */
function fakeNodeClock(seconds: number) {
  let ms = seconds * 1000;
  return {
    now: () => ms,
    set(s: number) {
      ms = s * 1000;
    },
  };
}

// ---- the lab session ------------------------------------------------------------------------

Deno.test("the lab 4 session replayed: pool, merges, builder (k=3), pool empty, one block", async () => {
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      assert.deepEqual(await c.request("pool"), OK({ pool: [] }));

      const before = Date.now() / 1000;
      assert.deepEqual(
        await c.request("merge", { pool: [{ sender: GENESIS, receiver: BF2, amount: 10000 }] }),
        ACCEPTED,
      );
      const first = await c.request("pool");
      assert.equal(first.status, 200);
      assert.equal(first.error, "OK");
      const [pooled] = first.response!.pool as Item[];
      assert.deepEqual(Object.keys(first.response!), ["pool"]);
      // The lab's field order, and `t` stamped by the node on arrival.
      assert.deepEqual(Object.keys(pooled), ["sender", "receiver", "amount", "t", "prev_hash"]);
      const { t, ...rest } = pooled;
      assert.deepEqual(rest, { sender: GENESIS, receiver: BF2, amount: 10000, prev_hash: null });
      assert.equal(typeof t, "number");
      assert.ok(t >= before - 1 && t <= Date.now() / 1000 + 1, `t ${t} is not now`);
      assert.equal((first.response!.pool as Item[]).length, 1);

      assert.deepEqual(await c.request("blocks"), OK({ blocks: [] }));
      assert.deepEqual(
        await c.request("merge", { pool: [{ sender: GENESIS, receiver: BF1, amount: 8000 }] }),
        ACCEPTED,
      );
      assert.deepEqual(
        await c.request("merge", { pool: [{ sender: GENESIS, receiver: BF0, amount: 5000 }] }),
        ACCEPTED,
      );
      const pool = await poolOf(c);
      assert.deepEqual(
        pool.map(({ receiver, amount, prev_hash }) => ({ receiver, amount, prev_hash })),
        [
          { receiver: BF2, amount: 10000, prev_hash: null },
          { receiver: BF1, amount: 8000, prev_hash: null },
          { receiver: BF0, amount: 5000, prev_hash: null },
        ],
      );
      assert.equal(pool[0].t, t, "merging more does not re-stamp what is pooled");
      assert.ok(pool[0].t < pool[1].t && pool[1].t < pool[2].t);

      // The builder, as `python -m foxchain.app.builder -k 3` ran it.
      const result = await new Builder(node.store, { rules: [{ kind: "count", size: 3 }] }).pass();
      assert.equal(result.blocks.length, 1);
      assert.deepEqual(result.dropped, []);

      assert.deepEqual(await c.request("pool"), OK({ pool: [] }));
      // The block carries the count rule's evidence: the pool it was cut from, at its latest t.
      const proof = {
        rule: "count" as const,
        time: pool[2].t,
        size: 3,
        earliest: pool[0].t,
        latest: pool[2].t,
      };
      const expected = makeBlock(0, null, pool.map(txOf), proof);
      assert.deepEqual(await c.request("blocks"), OK({ blocks: [expected] }));
      const [block] = (await c.request("blocks")).response!.blocks as Block[];
      assert.equal(block.items.length, 3);
      assert.equal(block.prev_hash, null);
      assert.equal(block.height, 0);
      assertBlockVerifies(block);
      assert.deepEqual(
        await c.request("balance", { address: BF2 }),
        OK({ address: BF2, balance: 10000 }),
      );
    });
  });
});

Deno.test("homework: the span rule through the protocol, 179.999 s waits and 180 s cuts", async () => {
  const t1 = T0 + 500;
  // Explicit times must be near the node's clock (10 s ahead, 90 s old at most), so the clock
  // walks along with them, 5 s behind the records' own t.
  const clock = fakeNodeClock(t1 + 5);
  await withNode(async (node) => {
    const builder = new Builder(node.store, { rules: [{ kind: "span", seconds: 180 }], clock });
    await withClient(node, async (c) => {
      const merge = (receiver: string, t?: number) =>
        c.request("merge", { pool: [{ sender: GENESIS, receiver, amount: 1, t }] });

      // A lone record spans 0 s: the span rule alone never fires for it.
      assert.deepEqual(await merge(A, t1), ACCEPTED);
      // Nobody can force the rule with a made-up time: t1 + 180 is 175 s in the node's future.
      const forced = await merge(B, t1 + 180);
      assert.equal(forced.status, 400);
      assert.match(forced.error, /"t" is 175\.000 s in the future \(max 10 s\)/);
      let pass = await builder.pass();
      assert.deepEqual(pass.blocks, []);
      assert.match(pass.reason, /spans 0\.000 s, rule needs 180 s/);

      clock.set(t1 + 179.999 + 5);
      assert.deepEqual(await merge(B, t1 + 179.999), ACCEPTED);
      // Given `t` is kept as sent, never re-stamped.
      assert.deepEqual((await poolOf(c)).map((i) => i.t), [t1, t1 + 179.999]);
      pass = await builder.pass();
      assert.deepEqual(pass.blocks, []);
      assert.match(pass.reason, /spans 179\.999 s, rule needs 180 s/);
      const status = await c.request("status");
      assert.deepEqual(status.response!.pool, {
        size: 2,
        earliest: t1,
        latest: t1 + 179.999,
        span: 179.999,
      });
      assert.equal(status.response!.height, -1);

      clock.set(t1 + 180 + 5);
      assert.deepEqual(await merge(C, t1 + 180), ACCEPTED);
      const once = await builder.buildOnce();
      assert.equal(once.blocks.length, 1);
      assert.match(once.reason, /spans 180\.000 s, rule needs 180 s/);
      assert.deepEqual(await c.request("pool"), OK({ pool: [] }));
      const blocks = (await c.request("blocks")).response!.blocks as Block[];
      assert.deepEqual(blocks[0].items.map((i) => [i.receiver, i.t]), [
        [A, t1],
        [B, t1 + 179.999],
        [C, t1 + 180],
      ]);
      assertBlockVerifies(blocks[0]);

      // The same with `t` stamped by the node: arrivals 179.999 s apart on the node's clock.
      clock.set(T0 + 2000);
      assert.deepEqual(await merge(A), ACCEPTED);
      clock.set(T0 + 2000 + 179.999);
      assert.deepEqual(await merge(B), ACCEPTED);
      assert.deepEqual((await poolOf(c)).map((i) => i.t), [T0 + 2000, T0 + 2000 + 179.999]);
      assert.deepEqual((await builder.pass()).blocks, []);
      clock.set(T0 + 2000 + 180);
      assert.deepEqual(await merge(C), ACCEPTED);
      assert.equal((await builder.pass()).blocks.length, 1);
      assert.equal((await c.request("status")).response!.height, 1);
    });
  }, { clock });
});

// ---- errors ---------------------------------------------------------------------------------

Deno.test("malformed requests get the lab's exact error replies", async () => {
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      const cases: [string, Reply][] = [
        ["not json", FAIL(500, "Cannot parse request message.")],
        ["", FAIL(500, "Cannot parse request message.")],
        ['{"op": "pool"', FAIL(500, "Cannot parse request message.")],
        ["[1, 2]", FAIL(500, "Message body is not supported.")],
        ["42", FAIL(500, "Message body is not supported.")],
        ['"pool"', FAIL(500, "Message body is not supported.")],
        ["null", FAIL(500, "Message body is not supported.")],
        ["{}", FAIL(500, "Message body is not supported.")],
        ['{"args": {}}', FAIL(500, "Message body is not supported.")],
        ['{"op": 5}', FAIL(500, "Message body is not supported.")],
        ['{"op": "x"}', FAIL(404, 'Operation "x" is not supported')],
        ['{"op": "POOL"}', FAIL(404, 'Operation "POOL" is not supported')],
        ['{"op": "toString"}', FAIL(404, 'Operation "toString" is not supported')],
        ['{"op": "__proto__"}', FAIL(404, 'Operation "__proto__" is not supported')],
        [
          JSON.stringify({ op: "y".repeat(500) }),
          FAIL(404, `Operation "${"y".repeat(80)}..." is not supported`),
        ],
        ['{"op": "merge"}', FAIL(500, 'Operation "merge" requires the following "args": "pool"')],
        [
          '{"op": "merge", "args": {}}',
          FAIL(500, 'Operation "merge" requires the following "args": "pool"'),
        ],
        [
          '{"op": "merge", "args": null}',
          FAIL(500, 'Operation "merge" requires the following "args": "pool"'),
        ],
        [
          '{"op": "register"}',
          FAIL(500, 'Operation "register" requires the following "args": "addr"'),
        ],
        [
          '{"op": "register", "args": {"address": "ws://a/ws"}}',
          FAIL(500, 'Operation "register" requires the following "args": "addr"'),
        ],
        [
          '{"op": "balance"}',
          FAIL(500, 'Operation "balance" requires the following "args": "address"'),
        ],
        [
          '{"op": "tx", "args": {}}',
          FAIL(500, 'Operation "tx" requires the following "args": "id"'),
        ],
        // args that is not an object names no argument, as in the lab's `'pool' in args`.
        [
          '{"op": "merge", "args": []}',
          FAIL(500, 'Operation "merge" requires the following "args": "pool"'),
        ],
        ['{"op": "pool", "args": "x"}', { status: 200, error: "OK", response: { pool: [] } }],
        [
          '{"op": "merge", "args": {"pool": "x"}}',
          FAIL(400, '"pool" must be a list of transactions'),
        ],
        [
          '{"op": "merge", "args": {"pool": {"sender": "x"}}}',
          FAIL(400, '"pool" must be a list of transactions'),
        ],
        [
          '{"op": "merge", "args": {"blocks": {}}}',
          FAIL(400, '"blocks" must be a list of blocks'),
        ],
        ['{"op": "balance", "args": {"address": 5}}', FAIL(400, '"address" must be a UUID')],
        ['{"op": "balance", "args": {"address": "nope"}}', FAIL(400, '"address" must be a UUID')],
        [
          '{"op": "tx", "args": {"id": 5}}',
          FAIL(400, '"id" must be a transaction id: 16 digits, a dash, 64 hex digits'),
        ],
        [
          '{"op": "tx", "args": {"id": "abc"}}',
          FAIL(400, '"id" must be a transaction id: 16 digits, a dash, 64 hex digits'),
        ],
        ['{"op": "blocks", "args": {"start": "x"}}', FAIL(400, '"start" must be a whole number')],
        ['{"op": "blocks", "args": {"start": 1.5}}', FAIL(400, '"start" must be a whole number')],
        ['{"op": "blocks", "args": {"start": 1e300}}', FAIL(400, '"start" must be a whole number')],
        [
          '{"op": "blocks", "args": {"limit": 0}}',
          FAIL(400, '"limit" must be a whole number from 1 to 1000'),
        ],
        [
          '{"op": "blocks", "args": {"limit": "5"}}',
          FAIL(400, '"limit" must be a whole number from 1 to 1000'),
        ],
        [
          '{"op": "pool", "args": {"limit": -1}}',
          FAIL(400, '"limit" must be a whole number from 1 to 10000'),
        ],
        [
          '{"op": "pool", "args": {"cursor": 5}}',
          FAIL(400, '"cursor" must be the string a previous "pool" reply gave as "next"'),
        ],
        [
          '{"op": "pool", "args": {"cursor": "zzz"}}',
          FAIL(400, '"cursor" is not one a "pool" reply gave'),
        ],
      ];
      for (const [request, expected] of cases) {
        assert.deepEqual(await c.send(request), expected, `request ${request.slice(0, 60)}`);
      }
      // Nothing above changed anything.
      assert.deepEqual(await c.request("pool"), OK({ pool: [] }));
      assert.deepEqual(await c.request("peers"), OK({ peers: [] }));
    });
  });
});

Deno.test("merge: every bad item is rejected with its index and reason; good ones still go in", async () => {
  const clock = fakeNodeClock(T0);
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      const good = { sender: GENESIS, receiver: A, amount: 5, t: T0 };
      const bad: [unknown, RegExp][] = [
        ["x", /^a transaction must be a JSON object$/],
        [[good], /^a transaction must be a JSON object$/],
        [{ ...good, sender: 1 }, /^"sender" must be a UUID string$/],
        [{ ...good, sender: "nope" }, /^"sender" is not a UUID: "nope"$/],
        [{ ...good, receiver: undefined }, /^"receiver" must be a UUID string$/],
        [{ ...good, receiver: GENESIS }, /^sender and receiver are the same address$/],
        [
          { ...good, amount: 0 },
          /^"amount" must be a whole number from 1 to 1000000000000, got 0$/,
        ],
        [{ ...good, amount: -5 }, /^"amount" must be a whole number from 1 to .*, got -5$/],
        [{ ...good, amount: 1.5 }, /^"amount" must be a whole number/],
        [{ ...good, amount: "10" }, /^"amount" must be a whole number.*, got "10"$/],
        [{ ...good, amount: null }, /^"amount" must be a whole number.*, got null$/],
        [
          { ...good, amount: 1e300 },
          /^"amount" must be a whole number from 1 to 1000000000000, got 1e\+300$/,
        ],
        [{ ...good, amount: 2 ** 53 }, /^"amount" must be a whole number/],
        [
          { ...good, amount: { toString: 1 } },
          /^"amount" must be a whole number.*, got \{"toString":1\}$/,
        ],
        [{ ...good, t: "now" }, /^"t" must be a number of POSIX seconds$/],
        [{ ...good, t: T0 + 10.5 }, /^"t" is 10\.500 s in the future \(max 10 s\)$/],
        [{ ...good, t: 1e20 }, /^"t" is .* s in the future \(max 10 s\)$/],
        [{ ...good, t: T0 - 90.5 }, /^"t" is 90\.500 s old \(max 90 s\)$/],
        [{ ...good, t: -1 }, /^"t" is .* s old/],
      ];
      for (const [item, reason] of bad) {
        const reply = await c.request("merge", { pool: [item] });
        assert.equal(reply.status, 400, JSON.stringify(item));
        assert.ok(reply.error.startsWith("Nothing accepted: item 0: "), reply.error);
        const response = reply.response as {
          accepted: string[];
          rejected: { index: number; reason: string }[];
        };
        assert.deepEqual(response.accepted, []);
        assert.equal(response.rejected.length, 1);
        assert.equal(response.rejected[0].index, 0);
        assert.match(response.rejected[0].reason, reason, JSON.stringify(item));
        assert.equal(reply.error, `Nothing accepted: item 0: ${response.rejected[0].reason}`);
      }
      // The edges of what is allowed are accepted.
      const edges = [
        { ...good, t: T0 + 10 },
        { ...good, t: T0 - 90 },
        { sender: GENESIS, receiver: B, amount: 1_000_000_000_000, t: T0 },
        { sender: GENESIS.toUpperCase(), receiver: C.toUpperCase(), amount: 1, t: T0 },
      ];
      assert.deepEqual(await c.request("merge", { pool: edges }), ACCEPTED);
      // Addresses are stored lowercase.
      assert.ok((await poolOf(c)).some((i) => i.receiver === C && i.sender === GENESIS));

      // A mix: 202 with what went in and what did not.
      const mixed = [good, { ...good, amount: -1 }, { ...good, receiver: B }, "junk"];
      assert.deepEqual(await c.request("merge", { pool: mixed }), {
        status: 202,
        error: "Accepted",
        response: {
          accepted: [txId(good), txId({ ...good, receiver: B })],
          known: [],
          rejected: [
            { index: 1, reason: '"amount" must be a whole number from 1 to 1000000000000, got -1' },
            { index: 3, reason: "a transaction must be a JSON object" },
          ],
        },
      });
      assert.equal((await poolOf(c)).length, 6);

      // An empty list is fine and changes nothing.
      assert.deepEqual(await c.request("merge", { pool: [] }), ACCEPTED);
      // 10,001 items is refused as a whole before any is looked at.
      const many = Array.from({ length: 10_001 }, () => ({}));
      assert.deepEqual(
        await c.request("merge", { pool: many }),
        FAIL(400, "merge takes at most 10000 transactions, got 10001"),
      );
      assert.deepEqual(
        await c.request("merge", { blocks: Array.from({ length: 1001 }, () => ({})) }),
        FAIL(400, "merge takes at most 1000 blocks, got 1001"),
      );
      assert.deepEqual(
        await c.request("register", { addr: Array.from({ length: 1001 }, () => "ws://a/ws") }),
        FAIL(400, "register takes at most 1000 addresses, got 1001"),
      );
      assert.equal((await poolOf(c)).length, 6);
      assert.deepEqual(await c.request("peers"), OK({ peers: [] }));
    });
  }, { clock });
});

Deno.test("an oversized message gets 413 and the connection keeps working", async () => {
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      const limit = 1 << 20;
      const big = JSON.stringify({ op: "pool", args: { pad: "x".repeat(limit) } });
      assert.deepEqual(
        await c.send(big),
        FAIL(413, `Message is too large: ${big.length} bytes, at most ${limit}`),
      );
      assert.deepEqual(await c.request("pool"), OK({ pool: [] }));
      // The limit is in bytes: 600,000 two-byte characters are 1.2 MB on the wire.
      const wide = JSON.stringify({ op: "pool", args: { pad: "é".repeat(600_000) } });
      const bytes = new TextEncoder().encode(wide).length;
      assert.ok(wide.length < limit && bytes > limit);
      assert.deepEqual(
        await c.send(wide),
        FAIL(413, `Message is too large: ${bytes} bytes, at most ${limit}`),
      );
      // Just under the limit is answered normally.
      const fits = JSON.stringify({ op: "pool", args: { pad: "" } });
      const padded = fits.replace('"pad":""', `"pad":"${"x".repeat(limit - fits.length)}"`);
      assert.equal(padded.length, limit);
      assert.deepEqual(await c.send(padded), OK({ pool: [] }));
      assert.equal(node.server.connections(), 1);
    });
  });
});

Deno.test("binary frames are read as UTF-8 text", async () => {
  await withNode(async (node) => {
    const ws = await openSocket(node.url);
    try {
      const enc = new TextEncoder();
      let reply = nextMessage(ws);
      ws.send(enc.encode('{"op": "pool"}'));
      assert.deepEqual(JSON.parse(await reply), OK({ pool: [] }));
      reply = nextMessage(ws);
      ws.send(new Uint8Array([0xff, 0xfe, 0x00, 0x01]));
      assert.deepEqual(JSON.parse(await reply), FAIL(500, "Cannot parse request message."));
      reply = nextMessage(ws);
      ws.send(new Blob([enc.encode('{"op": "peers"}')]));
      assert.deepEqual(JSON.parse(await reply), OK({ peers: [] }));
      // Text still works on the same connection.
      reply = nextMessage(ws);
      ws.send('{"op": "blocks"}');
      assert.deepEqual(JSON.parse(await reply), OK({ blocks: [] }));
    } finally {
      await closeSocket(ws);
    }
  });
});

// ---- balance, tx, status, time, peers -------------------------------------------------------

Deno.test("balance, tx (pool, chain, dropped, unknown), status, time, register and peers", async () => {
  const clock = fakeNodeClock(T0 + 10);
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      const t1 = { sender: GENESIS, receiver: A, amount: 100, t: T0 + 1 };
      const t2 = { sender: A, receiver: B, amount: 30, t: T0 + 2 };
      const t3 = { sender: B, receiver: C, amount: 50, t: T0 + 3 }; // B will have only 30
      assert.deepEqual(await c.request("merge", { pool: [t1, t2, t3] }), ACCEPTED);
      const [id1, id2, id3] = [t1, t2, t3].map(txId);

      assert.deepEqual(
        await c.request("tx", { id: id1 }),
        OK({ id: id1, state: "pool", tx: { ...t1, prev_hash: null } }),
      );
      // Ids are case-insensitive.
      assert.deepEqual(
        await c.request("tx", { id: id2.toUpperCase() }),
        OK({ id: id2, state: "pool", tx: { ...t2, prev_hash: null } }),
      );
      assert.deepEqual(
        await c.request("status"),
        OK({
          height: -1,
          tip: null,
          pool: { size: 3, earliest: T0 + 1, latest: T0 + 3, span: 2 },
          rules: "count >= 1 or span >= 0 s or age >= 0 s; bare blocks accepted",
          builder: null,
          time: T0 + 10,
        }),
      );
      assert.deepEqual(await c.request("balance", { address: A }), OK({ address: A, balance: 0 }));

      const pass = await new Builder(node.store, { rules: [{ kind: "count", size: 3 }] }).pass();
      assert.equal(pass.blocks.length, 1);
      const block = pass.blocks[0];

      assert.deepEqual(
        await c.request("tx", { id: id1 }),
        OK({
          id: id1,
          state: "chain",
          height: 0,
          index: 0,
          block: block.hash,
          tx: { ...t1, prev_hash: null },
        }),
      );
      assert.deepEqual(
        await c.request("tx", { id: id2 }),
        OK({
          id: id2,
          state: "chain",
          height: 0,
          index: 1,
          block: block.hash,
          tx: { ...t2, prev_hash: null },
        }),
      );
      const dropped = await c.request("tx", { id: id3 });
      assert.equal(dropped.status, 200);
      const { at, ...rest } = dropped.response as Record<string, unknown>;
      assert.deepEqual(rest, {
        id: id3,
        state: "dropped",
        reason: `not enough balance: ${B} has 30, needs 50`,
        tx: { ...t3, prev_hash: null },
      });
      assert.equal(typeof at, "number");
      const unknown = `1700000000000000-${"ab".repeat(32)}`;
      assert.deepEqual(
        await c.request("tx", { id: unknown }),
        FAIL(404, `Transaction "${unknown}" is not known`),
      );

      assert.deepEqual(await c.request("balance", { address: A }), OK({ address: A, balance: 70 }));
      assert.deepEqual(await c.request("balance", { address: B }), OK({ address: B, balance: 30 }));
      assert.deepEqual(await c.request("balance", { address: C }), OK({ address: C, balance: 0 }));
      assert.deepEqual(
        await c.request("balance", { address: A.toUpperCase() }),
        OK({ address: A, balance: 70 }),
      );
      assert.deepEqual(
        await c.request("balance", { address: GENESIS }),
        OK({ address: GENESIS, balance: -100 }),
      );
      assert.deepEqual(
        await c.request("status"),
        OK({
          height: 0,
          tip: block.hash,
          pool: { size: 0, earliest: null, latest: null, span: 0 },
          rules: "count >= 1 or span >= 0 s or age >= 0 s; bare blocks accepted",
          builder: null,
          time: T0 + 10,
        }),
      );

      // A dropped transaction may be sent again (once B can pay, it goes in).
      assert.deepEqual(await c.request("merge", { pool: [t3] }), ACCEPTED);
      assert.equal((await c.request("tx", { id: id3 })).response!.state, "pool");

      assert.deepEqual(await c.request("time"), OK({ time: T0 + 10, time_zone: "UTC" }));

      assert.deepEqual(await c.request("peers"), OK({ peers: [] }));
      assert.deepEqual(
        await c.request("register", {
          addr: ["ws://b.example:9000/ws", "wss://A.example/ws", "http://x.example", 5],
        }),
        {
          status: 202,
          error: "Accepted",
          response: { added: 2, ignored: ["http://x.example", "5"] },
        },
      );
      // One URL, not a list, as the lab's tracker sends it; a known URL adds nothing.
      assert.deepEqual(await c.request("register", { addr: "ws://b.example:9000/ws" }), ACCEPTED);
      assert.deepEqual(
        await c.request("peers"),
        OK({ peers: ["ws://b.example:9000/ws", "wss://a.example/ws"] }),
      );
    });
  }, { clock });
});

// ---- paging ---------------------------------------------------------------------------------

Deno.test("blocks paging: start, negative start, limit and next over 1,050 blocks", async () => {
  await withNode(async (node) => {
    // 1,050 one-transaction blocks, appended in runs.
    const chain: Block[] = [];
    let tip: { height: number; hash: string | null } = { height: -1, hash: null };
    for (let run = 0; run < 7; run++) {
      const blocks: Block[] = [];
      for (let i = 0; i < 150; i++) {
        const h = tip.height + 1;
        const block = makeBlock(h, tip.hash, [
          { sender: GENESIS, receiver: addr(h % 10), amount: 1, t: T0 + h },
        ]);
        blocks.push(block);
        tip = { height: h, hash: block.hash };
      }
      const result = await node.store.appendBlocks(blocks);
      assert.ok(result.ok, !result.ok ? result.reason : "");
      chain.push(...blocks);
    }
    await withClient(node, async (c) => {
      const heights = (r: Reply) => (r.response!.blocks as Block[]).map((b) => b.height);
      const range = (from: number, to: number) =>
        Array.from({ length: to - from }, (_, i) => from + i);

      let r = await c.request("blocks");
      assert.deepEqual(heights(r), range(0, 1000));
      assert.equal(r.response!.next, 1000);
      assert.deepEqual(r.response!.blocks, chain.slice(0, 1000));
      r = await c.request("blocks", { start: 1000 });
      assert.deepEqual(heights(r), range(1000, 1050));
      assert.ok(!("next" in r.response!));
      assert.deepEqual(r, OK({ blocks: chain.slice(1000) }));

      assert.deepEqual(await c.request("blocks", { start: -1 }), OK({ blocks: [chain[1049]] }));
      assert.deepEqual(heights(await c.request("blocks", { start: -3 })), [1047, 1048, 1049]);
      assert.deepEqual(heights(await c.request("blocks", { start: "1047" })), [1047, 1048, 1049]);
      assert.deepEqual(heights(await c.request("blocks", { start: -5000, limit: 2 })), [0, 1]);
      assert.deepEqual(await c.request("blocks", { start: 1050 }), OK({ blocks: [] }));
      assert.deepEqual(await c.request("blocks", { start: 1e15 }), OK({ blocks: [] }));
      assert.deepEqual(
        await c.request("blocks", { start: 5, limit: 10 }),
        OK({ blocks: chain.slice(5, 15), next: 15 }),
      );
      assert.deepEqual(
        await c.request("blocks", { start: 1045, limit: 5 }),
        OK({ blocks: chain.slice(1045) }),
      );

      // Following "next" walks the whole chain once, and the links hold.
      const all: Block[] = [];
      let start: number | undefined = 0;
      let pages = 0;
      while (start !== undefined) {
        const page = await c.request("blocks", { start, limit: 400 });
        all.push(...(page.response!.blocks as Block[]));
        start = page.response!.next as number | undefined;
        pages++;
      }
      assert.equal(pages, 3);
      assert.deepEqual(all, chain);
      for (let h = 1; h < all.length; h++) assert.equal(all[h].prev_hash, all[h - 1].hash);
    });
  });
});

Deno.test("blocks paging: a page stops at 5,000 items but always holds one block", async () => {
  await withNode(async (node) => {
    const chain: Block[] = [];
    for (let h = 0; h < 22; h++) {
      const block = makeBlock(
        h,
        chain.at(-1)?.hash ?? null,
        Array.from({ length: 240 }, (_, i) => ({
          sender: GENESIS,
          receiver: addr(i % 30),
          amount: 1,
          t: T0 + h + i / 1000,
        })),
      );
      const result = await node.store.appendBlock(block);
      assert.ok(result.ok, !result.ok ? result.reason : "");
      chain.push(block);
    }
    await withClient(node, async (c) => {
      const first = await c.request("blocks");
      assert.equal((first.response!.blocks as Block[]).length, 20); // 4,800 items; 21 is 5,040
      assert.equal(first.response!.next, 20);
      assert.deepEqual(await c.request("blocks", { start: 20 }), OK({ blocks: chain.slice(20) }));
      assert.deepEqual(
        await c.request("blocks", { start: 3, limit: 1 }),
        OK({ blocks: [chain[3]], next: 4 }),
      );
    });
  });
});

Deno.test("pool paging with limit and cursor returns every transaction once, in t order", async () => {
  const clock = fakeNodeClock(T0 + 60);
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      const txs = Array.from({ length: 25 }, (_, i) => ({
        sender: GENESIS,
        receiver: addr(i),
        amount: i + 1,
        t: T0 + 50 - i, // sent in reverse t order
      }));
      assert.deepEqual(await c.request("merge", { pool: txs }), ACCEPTED);
      const everything = await poolOf(c);
      assert.equal(everything.length, 25);
      assert.deepEqual(everything, [...txs].reverse().map((t) => ({ ...t, prev_hash: null })));

      const pages: Item[][] = [];
      let cursor: string | undefined;
      do {
        const reply = await c.request("pool", cursor ? { limit: 10, cursor } : { limit: 10 });
        assert.equal(reply.status, 200);
        pages.push(reply.response!.pool as Item[]);
        cursor = reply.response!.next as string | undefined;
        if (cursor !== undefined) assert.equal(typeof cursor, "string");
      } while (cursor);
      assert.deepEqual(pages.map((p) => p.length), [10, 10, 5]);
      assert.deepEqual(pages.flat(), everything);
    });
  }, { clock });
});

Deno.test("pool: a cursor the node never gave out is a 400, not the first page", async () => {
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      const pool = [1, 2, 3].map((i) => ({ sender: GENESIS, receiver: addr(i), amount: i }));
      assert.deepEqual(await c.request("merge", { pool }), ACCEPTED);
      const first = await c.request("pool", { limit: 1 });
      const next = first.response!.next as string;
      assert.equal((await c.request("pool", { limit: 1, cursor: next })).status, 200);
      // KV itself reads "" and "AAAA" as "from the start"; a cursor of another list's key,
      // a truncated one and a non-base64 one are no pool cursors either.
      const blockKey = btoa(String.fromCharCode(0x21, 0, 0, 0, 0, 0, 0, 0, 1));
      for (const cursor of ["", "AAAA", next.slice(0, 12), "!!", blockKey, `${next}AA`]) {
        assert.deepEqual(
          await c.request("pool", { limit: 1, cursor }),
          FAIL(400, `"cursor" is not one a "pool" reply gave`),
          JSON.stringify(cursor),
        );
      }
    });
  });
});

// ---- lab 5: merging blocks from a peer ------------------------------------------------------

Deno.test("lab 5: blocks fetched from node A and merged into node B give B A's chain", async () => {
  const clock = fakeNodeClock(T0 + 60);
  await withNode(async (a) => {
    await withNode(async (b) => {
      await withClient(a, async (ca) => {
        await withClient(b, async (cb) => {
          const txs = [
            { sender: GENESIS, receiver: A, amount: 50, t: T0 + 1 },
            { sender: A, receiver: B, amount: 20, t: T0 + 2 },
            { sender: GENESIS, receiver: C, amount: 7, t: T0 + 3 },
            { sender: B, receiver: C, amount: 5, t: T0 + 4 },
            { sender: C, receiver: A, amount: 12, t: T0 + 5 },
            { sender: GENESIS, receiver: B, amount: 1, t: T0 + 6 },
            { sender: GENESIS, receiver: B, amount: 2, t: T0 + 7 },
          ];
          assert.deepEqual(await ca.request("merge", { pool: txs }), ACCEPTED);
          // The tracker relays A's pool to B: same t, same ids.
          assert.deepEqual(await cb.request("merge", { pool: await poolOf(ca) }), ACCEPTED);
          assert.deepEqual(await poolOf(cb), await poolOf(ca));

          const built = await new Builder(a.store, {
            rules: [{ kind: "count", size: 2 }],
            maxBlock: 2,
          }).pass();
          assert.equal(built.blocks.length, 3);
          const blocks = (await ca.request("blocks")).response!.blocks as Block[];
          assert.equal(blocks.length, 3);

          assert.deepEqual(await cb.request("merge", { blocks }), ACCEPTED);
          const [sa, sb] = [await ca.request("status"), await cb.request("status")];
          assert.equal(sb.response!.height, 2);
          assert.equal(sb.response!.tip, sa.response!.tip);
          assert.deepEqual(await cb.request("blocks"), await ca.request("blocks"));
          // B's pool lost what went into the blocks, as A's did.
          assert.deepEqual(await poolOf(cb), await poolOf(ca));
          assert.equal((await poolOf(cb)).length, 1);
          for (const address of [A, B, C, GENESIS]) {
            assert.deepEqual(
              await cb.request("balance", { address }),
              await ca.request("balance", { address }),
            );
          }
          const verdict = await verifyStore(b.store, { indexes: true });
          assert.ok(verdict.ok, JSON.stringify(verdict));

          // Relaying the same blocks again changes nothing.
          assert.deepEqual(await cb.request("merge", { blocks }), ACCEPTED);
          assert.equal((await cb.request("status")).response!.height, 2);
          // Relaying the pool as it was before the blocks does not put chain txs back.
          assert.deepEqual(
            await cb.request("merge", { pool: txs.map((t) => ({ ...t, prev_hash: null })) }),
            ACCEPTED,
          );
          assert.deepEqual(await poolOf(cb), await poolOf(ca));
        });
      });
    }, { clock });
  }, { clock });
});

Deno.test("lab 5: lab-shaped blocks (items and prev_hash only) hash the same on every node", async () => {
  const clock = fakeNodeClock(T0 + 60);
  await withNode(async (a) => {
    await withNode(async (b) => {
      await withClient(a, async (ca) => {
        await withClient(b, async (cb) => {
          const txs = Array.from({ length: 6 }, (_, i) => ({
            sender: GENESIS,
            receiver: addr(i),
            amount: 10 + i,
            t: T0 + i,
          }));
          // A lab chain: bare blocks (no proof-of-write evidence), taken by a node that
          // accepts them, as a lab client's tracker relays them.
          const b0 = makeBlock(0, null, txs.slice(0, 3));
          const b1 = makeBlock(1, b0.hash, txs.slice(3));
          assert.deepEqual(await ca.request("merge", { blocks: [b0, b1] }), ACCEPTED);
          const blocks = (await ca.request("blocks")).response!.blocks as Block[];
          assert.deepEqual(blocks, [b0, b1]);
          const labShaped = blocks.map(({ items, prev_hash }) => ({ items, prev_hash }));
          assert.deepEqual(await cb.request("merge", { blocks: labShaped }), ACCEPTED);
          assert.deepEqual(await cb.request("blocks"), await ca.request("blocks"));
          assert.equal(
            (await cb.request("status")).response!.tip,
            (await ca.request("status")).response!.tip,
          );
        });
      });
    }, { clock });
  }, { clock });
});

Deno.test("lab 5: blocks with an unknown parent, tampered or overspending are rejected; a fork is kept", async () => {
  const clock = fakeNodeClock(T0 + 60);
  await withNode(async (a) => {
    await withNode(async (b) => {
      await withClient(a, async (ca) => {
        await withClient(b, async (cb) => {
          const txs = Array.from({ length: 4 }, (_, i) => ({
            sender: GENESIS,
            receiver: addr(i),
            amount: 10,
            t: T0 + i,
          }));
          assert.deepEqual(await ca.request("merge", { pool: txs }), ACCEPTED);
          await new Builder(a.store, { rules: [{ kind: "count", size: 2 }], maxBlock: 2 }).pass();
          const [b0, b1] = (await ca.request("blocks")).response!.blocks as Block[];

          const rejectedOne = (reason: string) => ({
            status: 400,
            error: `Nothing accepted: block 0: ${reason}`,
            response: {
              blocks: { appended: 0, known: 0, side: 0, rejected: [{ index: 0, reason }] },
            },
          });
          // Tampered: the last item's amount (the item chain holds, the block hash does not).
          const lastChanged = structuredClone(b0);
          lastChanged.items[1].amount = 1_000_000;
          assert.deepEqual(
            await cb.request("merge", { blocks: [lastChanged] }),
            rejectedOne(
              `block hash is ${b0.hash}, contents hash to ${
                blockHash(lastChanged.items, null, lastChanged.proof)
              }`,
            ),
          );
          // Tampered: the first item (the next item's link breaks), with or without a hash.
          const firstChanged = structuredClone(b0);
          firstChanged.items[0].receiver = addr(99);
          const broken = rejectedOne("item 1: prev_hash does not match the item before it");
          assert.deepEqual(await cb.request("merge", { blocks: [firstChanged] }), broken);
          assert.deepEqual(
            await cb.request("merge", {
              blocks: [{ items: firstChanged.items, prev_hash: null }],
            }),
            broken,
          );
          // Not a block at all.
          assert.deepEqual(
            await cb.request("merge", { blocks: [{ items: [], prev_hash: null }] }),
            rejectedOne('"items" must be a non-empty list'),
          );
          // A valid block whose sender has nothing.
          const overspend = makeBlock(0, null, [{ sender: A, receiver: B, amount: 1, t: T0 }]);
          assert.deepEqual(
            await cb.request("merge", { blocks: [overspend] }),
            rejectedOne(`item 0: not enough balance: ${A} has 0, needs 1`),
          );
          assert.deepEqual(await cb.request("blocks"), OK({ blocks: [] }));

          // Block 1 on an empty chain: its parent is not known (it waits for it).
          assert.deepEqual(
            await cb.request("merge", { blocks: [b1] }),
            rejectedOne(`parent ${b0.hash} is not known`),
          );
          assert.deepEqual(await cb.request("blocks"), OK({ blocks: [] }));

          // A mix: the good block goes in, with block 1 that waited for it as its parent, and the
          // reply says which one did not.
          const reason = "item 1: prev_hash does not match the item before it";
          const tampered = { items: firstChanged.items, prev_hash: null };
          assert.deepEqual(await cb.request("merge", { blocks: [b0, tampered] }), {
            status: 202,
            error: "Accepted",
            response: {
              blocks: { appended: 2, known: 0, side: 0, rejected: [{ index: 1, reason }] },
            },
          });
          assert.deepEqual(await cb.request("blocks"), OK({ blocks: [b0, b1] }));
          // Both again: known, nothing to say.
          assert.deepEqual(await cb.request("merge", { blocks: [b0, b1] }), ACCEPTED);
          assert.deepEqual(await cb.request("blocks"), OK({ blocks: [b0, b1] }));

          // A valid block that does not extend the tip is kept on a side branch, not rejected;
          // the longer chain stays the tip, and the side block's transaction waits in the pool.
          const sideTx = { sender: GENESIS, receiver: addr(50), amount: 3, t: T0 + 10 };
          const fork = makeBlock(0, null, [sideTx]);
          assert.deepEqual(await cb.request("merge", { blocks: [fork], verbose: true }), {
            ...ACCEPTED,
            response: { blocks: { appended: 0, known: 0, side: 1, rejected: [] } },
          });
          assert.deepEqual(await cb.request("blocks"), OK({ blocks: [b0, b1] }));
          assert.deepEqual(await poolOf(cb), [{ ...sideTx, prev_hash: null }]);
          const verdict = await verifyStore(b.store, { indexes: true });
          assert.ok(verdict.ok, JSON.stringify(verdict));
        });
      });
    }, { clock });
  }, { clock });
});

// ---- load and abuse -------------------------------------------------------------------------

Deno.test("50 clients x 20 merges at once: every reply arrives, every tx is pooled exactly once", async () => {
  await withNode(async (node) => {
    const clients = await Promise.all(
      Array.from({ length: 50 }, () => NodeClient.connect(node.url)),
    );
    try {
      assert.equal(node.server.connections(), 50);
      const sent: { receiver: string; amount: number }[] = [];
      const replies = await Promise.all(clients.map(async (c, k) => {
        const requests = Array.from({ length: 20 }, (_, i) => {
          const item = { sender: GENESIS, receiver: addr(k), amount: i + 1 };
          sent.push(item);
          return item;
        });
        // Half the clients pipeline all 20 requests, half wait for each reply.
        if (k % 2 === 0) {
          return await Promise.all(requests.map((item) => c.request("merge", { pool: [item] })));
        }
        const out: Reply[] = [];
        for (const item of requests) out.push(await c.request("merge", { pool: [item] }));
        return out;
      }));
      assert.equal(replies.flat().length, 1000);
      for (const reply of replies.flat()) assert.deepEqual(reply, ACCEPTED);

      const pool = await poolOf(clients[0]);
      assert.equal(pool.length, 1000);
      assert.equal(new Set(pool.map(txId)).size, 1000);
      const key = (i: { receiver: string; amount: number }) => `${i.receiver}/${i.amount}`;
      assert.deepEqual(pool.map(key).sort(), sent.map(key).sort());
      const status = await clients[1].request("status");
      assert.equal((status.response!.pool as { size: number }).size, 1000);
    } finally {
      await Promise.all(clients.map((c) => c.close()));
    }
  });
});

/** A masked client text frame (RFC 6455), for a client that speaks WebSocket by hand. */
function clientFrame(text: string): Uint8Array {
  const payload = new TextEncoder().encode(text);
  assert.ok(payload.length < 126);
  const out = new Uint8Array(6 + payload.length);
  out.set([0x81, 0x80 | payload.length, 1, 2, 3, 4]);
  payload.forEach((byte, i) => (out[6 + i] = byte ^ [1, 2, 3, 4][i % 4]));
  return out;
}

Deno.test("a client that floods requests and never reads replies is cut off; others are served", async () => {
  await withNode(async (node) => {
    await withClient(node, async (c) => {
      // Make each pool reply about 25 KB.
      const pool = Array.from({ length: 200 }, (_, i) => ({
        sender: GENESIS,
        receiver: addr(i),
        amount: 1,
      }));
      assert.deepEqual(await c.request("merge", { pool }), ACCEPTED);

      const conn = await Deno.connect({ hostname: "127.0.0.1", port: node.server.port });
      try {
        await conn.write(new TextEncoder().encode(
          `GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
            `Sec-WebSocket-Key: ${btoa("0123456789abcdef")}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
        ));
        const head = new Uint8Array(1024);
        const n = await conn.read(head);
        assert.match(new TextDecoder().decode(head.subarray(0, n ?? 0)), /^HTTP\/1.1 101 /);
        await poll("the raw client to be counted", () => node.server.connections() === 2);

        // Flood: at most 8,000 requests (200 MB of replies), never reading a byte.
        const frame = clientFrame('{"op":"pool"}');
        let sent = 0;
        try {
          while (sent < 8000 && node.server.connections() === 2) {
            for (let i = 0; i < 50; i++, sent++) await conn.write(frame);
            // Meanwhile another client is answered.
            assert.equal((await c.request("status")).status, 200);
          }
        } catch (error) {
          // The server closed the connection under our writes: that is the point.
          assert.ok(error instanceof Error);
        }
        await poll("the flooding client to be disconnected", () => node.server.connections() === 1);
        assert.ok(sent < 8000);
      } finally {
        conn.close();
      }
      assert.equal((await poolOf(c)).length, 200);
      assert.equal((await c.request("status")).status, 200);
    });
  }, { limits: { maxBufferedBytes: 1 << 20 } });
});

Deno.test("a client with too many requests waiting for replies is cut off; others are served", async () => {
  await withNode(async (node) => {
    await withClient(node, async (other) => {
      const flooder = await NodeClient.connect(node.url);
      try {
        // 200 requests of 16 KB at once, against 64 KiB allowed to wait.
        const pad = "x".repeat(16_000);
        const results = await Promise.allSettled(
          Array.from({ length: 200 }, () => flooder.request("status", { pad })),
        );
        const last = results.at(-1)!;
        assert.equal(last.status, "rejected");
        for (const r of results) {
          if (r.status === "fulfilled") assert.equal(r.value.status, 200);
          else assert.match(String(r.reason), /connection to .* closed/);
        }
        await poll("the flooding client to be disconnected", () => node.server.connections() === 1);
      } finally {
        await flooder.close();
      }
      assert.deepEqual(await other.request("pool"), OK({ pool: [] }));
    });
  }, { limits: { maxPendingBytes: 64 * 1024 } });
});

// ---- HTTP -----------------------------------------------------------------------------------

Deno.test("GET / serves the explorer page and its files with their types and a strict CSP", async () => {
  await withNode(async (node) => {
    const base = `http://127.0.0.1:${node.server.port}`;
    const page = await fetch(`${base}/`);
    assert.equal(page.status, 200);
    assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
    const html = await page.text();
    // Everything the page loads is one of the node's own files, and none is inline.
    const loaded = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(loaded.sort(), [
      "/app.js",
      "/favicon.svg",
      "/favicon.svg",
      "/health",
      "/style.css",
    ]);
    assert.doesNotMatch(html, /<script>|<style|style="|\son[a-z]+="/i);
    const types: Record<string, RegExp> = {
      "/app.js": /^text\/javascript; charset=utf-8$/,
      "/link.js": /^text\/javascript; charset=utf-8$/,
      "/style.css": /^text\/css; charset=utf-8$/,
      "/favicon.svg": /^image\/svg\+xml$/,
    };
    for (const [path, type] of Object.entries(types)) {
      const res = await fetch(`${base}${path}`);
      assert.equal(res.status, 200, path);
      assert.match(res.headers.get("content-type") ?? "", type, path);
      assert.equal(res.headers.get("x-content-type-options"), "nosniff", path);
      assert.ok((await res.text()).length > 100, path);
    }
    const csp = page.headers.get("content-security-policy") ?? "";
    for (
      const directive of [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
      ]
    ) {
      assert.ok(csp.split("; ").includes(directive), `CSP lacks ${directive}: ${csp}`);
    }
    assert.doesNotMatch(csp, /unsafe/);
    const head = await fetch(`${base}/`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(await head.text(), "");
  });
});

Deno.test("GET /health; /ws without an upgrade is 426; other paths 404/405", async () => {
  await withNode(async (node) => {
    const base = `http://127.0.0.1:${node.server.port}`;
    let res = await fetch(`${base}/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { ok: true, height: -1, pool: 0 });
    await withClient(node, async (c) => {
      await c.request("merge", { pool: [{ sender: GENESIS, receiver: A, amount: 1 }] });
    });
    res = await fetch(`${base}/health`);
    assert.deepEqual(await res.json(), { ok: true, height: -1, pool: 1 });

    res = await fetch(`${base}/ws`);
    assert.equal(res.status, 426);
    assert.match(await res.text(), /WebSocket/);
    res = await fetch(`${base}/nope`);
    assert.equal(res.status, 404);
    await res.body?.cancel();
    res = await fetch(`${base}/`, { method: "POST", body: "x" });
    assert.equal(res.status, 405);
    await res.body?.cancel();
  });
});

/** Sends one raw HTTP/1.1 request and returns the status line and the whole response text. */
async function rawHttp(port: number, request: string): Promise<{ status: string; text: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(request));
    let text = "";
    const buf = new Uint8Array(16 * 1024);
    for (let reads = 0; reads < 100; reads++) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    return { status: text.split("\r\n")[0], text };
  } finally {
    conn.close();
  }
}

Deno.test("a malformed Host header is answered 400, not 500", async () => {
  await withNode(async (node) => {
    for (const host of ["bad host", "a:b:c", "[::1", "%%"]) {
      const r = await rawHttp(
        node.server.port,
        `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
      );
      assert.equal(r.status, "HTTP/1.1 400 Bad Request", host);
      assert.match(r.text, /malformed Host header/);
    }
    // The node still answers well-formed requests.
    const ok = await rawHttp(
      node.server.port,
      `GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    );
    assert.equal(ok.status, "HTTP/1.1 200 OK");
  });
});

Deno.test("shutdown closes open connections with 1001; a pending client learns the node is gone", async () => {
  const node = await startNode();
  const c = await NodeClient.connect(node.url);
  try {
    assert.equal((await c.request("pool")).status, 200);
    await node.close();
    await assert.rejects(c.request("pool"), /closed/);
  } finally {
    await c.close();
  }
});

// ---- processes: serve and build on one KV file -----------------------------------------------

Deno.test("serve and build processes on one KV file turn merges into blocks; SIGTERM exits 0", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/node.kv`;
    await withProcesses(async (spawn) => {
      // Every process of the node runs under the same network rules.
      const rules = ["--rule", "count", "-k", "1"];
      const serve = spawn([
        "serve",
        "--port",
        "0",
        "--hostname",
        "127.0.0.1",
        "--db",
        db,
        ...rules,
      ]);
      const url = await serve.listening();
      const build = spawn(["build", "--db", db, ...rules, "--sleep", "0.2"]);
      await build.waitForStderr(/Builder started: count >= 1/);

      const c = await NodeClient.connect(url);
      try {
        const sent = Array.from({ length: 30 }, (_, i) => ({
          sender: GENESIS,
          receiver: addr(i % 5),
          amount: i + 1,
        }));
        for (let i = 0; i < sent.length; i += 3) {
          assert.deepEqual(await c.request("merge", { pool: sent.slice(i, i + 3) }), ACCEPTED);
        }
        const status = await poll("the builder to empty the pool", async () => {
          const r = await c.request("status");
          const pool = r.response!.pool as { size: number };
          return pool.size === 0 && (r.response!.height as number) >= 0 ? r.response! : null;
        });
        assert.match(String((status.builder as { rules: string }).rules), /count >= 1/);
        assert.equal(status.rules, "count >= 1; bare blocks refused");
        const blocks: Block[] = [];
        let start: number | undefined = 0;
        while (start !== undefined) {
          const page = await c.request("blocks", { start });
          blocks.push(...(page.response!.blocks as Block[]));
          start = page.response!.next as number | undefined;
        }
        assert.equal(blocks.length, (status.height as number) + 1);
        assert.deepEqual(
          blocks.flatMap((b) => b.items.map((i) => `${i.receiver}/${i.amount}`)).sort(),
          sent.map((i) => `${i.receiver}/${i.amount}`).sort(),
        );
        blocks.forEach(assertBlockVerifies);
        for (let h = 1; h < blocks.length; h++) {
          assert.equal(blocks[h].prev_hash, blocks[h - 1].hash);
        }
        assert.deepEqual(
          await c.request("balance", { address: addr(0) }),
          OK({
            address: addr(0),
            balance: sent.filter((s) => s.receiver === addr(0)).reduce((n, s) => n + s.amount, 0),
          }),
        );
      } finally {
        await c.close();
      }
      const [sb, ss] = await Promise.all([build.stop("SIGTERM"), serve.stop("SIGTERM")]);
      assert.equal(sb.code, 0, build.stderr);
      assert.equal(ss.code, 0, serve.stderr);
      assert.match(build.stderr, /Block is added to the blockchain\./);
      assert.match(build.stderr, /Stopped cleanly\./);
      assert.match(serve.stderr, /Stopped cleanly\./);
      assert.doesNotMatch(serve.stderr + build.stderr, /ERROR|error:/);
    });
  });
});
