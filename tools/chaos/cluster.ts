/**
 * The node processes a chaos run attacks. A cluster is a set of members (OS processes of
 * `main.ts`) over the nodes' places (a KV file and a port each), with the URLs clients talk to.
 * The single-node shapes exist today: `serve+build` (two processes on one file), `serve+2build`
 * (two builders racing) and `start` (one process).
 *
 * The network shape (`makeNetwork`) is 3-5 `start` members, one per place, each with `--peer`
 * flags naming the others; tools/chaos/network.ts runs it, and `checkAgreement` (below) checks
 * that after the last restart every node is on one tip.
 */
import { freePort, MainProcess } from "../shared/main_process.ts";

/** One process of a cluster, which the run may kill and starts again. */
export interface Member {
  /** e.g. "serve", "build#2", "start". */
  readonly name: string;
  /** True while the process runs. */
  readonly running: boolean;
  /** Spawns the process and waits until it is ready (listening, or the builder started). */
  start(): Promise<void>;
  /** Sends `signal` and waits for the exit. */
  kill(signal: Deno.Signal): Promise<Deno.CommandStatus>;
  /** The log of the process started last (for violation reports, and to watch for events). */
  log(): string;
  /** How many times the member was started (tells a restarted process's log from the last). */
  readonly starts: number;
  /** Resolves when the process exits without being killed (a crash). */
  readonly crashed: Promise<string>;
}

/** Node processes under attack. */
export interface Cluster {
  /** The shape, e.g. "serve+build". */
  readonly mode: string;
  /** WebSocket URLs clients send requests to. */
  readonly urls: string[];
  /** KV files to audit, one per node. */
  readonly dbs: string[];
  /** The processes. */
  readonly members: Member[];
  /** The network's rule flags, which `verify` needs to check the blocks. */
  readonly ruleArgs: string[];
}

/** Where one node lives: its KV file and its port on 127.0.0.1. */
export interface NodePlace {
  /** The KV file. */
  db: string;
  /** The port it serves on. */
  port: number;
  /** The URL clients use. */
  url: string;
}

/** `count` nodes' places in `dir`, on free ports; they stay the same for the whole run. */
export function placeNodes(dir: string, count: number): NodePlace[] {
  return Array.from({ length: count }, (_, i) => {
    const port = freePort();
    return { db: `${dir}/node${i}.kv`, port, url: `ws://127.0.0.1:${port}/ws` };
  });
}

/** The shapes `makeCluster` knows. */
export const MODES = ["serve+build", "start", "serve+2build"] as const;
/** One of MODES. */
export type Mode = typeof MODES[number];

/** The network's rules in a chaos run: a block whenever 5 wait, so kills land mid-block. Every
 * process (server, builder, verify) gets the same, as in a real network. */
export const CHAOS_RULES = ["--rule", "count", "-k", "5"];
/** Builder flags of every chaos node: checked often, blocks kept small. */
const BUILD = [...CHAOS_RULES, "--sleep", "0.1", "--max-block", "200"];
/** How long a member may take to start (ms). */
const START_TIMEOUT_MS = 30_000;

/** A member running `main.ts <args>`; `ready` is the log line that says it is up. */
class ProcessMember implements Member {
  #process: MainProcess | null = null;
  /** The process before the last kill, whose log `log` still shows. */
  #last: MainProcess | null = null;
  #killed = false;
  #starts = 0;
  #crashed!: (why: string) => void;
  readonly crashed = new Promise<string>((resolve) => (this.#crashed = resolve));

  constructor(readonly name: string, readonly args: string[], readonly ready: RegExp) {}

  get running(): boolean {
    return this.#process !== null;
  }

  get starts(): number {
    return this.#starts;
  }

  async start(): Promise<void> {
    const p = new MainProcess(this.args);
    this.#process = p;
    this.#starts++;
    this.#killed = false;
    p.finished().then((status) => {
      if (this.#process === p) this.#process = null;
      if (!this.#killed) {
        this.#crashed(`${this.name} exited by itself (${status.code}): ${tail(p)}`);
      }
    });
    await p.waitForStderr(this.ready, START_TIMEOUT_MS);
  }

  async kill(signal: Deno.Signal): Promise<Deno.CommandStatus> {
    const p = this.#process;
    if (!p) throw new Error(`${this.name} is not running`);
    this.#killed = true;
    const status = await p.stop(signal);
    this.#process = null;
    this.#last = p;
    return status;
  }

  log(): string {
    return (this.#process ?? this.#last)?.stderr ?? "";
  }
}

function tail(p: MainProcess): string {
  return p.stderr.trim().split("\n").slice(-5).join(" | ");
}

/** A cluster of shape `mode` on the nodes' `places` (the single-node shapes use the first). */
export function makeCluster(mode: Mode, places: readonly NodePlace[]): Cluster {
  const { db, port, url } = places[0];
  const listening = /foxchain is listening on/;
  const building = /Builder started/;
  const serve = ["--port", String(port), "--hostname", "127.0.0.1", "--db", db];
  const members: Member[] = mode === "start"
    ? [new ProcessMember("start", ["start", ...serve, ...BUILD], listening)]
    : [
      new ProcessMember("serve", ["serve", ...serve, ...CHAOS_RULES], listening),
      new ProcessMember("build", ["build", "--db", db, ...BUILD], building),
      ...(mode === "serve+2build"
        ? [new ProcessMember("build#2", ["build", "--db", db, ...BUILD], building)]
        : []),
    ];
  return { mode, urls: [url], dbs: [db], members, ruleArgs: CHAOS_RULES };
}

/** The network name of a chaos network (`--network`), shared by its nodes. */
export const CHAOS_NETWORK = "chaos";

/**
 * A network of `start` nodes, one per place, each with its builder (the chaos rules, builders
 * checking every 0.1 s plus a random 0..`jitterSeconds`) and `--peer` flags naming all the
 * others, so every pair is linked whichever nodes are down when one starts.
 */
export function makeNetwork(places: readonly NodePlace[], jitterSeconds: number): Cluster {
  const members = places.map(({ db, port }, i) =>
    new ProcessMember(`node${i}`, [
      "start",
      ...["--port", String(port), "--hostname", "127.0.0.1", "--db", db],
      ...BUILD,
      ...["--jitter", String(jitterSeconds), "--network", CHAOS_NETWORK],
      ...places.filter((_, j) => j !== i).flatMap((p) => ["--peer", p.url]),
    ], /foxchain is listening on/)
  );
  return {
    mode: `network of ${places.length}`,
    urls: places.map((p) => p.url),
    dbs: places.map((p) => p.db),
    members,
    ruleArgs: CHAOS_RULES,
  };
}

/**
 * Network mode's check, a no-op for one node: after the last restart, every node's tip must
 * be the same. (Issue 8 brings the peers; this is where their agreement is audited.)
 */
export function checkAgreement(
  tips: { db: string; height: number; hash: string | null }[],
): string | null {
  const first = tips[0];
  const other = tips.find((t) => t.height !== first.height || t.hash !== first.hash);
  return other
    ? `nodes disagree: ${first.db} at ${first.height}/${first.hash}, ${other.db} at ` +
      `${other.height}/${other.hash}`
    : null;
}
