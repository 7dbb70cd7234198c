/**
 * Hostile protocol messages, drawn from a seeded generator: text that is not JSON, random JSON,
 * deep nesting, huge and odd numbers, every field of every op with a wrong type, unicode
 * look-alike addresses, prototype keys, lone surrogates and NULs, reused request ids, and some
 * valid requests among them (so that valid data is stored too, and must stay valid).
 */
import { GENESIS } from "../../lib/core/params.ts";
import type { Rng } from "../shared/rng.ts";

/** One message to send: its text and the family it comes from (for the summary). */
export interface Message {
  family: string;
  text: string;
}

/** A valid-looking address (lowercase UUID). */
function address(rng: Rng): string {
  return rng.chance(0.2) ? GENESIS : rng.uuid();
}

/** A valid transfer without `t`. */
function transfer(rng: Rng): Record<string, unknown> {
  return { sender: GENESIS, receiver: rng.uuid(), amount: rng.between(1, 1000) };
}

/** A well-formed request of every op, to be mutated. */
function template(rng: Rng): Record<string, unknown> {
  const now = Date.now() / 1000;
  const ops: (() => Record<string, unknown>)[] = [
    () => ({ op: "pool", args: { limit: rng.between(1, 50) } }),
    () => ({ op: "merge", args: { pool: [transfer(rng), transfer(rng)] } }),
    () => ({
      op: "merge",
      args: { pool: [{ ...transfer(rng), t: now - rng.next() * 5 }], verbose: true },
    }),
    () => ({ op: "merge", args: { pool: [transfer(rng)], request_id: rng.uuid() } }),
    () => ({
      op: "merge",
      args: {
        blocks: [{
          items: [{ ...transfer(rng), t: now, prev_hash: null }],
          prev_hash: null,
          height: 0,
          hash: "ab".repeat(32),
        }],
      },
    }),
    () => ({ op: "blocks", args: { start: rng.between(-5, 5), limit: rng.between(1, 20) } }),
    () => ({ op: "register", args: { addr: [`ws://127.0.0.1:${rng.between(1, 65535)}/ws`] } }),
    () => ({ op: "peers" }),
    () => ({ op: "time" }),
    () => ({ op: "balance", args: { address: address(rng) } }),
    () => ({ op: "tx", args: { id: `${"1".repeat(16)}-${"ab".repeat(32)}` } }),
    () => ({ op: "status" }),
  ];
  return rng.pick(ops)();
}

/** A random JSON value, at most `depth` deep. */
function randomValue(rng: Rng, depth: number): unknown {
  const kind = rng.int(depth > 0 ? 9 : 7);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -0, 1, -1, 1.5, 2 ** 53 + 2, -(2 ** 63), 1e21, 1e308, 5e-324]);
    case 3:
      return rng.between(-1e6, 1e6);
    case 4:
      return randomString(rng);
    case 5:
      return rng.pick(["", " ", "null", "0", "-1", "1e400", "NaN", "Infinity", "true"]);
    case 6:
      return rng.uuid().toUpperCase();
    case 7:
      return Array.from({ length: rng.int(4) }, () => randomValue(rng, depth - 1));
    default: {
      const obj: Record<string, unknown> = {};
      for (let i = rng.int(4); i > 0; i--) obj[randomKey(rng)] = randomValue(rng, depth - 1);
      return obj;
    }
  }
}

const KEYS = [
  "op",
  "args",
  "pool",
  "blocks",
  "items",
  "sender",
  "receiver",
  "amount",
  "t",
  "prev_hash",
  "hash",
  "height",
  "start",
  "limit",
  "cursor",
  "addr",
  "address",
  "id",
  "verbose",
  "request_id",
  "__proto__",
  "constructor",
  "prototype",
  "toString",
];

function randomKey(rng: Rng): string {
  return rng.chance(0.8) ? rng.pick(KEYS) : randomString(rng);
}

/** Short strings of awkward characters: unicode, controls, lone surrogates, NUL, quotes. */
function randomString(rng: Rng): string {
  const alphabet = [
    "a",
    "0",
    "-",
    " ",
    "\u0000",
    "\n",
    '"',
    "\\",
    "é",
    "\u200b",
    "\ufeff",
    "\ud800",
    "\udfff",
    "😀",
    "ａ",
    "а",
    "/",
    ":",
  ];
  return Array.from({ length: rng.int(12) }, () => rng.pick(alphabet)).join("");
}

