/**
 * What a connection can make the server do, and what a stop does with it: requests queued on a
 * connection that closed (the client left or a limit cut it off) are skipped, not run; the
 * number of requests one connection may queue is bounded; a graceful stop answers every
 * request received before it (up to its deadline) and refuses the ones after; one request
 * that throws does not stop the ones behind it. The protocol here counts the requests it is
 * asked to handle and holds the first one until the test lets it go, so the others are sure
 * to be queued behind it; the assertions are on counts and replies, not on timing.
 */
import assert from "node:assert/strict";
import { Protocol, type Reply } from "../lib/node/protocol.ts";
import {
  DEFAULT_LIMITS,
  INTERNAL_ERROR,
  type RunningServer,
  type ServerLimits,
  type ShutdownReport,
  SHUTTING_DOWN,
  startServer,
} from "../lib/node/server.ts";
import { openStore } from "../lib/store/store.ts";
import { LOOSE_RULES } from "./fixtures/helpers.ts";
import { poll } from "./fixtures/node.ts";

/**
 * A protocol that counts handle() calls and holds the first until `release()`. A request
 * `boom` throws, and `bigint` returns a reply JSON cannot encode: the unexpected failures the
 * server must survive.
 */
class HeldProtocol extends Protocol {
  started = 0;
  #release!: () => void;
  readonly #held = new Promise<void>((resolve) => (this.#release = resolve));

  override async handle(text: string): Promise<Reply> {
    if (++this.started === 1) await this.#held;
    if (text === "boom") throw new Error("handler bug");
    if (text === "bigint") return { status: 200, error: "OK", response: { n: 1n } };
    return await super.handle(text);
  }

  release(): void {
    this.#release();
  }
}

/** Runs `body` with a server over an in-memory store; `shutdown` is idempotent here. */
async function withHeldServer(
  body: (
    ctx: {
      protocol: HeldProtocol;
      url: string;
      connections: () => number;
      server: RunningServer;
      shutdown: (timeoutMs?: number) => Promise<ShutdownReport>;
    },
  ) => Promise<void>,
  limits: Partial<ServerLimits> = {},
): Promise<void> {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  const protocol = new HeldProtocol(store, { timeZone: "UTC" });
  const server = await startServer({ protocol, hostname: "127.0.0.1", port: 0, limits });
  const shutdown = (timeoutMs?: number) => server.shutdown({ timeoutMs });
  try {
    await body({ protocol, url: server.url, connections: server.connections, server, shutdown });
  } finally {
    protocol.release();
    await shutdown();
    await store.close();
  }
}

/** Opens a raw client socket; resolves once it is open. */
async function open(url: string): Promise<{ ws: WebSocket; closed: Promise<CloseEvent> }> {
  const ws = new WebSocket(url);
  const closed = new Promise<CloseEvent>((resolve) => ws.addEventListener("close", resolve));
  await new Promise((resolve, reject) => {
    ws.onopen = resolve;
    ws.onerror = () => reject(new Error(`cannot open ${url}`));
  });
  return { ws, closed };
}

Deno.test("the default limits bound the number of requests waiting on a connection", () => {
  assert.equal(DEFAULT_LIMITS.maxPendingRequests, 256);
});

Deno.test("requests queued by a client that closed are skipped, not run", async () => {
  await withHeldServer(async ({ protocol, url, connections, shutdown }) => {
    const { ws, closed } = await open(url);
    // Fewer than the per-connection cap, so only the client's close ends the connection.
    const n = 200;
    for (let i = 0; i < n; i++) ws.send('{"op":"pool"}');
    ws.close();
    await closed;
    // The server's close event comes after every message the client sent: all n were queued.
    await poll("the server to see the close", () => connections() === 0);
    assert.equal(protocol.started, 1, "only the request under way when the client left");
    protocol.release();
    await shutdown();
    assert.equal(protocol.started, 1, `handled ${protocol.started} of ${n} after the close`);
  });
});

Deno.test("a connection with too many requests waiting is closed (1008) and its queue skipped", async () => {
  await withHeldServer(async ({ protocol, url, connections, shutdown }) => {
    const { ws, closed } = await open(url);
    // 13-byte requests: far under the byte cap, far over the count cap.
    for (let i = 0; i < 100; i++) ws.send('{"op":"pool"}');
    await poll("the server to drop the connection", () => connections() === 0);
    const event = await closed;
    // A client still writing when the server's close frame goes out sees the connection end
    // without it (Deno reports "Unexpected EOF", code 0); a clean close carries the reason.
    if (event.wasClean) {
      assert.deepEqual([event.code, event.reason], [1008, "too many requests waiting for replies"]);
    }
    protocol.release();
    await shutdown();
    assert.equal(protocol.started, 1, `handled ${protocol.started} after the cut-off`);
  }, { maxPendingRequests: 10 });
});

