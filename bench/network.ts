/**
 * The network (issue 8): three `main.ts start --peer` processes on loopback, each with its
 * builder, against the same load on one `start` process in the same run.
 *
 * - Chain throughput: `CHAIN_LOAD.total` mints sent as fast as the nodes acknowledge them (to
 *   all three nodes, or all to the one), timed from the first submit until every one is in the
 *   chain on every node.
 * - Latency: an open-loop load at a fixed rate (half the 3-node throughput, the same rate for
 *   the one node), each transaction timed from its submit until it is in the chain on every
 *   node; p50 and p99 of all of them.
 * - Propagation A -> C through the pools (no builders) and catch-up of a 10,000-block chain.
 *
 * "In the chain on a node" is watched, not sampled: a ChainWatcher per node asks `blocks
 * {locator}` every 20 ms for what follows the chain it saw (a reorg comes back as a lower
 * `fork`, and the ids of the blocks it undid are forgotten until they come back), so every
 * transaction gets the time it entered each node's final chain, and the final check that all
 * are in the chain on all nodes is the same data. Run alone: `deno run -A bench/network.ts
 * [chain|propagation|catchup]`.
 */
import { NodeClient } from "../lib/net/client.ts";
import type { Tx } from "../lib/core/transaction.ts";
import { txId } from "../lib/core/transaction.ts";
import { WsConn } from "../lib/net/ws_conn.ts";
import { makeChainDb } from "./chains.ts";
import { account, GENESIS, tempDir } from "./fixtures.ts";
import { type NodeProcess, startNode } from "./node_proc.ts";
import { networkMarkdown, networkVerdicts, type Results } from "./report.ts";

/** The nodes' network rules, as BENCH_RULES (the chain databases are cut under them). */
const RULE_ARGS = ["--rule", "count", "-k", "1", "--quiet"];
/** The same without `--quiet`, for the chain runs (which may be given `--debug`). */
const RULES = RULE_ARGS.filter((a) => a !== "--quiet");

/** Transaction propagation A -> C. */
export interface PropagationRow {
  samples: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** Catch-up of an empty node from a peer holding `blocks` blocks. */
export interface CatchUpRow {
  blocks: number;
  seconds: number;
  blocksPerSecond: number;
  /** The same chain written locally by `appendBlocks`, blocks/s. */
  localBlocksPerSecond: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))];
}

async function health(node: NodeProcess): Promise<{ height: number; pool: number; links: number }> {
  const url = node.url.replace("ws://", "http://").replace("/ws", "/health");
  return await (await fetch(url)).json();
}

/** Polls `check` every `ms` until true or `timeoutMs` passes (then throws). */
async function until(what: string, check: () => Promise<boolean>, timeoutMs: number, ms = 5) {
  const deadline = performance.now() + timeoutMs;
  while (!await check()) {
    if (performance.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, ms));
  }
}

/** Three linked `serve` processes (no builder: transactions stay in the pools). */
async function startLine(dir: string): Promise<NodeProcess[]> {
  const a = await startNode(`${dir}/a.kv`, { args: RULE_ARGS });
  const b = await startNode(`${dir}/b.kv`, { args: [...RULE_ARGS, "--peer", a.url] });
  const c = await startNode(`${dir}/c.kv`, { args: [...RULE_ARGS, "--peer", b.url] });
  const nodes = [a, b, c];
  await until(
    "three nodes linked",
    async () => {
      const hs = await Promise.all(nodes.map(health));
      return hs.every((h) => h.links >= 1);
    },
    20_000,
    20,
  );
  return nodes;
}

function mint(i: number, t: number): Tx {
  return { sender: GENESIS, receiver: account(i % 1000), amount: 1, t };
}

/**
 * The builders' settings in the chain runs. The count rule with k = 1 lets a block be cut as
 * soon as the pool holds a transaction, so the rule never holds a transaction back: the
 * interval is the builder's check period, 1 s plus a random 0..1 s (`--jitter`, as
 * docs/network.md prescribes for a network of builders), so at most 2 s. Three builders fork
 * when they cut faster than a block crosses the network and is validated: on this machine (two
 * cores shared by three nodes and the load) that is a few hundred ms under load, and with a
 * 0.2 s period the forks ran 10-20 blocks deep (docs/performance.md has those runs). The one
 * node runs with the same flags.
 */
