/**
 * One simulated run: N foxchain nodes (store, protocol, network layer, builder) in one process
 * on a simulated network and clock, clients sending transactions, then faults (lost and
 * duplicated requests, partitions and heals, nodes going down and coming back), then calm.
 * Afterwards every invariant the network promises is checked. Every random choice is drawn
 * from the seed, so a failing seed can be run again to watch it fail.
 */
import { GENESIS } from "../../lib/core/params.ts";
import type { ChainRules } from "../../lib/consensus/rules.ts";
import { Builder } from "../../lib/node/builder.ts";
import { Protocol } from "../../lib/node/protocol.ts";
import { Network } from "../../lib/net/network.ts";
import { verifyStore } from "../../lib/store/audit.ts";
import { openStore, type Store } from "../../lib/store/store.ts";
import { SimClock, tracked } from "./clock.ts";
import { CALM, type Faults, type NetStats, SimNetwork } from "./network.ts";

/** The shape of a run. */
export interface SimOptions {
  /** Nodes in the network (default 4). */
  nodes: number;
  /** Transactions clients send (default 40). */
  transactions: number;
  /** Simulated seconds of load and faults (default 30). */
  faultSeconds: number;
  /** Simulated seconds after the faults stop within which all must converge (default 60). */
  settleSeconds: number;
  /** The faults while they last. */
  faults: Faults;
  /** Whether nodes go down and come back during the faults (default true). */
  restarts: boolean;
  /** Whether the network partitions during the faults (default true). */
  partitions: boolean;
}

/** The default run: 4 nodes, 40 transactions, 30 s of faults, 60 s to converge. */
export const SIM_DEFAULTS: SimOptions = {
  nodes: 4,
  transactions: 40,
  faultSeconds: 30,
  settleSeconds: 60,
  faults: { minDelayMs: 1, maxDelayMs: 80, dropRate: 0.02, duplicateRate: 0.05 },
  restarts: true,
  partitions: true,
};

/** What a run found. */
export interface SimReport {
  seed: number;
  /** Every invariant that failed, in words; empty when the run passed. */
  violations: string[];
  /** Transactions acknowledged to clients. */
  acknowledged: number;
  /** Of them, in the chain / dropped with a reason (on the first node). */
  inChain: number;
  dropped: number;
  /** The common height at the end (or the first node's). */
  height: number;
  /** Simulated seconds after the faults stopped until every node agreed, or null. */
  convergedAfter: number | null;
  /** Timers run. */
  events: number;
  /** What the network did. */
  net: NetStats;
  partitions: number;
  restarts: number;
}

const RULES: ChainRules = { rules: [{ kind: "count", size: 1 }], acceptBareBlocks: false };
const START_MS = 1_790_000_000_000;
const ADDRESSES = Array.from(
  { length: 8 },
  (_, i) => `00000000-0000-4000-8000-${(i + 1).toString(16).padStart(12, "0")}`,
);

interface SimNode {
  url: string;
  path: string;
  store: Store;
  protocol: Protocol;
  network: Network;
  up: boolean;
}

