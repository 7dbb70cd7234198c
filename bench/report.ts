/** The results of one `deno task bench` run, the targets they are judged by, and Markdown. */
import type { ChainRow } from "./network.ts";
import type { SignedResults } from "./signed.ts";

/** Everything one run measured. */
export interface Results {
  machine: { date: string; cpus: number; memoryGiB: number; deno: string; v8: string; os: string };
  seconds: number;
  ceiling: {
    txsPerCommit: number;
    table: "near 1,000" | "near 100,000";
    commitsPerSecond: number;
    keysPerSecond: number;
    txPerSecond: number;
    iterations: number;
  }[];
  ingest: {
    clients: number;
    batch: number;
    poolTo: number;
    acked: number;
    timedOut: boolean;
    seconds: number;
    overallTxPerSecond: number;
    /** Median of the runs' rates at ~1,000 (each in `smallSamples`). */
    smallTxPerSecond: number;
    smallSamples: number[];
    largeTxPerSecond: number;
    nodeLogLines: number;
    peakRssBytes: number;
  }[];
  build: {
    pool: number;
    blocks: number;
    dropped: number;
    seconds: number;
    txPerSecond: number;
    blocksPerSecond: number;
  }[];
  verify: {
    chainTxs: number;
    rawHashTxPerSecond: number;
    verifyBlocksTxPerSecond: number;
    verifyStoreTxPerSecond: number;
  };
  /** Reorgs of full blocks (bench/reorg.ts); absent in results older than issue 7. */
  reorg?: { depth: number; blockSize: number; seconds: number }[];
  /** Peer blocks accepted one by one vs the same transactions built locally. */
  peerApply?: { blocks: number; transactions: number; applySeconds: number; buildSeconds: number };
  /** The network (bench/network.ts); absent in results older than issue 8. */
  network?: {
    /** Three builders and the same loads on one (bench/network.ts `ChainRow`). */
    chain: { three: ChainRow; one: ChainRow; intervalSeconds: number; jitterSeconds: number };
    propagation: { samples: number; p50Ms: number; p95Ms: number; maxMs: number };
    catchUp: {
      blocks: number;
      seconds: number;
      blocksPerSecond: number;
      localBlocksPerSecond: number;
    };
  };
  chains: { blocks: number; seconds: number }[];
  lookups: {
    blocks: number;
    storeBalanceUs: number;
    storeTxUs: number;
    storeBlockUs: number;
    wsBalanceUs: number;
    wsTxUs: number;
    startupMs: number;
    startupAllMs: number[];
  }[];
  memory: { chainBlocks: number; pool: number; acked: number; peakRssBytes: number };
  /** Signed transfers against the raw Ed25519 verify rate (issue 10); absent in older runs. */
  signed?: SignedResults;
}

/** One target of issue 4 and whether this run met it. */
export interface Verdict {
  target: string;
  measured: string;
  met: boolean;
}

const int = (n: number) => Number.isFinite(n) ? Math.round(n).toLocaleString("en-US") : "n/a";
const fixed = (n: number, digits = 1) => Number.isFinite(n) ? n.toFixed(digits) : "n/a";
const pct = (n: number) => `${fixed(n * 100, 0)}%`;
const mb = (bytes: number) => `${fixed(bytes / 1e6, 0)} MB`;

function ceilingOf(r: Results, txs: number, table: "near 1,000" | "near 100,000") {
  const c = r.ceiling.find((c) => c.txsPerCommit === txs && c.table === table);
  if (!c) throw new Error(`no ceiling for ${txs} tx per commit ${table}`);
  return c.txPerSecond;
}

