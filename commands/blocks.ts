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
import { LIMITS } from "../lib/node/protocol.ts";
import type { Block } from "../lib/core/block.ts";

const help = `Usage: foxchain blocks [options]

Lists a node's blocks with their transactions.

Options:
      --start N    first height to show; negative counts from the tip, -1 is the tip (default: 0)
      --limit N    most blocks to show (default: all from --start)
      --brief      one line per block, without its transactions
${NODE_HELP}
  -h, --help       show this help`;

/** A block as text: one line, then its transactions as a table unless `brief`. */
function showBlock(b: Block, brief: boolean): string {
  const head = `block ${b.height}  hash ${b.hash.slice(0, 16)}  prev ${
    b.prev_hash?.slice(0, 16) ?? "-"
  }  ${plural(b.items.length, "record")}\n`;
  if (brief) return head;
  const rows = b.items.map((i) => [showTime(i.t), i.sender, i.receiver, i.amount]);
  const lines = table(["t", "sender", "receiver", "amount"], rows).split("\n");
  return head + lines.map((l) => `  ${l}\n`).join("");
}

/**
 * Writes text to stdout as it comes, a page at a time. When the reader goes away (`| head`),
 * `closed` is set and the rest is not written, as a Unix tool stops on SIGPIPE.
 */
class Output {
  readonly #encoder = new TextEncoder();
  closed = false;

  async write(parts: string[] | string): Promise<void> {
    if (this.closed) return;
    const text = typeof parts === "string" ? parts : parts.join("");
    const bytes = this.#encoder.encode(text);
    try {
      for (let at = 0; at < bytes.length;) at += await Deno.stdout.write(bytes.subarray(at));
    } catch (error) {
      if (!(error instanceof Deno.errors.BrokenPipe)) throw error;
      this.closed = true;
    }
  }
}

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
    const out = new Output();
    let shown = 0;
    await withNode(v.node ?? DEFAULT_NODE, async (client) => {
      // Page by page, following the node's "next", each page printed before the next is
      // asked for: a 100,000-block chain is never held in memory at once.
      if (v.json) await out.write(`{"blocks":[`);
      while (shown < limit && !out.closed) {
        const page = expectOk(
          await client.request("blocks", {
            start,
            limit: Math.min(LIMITS.blocksPage, limit - shown),
          }),
        );
        const blocks = page.blocks as Block[];
        if (v.json) {
          await out.write(blocks.map((b, i) => (shown + i > 0 ? "," : "") + JSON.stringify(b)));
        } else {
          await out.write(blocks.map((b) => showBlock(b, v.brief ?? false)));
        }
        shown += blocks.length;
        if (typeof page.next !== "number") break;
        start = page.next;
      }
      if (v.json) await out.write([`]}\n`]);
      else if (shown === 0) await out.write(["No blocks.\n"]);
    });
    return 0;
  },
};
