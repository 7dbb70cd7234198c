/**
 * The network layer's behaviours one at a time, on the simulated network and clock
 * (tools/sim): handshake refusals, relay without echo, address sharing, catch-up from far
 * behind, and a peer that serves invalid blocks.
 */
import assert from "node:assert/strict";
import type { ChainRules } from "../lib/consensus/rules.ts";
import { type Block } from "../lib/core/block.ts";
import { Network, type NetworkOptions } from "../lib/net/network.ts";
import { Protocol } from "../lib/node/protocol.ts";
import { openStore, type Store } from "../lib/store/store.ts";
import { SimClock, tracked } from "../tools/sim/clock.ts";
import { SimNetwork } from "../tools/sim/network.ts";
import { addr, GENESIS, T0 } from "./fixtures/helpers.ts";
import { chainOn, COUNT1 } from "./fixtures/chain.ts";

interface TestNode {
  url: string;
  store: Store;
  protocol: Protocol;
  network: Network;
  /** Texts of the requests this node received. */
  received: string[];
  /** Lengths of the runs the network layer appended with `Store.appendBlocks`. */
  runs: number[];
}

/** N nodes on a simulated network; `opts(i)` adds options per node. */
async function cluster(
  n: number,
  opts: (i: number) => Partial<NetworkOptions> & { rules?: ChainRules } = () => ({}),
) {
  const clock = new SimClock(42, (T0 + 100) * 1000);
  const net = new SimNetwork(clock);
  const nodes: TestNode[] = [];
  for (let i = 0; i < n; i++) {
    const url = `ws://n${i}.test:9000/ws`;
    const { rules, ...extra } = opts(i);
    const store = await openStore(":memory:", { rules: rules ?? COUNT1, clock });
    const protocol = new Protocol(store, { clock, timeZone: "UTC" });
    const received: string[] = [];
    const handle = protocol.handle.bind(protocol);
    protocol.handle = (text, session) => {
      received.push(text);
      return handle(text, session);
    };
    // The network layer's store, counting the runs of blocks it appends in one commit each.
    const runs: number[] = [];
    const counting = new Proxy(store, {
      get(target, key) {
        const value = Reflect.get(target, key, target);
        if (key !== "appendBlocks") return typeof value === "function" ? value.bind(target) : value;
        return async (blocks: Block[]) => {
          const result = await target.appendBlocks(blocks);
          if (result.ok) runs.push(blocks.length);
          return result;
        };
      },
    });
    const network = new Network({
      store: tracked(counting, clock),
      protocol: tracked(protocol, clock),
      name: "test",
      listen: url,
      dialer: net.dialerFor(url),
      scheduler: clock,
      nodeId: (i + 1).toString(16).padStart(16, "0"),
      ...extra,
    });
    net.attach(url, protocol);
    nodes.push({ url, store, protocol, network, received, runs });
  }
  for (const node of nodes) await clock.track(node.network.start());
  return {
    clock,
    net,
    nodes,
    /** Runs the simulation for `ms` simulated milliseconds. */
    run: (ms: number) => clock.runUntil(clock.now() + ms),
    async close() {
      for (const node of nodes) {
        await node.network.stop();
        await node.store.close();
      }
    },
  };
}

const mint = (to: number, amount: number, t: number) => ({
  sender: GENESIS,
  receiver: addr(to),
  amount,
  t,
});

Deno.test("a peer of another network is refused, with the reason on both sides", async () => {
  const c = await cluster(
    2,
    (i) => i === 1 ? { name: "other", peers: ["ws://n0.test:9000/ws"] } : {},
  );
  try {
    await c.run(2_000);
    const [link] = c.nodes[1].network.links();
    assert.equal(link.state, "refused");
    assert.match(link.error ?? "", /it is on network "test", this node on "other"/);
    assert.equal(c.nodes[0].network.liveLinks(), 0);
  } finally {
    await c.close();
  }
});

Deno.test("a peer with other rules is refused", async () => {
  const c = await cluster(2, (i) =>
    i === 1
      ? {
        rules: { rules: [{ kind: "count", size: 2 }], acceptBareBlocks: false },
        peers: ["ws://n0.test:9000/ws"],
      }
      : {});
  try {
    await c.run(2_000);
    const [link] = c.nodes[1].network.links();
    assert.equal(link.state, "refused");
    assert.match(
      link.error ?? "",
      /its rules are "count >= 1; bare blocks refused", this node's "count >= 2/,
    );
  } finally {
    await c.close();
  }
});

