/**
 * `foxchain send` retries safely: a node that stores the transfer but loses the connection
 * before its reply (as one killed or restarted at that moment would) gets the same request
 * again, stores nothing more, and `send` prints the one id.
 */
import assert from "node:assert/strict";
import { Protocol } from "../lib/node/protocol.ts";
import { openStore } from "../lib/store/store.ts";
import { txId } from "../lib/core/transaction.ts";
import { BF2 } from "./fixtures/helpers.ts";
import { runMain } from "./fixtures/node.ts";

/**
 * A node whose first `drops` connections run the request they get and then close without a
 * reply; the ones after answer normally. Returns its URL, what it saw, and a stop function.
 */
async function forgetfulNode(drops: number) {
  const store = await openStore(":memory:");
  const protocol = new Protocol(store);
  const seen: string[] = [];
  let connections = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    const drop = ++connections <= drops;
    socket.onmessage = async (event) => {
      seen.push(String(event.data));
      const reply = await protocol.handle(String(event.data));
      if (drop) socket.close(1011, "lost");
      else socket.send(JSON.stringify(reply));
    };
    return response;
  });
  return {
    url: `ws://127.0.0.1:${server.addr.port}/ws`,
    store,
    seen,
    async stop() {
      await server.shutdown();
      await store.close();
    },
  };
}

Deno.test("send retries a merge whose reply was lost: stored once, the one id printed", async () => {
  const node = await forgetfulNode(2);
  try {
    const out = await runMain(["send", "--to", BF2, "--amount", "5", "-n", node.url]);
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /retry 1 of 5/);
    assert.match(out.stderr, /retry 2 of 5/);
    const [id, answer] = out.stdout.trim().split("\n");
    assert.equal(answer, "node: 202 Accepted");
    const pool = (await node.store.poolPage(10)).txs;
    assert.deepEqual(pool.map(txId), [id]);
    // Three tries of one request: the same request id each time.
    const keys = node.seen.map((m) => JSON.parse(m).args.request_id);
    assert.equal(keys.length, 3);
    assert.equal(new Set(keys).size, 1);
  } finally {
    await node.stop();
  }
});

Deno.test("send gives up after --retries and says how to find out whether it arrived", async () => {
  const node = await forgetfulNode(10);
  try {
    const out = await runMain([
      "send",
      "--to",
      BF2,
      "--amount",
      "5",
      "--retries",
      "1",
      "-n",
      node.url,
    ]);
    assert.equal(out.code, 1);
    assert.match(
      out.stderr,
      /gave up after 1 retries\); transaction \d{16}-[0-9a-f]{64} may or may not have arrived: "foxchain tx /,
    );
    assert.equal((await node.store.poolStats()).size, 1);
  } finally {
    await node.stop();
  }
});
