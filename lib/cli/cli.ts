/**
 * What every subcommand shares: flag parsing with one-line usage errors, the error classes the
 * entry point turns into exit codes, and talking to a node.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { checkNodeUrl, NodeClient, NodeUnreachable } from "../net/client.ts";
import type { Reply } from "../node/protocol.ts";
import { parseDuration } from "../core/duration.ts";

/** A subcommand: `run` returns the exit code. */
export interface Command {
  /** The whole `--help` text. */
  help: string;
  run(argv: string[]): Promise<number>;
}

/** Bad flags or arguments: printed in one line, exit code 2. */
export class UsageError extends Error {}

/** The command could not do its job (node down, rejected, invalid ledger): exit code 1. */
export class CliError extends Error {}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** The parsed values of a flag spec: strings or booleans, lists where `multiple` is set. */
export type FlagValues<O extends Options> = {
  [K in keyof O]?: O[K] extends { type: "boolean" }
    ? (O[K] extends { multiple: true } ? boolean[] : boolean)
    : (O[K] extends { multiple: true } ? string[] : string);
};

/**
 * Parses flags strictly. Returns null when `--help` was given (the help is printed), so the
 * command returns 0. Unknown flags and missing values become UsageErrors.
 */
export function parseFlags<O extends Options>(
  argv: string[],
  options: O,
  help: string,
  positionals = false,
): { values: FlagValues<O>; positionals: string[] } | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(argv, options),
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: positionals,
      strict: true,
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split("\n")[0].replace(/\. To specify.*$/, "."));
  }
  if ((parsed.values as { help?: boolean }).help) {
    console.log(help);
    return null;
  }
  return { values: parsed.values as FlagValues<O>, positionals: parsed.positionals };
}

/**
 * parseArgs refuses "--start -1" (a value that looks like a flag), so a string option followed
 * by a negative number is passed on as "--start=-1".
 */
function joinNegativeValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith("--")
      ? arg.slice(2)
      : /^-[^-]$/.test(arg)
      ? Object.keys(options).find((k) => options[k].short === arg[1])
      : undefined;
    const next = argv[i + 1];
    if (
      name !== undefined && Object.hasOwn(options, name) && options[name].type === "string" &&
      next !== undefined && /^-\d/.test(next)
    ) {
      out.push(`--${name}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

/** A whole number flag within bounds, or a UsageError. */
export function intFlag(
  name: string,
  text: string | undefined,
  min: number,
  max: number,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!/^-?\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${text}"`);
  }
  return n;
}

/** A duration flag ("180", "3m", "1m30s"), in seconds, or a UsageError. */
export function durationFlag(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const seconds = parseDuration(text);
  if (seconds === null || seconds <= 0) {
    throw new UsageError(`--${name} must be a duration such as 180, 3m or 1m30s, got "${text}"`);
  }
  return seconds;
}

/** Connects to a node, runs `fn`, and closes; an unreachable node becomes one clear line. */
export async function withNode<T>(url: string, fn: (client: NodeClient) => Promise<T>): Promise<T> {
  const bad = checkNodeUrl(url);
  if (bad) throw new UsageError(`-n/--node: ${bad}`);
  let client: NodeClient;
  try {
    client = await NodeClient.connect(url);
  } catch (error) {
    throw new CliError((error as Error).message);
  }
  try {
    return await fn(client);
  } catch (error) {
    if (error instanceof NodeUnreachable) throw new CliError(error.message);
    throw error;
  } finally {
    await client.close();
  }
}

/** The reply's response when the node said yes, else a CliError with the node's words. */
export function expectOk(reply: Reply): Record<string, unknown> {
  if (reply.status >= 400) throw new CliError(`node answered ${reply.status}: ${reply.error}`);
  return reply.response ?? {};
}

/** Flags shared by the client commands. */
export const NODE_FLAGS = {
  node: { type: "string", short: "n" },
  json: { type: "boolean" },
} as const;

/** The help lines for NODE_FLAGS. */
export const NODE_HELP = `  -n, --node URL   node to ask (default: ws://127.0.0.1:9000/ws)
      --json       print the node's JSON reply instead of a table`;

export { plural } from "../core/words.ts";

/** Renders rows as an aligned text table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const all = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  return all.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n");
}

/** POSIX seconds as a readable local time with milliseconds. */
export function showTime(seconds: number): string {
  const d = new Date(seconds * 1000);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${
    p(d.getMinutes())
  }:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
