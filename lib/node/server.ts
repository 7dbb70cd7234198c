/**
 * The node's HTTP and WebSocket front: `GET /` (the explorer page and its files), `GET /health`
 * (JSON for scripts) and `/ws` (the lab protocol). Each connection's requests are answered in
 * order, as the lab's clients expect, with bounds on what a client can make the server hold;
 * events a connection subscribed to go out between replies, never in place of one.
 */

import { Buffer } from "node:buffer";
import type { FeedEvent, Subscriber } from "./feed.ts";
import { logger } from "./log.ts";
import { newSession, PEER_FAULT_LIMIT, type Protocol, type Reply } from "./protocol.ts";
import { assetHeaders, ASSETS } from "./web/assets.ts";

/** Server limits; the defaults suit a lab node. */
export interface ServerLimits {
  /** Largest request message in bytes (default 1 MiB); larger ones get a 413 reply. */
  maxMessageBytes: number;
  /** Request bytes one connection may have waiting (default 8 MiB); past it, it is closed. */
  maxPendingBytes: number;
  /**
   * Requests one connection may have waiting (default 256); past it, it is closed. Small
   * requests (`{"op":"pool"}` is 13 bytes) can be costly to answer, so bytes alone are no bound.
   */
  maxPendingRequests: number;
  /** Reply bytes buffered for a client that does not read (default 16 MiB); past it, closed. */
  maxBufferedBytes: number;
}

/** Default limits. */
export const DEFAULT_LIMITS: ServerLimits = {
  maxMessageBytes: 1 << 20,
  maxPendingBytes: 8 << 20,
  maxPendingRequests: 256,
  maxBufferedBytes: 16 << 20,
};

/** Options of `startServer`. */
export interface ServerOptions {
  /** The protocol handler that answers WebSocket requests. */
  protocol: Protocol;
  /** Address to listen on (default "0.0.0.0"). */
  hostname?: string;
  /** Port to listen on; 0 picks a free one. Default 9000, as in the lab. */
  port?: number;
  /** Limits to override; the rest come from DEFAULT_LIMITS. */
  limits?: Partial<ServerLimits>;
}

/** How long a stop keeps answering the requests already received, by default (ms). */
export const DEFAULT_STOP_TIMEOUT_MS = 10_000;

/** How long a stop waits for clients to complete the closing handshake (ms). */
const CLOSE_HANDSHAKE_MS = 2000;
/** After a stop answered what it had, a connection is closed once no request came for this long. */
const QUIET_MS = 50;
/** ... or at the latest this long after (ms). */
const QUIET_BOUND_MS = 1000;

/** The reply to a request that came after the node began to stop. */
export const SHUTTING_DOWN: Reply = {
  status: 503,
  error: "Node is shutting down; try again later.",
  response: null,
};

/** The reply to a request whose handling threw unexpectedly (the node logs the details). */
export const INTERNAL_ERROR: Reply = {
  status: 500,
  error: "Internal error; the node logged it.",
  response: null,
};

/** What a graceful stop did. */
export interface ShutdownReport {
  /** Requests received before the stop and answered while it waited. */
  answered: number;
  /** Requests that came after the stop began, answered 503. */
  refused: number;
  /** Requests received before the stop but still queued at the deadline: not run. */
  skipped: number;
  /** True when the deadline passed before every request received was answered. */
  timedOut: boolean;
}