/** Judges the run against the targets of issue 4. */
export function verdicts(r: Results): Verdict[] {
  const out: Verdict[] = [];
  const ceilSmall = ceilingOf(r, 100, "near 1,000");
  const ceilLarge = ceilingOf(r, 100, "near 100,000");
  for (const [batch, share] of [[100, 0.5], [1, 0.2]]) {
    const run = r.ingest.find((i) => i.clients === 50 && i.batch === batch);
    if (!run) continue;
    const small = run.smallTxPerSecond / ceilSmall;
    const large = run.largeTxPerSecond / ceilLarge;
    out.push({
      target: `ingest 50 clients x batch ${batch} >= ${pct(share)} of the raw KV ceiling`,
      measured: `${pct(small)} at pool ~1,000, ${pct(large)} at ~100,000`,
      met: small >= share && large >= share,
    });
  }
  for (const run of r.ingest) {
    const ratio = run.smallTxPerSecond / run.largeTxPerSecond;
    out.push({
      target: `ingest ${run.clients} x ${run.batch} flat: tx/s at pool ~1,000 within 1.5x of ~${
        int(run.poolTo)
      }`,
      measured: `${fixed(ratio, 2)}x (${int(run.smallTxPerSecond)} vs ${
        int(run.largeTxPerSecond)
      } tx/s)`,
      met: ratio <= 1.5,
    });
  }
  const raw = ceilSmall / ceilLarge;
  out.push({
    target: "(reference) raw KV ceiling, 100 tx per commit, flat from 1,000 to 100,000 rows",
    measured: `${fixed(raw, 2)}x (${int(ceilSmall)} vs ${int(ceilLarge)} tx/s)`,
    met: raw <= 1.5,
  });
  const v = r.verify;
  out.push({
    target: "verify (verifyBlocks) >= 50% of the raw SHA-256 rate",
    measured: `${pct(v.verifyBlocksTxPerSecond / v.rawHashTxPerSecond)} (verifyStore: ${
      pct(v.verifyStoreTxPerSecond / v.rawHashTxPerSecond)
    })`,
    met: v.verifyBlocksTxPerSecond / v.rawHashTxPerSecond >= 0.5,
  });
  if (r.signed) {
    const sg = r.signed;
    out.push({
      target: "signed verify and signed ingest >= 50% of the raw Ed25519 verify rate",
      measured: `verify ${pct(sg.signedVerifyTxPerSecond / sg.rawVerifyPerSecond)}, ingest ${
        pct(sg.signedIngestTxPerSecond / sg.rawVerifyPerSecond)
      }`,
      met: Math.min(sg.signedVerifyTxPerSecond, sg.signedIngestTxPerSecond) /
          sg.rawVerifyPerSecond >= 0.5,
    });
  }
  const [short, long] = [r.lookups[0], r.lookups[r.lookups.length - 1]];
  const flat: [string, keyof Results["lookups"][number]][] = [
    ["store balance", "storeBalanceUs"],
    ["store tx by id", "storeTxUs"],
    ["store block by height", "storeBlockUs"],
    ["protocol balance", "wsBalanceUs"],
    ["protocol tx", "wsTxUs"],
    ["start-up", "startupMs"],
  ];
  for (const [name, key] of flat) {
    const ratio = (long[key] as number) / (short[key] as number);
    out.push({
      target: `${name} flat: within 1.5x from ${int(short.blocks)} to ${int(long.blocks)} blocks`,
      measured: `${fixed(ratio, 2)}x`,
      met: ratio <= 1.5,
    });
  }
  if (r.network) {
    out.push(...networkVerdicts(r.network));
  }
  const m = r.memory;
  out.push({
    target: "node RSS < 200 MB with a 100,000-transaction pool and chain",
    measured: `${mb(m.peakRssBytes)} peak (pool ${int(m.pool)}, chain ${
      int(m.chainBlocks)
    } blocks)`,
    met: m.peakRssBytes < 200e6,
  });
  return out;
}

