import {
  CliError,
  type Command,
  expectOk,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  UsageError,
  withNode,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE } from "../lib/net/client.ts";
import { GENESIS } from "../lib/core/params.ts";
import { admitTx, signTx, type Tx, txId, txToWire } from "../lib/core/transaction.ts";
import { readKeyFile } from "../lib/cli/key_file.ts";
import type { Wallet } from "../lib/core/keys.ts";

const help = `Usage: foxchain send --to UUID --amount N [options]
       foxchain send --key FILE --to UUID --amount N [--from ${GENESIS}]

Sends one transaction to a node's pool and prints its id and the node's answer. The
transaction is stamped here (its t), so its id is known before it is sent; each run is a new
transfer, even of the same amount between the same addresses. To retry one transfer, resend
its JSON (send --json prints it) with "foxchain call merge": a node never adds one id twice.

With --key the transaction is signed (Ed25519, over the bytes its id is computed from) and
sent from the key's address; a network started with --require-signatures takes only those.
With --key and --from GENESIS it is a mint signed by the key (the network must list the key's
address with --minter).

Options:
      --from UUID  sender (default: GENESIS, which mints; with --key: the key's address)
      --to UUID    receiver
      --amount N   a positive whole number
      --key FILE   sign with this wallet key file (foxchain wallet new)
${NODE_HELP}
  -h, --help       show this help`;

/**
 * Stamps `t` here: now, with random microseconds under the millisecond the clock gives, so two
 * `send`s in one millisecond (from separate processes) are rarely identical; the node tells
 * us when they are, and we stamp again.
 */
function stampHere(): number {
  return (Date.now() * 1000 + Math.floor(Math.random() * 1000)) / 1e6;
}

/** `foxchain send` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, {
      from: { type: "string" },
      to: { type: "string" },
      amount: { type: "string" },
      key: { type: "string" },
      ...NODE_FLAGS,
    }, help);
    if (!flags) return 0;
    const v = flags.values;
    if (v.to === undefined) throw new UsageError("--to is required");
    if (v.amount === undefined) throw new UsageError("--amount is required");
    if (!/^\s*\d+\s*$/.test(v.amount)) {
      throw new UsageError(`--amount must be a positive whole number, got "${v.amount}"`);
    }
    const wallet = v.key === undefined ? undefined : await readKeyFile(v.key);
    const sender = senderOf(v.from, wallet);
    const input = { sender, receiver: v.to, amount: Number(v.amount.trim()) };
    const checked = admitTx(input, { now: Date.now() / 1000, stamp: stampHere });
    if (!checked.ok) throw new UsageError(checked.reason);
    const sign = (tx: Tx) => wallet ? signTx(tx, wallet) : Promise.resolve(tx);
    let tx = await sign(checked.value);
    const reply = await withNode(v.node ?? DEFAULT_NODE, async (client) => {
      // Another sender may have stamped an identical transfer in the same microsecond: the
      // node then reports this id as already known. A fresh `t` makes it a transfer of its own.
      for (let attempt = 1;; attempt++) {
        const reply = await client.request("merge", { pool: [txToWire(tx)], verbose: true });
        const known = (reply.response?.known ?? []) as string[];
        if (reply.status !== 202 || !known.includes(txId(tx)) || attempt === 5) return reply;
        tx = await sign({ ...tx, t: stampHere() });
      }
    });
    const id = txId(tx);
    if (v.json) console.log(JSON.stringify({ id, tx: txToWire(tx), reply }));
    if (reply.status !== 202) throw new CliError(`node answered ${reply.status}: ${reply.error}`);
    expectOk(reply);
    if (!v.json) console.log(`${id}\nnode: ${reply.status} ${reply.error}`);
    return 0;
  },
};

/**
 * The sender: --from, or GENESIS; with a key, the key's address, or GENESIS for a signed mint
 * (any other --from could not be signed by this key).
 */
function senderOf(from: string | undefined, wallet: Wallet | undefined): string {
  if (!wallet) return from ?? GENESIS;
  const given = from?.trim().toLowerCase();
  if (given === undefined || given === wallet.address) return wallet.address;
  if (given === GENESIS) return GENESIS;
  throw new UsageError(
    `with --key the sender is the key's address (${wallet.address}); --from may only be ` +
      `GENESIS (${GENESIS}), for a mint signed by the key`,
  );
}
