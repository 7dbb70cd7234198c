/**
 * The chaos experiment on a network: 3-5 `start` nodes linked with `--peer` (each with its
 * builder), concurrent clients sending merges to random nodes, and round after round one node
 * (sometimes two) killed (SIGKILL) or stopped (SIGINT, SIGTERM) and restarted on its file after
 * a random downtime. Some kills are aimed: at a node whose log just said `Syncing from` (it is
 * catching up) or `Switched to a better branch` (a reorg). After the last restart the load
 * stops, the network is given a bounded calm to settle (one tip, empty pools), the nodes stop,
 * and every node's file is audited: one tip everywhere, every acknowledged transfer in the
 * chain exactly once on every node (or in none, and dropped with a reason), `verify --indexes`
 * green, balances equal to a recount and the same on every node. docs/reliability.md has the
 * results.
 */
import { NodeClient, NodeUnreachable } from "../../lib/net/client.ts";
import { auditNetworkTransfers, type NodeLedger, nodeLedger, type Sent } from "../shared/audit.ts";
import { Rng } from "../shared/rng.ts";
import { Summary } from "../shared/summary.ts";
import { CHAOS_RULES, checkAgreement, type Cluster, makeNetwork, type Member } from "./cluster.ts";
import { placeNodes } from "./cluster.ts";
import { Load } from "./load.ts";
import { auditNodeFile, stopMember } from "./checks.ts";

/** What a network chaos run does. */
export interface NetworkChaosOptions {
  /** Nodes in the network (3 to 5). */
  nodes: number;
  /** Kill rounds. */
  rounds: number;
  /** Seed of every random choice. */
  seed: number;
  /** Concurrent client connections. */
  clients: number;
  /** Mean time between kills (ms); a node is down for 0.1x to 1x of it. */
  roundMs: number;
  /** Each builder's `--jitter` (seconds). */
  jitterSeconds: number;
  /** Keep the KV files in this directory instead of a temporary one. */
  dir?: string;
  /** Where progress lines go (default: nowhere). */
  progress?: (line: string) => void;
}

/** How long the load may take to get its last answers once every node is up (ms). */
const FINISH_TIMEOUT_MS = 60_000;
/** How long the network may take to settle on one tip with empty pools after the load (ms). */
const CALM_TIMEOUT_MS = 60_000;
/** How long an aimed kill waits for its moment before it takes a random node instead (ms). */
const AIM_WINDOW_MS = 5_000;

const SIGNALS: Deno.Signal[] = ["SIGKILL", "SIGKILL", "SIGKILL", "SIGINT", "SIGTERM"];

/** The moments a kill may be aimed at, and the log line that says a node is in one. */
const AIMS = {
  random: null,
  "mid-sync": /Syncing from /,
  "mid-reorg": /Switched to a better branch/,
} as const;
type Aim = keyof typeof AIMS;

/** The summary's rows, in order. */
const ROWS = [
  "nodes",
  "rounds",
  "seconds",
  "SIGKILL sent",
  "SIGINT sent",
  "SIGTERM sent",
  "kills aimed mid-sync (hit)",
  "kills aimed mid-reorg (hit)",
  "kills aimed, moment missed",
  "restarts",
  "merges sent (keyed)",
  "merges sent (stamped)",
  "merges sent (plain)",
  "transfers sent",
  "transfers acknowledged",
  "retries",
  "replies 503 (stopping)",
  "connections lost (or refused)",
  "syncs logged",
  "reorgs logged",
  "calm (s)",
  "height",
  "transactions stored",
  "in chain",
  "in pool",
  "dropped",
  "stored, never acknowledged",
  "acknowledged, all found",
  "acknowledged, then dropped",
  "audits",
  "violations",
];

