/**
 * A graceful stop of a real `serve` process under load: every merge it acknowledged is stored,
 * and every merge it stored was acknowledged (before the fix, a stop closed the sockets before
 * the merges under way answered: 123-169 transactions per run were stored unacknowledged).
 * The clients are hostile to a clean close: each sends a new merge for every reply, 503s
 * included, so requests are still arriving when the node closes the connections (which Deno
 * then resets): the replies to the merges that ran must still reach them.
 */
import assert from "node:assert/strict";
import { NodeClient } from "../lib/net/client.ts";
import { GENESIS } from "../lib/core/params.ts";
import { openStore } from "../lib/store/store.ts";
import { txId } from "../lib/core/transaction.ts";
import { addr } from "./fixtures/helpers.ts";
import { withProcesses, withTempDir } from "./fixtures/node.ts";

const CLIENTS = 6;
/** Merges each client keeps in flight. */
const WINDOW = 16;
const ITEMS = 20;

interface Merge {
  ids: string[];
  sentAfterStop: boolean;
  outcome?: "acked" | "refused" | "lost";
}

Deno.test("SIGINT under load: every acknowledged merge is stored, every stored one acknowledged", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/node.kv`;
    const merges: Merge[] = [];
    await withProcesses(async (spawn) => {
      const serve = spawn(["serve", "--port", "0", "--hostname", "127.0.0.1", "--db", db]);
      const url = await serve.listening();
      const clients = await Promise.all(
        Array.from({ length: CLIENTS }, () => NodeClient.connect(url)),
      );
      let stopped = false;
      let amount = 0;
      const base = Date.now() / 1000 - 5;
      let firstAck!: () => void;
      const acked = new Promise<void>((resolve) => (firstAck = resolve));
      // Each client keeps WINDOW merges in flight, sending a new one for each reply, until
      // its connection closes: the load goes on through the stop.
      const send = (client: NodeClient): Promise<void> => {
        const pool = Array.from({ length: ITEMS }, () => {
          amount++;
          return { sender: GENESIS, receiver: addr(amount % 9), amount, t: base + amount / 1e6 };
        });
        const merge: Merge = { ids: pool.map(txId), sentAfterStop: stopped };
        merges.push(merge);
        return client.request("merge", { pool }).then(
          (reply) => {
            merge.outcome = reply.status === 202 ? "acked" : "refused";
            assert.ok(reply.status === 202 || reply.status === 503, JSON.stringify(reply));
            firstAck();
            return send(client);
          },
          () => {
            merge.outcome = "lost";
          },
        );
      };
      const load = clients.flatMap((c) => Array.from({ length: WINDOW }, () => send(c)));
      await acked;
      stopped = true;
      const status = await serve.stop("SIGINT");
      await Promise.all(load);
      await Promise.all(clients.map((c) => c.close()));
      assert.equal(status.code, 0, serve.stderr);
      assert.match(serve.stderr, /Stopped cleanly\./);
    });

    const count = (o: Merge["outcome"]) => merges.filter((m) => m.outcome === o).length;
    console.log(
      `merges: ${count("acked")} acknowledged, ${count("refused")} refused (503), ` +
        `${count("lost")} unanswered; ${
          merges.filter((m) => m.sentAfterStop).length
        } sent after SIGINT`,
    );
    assert.ok(count("acked") > 0);
    assert.ok(merges.some((m) => m.sentAfterStop), "the load did not go on through the stop");
    const store = await openStore(db);
    try {
      for (const merge of merges) {
        const stored = await Promise.all(merge.ids.map((id) => store.lookupTx(id)));
        const n = stored.filter((r) => r !== null).length;
        assert.equal(n, merge.outcome === "acked" ? ITEMS : 0, `a ${merge.outcome} merge`);
      }
    } finally {
      await store.close();
    }
  });
});
