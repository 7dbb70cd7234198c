/**
 * `deno task bench`: the whole benchmark suite in one run (a few minutes on 2 cores). Writes
 * bench/results/latest.json and latest.md. Every measurement runs on this machine in this
 * run, so the ratios compare like with like. Only 127.0.0.1 is used.
 *
 * Order: Deno.bench micro parts (raw KV ceiling, verify), ingest over WebSocket against a
 * `main.ts serve` subprocess, block building, chain databases, lookups and start-up, and last
 * the node's memory with a 100,000-transaction pool on the 100,000-block chain.
 */
import { runBenchFiles, stat } from "./bench_json.ts";
import { timeBuild } from "./build.ts";
import { timeChainNode } from "./chain_node.ts";
import { CHAIN_LENGTHS, type ChainDb, chainsToEnv, makeChainDb } from "./chains.ts";
import { LARGE_TABLE, tempDir, VERIFY_CHAIN } from "./fixtures.ts";
import { ingest } from "./load.ts";
import { startNode } from "./node_proc.ts";
import { renderMarkdown, type Results } from "./report.ts";
import { timePeerApply, timeReorg } from "./reorg.ts";
import { timeCatchUp, timeChain, timePropagation } from "./network.ts";
import { timeSigned } from "./signed.ts";

/** Ingest configurations; `to` is where the pool is read as "large" (see the table). */
const INGEST = [
  { clients: 50, batch: 100, to: 100_000 },
  { clients: 50, batch: 1, to: 100_000 },
  { clients: 1, batch: 100, to: 100_000 },
  // One request in flight, one commit per transaction: ~2,400 tx/s, so 0-15,000 only.
  { clients: 1, batch: 1, to: 10_000 },
];
/**
 * Ingest windows: the rate "at ~N" is over the acknowledgements centred on N: 1,000 of them
 * at ~1,000 (the median of three runs from an empty pool, as so short a window is noisy) and
 * 5,000 at the end of the long run.
 */
const SMALL_AT = 1_000;
const SMALL_WINDOW = 1_000;
const SMALL_RUNS = 3;
const LARGE_WINDOW = 5_000;
const INGEST_TIME_LIMIT_MS = 60_000;
const BUILD_POOLS = [1_000, 10_000, 100_000];
/** Reorg depths timed, in full blocks. */
const REORG_DEPTHS = [1, 10, 100];

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Flushes dirty pages of earlier phases to disk (`sync`, Linux), so that their writeback does
 * not land in the next phase's measurement. Bounded; skipped where there is no `sync`.
 */
async function settle(): Promise<void> {
  try {
    await new Deno.Command("sync", { signal: AbortSignal.timeout(60_000) }).output();
  } catch { /* no sync here */ }
}

/** Deletes a KV file and its SQLite companions, once a phase is done with it. */
async function removeKv(path: string): Promise<void> {
  for (const suffix of ["", "-wal", "-shm"]) {
    await Deno.remove(path + suffix).catch(() => {});
  }
}

const log = (text: string) => console.error(`[bench] ${text}`);
const started = performance.now();
const dir = await tempDir();

