/**
 * Full-ledger validation against the raw SHA-256 rate of node:crypto over the same bytes:
 * the canonical encodings validation hashes (each item's chain hash, each transaction's id,
 * each block's hash). Run: deno bench -A bench/verify_bench.ts
 */
import { createHash } from "node:crypto";
import { blockHash, itemTx } from "../lib/core/block.ts";
import { canonicalJson, type Json } from "../lib/core/hash.ts";
import { openStore } from "../lib/store/store.ts";
import { verifyStore } from "../lib/store/audit.ts";
import { verifyBlocks } from "../lib/consensus/verify.ts";
import { BENCH_RULES, memoryChain, tempDir, VERIFY_CHAIN } from "./fixtures.ts";

const blocks = memoryChain(VERIFY_CHAIN.accounts, VERIFY_CHAIN.transfers);

// The exact strings validation hashes, encoded once, outside the timed part.
const encoded: string[] = [];
for (const block of blocks) {
  for (const item of block.items) {
    encoded.push(canonicalJson(item as unknown as Json));
    encoded.push(canonicalJson(itemTx(item) as unknown as Json));
  }
  encoded.push(
    canonicalJson({ items: block.items as unknown as Json[], prev_hash: block.prev_hash }),
  );
}
if (
  blockHash(blocks[0].items, null) !==
    createHash("sha256").update(encoded[2 * blocks[0].items.length]).digest("hex")
) {
  throw new Error("the raw hash does not hash what validation hashes");
}

const dir = await tempDir();
const store = await openStore(`${dir.path}/verify.kv`, { rules: BENCH_RULES });
for (let i = 0; i < blocks.length; i++) {
  const result = await store.appendBlock(blocks[i]);
  if (!result.ok) throw new Error(result.reason);
}

Deno.bench({
  name: "raw sha256 of the same encodings",
  group: "verify",
  baseline: true,
  n: 10,
  warmup: 2,
}, () => {
  for (const text of encoded) createHash("sha256").update(text).digest("hex");
});

Deno.bench({ name: "verifyBlocks (in memory)", group: "verify", n: 10, warmup: 2 }, async () => {
  const verdict = await verifyBlocks(blocks, BENCH_RULES);
  if (!verdict.ok) throw new Error(verdict.reason);
});

Deno.bench(
  { name: "verifyStore (Deno KV file)", group: "verify", n: 10, warmup: 2 },
  async () => {
    const verdict = await verifyStore(store);
    if (!verdict.ok) throw new Error(verdict.reason);
  },
);

globalThis.addEventListener("unload", () => {
  store.kv.close();
  Deno.removeSync(dir.path, { recursive: true });
});
