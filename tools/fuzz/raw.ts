/**
 * Attacks below the JSON: frames a browser would never send (invalid UTF-8 text, reserved
 * opcodes and bits, unmasked frames, broken fragmentation, oversized control frames, a length
 * of 2^62), frames that are fine but awkward (random binary, fragments, a 2 MiB text), floods
 * without reading, and connections abandoned at every stage. Each opens its own connection and
 * reports what the node did: the replies it sent (each checked as documented) and whether it
 * closed the connection.
 */
import { concat, maskedFrame, openWebSocket, parseFrame, writeAll } from "./wire.ts";
import type { Rng } from "../shared/rng.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What the node did with one attack's connection. */
export interface RawOutcome {
  /** Text (or binary) messages it sent back. */
  replies: string[];
  /** The close code it sent, 0 when the connection ended without a close frame, null if open. */
  closed: number | null;
}

/** A frame with every bit chosen: for frames a proper client would not make. */
export function frame(opts: {
  opcode: number;
  payload: Uint8Array;
  fin?: boolean;
  rsv?: number;
  masked?: boolean;
  /** A length to claim instead of the payload's. */
  claim?: bigint;
}): Uint8Array {
  const { opcode, payload } = opts;
  const masked = opts.masked ?? true;
  const len = opts.claim ?? BigInt(payload.length);
  const extra = len < 126n ? 0 : len < 65536n ? 2 : 8;
  const head = new Uint8Array(2 + extra + (masked ? 4 : 0));
  head[0] = ((opts.fin ?? true) ? 0x80 : 0) | ((opts.rsv ?? 0) << 4) | opcode;
  const view = new DataView(head.buffer);
  if (extra === 0) head[1] = Number(len);
  else if (extra === 2) {
    head[1] = 126;
    view.setUint16(2, Number(len));
  } else {
    head[1] = 127;
    view.setBigUint64(2, len);
  }
  if (!masked) return concat(head, payload);
  head[1] |= 0x80;
  const mask = crypto.getRandomValues(new Uint8Array(4));
  head.set(mask, 2 + extra);
  const body = payload.map((b, i) => b ^ mask[i & 3]);
  return concat(head, body);
}

const text = (s: string) => maskedFrame(0x1, encoder.encode(s));

/** Reads what the node sends for `ms`, until it closes, or until `enough` replies came. */
async function observe(
  conn: Deno.Conn,
  leftover: Uint8Array,
  ms: number,
  enough: number,
): Promise<RawOutcome> {
  const out: RawOutcome = { replies: [], closed: null };
  let buffer = leftover;
  const chunk = new Uint8Array(64 * 1024);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, ms);
  let fragments: Uint8Array[] = [];
  try {
    while (true) {
      const f = parseFrame(buffer);
      if (f) {
        buffer = buffer.subarray(f.size);
        if (f.opcode === 0x8) {
          out.closed = f.payload.length >= 2 ? (f.payload[0] << 8) | f.payload[1] : 1005;
          return out;
        }
        if (f.opcode === 0x9 || f.opcode === 0xa) continue;
        fragments.push(f.payload.slice());
        if (f.fin) {
          out.replies.push(decoder.decode(concat(...fragments)));
          fragments = [];
          if (out.replies.length >= enough) return out;
        }
        continue;
      }
      const n = await conn.read(chunk);
      if (n === null) {
        out.closed = 0;
        return out;
      }
      buffer = concat(buffer, chunk.subarray(0, n));
    }
  } catch {
    // Closed by our timer (the node kept it open: closed stays null) or reset by the node.
    if (!timedOut) out.closed = 0;
    return out;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
}

/** One raw attack: a name, and what it writes after the handshake. */
interface Attack {
  name: string;
  /** Bytes to write once the WebSocket is open. */
  bytes: (rng: Rng) => Uint8Array;
  /** How long to watch for an answer (ms). */
  watchMs: number;
  /** Replies after which there is nothing more to wait for (default: wait for the close). */
  replies?: number;
}

