/**
 * The ceiling for durable ingest: raw Deno KV atomic commits writing exactly the keys a pool
 * add writes (per transaction: check ["tx", id] is absent, set ["tx", id], set ["pool", t, id];
 * per commit: the two counter sums), on a temp file, with 1 and 100 transactions per commit.
 * Ids are made by txId, as the node makes them (time first, then the SHA-256), so the keys land
 * where the node's do; each is measured near 1,000 and near 100,000 rows.
 * Run: deno bench -A bench/kv_bench.ts
 */
import { GENESIS } from "../lib/core/params.ts";
import { txId } from "../lib/core/transaction.ts";
import { account, LARGE_TABLE, T0, tempDir } from "./fixtures.ts";

/** The "near 1,000" table is emptied whenever it passes this, so it stays 0-2,000. */
const SMALL_TABLE_MAX = 2_000;

const dir = await tempDir();
let serial = 0;

/** One atomic commit of `count` new transactions, as Store.addToPool writes them. */
async function commitTxs(kv: Deno.Kv, count: number): Promise<void> {
  const op = kv.atomic();
  for (let i = 0; i < count; i++) {
    const n = serial++;
    const tx = { sender: GENESIS, receiver: account(n % 1000), amount: 1, t: T0 + n / 1e6 };
    const id = txId(tx);
    op.check({ key: ["tx", id], versionstamp: null })
      .set(["tx", id], { state: "pool", tx })
      .set(["pool", tx.t, id], tx);
  }
  op.sum(["poolsize"], BigInt(count)).sum(["poolgen"], 1n);
  const result = await op.commit();
  if (!result.ok) throw new Error("a fresh id conflicted");
}

/** A KV file that stays small: reopened empty once it holds SMALL_TABLE_MAX transactions. */
class SmallTable {
  #kv: Deno.Kv | null = null;
  #rows = 0;
  #files = 0;
  async get(): Promise<Deno.Kv> {
    if (this.#kv && this.#rows < SMALL_TABLE_MAX) return this.#kv;
    this.#kv?.close();
    this.#kv = await Deno.openKv(`${dir.path}/small-${this.#files++}.kv`);
    this.#rows = 0;
    return this.#kv;
  }
  count(n: number) {
    this.#rows += n;
  }
}

const small1 = new SmallTable();
const small100 = new SmallTable();
const large = await Deno.openKv(`${dir.path}/large.kv`);
for (let i = 0; i < LARGE_TABLE; i += 100) await commitTxs(large, 100);

for (const [count, table] of [[1, small1], [100, small100]] as const) {
  Deno.bench({
    name: `${count} tx per commit, table near 1,000`,
    group: `kv ${count}`,
    baseline: true,
    n: count === 1 ? 1000 : 100,
    warmup: 5,
  }, async (b) => {
    const kv = await table.get(); // reopening an emptied table is not measured
    b.start();
    await commitTxs(kv, count);
    b.end();
    table.count(count);
  });
  Deno.bench({
    name: `${count} tx per commit, table near 100,000`,
    group: `kv ${count}`,
    n: count === 1 ? 1000 : 100,
    warmup: 5,
  }, async () => {
    await commitTxs(large, count);
  });
}

globalThis.addEventListener("unload", () => {
  large.close();
  Deno.removeSync(dir.path, { recursive: true });
});
