/**
 * The store against Deno KV's limit on one atomic commit's keys: at most 80 KiB of encoded
 * keys written. Peers are committed in chunks; a run of blocks whose keys would not fit is
 * refused before it is tried, and the key sizes the store counts are KV's own.
 */
import assert from "node:assert/strict";
import { type Block, makeBlock } from "../lib/core/block.ts";
import { MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import { COMMIT_LIMITS, encodedKeySize } from "../lib/store/kv.ts";
import { addr, GENESIS, T0, tx, withStore } from "./fixtures/helpers.ts";

/** The most bytes of keys the store lets one commit write. */
const MAX_RUN_KEY_BYTES = COMMIT_LIMITS.keyBytes;

/** KV's own cap on the keys one atomic writes. */
const KV_MAX_TOTAL_KEY_BYTES = 81_920;

Deno.test("encodedKeySize counts keys as KV does: 81,920 bytes commit, one more does not", async () => {
  const kv = await Deno.openKv(":memory:");
  try {
    // Strings with multi-byte characters and NULs, and numbers, as the store's keys have.
    const keys = (last: number) =>
      Array.from({ length: 80 }, (_, i): Deno.KvKey => {
        const part = `${String(i).padStart(3, "0")}é\0`;
        const key: Deno.KvKey = ["k", i, part];
        const pad = 1024 - encodedKeySize(key) + (i === 79 ? last : 0);
        return ["k", i, part + "x".repeat(pad)];
      });
    const total = (ks: Deno.KvKey[]) => ks.reduce((sum, k) => sum + encodedKeySize(k), 0);
    const commit = (ks: Deno.KvKey[]) => {
      const op = kv.atomic();
      for (const k of ks) op.set(k, 1);
      return op.commit();
    };
    assert.equal(total(keys(0)), KV_MAX_TOTAL_KEY_BYTES);
    assert.equal((await commit(keys(0))).ok, true);
    assert.equal(total(keys(1)), KV_MAX_TOTAL_KEY_BYTES + 1);
    await assert.rejects(() => commit(keys(1)), /Total key size too large/);
  } finally {
    kv.close();
  }
});

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

/** `n` blocks of `size` mints from GENESIS to one receiver, chained from height 0. */
function mintRun(n: number, size: number): Block[] {
  const blocks: Block[] = [];
  let prev: string | null = null;
  for (let h = 0; h < n; h++) {
    const txs = Array.from(
      { length: size },
      (_, i) => tx(GENESIS, addr(0), 1, T0 + (h * size + i) / 1000),
    );
    const block = makeBlock(h, prev, txs);
    blocks.push(block);
    prev = block.hash;
  }
  return blocks;
}

Deno.test("appendBlocks refuses a run whose keys would exceed one commit's, before trying it", async () => {
  await withStore(async (store) => {
    // 960 transaction keys of 87 bytes: 83,520 bytes, while the mutations (about 980) fit.
    const result = await store.appendBlocks(mintRun(4, MAX_BLOCK_ITEMS));
    assert.equal(result.ok, false);
    assert.ok(!result.ok);
    assert.equal(result.conflict, false);
    assert.match(result.reason, /^run of 4 blocks writes \d+ bytes of keys; one commit takes/);
    assert.deepEqual(await store.tip(), { height: -1, hash: null, time: null });
    assert.equal(await store.block(0), null);
    assert.equal(await store.balance(addr(0)), 0);
  });
});

Deno.test("appendBlocks takes a run whose keys fit (3 blocks of MAX_BLOCK_ITEMS)", async () => {
  await withStore(async (store) => {
    const blocks = mintRun(3, MAX_BLOCK_ITEMS);
    const result = await store.appendBlocks(blocks);
    assert.ok(result.ok, result.ok ? "" : result.reason);
    assert.equal((await store.tip()).height, 2);
    assert.equal(await store.balance(addr(0)), 3 * MAX_BLOCK_ITEMS);
  });
});

Deno.test("the largest block's keys fit under MAX_RUN_KEY_BYTES, with room to spare", () => {
  // The worst case: MAX_BLOCK_ITEMS pool transactions between distinct addresses, each
  // writing its record, deleting its pool entry and setting two balances of its own.
  const id = `${"1".repeat(16)}-${"f".repeat(64)}`;
  const perTx = encodedKeySize(["tx", id]) + encodedKeySize(["pool", T0, id]) +
    2 * encodedKeySize(["bal", addr(0)]);
  // The block itself: its body parts and header by hash, its height index entry, the side
  // index entry it may leave, the tip and the pool counter.
  const hash = "e".repeat(64);
  const fixed = 3 * encodedKeySize(["body", hash, 0]) + encodedKeySize(["blk", hash]) +
    encodedKeySize(["main", 0]) + encodedKeySize(["side", 0, hash]) + encodedKeySize(["tip"]) +
    encodedKeySize(["poolsize"]);
  const worst = MAX_BLOCK_ITEMS * perTx + fixed;
  assert.equal(perTx, 87 + 98 + 2 * 43);
  assert.ok(worst <= MAX_RUN_KEY_BYTES, `${worst} > ${MAX_RUN_KEY_BYTES}`);
  assert.ok(MAX_RUN_KEY_BYTES < KV_MAX_TOTAL_KEY_BYTES);
});
