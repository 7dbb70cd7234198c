/**
 * Running a node process: the flags `serve`, `build` and `start` share, turning them into
 * options, and the run loop with a clean shutdown on Ctrl-C or SIGTERM.
 */
import { Builder, type BuilderOptions } from "../node/builder.ts";
import { CliError, durationFlag, type FlagValues, intFlag, UsageError } from "./cli.ts";
import { logger, setupLogging } from "../node/log.ts";
import { DEFAULT_MAX_BLOCK, GENESIS, MAX_BLOCK_ITEMS } from "../core/params.ts";
import { isAddress } from "../core/transaction.ts";
import { Protocol } from "../node/protocol.ts";
import {
  DEFAULT_AGE_SECONDS,
  DEFAULT_RULES,
  DEFAULT_SPAN_SECONDS,
  type Rule,
} from "../core/rules.ts";
import { type ChainRules, describeChainRules } from "../consensus/rules.ts";
import {
  DEFAULT_STOP_TIMEOUT_MS,
  describeBinding,
  type RunningServer,
  startServer,
} from "../node/server.ts";
import { openStore, type Store } from "../store/store.ts";
import { DEFAULT_NETWORK } from "../net/hello.ts";
import { Network, normalUrl } from "../net/network.ts";
import { plural } from "../core/words.ts";

/** Default KV file, in the working directory. */
export const DEFAULT_DB = "foxchain.kv";

/** Flags every node process takes. */
export const COMMON_FLAGS = {
  db: { type: "string", short: "r" },
  debug: { type: "boolean" },
  quiet: { type: "boolean", short: "q" },
} as const;

export const COMMON_HELP =
  `  -r, --db FILE          Deno KV file holding pool, ledger and peers (default: ${DEFAULT_DB});
                         :memory: keeps everything in memory
      --debug            log details too
  -q, --quiet            log warnings and errors only`;

/** Flags of the server. */
export const SERVE_FLAGS = {
  port: { type: "string", short: "p" },
  hostname: { type: "string" },
  "max-message": { type: "string" },
  "stop-timeout": { type: "string" },
} as const;

export const SERVE_HELP =
  `  -p, --port N           port to listen on (default: 9000; 0 picks a free one)
      --hostname HOST    address to listen on (default: 0.0.0.0)
      --max-message N    largest request in bytes (default: 1048576)
      --stop-timeout DURATION
                         on Ctrl-C or SIGTERM, how long to keep answering the requests
                         already received before closing (default: ${
    DEFAULT_STOP_TIMEOUT_MS / 1000
  })`;

/** Flags of a node's place in a network. */
export const NETWORK_FLAGS = {
  peer: { type: "string", multiple: true },
  network: { type: "string" },
  advertise: { type: "string" },
} as const;

export const NETWORK_HELP =
  `      --peer URL         keep a link to the node at URL (ws:// or wss://); repeat for more.
                         Peers share the addresses they know, so one is enough to join
      --network NAME     the network's name: nodes of other names are refused (default: ${DEFAULT_NETWORK})
      --advertise URL    the URL peers should dial this node at (default: the one it listens
                         on, with 127.0.0.1 for 0.0.0.0)`;

/** Flags that set the network's consensus rules: every node of one network uses the same. */
export const RULE_FLAGS = {
  rule: { type: "string", multiple: true },
  size: { type: "string", short: "k" },
  span: { type: "string" },
  age: { type: "string" },
  "accept-bare-blocks": { type: "boolean" },
  "require-signatures": { type: "boolean" },
  minter: { type: "string", multiple: true },
} as const;

export const RULE_HELP =
  `      --rule RULE        proof-of-write rule: span, count or age; repeat to combine
                         (a block may be cut when any holds; default: span and age)
  -k, --size N           count rule: cut when the pool holds N records (default: 3)
      --span DURATION    span rule: cut when latest t - earliest t >= DURATION
                         (seconds, or 3m, 1m30s...; default: 3m)
      --age DURATION     age rule: cut when now - earliest t >= DURATION (default: 10m)
      --accept-bare-blocks
                         take blocks without proof-of-write evidence (a lab-5 client's
                         {items, prev_hash}); refused by default
      --require-signatures
                         every transfer must be signed by its sender's key (foxchain send
                         --key); unsigned or forged ones are refused at admission and in blocks
      --minter ADDRESS   with --require-signatures: a wallet address whose key may sign a
                         mint (from GENESIS); repeat for several (default: none may mint)`;

/** Flags of the builder. */
export const BUILD_FLAGS = {
  sleep: { type: "string", short: "t" },
  jitter: { type: "string" },
  "max-block": { type: "string" },
} as const;