Deno.test("a node given one peer links to all: addresses are shared", async () => {
  const first = "ws://n0.test:9000/ws";
  const c = await cluster(4, (i) => i === 0 ? {} : { peers: [first] });
  try {
    await c.run(3_000);
    for (const node of c.nodes) assert.equal(node.network.liveLinks(), 3, node.url);
  } finally {
    await c.close();
  }
});

Deno.test("a transaction reaches every node and is never sent back to where it came from", async () => {
  const first = "ws://n0.test:9000/ws";
  const c = await cluster(3, (i) => i === 0 ? {} : { peers: [first] });
  try {
    await c.run(3_000);
    const before = c.nodes[0].received.length;
    const reply = await c.clock.track(c.nodes[0].protocol.handle(
      JSON.stringify({ op: "merge", args: { pool: [mint(1, 5, T0 + 99)], verbose: true } }),
    ));
    const [id] = reply.response!.accepted as string[];
    await c.run(500);
    for (const node of c.nodes) {
      assert.equal((await node.store.lookupTx(id))?.state, "pool", node.url);
    }
    const echoes = c.nodes[0].received.slice(before).filter((t) =>
      t.includes('"merge"') && t.includes(addr(1))
    );
    assert.deepEqual(echoes.slice(1), [], "node 0 got its own transaction back");
  } finally {
    await c.close();
  }
});

Deno.test("a node far behind catches up by locator, page by page", async () => {
  const c = await cluster(
    2,
    (i) => i === 1 ? { peers: ["ws://n0.test:9000/ws"], timings: { pageBlocks: 50 } } : {},
  );
  try {
    const blocks = chainOn(
      null,
      Array.from({ length: 300 }, (_, h) => [mint(h % 50 + 1, 1, T0 + h / 100)]),
    );
    for (const block of blocks) assert.equal((await c.nodes[0].store.appendBlock(block)).ok, true);
    await c.run(5_000);
    assert.equal((await c.nodes[1].store.tip()).hash, blocks.at(-1)!.hash);
    const pages = c.nodes[0].received.filter((t) => t.includes('"locator"')).length;
    assert.ok(pages >= 6, `${pages} pages of 50 for 300 blocks`);
  } finally {
    await c.close();
  }
});

Deno.test("catch-up of full blocks goes in by runs the store sizes, none block by block", async () => {
  const c = await cluster(2, (i) => i === 1 ? { peers: ["ws://n0.test:9000/ws"] } : {});
  try {
    // 30 blocks of 200 mints: a run of them does not fit one KV commit, so runs are halved.
    const blocks = chainOn(
      null,
      Array.from(
        { length: 30 },
        (_, h) => Array.from({ length: 200 }, (_, i) => mint(i + 1, 1, T0 + h + i / 1000)),
      ),
    );
    assert.equal((await c.nodes[0].store.appendBlocks(blocks.slice(0, 1))).ok, true);
    for (const block of blocks.slice(1)) {
      assert.equal((await c.nodes[0].store.appendBlock(block)).ok, true);
    }
    await c.run(5_000);
    assert.equal((await c.nodes[1].store.tip()).hash, blocks.at(-1)!.hash);
    const runs = c.nodes[1].runs;
    assert.equal(runs.reduce((a, b) => a + b, 0), 30, `runs ${runs}`);
    assert.ok(Math.max(...runs) < 30, `one run of ${Math.max(...runs)} cannot fit one commit`);
  } finally {
    await c.close();
  }
});

Deno.test("a peer that serves invalid blocks is dropped, and its blocks are not taken", async () => {
  const c = await cluster(
    2,
    (i) =>
      i === 1
        ? { peers: ["ws://n0.test:9000/ws"], timings: { faultLimit: 3, syncEveryMs: 500 } }
        : {},
  );
  try {
    await c.run(1_000);
    // Node 0 answers every locator with a block whose hash does not match its contents.
    const [good] = chainOn(null, [[mint(1, 5, T0)]]);
    const forged: Block = { ...good, items: [{ ...good.items[0], amount: 6 }] };
    const handle = c.nodes[0].protocol.handle.bind(c.nodes[0].protocol);
    c.nodes[0].protocol.handle = (text, session) =>
      text.includes('"locator"')
        ? Promise.resolve({
          status: 200,
          error: "OK",
          response: { blocks: [forged], fork: -1, height: 0 },
        })
        : handle(text, session);
    await c.run(5_000);
    const [link] = c.nodes[1].network.links();
    assert.equal(link.state, "banned");
    assert.match(link.error ?? "", /invalid blocks/);
    assert.equal((await c.nodes[1].store.tip()).height, -1);
  } finally {
    await c.close();
  }
});
