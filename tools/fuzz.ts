/**
 * `deno task fuzz [--messages N] [--seed S]`: the protocol fuzzer (tools/fuzz/run.ts). Prints a
 * summary table; exits 1 on any violation, 2 on bad flags.
 */
import { intFlag, parseFlags, UsageError } from "../lib/cli/cli.ts";
import { runFuzz } from "./fuzz/run.ts";
import { runPeerFuzz } from "./fuzz/peer.ts";
import { freshSeed } from "./shared/rng.ts";

const help = `Usage: deno task fuzz [options]

Starts a node and attacks its protocol: random bytes, invalid UTF-8, deep nesting, huge
numbers, every field with wrong types, look-alike addresses, prototype keys, oversized and
malformed frames, floods and abandoned connections. Then checks: the node is up, every reply
was a documented error without internals, nothing invalid was stored (verify --indexes), and
memory is back near its level before the run. Exits 1 on any violation.

With --peer, the attack comes over a peer link instead: a valid hello with the node's network
and rules, then invalid blocks, floods of blocks with unknown parents, too long and random
locators, junk in pool {want}, oversized merges, hellos with wrong types and repeated ones.
Each link must be closed just past the fault limit (PEER_FAULT_LIMIT) and not before.

Options:
      --peer           fuzz the peer link (see above)
      --messages N     hostile messages (default: 5000); raw attacks scale with it
      --seed S         seed of the random choices (default: a fresh one, printed)
      --connections N  connections the messages are spread over (default: 4)
      --json           print the summary as JSON
  -h, --help           show this help`;

async function main(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    messages: { type: "string" },
    seed: { type: "string" },
    connections: { type: "string" },
    peer: { type: "boolean" },
    json: { type: "boolean" },
  }, help);
  if (!flags) return 0;
  const v = flags.values;
  const messages = intFlag("messages", v.messages, 1, 10_000_000) ?? 5000;
  const seed = intFlag("seed", v.seed, 0, 2 ** 32 - 1) ?? freshSeed();
  const progress = (line: string) => console.error(line);
  const summary = v.peer ? await runPeerFuzz({ messages, seed, progress }) : await runFuzz({
    messages,
    seed,
    connections: intFlag("connections", v.connections, 1, 100) ?? 4,
    progress: (line) => console.error(line),
  });
  return summary.print(v.json);
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`fuzz: ${error.message}`);
    Deno.exit(2);
  }
}
