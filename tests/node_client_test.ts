/**
 * NodeClient, the CLI's client: a request past its deadline and a node that is gone both end
 * in NodeUnreachable with one line a person can act on, the link's typed error as its cause.
 */
import assert from "node:assert/strict";
import { DeadlineExceeded } from "../lib/net/link.ts";
import { NodeClient, NodeUnreachable } from "../lib/net/client.ts";
import { withNode } from "./fixtures/node.ts";
import { type RawPeer, withRawServer } from "./fixtures/raw_ws_server.ts";

async function ignoring(peer: RawPeer): Promise<void> {
  while (await peer.readFrame());
}

Deno.test("a NodeClient request past its deadline rejects with NodeUnreachable", async () => {
  await withRawServer(ignoring, async (server) => {
    const client = await NodeClient.connect(server.url, { deadlineMs: 60_000 });
    try {
      await assert.rejects(client.request("status", undefined, { deadlineMs: 50 }), (e) => {
        assert.ok(e instanceof NodeUnreachable);
        assert.equal(e.message, `no reply to "status" from ${server.url} within 50 ms`);
        assert.ok(e.cause instanceof DeadlineExceeded);
        return true;
      });
    } finally {
      await client.close();
    }
  });
});

Deno.test("a NodeClient whose node shuts down rejects with 'connection to ... closed'", async () => {
  await withNode(async (node) => {
    const client = await NodeClient.connect(node.url);
    try {
      assert.equal((await client.request("time")).status, 200);
      await node.server.shutdown();
      await assert.rejects(client.request("time"), (e) => {
        assert.ok(e instanceof NodeUnreachable);
        assert.match(e.message, new RegExp(`^connection to ${node.url} closed: `));
        return true;
      });
    } finally {
      await client.close();
    }
  });
});
