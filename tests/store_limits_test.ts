/**
 * The store against Deno KV's limit on one atomic commit's keys: at most 80 KiB of encoded
 * keys written. Peers are committed in chunks.
 */
import assert from "node:assert/strict";
import { openStore, type Store } from "../lib/store.ts";
import { verifyStore } from "../lib/verify.ts";

async function withStore(body: (store: Store) => Promise<void>) {
  const store = await openStore(":memory:");
  try {
    await body(store);
    const verdict = await verifyStore(store, { indexes: true });
    assert.ok(verdict.ok, JSON.stringify(verdict));
  } finally {
    await store.close();
  }
}

Deno.test("addPeers stores 1,000 long URLs (more than one atomic's keys can hold)", async () => {
  await withStore(async (store) => {
    // About 500 bytes each: 1,000 of them are about 500 KB of keys, six times KV's cap.
    const urls = Array.from(
      { length: 1000 },
      (_, i) => `ws://peer-${String(i).padStart(4, "0")}.example:9000/${"p".repeat(470)}`,
    );
    assert.ok(urls.every((u) => u.length >= 490 && u.length <= 512));
    assert.equal(await store.addPeers(urls), 1000);
    assert.deepEqual(await store.peers(), [...urls].sort());
    assert.equal(await store.addPeers(urls), 0);
    assert.equal(await store.addPeers([...urls.slice(0, 10), "ws://new:9000/ws"]), 1);
    assert.equal((await store.peers()).length, 1001);
  });
});
