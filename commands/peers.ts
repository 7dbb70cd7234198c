import {
  type Command,
  expectOk,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  withNode,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";

const help = `Usage: foxchain peers [options]

Lists the peer URLs a node knows.

Options:
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain peers` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, NODE_FLAGS, help);
    if (!flags) return 0;
    const r = expectOk(
      await withNode(flags.values.node ?? DEFAULT_NODE, (c) => c.request("peers")),
    );
    const peers = r.peers as string[];
    if (flags.values.json) console.log(JSON.stringify(r));
    else console.log(peers.length === 0 ? "No peers." : peers.join("\n"));
    return 0;
  },
};
