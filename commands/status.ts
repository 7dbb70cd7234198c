import {
  type Command,
  expectOk,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  plural,
  showTime,
  withNode,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";
import type { BuilderInfo } from "../lib/store/store.ts";
import { type LinkRow, linksTable } from "../lib/cli/links.ts";

const help = `Usage: foxchain status [options]

Shows a node's height, tip hash, pool (size, earliest and latest t, span), the network's
consensus rules (what blocks it accepts) and what its builder last announced. A node run
with the network layer (serve/start) also shows its network name, node id, the URL it
advertises, and each link to a peer: URL, state (up, connecting, down, refused, banned...),
the peer's height and tip as last heard, LAG (how many blocks the peer is ahead of or
behind this node) and when it last answered; a link that failed says why below the table.

Options:
${NODE_HELP}
  -h, --help       show this help`;

/** `foxchain status` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, NODE_FLAGS, help);
    if (!flags) return 0;
    const r = expectOk(
      await withNode(flags.values.node ?? DEFAULT_NODE, (c) => c.request("status")),
    );
    if (flags.values.json) {
      console.log(JSON.stringify(r));
      return 0;
    }
    const pool = r.pool as {
      size: number;
      earliest: number | null;
      latest: number | null;
      span: number;
    };
    const builder = r.builder as BuilderInfo | null;
    const network = r.network as
      | { name: string; node: string; listen: string | null; live: number; links: LinkRow[] }
      | undefined;
    console.log(
      [
        `height   ${r.height}`,
        `tip      ${r.tip ?? "-"}`,
        `pool     ${plural(pool.size, "transaction")}` +
        (pool.earliest === null
          ? ""
          : `, ${showTime(pool.earliest)} .. ${showTime(pool.latest!)} (span ${
            pool.span.toFixed(3)
          } s)`),
        `rules    ${r.rules ?? "-"}`,
        `builder  ${builder ? describeBuilder(builder) : "none has run on this database"}`,
        ...(network
          ? [
            `network  ${network.name}, node ${network.node}, at ${network.listen ?? "-"}`,
            `links    ${network.live} up of ${network.links.length}`,
            ...(network.links.length > 0
              ? ["", linksTable(network.links, (r.time as number) ?? Date.now() / 1000)]
              : []),
          ]
          : []),
      ].join("\n"),
    );
    return 0;
  },
};

/** The builder's rules, and how it runs: a loop, or one pass (`build --once`) and when. */
function describeBuilder(b: BuilderInfo): string {
  const how = b.once ? `ran once at ${showTime(b.updated)}` : `every ${b.sleepSeconds} s`;
  return `${b.rules}, at most ${b.maxBlock} per block, ${how} (pid ${b.pid})`;
}