/** Runs the simulation for `seed`. */
export async function simulate(
  seed: number,
  options: Partial<SimOptions> = {},
): Promise<SimReport> {
  const o = { ...SIM_DEFAULTS, ...options };
  const clock = new SimClock(seed, START_MS);
  const net = new SimNetwork(clock);
  const rnd = clock.random;
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)];
  // On tmpfs when there is one: the nodes' KV files need to survive a restart, not a reboot,
  // and an fsync per commit on a disk made each simulated second cost real ones.
  const dir = await Deno.makeTempDir({ prefix: "foxchain-sim-", dir: await tmpfs() });
  const nodes: SimNode[] = [];
  const acked = new Set<string>();
  const violations: string[] = [];
  let partitions = 0;
  let restarts = 0;

  const boot = async (url: string, path: string, nodeId: string): Promise<SimNode> => {
    const store = await openStore(path, { rules: RULES, clock });
    const protocol = new Protocol(store, { clock, timeZone: "UTC" });
    const network = new Network({
      // The network layer's own KV work runs between timers: counted as active, so that the
      // clock waits for it and the run stays a function of the seed.
      store: tracked(store, clock),
      protocol: tracked(protocol, clock),
      name: "sim",
      listen: url,
      // Every node knows the first one only: the rest is found by sharing addresses.
      peers: url === nodes[0]?.url || nodes.length === 0 ? [] : [nodes[0].url],
      dialer: net.dialerFor(url),
      scheduler: clock,
      nodeId,
      timings: { syncEveryMs: 3_000, reconcileEveryMs: 5_000, tipPollMs: 500 },
      linkTimings: {
        dialTimeoutMs: 2_000,
        handshakeTimeoutMs: 3_000,
        initialBackoffMs: 200,
        maxBackoffMs: 4_000,
        stableMs: 5_000,
        heartbeatMs: 3_000,
        heartbeatDeadlineMs: 2_000,
      },
    });
    net.attach(url, protocol);
    await clock.track(network.start());
    return { url, path, store, protocol, network, up: true };
  };
  const down = async (node: SimNode) => {
    node.up = false;
    net.detach(node.url);
    await node.network.stop();
    await node.store.close();
  };

  // A builder per node: a pass every 1 s plus up to 0.5 s of jitter, as `--jitter` does.
  const builderTick = (index: number) => {
    clock.setTimeout(() => {
      const node = nodes[index]; // a restarted node is a new object
      if (node.up) {
        const builder = new Builder(node.store, { clock, maxBlock: 200 });
        void clock.track(builder.pass().catch(() => {})).finally(() => builderTick(index));
      } else builderTick(index);
    }, 1_000 + Math.floor(rnd() * 500));
  };

  try {
    for (let i = 0; i < o.nodes; i++) {
      const url = `ws://node${i}.sim:9000/ws`;
      const id = (seed * 100 + i).toString(16).padStart(16, "0");
      const node = await boot(url, `${dir}/node${i}.kv`, id);
      nodes.push(node);
      builderTick(i);
    }

    // Clients: transactions at random moments of the fault phase, to random live nodes.
    for (let i = 0; i < o.transactions; i++) {
      const at = Math.floor(rnd() * o.faultSeconds * 1000);
      const mint = rnd() < 0.5;
      const tx = {
        sender: mint ? GENESIS : pick(ADDRESSES),
        receiver: pick(ADDRESSES),
        amount: 1 + Math.floor(rnd() * (mint ? 100 : 60)),
      };
      const target = Math.floor(rnd() * o.nodes);
      clock.setTimeout(() => {
        const node = nodes[target].up ? nodes[target] : nodes.find((n) => n.up);
        if (!node) return;
        const text = JSON.stringify({ op: "merge", args: { pool: [tx], verbose: true } });
        void clock.track(node.protocol.handle(text)).then((reply) => {
          const ids = reply.response?.accepted;
          if (reply.status === 202 && Array.isArray(ids)) { for (const id of ids) acked.add(id); }
        });
      }, at);
    }

    // Faults.
    net.faults = o.faults;
    const faultEnd = START_MS + o.faultSeconds * 1000;
    if (o.partitions) {
      for (let at = 2_000; at < o.faultSeconds * 1000 - 3_000;) {
        const start = at;
        const length = 2_000 + Math.floor(rnd() * 8_000);
        clock.setTimeout(() => {
          const shuffled = nodes.map((n) => n.url).sort(() => rnd() - 0.5);
          const cut = 1 + Math.floor(rnd() * (shuffled.length - 1));
          net.partition([shuffled.slice(0, cut), shuffled.slice(cut)]);
          partitions++;
        }, start);
        clock.setTimeout(() => net.heal(), Math.min(start + length, o.faultSeconds * 1000));
        at = start + length + 1_000 + Math.floor(rnd() * 4_000);
      }
    }
    if (o.restarts) {
      const count = 1 + Math.floor(rnd() * 2);
      for (let r = 0; r < count; r++) {
        const at = 1_000 + Math.floor(rnd() * (o.faultSeconds * 1000 - 10_000));
        const length = 1_000 + Math.floor(rnd() * 7_000);
        const index = Math.floor(rnd() * o.nodes);
        clock.setTimeout(() => {
          const node = nodes[index];
          if (!node.up) return;
          restarts++;
          void clock.track(down(node)).then(() => {
            clock.setTimeout(() => {
              void clock.track(
                boot(node.url, node.path, node.network.nodeId).then((n) => (nodes[index] = n)),
              );
            }, length);
          });
        }, at);
      }
    }
    let events = await clock.runUntil(faultEnd);

    // Calm: faults stop, the partition heals; every down node is back by now.
    net.faults = CALM;
    net.heal();
    let convergedAfter: number | null = null;
    const settleEnd = faultEnd + o.settleSeconds * 1000;
    while (clock.now() < settleEnd) {
      events += await clock.runUntil(clock.now() + 1_000);
      if (nodes.every((n) => n.up) && await agreed(nodes)) {
        convergedAfter = (clock.now() - faultEnd) / 1000;
        // A few more seconds, so that pools drain and nothing moves after agreeing.
        events += await clock.runUntil(clock.now() + 5_000);
        break;
      }
    }
    if (convergedAfter === null) {
      violations.push(`nodes did not agree within ${o.settleSeconds} s after the faults stopped`);
    }
    const checked = await check(nodes, acked, clock.now() / 1000, violations);
    if (violations.length > 0 && Deno.env.get("FOXCHAIN_SIM_DEBUG")) {
      for (const n of nodes) {
        const tip = await n.store.tip();
        console.error(
          n.url,
          tip.height,
          tip.hash?.slice(0, 12),
          (await n.store.poolStats()).size,
          JSON.stringify(
            n.network.links().map((l) => [l.url.slice(5, 10), l.state, l.height, l.error]),
          ),
        );
      }
    }
    return {
      seed,
      violations,
      acknowledged: acked.size,
      inChain: checked.inChain,
      dropped: checked.dropped,
      height: checked.height,
      convergedAfter,
      events,
      net: net.stats,
      partitions,
      restarts,
    };
  } finally {
    for (const node of nodes) {
      if (node.up) await down(node).catch(() => {});
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** /dev/shm if it is a writable directory, else the default temp dir. */
async function tmpfs(): Promise<string | undefined> {
  try {
    const info = await Deno.stat("/dev/shm");
    return info.isDirectory ? "/dev/shm" : undefined;
  } catch {
    return undefined;
  }
}

/** Whether every node has the same tip and an empty pool. */
async function agreed(nodes: readonly SimNode[]): Promise<boolean> {
  const tips = await Promise.all(nodes.map((n) => n.store.tip()));
  if (!tips.every((t) => t.hash === tips[0].hash)) return false;
  const pools = await Promise.all(nodes.map((n) => n.store.poolStats()));
  return pools.every((p) => p.size === 0);
}

/** The end-state invariants, each failure pushed to `violations`. */
async function check(
  nodes: readonly SimNode[],
  acked: ReadonlySet<string>,
  nowSeconds: number,
  violations: string[],
): Promise<{ inChain: number; dropped: number; height: number }> {
  const tips = await Promise.all(nodes.map((n) => n.store.tip()));
  tips.forEach((tip, i) => {
    if (tip.hash !== tips[0].hash) {
      violations.push(
        `node ${i} is on ${tip.height}/${tip.hash?.slice(0, 12)}, node 0 on ${tips[0].height}/${
          tips[0].hash?.slice(0, 12)
        }`,
      );
    }
  });
  const balances = await Promise.all(nodes.map(async (n) => {
    const out: string[] = [];
    for await (const [address, value] of n.store.allBalances()) out.push(`${address}=${value}`);
    return out.join(",");
  }));
  balances.forEach((b, i) => {
    if (b !== balances[0]) violations.push(`node ${i}'s balances differ from node 0's`);
  });
  const ids = [...acked];
  const states = await Promise.all(nodes.map(async (node, i) => {
    const verdict = await verifyStore(node.store, { indexes: true, nowSeconds });
    if (!verdict.ok) violations.push(`node ${i} fails verify: ${verdict.reason}`);
    return await node.store.lookupTxs(ids);
  }));
  let inChain = 0;
  let dropped = 0;
  ids.forEach((id, j) => {
    const records = states.map((s) => s[j]);
    const chained = records.filter((r) => r?.state === "chain").length;
    if (records.some((r) => r?.state === "pool")) violations.push(`${id} is still pooled`);
    if (chained === nodes.length) inChain++;
    else if (chained > 0) violations.push(`${id} is in the chain on ${chained} nodes only`);
    else if (records.some((r) => r?.state === "dropped" && r.reason)) dropped++;
    else violations.push(`acknowledged ${id} is neither in the chain nor dropped with a reason`);
  });
  return { inChain, dropped, height: tips[0].height };
}
