/**
 * Start-up and protocol lookups against chain length: spawn `main.ts serve` on a chain
 * database until /health answers (several times, the median counts), then time `balance` and
 * `tx` requests over one WebSocket, one at a time.
 */
import type { ChainDb } from "./chains.ts";
import { account } from "./fixtures.ts";
import { startNode } from "./node_proc.ts";
import { WsConn } from "../lib/net/ws_conn.ts";

/** Start-up and lookup times on one chain. */
export interface ChainNodeResult {
  blocks: number;
  /** Median milliseconds from spawn to the first 200 from /health. */
  startupMs: number;
  startupAllMs: number[];
  /** Mean microseconds per request (request sent to reply read). */
  balanceUs: number;
  txUs: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** Times `starts` start-ups and `lookups` requests of each kind on the chain database. */
export async function timeChainNode(
  db: ChainDb,
  opts: { starts: number; lookups: number },
): Promise<ChainNodeResult> {
  const startupAllMs: number[] = [];
  for (let i = 0; i < opts.starts - 1; i++) {
    const node = await startNode(db.path, { quiet: true });
    startupAllMs.push(node.startupMs);
    await node.stop();
  }
  const node = await startNode(db.path, { quiet: true });
  startupAllMs.push(node.startupMs);
  try {
    const client = await WsConn.connect(node.url, { deadlineMs: 60_000 });
    const time = async (request: (i: number) => string) => {
      for (let i = 0; i < 50; i++) await client.send(request(i)); // warm-up
      const started = performance.now();
      for (let i = 0; i < opts.lookups; i++) {
        const reply = await client.send(request(i));
        if (reply.status !== 200) {
          throw new Error(`lookup answered ${reply.status}: ${reply.error}`);
        }
      }
      return (performance.now() - started) * 1000 / opts.lookups;
    };
    // The same pseudo-random spread on every chain: stride through accounts and sample ids.
    const balanceUs = await time((i) =>
      JSON.stringify({ op: "balance", args: { address: account((i * 7919) % db.accounts) } })
    );
    const txUs = await time((i) =>
      JSON.stringify({
        op: "tx",
        args: { id: db.sampleIds[(i * 7919) % db.sampleIds.length] },
      })
    );
    client.close();
    await client.closed;
    return {
      blocks: db.blocks,
      startupMs: median(startupAllMs),
      startupAllMs,
      balanceUs,
      txUs,
    };
  } finally {
    await node.stop();
  }
}
