/**
 * The load client: `clients` WebSocket connections speaking the lab protocol, each sending
 * `merge` requests of `batch` new transactions one after another (the next only after the
 * 202 for the last, as the lab's clients do), until `total` transactions are acknowledged or
 * the time limit passes. It records when each acknowledgement arrived, so the rate can be read
 * at any pool size.
 */
import { WsConn } from "../lib/net/ws_conn.ts";
import { account } from "./fixtures.ts";

/** What one load run saw. */
export interface IngestRun {
  clients: number;
  batch: number;
  /** Transactions acknowledged (202), which is also the pool size at the end. */
  acked: number;
  seconds: number;
  /** True when the time limit ended the run before `total`. */
  timedOut: boolean;
  /** Transactions per second over the whole run. */
  rate: number;
  /** Transactions per second while the pool grew from `from` to `to` (acknowledged). */
  rateBetween(from: number, to: number): number;
}

/**
 * Sends merges until `total` transactions are acknowledged. Transactions carry their own `t`
 * (distinct, within the node's admission window) so every one is new to the node.
 */
export async function ingest(
  url: string,
  opts: {
    clients: number;
    batch: number;
    total: number;
    timeLimitMs: number;
    /** The i-th transaction's JSON text (default: a transfer between generated accounts). */
    item?: (i: number) => string;
  },
): Promise<IngestRun> {
  const { clients, batch, total } = opts;
  const connections = await Promise.all(
    Array.from({ length: clients }, () => WsConn.connect(url, { deadlineMs: 60_000 })),
  );
  // A few seconds in the past: inside the node's admission window (at most 90 s old) for the
  // whole run, which takes seconds, not minutes.
  const base = Math.floor(Date.now() / 1000) - 5;
  const ackAt = new Float64Array(total + 1); // ackAt[n]: when the n-th transaction was acked
  let sent = 0;
  let acked = 0;
  let timedOut = false;
  const started = performance.now();
  const deadline = started + opts.timeLimitMs;

  const message = (first: number, count: number): string => {
    // Written by hand rather than JSON.stringify: the client shares the machine's two cores
    // with the node, so it should cost as little as possible.
    const items: string[] = [];
    for (let i = first; i < first + count; i++) {
      if (opts.item) {
        items.push(opts.item(i));
        continue;
      }
      items.push(
        `{"sender":"${account(i % 1000)}","receiver":"${account((i + 1) % 1000)}",` +
          `"amount":1,"t":${base + i / 1e6}}`,
      );
    }
    return `{"op":"merge","args":{"pool":[${items.join(",")}]}}`;
  };

  await Promise.all(connections.map(async (client) => {
    while (sent < total) {
      if (performance.now() > deadline) {
        timedOut = true;
        return;
      }
      const count = Math.min(batch, total - sent);
      const first = sent;
      sent += count;
      const reply = await client.send(message(first, count));
      if (reply.status !== 202) {
        throw new Error(`merge answered ${reply.status}: ${reply.error}`);
      }
      const now = performance.now();
      for (let i = 0; i < count; i++) ackAt[++acked] = now;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  await Promise.all(connections.map((c) => {
    c.close();
    return c.closed;
  }));
  return {
    clients,
    batch,
    acked,
    seconds,
    timedOut,
    rate: acked / seconds,
    rateBetween(from, to) {
      if (to > acked || from >= to) return NaN;
      const start = from === 0 ? 0 : ackAt[from];
      return (to - from) / ((ackAt[to] - start) / 1000);
    },
  };
}
