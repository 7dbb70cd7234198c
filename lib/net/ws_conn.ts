/**
 * A WebSocket client link (RFC 6455) over a raw TCP connection with TCP_NODELAY.
 *
 * Why not Deno's WebSocket: its client leaves Nagle's algorithm on, and a request frame larger
 * than a few hundred bytes then waits for the server's delayed ACK: one connection sending
 * `merge` with 100 transactions manages about 22 requests per second whatever the node does
 * (docs/performance.md). This client sets TCP_NODELAY and writes each frame in one piece.
 *
 * What it does: `ws://` and `wss://` (TLS over the same no-delay socket), one deadline for
 * connect + TLS + upgrade, the upgrade checked (status, `Sec-WebSocket-Accept`, no extensions),
 * masked client frames, fragmented messages and ping/pong/close from the server, a cap on the
 * incoming message size, a cap on requests and bytes waiting, and a close handshake that waits
 * a bounded time for the server's answer. Every violation of RFC 6455 by the server closes the
 * link with the matching close code and says why.
 */
import { type FeedEvent, isEvent } from "../node/feed.ts";
import type { Reply } from "../node/protocol.ts";
import {
  BadReply,
  DeadlineExceeded,
  DEFAULT_DEADLINE_MS,
  type Dialer,
  DialFailed,
  type DialOptions,
  type Link,
  LinkBusy,
  LinkClosed,
  type RequestOptions,
} from "./link.ts";
import { realScheduler, type Scheduler, type TimerHandle } from "../core/scheduler.ts";

/** Options of a WebSocket link; every field has a default (WS_DEFAULTS). */
export interface WsConnOptions {
  /** Milliseconds for connect, TLS and the upgrade together. */
  timeoutMs?: number;
  /** Deadline of a request that names none, in milliseconds. */
  deadlineMs?: number;
  /** Largest incoming message in bytes; a larger one closes the link (code 1009). */
  maxMessageBytes?: number;
  /** Requests that may wait for their replies at once; past it, LinkBusy. */
  maxInFlight?: number;
  /** Request bytes that may wait to be written; past it, LinkBusy (one request always fits). */
  maxQueuedBytes?: number;
  /** Milliseconds to wait for the server's answer to our close frame before dropping TCP. */
  closeTimeoutMs?: number;
  /** Extra root certificates (PEM) for `wss://`, e.g. a test's self-signed one. */
  caCerts?: string[];
  /** Timers for the deadlines (default the real ones). */
  scheduler?: Scheduler;
}

/** The defaults of WsConnOptions. */
export const WS_DEFAULTS = {
  timeoutMs: 10_000,
  deadlineMs: DEFAULT_DEADLINE_MS,
  /** Above the node's own cap on what it sends a client that reads (16 MiB). */
  maxMessageBytes: 32 << 20,
  /** The node closes a connection with more than 256 requests waiting (server.ts). */
  maxInFlight: 256,
  maxQueuedBytes: 16 << 20,
  closeTimeoutMs: 2_000,
} as const;

const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });
const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/** The upgrade reply's head may be at most this long. */
const MAX_HEAD_BYTES = 16 * 1024;
/** Bytes read at a time, and the read buffer's resting size. */
const READ_BYTES = 64 * 1024;
/** A buffer grown past this for one large message shrinks back once it is empty. */
const SHRINK_ABOVE = 1 << 20;

