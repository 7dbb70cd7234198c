/**
 * The chaos run's clients: concurrent connections sending merges through kills and restarts,
 * recording every transfer they send (each has a unique amount, its tag) and the id the node
 * acknowledged for it. Three kinds of client, as people use the node:
 *
 * - `keyed`: a lab client's items (no `t`) with a `request_id`; retried until answered, always
 *   on the same node: a key is remembered by the node that took it, and a retry elsewhere would
 *   stamp the items anew (docs/decisions.md, "Retrying a merge"). One in a hundred is a big
 *   merge (1,000-3,000 items), so that kills land in the middle of one.
 * - `stamped`: items that carry their own `t`, no key; retried (safe: same `t`, same ids).
 * - `plain`: a lab client's items, no `t`, no key: not safe to retry, so sent once; if the
 *   answer is lost its fate is unknown (and it is not counted as acknowledged).
 */
import { NodeClient, NodeUnreachable } from "../../lib/net/client.ts";
import type { Reply } from "../../lib/node/protocol.ts";
import { GENESIS } from "../../lib/core/params.ts";
import type { Rng } from "../shared/rng.ts";
import type { Summary } from "../shared/summary.ts";
import type { Sent } from "../shared/audit.ts";

/** Addresses the transfers move between. */
const ADDRESSES = 20;
/** Longest wait for one reply before the connection is taken for lost (ms). */
const REPLY_TIMEOUT_MS = 30_000;

type Kind = "keyed" | "stamped" | "plain";

/** The clients of one run; `sent` is what the audit compares the ledger with. */
export class Load {
  readonly sent: Sent = { byAmount: new Map() };
  #amount = 0;
  #stopping = false;
  #loops: Promise<void>[] = [];
  #deadline = Infinity;
  #unfinished = 0;
  readonly #addresses: string[];

  /** `clients` connections to `urls` (each picks one at random per connection). */
  constructor(
    readonly urls: string[],
    readonly clients: number,
    readonly rng: Rng,
    readonly summary: Summary,
  ) {
    this.#addresses = Array.from({ length: ADDRESSES }, () => rng.uuid());
  }

  /** Starts the clients. */
  start(): void {
    for (let i = 0; i < this.clients; i++) this.#loops.push(this.#client(this.rng.fork()));
  }

  /**
   * Stops making new requests and waits until every request under way has its final answer
   * (the nodes must be up), for at most `timeoutMs`. Returns how many were still unanswered.
   */
  async finish(timeoutMs: number): Promise<number> {
    this.#stopping = true;
    this.#deadline = performance.now() + timeoutMs;
    await Promise.all(this.#loops);
    return this.#unfinished;
  }

  /**
   * Sends `count` stamped mints to `url` once and records them (acknowledged or not): a nudge
   * for the count rule when fewer than its size are left in the pools at the end of a run.
   */
  async nudge(url: string, count: number): Promise<void> {
    const now = Date.now() / 1000;
    const pool = Array.from({ length: count }, () => {
      const amount = ++this.#amount;
      this.sent.byAmount.set(amount, null);
      return { sender: GENESIS, receiver: this.#addresses[0], amount, t: now };
    });
    this.summary.add("merges sent (stamped)");
    this.summary.add("transfers sent", count);
    const conn = await NodeClient.connect(url, { timeoutMs: 2000 });
    try {
      const reply = await conn.request("merge", { pool, verbose: true }, {
        deadlineMs: REPLY_TIMEOUT_MS,
      });
      this.#record(pool.map((p) => p.amount), reply, "stamped");
    } finally {
      await conn.close();
    }
  }

  async #client(rng: Rng): Promise<void> {
    let conn: NodeClient | null = null;
    while (!this.#stopping) {
      const kind = rng.pick<Kind>(["keyed", "keyed", "stamped", "plain"]);
      conn = await this.#request(rng, kind, conn);
    }
    await conn?.close();
  }

  /** Sends one request until it has a final answer (or, for `plain`, one try). */
  async #request(rng: Rng, kind: Kind, conn: NodeClient | null): Promise<NodeClient | null> {
    // With several nodes a keyed merge picks its node once (drawn only then, so a one-node
    // run draws as before and its seeds replay).
    const home = kind === "keyed" && this.urls.length > 1 ? rng.pick(this.urls) : null;
    const big = kind === "keyed" && rng.chance(0.01);
    const count = big ? rng.between(1000, 3000) : rng.between(1, 20);
    const now = Date.now() / 1000;
    const pool = Array.from({ length: count }, () => {
      const amount = ++this.#amount;
      this.sent.byAmount.set(amount, null);
      const mint = rng.chance(0.5);
      const sender = mint ? GENESIS : rng.pick(this.#addresses);
      let receiver = rng.pick(this.#addresses);
      while (receiver === sender) receiver = rng.pick(this.#addresses);
      return kind === "stamped"
        ? { sender, receiver, amount, t: now - rng.next() }
        : { sender, receiver, amount };
    });
    const args: Record<string, unknown> = { pool, verbose: true };
    if (kind === "keyed") args.request_id = rng.uuid();
    this.summary.add(`merges sent (${kind})`);
    this.summary.add("transfers sent", count);
    for (let attempt = 0;; attempt++) {
      if (attempt > 0) {
        this.summary.add("retries");
        if (performance.now() > this.#deadline) {
          this.#unfinished++;
          return conn;
        }
        await new Promise((resolve) => setTimeout(resolve, rng.between(20, 200)));
      }
      let reply: Reply;
      try {
        if (home !== null && conn !== null && conn.url !== home) {
          await conn.close();
          conn = null;
        }
        conn ??= await NodeClient.connect(home ?? rng.pick(this.urls), { timeoutMs: 2000 });
        reply = await conn.request("merge", args, { deadlineMs: REPLY_TIMEOUT_MS });
      } catch (error) {
        if (!(error instanceof NodeUnreachable)) throw error;
        await conn?.close();
        conn = null;
        if (attempt === 0) this.summary.add("connections lost (or refused)");
        if (kind === "plain") return conn; // not safe to send again
        continue;
      }
      if (reply.status === 503) {
        this.summary.add("replies 503 (stopping)");
        continue; // not run: safe to send again, whatever the kind
      }
      if (reply.status === 500) {
        this.summary.add("replies 500");
        if (kind === "plain") return conn; // perhaps stored in part: not safe to send again
        continue;
      }
      this.#record(pool.map((p) => p.amount), reply, kind);
      return conn;
    }
  }

  /** Maps the reply's accepted ids to the transfers (rejected items are skipped in order). */
  #record(amounts: number[], reply: Reply, kind: Kind): void {
    const response = reply.response ?? {};
    if (reply.status !== 202 && reply.status !== 400) {
      this.summary.violate(`undocumented merge reply: ${JSON.stringify(reply).slice(0, 200)}`);
      return;
    }
    const accepted = (response.accepted ?? []) as string[];
    const rejected = new Set(
      ((response.rejected ?? []) as { index: number }[]).map((r) => r.index),
    );
    if (response.replay) this.summary.add(`replays (${response.replay})`);
    if (rejected.size > 0) this.summary.add(`items rejected (${kind})`, rejected.size);
    let next = 0;
    amounts.forEach((amount, index) => {
      if (rejected.has(index)) return;
      const id = accepted[next++];
      if (id === undefined) {
        this.summary.violate(`reply lists fewer ids than accepted items: ${reply.error}`);
        return;
      }
      this.sent.byAmount.set(amount, id);
      this.summary.add("transfers acknowledged");
    });
  }
}