export const BUILD_SLEEP_SECONDS = 1;
export const BUILD_JITTER_SECONDS = 1;
const BUILDER_ARGS = [
  "--sleep",
  String(BUILD_SLEEP_SECONDS),
  "--jitter",
  String(BUILD_JITTER_SECONDS),
];

/** The saturating load: `total` mints from `clients` connections (split over the nodes). */
export const CHAIN_LOAD = {
  total: Number(Deno.env.get("FOXCHAIN_BENCH_CHAIN_TOTAL") ?? 10_000),
  clients: 6,
  batch: 100,
};
/** The paced load for latency: this long, a batch every tick, to the nodes in turn. */
const PACED_SECONDS = 5;
const PACED_TICK_MS = 10;
/** How often each node's chain is read, and the longest wait for every id to be there. */
const WATCH_MS = 20;
const SETTLE_LIMIT_MS = 120_000;

/** For profiling: more node flags (e.g. `--debug`) and a directory for the nodes' logs. */
const EXTRA_ARGS = (Deno.env.get("FOXCHAIN_BENCH_NODE_ARGS") ?? "").split(" ").filter((a) => a);
const LOG_DIR = Deno.env.get("FOXCHAIN_BENCH_LOGS");
/** For profiling: other builder flags than BUILDER_ARGS. */
const BUILDER_OVERRIDE = Deno.env.get("FOXCHAIN_BENCH_BUILDER_ARGS")?.split(" ").filter((a) => a);
/** For profiling: only the first N nodes run a builder (the rest `serve`); default all. */
const BUILDERS = Number(Deno.env.get("FOXCHAIN_BENCH_BUILDERS") ?? Infinity);

/** One chain run: `nodes` builders, the same loads. */
export interface ChainRow {
  nodes: number;
  /** Saturating load: transactions, seconds from first submit to all in every node's chain. */
  transactions: number;
  seconds: number;
  txPerSecond: number;
  /** Submit to in every node's chain under the saturating load (mostly queueing). */
  loadP50Ms: number;
  loadP99Ms: number;
  /** The paced load: its rate (tx/s offered) and submit-to-in-every-chain latency. */
  pacedRate: number;
  pacedTransactions: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Blocks on the final chain (both loads) and reorgs the watchers saw, summed over nodes. */
  blocks: number;
  reorgs: number;
  /** Blocks undone by those reorgs, summed over nodes. */
  undone: number;
}

const note = (text: string) =>
  Deno.env.get("FOXCHAIN_BENCH_QUIET") ? undefined : console.error(`[network] ${text}`);

/** The chain key of a transaction of these loads: its `t` in microseconds (unique here). */
const keyOf = (t: number) => Math.round(t * 1e6);

/**
 * Follows one node's best chain by `blocks {locator}` every WATCH_MS, and records when each
 * transaction entered it. A reorg (a `fork` below what was seen) forgets the undone blocks'
 * transactions; they get a new time when they come back, so `at` is the time each entered the
 * chain the node ends on.
 */
class ChainWatcher {
  readonly at = new Map<number, number>();
  reorgs = 0;
  undone = 0;
  #hashes: string[] = [];
  #keys: number[][] = [];
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();

  private constructor(readonly client: NodeClient) {}

