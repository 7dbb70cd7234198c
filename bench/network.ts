/**
 * The network: three `main.ts serve --peer` processes on loopback (B dials A, C dials B; they
 * share addresses, so C soon links to A as well). Measured: how long a transaction sent to A
 * takes to be in C's pool (p50/p95), how many transactions a second reach C's pool under load
 * sent to A, and how fast an empty node catches up a 10,000-block chain from a peer (blocks/s,
 * against the local `appendBlocks` rate of the same chain). Run alone: `deno run -A
 * bench/network.ts`.
 */
import { NodeClient } from "../lib/net/client.ts";
import type { Tx } from "../lib/core/transaction.ts";
import { txId } from "../lib/core/transaction.ts";
import { makeChainDb } from "./chains.ts";
import { account, GENESIS, tempDir } from "./fixtures.ts";
import { type NodeProcess, startNode } from "./node_proc.ts";

/** The nodes' network rules, as BENCH_RULES (the chain databases are cut under them). */
const RULE_ARGS = ["--rule", "count", "-k", "1", "--quiet"];

/** Transaction propagation A -> C. */
export interface PropagationRow {
  samples: number;
  p50Ms: number;
  p95Ms: number;
  maxMs: number;
}

/** Relay throughput: load sent to A, counted in C's pool. */
export interface RelayRow {
  transactions: number;
  seconds: number;
  txPerSecond: number;
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

/** Transactions/s reaching C's pool while `clients` send batches of `batch` to A. */
export async function timeRelay(
  dir: string,
  total = 20_000,
  clients = 10,
  batch = 100,
): Promise<RelayRow> {
  const nodes = await startLine(dir);
  const [a, , c] = nodes;
  try {
    const t0 = Date.now() / 1000;
    const started = performance.now();
    const per = Math.ceil(total / clients);
    await Promise.all(Array.from({ length: clients }, async (_, k) => {
      const client = await NodeClient.connect(a.url);
      try {
        for (let i = k * per; i < Math.min(total, (k + 1) * per); i += batch) {
          const pool = Array.from(
            { length: Math.min(batch, total - i) },
            (_, j) => mint(i + j, t0 + (i + j) / 1e6),
          );
          const reply = await client.request("merge", { pool });
          if (reply.status !== 202) throw new Error(reply.error);
        }
      } finally {
        await client.close();
      }
    }));
    await until(
      "every transaction in C's pool",
      async () => {
        return (await health(c)).pool >= total;
      },
      120_000,
      10,
    );
    const seconds = (performance.now() - started) / 1000;
    return { transactions: total, seconds, txPerSecond: total / seconds };
  } finally {
    await Promise.all(nodes.map((n) => n.stop()));
  }
}

/** An empty node catching up a `blocks`-block chain from a `serve` holding it. */
export async function timeCatchUp(dir: string, blocks = 10_000): Promise<CatchUpRow> {
  const chain = await makeChainDb(`${dir}/chain-${blocks}.kv`, blocks);
  const holder = await startNode(chain.path, { args: RULE_ARGS });
  let empty: NodeProcess | undefined;
  try {
    const started = performance.now();
    empty = await startNode(`${dir}/empty.kv`, { args: [...RULE_ARGS, "--peer", holder.url] });
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
    const parts = Deno.args.length > 0 ? Deno.args : ["propagation", "relay", "catchup"];
    for (const part of parts) {
      await Deno.mkdir(`${dir.path}/${part}`);
      const at = `${dir.path}/${part}`;
      if (part === "propagation") console.log(await timePropagation(at));
      else if (part === "relay") console.log(await timeRelay(at));
      else if (part === "catchup") console.log(await timeCatchUp(at));
      else throw new Error(`unknown part ${part}: propagation, relay or catchup`);
    }
  } finally {
    await dir.cleanup();
  }
}
