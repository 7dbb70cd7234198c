/**
 * The one interface node-to-node links go behind: a WebSocket link (ws_conn.ts), a simulated
 * network in the tests, or later another transport all look the same to the code above.
 *
 * A link carries the lab protocol: a request `{op, args}`, one reply envelope, replies in
 * request order. The protocol has no request ids, so a reply that comes too late cannot be told
 * from the next one: every request has a deadline, and a request past it closes the link.
 */
import type { Reply } from "../node/protocol.ts";

export type { Reply };

/** The deadline of a request when none is given, in milliseconds. */
export const DEFAULT_DEADLINE_MS = 10_000;

/** Options of one request. */
export interface RequestOptions {
  /** Milliseconds to wait for the reply (default DEFAULT_DEADLINE_MS); past it the link closes. */
  deadlineMs?: number;
}

/** A live connection to another node. */
export interface Link {
  /** The URL it was dialled at. */
  readonly url: string;
  /**
   * Sends `{op, args}` and resolves with the reply. Rejects with DeadlineExceeded (and closes
   * the link) when no reply comes within the deadline, with LinkClosed when the link is or
   * becomes closed first, with LinkBusy when too many requests are waiting already (the link
   * stays up), and with BadReply when the reply is not an envelope (the link stays up).
   */
  request(op: string, args?: Record<string, unknown>, opts?: RequestOptions): Promise<Reply>;
  /** Closes the link; requests waiting reject with LinkClosed(reason). Safe to call again. */
  close(reason?: string): void;
  /** Resolves with the reason once the link is closed and its resources released. */
  readonly closed: Promise<string>;
}

/** Options of a dial. */
export interface DialOptions {
  /** Milliseconds for the whole dial (connect, TLS, handshake); past it, DialFailed. */
  timeoutMs: number;
  /** Aborting it ends the dial at once with DialFailed (kind "aborted"). */
  signal?: AbortSignal;
}

/** Opens links. */
export interface Dialer {
  /** Opens a link to `url`, or rejects with DialFailed within `opts.timeoutMs`. */
  dial(url: string, opts: DialOptions): Promise<Link>;
}

/**
 * Why a dial failed: a bad URL, no connection (nothing listening, no route, TLS failed), a
 * refused or broken WebSocket upgrade, no link within the dial's timeout, or aborted.
 */
export type DialFailure = "url" | "connect" | "upgrade" | "timeout" | "aborted";

/** A link could not be opened. */
export class DialFailed extends Error {
  /** `kind` sorts the reason, `detail` says it without the URL; the message is a sentence. */
  constructor(readonly url: string, readonly kind: DialFailure, readonly detail: string) {
    super(
      kind === "url"
        ? `bad URL ${url}: ${detail}`
        : kind === "connect"
        ? `cannot reach ${url}: ${detail}`
        : kind === "upgrade"
        ? `${url} ${detail}`
        : `no link to ${url}: ${detail}`,
    );
    this.name = "DialFailed";
  }
}

/** The link closed (or was closed) before the reply came. */
export class LinkClosed extends Error {
  /** `reason` is why the link closed. */
  constructor(readonly url: string, readonly reason: string) {
    super(`link to ${url} closed: ${reason}`);
    this.name = "LinkClosed";
  }
}

/** No reply within the request's deadline; the link is closed because of it. */
export class DeadlineExceeded extends Error {
  /** The request `op` got no reply within `deadlineMs`. */
  constructor(readonly url: string, readonly op: string, readonly deadlineMs: number) {
    super(`no reply to "${op}" from ${url} within ${deadlineMs} ms`);
    this.name = "DeadlineExceeded";
  }
}

/** Too many requests (or bytes) are waiting on the link already; this one was not sent. */
export class LinkBusy extends Error {
  /** `message` names the limit. */
  constructor(readonly url: string, message: string) {
    super(message);
    this.name = "LinkBusy";
  }
}

/** The peer answered with something that is not a reply envelope; the link stays up. */
export class BadReply extends Error {
  /** `message` shows the start of what came. */
  constructor(readonly url: string, message: string) {
    super(message);
    this.name = "BadReply";
  }
}
