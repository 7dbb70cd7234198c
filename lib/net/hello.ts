/**
 * The handshake of a peer link: what each side says about itself in `hello`, and the one check
 * that decides whether two nodes belong to the same network.
 */
import { type ChainRules, describeChainRules } from "../consensus/rules.ts";

/** What a node says about itself when a link starts. */
export interface Hello {
  /** The network's name (`--network`); nodes of different names never link. */
  network: string;
  /** The network's consensus rules, as `describeChainRules` words them. */
  rules: string;
  /** This node's id, random per run: it tells a link to itself, and which link a relay came on. */
  node: string;
  /** Height of its best chain (-1 when empty). */
  height: number;
  /** Hash of its tip, or null. */
  tip: string | null;
  /** The URL it can be dialled at, or null when it does not listen. */
  listen: string | null;
}

/** The default network name. */
export const DEFAULT_NETWORK = "foxchain";

/** Parses a `hello` from the wire, or returns what is wrong with it. */
export function parseHello(input: unknown): Hello | string {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return "hello must be an object";
  }
  const h = input as Record<string, unknown>;
  if (typeof h.network !== "string" || h.network.length === 0 || h.network.length > 64) {
    return `"network" must be a name of 1 to 64 characters`;
  }
  if (typeof h.rules !== "string" || h.rules.length > 1024) return `"rules" must be a string`;
  if (typeof h.node !== "string" || !/^[0-9a-f]{16,64}$/.test(h.node)) {
    return `"node" must be a node id (16 to 64 hex digits)`;
  }
  if (typeof h.height !== "number" || !Number.isSafeInteger(h.height) || h.height < -1) {
    return `"height" must be a whole number from -1`;
  }
  if (h.tip !== null && (typeof h.tip !== "string" || !/^[0-9a-f]{64}$/.test(h.tip))) {
    return `"tip" must be a block hash or null`;
  }
  if (h.listen !== null && h.listen !== undefined && typeof h.listen !== "string") {
    return `"listen" must be a URL or null`;
  }
  return {
    network: h.network,
    rules: h.rules,
    node: h.node,
    height: h.height,
    tip: h.tip as string | null,
    listen: (h.listen as string | undefined) ?? null,
  };
}

/**
 * Why `theirs` cannot link with a node of network `name` under `rules` whose id is `self`, or
 * null when it can. The rules are compared as words: one description per rule set is the one
 * truth both sides print in `status`.
 */
export function helloMismatch(
  theirs: Hello,
  name: string,
  rules: ChainRules,
  self: string,
): string | null {
  if (theirs.node === self) return "that is this node itself";
  if (theirs.network !== name) {
    return `it is on network "${theirs.network}", this node on "${name}"`;
  }
  const ours = describeChainRules(rules);
  if (theirs.rules !== ours) return `its rules are "${theirs.rules}", this node's "${ours}"`;
  return null;
}