/** Runs the experiment on a network and returns its summary (`ok` false on any violation). */
export async function runNetworkChaos(opts: NetworkChaosOptions): Promise<Summary> {
  const summary = new Summary(
    `chaos: network of ${opts.nodes}, ${opts.rounds} rounds, ${opts.clients} clients, ` +
      `jitter ${opts.jitterSeconds} s, seed ${opts.seed}`,
  );
  const progress = opts.progress ?? (() => {});
  const rng = new Rng(opts.seed);
  const dir = opts.dir ?? await Deno.makeTempDir({ prefix: "foxchain-chaosnet-" });
  const places = placeNodes(dir, opts.nodes);
  const cluster = makeNetwork(places, opts.jitterSeconds);
  const load = new Load(cluster.urls, opts.clients, rng.fork(), summary);
  const started = performance.now();
  for (const row of ROWS) summary.set(row, 0);
  summary.set("nodes", opts.nodes);
  for (const member of cluster.members) member.crashed.then((why) => summary.violate(why));
  try {
    await Promise.all(cluster.members.map((m) => m.start()));
    load.start();
    let marks = markLogs(cluster.members);
    for (let round = 1; round <= opts.rounds; round++) {
      const aim = rng.pick<Aim>(["random", "random", "mid-sync", "mid-reorg"]);
      const signal = rng.pick(SIGNALS);
      let victims: Member[];
      const pattern = AIMS[aim];
      const hit = pattern ? await watchFor(cluster.members, marks, pattern, AIM_WINDOW_MS) : null;
      if (hit) {
        summary.add(`kills aimed ${aim} (hit)`);
        victims = [hit];
      } else {
        if (pattern) summary.add("kills aimed, moment missed");
        else await sleep(rng.between(opts.roundMs / 2, (opts.roundMs * 3) / 2));
        victims = [rng.pick(cluster.members)];
      }
      // Now and then a second node goes down with the first (never all of them).
      if (opts.nodes > 2 && rng.chance(0.25)) {
        victims.push(rng.pick(cluster.members.filter((m) => m !== victims[0])));
      }
      const what = `round ${round}: ${signal} to ${victims.map((v) => v.name).join("+")}` +
        (hit ? ` (${aim})` : "");
      progress(what);
      await Promise.all(victims.map((v) => stop(v, signal, summary, what)));
      summary.add(`${signal} sent`, victims.length);
      await sleep(rng.between(opts.roundMs / 10, opts.roundMs));
      // The restarted nodes' logs are new: whatever they say from now on counts.
      marks = markLogs(cluster.members);
      await Promise.all(victims.map((v) => v.start()));
      summary.add("restarts", victims.length);
    }
    progress("load finishing");
    const unfinished = await load.finish(FINISH_TIMEOUT_MS);
    if (unfinished > 0) {
      summary.violate(`${unfinished} requests had no final answer within ${FINISH_TIMEOUT_MS} ms`);
    }
    progress("calm");
    const calmStarted = performance.now();
    const settled = await settle(cluster, load, rng, CALM_TIMEOUT_MS, progress);
    summary.set("calm (s)", Math.round((performance.now() - calmStarted) / 100) / 10);
    if (settled) summary.violate(`after ${CALM_TIMEOUT_MS / 1000} s of calm: ${settled}`);
    await Promise.all(cluster.members.map((m) => stop(m, "SIGTERM", summary, "the end")));
    progress("final audit");
    await auditNetwork(cluster, load.sent, summary, "final audit");
  } finally {
    await Promise.all(cluster.members.filter((m) => m.running).map((m) => m.kill("SIGKILL")));
    if (!opts.dir) await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  summary.set("rounds", opts.rounds);
  summary.set("seconds", Math.round((performance.now() - started) / 100) / 10);
  return summary;
}

/** Where each member's log stands now (its start count and length). */
type Marks = Map<Member, { starts: number; length: number }>;

function markLogs(members: readonly Member[]): Marks {
  return new Map(members.map((m) => [m, { starts: m.starts, length: m.log().length }]));
}

/**
 * The first running member whose log, since `marks` (all of it for a member restarted since),
 * matches `pattern`, waiting at most `timeoutMs`; null if none did.
 */
async function watchFor(
  members: readonly Member[],
  marks: Marks,
  pattern: RegExp,
  timeoutMs: number,
): Promise<Member | null> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    for (const member of members) {
      if (!member.running) continue;
      const mark = marks.get(member);
      const from = mark && mark.starts === member.starts ? mark.length : 0;
      if (pattern.test(member.log().slice(from))) return member;
    }
    await sleep(10);
  }
  return null;
}

