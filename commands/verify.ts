import { CliError, type Command, parseFlags, plural } from "../lib/cli/cli.ts";
import { chainRules, DEFAULT_DB, RULE_FLAGS, RULE_HELP } from "../lib/cli/node_runner.ts";
import { openStore } from "../lib/store/store.ts";
import { verifyStore } from "../lib/store/audit.ts";

const help = `Usage: foxchain verify [options]

Validates the whole stored ledger offline: every block of the best chain through the same
validator the node uses (items, item chain, hash, link, proof-of-write evidence under the
network's rules, balances with running totals). Exits 1 naming the first bad height and why.

Options:
  -r, --db FILE    Deno KV file to check (default: ${DEFAULT_DB})
      --indexes    also check the indexes (balances, transaction records, pool) against the chain
      --json       print the verdict as JSON
  -h, --help       show this help

Network rules (give the ones the node runs with):
${RULE_HELP}`;

/** `foxchain verify` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(argv, {
      db: { type: "string", short: "r" },
      indexes: { type: "boolean" },
      json: { type: "boolean" },
      ...RULE_FLAGS,
    }, help);
    if (!flags) return 0;
    const db = flags.values.db ?? DEFAULT_DB;
    if (db !== ":memory:") {
      try {
        await Deno.stat(db);
      } catch {
        throw new CliError(`no database at ${db}`);
      }
    }
    let store;
    try {
      store = await openStore(db, { rules: chainRules(flags.values) });
    } catch (error) {
      throw new CliError(`cannot open database ${db}: ${(error as Error).message}`);
    }
    try {
      const verdict = await verifyStore(store, { indexes: flags.values.indexes });
      if (flags.values.json) console.log(JSON.stringify(verdict));
      if (!verdict.ok) {
        throw new CliError(`ledger is invalid at height ${verdict.height}: ${verdict.reason}`);
      }
      if (!flags.values.json) {
        console.log(
          verdict.height < 0
            ? "Ledger is empty."
            : `Ledger is valid: ${plural(verdict.height + 1, "block")}, ${
              plural(verdict.transactions, "transaction")
            }` +
              (flags.values.indexes ? ", indexes agree." : "."),
        );
      }
      return 0;
    } finally {
      await store.close();
    }
  },
};
