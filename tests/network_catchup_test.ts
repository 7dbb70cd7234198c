/**
 * Catch-up over real WebSocket links, in one process: an empty node given a peer holding a
 * 10,000-block chain (20 catch-up pages, 10 `blocks` replies' worth) ends on the same tip with
 * the same balances. In-memory stores: ~17 s here; on KV files, in processes, it is measured in
 * `deno task bench` (bench/network.ts, ~46 s).
 */
import assert from "node:assert/strict";
import { type Block, makeBlock } from "../lib/core/block.ts";
import { Network } from "../lib/net/network.ts";
import { addr, GENESIS, T0 } from "./fixtures/helpers.ts";
import { poll, startNode, type TestNode } from "./fixtures/node.ts";

const BLOCKS = 10_000;

Deno.test(`network: an empty node catches up ${BLOCKS} blocks from its peer, page by page`, async () => {
  const holder = await startNode();
  const empty = await startNode();
  const networks: Network[] = [];
  try {
    let prev: string | null = null;
    const chain: Block[] = [];
    for (let h = 0; h < BLOCKS; h++) {
      const block = makeBlock(h, prev, [
        { sender: GENESIS, receiver: addr(h % 10), amount: 1, t: T0 + h },
      ]);
      chain.push(block);
      prev = block.hash;
    }
    for (let i = 0; i < chain.length; i += 150) {
      const result = await holder.store.appendBlocks(chain.slice(i, i + 150));
      assert.ok(result.ok, !result.ok ? result.reason : "");
    }
    const link = (node: TestNode, peers: string[]) => {
      const network = new Network({
        store: node.store,
        protocol: node.protocol,
        name: "catch-up",
        listen: node.url,
        peers,
        timings: { pageBlocks: 500 },
      });
      networks.push(network);
      return network.start();
    };
    await link(holder, []);
    await link(empty, [holder.url]);
    await poll(
      "the empty node at the holder's tip",
      async () => {
        return (await empty.store.tip()).hash === chain[BLOCKS - 1].hash;
      },
      60_000,
      50,
    );
    for (let i = 0; i < 10; i++) {
      assert.equal(await empty.store.balance(addr(i)), await holder.store.balance(addr(i)));
    }
    assert.equal(await empty.store.balance(addr(0)), BLOCKS / 10);
  } finally {
    await Promise.all(networks.map((n) => n.stop()));
    await empty.close();
    await holder.close();
  }
});