export const BUILD_HELP = `  -t, --sleep DURATION   check the rules every DURATION (default: 3)
      --jitter DURATION  wait a random 0..DURATION more before each check, so that builders
                         of a network rarely cut at the same moment (default: 0)
      --max-block N      most transactions per block, 1 to ${MAX_BLOCK_ITEMS} (default: ${DEFAULT_MAX_BLOCK})`;

/** The network's rules from parsed RULE_FLAGS. */
export function chainRules(v: FlagValues<typeof RULE_FLAGS>): ChainRules {
  const span = durationFlag("span", v.span) ?? DEFAULT_SPAN_SECONDS;
  const age = durationFlag("age", v.age) ?? DEFAULT_AGE_SECONDS;
  const size = intFlag("size", v.size, 1, 1_000_000) ?? 3;
  const names = v.rule ?? DEFAULT_RULES.map((r) => r.kind);
  const rules: Rule[] = [];
  for (const name of new Set(names.flatMap((n) => n.split(",")).map((n) => n.trim()))) {
    if (name === "span") rules.push({ kind: "span", seconds: span });
    else if (name === "count") rules.push({ kind: "count", size });
    else if (name === "age") rules.push({ kind: "age", seconds: age });
    else throw new UsageError(`--rule must be span, count or age, got "${name}"`);
  }
  if (v.size !== undefined && !rules.some((r) => r.kind === "count")) {
    throw new UsageError(`-k/--size sets the count rule: add --rule count`);
  }
  if (v.age !== undefined && !rules.some((r) => r.kind === "age")) {
    throw new UsageError(`--age sets the age rule: add --rule age`);
  }
  if (v.span !== undefined && !rules.some((r) => r.kind === "span")) {
    throw new UsageError(`--span sets the span rule: add --rule span`);
  }
  const chain: ChainRules = { rules, acceptBareBlocks: v["accept-bare-blocks"] ?? false };
  if (v["require-signatures"]) {
    chain.signatures = { required: true, minters: minterFlags(v.minter ?? []) };
  } else if (v.minter !== undefined) {
    throw new UsageError(`--minter only applies with --require-signatures`);
  }
  return chain;
}

/** The --minter addresses, lowercased, each once, sorted (the rules compare as one text). */
function minterFlags(given: readonly string[]): string[] {
  const minters = new Set<string>();
  for (const text of given) {
    const address = text.trim().toLowerCase();
    if (!isAddress(address)) {
      throw new UsageError(`--minter must be a wallet address (a UUID), got "${text}"`);
    }
    if (address === GENESIS) {
      throw new UsageError(`--minter must be a wallet's address, not GENESIS`);
    }
    minters.add(address);
  }
  return [...minters].sort();
}

/** Builder options from parsed BUILD_FLAGS (its rules are the network's). */
export function builderOptions(v: FlagValues<typeof BUILD_FLAGS>): BuilderOptions {
  return {
    sleepSeconds: durationFlag("sleep", v.sleep) ?? 3,
    jitterSeconds: durationFlag("jitter", v.jitter) ?? 0,
    maxBlock: intFlag("max-block", v["max-block"], 1, MAX_BLOCK_ITEMS) ?? DEFAULT_MAX_BLOCK,
  };
}

/** What a node process runs. */
export interface NodeConfig {
  db: string;
  rules: ChainRules;
  debug?: boolean;
  quiet?: boolean;
  serve?: { hostname: string; port: number; maxMessageBytes: number; stopTimeoutMs?: number };
  build?: BuilderOptions & { once?: boolean };
  /** Peers and network name; absent: the node links to no one (and answers `hello` 503). */
  network?: { name: string; peers: string[]; advertise: string | null };
}

/** Network options from parsed NETWORK_FLAGS. */
export function networkOptions(
  v: FlagValues<typeof NETWORK_FLAGS>,
): NonNullable<NodeConfig["network"]> {
  const peers: string[] = [];
  for (const peer of v.peer ?? []) {
    const url = normalUrl(peer);
    if (!url) throw new UsageError(`--peer must be a ws:// or wss:// URL, got "${peer}"`);
    peers.push(url);
  }
  const advertise = v.advertise === undefined ? null : normalUrl(v.advertise);
  if (v.advertise !== undefined && !advertise) {
    throw new UsageError(`--advertise must be a ws:// or wss:// URL, got "${v.advertise}"`);
  }
  const name = v.network ?? DEFAULT_NETWORK;
  if (name.length === 0 || name.length > 64) {
    throw new UsageError(`--network must be a name of 1 to 64 characters`);
  }
  return { name, peers, advertise };
}

