/**
 * A network's consensus rules: what every node of one network must agree on to accept the same
 * blocks. Each node takes them from its own flags (`--rule`, `--span`, `--age`, `-k`,
 * `--accept-bare-blocks`), shows them in `status`, and (with the network) compares them in the
 * handshake, refusing a peer whose rules differ.
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
}

/** The default network: span 3 minutes or age 10 minutes, bare blocks refused. */
export const DEFAULT_CHAIN_RULES: ChainRules = { rules: DEFAULT_RULES, acceptBareBlocks: false };

/** A one-line description, e.g. "span >= 180 s or age >= 600 s; bare blocks refused". */
export function describeChainRules(chain: ChainRules): string {
  return `${describeRules(chain.rules)}; bare blocks ${
    chain.acceptBareBlocks ? "accepted" : "refused"
  }`;
}
