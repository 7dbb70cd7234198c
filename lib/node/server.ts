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
  /**
   * Stops accepting, closes every connection, and waits for the requests under way to finish;
   * requests still queued on a closed connection are skipped, not run.
   */
  shutdown(): Promise<void>;
}

/** Starts the node's server. Resolves once it listens. */
export function startServer(opts: ServerOptions): Promise<RunningServer> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const log = logger("server");
  const sockets = new Set<WebSocket>();
  const inFlight = new Set<Promise<void>>();
  const protocol = opts.protocol;

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
      return Response.json({ ok: false, error: String(error) }, { status: 503 });
    }
  }

  function attach(socket: WebSocket, peer: string): void {
    let pendingBytes = 0;
    let pendingRequests = 0;
    let chain = Promise.resolve();
    // Events this connection subscribed to join the queue of replies, so one never goes out
    // before the reply to a request that came earlier (the `subscribe` itself included).
    const connection: Subscriber = {
      push(event: FeedEvent) {
        chain = chain.then(() => send(event));
      },
    };
    const session = newSession(connection);
    const close = (code: number, reason: string) => {
      log.warn`Closing connection from ${peer}: ${reason}`;
      try {
        socket.close(code, reason);
      } catch { /* already closing */ }
    };
    const send = (reply: Reply | FeedEvent) => {
      if (socket.readyState !== WebSocket.OPEN) return;
      if (socket.bufferedAmount > limits.maxBufferedBytes) {
        close(1008, "client is not reading replies");
        return;
      }
      socket.send(JSON.stringify(reply));
    };
    socket.onopen = () => {
      sockets.add(socket);
      log.debug`Connection from ${peer}.`;
    };
    socket.onclose = () => {
      sockets.delete(socket);
      protocol.disconnect(connection);
      log.debug`Connection from ${peer} closed.`;
    };
    socket.onerror = () => {}; // the close event follows and is logged there
    socket.onmessage = (event: MessageEvent) => {
      // Closing (by either side): nobody will read a reply, so do not queue work for one.
      if (socket.readyState !== WebSocket.OPEN) return;
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
        pendingRequests++;
        chain = chain.then(() => {
          pendingRequests--;
          send({
            status: 413,
            error: `Message is too large: ${size} bytes, at most ${limits.maxMessageBytes}`,
            response: null,
          });
        });
        return;
      }
      if (pendingBytes + size > limits.maxPendingBytes) {
        close(1008, "too many requests waiting for replies");
        return;
      }
      pendingBytes += size;
      pendingRequests++;
      const text = typeof data === "string" ? data : new TextDecoder().decode(data as ArrayBuffer);
      // Replies go out in request order: the protocol has no request ids.
      const done = chain.then(async () => {
        try {
          // The connection closed while this waited (the client left, a limit was hit, or the
          // node is shutting down): the reply could not be sent, so the work is not done.
          if (socket.readyState !== WebSocket.OPEN) return;
          send(await protocol.handle(text, session));
          if (session.faults > PEER_FAULT_LIMIT) {
            log
              .warn`Closing the link from peer ${session.peer}: ${session.faults} invalid blocks or transactions.`;
            close(1008, "too many invalid blocks or transactions");
          }
        } finally {
          pendingBytes -= size;
          pendingRequests--;
        }
      });
      chain = done;
      inFlight.add(done);
      done.finally(() => inFlight.delete(done));
    };
  }

  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname: opts.hostname ?? "0.0.0.0",
        port: opts.port ?? 9000,
        onListen: (addr) => {
          const hostname = addr.hostname;
          const host = urlHost(hostname);
          resolve({
            hostname,
            port: addr.port,
            url: `ws://${host}:${addr.port}/ws`,
            pageUrl: `http://${host}:${addr.port}/`,
            connections: () => sockets.size,
            async shutdown() {
              for (const socket of sockets) {
                try {
                  socket.close(1001, "node is shutting down");
                } catch { /* already closed */ }
              }
              await Promise.allSettled([...inFlight]);
              await protocol.close();
              await server.shutdown();
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