/** Look-alikes of a valid address: each must be refused (or, uppercase, lowercased). */
function lookalike(rng: Rng): string {
  const real = rng.uuid();
  const i = rng.int(real.length);
  const swaps = [
    (s: string) => s.replace(/a/, "а"), // Cyrillic a
    (s: string) => s.replace(/0/, "０"), // fullwidth zero
    (s: string) => s.slice(0, i) + "\u200b" + s.slice(i), // zero-width space
    (s: string) => s.slice(0, i) + "\u0301" + s.slice(i), // combining accent
    (s: string) => ` ${s}`,
    (s: string) => `${s}\u00a0`,
    (s: string) => s.toUpperCase(),
    (s: string) => s.replace(/-/g, "‐"), // unicode hyphen
    (s: string) => s.replace(/-/g, ""),
    (s: string) => `{${s}}`,
    (s: string) => s.slice(0, -1),
    (s: string) => `${s}0`,
    (s: string) => s.replace(/[0-9a-f]/, "g"),
    (s: string) => s + "\u0000",
  ];
  return rng.pick(swaps)(real);
}

/** Replaces one field somewhere in `value` by a value of another type. */
function mutate(rng: Rng, value: unknown, depth = 0): unknown {
  if (depth > 0 && rng.chance(0.3)) return randomValue(rng, 2);
  if (Array.isArray(value)) {
    if (value.length === 0 || rng.chance(0.2)) return randomValue(rng, 2);
    const copy = [...value];
    const i = rng.int(copy.length);
    copy[i] = mutate(rng, copy[i], depth + 1);
    return copy;
  }
  if (typeof value === "object" && value !== null) {
    const copy: Record<string, unknown> = { ...value };
    const keys = Object.keys(copy);
    if (keys.length === 0 || rng.chance(0.15)) {
      copy[randomKey(rng)] = randomValue(rng, 2);
    } else {
      const k = rng.pick(keys);
      if (rng.chance(0.1)) delete copy[k];
      else copy[k] = mutate(rng, copy[k], depth + 1);
    }
    return copy;
  }
  return randomValue(rng, 2);
}

/** Nesting `depth` deep: arrays, objects, or inside a merge item. */
function deep(rng: Rng, depth: number): string {
  const kind = rng.int(3);
  if (kind === 0) return "[".repeat(depth) + "]".repeat(depth);
  if (kind === 1) return '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
  const inner = "[".repeat(depth) + "]".repeat(depth);
  return `{"op":"merge","args":{"pool":[${inner}],"request_id":"deep"}}`;
}

