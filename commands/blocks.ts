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
import type { Block } from "../lib/core/block.ts";

const help = `Usage: foxchain blocks [options]

Lists a node's blocks with their transactions.

Options:
      --start N    first height to show; negative counts from the tip, -1 is the tip (default: 0)
      --limit N    most blocks to show (default: all from --start)
      --brief      one line per block, without its transactions
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain blocks` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, {
      start: { type: "string" },
      limit: { type: "string" },
      brief: { type: "boolean" },
      ...NODE_FLAGS,
    }, help);
    if (!flags) return 0;
    const v = flags.values;
    let start = intFlag("start", v.start, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER) ?? 0;
    const limit = intFlag("limit", v.limit, 1, Number.MAX_SAFE_INTEGER) ?? Infinity;
    const blocks: Block[] = [];
    await withNode(v.node ?? DEFAULT_NODE, async (client) => {
      // Follow the node's paging ("next") until the limit or the tip.
      while (blocks.length < limit) {
        const page = expectOk(
          await client.request("blocks", { start, limit: Math.min(1000, limit - blocks.length) }),
        );
        blocks.push(...(page.blocks as Block[]));
        if (typeof page.next !== "number") break;
        start = page.next;
      }
    });
    if (v.json) {
      console.log(JSON.stringify({ blocks }));
    } else if (blocks.length === 0) {
      console.log("No blocks.");
    } else {
      for (const b of blocks) {
        console.log(
          `block ${b.height}  hash ${b.hash.slice(0, 16)}  prev ${
            b.prev_hash?.slice(0, 16) ?? "-"
          }  ${plural(b.items.length, "record")}`,
        );
        if (v.brief) continue;
        const rows = b.items.map((i) => [showTime(i.t), i.sender, i.receiver, i.amount]);
        console.log(
          table(["t", "sender", "receiver", "amount"], rows).split("\n").map((l) => `  ${l}`).join(
            "\n",
          ),
        );
      }
    }
    return 0;
  },
};
