/**
 * The network as users run it: real `foxchain start --peer ...` processes on loopback (port 0,
 * so each picks a free port and advertises the one it got). Transactions spread and reach the
 * chain everywhere, simultaneous builders converge, a killed node catches up on restart, and a
 * node of another network or other rules is refused with the reason in its log, `status` and
 * `peers`. Every wait polls with a deadline.
 */
import assert from "node:assert/strict";
import { NodeClient } from "../lib/net/client.ts";
import { addr } from "./fixtures/helpers.ts";
import { liveLinks, send, startArgs, status } from "./fixtures/network_nodes.ts";
import { type MainProcess, poll, runMain, withProcesses, withTempDir } from "./fixtures/node.ts";

const BUILDER = ["--sleep", "0.1", "--jitter", "0.1"];
const WAIT_MS = 30_000;

type Spawn = (args: string[]) => MainProcess;

/** A started node: its process, its URL and a client on it. */
interface RunningNode {
  proc: MainProcess;
  url: string;
  client: NodeClient;
}

/** Starts `foxchain start` on `db` with `peers`, waits for its URL and connects a client. */
async function startFoxchain(
  spawn: Spawn,
  db: string,
  peers: string[],
  extra: string[] = [],
): Promise<RunningNode> {
  const proc = spawn(startArgs(db, peers, [...BUILDER, ...extra]));
  const url = await proc.listening();
  return { proc, url, client: await NodeClient.connect(url) };
}

/** Runs `body` with three linked nodes in a line (B dials A, C dials B), closing clients after. */
async function withThreeNodes(
  body: (nodes: RunningNode[], spawn: Spawn, dir: string) => Promise<void>,
): Promise<void> {
  await withTempDir((dir) =>
    withProcesses(async (spawn) => {
      const nodes: RunningNode[] = [];
      try {
        nodes.push(await startFoxchain(spawn, `${dir}/a.kv`, []));
        nodes.push(await startFoxchain(spawn, `${dir}/b.kv`, [nodes[0].url]));
        nodes.push(await startFoxchain(spawn, `${dir}/c.kv`, [nodes[1].url]));
        // Peers share addresses: every node ends up linked to both others.
        await poll(
          "every node linked to both others",
          async () => {
            const live = await Promise.all(nodes.map((n) => liveLinks(n.client)));
            return live.every((l) => l === 2);
          },
          WAIT_MS,
          50,
        );
        await body(nodes, spawn, dir);
      } finally {
        await Promise.all(nodes.map((n) => n.client.close().catch(() => {})));
      }
    })
  );
}

async function inChain(client: NodeClient, id: string): Promise<boolean> {
  const reply = await client.request("tx", { id });
  return reply.status === 200 && reply.response?.state === "chain";
}

/** Polls until every node has every id in its chain and all share one tip; returns the tip. */
async function converged(nodes: RunningNode[], ids: string[]): Promise<string> {
  return await poll(
    `${ids.length} transactions in the chain on one tip everywhere`,
    async () => {
      const tips = await Promise.all(nodes.map(async (n) => (await status(n.client)).tip));
      if (tips[0] === null || tips.some((t) => t !== tips[0])) return null;
      for (const n of nodes) {
        for (const id of ids) if (!await inChain(n.client, id)) return null;
      }
      return tips[0] as string;
    },
    WAIT_MS,
    100,
  );
}

async function balances(client: NodeClient, addresses: string[]): Promise<number[]> {
  return await Promise.all(addresses.map(async (address) => {
    const reply = await client.request("balance", { address });
    return reply.response!.balance as number;
  }));
}

Deno.test("processes: a transaction sent to A is in the chain on B and C", async () => {
  await withThreeNodes(async ([a, b, c]) => {
    const id = await send(a.client, addr(1), 7);
    await poll(
      "the transaction in B's and C's chain",
      async () => {
        return await inChain(b.client, id) && await inChain(c.client, id);
      },
      WAIT_MS,
      50,
    );
    const [ba, bc] = await Promise.all([
      balances(b.client, [addr(1)]),
      balances(c.client, [addr(1)]),
    ]);
    assert.deepEqual(ba, [7]);
    assert.deepEqual(bc, [7]);
  });
});

Deno.test("processes: three builders cutting at once converge on one tip", async () => {
  await withThreeNodes(async (nodes) => {
    // Every node gets transactions at the same moments, so every builder cuts its own blocks
    // at the same heights: forks that fork choice has to settle.
    const ids: string[] = [];
    for (let round = 0; round < 5; round++) {
      ids.push(
        ...await Promise.all(nodes.map((n, i) => send(n.client, addr(i), round + 1))),
      );
    }
    const tip = await converged(nodes, ids);
    const heights = await Promise.all(nodes.map(async (n) => (await status(n.client)).height));
    assert.ok(heights.every((h) => h === heights[0]), `heights ${heights}`);
    const addresses = [addr(0), addr(1), addr(2)];
    const all = await Promise.all(nodes.map((n) => balances(n.client, addresses)));
    assert.deepEqual(all[1], all[0]);
    assert.deepEqual(all[2], all[0]);
    assert.deepEqual(all[0], [15, 15, 15]);
    assert.match(tip, /^[0-9a-f]{64}$/);
  });
});

