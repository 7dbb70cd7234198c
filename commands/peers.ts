import {
  type Command,
  expectOk,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  withNode,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";
import { type LinkRow, linksTable } from "../lib/cli/links.ts";

const help = `Usage: foxchain peers [options]

Lists the peer URLs a node knows (registered, given with --peer, or shared by its peers),
then, for a node that links to its peers (serve/start), each link: URL, state (up,
connecting, down, refused, banned...), the peer's height and tip as last heard, LAG (how
many blocks the peer is ahead of or behind this node) and when it last answered; a link
that failed says why below the table.

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
    const links = r.links as LinkRow[] | undefined;
    if (flags.values.json) console.log(JSON.stringify(r));
    else {
      console.log(peers.length === 0 ? "No peers." : peers.join("\n"));
      if (links) console.log(`\n${linksTable(links, Date.now() / 1000)}`);
    }
    return 0;
  },
};
