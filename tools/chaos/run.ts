/**
 * The chaos experiment: node processes under a steady load of merges are killed (SIGKILL) or
 * stopped (SIGINT, SIGTERM) at random moments, round after round; after each round, with every
 * process down, the ledger is audited: `verify --indexes` green, every acknowledged transfer
 * stored exactly once (chain, pool, or dropped with a reason), no transfer stored twice,
 * balances equal to a recount from the chain, no key outside the schema. A graceful stop must
 * exit 0, and no process may exit on its own. docs/reliability.md has the results.
 */
import type { Sent } from "../shared/audit.ts";
import { Rng } from "../shared/rng.ts";
import { Summary } from "../shared/summary.ts";
import { checkAgreement, type Cluster, makeCluster, type Mode, placeNodes } from "./cluster.ts";
import { Load } from "./load.ts";
import { auditNodeFile, stopMember } from "./checks.ts";

/** What a chaos run does. */
export interface ChaosOptions {
  /** Kill rounds. */
  rounds: number;
  /** Seed of every random choice. */
  seed: number;
  /** Concurrent client connections. */
  clients: number;
  /** Mean time the load runs before a round's kill (ms); each round draws 0.5x to 1.5x. */
  roundMs: number;
  /** Cluster shapes, one per round in turn. */
  modes: Mode[];
  /** Keep the KV file in this directory instead of a temporary one. */
  dir?: string;
  /** Where progress lines go (default: nowhere). */
  progress?: (line: string) => void;
}

/** How long the load may take to get its last answers once the nodes are up at the end (ms). */
const FINISH_TIMEOUT_MS = 60_000;

const SIGNALS: Deno.Signal[] = ["SIGKILL", "SIGKILL", "SIGKILL", "SIGINT", "SIGTERM"];

/** The summary's rows, in order. */
const ROWS = [
  "rounds",
  "seconds",
  "SIGKILL sent",
  "SIGINT sent",
  "SIGTERM sent",
  "graceful stops of the others",
  "merges sent (keyed)",
  "merges sent (stamped)",
  "merges sent (plain)",
  "transfers sent",
  "transfers acknowledged",
  "retries",
  "replays (stored)",
  "replays (resumed)",
  "replies 503 (stopping)",
  "replies 500",
  "connections lost (or refused)",
  "height",
  "transactions stored",
  "in chain",
  "in pool",
  "dropped",
  "stored, never acknowledged",
  "acknowledged, all found",
  "audits",
  "violations",
];

/** Runs the experiment and returns its summary (`ok` false on any violation). */
export async function runChaos(opts: ChaosOptions): Promise<Summary> {
  const summary = new Summary(
    `chaos: ${opts.rounds} rounds (${
      opts.modes.join(", ")
    }), ${opts.clients} clients, seed ${opts.seed}`,
  );
  const progress = opts.progress ?? (() => {});
  const rng = new Rng(opts.seed);
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "foxchain-chaos-" });
  // One node today; a network mode places 3-5 (cluster.ts).
  const places = placeNodes(dir, 1);
  const load = new Load(places.map((p) => p.url), opts.clients, rng.fork(), summary);
  const started = performance.now();
  // The rows in the order the table shows them; the counters fill them in.
  for (const row of ROWS) summary.set(row, 0);
  try {
    for (let round = 1; round <= opts.rounds; round++) {
      const mode = opts.modes[(round - 1) % opts.modes.length];
      const cluster = makeCluster(mode, places);
      await startAll(cluster, summary);
      if (round === 1) load.start();
      await sleep(rng.between(opts.roundMs / 2, (opts.roundMs * 3) / 2));
      const victims = cluster.members.filter(() => rng.chance(0.5));
      if (victims.length === 0) victims.push(rng.pick(cluster.members));
      const signal = rng.pick(SIGNALS);
      const what = `round ${round} (${mode}): ${signal} to ${victims.map((v) => v.name).join("+")}`;
      progress(what);
      await Promise.all(victims.map((v) => stopMember(v, signal, summary, what)));
      summary.add(`${signal} sent`, victims.length);
      // The others go on for a moment (a server without its builder, or the reverse).
      await sleep(rng.between(0, 300));
      const survivors = cluster.members.filter((m) => m.running);
      await Promise.all(survivors.map((m) => stopMember(m, "SIGTERM", summary, what)));
      summary.add("graceful stops of the others", survivors.length);
      await auditCluster(cluster, load.sent, summary, what);
    }
    // The end: the nodes come up once more, the clients get their last answers, all stop.
    const cluster = makeCluster(opts.modes[0], places);
    await startAll(cluster, summary);
    if (opts.rounds === 0) load.start();
    await sleep(opts.roundMs);
    const unfinished = await load.finish(FINISH_TIMEOUT_MS);
    if (unfinished > 0) {
      summary.violate(`${unfinished} requests had no final answer within ${FINISH_TIMEOUT_MS} ms`);
    }
    await Promise.all(cluster.members.map((m) => stopMember(m, "SIGTERM", summary, "the end")));
    progress("final audit");
    await auditCluster(cluster, load.sent, summary, "final audit");
  } finally {
    if (!opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  summary.set("rounds", opts.rounds);
  summary.set("seconds", Math.round((performance.now() - started) / 100) / 10);
  return summary;
}

async function startAll(cluster: Cluster, summary: Summary): Promise<void> {
  await Promise.all(cluster.members.map((member) => {
    member.crashed.then((why) => summary.violate(why));
    return member.start();
  }));
  summary.add(`starts of ${cluster.mode}`);
}

/** Every audit, on every node's file, and (with more than one node) their agreement. */
async function auditCluster(
  cluster: Cluster,
  sent: Sent,
  summary: Summary,
  context: string,
): Promise<void> {
  const tips = [];
  for (const db of cluster.dbs) tips.push(await auditNodeFile(cluster, db, sent, summary, context));
  const disagreement = checkAgreement(tips);
  if (disagreement) summary.violate(`${context}: ${disagreement}`);
  summary.add("audits");
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
