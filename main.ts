/**
 * The foxchain command line: `foxchain <command> [options]`. Each command lives in its own
 * module under commands/ and is loaded only when it runs.
 */
import denoJson from "./deno.json" with { type: "json" };
import { CliError, type Command, UsageError } from "./lib/cli/cli.ts";
import { NodeUnreachable } from "./lib/net/client.ts";

/** Command name → summary and loader. Summaries live here so `--help` loads no command. */
export const COMMANDS: Record<
  string,
  { summary: string; load: () => Promise<{ command: Command }> }
> = {
  start: {
    summary: "run a whole node: server and builder in one process",
    load: () => import("./commands/start.ts"),
  },
  serve: { summary: "run the node's WebSocket server", load: () => import("./commands/serve.ts") },
  build: { summary: "run the block builder", load: () => import("./commands/build.ts") },
  send: { summary: "send a transaction to a node", load: () => import("./commands/send.ts") },
  wallet: {
    summary: "create a signing key (wallet new) or show one (wallet show FILE)",
    load: () => import("./commands/wallet.ts"),
  },
  blocks: { summary: "list a node's blocks", load: () => import("./commands/blocks.ts") },
  pool: { summary: "list a node's pool", load: () => import("./commands/pool.ts") },
  balance: { summary: "show an address's balance", load: () => import("./commands/balance.ts") },
  tx: { summary: "look a transaction up by id", load: () => import("./commands/tx.ts") },
  status: {
    summary: "show a node's height, tip, pool and rules",
    load: () => import("./commands/status.ts"),
  },
  peers: { summary: "list a node's peers", load: () => import("./commands/peers.ts") },
  register: { summary: "tell a node about peers", load: () => import("./commands/register.ts") },
  call: {
    summary: "send one raw protocol request and print the reply",
    load: () => import("./commands/call.ts"),
  },
  verify: {
    summary: "validate the stored ledger (offline)",
    load: () => import("./commands/verify.ts"),
  },
};

const VERSION = denoJson.version;

const HELP = `foxchain ${VERSION}: a small, correct and fast distributed ledger node

Usage: foxchain <command> [options]

Commands:
${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)}${c.summary}`).join("\n")}

Options:
  -h, --help       show this help ("foxchain <command> --help" for a command's)
  -V, --version    show the version

Run a node:  foxchain start          Send:  foxchain send --to <uuid> --amount 10`;

/** The single error path: print one line to stderr and return the exit code. */
function error(command: string | undefined, message: string, code: number): number {
  console.error(`foxchain${command ? ` ${command}` : ""}: ${message}`);
  if (code === 2) {
    console.error(`Run "foxchain${command ? ` ${command}` : ""} --help" for usage.`);
  }
  return code;
}

/** Runs the CLI with the given arguments and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    if (name === "help" && rest[0] !== undefined) {
      if (!Object.hasOwn(COMMANDS, rest[0])) {
        return error(undefined, `unknown command "${rest[0]}"`, 2);
      }
      return main([rest[0], "--help"]);
    }
    console.log(HELP);
    return name === undefined ? 2 : 0;
  }
  if (name === "-V" || name === "--version") {
    console.log(`foxchain ${VERSION}`);
    return 0;
  }
  const entry = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!entry) return error(undefined, `unknown command "${name}"`, 2);
  try {
    const { command } = await entry.load();
    return await command.run(rest);
  } catch (e) {
    if (e instanceof UsageError) return error(name, e.message, 2);
    if (e instanceof CliError || e instanceof NodeUnreachable) return error(name, e.message, 1);
    const detail = Deno.env.get("FOXCHAIN_DEBUG") && e instanceof Error ? `\n${e.stack}` : "";
    return error(
      name,
      `unexpected error: ${e instanceof Error ? e.message : String(e)}${detail}`,
      1,
    );
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