  static async start(url: string): Promise<ChainWatcher> {
    const watcher = new ChainWatcher(await NodeClient.connect(url));
    await watcher.#poll();
    watcher.#loop = (async () => {
      while (!watcher.#stopped) {
        await new Promise((r) => setTimeout(r, WATCH_MS));
        await watcher.#poll();
      }
    })();
    return watcher;
  }

  get height(): number {
    return this.#hashes.length - 1;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#loop;
    await this.client.close();
  }

  /** Newest first: the last 48 hashes seen, then block 0's (a deeper reorg refetches all). */
  #locator(): string[] {
    const n = this.#hashes.length;
    const recent = this.#hashes.slice(Math.max(0, n - 48)).reverse();
    return n > 48 ? [...recent, this.#hashes[0]] : recent;
  }

  async #poll(): Promise<void> {
    for (let page = 0; page < 1_000; page++) {
      const locator = this.#locator();
      const reply = await this.client.request(
        "blocks",
        locator.length > 0 ? { locator, limit: 1_000 } : { start: 0, limit: 1_000 },
      );
      if (reply.status !== 200) throw new Error(`blocks answered ${reply.status}: ${reply.error}`);
      const { blocks, fork, next } = reply.response as {
        blocks: { height: number; hash: string; items: { t: number }[] }[];
        fork?: number;
        next?: number;
      };
      const now = performance.now();
      const keep = fork === undefined ? 0 : fork + 1;
      if (keep < this.#hashes.length) {
        this.reorgs++;
        this.undone += this.#hashes.length - keep;
        for (const keys of this.#keys.slice(keep)) for (const k of keys) this.at.delete(k);
        this.#hashes.length = keep;
        this.#keys.length = keep;
      }
      for (const block of blocks) {
        const keys = block.items.map((item) => keyOf(item.t));
        this.#hashes[block.height] = block.hash;
        this.#keys[block.height] = keys;
        for (const k of keys) this.at.set(k, now);
      }
      if (next === undefined) return;
    }
  }
}

/** A mint of the chain loads: GENESIS pays 1, so it needs no funding and never drops. */
function mintText(i: number, t: number): string {
  return `{"sender":"${GENESIS}","receiver":"${account(i % 1000)}","amount":1,"t":${t}}`;
}

/** Transactions submitted so far in one run: their keys and when each was sent. */
class Submitted {
  readonly keys: number[] = [];
  readonly at: number[] = [];
  #base = 0;

  /** New `t` from now on: a few seconds in the past, inside the admission window (90 s). */
  restamp(): void {
    this.#base = Math.floor(Date.now() / 1000) - 5;
  }

  /** The next `count` transactions as one `merge` request, stamped sent now. */
  merge(count: number): string {
    const items: string[] = [];
    const now = performance.now();
    for (let j = 0; j < count; j++) {
      const i = this.keys.length;
      const t = this.#base + i / 1e6;
      this.keys.push(keyOf(t));
      this.at.push(now);
      items.push(mintText(i, t));
    }
    return `{"op":"merge","args":{"pool":[${items.join(",")}]}}`;
  }
}

