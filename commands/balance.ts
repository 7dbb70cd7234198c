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
import { isAddress, show } from "../lib/core/transaction.ts";

const help = `Usage: foxchain balance ADDRESS [options]

Prints an address's balance on a node's chain: all received minus all sent, over all blocks
(the pool does not count). GENESIS shows minus the total minted.

Options:
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain balance` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, NODE_FLAGS, help, true);
    if (!flags) return 0;
    if (flags.positionals.length !== 1) throw new UsageError("give exactly one ADDRESS");
    // Checked here, so that a typo is a usage error (exit 2), not a refusal by the node.
    const address = flags.positionals[0].toLowerCase();
    if (!isAddress(address)) {
      throw new UsageError(`ADDRESS must be a UUID, got ${show(flags.positionals[0])}`);
    }
    const reply = await withNode(
      flags.values.node ?? DEFAULT_NODE,
      (c) => c.request("balance", { address }),
    );
    const response = expectOk(reply);
    console.log(flags.values.json ? JSON.stringify(response) : String(response.balance));
    return 0;
  },
};