/** A violation of RFC 6455 (or of the lab protocol) by the server: closes with `code`. */
class WsViolation extends Error {
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

interface Waiter {
  op: string;
  resolve: (reply: Reply) => void;
  reject: (error: Error) => void;
  timer: TimerHandle;
}

interface Frame {
  fin: boolean;
  opcode: number;
  /** A view into the read buffer: valid until the next read. */
  payload: Uint8Array;
}

/** A parsed `ws://` or `wss://` URL. */
interface Target {
  secure: boolean;
  hostname: string;
  port: number;
  host: string;
  path: string;
}

/** Parses a WebSocket URL, or throws DialFailed saying what is wrong with it. */
function parseTarget(url: string): Target {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new DialFailed(url, "url", "not a URL");
  }
  if (parsed.protocol !== "ws:" && parsed.protocol !== "wss:") {
    throw new DialFailed(url, "url", "only ws:// and wss:// are supported");
  }
  const secure = parsed.protocol === "wss:";
  return {
    secure,
    hostname: parsed.hostname.replace(/^\[(.*)\]$/, "$1"), // [::1] -> ::1 for Deno.connect
    port: parsed.port ? Number(parsed.port) : secure ? 443 : 80,
    host: parsed.host,
    path: (parsed.pathname || "/") + parsed.search,
  };
}

/** One WebSocket link to a node: requests answered in order. */
export class WsConn implements Link {
  readonly #conn: Deno.Conn;
  readonly #scheduler: Scheduler;
  readonly #deadlineMs: number;
  readonly #maxMessageBytes: number;
  readonly #maxInFlight: number;
  readonly #maxQueuedBytes: number;
  readonly #closeTimeoutMs: number;

  #waiters: Waiter[] = [];
  #state: "open" | "closing" | "closed" = "open";
  #reason = "";
  #closeSent = false;
  #closeTimer: TimerHandle | undefined;
  #writing: Promise<void> = Promise.resolve();
  #queuedBytes = 0;

  // The read buffer: bytes [#start, #end) are read and not yet parsed.
  #buf = new Uint8Array(READ_BYTES);
  #start = 0;
  #end = 0;
  // A fragmented message being assembled: its opcode (0: none) and bytes [0, #partsBytes).
  #parts = new Uint8Array(0);
  #partsBytes = 0;
  #partsOpcode = 0;
  // The payload of the latest ping while its pong waits to be written, else null.
  #pong: Uint8Array | null = null;

  #destroyed!: () => void;
  readonly #destroyedP = new Promise<void>((resolve) => (this.#destroyed = resolve));
  readonly #reading: Promise<void>;

  /** Resolves with the reason once the link is closed and the socket released. */
  readonly closed: Promise<string>;

  /**
   * Receives the events a node pushes after `subscribe` (feed.ts): they answer no request, so
   * they never take a waiter's place. Without a receiver they are ignored.
   */
  onEvent: ((event: FeedEvent) => void) | null = null;

