/**
 * The network's signature rule: one check, `checkSignature`, that admission (`admitUnder`),
 * the builder and the block validator all call, so a transfer the pool takes is one every
 * node's validator takes, and a forged one is refused on every path.
 */
import { GENESIS } from "../core/params.ts";
import { addressOfPubkey, checkSignatureEncoding, verifySignature } from "../core/keys.ts";
import {
  type AdmitOptions,
  admitTx,
  type Checked,
  type Item,
  type Tx,
  txCanonical,
} from "../core/transaction.ts";
import { type ChainRules, signaturePolicy } from "./rules.ts";

/**
 * Why `tx` breaks the signature rule of `chain`, or null. Checks, in order: a signature is
 * there when required; `pubkey` and `sig` are well formed; the key derives the sender's
 * address (for a transfer) or a minter's (for a mint, when signatures are required); the
 * signature verifies over `txCanonical(tx)`, the bytes the id hashes. Each failure has its own
 * reason.
 *
 * @example
 * ```ts
 * const reason = checkSignature(tx, { ...DEFAULT_CHAIN_RULES, signatures: { required: true, minters: [] } });
 * if (reason) console.log(reason); // e.g. "missing signature: this network requires ..."
 * ```
 */
export function checkSignature(tx: Tx, chain: ChainRules): string | null {
  const policy = signaturePolicy(chain);
  const { pubkey, sig } = tx;
  if (pubkey === undefined && sig === undefined) {
    return policy.required
      ? `missing signature: this network requires every transfer to be signed ("pubkey", "sig")`
      : null;
  }
  const malformed = checkSignatureEncoding(pubkey, sig);
  if (malformed) return malformed;
  const signer = addressOfPubkey(pubkey!);
  if (tx.sender === GENESIS) {
    if (policy.required && !policy.minters.includes(signer)) {
      return `mint by a non-minter: ${signer} may not mint on this network`;
    }
  } else if (signer !== tx.sender) {
    return `public key does not match the sender address: it is ${signer}'s, not ${tx.sender}'s`;
  }
  if (!verifySignature(pubkey!, txCanonical(tx), sig!)) {
    return "signature does not verify: the transaction was changed after signing, or signed by another key";
  }
  return null;
}

/** The first item of a block that breaks the signature rule, as "item i: reason", or null. */
export function checkBlockSignatures(items: readonly Item[], chain: ChainRules): string | null {
  for (let i = 0; i < items.length; i++) {
    const bad = checkSignature(items[i], chain);
    if (bad) return `item ${i}: ${bad}`;
  }
  return null;
}

/**
 * Admission of one untrusted `merge` item under a network's rules: the transaction's own
 * checks (`admitTx`), then the signature rule. Every way into a pool goes through here.
 */
export function admitUnder(input: unknown, opts: AdmitOptions, chain: ChainRules): Checked<Tx> {
  const checked = admitTx(input, opts);
  if (!checked.ok) return checked;
  const bad = checkSignature(checked.value, chain);
  return bad ? { ok: false, reason: bad } : checked;
}
