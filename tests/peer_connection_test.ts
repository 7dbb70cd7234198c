/**
 * PeerConnection: keeps a link to a peer alive. Real nodes and a scripted raw server on
 * loopback for the I/O; a fake scheduler for every timer (dial timeouts, deadlines, backoff,
 * heartbeats), so the tests step through minutes of retries without waiting for them.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { formatRecord } from "../lib/node/log.ts";
import { type Dialer, DialFailed, type Link } from "../lib/net/link.ts";
import {
  HandshakeRefused,
  PeerConnection,
  type PeerConnectionOptions,
  type PeerEvent,
  showMs,
} from "../lib/net/peer_connection.ts";
import { createWsDialer } from "../lib/net/ws_conn.ts";
import { type FakeScheduler, fakeScheduler } from "./fixtures/net.ts";
import { poll, startNode, withNode } from "./fixtures/node.ts";
import { type RawPeer, serverFrame, withRawServer } from "./fixtures/raw_ws_server.ts";

/** A peer connection on a fake scheduler, its events, and foxchain's log lines (debug up). */
interface Harness<H> {
  peer: PeerConnection<H>;
  scheduler: FakeScheduler;
  events: PeerEvent<H>[];
  lines: string[];
  /** Waits (bounded, real time) for the n-th event (1-based) and returns it. */
  event(n: number): Promise<PeerEvent<H>>;
}

async function withPeer<H = undefined>(
  url: string,
  opts: PeerConnectionOptions<H>,
  body: (h: Harness<H>) => Promise<void>,
): Promise<void> {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r: LogRecord) => lines.push(formatRecord(r).replace(/^\[[^\]]+\] /, "")) },
    loggers: [
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
      { category: ["foxchain"], lowestLevel: "debug", sinks: ["mem"] },
    ],
  });
  const scheduler = (opts.scheduler as FakeScheduler | undefined) ?? fakeScheduler();
  const peer = new PeerConnection<H>(url, {
    dialer: createWsDialer({ scheduler }),
    ...opts,
    scheduler,
  });
  const events: PeerEvent<H>[] = [];
  peer.on((e) => events.push(e));
  try {
    peer.start();
    await body({
      peer,
      scheduler,
      events,
      lines,
      event: async (n) => {
        await poll(
          `event ${n} (have ${events.map((e) => e.type).join(", ")})`,
          () => events.length >= n,
        );
        return events[n - 1];
      },
    });
  } finally {
    await peer.stop("test over");
    await reset();
  }
}

/** The delay a down event asked for; fails on any other event. */
function retryIn<H>(event: PeerEvent<H>): number {
  assert.equal(event.type, "down", JSON.stringify(event));
  return (event as { retryInMs: number }).retryInMs;
}

/** Answers every request with a 200 naming the op, recording the ops; answers a close. */
function recording(ops: string[]) {
  return async (peer: RawPeer) => {
    for (let frame = await peer.readFrame(); frame; frame = await peer.readFrame()) {
      if (frame.opcode === 0x8) {
        await peer.write(serverFrame(0x8, frame.payload));
        return;
      }
      const { op } = JSON.parse(new TextDecoder().decode(frame.payload));
      ops.push(op);
      await peer.send(JSON.stringify({ status: 200, error: "OK", response: { op } }));
    }
  };
}

// ---- up -----------------------------------------------------------------------------------------

Deno.test("a link runs the handshake first, then is up: logged, with the handshake's result", async () => {
  await withNode(async (node) => {
    const handshake = async (
      link: { request: (op: string) => Promise<{ response?: unknown }> },
    ) => {
      const reply = await link.request("time");
      return (reply.response as { time_zone: string }).time_zone;
    };
    await withPeer(node.url, { handshake }, async ({ peer, event, lines }) => {
      assert.equal(peer.state, "connecting");
      const up = await event(1);
      assert.equal(up.type, "up");
      assert.equal((up as { hello: string }).hello, "UTC");
      assert.equal(peer.state, "up");
      assert.equal(peer.info().hello, "UTC");
      assert.ok(lines.includes(`Link to ${node.url} is up.`), lines.join("\n"));
      assert.deepEqual((await peer.request("peers")).response, { peers: [] });
      await peer.stop();
      assert.equal(peer.state, "stopped");
      await poll("the node to see the link closed", () => node.server.connections() === 0);
    });
  });
});

