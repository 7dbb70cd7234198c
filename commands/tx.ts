import {
  type Command,
  expectOk,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  showTime,
  UsageError,
  withNode,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";
import { type Item, show, TX_ID } from "../lib/core/transaction.ts";

const help = `Usage: foxchain tx ID [options]

Tells where a transaction is: waiting in the pool, in block H at index I, or dropped with the
reason. Exits 1 when the node does not know the id.

Options:
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain tx` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, NODE_FLAGS, help, true);
    if (!flags) return 0;
    if (flags.positionals.length !== 1) throw new UsageError("give exactly one transaction ID");
    // Checked here, so that a typo is a usage error (exit 2), not a refusal by the node.
    const id = flags.positionals[0].toLowerCase();
    if (!TX_ID.test(id)) {
      throw new UsageError(
        `ID must be 16 digits, a dash and 64 hex digits, got ${show(flags.positionals[0])}`,
      );
    }
    const reply = await withNode(
      flags.values.node ?? DEFAULT_NODE,
      (c) => c.request("tx", { id }),
    );
    const r = expectOk(reply);
    if (flags.values.json) {
      console.log(JSON.stringify(r));
      return 0;
    }
    const tx = r.tx as Item;
    const where = r.state === "chain"
      ? `in block ${r.height} at index ${r.index}`
      : r.state === "pool"
      ? "waiting in the pool"
      : `dropped: ${r.reason}`;
    console.log(
      `${r.id}\n${where}\n${tx.sender} -> ${tx.receiver}  ${tx.amount}  at ${showTime(tx.t)}`,
    );
    return 0;
  },
};