/** Every family with its weight. `oversize` is rare: each costs a megabyte. */
const FAMILIES: [string, number, (rng: Rng) => string][] = [
  ["not JSON", 6, (rng) => randomString(rng) + rng.pick(["{", "[", "}", "", '"'])],
  ["random JSON", 10, (rng) => JSON.stringify(randomValue(rng, 4))],
  ["wrong types", 30, (rng) => JSON.stringify(mutate(rng, template(rng)))],
  ["valid", 12, (rng) => JSON.stringify(template(rng))],
  ["deep nesting", 3, (rng) => deep(rng, rng.pick([100, 10_000, 100_000]))],
  [
    "huge numbers",
    6,
    (rng) => {
      const n = rng.pick([
        "1e400",
        "-1e400",
        "1e308",
        "-0",
        "0.1",
        "123456789012345678901234567890",
      ]);
      const field = rng.pick(["amount", "t", "limit", "start"]);
      if (field === "limit" || field === "start") return `{"op":"blocks","args":{"${field}":${n}}}`;
      const item = JSON.stringify(transfer(rng)).slice(0, -1) + `,"${field}":${n}}`;
      return `{"op":"merge","args":{"pool":[${item}]}}`;
    },
  ],
  [
    "look-alike addresses",
    10,
    (rng) => {
      const who = lookalike(rng);
      if (rng.chance(0.3)) return JSON.stringify({ op: "balance", args: { address: who } });
      const item = rng.chance(0.5)
        ? { sender: GENESIS, receiver: who, amount: 5 }
        : { sender: who, receiver: rng.uuid(), amount: 5 };
      return JSON.stringify({ op: "merge", args: { pool: [item] } });
    },
  ],
  [
    "prototype keys",
    8,
    (rng) =>
      rng.pick([
        '{"op":"__proto__"}',
        '{"op":"constructor","args":{}}',
        '{"op":"toString"}',
        '{"op":"hasOwnProperty","args":{"pool":[]}}',
        '{"__proto__":{"op":"status"}}',
        '{"op":"merge","args":{"__proto__":{"pool":[]}}}',
        '{"op":"merge","args":{"pool":{"__proto__":[]}}}',
        `{"op":"merge","args":{"pool":[{"__proto__":{"amount":5},"sender":"${GENESIS}","receiver":"${rng.uuid()}"}]}}`,
        '{"op":"balance","args":{"address":"__proto__"}}',
        '{"op":"merge","args":{"pool":[],"request_id":"__proto__"}}',
        '{"op":"pool","args":{"cursor":"__proto__"}}',
        '{"op":"register","args":{"addr":"ws://__proto__/"}}',
      ]),
  ],
  [
    "reused request id",
    5,
    (rng) =>
      JSON.stringify({
        op: "merge",
        args: { pool: [transfer(rng)], request_id: `fuzz-${rng.int(8)}`, verbose: true },
      }),
  ],
  [
    "odd peers",
    4,
    (rng) =>
      JSON.stringify({
        op: "register",
        args: {
          addr: rng.pick([
            "ws://" + "a".repeat(600),
            "wss://[::1]:1/ws",
            "ws://user:pass@host/ws",
            "ws://höst.example/ws",
            "ws://\u0000/",
            "ws://%00/",
            "http://example.com/",
            "javascript:alert(1)",
            "ws://127.0.0.1:99999/",
            randomString(rng),
          ]),
        },
      }),
  ],
  ["oversize", 1, (rng) => `{"op":"pool","pad":"${"x".repeat((1 << 20) + rng.int(1000))}"}`],
  [
    "limits and edges",
    6,
    (rng) =>
      rng.pick([
        () => JSON.stringify({ op: "pool", args: { cursor: randomString(rng) } }),
        () =>
          JSON.stringify({
            op: "pool",
            args: { cursor: btoa(String.fromCharCode(...rng.bytes(rng.between(0, 40)))) },
          }),
        () =>
          JSON.stringify({
            op: "register",
            args: { addr: Array.from({ length: 1001 }, (_, i) => `ws://h${i}/`) },
          }),
        () => `{"op":"merge","args":{"pool":[${Array(10_001).fill("{}").join(",")}]}}`,
        () => `{"op":"merge","args":{"blocks":[${Array(101).fill("{}").join(",")}]}}`,
        () => JSON.stringify({ op: "merge", args: { pool: [], blocks: [] } }),
        () => JSON.stringify({ op: "merge", args: { pool: [], request_id: rng.uuid() } }),
        () => JSON.stringify({ op: "merge", args: { blocks: [{ items: [], prev_hash: null }] } }),
        () =>
          JSON.stringify({
            op: "merge",
            args: {
              blocks: [{
                items: Array.from(
                  { length: 241 },
                  () => ({ ...transfer(rng), t: Date.now() / 1000, prev_hash: null }),
                ),
                prev_hash: null,
              }],
            },
          }),
        () =>
          JSON.stringify({
            op: "blocks",
            args: { start: rng.pick(["-0", " 3 ", "1e3", "0x10", ""]), limit: "5" },
          }),
        () => JSON.stringify({ op: "tx", args: { id: `${"9".repeat(16)}-${"AB".repeat(32)}` } }),
        () => JSON.stringify({ op: "time", args: [1, 2] }),
      ])(),
  ],
];

const TOTAL = FAMILIES.reduce((n, [, w]) => n + w, 0);

/** The next hostile message. */
export function nextMessage(rng: Rng): Message {
  let pick = rng.int(TOTAL);
  for (const [family, weight, make] of FAMILIES) {
    if (pick < weight) return { family, text: make(rng) };
    pick -= weight;
  }
  throw new Error("unreachable");
}