/** The attacks that run over an open WebSocket. */
export const ATTACKS: Attack[] = [
  {
    name: "invalid UTF-8 text frame",
    bytes: (rng) =>
      frame({
        opcode: 0x1,
        payload: concat(
          encoder.encode('{"op":"'),
          rng.pick([
            new Uint8Array([0xff, 0xfe]),
            new Uint8Array([0xc3, 0x28]),
            new Uint8Array([0xed, 0xa0, 0x80]),
            new Uint8Array([0xf8, 0x88, 0x80, 0x80, 0x80]),
          ]),
          encoder.encode('"}'),
        ),
      }),
    watchMs: 1000,
  },
  {
    name: "random binary frame",
    bytes: (rng) => frame({ opcode: 0x2, payload: rng.bytes(rng.between(0, 2000)) }),
    watchMs: 2000,
    replies: 1,
  },
  {
    name: "fragmented request",
    bytes: (rng) => {
      const all = encoder.encode('{"op":"time"}');
      const cut = rng.between(1, all.length - 1);
      return concat(
        frame({ opcode: 0x1, payload: all.subarray(0, cut), fin: false }),
        frame({ opcode: 0x9, payload: new Uint8Array(0) }), // a ping between fragments is allowed
        frame({ opcode: 0x0, payload: all.subarray(cut) }),
      );
    },
    watchMs: 2000,
    replies: 1,
  },
  {
    name: "continuation without a start",
    bytes: () => frame({ opcode: 0x0, payload: encoder.encode('{"op":"time"}') }),
    watchMs: 1000,
  },
  {
    name: "new message inside a fragmented one",
    bytes: () =>
      concat(
        frame({ opcode: 0x1, payload: encoder.encode('{"op":'), fin: false }),
        text('{"op":"time"}'),
      ),
    watchMs: 1000,
  },
  {
    name: "reserved opcode",
    bytes: (rng) => frame({ opcode: rng.pick([0x3, 0x7, 0xb, 0xf]), payload: rng.bytes(4) }),
    watchMs: 1000,
  },
  {
    name: "reserved bits set",
    bytes: (rng) =>
      frame({ opcode: 0x1, rsv: rng.between(1, 7), payload: encoder.encode('{"op":"time"}') }),
    watchMs: 1000,
  },
  {
    name: "unmasked client frame",
    bytes: () => frame({ opcode: 0x1, masked: false, payload: encoder.encode('{"op":"time"}') }),
    watchMs: 2000,
    replies: 1, // Deno answers it (RFC 6455 says close); either is harmless
  },
  {
    name: "control frame over 125 bytes",
    bytes: (rng) => frame({ opcode: 0x9, payload: rng.bytes(200) }),
    watchMs: 1000,
  },
  {
    name: "length of 2^62, then silence",
    bytes: (rng) => frame({ opcode: 0x1, payload: rng.bytes(10), claim: 2n ** 62n }),
    watchMs: 1000,
  },
  {
    name: "2 MiB text frame",
    bytes: () => text(`{"op":"pool","pad":"${"x".repeat(2 << 20)}"}`),
    watchMs: 5000,
    replies: 1,
  },
  {
    name: "flood without reading",
    bytes: () =>
      concat(...Array.from({ length: 1000 }, () => text('{"op":"pool","args":{"limit":1}}'))),
    watchMs: 5000,
  },
];

/** Runs one attack on a fresh connection and reports what the node did. */
export async function runAttack(url: string, attack: Attack, rng: Rng): Promise<RawOutcome> {
  const { conn, leftover } = await openWebSocket(url);
  try {
    await writeAll(conn, attack.bytes(rng));
  } catch {
    // The node may close while we write (it refused a frame): what it sent is still read.
  }
  return await observe(conn, leftover, attack.watchMs, attack.replies ?? Infinity);
}

/**
 * Connections left behind at each stage: TCP opened and silent, half an HTTP request, a
 * WebSocket opened and silent, half a frame. Returns them open; `abandon` closes them all.
 */
export async function openAbandoned(url: string, n: number, rng: Rng): Promise<Deno.Conn[]> {
  const { hostname, port } = new URL(url);
  const conns: Deno.Conn[] = [];
  for (let i = 0; i < n; i++) {
    const stage = rng.int(4);
    if (stage === 0 || stage === 1) {
      const conn = await Deno.connect({ hostname, port: Number(port) });
      if (stage === 1) {
        await writeAll(conn, encoder.encode(`GET /ws HTTP/1.1\r\nHost: ${hostname}\r\nUpg`));
      }
      conns.push(conn);
    } else {
      const { conn } = await openWebSocket(url);
      if (stage === 3) {
        const half = text('{"op":"status"}');
        await writeAll(conn, half.subarray(0, rng.between(1, half.length - 1)));
      }
      conns.push(conn);
    }
  }
  return conns;
}

/** Closes abandoned connections (abruptly: a reset for some). */
export function abandon(conns: Deno.Conn[]): void {
  for (const conn of conns) {
    try {
      conn.close();
    } catch { /* already closed by the node */ }
  }
}
