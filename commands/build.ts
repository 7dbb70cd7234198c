import { type Command, parseFlags } from "../lib/cli/cli.ts";
import {
  BUILD_FLAGS,
  BUILD_HELP,
  builderOptions,
  chainRules,
  COMMON_FLAGS,
  COMMON_HELP,
  DEFAULT_DB,
  RULE_FLAGS,
  RULE_HELP,
  runNode,
} from "../lib/cli/node_runner.ts";

const help = `Usage: foxchain build [options]

Runs the block builder on a Deno KV file shared with "foxchain serve". Every --sleep it checks
the proof-of-write rules; while one holds it packs the pool, earliest t first, into blocks:
a transaction whose sender cannot pay is dropped, with its reason kept ("foxchain tx ID").

Network rules (the builder cuts under them; the node serving this database must use the same):
${RULE_HELP}
Builder options:
${BUILD_HELP}
      --once             build what the rules allow now, then exit
${COMMON_HELP}
  -h, --help             show this help

Examples:
  foxchain build                          # the homework: a block once the pool spans 3 minutes
  foxchain build --rule count -k 3        # the lab's original rule
  foxchain build --rule span --rule age --span 3m   # also release a lone transaction`;

/** `foxchain build` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(
      argv,
      { ...RULE_FLAGS, ...BUILD_FLAGS, ...COMMON_FLAGS, once: { type: "boolean" } },
      help,
    );
    if (!flags) return 0;
    const v = flags.values;
    return await runNode({
      db: v.db ?? DEFAULT_DB,
      rules: chainRules(v),
      debug: v.debug,
      quiet: v.quiet,
      build: { ...builderOptions(v), once: v.once },
    });
  },
};