  private constructor(
    readonly url: string,
    conn: Deno.Conn,
    leftover: Uint8Array,
    opts: WsConnOptions,
  ) {
    this.#conn = conn;
    this.#scheduler = opts.scheduler ?? realScheduler;
    this.#deadlineMs = opts.deadlineMs ?? WS_DEFAULTS.deadlineMs;
    this.#maxMessageBytes = opts.maxMessageBytes ?? WS_DEFAULTS.maxMessageBytes;
    this.#maxInFlight = opts.maxInFlight ?? WS_DEFAULTS.maxInFlight;
    this.#maxQueuedBytes = opts.maxQueuedBytes ?? WS_DEFAULTS.maxQueuedBytes;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? WS_DEFAULTS.closeTimeoutMs;
    this.#append(leftover);
    this.#reading = this.#readLoop();
    this.closed = Promise.all([this.#reading, this.#destroyedP])
      .then(() => this.#writing)
      .then(() => this.#reason);
  }

  /**
   * Opens a link: TCP (with TCP_NODELAY), TLS for `wss://`, and the WebSocket upgrade, all
   * within `timeoutMs`, unless `signal` aborts first. Rejects with DialFailed saying why.
   */
  static async connect(
    url: string,
    opts: WsConnOptions & { signal?: AbortSignal } = {},
  ): Promise<WsConn> {
    const target = parseTarget(url);
    const scheduler = opts.scheduler ?? realScheduler;
    const timeoutMs = opts.timeoutMs ?? WS_DEFAULTS.timeoutMs;
    const abort = new AbortController();
    let conn: Deno.Conn | null = null;
    let timedOut = false;
    const attempt = (async () => {
      const tcp = await Deno.connect({
        hostname: target.hostname,
        port: target.port,
        signal: abort.signal,
      });
      conn = tcp;
      tcp.setNoDelay(true);
      if (target.secure) {
        conn = await Deno.startTls(tcp, { hostname: target.hostname, caCerts: opts.caCerts });
      }
      return await upgrade(conn, url, target);
    })();
    let timer: TimerHandle;
    let onAbort = () => {};
    const ended = new Promise<never>((_, reject) => {
      const end = (error: DialFailed) => {
        timedOut = true;
        abort.abort();
        closeQuietly(conn); // ends a pending read or write of the upgrade
        reject(error);
      };
      timer = scheduler.setTimeout(
        () => end(new DialFailed(url, "timeout", `no WebSocket link within ${timeoutMs} ms`)),
        timeoutMs,
      );
      onAbort = () => end(new DialFailed(url, "aborted", "the dial was aborted"));
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener("abort", onAbort);
    });
    // Whatever the attempt still does after a timeout (a TLS handshake cannot be cancelled),
    // its connection is closed when it is done.
    attempt.then(() => timedOut && closeQuietly(conn), () => closeQuietly(conn));
    try {
      const leftover = await Promise.race([attempt, ended]);
      return new WsConn(url, conn!, leftover, opts);
    } catch (error) {
      if (error instanceof DialFailed) throw error;
      throw new DialFailed(url, "connect", messageOf(error));
    } finally {
      scheduler.clearTimeout(timer!);
      opts.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Requests waiting for their replies. */
  get inFlight(): number {
    return this.#waiters.length;
  }

  /** Sends `{op, args}` and resolves with the reply; see Link.request for the errors. */
  request(op: string, args?: Record<string, unknown>, opts: RequestOptions = {}): Promise<Reply> {
    let text: string;
    try {
      text = JSON.stringify(args === undefined ? { op } : { op, args });
    } catch (error) {
      return Promise.reject(new TypeError(`cannot encode "${op}" request: ${messageOf(error)}`));
    }
    return this.#send(text, op, opts);
  }

  /** Sends a raw text message and resolves with the reply (for tools and tests of bad input). */
  send(text: string, opts: RequestOptions = {}): Promise<Reply> {
    return this.#send(text, "request", opts);
  }

  /**
   * Starts the close handshake: requests waiting reject with LinkClosed(reason), a close frame
   * goes out, and the socket is dropped when the server answers or after `closeTimeoutMs`.
   */
  close(reason = "closed"): void {
    if (this.#state !== "open") return;
    this.#beginClose(reason, 1000);
    this.#closeTimer = this.#scheduler.setTimeout(() => this.#destroy(), this.#closeTimeoutMs);
  }

  #send(text: string, op: string, opts: RequestOptions): Promise<Reply> {
    if (this.#state !== "open") return Promise.reject(new LinkClosed(this.url, this.#reason));
    const deadlineMs = opts.deadlineMs ?? this.#deadlineMs;
    if (!(deadlineMs > 0) || !Number.isFinite(deadlineMs)) {
      return Promise.reject(
        new RangeError(`deadline must be a positive number, got ${deadlineMs}`),
      );
    }
    if (this.#waiters.length >= this.#maxInFlight) {
      return Promise.reject(
        new LinkBusy(this.url, `${this.#maxInFlight} requests wait on the link to ${this.url}`),
      );
    }
    const frame = clientFrame(0x1, encoder.encode(text));
    if (this.#queuedBytes > 0 && this.#queuedBytes + frame.length > this.#maxQueuedBytes) {
      return Promise.reject(
        new LinkBusy(this.url, `${this.#queuedBytes} bytes wait to be sent to ${this.url}`),
      );
    }
    return new Promise<Reply>((resolve, reject) => {
      const waiter: Waiter = { op, resolve, reject, timer: undefined };
      waiter.timer = this.#scheduler.setTimeout(() => {
        // A late reply would be taken for the next request's: the link cannot go on.
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(new DeadlineExceeded(this.url, op, deadlineMs));
        this.#fail(`no reply to "${op}" within ${deadlineMs} ms`, 1000);
      }, deadlineMs);
      this.#waiters.push(waiter);
      this.#write(frame);
    });
  }

  /**
   * Queues a frame behind the ones already queued, counting `size` bytes while it waits; a
   * function is called when the frame's turn comes (null: nothing to send any more). A write
   * error means the connection is lost.
   */
  #write(frame: Uint8Array | (() => Uint8Array | null), size = (frame as Uint8Array).length): void {
    this.#queuedBytes += size;
    this.#writing = this.#writing.then(async () => {
      try {
        const bytes = typeof frame === "function" ? frame() : frame;
        if (bytes && this.#state !== "closed") await writeAll(this.#conn, bytes);
      } finally {
        this.#queuedBytes -= size;
      }
    }).catch((error) => this.#lost(`cannot write: ${messageOf(error)}`));
  }

  /** Enters "closing": waiters reject, a close frame is queued once. */
  #beginClose(reason: string, code: number | null): void {
    if (this.#state === "open") {
      this.#state = "closing";
      this.#reason = reason;
      const error = new LinkClosed(this.url, reason);
      for (const waiter of this.#waiters.splice(0)) {
        this.#scheduler.clearTimeout(waiter.timer);
        waiter.reject(error);
      }
    }
    if (!this.#closeSent && this.#state === "closing") {
      this.#closeSent = true;
      this.#write(clientFrame(0x8, closePayload(code, reason)));
    }
  }

  /** Closes because of a fault: the close frame is written (bounded), then the socket dropped. */
  #fail(reason: string, code: number): void {
    if (this.#state !== "open") return;
    this.#beginClose(reason, code);
    this.#dropAfterWrites();
  }

  /** The connection ended or broke: nothing more can be written. */
  #lost(reason: string): void {
    if (this.#state === "open") {
      this.#closeSent = true; // there is nobody to send it to
      this.#beginClose(reason, null);
    }
    this.#destroy();
  }

  /** Drops the socket once the queued writes are out, or after closeTimeoutMs at the latest. */
  #dropAfterWrites(): void {
    this.#scheduler.clearTimeout(this.#closeTimer);
    this.#closeTimer = this.#scheduler.setTimeout(() => this.#destroy(), this.#closeTimeoutMs);
    this.#writing.then(() => this.#destroy());
  }

  #destroy(): void {
    if (this.#state === "closed") return;
    if (this.#state === "open") {
      this.#closeSent = true;
      this.#beginClose("closed", null);
    }
    this.#state = "closed";
    this.#scheduler.clearTimeout(this.#closeTimer);
    closeQuietly(this.#conn); // ends the pending read and any blocked write
    this.#destroyed();
  }

  async #readLoop(): Promise<void> {
    try {
      while (this.#state !== "closed") {
        const frame = this.#nextFrame();
        if (typeof frame === "number") {
          if (!(await this.#fill(frame))) {
            this.#lost(`${this.url} dropped the connection`);
            return;
          }
          continue;
        }
        this.#onFrame(frame);
      }
    } catch (error) {
      if (error instanceof WsViolation && this.#state === "open") {
        this.#fail(error.message, error.code);
      } else this.#lost(`connection error: ${messageOf(error)}`);
    }
  }

  /** Reads until `need` bytes are buffered; false at the end of the stream. */
  async #fill(need: number): Promise<boolean> {
    const have = this.#end - this.#start;
    if (this.#buf.length - this.#start < need || this.#buf.length - this.#end < READ_BYTES / 4) {
      // Compact, or grow to hold the whole frame (its size is checked against the cap already).
      const size = Math.max(READ_BYTES, need + READ_BYTES);
      const target = size > this.#buf.length ? new Uint8Array(size) : this.#buf;
      if (target === this.#buf) target.copyWithin(0, this.#start, this.#end);
      else target.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = target;
      this.#start = 0;
      this.#end = have;
    }
    while (this.#end - this.#start < need) {
      const n = await this.#conn.read(this.#buf.subarray(this.#end));
      if (n === null) return false;
      this.#end += n;
    }
    return true;
  }

  #append(bytes: Uint8Array): void {
    if (bytes.length > this.#buf.length) this.#buf = new Uint8Array(bytes.length + READ_BYTES);
    this.#buf.set(bytes, 0);
    this.#start = 0;
    this.#end = bytes.length;
  }

  /** The next whole frame in the buffer, or how many bytes are needed to have one. */
  #nextFrame(): Frame | number {
    const buf = this.#buf;
    const at = this.#start;
    const have = this.#end - at;
    if (have < 2) return 2;
    const b0 = buf[at], b1 = buf[at + 1];
    const fin = (b0 & 0x80) !== 0;
    const opcode = b0 & 0x0f;
    if (b0 & 0x70) throw new WsViolation(1002, "the server set reserved frame bits");
    if (b1 & 0x80) throw new WsViolation(1002, "the server sent a masked frame");
    let len = b1 & 0x7f;
    let head = 2;
    if (len === 126) {
      head = 4;
      if (have < head) return head;
      len = (buf[at + 2] << 8) | buf[at + 3];
    } else if (len === 127) {
      head = 10;
      if (have < head) return head;
      const view = new DataView(buf.buffer, buf.byteOffset + at + 2, 8);
      const high = view.getUint32(0);
      len = high > 0x1fffff ? Infinity : high * 2 ** 32 + view.getUint32(4);
    }
    if (opcode >= 0x8) {
      if (opcode > 0xa) throw new WsViolation(1002, `the server sent unknown opcode ${opcode}`);
      if (!fin || len > 125) throw new WsViolation(1002, "the server sent a bad control frame");
    } else {
      if (opcode > 0x2) throw new WsViolation(1002, `the server sent unknown opcode ${opcode}`);
      if (this.#partsBytes + len > this.#maxMessageBytes) {
        throw new WsViolation(
          1009,
          `the server sent a message over ${this.#maxMessageBytes} bytes`,
        );
      }
    }
    if (have < head + len) return head + len;
    this.#start = at + head + len;
    const payload = buf.subarray(at + head, at + head + len);
    if (this.#start === this.#end) {
      // Everything is parsed: start over at the front, smaller again after a large message.
      this.#start = this.#end = 0;
      if (buf.length > SHRINK_ABOVE) this.#buf = new Uint8Array(READ_BYTES);
    }
    return { fin, opcode, payload };
  }

  #onFrame({ fin, opcode, payload }: Frame): void {
    switch (opcode) {
      case 0x9: // ping: answer with a pong carrying the same bytes
        if (this.#state === "open") this.#queuePong(payload.slice());
        return;
      case 0xa: // pong: nothing asked for one
        return;
      case 0x8:
        return this.#onClose(payload);
      case 0x0:
        if (this.#partsOpcode === 0) {
          throw new WsViolation(1002, "the server sent a continuation frame with no message");
        }
        this.#appendPart(payload);
        if (fin) {
          const message = this.#parts.subarray(0, this.#partsBytes);
          const kind = this.#partsOpcode;
          this.#parts = new Uint8Array(0);
          this.#partsBytes = 0;
          this.#partsOpcode = 0;
          this.#onMessage(kind, message);
        }
        return;
      default: // 0x1 text, 0x2 binary
        if (this.#partsOpcode !== 0) {
          throw new WsViolation(1002, "the server started a message inside a fragmented one");
        }
        if (fin) return this.#onMessage(opcode, payload);
        this.#partsOpcode = opcode;
        this.#appendPart(payload);
    }
  }

  /** Adds a fragment to the message being assembled (its size is checked already). */
  #appendPart(payload: Uint8Array): void {
    const need = this.#partsBytes + payload.length;
    if (need > this.#parts.length) {
      const grown = new Uint8Array(
        Math.min(this.#maxMessageBytes, Math.max(need, 2 * this.#parts.length, 4096)),
      );
      grown.set(this.#parts.subarray(0, this.#partsBytes));
      this.#parts = grown;
    }
    this.#parts.set(payload, this.#partsBytes);
    this.#partsBytes = need;
  }

  /**
   * Answers a ping. While a pong waits to be written, a newer ping only replaces its payload
   * (RFC 6455 5.5.3 allows answering the latest only): a server that pings without reading
   * cannot make us queue pongs without end.
   */
  #queuePong(payload: Uint8Array): void {
    const queued = this.#pong !== null;
    this.#pong = payload;
    if (queued) return;
    this.#write(() => {
      const pong = this.#pong!;
      this.#pong = null;
      return this.#state === "open" ? clientFrame(0xa, pong) : null;
    }, 131); // at most: a pong's header and 125 bytes
  }

  #onClose(payload: Uint8Array): void {
    if (payload.length === 1) throw new WsViolation(1002, "the server sent a bad close frame");
    if (this.#state !== "open") {
      this.#destroy(); // the answer to our close frame
      return;
    }
    let why = "";
    let code: number | null = null;
    if (payload.length >= 2) {
      code = (payload[0] << 8) | payload[1];
      why = decodeText(payload.subarray(2));
    }
    const detail = code === null ? "" : ` (${code}${why ? ` ${why}` : ""})`;
    this.#beginClose(`${this.url} closed the link${detail}`, validCloseCode(code) ? code : null);
    this.#dropAfterWrites();
  }

  #onMessage(opcode: number, bytes: Uint8Array): void {
    if (opcode === 0x2) throw new WsViolation(1003, "the server sent a binary message");
    const text = decodeText(bytes);
    if (this.#state !== "open") return; // closing: nobody waits for it
    let reply: unknown;
    try {
      reply = JSON.parse(text);
    } catch {
      reply = undefined;
    }
    if (isEvent(reply)) {
      this.onEvent?.(reply);
      return;
    }
    const waiter = this.#waiters.shift();
    if (!waiter) throw new WsViolation(1008, "the server sent a reply to no request");
    this.#scheduler.clearTimeout(waiter.timer);
    if (isReply(reply)) waiter.resolve(reply);
    else {
      waiter.reject(
        new BadReply(this.url, `${this.url} answered "${waiter.op}" with ${text.slice(0, 80)}`),
      );
    }
  }
}

