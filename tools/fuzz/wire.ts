/**
 * The fuzzer's raw WebSocket wire: a handshake over Deno.connect and frames built and parsed by
 * hand, so attacks can write bytes no proper client (lib/net/ws_conn.ts) would send. Not for
 * talking to nodes: lib/net/client.ts does that.
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Opens a TCP connection (TCP_NODELAY) and completes the WebSocket handshake within
 * `timeoutMs`. Returns the connection and the bytes read past the handshake (frames already).
 * The fuzzer uses it to write frames of its own making.
 */
export async function openWebSocket(
  url: string,
  timeoutMs = 10_000,
): Promise<{ conn: Deno.TcpConn; leftover: Uint8Array }> {
  const { hostname, port, pathname } = new URL(url);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  conn.setNoDelay(true);
  const timer = setTimeout(() => conn.close(), timeoutMs); // a silent server ends the wait
  try {
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
          throw new Error(`${url} refused the WebSocket upgrade: ${status}`);
        }
        return { conn, leftover: head.subarray(end + 4) };
      }
      if (head.length > 65536) throw new Error(`${url} sent an endless handshake`);
    }
    throw new Error("unreachable");
  } catch (error) {
    try {
      conn.close();
    } catch { /* closed by the timer */ }
    throw error;
  } finally {
    clearTimeout(timer);
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

/** The parts joined into one array. */
export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Writes every byte (a TCP write may take only part). */
export async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.length;) at += await conn.write(bytes.subarray(at));
}

/** A client frame: FIN set, the payload masked with a fresh key (RFC 6455 section 5.3). */
export function maskedFrame(opcode: number, payload: Uint8Array): Uint8Array {
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
export function parseFrame(
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
