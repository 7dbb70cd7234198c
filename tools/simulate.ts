/**
 * `deno task simulate [--seeds N] [--from S] [--seed S] [--nodes N] [--transactions N]`: the
 * deterministic network simulation over many seeds (tools/sim/run.ts). Prints one line per
 * failing seed with the command that replays it, a summary table, and exits 1 on any failure.
 */
import { parseArgs } from "node:util";
import { setupLogging } from "../lib/node/log.ts";
import { type SimOptions, type SimReport, simulate } from "./sim/run.ts";

const help = `Usage: deno task simulate [options]

Runs foxchain nodes on a simulated network (seeded delays, lost and duplicated requests,
partitions, restarts) and checks, for each seed, that after the faults stop every node is on
one tip with identical balances, and every acknowledged transaction is in the chain or dropped
with a reason, exactly once.

Options:
  --seeds N          how many seeds (default: 20)
  --from S           first seed (default: 1)
  --seed S           run this one seed, logging what the nodes do (a replay)
  --nodes N          nodes per run (default: 4)
  --transactions N   transactions per run (default: 40)
  -h, --help         show this help`;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    seeds: { type: "string" },
    from: { type: "string" },
    seed: { type: "string" },
    nodes: { type: "string" },
    transactions: { type: "string" },
    help: { type: "boolean", short: "h" },
  },
});
if (values.help) {
  console.log(help);
  Deno.exit(0);
}
const int = (name: string, v: string | undefined, fallback: number) => {
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) {
    console.error(`--${name} must be a whole number, got "${v}"`);
    Deno.exit(2);
  }
  return n;
};
const options: Partial<SimOptions> = {
  nodes: int("nodes", values.nodes, 4),
  transactions: int("transactions", values.transactions, 40),
};
const replay = values.seed !== undefined;
if (replay) await setupLogging({ debug: true });
const first = int("seed", values.seed, int("from", values.from, 1));
const count = replay ? 1 : int("seeds", values.seeds, 20);

const reports: SimReport[] = [];
const started = performance.now();
for (let seed = first; seed < first + count; seed++) {
  const report = await simulate(seed, options);
  reports.push(report);
  if (report.violations.length > 0) {
    console.log(`seed ${seed} FAILED: ${report.violations.slice(0, 5).join("; ")}`);
    console.log(`  replay: deno task simulate --seed ${seed}`);
  }
}
const failed = reports.filter((r) => r.violations.length > 0);
const sum = (f: (r: SimReport) => number) => reports.reduce((a, r) => a + f(r), 0);
const converged = reports.flatMap((r) => r.convergedAfter === null ? [] : [r.convergedAfter]);
console.log(
  [
    `| seeds | failed | acknowledged | in chain | dropped | partitions | restarts | lost requests | duplicated | worst convergence | seconds |`,
    `| ----- | ------ | ------------ | -------- | ------- | ---------- | -------- | ------------- | ---------- | ----------------- | ------- |`,
    `| ${first}..${first + count - 1} | ${failed.length} | ${sum((r) => r.acknowledged)} | ${
      sum((r) => r.inChain)
    } | ${sum((r) => r.dropped)} | ${sum((r) => r.partitions)} | ${sum((r) => r.restarts)} | ${
      sum((r) => r.net.dropped)
    } | ${sum((r) => r.net.duplicated)} | ${converged.length ? Math.max(...converged) : "-"} s | ${
      ((performance.now() - started) / 1000).toFixed(0)
    } |`,
  ].join("\n"),
);
Deno.exit(failed.length > 0 ? 1 : 0);
