/**
 * The `subscribe` op end to end: pushed events beside in-order replies on one WebSocket, only
 * to connections that asked, changes made by another process, unsubscribing, and the bounds.
 */
import assert from "node:assert/strict";
import { type FeedEvent, isEvent } from "../lib/node/feed.ts";
import { NodeClient } from "../lib/net/client.ts";
import { newSession, Protocol } from "../lib/node/protocol.ts";
import { openStore } from "../lib/store/store.ts";
import { A, addr, GENESIS, T0, tx } from "./fixtures/helpers.ts";
import { chainOn, COUNT1, LATER } from "./fixtures/chain.ts";
import {
  closeSocket,
  openSocket,
  poll,
  runMain,
  type TestNode,
  withNode,
  withTempDir,
} from "./fixtures/node.ts";

const SUBSCRIBED = {
  status: 200,
  error: "OK",
  response: { events: ["status", "peers"], interval: 0.25 },
};

/** A connected client whose events are kept; `next` waits (bounded) for a matching one. */
async function subscriber(node: TestNode) {
  const client = await NodeClient.connect(node.url);
  const events: FeedEvent[] = [];
  const waiters: { match: (e: FeedEvent) => boolean; resolve: (e: FeedEvent) => void }[] = [];
  client.onEvent = (event) => {
    events.push(event);
    for (const w of waiters.filter((w) => w.match(event))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(event);
    }
  };
  return {
    client,
    events,
    /** The first event (already received or to come) that matches, within `timeoutMs`. */
    next(what: string, match: (e: FeedEvent) => boolean, timeoutMs = 10_000): Promise<FeedEvent> {
      const seen = events.find(match);
      if (seen) return Promise.resolve(seen);
      let timer: ReturnType<typeof setTimeout> | undefined;
      return new Promise<FeedEvent>((resolve, reject) => {
        waiters.push({ match, resolve });
        timer = setTimeout(
          () => reject(new Error(`no event within ${timeoutMs} ms: ${what}`)),
          timeoutMs,
        );
      }).finally(() => clearTimeout(timer));
    },
  };
}

const statusWith = (pred: (s: Record<string, unknown>) => boolean) => (e: FeedEvent) =>
  e.event === "status" && pred(e.data);

Deno.test("subscribe: its reply comes first, then the state as events; replies keep their order", async () => {
  await withNode(async (node) => {
    const ws = await openSocket(node.url);
    try {
      const messages: Record<string, unknown>[] = [];
      ws.onmessage = (m) => messages.push(JSON.parse(String(m.data)));
      ws.send(JSON.stringify({ op: "subscribe" }));
      ws.send(JSON.stringify({ op: "pool" }));
      ws.send("not json");
      ws.send(JSON.stringify({ op: "peers" }));
      await poll("three replies and two events", () => messages.length >= 6);
      const replies = messages.filter((m) => !isEvent(m));
      const events = messages.filter(isEvent);
      assert.deepEqual(messages[0], SUBSCRIBED);
      // The lab's replies, byte for byte as without a subscription, in request order.
      assert.deepEqual(replies.slice(1), [
        { status: 200, error: "OK", response: { pool: [] } },
        { status: 500, error: "Cannot parse request message.", response: null },
        { status: 200, error: "OK", response: { peers: [] } },
      ]);
      assert.deepEqual(events.map((e) => e.event), ["status", "peers"]);
      const status = events[0].data as Record<string, unknown>;
      assert.deepEqual(
        { ...status, time: 0 },
        {
          height: -1,
          tip: null,
          pool: { size: 0, earliest: null, latest: null, span: 0 },
          rules: "count >= 1 or span >= 0 s or age >= 0 s; bare blocks accepted",
          builder: null,
          time: 0,
        },
      );
      assert.deepEqual(events[1].data, { peers: [] });
      for (const e of events) assert.ok(!("status" in e), "an event has no status");
    } finally {
      await closeSocket(ws);
    }
  });
});

Deno.test("subscribe: a merge reaches every subscriber as a status event, and no one else", async () => {
  await withNode(async (node) => {
    const [a, b, quiet] = await Promise.all([subscriber(node), subscriber(node), subscriber(node)]);
    try {
      assert.deepEqual(await a.client.request("subscribe"), SUBSCRIBED);
      assert.deepEqual(await b.client.request("subscribe"), SUBSCRIBED);
      await Promise.all([a, b].map((s) => s.next("first status", statusWith(() => true))));
      assert.equal(
        (await quiet.client.request("merge", {
          pool: [{ sender: GENESIS, receiver: A, amount: 5 }],
        })).status,
        202,
      );
      for (const s of [a, b]) {
        const e = await s.next(
          "pool of 1",
          statusWith((d) => (d.pool as { size: number }).size === 1),
        );
        assert.equal((e.data.pool as { size: number }).size, 1);
      }
      // The connection that never subscribed still gets replies only.
      assert.deepEqual(quiet.events, []);
      assert.equal((await quiet.client.request("pool")).status, 200);
      assert.deepEqual(quiet.events, []);
    } finally {
      await Promise.all([a, b, quiet].map((s) => s.client.close()));
    }
  });
});