/** Waits until every key from `from` is in every watcher's chain; per key, when it was. */
async function settled(
  sub: Submitted,
  from: number,
  watchers: ChainWatcher[],
): Promise<number[]> {
  const deadline = performance.now() + SETTLE_LIMIT_MS;
  while (true) {
    let missing = 0;
    for (let i = from; i < sub.keys.length; i++) {
      if (!watchers.every((w) => w.at.has(sub.keys[i]))) missing++;
    }
    if (missing === 0) break;
    if (performance.now() > deadline) {
      throw new Error(`${missing} transactions not in the chain on every node after 120 s`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const done: number[] = [];
  for (let i = from; i < sub.keys.length; i++) {
    done.push(Math.max(...watchers.map((w) => w.at.get(sub.keys[i])!)));
  }
  return done;
}

async function checkAck(reply: Promise<{ status: number; error?: string }>): Promise<void> {
  const r = await reply;
  if (r.status !== 202) throw new Error(`merge answered ${r.status}: ${r.error}`);
}

/** Sends `total` mints from `clients` connections spread over `urls`, each waiting for its 202. */
async function saturate(sub: Submitted, urls: string[], total: number): Promise<void> {
  const { clients, batch } = CHAIN_LOAD;
  const end = sub.keys.length + total;
  const conns = await Promise.all(
    Array.from({ length: clients }, (_, c) => WsConn.connect(urls[c % urls.length])),
  );
  try {
    await Promise.all(conns.map(async (conn) => {
      while (sub.keys.length < end) {
        await checkAck(conn.send(sub.merge(Math.min(batch, end - sub.keys.length))));
      }
    }));
  } finally {
    await Promise.all(conns.map((c) => (c.close(), c.closed)));
  }
}

/** Sends `rate` mints a second for PACED_SECONDS, a batch per tick to the nodes in turn. */
async function pace(sub: Submitted, urls: string[], rate: number): Promise<void> {
  const conns = await Promise.all(urls.map((u) => WsConn.connect(u)));
  const acks: Promise<void>[] = [];
  try {
    const ticks = (PACED_SECONDS * 1000) / PACED_TICK_MS;
    const started = performance.now();
    let sent = 0;
    for (let tick = 0; tick < ticks; tick++) {
      const due = started + tick * PACED_TICK_MS;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      // Whole transactions per tick, the fraction carried: `rate` a second on average.
      const count = Math.round((tick + 1) * rate * PACED_TICK_MS / 1000) - sent;
      if (count <= 0) continue;
      sent += count;
      acks.push(checkAck(conns[tick % conns.length].send(sub.merge(count))));
    }
    await Promise.all(acks);
  } finally {
    await Promise.all(conns.map((c) => (c.close(), c.closed)));
  }
}

/** `count` `start` processes (builders on), each dialling the one before; waits for the mesh. */
async function startBuilders(dir: string, count: number): Promise<NodeProcess[]> {
  const nodes: NodeProcess[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const peer = i > 0 ? ["--peer", nodes[i - 1].url] : [];
      nodes.push(
        await startNode(`${dir}/n${count}-${i}.kv`, {
          command: i < BUILDERS ? "start" : "serve",
          args: [
            ...RULES,
            ...i < BUILDERS ? (BUILDER_OVERRIDE ?? BUILDER_ARGS) : [],
            ...peer,
            ...EXTRA_ARGS.length ? EXTRA_ARGS : ["--quiet"],
          ],
          logFile: LOG_DIR ? `${LOG_DIR}/n${count}-${i}.log` : undefined,
        }),
      );
    }
    await until(
      "every node linked to every other",
      async () => (await Promise.all(nodes.map(health))).every((h) => h.links >= count - 1),
      20_000,
      20,
    );
  } catch (error) {
    await Promise.all(nodes.map((n) => n.stop()));
    throw error;
  }
  return nodes;
}

/**
 * One chain run on `count` builders: the saturating load, then (once all of it is in every
 * chain) the paced load at `pacedRate`, or at half the saturating rate when not given.
 */
export async function timeChainOn(
  dir: string,
  count: number,
  pacedRate?: number,
): Promise<ChainRow> {
  const nodes = await startBuilders(dir, count);
  const urls = nodes.map((n) => n.url);
  const watchers: ChainWatcher[] = [];
  try {
    for (const url of urls) watchers.push(await ChainWatcher.start(url));
    const sub = new Submitted();
    sub.restamp();
    note(`${count} node(s) up; saturating load of ${CHAIN_LOAD.total}...`);
    await saturate(sub, urls, CHAIN_LOAD.total);
    note(`acknowledged; waiting for every chain (heights ${watchers.map((w) => w.height)})`);
    const loadDone = await settled(sub, 0, watchers);
    const loadLatency = loadDone.map((t, i) => t - sub.at[i]);
    const seconds = (loadDone.reduce((a, b) => Math.max(a, b)) - sub.at[0]) / 1000;
    const txPerSecond = CHAIN_LOAD.total / seconds;

    const rate = pacedRate ?? Math.round(txPerSecond / 2 / 100) * 100;
    const from = sub.keys.length;
    note(`in every chain in ${seconds.toFixed(1)} s; paced load at ${rate} tx/s...`);
    sub.restamp();
    await pace(sub, urls, rate);
    const pacedDone = await settled(sub, from, watchers);
    const latency = pacedDone.map((t, i) => t - sub.at[from + i]);
    note(
      `${count} node(s): ${txPerSecond.toFixed(0)} tx/s; paced p50 ${
        percentile(latency, 0.5).toFixed(0)
      } ms, p99 ${percentile(latency, 0.99).toFixed(0)} ms; reorgs ${
        watchers.map((w) => `${w.reorgs}/${w.undone}`)
      }`,
    );
    return {
      nodes: count,
      transactions: CHAIN_LOAD.total,
      seconds,
      txPerSecond,
      loadP50Ms: percentile(loadLatency, 0.5),
      loadP99Ms: percentile(loadLatency, 0.99),
      pacedRate: rate,
      pacedTransactions: latency.length,
      p50Ms: percentile(latency, 0.5),
      p99Ms: percentile(latency, 0.99),
      maxMs: latency.reduce((a, b) => Math.max(a, b)),
      blocks: watchers[0].height,
      reorgs: watchers.reduce((n, w) => n + w.reorgs, 0),
      undone: watchers.reduce((n, w) => n + w.undone, 0),
    };
  } finally {
    await Promise.all(watchers.map((w) => w.stop()));
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

/** The issue's rows: three builders, then the same loads on one (the reference). */
export async function timeChain(dir: string): Promise<{
  three: ChainRow;
  one: ChainRow;
  intervalSeconds: number;
  jitterSeconds: number;
}> {
  const three = await timeChainOn(dir, 3);
  const one = await timeChainOn(dir, 1, three.pacedRate);
  return { three, one, intervalSeconds: BUILD_SLEEP_SECONDS, jitterSeconds: BUILD_JITTER_SECONDS };
}

/** p50/p95 of submit-to-A until in C's pool, one transaction at a time. */
export async function timePropagation(dir: string, samples = 200): Promise<PropagationRow> {
  const nodes = await startLine(dir);
  const [a, , c] = nodes;
  const toA = await NodeClient.connect(a.url);
  const onC = await NodeClient.connect(c.url);
  const times: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const tx = mint(i, Date.now() / 1000);
      const id = txId(tx);
      const started = performance.now();
      const reply = await toA.request("merge", { pool: [tx] });
      if (reply.status !== 202) throw new Error(reply.error);
      await until(
        `tx ${i} on C`,
        async () => {
          return (await onC.request("tx", { id })).status === 200;
        },
        10_000,
        1,
      );
      times.push(performance.now() - started);
    }
  } finally {
    await toA.close();
    await onC.close();
    await Promise.all(nodes.map((n) => n.stop()));
  }
  return {
    samples,
    p50Ms: percentile(times, 0.5),
    p95Ms: percentile(times, 0.95),
    maxMs: Math.max(...times),
  };
}

/** An empty node catching up a `blocks`-block chain from a `serve` holding it. */
export async function timeCatchUp(dir: string, blocks = 10_000): Promise<CatchUpRow> {
  const chain = await makeChainDb(`${dir}/chain-${blocks}.kv`, blocks);
  const holder = await startNode(chain.path, { args: RULE_ARGS });
  let empty: NodeProcess | undefined;
  try {
    const started = performance.now();
    empty = await startNode(`${dir}/empty.kv`, {
      args: [...(LOG_DIR ? RULES : RULE_ARGS), "--peer", holder.url],
      logFile: LOG_DIR ? `${LOG_DIR}/catchup.log` : undefined,
    });
    await until(
      "the empty node caught up",
      async () => {
        return (await health(empty!)).height === chain.blocks - 1;
      },
      600_000,
      20,
    );
    const seconds = (performance.now() - started) / 1000;
    return {
      blocks: chain.blocks,
      seconds,
      blocksPerSecond: chain.blocks / seconds,
      localBlocksPerSecond: chain.blocks / chain.seconds,
    };
  } finally {
    await empty?.stop();
    await holder.stop();
  }
}

if (import.meta.main) {
  const dir = await tempDir();
  try {
    const parts = Deno.args.length > 0 ? Deno.args : ["chain", "propagation", "catchup"];
    const got: Record<string, unknown> = {};
    for (const part of parts) {
      await Deno.mkdir(`${dir.path}/${part}`);
      const at = `${dir.path}/${part}`;
      if (part === "propagation") got.propagation = await timePropagation(at);
      else if (part === "chain") got.chain = await timeChain(at);
      else if (part === "catchup") got.catchUp = await timeCatchUp(at);
      else throw new Error(`unknown part ${part}: chain, propagation or catchup`);
      console.log(JSON.stringify(got, null, 2));
    }
    if (got.chain && got.propagation && got.catchUp) {
      const network = got as NonNullable<Results["network"]>;
      console.log(networkMarkdown(network).join("\n"));
      for (const v of networkVerdicts(network)) {
        console.log(`${v.met ? "met" : "NOT MET"}: ${v.target}: ${v.measured}`);
      }
    }
  } finally {
    await dir.cleanup();
  }
}
