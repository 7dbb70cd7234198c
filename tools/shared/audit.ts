/**
 * Audits of a stored ledger after an attack, each recording what it finds in a Summary:
 * `foxchain verify --indexes` as a user runs it, every stored transaction valid and known,
 * every acknowledged transfer stored exactly once, balances equal to a recount from the chain,
 * and no keys outside the schema. The chaos and fuzz tools and the tests share them.
 */
import { checkTxFields, txId } from "../../lib/core/transaction.ts";
import { K } from "../../lib/store/schema.ts";
import type { Store } from "../../lib/store/store.ts";
import { MainProcess } from "./main_process.ts";
import type { Summary } from "./summary.ts";

/** Where each transaction is, from three independent sources: chain, pool entries, records. */
export async function placesOf(store: Store): Promise<{
  chain: Map<string, number>;
  pool: Set<string>;
  dropped: Set<string>;
}> {
  const chain = new Map<string, number>();
  for await (const block of store.allBlocks()) {
    for (const item of block.items) {
      const id = txId(item);
      chain.set(id, (chain.get(id) ?? 0) + 1);
    }
  }
  const pool = new Set<string>();
  for await (const [id] of store.allPoolEntries()) pool.add(id);
  const dropped = new Set<string>();
  for await (const [id, record] of store.allTxRecords()) {
    if (record.state === "dropped") dropped.add(id);
  }
  return { chain, pool, dropped };
}

/**
 * Runs `foxchain verify --indexes --json` on a KV file, under the network's rule flags
 * (`ruleArgs`, e.g. `--rule count -k 5`; none for the defaults); a failure is a violation.
 */
export async function verifyCli(
  db: string,
  summary: Summary,
  context: string,
  ruleArgs: readonly string[] = [],
): Promise<void> {
  const p = new MainProcess(["verify", "--indexes", "--json", "-r", db, ...ruleArgs]);
  const status = await p.finished();
  summary.add("verify --indexes runs");
  if (status.code !== 0) {
    summary.violate(`${context}: verify --indexes failed: ${(p.stdout + p.stderr).trim()}`);
  }
}

/**
 * The key prefixes of the store's schema, read from its one list of keys (lib/store/schema.ts),
 * so a key added there is known here.
 */
export const SCHEMA_PREFIXES: readonly string[] = [
  ...new Set(
    Object.values(K).map((key) =>
      String(
        (typeof key === "function" ? (key as (...a: unknown[]) => Deno.KvKey)("x", 0) : key)[0],
      )
    ),
  ),
];

/** Every key has a schema prefix, and every peer is a ws:// or wss:// URL of at most 512 bytes. */
export async function checkSchema(store: Store, summary: Summary, context: string): Promise<void> {
  const prefixes = new Set(SCHEMA_PREFIXES);
  const encoder = new TextEncoder();
  for await (const entry of store.kv.list({ prefix: [] })) {
    const head = entry.key[0];
    if (typeof head !== "string" || !prefixes.has(head)) {
      summary.violate(`${context}: key outside the schema: ${JSON.stringify(entry.key)}`);
    }
  }
  for (const url of await store.peers()) {
    if (!/^wss?:\/\//.test(url) || encoder.encode(url).length > 512) {
      summary.violate(`${context}: stored peer is not a ws URL of at most 512 bytes: ${url}`);
    }
  }
}

/** What a client acknowledged, by transfer: each transfer has a tag (its unique amount). */
export interface Sent {
  /** Tag of every transfer sent, mapped to the id acknowledged for it, or null if none was. */
  byAmount: Map<number, string | null>;
}

/**
 * The transfers audit. Every stored transaction must be valid and one that was sent (its
 * amount a tag); no transfer may be stored under two ids (a retry that added it again); an
 * acknowledged transfer must be stored, under the acknowledged id, in exactly one place (once
 * in the chain, or in the pool, or dropped with a reason), and its record must say so.
 * Counts transfers stored but never acknowledged (a reply lost to a kill).
 */
export async function auditTransfers(
  store: Store,
  sent: Sent | null,
  summary: Summary,
  context: string,
): Promise<void> {
  const { chain, pool, dropped } = await placesOf(store);
  const idsByAmount = new Map<number, string[]>();
  let records = 0;
  for await (const [id, record] of store.allTxRecords()) {
    records++;
    const bad = checkTxFields(record.tx);
    if (bad) summary.violate(`${context}: invalid transaction stored: ${id}: ${bad}`);
    if (record.state === "dropped" && !record.reason) {
      summary.violate(`${context}: ${id} is dropped without a reason`);
    }
    const ids = idsByAmount.get(record.tx.amount) ?? [];
    ids.push(id);
    idsByAmount.set(record.tx.amount, ids);
  }
  summary.set("transactions stored", records);
  summary.set("in chain", chain.size);
  summary.set("in pool", pool.size);
  summary.set("dropped", dropped.size);
  for (const [id, n] of chain) {
    if (n > 1) summary.violate(`${context}: ${id} is in the chain ${n} times`);
  }
  if (!sent) return;
  let unacked = 0;
  for (const [amount, ids] of idsByAmount) {
    if (!sent.byAmount.has(amount)) {
      summary.violate(`${context}: stored transaction nobody sent: ${ids.join(", ")}`);
    } else if (ids.length > 1) {
      summary.violate(`${context}: transfer ${amount} stored ${ids.length} times: ${ids}`);
    } else if (sent.byAmount.get(amount) === null) {
      unacked++;
    }
  }
  summary.set("stored, never acknowledged", unacked);
  let acked = 0;
  for (const [amount, id] of sent.byAmount) {
    if (id === null) continue;
    acked++;
    const ids = idsByAmount.get(amount) ?? [];
    if (!ids.includes(id)) {
      summary.violate(`${context}: acknowledged ${id} is not stored (found ${ids.length})`);
      continue;
    }
    const places = (chain.get(id) ?? 0) + (pool.has(id) ? 1 : 0) + (dropped.has(id) ? 1 : 0);
    if (places !== 1) summary.violate(`${context}: acknowledged ${id} is in ${places} places`);
  }
  summary.set("acknowledged, all found", acked);
}

