/**
 * A minimal WebSocket client for the load generator (RFC 6455 text frames over Deno.connect).
 *
 * Why not lib/net/client.ts: Deno's built-in WebSocket client leaves Nagle's algorithm on, and a
 * request frame larger than a few hundred bytes then waits for the server's delayed ACK: one
 * connection sending `merge` with 100 transactions manages about 22 requests per second
 * whatever the node does (measured; docs/performance.md). This client sets TCP_NODELAY and
 * writes each frame in one piece, so the numbers are the node's. It speaks the same protocol:
 * one JSON request per text frame, replies in order.
 */
import type { Reply } from "../lib/node/protocol.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One connection to a node's /ws. Requests are answered in order, as the node promises. */
export class WsClient {
  #conn: Deno.TcpConn;
  #waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  #writing: Promise<void> = Promise.resolve();
  #closed: Error | null = null;
  #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn, leftover: Uint8Array) {
    this.#conn = conn;
    this.#reading = this.#readLoop(leftover).catch((error) => this.#fail(error));
  }

  /** Opens the connection and completes the WebSocket handshake within `timeoutMs`. */
  static async connect(url: string, timeoutMs = 10_000): Promise<WsClient> {
    const { hostname, port, pathname } = new URL(url);
    const conn = await Deno.connect({ hostname, port: Number(port) });
    conn.setNoDelay(true);
    const timer = setTimeout(() => conn.close(), timeoutMs); // a silent server ends the wait
    try {
      return await WsClient.#handshake(conn, url, hostname, port, pathname);
    } finally {
      clearTimeout(timer);
    }
  }

  static async #handshake(
    conn: Deno.TcpConn,
    url: string,
    hostname: string,
    port: string,
    pathname: string,
  ): Promise<WsClient> {
    const key = btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))));
    await writeAll(
      conn,
      encoder.encode(
        `GET ${pathname} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
          `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      ),
    );
    let head: Uint8Array = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    for (let end = -1; end < 0;) {
      const n = await conn.read(chunk);
      if (n === null) throw new Error(`${url} closed during the handshake`);
      head = concat(head, chunk.subarray(0, n));
      end = findHeaderEnd(head);
      if (end >= 0) {
        const status = decoder.decode(head.subarray(0, end)).split("\r\n")[0];
        if (!/^HTTP\/1\.1 101\b/.test(status)) {
          conn.close();
          throw new Error(`${url} refused the WebSocket upgrade: ${status}`);
        }
        return new WsClient(conn, head.subarray(end + 4));
      }
      if (head.length > 65536) throw new Error(`${url} sent an endless handshake`);
    }
    throw new Error("unreachable");
  }

  /**
   * Sends one request (a JSON text) and resolves with its reply. A reply that takes longer
   * than `timeoutMs` fails the connection: the benchmark must never wait forever.
   */
  send(text: string, timeoutMs = 60_000): Promise<Reply> {
    if (this.#closed) return Promise.reject(this.#closed);
    const reply = new Promise<Reply>((resolve, reject) => {
      const timer = setTimeout(
        () => this.#fail(new Error(`no reply within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiting.push({
        resolve: (r) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
    });
    const frame = maskedFrame(0x1, encoder.encode(text));
    this.#writing = this.#writing.then(() => writeAll(this.#conn, frame)).catch((error) =>
      this.#fail(error)
    );
    return reply;
  }

  /** Sends a close frame and waits for the connection to end. */
  async close(): Promise<void> {
    if (!this.#closed) {
      await this.#writing;
      try {
        await writeAll(this.#conn, maskedFrame(0x8, new Uint8Array([0x03, 0xe8])));
      } catch { /* already gone */ }
    }
    await this.#reading;
  }

  #fail(error: unknown): void {
    if (!this.#closed) {
      this.#closed = error instanceof Error ? error : new Error(String(error));
      try {
        this.#conn.close();
      } catch { /* already closed */ }
    }
    for (const waiter of this.#waiting.splice(0)) waiter.reject(this.#closed);
  }

  async #readLoop(leftover: Uint8Array): Promise<void> {
    let buffer: Uint8Array = leftover;
    let message: Uint8Array[] = [];
    const chunk = new Uint8Array(64 * 1024);
    while (true) {
      const frame = parseFrame(buffer);
      if (!frame) {
        const n = await this.#conn.read(chunk);
        if (n === null) break;
        buffer = concat(buffer, chunk.subarray(0, n));
        continue;
      }
      buffer = buffer.subarray(frame.size);
      if (frame.opcode === 0x8) break; // close
      if (frame.opcode === 0x9) { // ping: answer with a pong of the same payload
        const pong = maskedFrame(0xa, frame.payload.slice());
        this.#writing = this.#writing.then(() => writeAll(this.#conn, pong));
        continue;
      }
      if (frame.opcode === 0xa) continue;
      message.push(frame.payload.slice());
      if (!frame.fin) continue;
      const text = decoder.decode(message.length === 1 ? message[0] : concat(...message));
      message = [];
      const waiter = this.#waiting.shift();
      if (!waiter) throw new Error("the node sent a reply nobody asked for");
      waiter.resolve(JSON.parse(text) as Reply);
    }
    this.#fail(new Error("connection closed"));
  }
}

function findHeaderEnd(bytes: Uint8Array): number {
  for (let i = 0; i + 3 < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10 && bytes[i + 2] === 13 && bytes[i + 3] === 10) {
      return i;
    }
  }
  return -1;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** A client frame: FIN set, the payload masked with a fresh key (RFC 6455 section 5.3). */
function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length;
  const extra = len < 126 ? 0 : len < 65536 ? 2 : 8;
  const frame = new Uint8Array(2 + extra + 4 + len);
  frame[0] = 0x80 | opcode;
  const view = new DataView(frame.buffer);
  if (extra === 0) frame[1] = 0x80 | len;
  else if (extra === 2) {
    frame[1] = 0x80 | 126;
    view.setUint16(2, len);
  } else {
    frame[1] = 0x80 | 127;
    view.setBigUint64(2, BigInt(len));
  }
  const maskAt = 2 + extra;
  crypto.getRandomValues(frame.subarray(maskAt, maskAt + 4));
  const mask = frame.subarray(maskAt, maskAt + 4);
  const body = maskAt + 4;
  for (let i = 0; i < len; i++) frame[body + i] = payload[i] ^ mask[i & 3];
  return frame;
}

/** The first complete frame in `bytes` (server frames are not masked), or null. */
function parseFrame(
  bytes: Uint8Array,
): { fin: boolean; opcode: number; payload: Uint8Array; size: number } | null {
  if (bytes.length < 2) return null;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let len = bytes[1] & 0x7f;
  let at = 2;
  if (len === 126) {
    if (bytes.length < 4) return null;
    len = view.getUint16(2);
    at = 4;
  } else if (len === 127) {
    if (bytes.length < 10) return null;
    len = Number(view.getBigUint64(2));
    at = 10;
  }
  if (bytes[1] & 0x80) at += 4; // a masked frame from a server is not expected; skip the key
  if (bytes.length < at + len) return null;
  return {
    fin: (bytes[0] & 0x80) !== 0,
    opcode: bytes[0] & 0x0f,
    payload: bytes.subarray(at, at + len),
    size: at + len,
  };
}
