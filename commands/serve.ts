import { type Command, parseFlags } from "../lib/cli/cli.ts";
import {
  chainRules,
  COMMON_FLAGS,
  COMMON_HELP,
  DEFAULT_DB,
  NETWORK_FLAGS,
  NETWORK_HELP,
  networkOptions,
  RULE_FLAGS,
  RULE_HELP,
  runNode,
  SERVE_FLAGS,
  SERVE_HELP,
  serveOptions,
} from "../lib/cli/node_runner.ts";

const help = `Usage: foxchain serve [options]

Runs the node's WebSocket server (the lab protocol at /ws, port 9000) on a Deno KV file.
It does not build blocks: run "foxchain build" beside it on the same --db, or use
"foxchain start" for both in one process. Ctrl-C stops it cleanly.

Options:
${SERVE_HELP}
Network (peers, gossip, catch-up):
${NETWORK_HELP}
Network rules (every node of a network uses the same; blocks are checked against them):
${RULE_HELP}
${COMMON_HELP}
  -h, --help             show this help`;

/** `foxchain serve` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, {
      ...SERVE_FLAGS,
      ...NETWORK_FLAGS,
      ...RULE_FLAGS,
      ...COMMON_FLAGS,
    }, help);
    if (!flags) return 0;
    const v = flags.values;
    return await runNode({
      db: v.db ?? DEFAULT_DB,
      rules: chainRules(v),
      debug: v.debug,
      quiet: v.quiet,
      serve: serveOptions(v),
      network: networkOptions(v),
    });
  },
};
