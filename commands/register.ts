import {
  type Command,
  expectOk,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  UsageError,
  withNode,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";

const help = `Usage: foxchain register URL... [options]

Tells a node about peers: ws:// or wss:// URLs. The node ignores anything else and says so.

Options:
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain register` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, NODE_FLAGS, help, true);
    if (!flags) return 0;
    if (flags.positionals.length === 0) throw new UsageError("give at least one peer URL");
    const reply = await withNode(
      flags.values.node ?? DEFAULT_NODE,
      (c) => c.request("register", { addr: flags.positionals }),
    );
    const r = expectOk(reply);
    if (flags.values.json) {
      console.log(JSON.stringify(reply));
    } else {
      console.log(`node: ${reply.status} ${reply.error}`);
      for (const bad of (r.ignored as string[] | undefined) ?? []) {
        console.log(`ignored (not a ws:// or wss:// URL): ${bad}`);
      }
    }
    return 0;
  },
};
