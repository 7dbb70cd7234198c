import { type Command, parseFlags, UsageError } from "../lib/cli/cli.ts";
import { createKeyFile, readKeyFile } from "../lib/cli/key_file.ts";

const help = `Usage: foxchain wallet new [--out FILE]
       foxchain wallet show FILE

Wallets hold an Ed25519 key. Its address (a UUID, derived from the public key) is where funds
are sent; only the key file's holder can spend from it (foxchain send --key FILE) on a network
that requires signatures (--require-signatures).

Subcommands:
  new              create a key and write its key file (a JWK, readable by you only);
                   prints the address
  show FILE        print a key file's address and public key

Options:
      --out FILE   where "new" writes the key file (default: wallet-ADDRESS.json here);
                   an existing file is never overwritten
      --json       print {"address", "pubkey", "file"} as JSON
  -h, --help       show this help`;

/** `foxchain wallet` */
export const command: Command = {
  help,
  async run(argv) {
    const flags = parseFlags(
      argv,
      {
        out: { type: "string" },
        json: { type: "boolean" },
      },
      help,
      true,
    );
    if (!flags) return 0;
    const [sub, ...args] = flags.positionals;
    if (sub === "new") {
      if (args.length > 0) throw new UsageError(`"wallet new" takes no arguments; use --out FILE`);
      const { wallet, path: file } = await createKeyFile(
        flags.values.out ?? ((address) => `wallet-${address}.json`),
      );
      if (flags.values.json) {
        console.log(JSON.stringify({ address: wallet.address, pubkey: wallet.pubkey, file }));
      } else {
        console.log(`address  ${wallet.address}\nkey file ${file} (keep it secret: it spends)`);
      }
      return 0;
    }
    if (sub === "show") {
      if (flags.values.out !== undefined) throw new UsageError(`--out applies to "wallet new"`);
      if (args.length !== 1) throw new UsageError(`"wallet show" takes one key file`);
      const wallet = await readKeyFile(args[0]);
      if (flags.values.json) {
        console.log(
          JSON.stringify({ address: wallet.address, pubkey: wallet.pubkey, file: args[0] }),
        );
      } else {
        console.log(`address  ${wallet.address}\npubkey   ${wallet.pubkey}`);
      }
      return 0;
    }
    if (sub === undefined) throw new UsageError(`say "new" or "show FILE"`);
    throw new UsageError(`unknown subcommand "${sub}": say "new" or "show FILE"`);
  },
};