/**
 * Balances recounted from the chain with plain sums (not the code the node uses) must equal
 * every stored balance, and every address the chain touches must have its balance stored.
 */
export async function recountBalances(
  store: Store,
  summary: Summary,
  context: string,
): Promise<void> {
  const recount = new Map<string, number>();
  for await (const block of store.allBlocks()) {
    for (const { sender, receiver, amount } of block.items) {
      recount.set(sender, (recount.get(sender) ?? 0) - amount);
      recount.set(receiver, (recount.get(receiver) ?? 0) + amount);
    }
  }
  const stored = new Map<string, number>();
  for await (const [address, value] of store.allBalances()) stored.set(address, value);
  for (const address of new Set([...recount.keys(), ...stored.keys()])) {
    const want = recount.get(address) ?? 0;
    const have = stored.get(address) ?? 0;
    if (want !== have) {
      summary.violate(`${context}: balance of ${address} is ${have}, the chain says ${want}`);
    }
  }
  summary.set("addresses recounted", recount.size);
}

/** What one node of a network stored, for `auditNetworkTransfers`. */
export interface NodeLedger {
  /** The node's name in reports (its KV file). */
  name: string;
  /** Where each transaction is on that node. */
  places: Awaited<ReturnType<typeof placesOf>>;
  /** The ids stored for each transfer tag (amount). */
  idsByAmount: Map<number, string[]>;
}

/** The ledger of one node: where each transaction is, and the ids stored per transfer tag. */
export async function nodeLedger(store: Store, name: string): Promise<NodeLedger> {
  const idsByAmount = new Map<number, string[]>();
  for await (const [id, record] of store.allTxRecords()) {
    const ids = idsByAmount.get(record.tx.amount) ?? [];
    ids.push(id);
    idsByAmount.set(record.tx.amount, ids);
  }
  return { name, places: await placesOf(store), idsByAmount };
}

/**
 * The transfers audit of a network, after it settled: a transfer acknowledged by any node must
 * be in the chain exactly once on every node, or in no chain and dropped with a reason on some
 * node (a node drops what it cannot admit; a drop is not gossiped, so the others may never have
 * seen it). On no node may it wait in the pool or be dropped and chained at once. Across the
 * nodes a transfer is stored under one id only (a retry elsewhere that stamped it anew would
 * show as two), and every stored transfer was sent.
 */
export function auditNetworkTransfers(
  nodes: readonly NodeLedger[],
  sent: Sent,
  summary: Summary,
  context: string,
): void {
  const idsByAmount = new Map<number, Set<string>>();
  for (const node of nodes) {
    for (const [amount, ids] of node.idsByAmount) {
      const all = idsByAmount.get(amount) ?? new Set();
      for (const id of ids) all.add(id);
      idsByAmount.set(amount, all);
    }
  }
  let unacked = 0;
  for (const [amount, ids] of idsByAmount) {
    if (!sent.byAmount.has(amount)) {
      summary.violate(`${context}: stored transaction nobody sent: ${[...ids].join(", ")}`);
    } else if (ids.size > 1) {
      summary.violate(`${context}: transfer ${amount} stored under ${ids.size} ids: ${[...ids]}`);
    } else if (sent.byAmount.get(amount) === null) {
      unacked++;
    }
  }
  summary.set("stored, never acknowledged", unacked);
  let acked = 0;
  let dropped = 0;
  for (const [, id] of sent.byAmount) {
    if (id === null) continue;
    acked++;
    const chained = nodes.map((n) => n.places.chain.get(id) ?? 0);
    const droppedOn = nodes.filter((n) => n.places.dropped.has(id));
    const pooledOn = nodes.filter((n) => n.places.pool.has(id));
    if (pooledOn.length > 0) {
      summary.violate(
        `${context}: acknowledged ${id} still waits in the pool of ${pooledOn[0].name}`,
      );
    }
    if (chained.every((c) => c === 1)) {
      if (droppedOn.length > 0) {
        summary.violate(
          `${context}: acknowledged ${id} is chained and dropped on ${droppedOn[0].name}`,
        );
      }
    } else if (chained.every((c) => c === 0)) {
      if (droppedOn.length === 0) {
        summary.violate(`${context}: acknowledged ${id} is lost: in no chain, dropped nowhere`);
      } else dropped++;
    } else {
      summary.violate(
        `${context}: acknowledged ${id} is in the chains ${chained.join("/")} times (${
          nodes.map((n) => n.name).join("/")
        })`,
      );
    }
  }
  summary.set("acknowledged, all found", acked);
  summary.set("acknowledged, then dropped", dropped);
}
