/**
 * Wallet key files: an Ed25519 private key as a JWK (`{"kty": "OKP", "crv": "Ed25519", "x",
 * "d"}`) plus the address it derives, written with mode 0600 and never over an existing file.
 */
import { newWallet, type Wallet, walletFromJwk } from "../core/keys.ts";
import { CliError } from "./cli.ts";

/**
 * Creates a new wallet and writes its key file at `where` (a path, or a path made from the new
 * address) with mode 0600; an existing file is refused, never overwritten.
 */
export async function createKeyFile(
  where: string | ((address: string) => string),
): Promise<{ wallet: Wallet; path: string }> {
  const wallet = await newWallet();
  const path = typeof where === "string" ? where : where(wallet.address);
  const { kty, crv, x, d } = wallet.jwk;
  const text = JSON.stringify({ address: wallet.address, kty, crv, x, d }, null, 2) + "\n";
  try {
    // createNew: refuses an existing file (a key is never overwritten); mode: owner only.
    await Deno.writeTextFile(path, text, { createNew: true, mode: 0o600 });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new CliError(`${path} already exists; a key file is never overwritten`);
    }
    throw new CliError(`cannot write ${path}: ${(error as Error).message}`);
  }
  // The mode given at creation is masked by the umask; set it exactly.
  await Deno.chmod(path, 0o600).catch(() => {});
  return { wallet, path };
}

/** Reads a key file, checking that it holds one Ed25519 key pair and, if given, its address. */
export async function readKeyFile(path: string): Promise<Wallet> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw new CliError(`no key file at ${path}`);
    throw new CliError(`cannot read ${path}: ${(error as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`${path} is not a key file: not JSON`);
  }
  let wallet: Wallet;
  try {
    wallet = await walletFromJwk(json);
  } catch (error) {
    throw new CliError(`${path} is not a key file: ${(error as Error).message}`);
  }
  const stated = (json as Record<string, unknown>).address;
  if (stated !== undefined && stated !== wallet.address) {
    throw new CliError(
      `${path} says its address is ${String(stated)}, but its key's address is ${wallet.address}`,
    );
  }
  return wallet;
}
