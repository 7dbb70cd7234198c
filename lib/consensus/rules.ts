/**
 * A network's consensus rules: what every node of one network must agree on to accept the same
 * blocks. Each node takes them from its own flags (`--rule`, `--span`, `--age`, `-k`,
 * `--accept-bare-blocks`, `--require-signatures`, `--minter`), shows them in `status`, and
 * (with the network) compares them in the handshake, refusing a peer whose rules differ.
 */
import { DEFAULT_RULES, describeRules, type Rule } from "../core/rules.ts";

/** The consensus rules of a network. */
export interface ChainRules {
  /** Proof-of-write rules a block may be cut under (any one of them). */
  rules: readonly Rule[];
  /**
   * Accept blocks without proof-of-write evidence (a lab-5 client's bare `{items, prev_hash}`).
   * Off by default: such a block proves nothing, so anyone could cut one.
   */
  acceptBareBlocks: boolean;
  /**
   * Who may move funds (lib/consensus/signatures.ts). Absent: the lab's ledger, where nothing
   * needs a signature (a signature that is given must still verify).
   */
  signatures?: SignaturePolicy;
}

/** The default network: span 3 minutes or age 10 minutes, bare blocks refused. */
export const DEFAULT_CHAIN_RULES: ChainRules = { rules: DEFAULT_RULES, acceptBareBlocks: false };

/**
 * A one-line description, e.g. "span >= 180 s or age >= 600 s; bare blocks refused", with
 * "; signatures required, minters X" on a network that requires signatures. Two networks'
 * rules are the same exactly when their descriptions are.
 */
export function describeChainRules(chain: ChainRules): string {
  const signatures = describeSignaturePolicy(signaturePolicy(chain));
  return `${describeRules(chain.rules)}; bare blocks ${
    chain.acceptBareBlocks ? "accepted" : "refused"
  }${signatures ? `; ${signatures}` : ""}`;
}

/** Who may move funds: part of a network's consensus rules. */
export interface SignaturePolicy {
  /**
   * Every transfer must be signed by the key its sender address derives from, and every mint
   * by a minter's key. Off (the lab's ledger): unsigned transfers are taken, and a signature
   * that is given must still be valid.
   */
  required: boolean;
  /** Addresses whose keys may sign a GENESIS mint when signatures are required. */
  minters: readonly string[];
}

/** The lab's policy, the default: no signature required. */
export const NO_SIGNATURES: SignaturePolicy = { required: false, minters: [] };

/** A network's signature policy (rules without one are the lab's: none required). */
export function signaturePolicy(chain: ChainRules): SignaturePolicy {
  return chain.signatures ?? NO_SIGNATURES;
}

/** A short description: "signatures required, minters a, b" (empty for the lab's policy). */
export function describeSignaturePolicy(policy: SignaturePolicy): string {
  if (!policy.required) return "";
  return policy.minters.length === 0
    ? "signatures required, no minters"
    : `signatures required, minters ${[...policy.minters].sort().join(", ")}`;
}