/** Server options from parsed SERVE_FLAGS. */
export function serveOptions(v: FlagValues<typeof SERVE_FLAGS>): NonNullable<NodeConfig["serve"]> {
  return {
    hostname: v.hostname ?? "0.0.0.0",
    port: intFlag("port", v.port, 0, 65535) ?? 9000,
    maxMessageBytes: intFlag("max-message", v["max-message"], 1024, 64 << 20) ?? 1 << 20,
    stopTimeoutMs:
      (durationFlag("stop-timeout", v["stop-timeout"]) ?? DEFAULT_STOP_TIMEOUT_MS / 1000) *
      1000,
  };
}

async function open(db: string, rules: ChainRules): Promise<Store> {
  try {
    return await openStore(db, { rules });
  } catch (error) {
    throw new CliError(`cannot open database ${db}: ${(error as Error).message}`);
  }
}

/**
 * Runs a server, a builder, or both on one store until Ctrl-C or SIGTERM, then shuts down
 * cleanly: new requests are refused, every request already received is answered (for at most
 * the stop timeout), the builder's pass under way finishes its commit, the store is closed.
 * A second Ctrl-C or SIGTERM exits at once (the store is crash-safe; unanswered requests
 * were either committed whole or not at all).
 */
export async function runNode(config: NodeConfig): Promise<number> {
  await setupLogging({ debug: config.debug, quiet: config.quiet });
  const log = logger("node");
  const isNew = config.db !== ":memory:" && !(await exists(config.db));
  const store = await open(config.db, config.rules);
  let server: RunningServer | undefined;
  let builder: Builder | undefined;
  let protocol: Protocol | undefined;
  let network: Network | undefined;
  let leftNothing = false;
  let now: (() => void) | undefined;
  try {
    if (config.build?.once) {
      const once = new Builder(store, config.build);
      await once.announce({ once: true });
      const result = await once.pass();
      const added = result.added;
      // The reason tells why the pass stopped, e.g. "count: pool holds 3 records, rule needs 4".
      log.info`Done: ${
        plural(added, "block")
      } added, ${result.dropped.length} dropped. ${result.reason}`;
      return 0;
    }
    if (config.serve) {
      try {
        protocol = new Protocol(store);
        server = await startServer({
          protocol,
          hostname: config.serve.hostname,
          port: config.serve.port,
          limits: { maxMessageBytes: config.serve.maxMessageBytes },
        });
      } catch (error) {
        // Nothing ran: a database this run created is removed again, not left behind empty.
        leftNothing = isNew;
        throw new CliError(
          `cannot listen on ${config.serve.hostname}:${config.serve.port}: ${
            (error as Error).message
          }`,
        );
      }
      log.info`foxchain is listening on ${server.hostname}:${server.port} (${
        describeBinding(server.hostname)
      }), database ${config.db}; rules: ${describeChainRules(config.rules)}.`;
      log.info`Clients connect to ${server.url}; the explorer page is ${server.pageUrl}`;
    }
    if (config.serve && config.network && protocol && server) {
      network = new Network({
        store,
        protocol,
        name: config.network.name,
        listen: config.network.advertise ?? server.url,
        peers: config.network.peers,
      });
      await network.start();
      log
        .info`Network "${config.network.name}": node ${network.nodeId}, ${config.network.peers.length} --peer given, reachable at ${
        config.network.advertise ?? server.url
      }.`;
    }
    if (config.build) {
      builder = new Builder(store, config.build);
      builder.start();
    }
    await signalled(["SIGINT", "SIGTERM"]);
    log.info`Shutting down...`;
    // While the stop waits for replies, a second signal ends the process at once.
    now = () => {
      log.warn`Stopping at once: requests still waiting get no reply.`;
      Deno.exit(130);
    };
    Deno.addSignalListener("SIGINT", now);
    Deno.addSignalListener("SIGTERM", now);
    return 0;
  } finally {
    // The requests already received are answered while the builder finishes its block; the
    // network stops after the builder, so that block is still announced to peers.
    await Promise.all([
      (async () => {
        await builder?.stop();
        await network?.stop();
      })(),
      server?.shutdown({ timeoutMs: config.serve?.stopTimeoutMs }),
    ]);
    await store.close();
    if (leftNothing) await removeDatabase(config.db);
    if (now) {
      Deno.removeSignalListener("SIGINT", now);
      Deno.removeSignalListener("SIGTERM", now);
    }
    if (server || builder) log.info`Stopped cleanly.`;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** Removes a KV file and SQLite's companions (-shm, -wal) if they are there. */
async function removeDatabase(db: string): Promise<void> {
  for (const path of [db, `${db}-shm`, `${db}-wal`]) {
    try {
      await Deno.remove(path);
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
    }
  }
}

/** Resolves on the first of `signals`; its listeners are removed then. */
function signalled(signals: Deno.Signal[]): Promise<void> {
  return new Promise((resolve) => {
    const got = () => {
      for (const s of signals) Deno.removeSignalListener(s, got);
      resolve();
    };
    for (const s of signals) Deno.addSignalListener(s, got);
  });
}