/** The issue-8 targets: chain rate, latency and catch-up. */
export function networkVerdicts(n: NonNullable<Results["network"]>): Verdict[] {
  const { three, one, intervalSeconds, jitterSeconds } = n.chain;
  // The interval is the longest wait between two checks: the period plus its jitter.
  const limitMs = (intervalSeconds + jitterSeconds + 2) * 1000;
  const c = n.catchUp;
  return [
    {
      target: "network: tx/s into the chain on all 3 nodes >= 30% of the same load on 1 node",
      measured: `${pct(three.txPerSecond / one.txPerSecond)} (${int(three.txPerSecond)} vs ${
        int(one.txPerSecond)
      } tx/s)`,
      met: three.txPerSecond / one.txPerSecond >= 0.3,
    },
    {
      target: `network: p99 submit to in the chain on every node < interval + 2 s (${
        fixed(limitMs / 1000, 1)
      } s)`,
      measured: `${int(three.p99Ms)} ms at ${int(three.pacedRate)} tx/s (1 node: ${
        int(one.p99Ms)
      } ms)`,
      met: three.p99Ms < limitMs,
    },
    {
      target: "network: catch-up of 10,000 blocks >= 50% of local appendBlocks",
      measured: `${pct(c.blocksPerSecond / c.localBlocksPerSecond)} (${int(c.blocksPerSecond)} vs ${
        int(c.localBlocksPerSecond)
      } blocks/s)`,
      met: c.blocksPerSecond / c.localBlocksPerSecond >= 0.5,
    },
  ];
}

/** The network section of the Markdown (also printed by `deno run -A bench/network.ts`). */
export function networkMarkdown(n: NonNullable<Results["network"]>): string[] {
  const { three, one, intervalSeconds, jitterSeconds } = n.chain;
  const lines = [
    "## Network: `start --peer` processes on loopback, each with its builder",
    "",
    `Rules \`--rule count -k 1\`, builders \`--sleep ${intervalSeconds} --jitter ${jitterSeconds}\` ` +
    "(bench/network.ts says why). " +
    "Saturating: mints from 6 connections spread over the nodes, as fast as they " +
    "are acknowledged, timed from the first submit until every one is in the chain on every " +
    "node. Paced: a fixed rate (half the 3-node rate) for 5 s, each transaction timed from its " +
    "submit until it is in the chain on every node. The chains are read with `blocks " +
    "{locator}` every 20 ms.",
    "",
  ];
  const rows = [three, one].map((x) => [
    `${x.nodes} node${x.nodes > 1 ? "s" : ""}`,
    `${int(x.txPerSecond)} tx/s (${int(x.transactions)} in ${fixed(x.seconds, 1)} s)`,
    `${int(x.loadP50Ms)} / ${int(x.loadP99Ms)} ms`,
    `${int(x.pacedRate)} tx/s: ${int(x.p50Ms)} / ${int(x.p99Ms)} ms (max ${int(x.maxMs)})`,
    `${int(x.blocks + 1)} blocks, ${int(x.reorgs)} reorgs undoing ${int(x.undone)}`,
  ]);
  const head = ["run", "into every chain", "p50 / p99 (saturating)", "paced p50 / p99", "chain"];
  lines.push(`| ${head.join(" | ")} |`, `|${head.map(() => " --- ").join("|")}|`);
  for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
  lines.push("");
  const c = n.catchUp;
  const p = n.propagation;
  lines.push(
    `Propagation A -> C through the pools (no builders, ${int(p.samples)} one at a time): ` +
      `p50 ${fixed(p.p50Ms)} ms, p95 ${fixed(p.p95Ms)} ms, max ${fixed(p.maxMs)} ms. ` +
      `Catch-up of ${int(c.blocks)} blocks by an empty node: ${int(c.blocksPerSecond)} ` +
      `blocks/s (${fixed(c.seconds, 1)} s); local appendBlocks ${
        int(c.localBlocksPerSecond)
      } blocks/s (${pct(c.blocksPerSecond / c.localBlocksPerSecond)}).`,
    "",
  );
  return lines;
}

