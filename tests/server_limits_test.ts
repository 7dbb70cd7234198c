/**
 * What a connection can make the server do after it is gone: requests queued on a connection
 * that closed (the client left, a limit cut it off, or the node shut down) are skipped, not
 * run, and the number of requests one connection may queue is bounded. The protocol here
 * counts the requests it is asked to handle and holds the first one until the test lets it go,
 * so the others are sure to be queued behind it; the assertions are on counts, not on timing.
 */
import assert from "node:assert/strict";
import { Protocol, type Reply } from "../lib/node/protocol.ts";
import { DEFAULT_LIMITS, type ServerLimits, startServer } from "../lib/node/server.ts";
import { openStore } from "../lib/store/store.ts";
import { LOOSE_RULES } from "./fixtures/helpers.ts";
import { poll } from "./fixtures/node.ts";

/** A protocol that counts handle() calls and holds the first until `release()`. */
class HeldProtocol extends Protocol {
  started = 0;
  #release!: () => void;
  readonly #held = new Promise<void>((resolve) => (this.#release = resolve));

  override async handle(text: string): Promise<Reply> {
    if (++this.started === 1) await this.#held;
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
      shutdown: () => Promise<void>;
    },
  ) => Promise<void>,
  limits: Partial<ServerLimits> = {},
): Promise<void> {
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  const protocol = new HeldProtocol(store, { timeZone: "UTC" });
  const server = await startServer({ protocol, hostname: "127.0.0.1", port: 0, limits });
  let stopped: Promise<void> | undefined;
  const shutdown = () => (stopped ??= server.shutdown());
  try {
    await body({ protocol, url: server.url, connections: server.connections, shutdown });
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

Deno.test("shutdown closes connections first: their queued requests are skipped", async () => {
  await withHeldServer(async ({ protocol, url, shutdown }) => {
    const { ws, closed } = await open(url);
    const n = 200;
    for (let i = 0; i < n; i++) ws.send('{"op":"pool"}');
    await poll("the client to hand its requests over", () => ws.bufferedAmount === 0);
    await poll("the server to start the first request", () => protocol.started === 1);
    // Let the server read what is in flight (this only makes the test meaningful before the
    // fix; the assertion below holds however many of the n it has read).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stopping = shutdown();
    protocol.release();
    await stopping;
    assert.equal((await closed).code, 1001);
    assert.equal(protocol.started, 1, `handled ${protocol.started} of ${n} during shutdown`);
  });
});
