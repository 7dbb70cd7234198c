import { type Command, parseFlags } from "../lib/cli/cli.ts";
import {
  BUILD_FLAGS,
  BUILD_HELP,
  builderOptions,
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

const help = `Usage: foxchain start [options]

Runs a whole node in one process: the WebSocket server and the block builder on one Deno KV
file. Ctrl-C stops both cleanly.

Server options:
${SERVE_HELP}
Network (peers, gossip, catch-up):
${NETWORK_HELP}

Network rules (every node of a network uses the same; the builder cuts under them):
${RULE_HELP}
Builder options:
${BUILD_HELP}

Common options:
${COMMON_HELP}
  -h, --help             show this help`;

/** `foxchain start` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, {
      ...SERVE_FLAGS,
      ...NETWORK_FLAGS,
      ...RULE_FLAGS,
      ...BUILD_FLAGS,
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
      build: builderOptions(v),
    });
  },
};
