/**
 * A client of the lab protocol for the CLI and the tests: one WebSocket link (ws_conn.ts, so
 * TCP_NODELAY and bounded), requests answered in order, each with a deadline. Every failure
 * to talk to the node is a NodeUnreachable whose message is one line a person can act on.
 */
import type { Reply } from "../node/protocol.ts";
import { DEFAULT_DEADLINE_MS, DialFailed, LinkClosed, type RequestOptions } from "./link.ts";
import { WsConn } from "./ws_conn.ts";

/**
 * The node could not be reached, went away mid-request, did not answer within the deadline,
 * or answered with something that is not a reply. `cause` holds the link's typed error.
 */
export class NodeUnreachable extends Error {}

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

  /** Connects, or throws NodeUnreachable within `timeoutMs`. */
  static async connect(
    url: string = DEFAULT_NODE,
    opts: NodeClientOptions = {},
  ): Promise<NodeClient> {
    const timeoutMs = opts.timeoutMs ?? 5000;
    try {
      const link = await WsConn.connect(url, {
        timeoutMs,
        deadlineMs: opts.deadlineMs ?? DEFAULT_DEADLINE_MS,
      });
      return new NodeClient(url, link);
    } catch (error) {
      if (!(error instanceof DialFailed)) throw error;
      const message = error.kind === "url"
        ? `bad node URL ${url}: ${error.detail}`
        : error.kind === "timeout"
        ? `no answer from ${url} within ${timeoutMs} ms`
        : error.kind === "connect" && /refused/i.test(error.detail)
        ? `cannot reach a node at ${url} (is it running?)`
        : `cannot reach a node at ${url}: ${error.detail}`;
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