/**
 * Waits until every node is on one tip with an empty pool, for at most `timeoutMs`. The count
 * rule cuts only when `-k` transactions wait, so fewer left over are nudged into a block with a
 * few more. Returns what is still wrong at the deadline, or null.
 */
async function settle(
  cluster: Cluster,
  load: Load,
  rng: Rng,
  timeoutMs: number,
  progress: (line: string) => void,
): Promise<string | null> {
  const size = Number(CHAOS_RULES[CHAOS_RULES.indexOf("-k") + 1]);
  const deadline = performance.now() + timeoutMs;
  let last = "";
  let sameSince = performance.now();
  while (performance.now() < deadline) {
    const states = await Promise.all(cluster.urls.map(nodeState));
    const now = states.map((s) => `${s.height}/${s.tip}/${s.pool}`).join(" ");
    if (now !== last) {
      progress(`calm: ${now}`);
      last = now;
      sameSince = performance.now();
    }
    const oneTip = states.every((s) => s.tip !== null && s.tip === states[0].tip);
    const empty = states.every((s) => s.pool === 0);
    if (oneTip && empty) return null;
    // Quiet for a second with a few transactions left under the count rule: nudge them.
    const waiting = Math.max(...states.map((s) => s.pool));
    if (performance.now() - sameSince > 1000 && waiting > 0 && waiting < size) {
      await load.nudge(rng.pick(cluster.urls), size - waiting).catch(() => {});
      sameSince = performance.now();
    }
    await sleep(100);
  }
  return `nodes did not settle on one tip with empty pools: ${last}`;
}

/** A node's height, tip and pool size from `status` (pool -1 and tip null when unreachable). */
async function nodeState(
  url: string,
): Promise<{ height: number; tip: string | null; pool: number }> {
  try {
    const client = await NodeClient.connect(url, { timeoutMs: 2000 });
    try {
      const reply = await client.request("status", {}, { deadlineMs: 5000 });
      const r = reply.response ?? {};
      return {
        height: r.height as number,
        tip: r.tip as string | null,
        pool: (r.pool as { size: number }).size,
      };
    } finally {
      await client.close();
    }
  } catch (error) {
    if (!(error instanceof NodeUnreachable)) throw error;
    return { height: -1, tip: null, pool: -1 };
  }
}

/** Stops a member as every runner does, then counts the syncs and reorgs its log went through. */
async function stop(
  member: Member,
  signal: Deno.Signal,
  summary: Summary,
  context: string,
): Promise<void> {
  await stopMember(member, signal, summary, context);
  // The stopped process's log is complete.
  summary.add("syncs logged", count(member.log(), AIMS["mid-sync"]));
  summary.add("reorgs logged", count(member.log(), AIMS["mid-reorg"]));
}

/**
 * Every audit on every node's file, then what the nodes must share: one tip and the same
 * balances. The transfer audit runs per node: every acknowledged transfer, whichever node
 * acknowledged it, must be stored exactly once on each of them.
 */
async function auditNetwork(
  cluster: Cluster,
  sent: Sent,
  summary: Summary,
  context: string,
): Promise<void> {
  const tips = [];
  const balances: { db: string; text: string }[] = [];
  const ledgers: NodeLedger[] = [];
  for (const db of cluster.dbs) {
    const name = db.split("/").pop()!;
    // Per node: every stored transaction valid, drops with reasons, nothing chained twice.
    tips.push(
      await auditNodeFile(cluster, db, null, summary, `${context} (${name})`, async (store) => {
        ledgers.push(await nodeLedger(store, name));
        const all: [string, number][] = [];
        for await (const entry of store.allBalances()) all.push(entry);
        all.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
        balances.push({ db, text: JSON.stringify(all) });
      }),
    );
  }
  auditNetworkTransfers(ledgers, sent, summary, context);
  const disagreement = checkAgreement(tips);
  if (disagreement) summary.violate(`${context}: ${disagreement}`);
  const other = balances.find((b) => b.text !== balances[0].text);
  if (other) {
    summary.violate(`${context}: balances differ between ${balances[0].db} and ${other.db}`);
  }
  summary.add("audits");
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, "g"))?.length ?? 0;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