Deno.test("processes: a node killed while others go on catches up on restart", async () => {
  await withThreeNodes(async (nodes, spawn, dir) => {
    const [a, b, c] = nodes;
    const before = await send(a.client, addr(3), 1);
    await converged(nodes, [before]);
    await c.client.close();
    await c.proc.stop("SIGKILL");
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      ids.push(await send((i % 2 ? a : b).client, addr(4 + i % 3), i + 1));
    }
    await converged([a, b], ids);
    // Same database, a new port (port 0): it dials B and catches up by locator.
    const back = await startFoxchain(spawn, `${dir}/c.kv`, [b.url]);
    nodes[2] = back;
    const tip = await converged(nodes, [before, ...ids]);
    const addresses = [addr(3), addr(4), addr(5), addr(6)];
    const all = await Promise.all(nodes.map((n) => balances(n.client, addresses)));
    assert.deepEqual(all[2], all[0]);
    assert.deepEqual(all[1], all[0]);
    assert.equal((await status(back.client)).tip, tip);
  });
});

Deno.test("processes: a node of another network or other rules is refused, and says why", async () => {
  await withTempDir((dir) =>
    withProcesses(async (spawn) => {
      const a = await startFoxchain(spawn, `${dir}/a.kv`, []);
      const other = await startFoxchain(spawn, `${dir}/o.kv`, [a.url], ["--network", "other"]);
      const rules = await startFoxchain(spawn, `${dir}/r.kv`, [a.url], ["-k", "2"]);
      try {
        // The dialling side logs the refusal with the reason and stops retrying.
        await other.proc.waitForStderr(
          /Link to .* is refused: it is on network "foxchain", this node on "other"; not retrying/,
          WAIT_MS,
        );
        await rules.proc.waitForStderr(
          /Link to .* is refused: its rules are "count >= 1; bare blocks refused", this node's "count >= 2/,
          WAIT_MS,
        );
        // The node dialled says whom it refused and why.
        await a.proc.waitForStderr(
          /Refused a link from node [0-9a-f]+: it is on network "other", this node on "foxchain"/,
          WAIT_MS,
        );
        assert.equal(await liveLinks(a.client), 0);

        const peers = await runMain(["peers", "-n", other.url]);
        assert.equal(peers.code, 0, peers.stderr);
        assert.match(peers.stdout, new RegExp(`${escape(a.url)}\\s+refused`));
        assert.match(peers.stdout, /network "foxchain", this node on "other"/);
        const shown = await runMain(["status", "-n", rules.url]);
        assert.equal(shown.code, 0, shown.stderr);
        assert.match(shown.stdout, /^network {2}foxchain, node [0-9a-f]+, at ws:\/\//m);
        assert.match(shown.stdout, /^links {4}0 up of 1$/m);
        assert.match(
          shown.stdout,
          /its rules are "count >= 1; bare blocks refused", this node's "count >= 2/,
        );
      } finally {
        await Promise.all([a, other, rules].map((n) => n.client.close()));
      }
    })
  );
});

Deno.test("processes: status and peers show each live link with height, tip, lag, last seen", async () => {
  await withThreeNodes(async (nodes) => {
    const [a, b] = nodes;
    const id = await send(a.client, addr(9), 2);
    const tip = await converged(nodes, [id]);
    // B learns A's height from the block A pushes (or the next catch-up), not only from hello.
    await poll(
      "B's link to A shows A's tip",
      async () => {
        const links = ((await b.client.request("peers")).response!.links ?? []) as {
          url: string;
          tip: string | null;
        }[];
        return links.find((l) => l.url === a.url)?.tip === tip;
      },
      WAIT_MS,
      50,
    );
    const shown = await runMain(["status", "-n", b.url]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^links {4}2 up of 2$/m);
    assert.match(shown.stdout, /^PEER\s+STATE\s+HEIGHT\s+TIP\s+LAG\s+LAST SEEN$/m);
    const row = shown.stdout.split("\n").find((l) => l.startsWith(a.url));
    assert.ok(row, shown.stdout);
    assert.match(row, new RegExp(`^${escape(a.url)}\\s+up\\s+\\d+\\s+${tip.slice(0, 12)}\\s+\\S+`));
    assert.match(row, /\d+\.\d s ago$/);
    const peers = await runMain(["peers", "-n", b.url]);
    assert.equal(peers.code, 0, peers.stderr);
    assert.ok(peers.stdout.split("\n").includes(a.url), peers.stdout);
    assert.match(peers.stdout, new RegExp(`^${escape(a.url)}\\s+up\\s`, "m"));
    const json = JSON.parse((await runMain(["peers", "-n", b.url, "--json"])).stdout);
    assert.equal(json.links.length, 2);
    const health = await (await fetch(b.url.replace("ws://", "http://").replace("/ws", "/health")))
      .json();
    assert.equal(health.links, 2);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
