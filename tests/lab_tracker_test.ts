/**
 * Lab 5's tracker against foxchain nodes that have no links of their own (no --peer): the
 * tracker below does what the lab's does (PROTOCOL.md, "Tracker"): every few milliseconds it
 * pulls `peers`, `pool` and the whole `blocks` list (no `start`) from each node, relays each
 * pool as `merge {pool}` and each chain as `merge {blocks}` from height 0 to every node, the
 * sender included, and announces its peer list with `register {addr: [...]}`. The nodes must
 * converge: known blocks skipped, a longer valid chain adopted through fork choice, relayed
 * pools deduplicated. Their blocks carry proofs, so no --accept-bare-blocks is needed.
 */
import assert from "node:assert/strict";
import type { ChainRules } from "../lib/consensus/rules.ts";
import { GENESIS } from "../lib/core/params.ts";
import type { Reply } from "../lib/node/protocol.ts";
import { NodeClient } from "../lib/net/client.ts";
import { Builder } from "../lib/node/builder.ts";
import { addr, assertEachInOnePlace, placesOf } from "./fixtures/helpers.ts";
import { poll, startNode, type TestNode } from "./fixtures/node.ts";
import { type Tx, txId } from "../lib/core/transaction.ts";

/** A network whose blocks must carry proof-of-write evidence, as foxchain's default. */
const RULES: ChainRules = { rules: [{ kind: "count", size: 1 }], acceptBareBlocks: false };

/** The lab-5 tracker's loop, one round at a time or on a timer. At most 3 nodes, as the lab. */
class LabTracker {
  readonly replies: Reply[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #round: Promise<void> = Promise.resolve();

  private constructor(readonly urls: string[], readonly clients: NodeClient[]) {}

  static async connect(urls: string[]): Promise<LabTracker> {
    const held = urls.slice(0, 3);
    return new LabTracker(held, await Promise.all(held.map((u) => NodeClient.connect(u))));
  }

  /** One pass: pull from each, register the list, relay every pool and chain to every node. */
  async round(): Promise<void> {
    const pulled: { pool: unknown[]; blocks: unknown[] }[] = [];
    for (const client of this.clients) {
      await client.request("peers");
      const pool = await client.request("pool");
      const blocks = await client.request("blocks");
      pulled.push({
        pool: (pool.response?.pool ?? []) as unknown[],
        blocks: (blocks.response?.blocks ?? []) as unknown[],
      });
    }
    for (const client of this.clients) {
      this.replies.push(await client.request("register", { addr: this.urls }));
    }
    for (const { pool, blocks } of pulled) {
      for (const client of this.clients) {
        this.replies.push(await client.request("merge", { pool }));
        this.replies.push(await client.request("merge", { blocks }));
      }
    }
  }

  /** Runs a round every `everyMs` until stopped. */
  start(everyMs: number): void {
    const tick = () => {
      this.#round = this.round().finally(() => {
        if (this.#timer !== undefined) this.#timer = setTimeout(tick, everyMs);
      });
    };
    this.#timer = setTimeout(tick, everyMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#round;
    await Promise.all(this.clients.map((c) => c.close()));
  }
}

/** Nodes with a builder each (passes run by hand), a tracker, all closed afterwards. */
async function withLabNetwork(
  n: number,
  body: (nodes: TestNode[], builders: Builder[], tracker: LabTracker) => Promise<void>,
): Promise<void> {
  const nodes: TestNode[] = [];
  let tracker: LabTracker | undefined;
  const builders: Builder[] = [];
  try {
    for (let i = 0; i < n; i++) nodes.push(await startNode({ rules: RULES }));
    for (const node of nodes) builders.push(new Builder(node.store, { sleepSeconds: 0.05 }));
    tracker = await LabTracker.connect(nodes.map((x) => x.url));
    await body(nodes, builders, tracker);
  } finally {
    await tracker?.stop();
    await Promise.all(builders.map((b) => b.stop()));
    await Promise.all(nodes.map((x) => x.close()));
  }
}

async function sendTo(node: TestNode, txs: Tx[]): Promise<void> {
  const reply = await node.protocol.handle(JSON.stringify({ op: "merge", args: { pool: txs } }));
  assert.equal(reply.status, 202, reply.error);
}

/** Sends each transaction to `node` and has its builder cut a block of it: a block each. */
async function cutEach(node: TestNode, builder: Builder, txs: Tx[]): Promise<void> {
  for (const tx of txs) {
    await sendTo(node, [tx]);
    assert.equal((await builder.pass()).added, 1);
  }
}

function mint(to: number, amount: number): Tx {
  return { sender: GENESIS, receiver: addr(to), amount, t: Date.now() / 1000 };
}