/** Collects every message a socket receives, parsed. */
function collect(ws: WebSocket): Reply[] {
  const replies: Reply[] = [];
  ws.addEventListener("message", (e) => replies.push(JSON.parse(String(e.data))));
  return replies;
}

Deno.test("a stop answers every request received before it, in order, then closes (1001)", async () => {
  await withHeldServer(async ({ protocol, url, server, shutdown }) => {
    const { ws, closed } = await open(url);
    const replies = collect(ws);
    const n = 200;
    for (let i = 0; i < n; i++) ws.send(JSON.stringify({ op: "pool", args: { limit: i + 1 } }));
    await poll("the server to receive every request", () => server.pending() === n);
    const stopping = shutdown();
    protocol.release();
    const report = await stopping;
    assert.equal((await closed).code, 1001);
    assert.equal(protocol.started, n);
    assert.equal(replies.length, n);
    assert.ok(replies.every((r) => r.status === 200), JSON.stringify(replies.at(-1)));
    assert.deepEqual(report, { answered: n, refused: 0, skipped: 0, timedOut: false });
  });
});

Deno.test("requests that arrive after a stop began are answered 503, after the earlier ones", async () => {
  await withHeldServer(async ({ protocol, url, server, shutdown }) => {
    const { ws, closed } = await open(url);
    const replies = collect(ws);
    ws.send('{"op":"pool"}');
    await poll("the first request to start", () => protocol.started === 1);
    const stopping = shutdown();
    for (let i = 0; i < 5; i++) ws.send('{"op":"pool"}');
    await poll("the server to receive the late requests", () => server.pending() === 6);
    protocol.release();
    const report = await stopping;
    await closed;
    assert.deepEqual(replies.map((r) => r.status), [200, 503, 503, 503, 503, 503]);
    assert.deepEqual(replies[1], SHUTTING_DOWN);
    assert.equal(protocol.started, 1, "a refused request is not run");
    assert.deepEqual(report, { answered: 1, refused: 5, skipped: 0, timedOut: false });
  });
});

Deno.test("a stopping node refuses new connections with 503", async () => {
  await withHeldServer(async ({ protocol, url, shutdown }) => {
    const { ws } = await open(url);
    ws.send('{"op":"pool"}');
    await poll("the request to start", () => protocol.started === 1);
    const stopping = shutdown();
    const res = await fetch(url.replace("ws:", "http:"), {
      headers: { upgrade: "websocket", connection: "upgrade" },
    });
    assert.equal(res.status, 503);
    await res.body?.cancel();
    protocol.release();
    await stopping;
  });
});

Deno.test("at the stop deadline, requests still queued are skipped and the connection closed", async () => {
  await withHeldServer(async ({ protocol, url, server, shutdown }) => {
    const { ws, closed } = await open(url);
    const replies = collect(ws);
    const n = 50;
    for (let i = 0; i < n; i++) ws.send('{"op":"pool"}');
    await poll("the server to receive every request", () => server.pending() === n);
    const stopping = shutdown(0);
    assert.equal((await closed).code, 1001);
    protocol.release(); // the request under way at the deadline finishes; no reply can go out
    const report = await stopping;
    assert.equal(protocol.started, 1);
    assert.equal(replies.length, 0);
    assert.deepEqual(report, { answered: 0, refused: 0, skipped: n - 1, timedOut: true });
  });
});

Deno.test("a request that throws is answered 500 and the connection's later requests still run", async () => {
  await withHeldServer(async ({ protocol, url }) => {
    protocol.release();
    const { ws } = await open(url);
    const replies = collect(ws);
    for (const text of ['{"op":"time"}', "boom", "bigint", '{"op":"time"}']) ws.send(text);
    await poll("four replies", () => replies.length === 4);
    assert.deepEqual(replies.map((r) => r.status), [200, 500, 500, 200]);
    assert.deepEqual(replies[1], INTERNAL_ERROR);
    assert.deepEqual(replies[2], INTERNAL_ERROR);
    ws.close();
  });
});