try {
  const results: Partial<Results> = {};
  results.machine = {
    date: new Date().toISOString(),
    cpus: navigator.hardwareConcurrency,
    memoryGiB: Math.round(Deno.systemMemoryInfo().total / 2 ** 30),
    deno: Deno.version.deno,
    v8: Deno.version.v8,
    os: `${Deno.build.os} ${Deno.osRelease()}`,
  };

  await settle();
  log("raw KV ceiling and verify (deno bench)...");
  const micro = await runBenchFiles(["kv_bench.ts", "verify_bench.ts"]);
  results.ceiling = [1, 100].flatMap((txs) =>
    (["near 1,000", "near 100,000"] as const).map((table) => {
      const s = stat(micro, `${txs} tx per commit, table ${table}`);
      const commits = 1e9 / s.avgNs;
      return {
        txsPerCommit: txs,
        table,
        commitsPerSecond: commits,
        // Keys written per commit: two sets per transaction and the two counters.
        keysPerSecond: commits * (2 * txs + 2),
        txPerSecond: commits * txs,
        iterations: s.n,
      };
    })
  );
  const chainTxs = VERIFY_CHAIN.accounts + VERIFY_CHAIN.transfers;
  const rawHash = stat(micro, "raw sha256 of the same encodings");
  const verifyBlocks = stat(micro, "verifyBlocks (in memory)");
  const verifyStore = stat(micro, "verifyStore (Deno KV file)");
  results.verify = {
    chainTxs,
    rawHashTxPerSecond: chainTxs / (rawHash.avgNs / 1e9),
    verifyBlocksTxPerSecond: chainTxs / (verifyBlocks.avgNs / 1e9),
    verifyStoreTxPerSecond: chainTxs / (verifyStore.avgNs / 1e9),
  };

  results.ingest = [];
  for (const config of INGEST) {
    // Past `to` by a whole window, so the window at `to` is not the run's draining tail.
    const total = config.to + LARGE_WINDOW;
    await settle();
    log(`ingest ${config.clients} clients x batch ${config.batch}, pool 0 to ${total}...`);
    const name = `${dir.path}/ingest-${config.clients}x${config.batch}`;
    const smallRates: number[] = [];
    for (let i = 1; i < SMALL_RUNS; i++) {
      const node = await startNode(`${name}-small-${i}.kv`);
      try {
        const total = SMALL_AT + SMALL_WINDOW;
        const run = await ingest(node.url, { ...config, total, timeLimitMs: INGEST_TIME_LIMIT_MS });
        smallRates.push(run.rateBetween(SMALL_AT - SMALL_WINDOW / 2, SMALL_AT + SMALL_WINDOW / 2));
      } finally {
        await node.stop();
        await removeKv(`${name}-small-${i}.kv`);
      }
    }
    const node = await startNode(`${name}.kv`);
    try {
      const run = await ingest(node.url, { ...config, total, timeLimitMs: INGEST_TIME_LIMIT_MS });
      smallRates.push(run.rateBetween(SMALL_AT - SMALL_WINDOW / 2, SMALL_AT + SMALL_WINDOW / 2));
      const small = median(smallRates);
      const large = run.rateBetween(config.to - LARGE_WINDOW / 2, config.to + LARGE_WINDOW / 2);
      results.ingest.push({
        clients: config.clients,
        batch: config.batch,
        poolTo: config.to,
        acked: run.acked,
        timedOut: run.timedOut,
        seconds: run.seconds,
        overallTxPerSecond: run.rate,
        smallTxPerSecond: small,
        smallSamples: smallRates,
        largeTxPerSecond: large,
        nodeLogLines: node.logLines(),
        peakRssBytes: await node.peakRss(),
      });
    } finally {
      await node.stop();
      await removeKv(`${name}.kv`);
    }
  }

  await settle();
  log("signed transfers: raw Ed25519 verify, signed verify and signed ingest...");
  results.signed = await timeSigned(dir.path);

  results.build = [];
  for (const pool of BUILD_POOLS) {
    await settle();
    log(`build: pack a pool of ${pool}...`);
    results.build.push(await timeBuild(`${dir.path}/build-${pool}.kv`, pool));
    await removeKv(`${dir.path}/build-${pool}.kv`);
  }

  results.reorg = [];
  await Deno.mkdir(`${dir.path}/warm`);
  await timeReorg(`${dir.path}/warm`, 1); // the first switch pays for compiling the code
  for (const depth of REORG_DEPTHS) {
    await settle();
    log(`reorg of ${depth} full blocks...`);
    results.reorg.push(await timeReorg(dir.path, depth));
  }
  await settle();
  log("peer blocks vs local build...");
  results.peerApply = await timePeerApply(dir.path, 100);

  for (const part of ["chain", "propagation", "catchup"]) await Deno.mkdir(`${dir.path}/${part}`);
  await settle();
  log("network: chain throughput and latency, 3 builders and the same load on 1...");
  const chain = await timeChain(`${dir.path}/chain`);
  await settle();
  log("network: propagation A -> C over 3 nodes...");
  const propagation = await timePropagation(`${dir.path}/propagation`);
  await settle();
  log("network: catch-up of a 10,000-block chain...");
  const catchUp = await timeCatchUp(`${dir.path}/catchup`);
  results.network = { chain, propagation, catchUp };

  const chains: ChainDb[] = [];
  for (const blocks of CHAIN_LENGTHS) {
    log(`chain of ${blocks} blocks (appendBlocks)...`);
    chains.push(await makeChainDb(`${dir.path}/chain-${blocks}.kv`, blocks));
  }
  results.chains = chains.map((c) => ({ blocks: c.blocks, seconds: c.seconds }));

  await settle();
  log("lookups (deno bench) and start-up...");
  const lookups = await runBenchFiles(["lookup_bench.ts"], {
    FOXCHAIN_BENCH_CHAINS: await chainsToEnv(chains, `${dir.path}/chains.json`),
  });
  results.lookups = [];
  for (const chain of chains) {
    const label = `${chain.blocks.toLocaleString("en-US")} blocks`;
    const node = await timeChainNode(chain, { starts: 5, lookups: 1_000 });
    results.lookups.push({
      blocks: chain.blocks,
      storeBalanceUs: stat(lookups, `balance, ${label}`).avgNs / 1000,
      storeTxUs: stat(lookups, `tx by id, ${label}`).avgNs / 1000,
      storeBlockUs: stat(lookups, `block by height, ${label}`).avgNs / 1000,
      wsBalanceUs: node.balanceUs,
      wsTxUs: node.txUs,
      startupMs: node.startupMs,
      startupAllMs: node.startupAllMs,
    });
  }

  const longest = chains[chains.length - 1];
  await settle();
  log(`memory: a pool of ${LARGE_TABLE} on the ${longest.blocks}-block chain...`);
  const node = await startNode(longest.path);
  try {
    const run = await ingest(node.url, {
      clients: 50,
      batch: 100,
      total: LARGE_TABLE,
      timeLimitMs: INGEST_TIME_LIMIT_MS,
    });
    const health =
      await (await fetch(node.url.replace("ws://", "http://").replace("/ws", "/health")))
        .json() as { height: number; pool: number };
    results.memory = {
      chainBlocks: health.height + 1,
      pool: health.pool,
      acked: run.acked,
      peakRssBytes: await node.peakRss(),
    };
  } finally {
    await node.stop();
  }

  results.seconds = (performance.now() - started) / 1000;
  const done = results as Results;
  const out = new URL("./results/", import.meta.url);
  await Deno.mkdir(out, { recursive: true });
  await Deno.writeTextFile(new URL("latest.json", out), JSON.stringify(done, null, 2) + "\n");
  const markdown = renderMarkdown(done);
  await Deno.writeTextFile(new URL("latest.md", out), markdown);
  console.log(markdown);
  log(`done in ${done.seconds.toFixed(0)} s: bench/results/latest.md and latest.json`);
} finally {
  await dir.cleanup();
}
