import {
  CliError,
  type Command,
  expectOk,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  UsageError,
  withNode,
} from "../lib/cli.ts";
import { DEFAULT_NODE } from "../lib/client.ts";
import { monotonicStamper, systemClock } from "../lib/clock.ts";
import { GENESIS } from "../lib/params.ts";
import { admitTx, txId, txToWire } from "../lib/transaction.ts";

const help = `Usage: foxchain send --to UUID --amount N [options]

Sends one transaction to a node's pool. The transaction is stamped here (its t), so its id is
known before sending and sending it again is safe: a node never adds the same id twice.
Prints the transaction id and the node's answer.

Options:
      --from UUID  sender (default: GENESIS, ${GENESIS}, which mints)
      --to UUID    receiver
      --amount N   a positive whole number
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain send` */
export const command: Command = {
  name: "send",
  help,
  async run(argv) {
    const flags = parseFlags(argv, {
      from: { type: "string" },
      to: { type: "string" },
      amount: { type: "string" },
      ...NODE_FLAGS,
    }, help);
    if (!flags) return 0;
    const v = flags.values;
    if (v.to === undefined) throw new UsageError("--to is required");
    if (v.amount === undefined) throw new UsageError("--amount is required");
    if (!/^\s*\d+\s*$/.test(v.amount)) {
      throw new UsageError(`--amount must be a positive whole number, got "${v.amount}"`);
    }
    const now = systemClock.now() / 1000;
    const checked = admitTx(
      { sender: v.from ?? GENESIS, receiver: v.to, amount: Number(v.amount.trim() || NaN) },
      { now, stamp: monotonicStamper(systemClock) },
    );
    if (!checked.ok) throw new UsageError(checked.reason);
    const tx = txToWire(checked.value);
    const id = txId(checked.value);
    const reply = await withNode(v.node ?? DEFAULT_NODE, (c) => c.request("merge", { pool: [tx] }));
    if (v.json) console.log(JSON.stringify({ id, tx, reply }));
    if (reply.status !== 202) throw new CliError(`node answered ${reply.status}: ${reply.error}`);
    expectOk(reply);
    if (!v.json) console.log(`${id}\nnode: ${reply.status} ${reply.error}`);
    return 0;
  },
};
