/**
 * Store lookups against chain length: a balance, a transaction by id and a block by height,
 * each one point read, on chains of 1,000 and 100,000 blocks. Run:
 * deno bench -A bench/lookup_bench.ts (it makes its chains, ~20 s, unless bench/run.ts passes
 * them in FOXCHAIN_BENCH_CHAINS).
 */
import { openStore, type Store } from "../lib/store/store.ts";
import { CHAIN_LENGTHS, type ChainDb, chainsFromEnv, makeChainDb } from "./chains.ts";
import { account, BENCH_RULES, tempDir } from "./fixtures.ts";

let dbs = chainsFromEnv();
const own = dbs ? null : await tempDir();
if (own) {
  dbs = [];
  for (const blocks of CHAIN_LENGTHS) {
    dbs.push(await makeChainDb(`${own.path}/c${blocks}.kv`, blocks));
  }
}

/** A tiny deterministic generator, so both chains get the same sequence of lookups. */
function picker(seed: number) {
  let x = seed;
  return (n: number) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
}

const stores: Store[] = [];
for (const db of dbs as ChainDb[]) {
  const store = await openStore(db.path, { rules: BENCH_RULES });
  stores.push(store);
  const label = `${db.blocks.toLocaleString("en-US")} blocks`;
  const pick = picker(42);
  Deno.bench({ name: `balance, ${label}`, group: "balance" }, async () => {
    await store.balance(account(pick(db.accounts)));
  });
  Deno.bench({ name: `tx by id, ${label}`, group: "tx" }, async () => {
    if (!(await store.lookupTx(db.sampleIds[pick(db.sampleIds.length)]))) throw new Error("lost");
  });
  Deno.bench({ name: `block by height, ${label}`, group: "block" }, async () => {
    if (!(await store.block(pick(db.blocks)))) throw new Error("missing block");
  });
}

globalThis.addEventListener("unload", () => {
  for (const store of stores) store.kv.close();
  if (own) Deno.removeSync(own.path, { recursive: true });
});
