/**
 * Network faults with real processes: two `foxchain start` nodes whose every link runs through
 * a TCP proxy the test can cut (a partition) and restore (a heal), and a misbehaving peer that
 * floods a node with invalid blocks. Every wait polls with a deadline.
 */
import assert from "node:assert/strict";
import { NodeClient } from "../lib/net/client.ts";
import { GENESIS } from "../lib/core/params.ts";
import { send, startArgs, status } from "./fixtures/network_nodes.ts";
import { addr } from "./fixtures/helpers.ts";
import { poll, withProcesses, withTempDir } from "./fixtures/node.ts";

const WAIT_MS = 30_000;

/** A TCP proxy on loopback to a target set later; `cut()` drops every connection. */
class Proxy {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #open = new Set<Deno.Conn>();
  target = 0;
  up = true;
  readonly #serving: Promise<void>;

  constructor() {
    this.#serving = this.#serve();
  }

  /** The ws:// URL that reaches the target through the proxy. */
  get url(): string {
    return `ws://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}/ws`;
  }

  async #serve(): Promise<void> {
    for await (const conn of this.#listener) {
      if (!this.up || this.target === 0) {
        conn.close();
        continue;
      }
      void this.#pipe(conn);
    }
  }

  async #pipe(conn: Deno.Conn): Promise<void> {
    let upstream: Deno.Conn;
    try {
      upstream = await Deno.connect({ hostname: "127.0.0.1", port: this.target });
    } catch {
      conn.close();
      return;
    }
    this.#open.add(conn).add(upstream);
    const close = () => {
      for (const c of [conn, upstream]) {
        if (this.#open.delete(c)) {
          try {
            c.close();
          } catch { /* closed already */ }
        }
      }
    };
    await Promise.allSettled([
      conn.readable.pipeTo(upstream.writable),
      upstream.readable.pipeTo(conn.writable),
    ]);
    close();
  }

  /** A partition: every connection through the proxy dies, new ones are refused. */
  cut(): void {
    this.up = false;
    for (const c of [...this.#open]) {
      this.#open.delete(c);
      try {
        c.close();
      } catch { /* closed already */ }
    }
  }

  /** The partition heals. */
  heal(): void {
    this.up = true;
  }

  async close(): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#serving.catch(() => {});
  }
}

Deno.test("processes: a partition heals to one tip with every transaction in the chain", async () => {
  const proxies = [new Proxy(), new Proxy()];
  try {
    await withTempDir((dir) =>
      withProcesses(async (spawn) => {
        const start = (db: string, advertise: string, peers: string[]) =>
          spawn(startArgs(db, peers, ["--advertise", advertise, "--sleep", "0.1"]));
        // A and B each advertise their proxy: every link between them runs through one.
        const a = start(`${dir}/a.kv`, proxies[0].url, []);
        const aUrl = await a.listening();
        proxies[0].target = Number(new URL(aUrl).port);
        const b = start(`${dir}/b.kv`, proxies[1].url, [proxies[0].url]);
        const bUrl = await b.listening();
        proxies[1].target = Number(new URL(bUrl).port);
        const clients = [await NodeClient.connect(aUrl), await NodeClient.connect(bUrl)];
        try {
          const live = async () =>
            (await Promise.all(clients.map(status))).every((s) =>
              (s.network as { live: number }).live === 1
            );
          await poll("A and B linked both ways", live, WAIT_MS, 50);

          for (const p of proxies) p.cut();
          await poll(
            "both links down",
            async () =>
              (await Promise.all(clients.map(status))).every((s) =>
                (s.network as { live: number }).live === 0
              ),
            WAIT_MS,
            50,
          );
          // Each side keeps taking transactions and cutting blocks on its own: a fork.
          const ids: string[] = [];
          for (let i = 0; i < 3; i++) {
            ids.push(await send(clients[0], addr(1), 10 + i));
            ids.push(await send(clients[1], addr(2), 20 + i));
          }
          await poll(
            "both sides cut their own blocks during the partition",
            async () => {
              const [sa, sb] = await Promise.all(clients.map(status));
              return sa.pool && (sa.pool as { size: number }).size === 0 &&
                (sb.pool as { size: number }).size === 0 && sa.tip !== null &&
                sb.tip !== null && sa.tip !== sb.tip;
            },
            WAIT_MS,
            50,
          );

          for (const p of proxies) p.heal();
          const tip = await poll(
            "one tip, every transaction in the chain on both",
            async () => {
              const [sa, sb] = await Promise.all(clients.map(status));
              if (sa.tip === null || sa.tip !== sb.tip) return null;
              for (const client of clients) {
                for (const id of ids) {
                  const r = await client.request("tx", { id });
                  if (r.response?.state !== "chain") return null;
                }
              }
              return sa.tip as string;
            },
            WAIT_MS,
            100,
          );
          assert.match(tip, /^[0-9a-f]{64}$/);
          const balance = async (client: NodeClient, n: number) =>
            (await client.request("balance", { address: addr(n) })).response!.balance;
          for (const client of clients) {
            assert.equal(await balance(client, 1), 10 + 11 + 12);
            assert.equal(await balance(client, 2), 20 + 21 + 22);
          }
        } finally {
          await Promise.all(clients.map((c) => c.close().catch(() => {})));
        }
      })
    );
  } finally {
    await Promise.all(proxies.map((p) => p.close()));
  }
});

Deno.test("processes: a peer flooding invalid blocks is disconnected; clients are still served", async () => {
  await withTempDir((dir) =>
    withProcesses(async (spawn) => {
      const node = spawn(startArgs(`${dir}/a.kv`, []));
      const url = await node.listening();
      const client = await NodeClient.connect(url);
      const rogue = await NodeClient.connect(url);
      try {
        const hello = await rogue.request("hello", {
          network: "foxchain",
          rules: (await status(client)).rules,
          node: "00000000000000ff",
          height: -1,
          tip: null,
          listen: null,
        });
        assert.equal(hello.status, 200, hello.error);
        const junk = {
          items: [{ sender: GENESIS, receiver: addr(1), amount: 5, t: 1, prev_hash: null }],
          prev_hash: null,
          hash: "0".repeat(64),
          proof: { rule: "count", time: 1, size: 1, earliest: 1, latest: 1 },
        };
        let closed = false;
        for (let i = 0; i < 40 && !closed; i++) {
          try {
            const reply = await rogue.request("merge", { blocks: [junk] });
            assert.equal(reply.status, 400); // answered with the reason first
            assert.match(reply.error, /Nothing accepted: block 0:/);
          } catch {
            closed = true; // the node closed the link
          }
        }
        assert.ok(closed, "the node kept a link that sent 40 invalid blocks");
        assert.equal((await status(client)).height, -1);
        assert.equal(await send(client, addr(2), 3) !== "", true);
        await poll("the node still cuts blocks", async () => (await status(client)).height === 0);
        await node.waitForStderr(/Closing the link from peer 00000000000000ff/);
      } finally {
        await client.close().catch(() => {});
        await rogue.close().catch(() => {});
      }
    })
  );
});
