/**
 * `deno task chaos [--rounds N] [--seed S] ...`: the kill -9 experiment (tools/chaos/run.ts).
 * Prints a summary table; exits 1 on any violation, 2 on bad flags.
 */
import { durationFlag, intFlag, parseFlags, UsageError } from "../lib/cli/cli.ts";
import { type Mode, MODES } from "./chaos/cluster.ts";
import { runChaos } from "./chaos/run.ts";
import { runNetworkChaos } from "./chaos/network.ts";
import { freshSeed } from "./shared/rng.ts";

const help = `Usage: deno task chaos [options]

Runs node processes under a load of merges, kills them (SIGKILL, SIGINT, SIGTERM) at random
moments, restarts them, and audits the ledger after every round: every acknowledged transfer
stored exactly once, none stored twice, verify --indexes green, balances equal to a recount.
Exits 1 on any violation.

Options:
      --rounds N     kill rounds (default: 20)
      --seed S       seed of the random choices (default: a fresh one, printed)
      --clients N    concurrent client connections (default: 8)
      --round-ms MS  mean load time before each kill (default: 1000)
      --mode MODE    ${MODES.join(", ")}; repeat for several, one per round in turn
                     (default: all)
      --network N    run a network of N nodes (3 to 5) instead: \`start\` processes linked
                     with --peer, one or two killed and restarted each round (some aimed
                     at a node mid-sync or mid-reorg); audited once, after the last restart
                     and a calm (one tip, every acknowledged transfer once on every node)
      --jitter D     with --network: each builder's --jitter (seconds; default: 0.1)
      --dir DIR      keep the KV files in DIR (default: a temporary directory, removed)
      --json         print the summary as JSON
  -h, --help         show this help`;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    rounds: { type: "string" },
    seed: { type: "string" },
    clients: { type: "string" },
    "round-ms": { type: "string" },
    mode: { type: "string", multiple: true },
    network: { type: "string" },
    jitter: { type: "string" },
    dir: { type: "string" },
    json: { type: "boolean" },
  }, help);
  if (!flags) return 0;
  const v = flags.values;
  const modes = (v.mode ?? [...MODES]) as Mode[];
  for (const m of modes) {
    if (!MODES.includes(m)) throw new UsageError(`--mode must be one of ${MODES.join(", ")}`);
  }
  const nodes = intFlag("network", v.network, 3, 5);
  if (nodes === undefined && v.jitter !== undefined) {
    throw new UsageError("--jitter applies to --network only");
  }
  if (nodes !== undefined && v.mode !== undefined) {
    throw new UsageError("--mode and --network are different runs: give one of them");
  }
  const seed = intFlag("seed", v.seed, 0, 2 ** 32 - 1) ?? freshSeed();
  const summary = nodes !== undefined
    ? await runNetworkChaos({
      nodes,
      rounds: intFlag("rounds", v.rounds, 0, 100_000) ?? 20,
      seed,
      clients: intFlag("clients", v.clients, 1, 200) ?? 8,
      roundMs: intFlag("round-ms", v["round-ms"], 10, 600_000) ?? 1000,
      jitterSeconds: v.jitter === undefined ? 0.1 : durationFlag("jitter", v.jitter)!,
      dir: v.dir,
      progress: (line) => console.error(line),
    })
    : await runChaos({
      rounds: intFlag("rounds", v.rounds, 0, 100_000) ?? 20,
      seed,
      clients: intFlag("clients", v.clients, 1, 200) ?? 8,
      roundMs: intFlag("round-ms", v["round-ms"], 10, 600_000) ?? 1000,
      modes,
      dir: v.dir,
      progress: (line) => console.error(line),
    });
  return summary.print(v.json);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`chaos: ${error.message}`);
    Deno.exit(2);
  }
}