/** The results as the Markdown committed in bench/results/latest.md. */
export function renderMarkdown(r: Results): string {
  const m = r.machine;
  const lines: string[] = [];
  const table = (head: string[], rows: string[][]) => {
    lines.push(`| ${head.join(" | ")} |`, `|${head.map(() => " --- ").join("|")}|`);
    for (const row of rows) lines.push(`| ${row.join(" | ")} |`);
    lines.push("");
  };
  lines.push(
    "# foxchain benchmark results",
    "",
    `${m.date}: ${m.cpus} CPUs, ${m.memoryGiB} GiB, ${m.os}, Deno ${m.deno} (V8 ${m.v8}). ` +
      `The whole run took ${fixed(r.seconds, 0)} s. Reproduce with \`deno task bench\`; ` +
      "what bounds each number is in docs/performance.md.",
    "",
    "## Raw Deno KV ceiling (the same keys as a pool add, on a temp file)",
    "",
  );
  table(
    ["tx per commit", "table", "commits/s", "keys/s", "tx/s"],
    r.ceiling.map((c) => [
      String(c.txsPerCommit),
      c.table,
      int(c.commitsPerSecond),
      int(c.keysPerSecond),
      int(c.txPerSecond),
    ]),
  );
  lines.push("## Ingest: `merge` over WebSocket until 202, node in its own process", "");
  const ceilSmall = ceilingOf(r, 100, "near 1,000");
  const ceilLarge = ceilingOf(r, 100, "near 100,000");
  table(
    [
      "clients x batch",
      "pool range",
      "tx/s at ~1,000",
      "tx/s at the end",
      "flatness",
      "tx/s whole run",
      "% of ceiling (~1,000 / end)",
      "node peak RSS",
      "log lines",
    ],
    r.ingest.map((i) => [
      `${i.clients} x ${i.batch}`,
      `0 to ${int(i.acked)}${i.timedOut ? " (time limit)" : ""}`,
      int(i.smallTxPerSecond),
      `${int(i.largeTxPerSecond)} at ~${int(i.poolTo)}`,
      `${fixed(i.smallTxPerSecond / i.largeTxPerSecond, 2)}x`,
      int(i.overallTxPerSecond),
      i.poolTo >= 100_000
        ? `${pct(i.smallTxPerSecond / ceilSmall)} / ${pct(i.largeTxPerSecond / ceilLarge)}`
        : `${pct(i.smallTxPerSecond / ceilSmall)} / -`,
      mb(i.peakRssBytes),
      int(i.nodeLogLines),
    ]),
  );
  lines.push(
    "Rate at ~1,000: over acknowledgements 500 to 1,500, the median of three runs from an " +
      "empty pool on a fresh node; at the end: over the 5,000 acknowledgements centred on the " +
      "pool size named. The ceiling is the raw 100-tx-per-commit rate at the same table size. " +
      "1 x 1 (one request in flight, one commit per transaction) runs to 15,000 only and is " +
      "read at ~10,000: 100,000 would take about 45 s of the run's budget.",
    "",
    "## Build: Builder.pass() packing a pool of transfers between funded accounts",
    "",
  );
  table(
    ["pool", "blocks", "dropped", "seconds", "tx/s", "blocks/s"],
    r.build.map((b) => [
      int(b.pool),
      int(b.blocks),
      int(b.dropped),
      fixed(b.seconds, 2),
      int(b.txPerSecond),
      fixed(b.blocksPerSecond, 1),
    ]),
  );
  if (r.reorg && r.peerApply) {
    const p = r.peerApply;
    lines.push(
      "## Reorg and peer blocks: `Store.acceptBlock`",
      "",
      "A reorg: the block that makes the other branch longer arrives; the time is that one " +
        "`acceptBlock` (undo the old blocks, apply the new, return orphans to the pool, one " +
        "journaled switch).",
      "",
    );
    table(
      ["depth", "tx per block", "seconds", "blocks/s switched"],
      r.reorg.map((x) => [
        int(x.depth),
        int(x.blockSize),
        fixed(x.seconds, 2),
        fixed((2 * x.depth + 1) / x.seconds, 0),
      ]),
    );
    table(["what", "blocks", "transactions", "seconds", "tx/s"], [
      [
        "peer blocks, acceptBlock one by one",
        int(p.blocks),
        int(p.transactions),
        fixed(p.applySeconds, 2),
        int(p.transactions / p.applySeconds),
      ],
      [
        "the same built locally, Builder.pass",
        int(p.blocks),
        int(p.transactions),
        fixed(p.buildSeconds, 2),
        int(p.transactions / p.buildSeconds),
      ],
    ]);
  }
  if (r.network) lines.push(...networkMarkdown(r.network));
  const v = r.verify;
  lines.push(
    `## Verify: full-ledger validation of ${int(v.chainTxs)} transactions`,
    "",
  );
  table(["what", "tx/s", "% of raw hash"], [
    ["raw SHA-256 (node:crypto) of the same encodings", int(v.rawHashTxPerSecond), "100%"],
    [
      "verifyBlocks (in memory)",
      int(v.verifyBlocksTxPerSecond),
      pct(v.verifyBlocksTxPerSecond / v.rawHashTxPerSecond),
    ],
    [
      "verifyStore (reads the KV file)",
      int(v.verifyStoreTxPerSecond),
      pct(v.verifyStoreTxPerSecond / v.rawHashTxPerSecond),
    ],
  ]);
  if (r.signed) {
    const sg = r.signed;
    lines.push(`## Signed transfers (${int(sg.chainTxs)} signed transactions in the chain)`, "");
    table(["what", "tx/s", "% of raw Ed25519 verify"], [
      ["raw Ed25519 verify (node:crypto), keys parsed", int(sg.rawVerifyPerSecond), "100%"],
      [
        "verifyBlocks, signed chain, signature cache cold",
        int(sg.signedVerifyTxPerSecond),
        pct(sg.signedVerifyTxPerSecond / sg.rawVerifyPerSecond),
      ],
      [
        "verifyBlocks, the same chain unsigned (reference)",
        int(sg.unsignedVerifyTxPerSecond),
        pct(sg.unsignedVerifyTxPerSecond / sg.rawVerifyPerSecond),
      ],
      [
        `signed ingest, 50 x 100, --require-signatures (${int(sg.ingestTxs)} tx)`,
        int(sg.signedIngestTxPerSecond),
        pct(sg.signedIngestTxPerSecond / sg.rawVerifyPerSecond),
      ],
      [
        "unsigned ingest, 50 x 100, same run (reference)",
        int(sg.unsignedIngestTxPerSecond),
        pct(sg.unsignedIngestTxPerSecond / sg.rawVerifyPerSecond),
      ],
    ]);
  }
  lines.push("## Lookups and start-up against chain length", "");
  table(
    [
      "chain",
      "made in",
      "store balance",
      "store tx by id",
      "store block",
      "protocol balance",
      "protocol tx",
      "start-up (median of 5)",
    ],
    r.lookups.map((l, i) => [
      `${int(l.blocks)} blocks`,
      `${fixed(r.chains[i].seconds, 1)} s`,
      `${fixed(l.storeBalanceUs)} µs`,
      `${fixed(l.storeTxUs)} µs`,
      `${fixed(l.storeBlockUs)} µs`,
      `${fixed(l.wsBalanceUs)} µs`,
      `${fixed(l.wsTxUs)} µs`,
      `${fixed(l.startupMs)} ms`,
    ]),
  );
  lines.push(
    "Chains are one transfer per block after the funding blocks, written with " +
      "Store.appendBlocks (150 blocks per commit, each validated as appendBlock does). " +
      "Protocol lookups are one request at a time over one WebSocket; start-up is spawning " +
      "`main.ts serve` until /health answers.",
    "",
    "## Memory",
    "",
    `Node peak RSS (VmHWM) after 50 x 100 ingest of ${int(r.memory.acked)} transactions onto ` +
      `the ${int(r.memory.chainBlocks)}-block chain (pool ${int(r.memory.pool)}): ` +
      `${mb(r.memory.peakRssBytes)}. Ingest nodes above: their own peaks.`,
    "",
    "## Targets",
    "",
  );
  table(
    ["target", "measured", "met"],
    verdicts(r).map((t) => [t.target, t.measured, t.met ? "yes" : "**no**"]),
  );
  return lines.join("\n");
}
