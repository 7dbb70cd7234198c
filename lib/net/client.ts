/**
 * A client of the lab protocol for the CLI and the tests: one WebSocket link (ws_conn.ts, so
 * TCP_NODELAY and bounded), requests answered in order, each with a deadline. Every failure
 * to talk to the node is a NodeUnreachable whose message is one line a person can act on.
 */
import type { FeedEvent } from "../node/feed.ts";
import type { Reply } from "../node/protocol.ts";
import { DEFAULT_DEADLINE_MS, DialFailed, LinkClosed, type RequestOptions } from "./link.ts";
import { WsConn } from "./ws_conn.ts";

/**
 * The node could not be reached, went away mid-request, did not answer within the deadline,
 * or answered with something that is not a reply. `cause` holds the link's typed error.
 */
export class NodeUnreachable extends Error {}

/** `requestWithRetry` ran out of tries: the request may or may not have been run. */
export class RetriesExhausted extends NodeUnreachable {}

/** The default node URL, as in the lab. */
export const DEFAULT_NODE = "ws://127.0.0.1:9000/ws";

/** Options of `NodeClient.connect`. */
export interface NodeClientOptions {
  /** Milliseconds to connect (default 5000). */
  timeoutMs?: number;
  /** Deadline of each request that names none, in milliseconds (default DEFAULT_DEADLINE_MS). */
  deadlineMs?: number;
}

/**
 * A connection to a node.
 *
 * @example
 * ```ts ignore
 * const client = await NodeClient.connect("ws://127.0.0.1:9000/ws");
 * try {
 *   const reply = await client.request("status", undefined, { deadlineMs: 2000 });
 *   console.log(reply.response);
 * } finally {
 *   await client.close();
 * }
 * ```
 */
export class NodeClient {
  readonly #link: WsConn;

  private constructor(readonly url: string, link: WsConn) {
    this.#link = link;
  }

  /**
   * Receives what the node pushes after a `subscribe` request. Events answer no request: they
   * are told from replies by having `event` and no `status` (`isEvent`).
   */
  get onEvent(): ((event: FeedEvent) => void) | null {
    return this.#link.onEvent;
  }
  set onEvent(fn: ((event: FeedEvent) => void) | null) {
    this.#link.onEvent = fn;
  }

  /** Connects, or throws NodeUnreachable within `timeoutMs` (at once for a bad URL). */
  static async connect(
    url: string = DEFAULT_NODE,
    opts: NodeClientOptions = {},
  ): Promise<NodeClient> {
    const bad = checkNodeUrl(url);
    if (bad) throw new NodeUnreachable(bad);
    const timeoutMs = opts.timeoutMs ?? 5000;
    try {
      const link = await WsConn.connect(url, {
        timeoutMs,
        deadlineMs: opts.deadlineMs ?? DEFAULT_DEADLINE_MS,
      });
      return new NodeClient(url, link);
    } catch (error) {
      if (!(error instanceof DialFailed)) throw error;
      // A node's WebSocket is at /ws: another path reaches the page, which refuses the upgrade.
      const hint = new URL(url).pathname === "/ws" ? "" : `; a node's WebSocket is at /ws`;
      const message = error.kind === "url"
        ? `bad node URL ${url}: ${error.detail}`
        : error.kind === "timeout"
        ? `no answer from ${url} within ${timeoutMs} ms`
        : error.kind === "connect" && /refused/i.test(error.detail)
        ? `cannot reach a node at ${url} (is it running?${hint})`
        : `cannot reach a node at ${url}: ${error.detail}${hint ? ` (${hint.slice(2)})` : ""}`;
      throw new NodeUnreachable(message, { cause: error });
    }
  }

  /** Sends one request and waits for its reply, at most `opts.deadlineMs`. */
  request(op: string, args?: Record<string, unknown>, opts?: RequestOptions): Promise<Reply> {
    return this.#unreachable(this.#link.request(op, args, opts));
  }

  /** Sends a raw text message and waits for the reply (for `call` and tests of bad input). */
  send(text: string, opts?: RequestOptions): Promise<Reply> {
    return this.#unreachable(this.#link.send(text, opts));
  }

  /** Closes the connection and waits until it is closed. */
  async close(): Promise<void> {
    this.#link.close();
    await this.#link.closed;
  }

  async #unreachable(reply: Promise<Reply>): Promise<Reply> {
    try {
      return await reply;
    } catch (error) {
      if (error instanceof TypeError || error instanceof RangeError) throw error; // our mistake
      const message = error instanceof LinkClosed
        ? `connection to ${this.url} closed: ${error.reason}`
        : error instanceof Error
        ? error.message
        : String(error);
      throw new NodeUnreachable(message, { cause: error });
    }
  }
}

/**
 * Why `url` cannot be a node's address, or null when it can: a node is reached over a
 * WebSocket, so only `ws://` and `wss://` URLs are; for an `http(s)://` one the WebSocket URL
 * of the same host is suggested.
 */
export function checkNodeUrl(url: string): string | null {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (error) {
    return `bad node URL ${url}: ${(error as Error).message}`;
  }
  if (parsed.protocol === "ws:" || parsed.protocol === "wss:") return null;
  const scheme = parsed.protocol === "https:" ? "wss" : "ws";
  const suggestion = parsed.protocol === "http:" || parsed.protocol === "https:"
    ? ` (the node's WebSocket: ${scheme}://${parsed.host}/ws)`
    : "";
  return `a node URL starts with ws:// or wss://, got ${url}${suggestion}`;
}

/** How `requestWithRetry` retries. */
export interface RetryOptions {
  /** Tries after the first (default 5). */
  retries?: number;
  /** Wait before try `n` (1 for the first retry), ms; default 250 doubling to at most 4 s. */
  delayMs?: (n: number) => number;
  /**
   * Whether a first connection that fails is retried too (default false: no node is there,
   * so say so at once). Later connection failures are always retried: the node may be
   * restarting.
   */
  retryFirstConnect?: boolean;
  /** Called before each retry with its number and why. */
  onRetry?: (n: number, why: string) => void;
  /** Connect timeout of each try, ms (default 5000). */
  connectTimeoutMs?: number;
}

/**
 * Sends one request that is safe to repeat (a read, or a merge with a `request_id`), on a
 * fresh connection each try, and tries again when the connection is lost before the reply or
 * the node answers 503 (it is stopping). Throws RetriesExhausted when the tries run out, and
 * NodeUnreachable at once when the first connection fails (unless `retryFirstConnect`).
 */
export async function requestWithRetry(
  url: string,
  op: string,
  args: Record<string, unknown> | undefined,
  opts: RetryOptions = {},
): Promise<Reply> {
  const retries = opts.retries ?? 5;
  const delay = opts.delayMs ?? ((n: number) => Math.min(4000, 250 * 2 ** (n - 1)));
  let connected = false;
  for (let n = 0;; n++) {
    if (n > 0) await new Promise((resolve) => setTimeout(resolve, delay(n)));
    let why: string;
    let client: NodeClient | undefined;
    try {
      client = await NodeClient.connect(url, { timeoutMs: opts.connectTimeoutMs });
      connected = true;
      const reply = await client.request(op, args);
      if (reply.status !== 503) return reply;
      why = `node answered 503: ${reply.error}`;
    } catch (error) {
      if (!(error instanceof NodeUnreachable)) throw error;
      if (!connected && !opts.retryFirstConnect) throw error;
      why = error.message;
    } finally {
      await client?.close();
    }
    if (n >= retries) throw new RetriesExhausted(`${why} (gave up after ${retries} retries)`);
    opts.onRetry?.(n + 1, why);
  }
}