/** Tips of all nodes once they agree and every transaction is in every chain, else null. */
async function agreed(nodes: TestNode[], txs: Tx[]): Promise<string | null> {
  const tips = await Promise.all(nodes.map(async (x) => (await x.store.tip()).hash));
  if (tips[0] === null || tips.some((t) => t !== tips[0])) return null;
  for (const node of nodes) {
    const { chain } = await placesOf(node.store);
    if (chain.size !== txs.length) return null;
  }
  return tips[0];
}

Deno.test("lab tracker: a chain and a pool relayed whole, echoes included, are taken once", async () => {
  await withLabNetwork(3, async (nodes, [builderA], tracker) => {
    const [a, b, c] = nodes;
    const cut = [mint(1, 5), mint(2, 6)];
    await cutEach(a, builderA, cut);
    const pooled = [mint(3, 7)];
    await sendTo(b, pooled);

    await tracker.round();
    // B and C took A's chain (with its proofs: no --accept-bare-blocks), everyone has B's
    // transaction in the pool once, and every relay (echoes to the sender too) was accepted.
    const tipA = await a.store.tip();
    for (const node of [b, c]) assert.deepEqual(await node.store.tip(), tipA);
    for (const node of nodes) {
      assert.deepEqual(await assertEachInOnePlace(node.store, [...cut, ...pooled]), {
        chain: 2,
        pool: 1,
        dropped: 0,
      });
    }
    assert.ok(tracker.replies.every((r) => r.status === 202), JSON.stringify(tracker.replies));

    // A second round relays the same chain from height 0 and the same pools: all known.
    const before = tracker.replies.length;
    await tracker.round();
    for (const node of nodes) {
      assert.deepEqual(await node.store.tip(), tipA);
      assert.equal((await node.store.poolStats()).size, 1);
    }
    assert.ok(tracker.replies.slice(before).every((r) => r.status === 202));
    const verbose = await c.protocol.handle(JSON.stringify({
      op: "merge",
      args: {
        blocks: (await a.protocol.handle('{"op":"blocks"}')).response!.blocks,
        verbose: true,
      },
    }));
    assert.deepEqual(verbose.response!.blocks, { appended: 0, known: 2, side: 0, rejected: [] });
    // Peers registered by the tracker are kept once each.
    for (const node of nodes) {
      assert.deepEqual((await node.store.peers()).sort(), nodes.map((x) => x.url).sort());
    }
  });
});

Deno.test("lab tracker: a node on a shorter branch adopts the longer chain by fork choice", async () => {
  await withLabNetwork(2, async ([a, b], [builderA, builderB], tracker) => {
    // Both cut at once: A two blocks, B one block at the same height as A's first.
    const onA = [mint(1, 1), mint(2, 2)];
    const onB = [mint(3, 3)];
    await cutEach(a, builderA, onA);
    await cutEach(b, builderB, onB);
    const longer = await a.store.tip();

    await tracker.round();
    // B switched to A's longer branch; its own block's transaction went back to its pool.
    assert.deepEqual(await b.store.tip(), longer);
    assert.equal((await b.store.lookupTx(txId(onB[0])))?.state, "pool");
    // A kept B's block on a side branch and stayed on its own.
    assert.deepEqual(await a.store.tip(), longer);

    // From here on as in the lab: builders run, the tracker relays every 50 ms.
    for (const builder of [builderA, builderB]) builder.start();
    tracker.start(50);
    const all = [...onA, ...onB];
    await poll("one tip with every transaction on both nodes", () => agreed([a, b], all), 20_000);
    const addresses = [addr(1), addr(2), addr(3)];
    const balances = await Promise.all(
      [a, b].map((x) => Promise.all(addresses.map((ad) => x.store.balance(ad)))),
    );
    assert.deepEqual(balances, [[1, 2, 3], [1, 2, 3]]);
    for (const node of [a, b]) await assertEachInOnePlace(node.store, all);
  });
});

Deno.test("lab tracker: nodes fed only by the tracker converge while builders run", async () => {
  await withLabNetwork(3, async (nodes, builders, tracker) => {
    for (const builder of builders) builder.start();
    tracker.start(50);
    const txs: Tx[] = [];
    for (let round = 0; round < 4; round++) {
      const batch = nodes.map((_, i) => mint(10 + i, round + 1));
      await Promise.all(nodes.map((node, i) => sendTo(node, [batch[i]])));
      txs.push(...batch);
    }
    await poll("one tip with every transaction on all nodes", () => agreed(nodes, txs), 20_000);
    for (const node of nodes) await assertEachInOnePlace(node.store, txs);
  });
});
