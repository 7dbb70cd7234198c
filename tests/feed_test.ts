/**
 * The live-update feed on its own: what a new subscriber is sent, what counts as a change,
 * that reads happen only while someone listens, the bound on subscribers, and read failures.
 * A fake clock drives the read interval.
 */
import assert from "node:assert/strict";
import { Feed, type FeedEvent } from "../lib/node/feed.ts";
import { fakeClock } from "./fixtures/helpers.ts";

/** A subscriber that records what it is sent. */
function recorder(): { got: FeedEvent[]; push(e: FeedEvent): void } {
  const got: FeedEvent[] = [];
  return { got, push: (e) => got.push(e) };
}

/** Sources whose data the test sets, counting the reads. */
function sources() {
  const state = {
    status: { height: -1, time: 1 } as Record<string, unknown>,
    peers: [] as string[],
  };
  let reads = 0;
  return {
    state,
    reads: () => reads,
    feed: (opts = {}) =>
      new Feed({
        status: () => {
          reads++;
          return Promise.resolve({ ...state.status });
        },
        peers: () => Promise.resolve({ peers: [...state.peers] }),
      }, { intervalMs: 250, ...opts }),
  };
}

Deno.test("feed: a new subscriber is sent every source at once, then only what changed", async () => {
  const clock = fakeClock();
  try {
    const src = sources();
    const feed = src.feed();
    const a = recorder();
    assert.equal(feed.subscribe(a), true);
    await clock.tickAsync(0);
    assert.deepEqual(a.got, [
      { event: "status", data: { height: -1, time: 1 } },
      { event: "peers", data: { peers: [] } },
    ]);
    src.state.status = { height: 0, time: 2 };
    await clock.tickAsync(250);
    assert.deepEqual(a.got.slice(2), [{ event: "status", data: { height: 0, time: 2 } }]);
    // A later subscriber gets the whole state; the first one nothing new.
    const b = recorder();
    feed.subscribe(b);
    await clock.tickAsync(0);
    assert.deepEqual(b.got.map((e) => e.event), ["status", "peers"]);
    assert.equal(a.got.length, 3);
    src.state.peers = ["ws://peer.example/ws"];
    await clock.tickAsync(250);
    for (const s of [a, b]) {
      assert.deepEqual(s.got.at(-1), { event: "peers", data: { peers: ["ws://peer.example/ws"] } });
    }
    await feed.close();
  } finally {
    clock.uninstall();
  }
});

Deno.test("feed: a changed time alone is no change", async () => {
  const clock = fakeClock();
  try {
    const src = sources();
    const feed = src.feed();
    const a = recorder();
    feed.subscribe(a);
    await clock.tickAsync(0);
    for (let i = 0; i < 4; i++) {
      src.state.status = { height: -1, time: 10 + i };
      await clock.tickAsync(250);
    }
    assert.equal(a.got.length, 2);
    assert.ok(src.reads() >= 5, `only ${src.reads()} reads`);
    await feed.close();
  } finally {
    clock.uninstall();
  }
});

Deno.test("feed: reads only while someone is subscribed", async () => {
  const clock = fakeClock();
  try {
    const src = sources();
    const feed = src.feed();
    await clock.tickAsync(2000);
    assert.equal(src.reads(), 0);
    const a = recorder();
    feed.subscribe(a);
    await clock.tickAsync(1000);
    assert.equal(src.reads(), 5); // at once, then every 250 ms
    feed.unsubscribe(a);
    await clock.tickAsync(2000);
    assert.equal(src.reads(), 5);
    assert.equal(clock.countTimers(), 0);
    await feed.close();
  } finally {
    clock.uninstall();
  }
});

Deno.test("feed: subscribe refuses past the bound; subscribing twice counts once", async () => {
  const clock = fakeClock();
  try {
    const feed = sources().feed({ maxSubscribers: 2 });
    const [a, b, c] = [recorder(), recorder(), recorder()];
    assert.equal(feed.subscribe(a), true);
    assert.equal(feed.subscribe(a), true);
    assert.equal(feed.subscribe(b), true);
    assert.equal(feed.size, 2);
    assert.equal(feed.subscribe(c), false);
    feed.unsubscribe(a);
    assert.equal(feed.subscribe(c), true);
    await feed.close();
    assert.equal(feed.size, 0);
    assert.equal(feed.subscribe(a), false, "a closed feed takes no one");
  } finally {
    clock.uninstall();
  }
});

Deno.test("feed: a failed read sends nothing and the next read tries again", async () => {
  const clock = fakeClock();
  try {
    let fail = true;
    const feed = new Feed({
      status: () => fail ? Promise.reject(new Error("database is locked")) : Promise.resolve({}),
    }, { intervalMs: 250 });
    const a = recorder();
    feed.subscribe(a);
    await clock.tickAsync(500);
    assert.deepEqual(a.got, []);
    fail = false;
    await clock.tickAsync(250);
    assert.deepEqual(a.got, [{ event: "status", data: {} }]);
    await feed.close();
  } finally {
    clock.uninstall();
  }
});