/** A running server. */
export interface RunningServer {
  /** The address it listens on. */
  readonly hostname: string;
  /** The port it listens on. */
  readonly port: number;
  /** `ws://host:port/ws`, with 127.0.0.1 for a server on every interface. */
  readonly url: string;
  /** `http://host:port/`: the explorer page. */
  readonly pageUrl: string;
  /** Open WebSocket connections. */
  connections(): number;
  /** Requests received and not yet answered (or skipped), over all connections. */
  pending(): number;
  /**
   * Stops gracefully: new connections are refused (503) and new requests on open ones are
   * answered 503; every request received before is run and answered, for at most
   * `timeoutMs` (default DEFAULT_STOP_TIMEOUT_MS); then each connection is closed (1001) once
   * no request came on it for QUIET_MS (at most QUIET_BOUND_MS later), requests still queued
   * at the deadline are skipped (not run), and the listener stops. Calling it again returns
   * the first call's promise. docs/reliability.md ("Graceful stop") says why.
   */
  shutdown(opts?: { timeoutMs?: number }): Promise<ShutdownReport>;
}

/** Starts the node's server. Resolves once it listens. */
export function startServer(opts: ServerOptions): Promise<RunningServer> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const log = logger("server");
  const sockets = new Set<WebSocket>();
  /** The last step queued on each connection: it settles when that connection is idle. */
  const tails = new Map<WebSocket, Promise<void>>();
  /** When each connection last received a request (performance.now()). */
  const lastMessage = new Map<WebSocket, number>();
  const protocol = opts.protocol;
  /** Requests received and not yet answered or skipped, over all connections. */
  let waiting = 0;
  /** Called whenever a request settles or a connection closes: `until` re-checks then. */
  let watchers: (() => void)[] = [];
  const changed = () => {
    for (const watcher of [...watchers]) watcher();
  };
  let stopping: Promise<ShutdownReport> | null = null;
  const counts = { answered: 0, refused: 0, skipped: 0 };

  const handler = (req: Request, info: Deno.ServeHandlerInfo): Response | Promise<Response> => {
    let url: URL;
    try {
      // Deno builds the URL from the Host header, which the client chose.
      url = new URL(req.url);
    } catch {
      return new Response("Bad request: malformed Host header.\n", { status: 400 });
    }
    if (url.pathname === "/ws") {
      if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
        return new Response("Connect to /ws with a WebSocket client.\n", { status: 426 });
      }
      if (stopping) return new Response("The node is shutting down.\n", { status: 503 });
      // remoteAddr must be read before the upgrade takes the request over.
      const remote = info.remoteAddr as Deno.NetAddr;
      const { socket, response } = Deno.upgradeWebSocket(req);
      attach(socket, `${remote.hostname}:${remote.port}`);
      return response;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("Method not allowed\n", { status: 405 });
    }
    if (url.pathname === "/health") return health();
    const asset = ASSETS.get(url.pathname);
    if (asset) return new Response(asset.body, { headers: assetHeaders(asset) });
    return new Response("Not found. The WebSocket is at /ws, the explorer page at /.\n", {
      status: 404,
    });
  };

  async function health(): Promise<Response> {
    try {
      const [tip, pool] = await Promise.all([protocol.store.tip(), protocol.store.poolStats()]);
      const links = protocol.liveLinks();
      return Response.json({
        ok: true,
        height: tip.height,
        pool: pool.size,
        ...(links === null ? {} : { links }),
      });
    } catch (error) {
      log.error`Health check failed: ${error}`;
      return Response.json({ ok: false }, { status: 503 });
    }
  }

  function settled(): void {
    waiting--;
    changed();
  }

  function attach(socket: WebSocket, peer: string): void {
    let pendingBytes = 0;
    let pendingRequests = 0;
    let chain = Promise.resolve();
    // Events this connection subscribed to join the queue of replies, so one never goes out
    // before the reply to a request that came earlier (the `subscribe` itself included).
    const connection: Subscriber = {
      push(event: FeedEvent) {
        chain = chain.then(() => {
          send(event);
        });
      },
    };
    const session = newSession(connection);
    const close = (code: number, reason: string) => {
      log.warn`Closing connection from ${peer}: ${reason}`;
      try {
        socket.close(code, reason);
      } catch { /* already closing */ }
    };
    /** Sends a reply or an event; false when the connection is closing and nobody can read it. */
    const send = (reply: Reply | FeedEvent): boolean => {
      if (socket.readyState !== WebSocket.OPEN) return false;
      if (socket.bufferedAmount > limits.maxBufferedBytes) {
        close(1008, "client is not reading replies");
        return false;
      }
      socket.send(JSON.stringify(reply));
      return true;
    };
    /**
     * Queues one request's work behind the ones before it (replies go out in request order:
     * the protocol has no request ids). A step never rejects: whatever it throws is logged
     * and answered INTERNAL_ERROR, so one failure cannot stop the connection's later
     * requests nor become an unhandled rejection. A step whose connection closed while it
     * waited is skipped: nobody can read its reply.
     */
    const enqueue = (size: number, work: () => Reply | Promise<Reply>) => {
      pendingBytes += size;
      pendingRequests++;
      waiting++;
      chain = chain.then(async () => {
        try {
          if (socket.readyState !== WebSocket.OPEN) {
            counts.skipped++;
            return;
          }
          let reply: Reply;
          try {
            reply = await work();
          } catch (error) {
            log.error`Request from ${peer} failed unexpectedly: ${error}`;
            reply = INTERNAL_ERROR;
          }
          try {
            if (send(reply) && stopping && reply !== SHUTTING_DOWN) counts.answered++;
          } catch (error) {
            log.error`Reply to ${peer} could not be sent: ${error}`;
            try {
              send(INTERNAL_ERROR);
            } catch { /* the socket itself failed; its close event follows */ }
          }
          // A peer that keeps sending invalid blocks or transactions is cut off, after its reply.
          if (session.faults > PEER_FAULT_LIMIT) {
            log
              .warn`Closing the link from peer ${session.peer}: ${session.faults} invalid blocks or transactions.`;
            close(1008, "too many invalid blocks or transactions");
          }
        } finally {
          pendingBytes -= size;
          pendingRequests--;
          settled();
        }
      });
      tails.set(socket, chain);
    };
    socket.onopen = () => {
      sockets.add(socket);
      log.debug`Connection from ${peer}.`;
    };
    socket.onclose = () => {
      sockets.delete(socket);
      protocol.disconnect(connection);
      lastMessage.delete(socket);
      log.debug`Connection from ${peer} closed.`;
      changed();
      // Nothing more is queued on a closed connection: forget it once its queue is done.
      const last = chain;
      last.then(() => {
        if (tails.get(socket) === last) tails.delete(socket);
      });
    };
    socket.onerror = () => {}; // the close event follows and is logged there
    socket.onmessage = (event: MessageEvent) => {
      // Closing (by either side): nobody will read a reply, so do not queue work for one.
      if (socket.readyState !== WebSocket.OPEN) return;
      lastMessage.set(socket, performance.now());
      const data = event.data;
      // The limits are in bytes: a string's length counts UTF-16 units, not UTF-8 bytes.
      const size = typeof data === "string"
        ? Buffer.byteLength(data, "utf8")
        : (data as ArrayBuffer).byteLength ?? 0;
      if (pendingRequests >= limits.maxPendingRequests) {
        close(1008, "too many requests waiting for replies");
        return;
      }
      if (size > limits.maxMessageBytes) {
        enqueue(0, () => ({
          status: 413,
          error: `Message is too large: ${size} bytes, at most ${limits.maxMessageBytes}`,
          response: null,
        }));
        return;
      }
      if (pendingBytes + size > limits.maxPendingBytes) {
        close(1008, "too many requests waiting for replies");
        return;
      }
      // Decided on arrival: a request received before the stop is answered in full even if
      // it runs during it; one received after is refused.
      if (stopping) {
        counts.refused++;
        enqueue(size, () => SHUTTING_DOWN);
        return;
      }
      enqueue(size, async () => {
        const text = typeof data === "string"
          ? data
          : new TextDecoder().decode(data as ArrayBuffer);
        return await protocol.handle(text, session);
      });
    };
  }

  /** Resolves true once `done()` holds, or false when `ms` pass first. */
  function until(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (result: boolean) => {
        clearTimeout(timer);
        watchers = watchers.filter((w) => w !== watcher);
        resolve(result);
      };
      const watcher = () => {
        if (done()) finish(true);
      };
      const timer = setTimeout(() => finish(false), ms);
      watchers.push(watcher);
    });
  }

  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: opts.hostname ?? "0.0.0.0",
        port: opts.port ?? 9000,
        onListen: (addr) => {
          const hostname = addr.hostname;
          const host = urlHost(hostname);
          // Deno's own shutdown closes upgraded sockets at once, replies unsent, so the
          // listener is stopped only after the connections are drained and closed.
          const stop = async (timeoutMs: number): Promise<ShutdownReport> => {
            if (waiting > 0) {
              log.info`Answering ${waiting} requests already received (for at most ${
                timeoutMs / 1000
              } s)...`;
            }
            const drained = await until(() => waiting === 0, timeoutMs);
            const close = (socket: WebSocket) => {
              try {
                socket.close(1001, "node is shutting down");
              } catch { /* already closed */ }
            };
            // Deno aborts a connection that receives a request after its close frame went
            // out, and the reset destroys replies the client has not read yet. So a client
            // still sending is given a moment (its new requests answered 503) and each
            // connection is closed once it has been quiet for QUIET_MS, or at QUIET_BOUND_MS.
            const quietBy = performance.now() + (drained ? QUIET_BOUND_MS : 0);
            for (;;) {
              const now = performance.now();
              const open = [...sockets].filter((s) => s.readyState === WebSocket.OPEN);
              for (const socket of open) {
                if (now >= quietBy || now - (lastMessage.get(socket) ?? 0) >= QUIET_MS) {
                  close(socket);
                }
              }
              if (now >= quietBy || open.length === 0) break;
              await new Promise((resolve) => setTimeout(resolve, QUIET_MS / 2));
            }
            // A request running at the deadline finishes (its commit is bounded); the ones
            // queued behind it see their connection closed and are skipped.
            await Promise.all(tails.values());
            // Wait for each client's closing handshake before the process may exit: a socket
            // closed with requests still unread in it is reset, and a reset destroys the
            // replies the client has not read yet (seen: merges stored, replies lost).
            await until(() => sockets.size === 0, CLOSE_HANDSHAKE_MS);
            await protocol.close();
            await server.shutdown();
            const report = { ...counts, timedOut: !drained };
            if (!drained) {
              log.warn`Stop deadline passed: ${report.skipped} requests received were not run.`;
            }
            return report;
          };
          resolve({
            hostname,
            port: addr.port,
            url: `ws://${host}:${addr.port}/ws`,
            pageUrl: `http://${host}:${addr.port}/`,
            connections: () => sockets.size,
            pending: () => waiting,
            shutdown(o = {}) {
              return stopping ??= stop(o.timeoutMs ?? DEFAULT_STOP_TIMEOUT_MS);
            },
          });
        },
        // A bug in a handler: one line in the log and a plain 500, no stack trace to the client.
        onError: (error) => {
          log.error`Request failed: ${error instanceof Error ? error.message : String(error)}`;
          return new Response("Internal server error.\n", { status: 500 });
        },
      }, handler);
    } catch (error) {
      reject(error);
    }
  });
}

/** The host part of a URL for a listening address: 127.0.0.1 for "every interface". */
function urlHost(hostname: string): string {
  if (hostname === "0.0.0.0" || hostname === "::") return "127.0.0.1";
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/** Says what a listening address reaches, for the start log. */
export function describeBinding(hostname: string): string {
  if (hostname === "0.0.0.0") return "every IPv4 interface";
  if (hostname === "::") return "every interface";
  if (hostname === "127.0.0.1" || hostname === "::1" || hostname === "localhost") {
    return "this machine only";
  }
  return "one interface";
}