// ---- down and back up --------------------------------------------------------------------------

Deno.test("a node going away and coming back: down with the reason, backoff, up again", async () => {
  let node = await startNode();
  const port = node.server.port;
  try {
    await withPeer(node.url, {}, async ({ peer, scheduler, event, lines }) => {
      assert.equal((await event(1)).type, "up");
      await node.close();
      const down = await event(2);
      assert.match((down as { reason: string }).reason, /closed the link \(1001 /);
      const first = retryIn(down);
      assert.ok(first >= 250 && first <= 500, `first retry in ${first} ms`);
      assert.ok(
        lines.includes(
          `WARNING Link to ${node.url} is down: ${(down as { reason: string }).reason}; ` +
            `retrying in ${showMs(first)}.`,
        ),
        lines.join("\n"),
      );
      // Nothing listens now: each attempt fails and the next waits about twice as long.
      scheduler.tick(first);
      const second = retryIn(await event(3));
      assert.ok(second >= 500 && second <= 1000, `second retry in ${second} ms`);
      assert.match(peer.info().lastError!, /^cannot connect: .*refused/i);
      scheduler.tick(second);
      const third = retryIn(await event(4));
      assert.ok(third >= 1000 && third <= 2000, `third retry in ${third} ms`);
      assert.equal(peer.state, "down");
      assert.equal(peer.info().retryAt, scheduler.now() + third);

      node = await startNode({ port });
      scheduler.tick(third - 1);
      assert.equal(peer.state, "down");
      scheduler.tick(1);
      assert.equal((await event(5)).type, "up");
      assert.equal(peer.info().lastError, null);
    });
  } finally {
    await node.close();
  }
});

Deno.test("the backoff doubles up to maxBackoffMs, jittered; repeated failures log at debug", async () => {
  const url = "ws://127.0.0.1:1/ws";
  const dialer: Dialer = {
    dial: (u) => Promise.reject(new DialFailed(u, "connect", "Connection refused (os error 111)")),
  };
  await withPeer(url, { dialer, initialBackoffMs: 1_000, maxBackoffMs: 8_000 }, async (h) => {
    const delays: number[] = [];
    for (let n = 1; n <= 7; n++) {
      delays.push(retryIn(await h.event(n)));
      h.scheduler.tick(delays.at(-1)!);
    }
    const steps = [1_000, 2_000, 4_000, 8_000, 8_000, 8_000, 8_000];
    delays.forEach((d, i) => {
      assert.ok(d >= steps[i] / 2 && d <= steps[i], `delay ${i + 1}: ${d} ms, step ${steps[i]}`);
    });
    assert.ok(new Set(delays.slice(3)).size > 1, `no jitter in ${delays}`);
    const reason = "cannot connect: Connection refused (os error 111)";
    assert.equal(
      h.lines.filter((l) => l.startsWith(`Link to ${url} is down: ${reason}`)).length,
      1,
    );
    assert.equal(h.lines.filter((l) => l.startsWith(`Link to ${url} is still down`)).length, 6);
  });
});

Deno.test("the same seed gives the same retry delays", async () => {
  const dialer: Dialer = { dial: (u) => Promise.reject(new DialFailed(u, "connect", "refused")) };
  const delaysFor = async (seed: number) => {
    const delays: number[] = [];
    await withPeer("ws://127.0.0.1:1/ws", { dialer, scheduler: fakeScheduler(seed) }, async (h) => {
      for (let n = 1; n <= 5; n++) {
        delays.push(retryIn(await h.event(n)));
        h.scheduler.tick(delays.at(-1)!);
      }
    });
    return delays;
  };
  const a = await delaysFor(7);
  assert.deepEqual(await delaysFor(7), a);
  assert.notDeepEqual(await delaysFor(8), a);
});

Deno.test("a dial that hangs is given up after dialTimeoutMs and retried", async () => {
  await withRawServer(async () => {}, async (server) => {
    await withPeer(server.url, { dialTimeoutMs: 2_000 }, async ({ scheduler, event }) => {
      await poll("the server to accept", () => server.accepted() === 1);
      scheduler.tick(2_000);
      const down = await event(1);
      assert.match((down as { reason: string }).reason, /within 2000 ms/);
      scheduler.tick(retryIn(down));
      await poll("a second attempt", () => server.accepted() === 2);
    });
  }, { upgrade: () => null });
});

// ---- dead links and heartbeats -----------------------------------------------------------------

Deno.test("a link whose peer stops answering is closed at the heartbeat's deadline and redialled", async () => {
  let answering = true;
  const ops: string[] = [];
  await withRawServer(async (raw) => {
    for (let frame = await raw.readFrame(); frame; frame = await raw.readFrame()) {
      if (frame.opcode === 0x8) {
        await raw.write(serverFrame(0x8, frame.payload));
        return;
      }
      ops.push(JSON.parse(new TextDecoder().decode(frame.payload)).op);
      if (answering) await raw.send(JSON.stringify({ status: 200, error: "OK", response: {} }));
    }
  }, async (server) => {
    const timings = { heartbeatMs: 10_000, heartbeatDeadlineMs: 3_000 };
    await withPeer(server.url, timings, async ({ peer, scheduler, event }) => {
      assert.equal((await event(1)).type, "up");
      scheduler.tick(10_000);
      await poll("the first heartbeat", () => ops.length === 1);
      assert.deepEqual(ops, ["time"]);
      await poll("its reply", () => peer.info().lastSeen === scheduler.now());
      answering = false;
      scheduler.tick(10_000);
      await poll("the second heartbeat", () => ops.length === 2);
      scheduler.tick(2_999);
      assert.equal(peer.state, "up");
      scheduler.tick(1);
      const down = await event(2);
      assert.match((down as { reason: string }).reason, /no reply to "time" within 3000 ms/);
      answering = true;
      scheduler.tick(retryIn(down));
      assert.equal((await event(3)).type, "up");
      assert.equal(server.accepted(), 2);
    });
  });
});

Deno.test("a link busy with requests gets no heartbeat", async () => {
  const ops: string[] = [];
  await withRawServer(recording(ops), async (server) => {
    await withPeer(server.url, { heartbeatMs: 10_000 }, async ({ peer, scheduler, event }) => {
      assert.equal((await event(1)).type, "up");
      scheduler.tick(6_000);
      await peer.request("pool");
      scheduler.tick(6_000); // 12 s after up, 6 s after the last reply: not quiet long enough
      await peer.request("peers");
      scheduler.tick(9_999);
      assert.deepEqual(ops, ["pool", "peers"]);
      scheduler.tick(1); // quiet for 10 s now
      await poll("the heartbeat", () => ops.length === 3);
      assert.deepEqual(ops, ["pool", "peers", "time"]);
    });
  });
});

// ---- handshakes --------------------------------------------------------------------------------

Deno.test("a fatal handshake refusal closes the link and stops the reconnects", async () => {
  await withNode(async (node) => {
    const handshake = () =>
      Promise.reject(new HandshakeRefused("network testnet, not mainnet", true));
    await withPeer(node.url, { handshake }, async ({ peer, scheduler, event, lines }) => {
      const refused = await event(1);
      assert.deepEqual(refused, { type: "refused", reason: "network testnet, not mainnet" });
      assert.equal(peer.state, "refused");
      assert.ok(
        lines.includes(
          `WARNING Link to ${node.url} is refused: network testnet, not mainnet; not retrying.`,
        ),
        lines.join("\n"),
      );
      await poll("the node to see the link closed", () => node.server.connections() === 0);
      scheduler.tick(3_600_000);
      assert.equal(peer.state, "refused");
      assert.equal(node.server.connections(), 0);
    });
  });
});

Deno.test("a handshake that fails otherwise closes the link and retries with backoff", async () => {
  await withNode(async (node) => {
    let calls = 0;
    const handshake = () =>
      ++calls === 1 ? Promise.reject(new Error("peer is busy")) : Promise.resolve(calls);
    await withPeer<number>(node.url, { handshake }, async ({ peer, scheduler, event }) => {
      const down = await event(1);
      assert.equal((down as { reason: string }).reason, "handshake failed: peer is busy");
      scheduler.tick(retryIn(down));
      const up = await event(2);
      assert.deepEqual(up.type === "up" && up.hello, 2);
      assert.equal(peer.state, "up");
    });
  });
});

Deno.test("a handshake that never finishes is given up after handshakeTimeoutMs", async () => {
  await withNode(async (node) => {
    const handshake = () => new Promise<undefined>(() => {});
    await withPeer(
      node.url,
      { handshake, handshakeTimeoutMs: 4_000 },
      async ({ scheduler, event }) => {
        await poll("the link to open", () => node.server.connections() === 1);
        scheduler.tick(4_000);
        const down = await event(1);
        assert.equal(
          (down as { reason: string }).reason,
          "handshake failed: no handshake within 4000 ms",
        );
        await poll("the node to see the link closed", () => node.server.connections() === 0);
      },
    );
  });
});

// ---- stopping ----------------------------------------------------------------------------------

Deno.test("stop() while down cancels the retry; start() dials again", async () => {
  const dialer: Dialer = { dial: (u) => Promise.reject(new DialFailed(u, "connect", "refused")) };
  await withPeer("ws://127.0.0.1:1/ws", { dialer }, async ({ peer, scheduler, event }) => {
    const down = await event(1);
    await peer.stop("bye");
    assert.deepEqual(await event(2), { type: "stopped", reason: "bye" });
    assert.equal(scheduler.pending(), 0);
    scheduler.tick(retryIn(down) + 60_000);
    assert.equal(peer.state, "stopped");
    peer.start();
    assert.equal(peer.state, "connecting");
    assert.equal((await event(3)).type, "down");
  });
});

Deno.test("stop() during the handshake ends it, closes that link, and nothing comes up", async () => {
  await withNode(async (node) => {
    let inHandshake!: () => void;
    const reached = new Promise<void>((resolve) => (inHandshake = resolve));
    let aborted = false;
    const handshake = async (link: Link, signal: AbortSignal) => {
      await link.request("time");
      signal.addEventListener("abort", () => (aborted = true));
      inHandshake();
      await new Promise(() => {}); // a hook that never ends by itself
    };
    await withPeer(node.url, { handshake }, async ({ peer, events }) => {
      await reached;
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        peer.stop(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error("stop() waited for the hook")), 5_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.ok(aborted);
      assert.deepEqual(events.map((e) => e.type), ["stopped"]);
      await poll("the node to see the link closed", () => node.server.connections() === 0);
    });
  });
});

Deno.test("stop() during a dial aborts it and waits for it to end; no link is left", async () => {
  await withNode(async (node) => {
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const scheduler = fakeScheduler();
    const ws = createWsDialer({ scheduler });
    const dialer: Dialer = {
      dial: async (url, opts) => {
        await gate;
        return await ws.dial(url, opts);
      },
    };
    await withPeer(node.url, { dialer, scheduler }, async ({ peer, events }) => {
      let stopped = false;
      const stopping = peer.stop().then(() => (stopped = true));
      await new Promise((resolve) => setTimeout(resolve, 0));
      assert.equal(stopped, false);
      release();
      await stopping;
      assert.deepEqual(events.map((e) => e.type), ["stopped"]);
      await poll("no link left on the node", () => node.server.connections() === 0);
    });
  });
});

Deno.test("timings must be positive", () => {
  assert.throws(() => new PeerConnection("ws://127.0.0.1:1/ws", { heartbeatMs: 0 }), RangeError);
  assert.throws(() => new PeerConnection("ws://127.0.0.1:1/ws", { maxBackoffMs: NaN }), RangeError);
});