Deno.test("subscribe: a block another process writes to the same file reaches subscribers", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/node.kv`;
    await withNode(async (node) => {
      const s = await subscriber(node);
      try {
        assert.equal(
          (await s.client.request("merge", {
            pool: [{ sender: GENESIS, receiver: A, amount: 5 }],
          })).status,
          202,
        );
        assert.deepEqual(await s.client.request("subscribe"), SUBSCRIBED);
        await s.next("the empty chain", statusWith((d) => d.height === -1));
        // `build --once` is another process: kv.watch() would not see its commit.
        const built = await runMain(["build", "--once", "--db", db, "--rule", "count", "-k", "1"]);
        assert.equal(built.code, 0, built.stderr);
        const e = await s.next("height 0", statusWith((d) => d.height === 0));
        assert.equal(typeof e.data.tip, "string");
        assert.deepEqual((e.data.builder as Record<string, unknown>).once, true);
      } finally {
        await s.client.close();
      }
    }, { path: db });
  });
});

Deno.test("unsubscribe stops the events; a closed connection is unsubscribed", async () => {
  await withNode(async (node) => {
    const s = await subscriber(node);
    const control = await subscriber(node);
    try {
      await s.client.request("subscribe");
      await s.next("first status", statusWith(() => true));
      assert.equal(node.protocol.subscribers, 1);
      assert.deepEqual(await s.client.request("unsubscribe"), {
        status: 200,
        error: "OK",
        response: { events: [] },
      });
      assert.equal(node.protocol.subscribers, 0);
      const seen = s.events.length;
      await control.client.request("subscribe");
      await control.client.request("merge", {
        pool: [{ sender: GENESIS, receiver: A, amount: 5 }],
      });
      await control.next("pool of 1", statusWith((d) => (d.pool as { size: number }).size === 1));
      // Had `s` still been subscribed, the same read would have queued its event before this
      // reply.
      await s.client.request("pool");
      assert.equal(s.events.length, seen);
    } finally {
      await s.client.close();
      await control.client.close();
    }
    await poll("closed connections to be unsubscribed", () => node.protocol.subscribers === 0);
  });
});

Deno.test("subscribe is refused past the bound (503) and without a connection (400)", async () => {
  const store = await openStore(":memory:");
  const protocol = new Protocol(store, { feed: { maxSubscribers: 1 } });
  try {
    assert.deepEqual(await protocol.handle(`{"op": "subscribe"}`), {
      status: 400,
      error: `Operation "subscribe" needs a WebSocket connection`,
      response: null,
    });
    const pushed: FeedEvent[] = [];
    const one = { push: (e: FeedEvent) => pushed.push(e) };
    assert.equal((await protocol.handle(`{"op": "subscribe"}`, newSession(one))).status, 200);
    assert.deepEqual(await protocol.handle(`{"op": "subscribe"}`, newSession({ push() {} })), {
      status: 503,
      error: "Too many subscribers (at most 1); try again later",
      response: null,
    });
    assert.ok(protocol.ops.includes("subscribe") && protocol.ops.includes("unsubscribe"));
    protocol.disconnect(one);
    assert.equal(protocol.subscribers, 0);
  } finally {
    await protocol.close();
    await store.close();
  }
});

Deno.test("subscribe: every new tip is pushed at once, whether built, merged as blocks or a reorg", async () => {
  const store = await openStore(":memory:", { rules: COUNT1, clock: LATER });
  // An hour between reads: only the store's tip hook can explain an event within the test.
  const protocol = new Protocol(store, { clock: LATER, feed: { intervalMs: 3_600_000 } });
  const events: FeedEvent[] = [];
  const tipIs = async (what: string, hash: string, height: number) => {
    await poll(what, () => events.some((e) => e.event === "status" && e.data.tip === hash));
    const last = events.findLast((e) => e.event === "status")!;
    assert.deepEqual([last.data.tip, last.data.height], [hash, height]);
  };
  try {
    const [a0, a1] = chainOn(null, [[tx(GENESIS, addr(1), 10, T0)], [
      tx(GENESIS, addr(2), 5, T0 + 1),
    ]]);
    // A fork from a0, one block longer: it wins.
    const [b1, b2] = chainOn(a0, [[tx(GENESIS, addr(3), 7, T0 + 2)], [
      tx(GENESIS, addr(3), 8, T0 + 3),
    ]]);
    const merge = async (...blocks: unknown[]) =>
      (await protocol.handle(JSON.stringify({ op: "merge", args: { blocks } }))).status;
    assert.equal(
      (await protocol.handle(`{"op": "subscribe"}`, newSession({ push: (e) => events.push(e) })))
        .status,
      200,
    );
    await poll("the first status", () => events.some((e) => e.event === "status"));
    // The builder's path: a block appended on the tip.
    assert.deepEqual(await store.appendBlock(a0, []), { ok: true, block: a0 });
    await tipIs("the built block", a0.hash, 0);
    assert.equal(await merge(a1), 202);
    await tipIs("a block merged on the tip", a1.hash, 1);
    assert.equal(await merge(b1, b2), 202);
    await tipIs("the tip after the reorg", b2.hash, 2);
  } finally {
    await protocol.close();
    await store.close();
  }
});
