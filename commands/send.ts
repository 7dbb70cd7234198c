import {
  CliError,
  type Command,
  expectOk,
  intFlag,
  NODE_FLAGS,
  NODE_HELP,
  parseFlags,
  UsageError,
} from "../lib/cli/cli.ts";
import { DEFAULT_NODE, requestWithRetry, RetriesExhausted } from "../lib/net/client.ts";
import { GENESIS } from "../lib/core/params.ts";
import { admitTx, signTx, type Tx, txId, txToWire } from "../lib/core/transaction.ts";
import { readKeyFile } from "../lib/cli/key_file.ts";
import type { Wallet } from "../lib/core/keys.ts";

const help = `Usage: foxchain send --to UUID --amount N [options]
       foxchain send --key FILE --to UUID --amount N [--from ${GENESIS}]

Sends one transaction to a node's pool and prints its id and the node's answer. The
transaction is stamped here (its t), so its id is known before it is sent; each run is a new
transfer, even of the same amount between the same addresses.

If the connection is lost before the answer, or the node is stopping (503), the same
transaction is sent again with the same request id (up to --retries times, waiting 0.25 s,
0.5 s, 1 s... up to 4 s): the node stores it at most once and answers as it did the first
time. If no answer comes at all, "foxchain tx ID" tells whether it arrived.

With --key the transaction is signed (Ed25519, over the bytes its id is computed from) and
sent from the key's address; a network started with --require-signatures takes only those.
With --key and --from GENESIS it is a mint signed by the key (the network must list the key's
address with --minter).

Options:
      --from UUID  sender (default: GENESIS, which mints; with --key: the key's address)
      --to UUID    receiver
      --amount N   a positive whole number
      --key FILE   sign with this wallet key file (foxchain wallet new)
      --retries N  tries after a lost connection or a 503, 0 to 20 (default: 5)
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
      retries: { type: "string" },
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
    const retries = intFlag("retries", v.retries, 0, 20) ?? 5;
    const url = v.node ?? DEFAULT_NODE;
    const sign = (tx: Tx) => wallet ? signTx(tx, wallet) : Promise.resolve(tx);
    let tx = await sign(checked.value);
    let reply;
    // Another sender may have stamped an identical transfer in the same microsecond: the node
    // then reports this id as already known on the first answer to our request (a replay of a
    // try that was cut short lists our own id as known: "resumed"). A fresh `t`, under a fresh
    // request id, makes it a transfer of its own.
    for (let attempt = 1;; attempt++) {
      const args = { pool: [txToWire(tx)], verbose: true, request_id: crypto.randomUUID() };
      try {
        reply = await requestWithRetry(url, "merge", args, {
          retries,
          onRetry: (n, why) => console.error(`foxchain send: ${why}; retry ${n} of ${retries}`),
        });
      } catch (error) {
        if (!(error instanceof RetriesExhausted)) throw error;
        throw new CliError(
          `${error.message}; transaction ${txId(tx)} may or may not have arrived: ` +
            `"foxchain tx ${txId(tx)}" tells`,
        );
      }
      const known = (reply.response?.known ?? []) as string[];
      const clash = known.includes(txId(tx)) && reply.response?.replay !== "resumed";
      if (reply.status !== 202 || !clash || attempt === 5) break;
      tx = await sign({ ...tx, t: stampHere() });
    }
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
