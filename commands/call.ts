import { type Command, NODE_HELP, parseFlags, UsageError, withNode } from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";

const help = `Usage: foxchain call OP [ARGS-JSON] [options]

Sends one raw protocol request {"op": OP, "args": ARGS} and prints the node's reply as JSON,
as the lab's browser WebSocket tool did. Exits 1 when the reply's status is 400 or more.

Examples:
  foxchain call pool
  foxchain call merge '{"pool": [{"sender": "00000000-0000-0000-0000-000000000000",
                        "receiver": "bc70b89d-4521-454c-bebc-6c2456074bf2", "amount": 10000}]}'
  foxchain call blocks '{"start": 1}'

Options:
${NODE_HELP.split("\n")[0]}
      --compact    print the reply on one line
  -h, --help       show this help`;

/** `foxchain call` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(
      argv,
      {
        node: { type: "string", short: "n" },
        compact: { type: "boolean" },
      },
      help,
      true,
    );
    if (!flags) return 0;
    const [op, argsText, ...extra] = flags.positionals;
    if (!op || extra.length > 0) throw new UsageError("give an OP and at most one ARGS-JSON");
    let args: unknown;
    if (argsText !== undefined) {
      try {
        args = JSON.parse(argsText);
      } catch {
        throw new UsageError(`ARGS-JSON is not JSON: ${argsText.slice(0, 60)}`);
      }
    }
    const request = JSON.stringify(args === undefined ? { op } : { op, args });
    const reply = await withNode(flags.values.node ?? DEFAULT_NODE, (c) => c.send(request));
    console.log(JSON.stringify(reply, null, flags.values.compact ? undefined : 2));
    return reply.status >= 400 ? 1 : 0;
  },
};
