import {
  type Command,
  expectOk,
  intFlag,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  plural,
  showTime,
  table,
  withNode,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";
import { type Item, txId } from "../lib/core/transaction.ts";

const help = `Usage: foxchain pool [options]

Lists the transactions waiting in a node's pool, earliest t first, with the start of each one's
hash (a transaction's id is its t in microseconds, a dash, and its hash).

Options:
      --limit N    most transactions to show (default: all)
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain pool` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, { limit: { type: "string" }, ...NODE_FLAGS }, help);
    if (!flags) return 0;
    const v = flags.values;
    const limit = intFlag("limit", v.limit, 1, Number.MAX_SAFE_INTEGER) ?? Infinity;
    const pool: Item[] = [];
    await withNode(v.node ?? DEFAULT_NODE, async (client) => {
      let cursor: string | undefined;
      while (pool.length < limit) {
        const args: Record<string, unknown> = { limit: Math.min(10_000, limit - pool.length) };
        if (cursor) args.cursor = cursor;
        const page = expectOk(await client.request("pool", args));
        pool.push(...(page.pool as Item[]));
        if (typeof page.next !== "string") break;
        cursor = page.next;
      }
    });
    if (v.json) {
      console.log(JSON.stringify({ pool }));
    } else if (pool.length === 0) {
      console.log("Pool is empty.");
    } else {
      const rows = pool.map((
        i,
      ) => [txId(i).slice(17, 33), showTime(i.t), i.sender, i.receiver, i.amount]);
      console.log(table(["hash", "t", "sender", "receiver", "amount"], rows));
      console.log(`${plural(pool.length, "transaction")}.`);
    }
    return 0;
  },
};
