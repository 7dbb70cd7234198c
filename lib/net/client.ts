/**
 * A client of the lab protocol: one WebSocket, requests answered in order. Used by the CLI's
 * client commands, the end-to-end tests and the benchmark's load generator.
 */
import type { Reply } from "../node/protocol.ts";

/** The node could not be reached, or went away mid-request. */
export class NodeUnreachable extends Error {}

/** The default node URL, as in the lab. */
export const DEFAULT_NODE = "ws://127.0.0.1:9000/ws";

/** A connection to a node. */
export class NodeClient {
  #pending: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  #closed: Error | null = null;

  private constructor(readonly url: string, readonly socket: WebSocket) {
    socket.onmessage = (event) => {
      const waiter = this.#pending.shift();
      if (!waiter) return;
      try {
        waiter.resolve(JSON.parse(String(event.data)) as Reply);
      } catch {
        waiter.reject(
          new Error(`node sent a reply that is not JSON: ${String(event.data).slice(0, 80)}`),
        );
      }
    };
    socket.onclose = (event) => {
      this.#closed = new NodeUnreachable(
        `connection to ${url} closed${event.reason ? `: ${event.reason}` : ""}`,
      );
      for (const waiter of this.#pending.splice(0)) waiter.reject(this.#closed);
    };
  }

  /** Connects, or throws NodeUnreachable within `timeoutMs`. */
  static connect(url: string = DEFAULT_NODE, timeoutMs = 5000): Promise<NodeClient> {
    let socket: WebSocket;
    try {
      socket = new WebSocket(url);
    } catch (error) {
      return Promise.reject(
        new NodeUnreachable(`bad node URL ${url}: ${(error as Error).message}`),
      );
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.close();
        reject(new NodeUnreachable(`no answer from ${url} within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.onopen = () => {
        clearTimeout(timer);
        resolve(new NodeClient(url, socket));
      };
      socket.onerror = () => {};
      socket.onclose = () => {
        clearTimeout(timer);
        reject(new NodeUnreachable(`cannot reach a node at ${url} (is it running?)`));
      };
    });
  }

  /** Sends one request and waits for its reply. */
  request(op: string, args?: Record<string, unknown>): Promise<Reply> {
    return this.send(JSON.stringify(args === undefined ? { op } : { op, args }));
  }

  /** Sends a raw text message and waits for the reply (for tests of bad input). */
  send(text: string): Promise<Reply> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.socket.send(text);
    });
  }

  /** Closes the connection and waits until it is closed. */
  close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.addEventListener("close", () => resolve());
      this.socket.close();
    });
  }
}