/** A Dialer of WebSocket links with these options. */
export function createWsDialer(opts: WsConnOptions = {}): Dialer {
  return {
    dial: (url: string, dial: DialOptions) => WsConn.connect(url, { ...opts, ...dial }),
  };
}

/** The WebSocket dialer with the default options. */
export const wsDialer: Dialer = createWsDialer();

// ---- the upgrade ------------------------------------------------------------------------------

/** Sends the upgrade request, checks the 101 reply; returns the bytes read past its head. */
async function upgrade(conn: Deno.Conn, url: string, target: Target): Promise<Uint8Array> {
  const key = toBase64(crypto.getRandomValues(new Uint8Array(16)));
  await writeAll(
    conn,
    encoder.encode(
      `GET ${target.path} HTTP/1.1\r\nHost: ${target.host}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    ),
  );
  const buf = new Uint8Array(MAX_HEAD_BYTES);
  let have = 0;
  let end = -1;
  while (end < 0) {
    if (have === buf.length) {
      throw new DialFailed(url, "upgrade", `sent an upgrade reply over ${MAX_HEAD_BYTES} bytes`);
    }
    const n = await conn.read(buf.subarray(have));
    if (n === null) {
      throw new DialFailed(url, "upgrade", "closed the connection during the upgrade");
    }
    end = headEnd(buf, Math.max(0, have - 3), have + n);
    have += n;
  }
  const lines = new TextDecoder().decode(buf.subarray(0, end)).split("\r\n");
  const status = lines[0];
  if (!/^HTTP\/1\.1 101\b/.test(status)) {
    throw new DialFailed(url, "upgrade", `refused the WebSocket upgrade: ${status.slice(0, 80)}`);
  }
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  const expected = toBase64(
    new Uint8Array(await crypto.subtle.digest("SHA-1", encoder.encode(key + GUID))),
  );
  const problem = headers.get("upgrade")?.toLowerCase() !== "websocket"
    ? "no Upgrade: websocket"
    : !/\bupgrade\b/i.test(headers.get("connection") ?? "")
    ? "no Connection: Upgrade"
    : headers.get("sec-websocket-accept") !== expected
    ? "a wrong Sec-WebSocket-Accept"
    : headers.has("sec-websocket-extensions")
    ? "an extension nobody asked for"
    : null;
  if (problem) {
    throw new DialFailed(url, "upgrade", `answered the upgrade with ${problem}`);
  }
  return buf.slice(end + 4, have);
}

/** Where "\r\n\r\n" starts in bytes [from, to), or -1. */
function headEnd(bytes: Uint8Array, from: number, to: number): number {
  for (let i = from; i + 3 < to; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

// ---- frames -----------------------------------------------------------------------------------

/**
 * A client frame: FIN set, the payload masked with a fresh random key (RFC 6455 section 5.3).
 * The frame starts at an offset that puts the payload on a 4-byte boundary, so the mask is
 * applied a 32-bit word at a time.
 */
function clientFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const body = 2 + extra + 4;
  const pad = (4 - (body % 4)) % 4;
  const whole = new Uint8Array(pad + body + len);
  const frame = whole.subarray(pad);
  frame[0] = 0x80 | opcode;
  if (extra === 0) frame[1] = 0x80 | len;
  else if (extra === 2) {
    frame[1] = 0x80 | 126;
    frame[2] = len >>> 8;
    frame[3] = len & 0xff;
  } else {
    frame[1] = 0x80 | 127;
    new DataView(whole.buffer, pad + 2, 8).setBigUint64(0, BigInt(len));
  }
  const mask = frame.subarray(body - 4, body);
  crypto.getRandomValues(mask);
  frame.set(payload, body);
  const words = len >>> 2;
  const word = new Uint32Array(mask.slice().buffer)[0];
  const view = new Uint32Array(whole.buffer, pad + body, words);
  for (let i = 0; i < words; i++) view[i] ^= word;
  for (let i = words << 2; i < len; i++) frame[body + i] ^= mask[i & 3];
  return frame;
}

/** A close frame's payload: the code and a reason cut to fit 123 bytes; empty without a code. */
function closePayload(code: number | null, reason: string): Uint8Array {
  if (code === null) return new Uint8Array(0);
  let text = encoder.encode(reason);
  if (text.length > 123) {
    let cut = 123;
    while (cut > 0 && (text[cut] & 0xc0) === 0x80) cut--; // not inside a UTF-8 sequence
    text = text.subarray(0, cut);
  }
  const out = new Uint8Array(2 + text.length);
  out[0] = code >>> 8;
  out[1] = code & 0xff;
  out.set(text, 2);
  return out;
}

/** Codes an endpoint may send (RFC 6455 section 7.4); 1005, 1006 and 1015 may not. */
function validCloseCode(code: number | null): code is number {
  return code !== null &&
    ((code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006) ||
      (code >= 3000 && code <= 4999));
}

function decodeText(bytes: Uint8Array): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    throw new WsViolation(1007, "the server sent text that is not UTF-8");
  }
}

function isReply(value: unknown): value is Reply {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const r = value as Record<string, unknown>;
  return typeof r.status === "number" && typeof r.error === "string" &&
    (r.response === undefined || r.response === null ||
      (typeof r.response === "object" && !Array.isArray(r.response)));
}

// ---- bytes ------------------------------------------------------------------------------------

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

function toBase64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

function closeQuietly(conn: Deno.Conn | null): void {
  try {
    conn?.close();
  } catch { /* already closed */ }
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
