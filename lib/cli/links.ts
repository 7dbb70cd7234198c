/**
 * How `status` and `peers` show a node's links to its peers: one row per link with its state,
 * the peer's height and tip as last heard, the lag in blocks and when it last answered.
 */
import { table } from "./cli.ts";
import type { LinkInfo } from "../net/network.ts";

/** A link as `status.network.links` and `peers.links` carry it (the wire form of LinkInfo). */
export type LinkRow = Omit<LinkInfo, "kind"> & { kind?: string };

/** The header of the links table. */
export const LINK_HEADER = ["PEER", "STATE", "HEIGHT", "TIP", "LAG", "LAST SEEN"];

/**
 * The links as an aligned table, with a line per failed link giving why; `now` is POSIX
 * seconds (the node's clock when it says, else this machine's). "No links." when there are none.
 */
export function linksTable(links: readonly LinkRow[], now: number): string {
  if (links.length === 0) return "No links.";
  const rows = links.map((l) => [
    l.url,
    l.kind === "lab" && l.state === "up" ? "up (lab)" : l.state,
    l.height ?? "-",
    l.tip ? l.tip.slice(0, 12) : "-",
    lagText(l.lag),
    l.lastSeen === null ? "never" : `${Math.max(0, now - l.lastSeen).toFixed(1)} s ago`,
  ]);
  const why = links.flatMap((l) => l.state !== "up" && l.error ? [`  ${l.url}: ${l.error}`] : []);
  return [table(LINK_HEADER, rows), ...why].join("\n");
}

/** "+3 ahead", "-2 behind", "0", or "-" when not known. */
export function lagText(lag: number | null): string {
  if (lag === null) return "-";
  if (lag === 0) return "0";
  return lag > 0 ? `${lag} ahead` : `${-lag} behind`;
}
