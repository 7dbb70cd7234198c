import assert from "node:assert/strict";
import { monotonicStamper, monotonicStamps } from "../lib/core/clock.ts";
import { MAX_AGE_SECONDS, MAX_AMOUNT, MAX_FUTURE_SECONDS } from "../lib/core/params.ts";
import { DEFAULT_SPAN_SECONDS } from "../lib/core/rules.ts";
import {
  type AdmitOptions,
  admitTx,
  type Checked,
  type Tx,
  txToWire,
} from "../lib/core/transaction.ts";
import { A, B, GENESIS, T0 } from "./fixtures/helpers.ts";

const NOW = T0 + 1000;
const STAMP = NOW + 0.000001;
const opts: AdmitOptions = { now: NOW, stamp: () => STAMP };

function accepted(input: unknown, o: AdmitOptions = opts): Tx {
  const result = admitTx(input, o);
  assert.ok(
    result.ok,
    `expected ${JSON.stringify(input)} to be accepted: ${!result.ok && result.reason}`,
  );
  return result.value;
}

function refused(input: unknown, pattern: RegExp, o: AdmitOptions = opts): string {
  const result: Checked<Tx> = admitTx(input, o);
  assert.equal(result.ok, false, `expected ${String(JSON.stringify(input))} to be refused`);
  if (result.ok) throw new Error("unreachable");
  assert.match(result.reason, pattern);
  return result.reason;
}

Deno.test("admitTx: accepts the lab's merge items (labs 2-4 without t, lab 5 with t and prev_hash)", () => {
  const lab4 = accepted({ sender: GENESIS, receiver: A, amount: 10 });
  assert.deepEqual(lab4, { sender: GENESIS, receiver: A, amount: 10, t: STAMP });
  const lab5 = accepted({ sender: A, receiver: B, amount: 3, t: NOW - 5.25, prev_hash: null });
  // prev_hash is not part of a pooled transaction.
  assert.deepEqual(lab5, { sender: A, receiver: B, amount: 3, t: NOW - 5.25 });
  assert.deepEqual(txToWire(lab5), { ...lab5, prev_hash: null });
});

Deno.test("admitTx: lowercases UUIDs", () => {
  const tx = accepted({
    sender: A.toUpperCase(),
    receiver: "BbBbBbBb-bbbb-4BBB-8bbb-bbbbbbbbbbbb",
    amount: 1,
  });
  assert.equal(tx.sender, A);
  assert.equal(tx.receiver, B);
});

Deno.test("admitTx: stamps a missing or null t, keeps a given t unchanged", () => {
  let stamps = 0;
  const counting: AdmitOptions = { now: NOW, stamp: () => ++stamps + NOW };
  assert.equal(accepted({ sender: A, receiver: B, amount: 1 }, counting).t, NOW + 1);
  assert.equal(accepted({ sender: A, receiver: B, amount: 1, t: null }, counting).t, NOW + 2);
  const given = NOW - 12.345678;
  assert.equal(accepted({ sender: A, receiver: B, amount: 1, t: given }, counting).t, given);
  assert.equal(stamps, 2, "a given t must not be re-stamped");
});

Deno.test("admitTx: refuses what is not a JSON object", () => {
  for (
    const input of [null, undefined, 5, "tx", true, [], [{ sender: A, receiver: B, amount: 1 }]]
  ) {
    refused(input, /must be a JSON object/);
  }
});

Deno.test("admitTx: refuses missing or malformed addresses, naming the field", () => {
  refused({ receiver: B, amount: 1 }, /"sender" must be a UUID string/);
  refused({ sender: A, amount: 1 }, /"receiver" must be a UUID string/);
  refused({ sender: 42, receiver: B, amount: 1 }, /"sender" must be a UUID string/);
  refused({ sender: "alice", receiver: B, amount: 1 }, /"sender" is not a UUID: "alice"/);
  refused({ sender: A, receiver: `${B}0`, amount: 1 }, /"receiver" is not a UUID/);
  refused({ sender: A, receiver: `{${B}}`, amount: 1 }, /"receiver" is not a UUID/);
  refused({ sender: A, receiver: B.replaceAll("-", ""), amount: 1 }, /"receiver" is not a UUID/);
  // Long junk is clipped in the reason.
  const reason = refused({ sender: "x".repeat(10_000), receiver: B, amount: 1 }, /not a UUID/);
  assert.ok(reason.length < 200, reason);
});

Deno.test("admitTx: refuses a transfer to oneself, whatever the case", () => {
  refused({ sender: A, receiver: A, amount: 1 }, /sender and receiver are the same/);
  refused({ sender: A, receiver: A.toUpperCase(), amount: 1 }, /sender and receiver are the same/);
  refused({ sender: GENESIS, receiver: GENESIS, amount: 1 }, /same address/);
});

Deno.test("admitTx: refuses amounts that are not whole numbers from 1 to MAX_AMOUNT", () => {
  const bad: unknown[] = [
    0,
    -0,
    -1,
    1.5,
    0.1,
    "5",
    "1e3",
    null,
    undefined,
    true,
    [5],
    { n: 5 },
    NaN,
    Infinity,
    MAX_AMOUNT + 1,
    Number.MAX_SAFE_INTEGER,
    2 ** 64,
  ];
  for (const amount of bad) {
    refused(
      { sender: A, receiver: B, amount },
      /^"amount" must be a whole number from 1 to 1000000000000, got /,
    );
  }
  assert.equal(accepted({ sender: A, receiver: B, amount: 1 }).amount, 1);
  // One mint can no longer take the whole supply cap (anyone may mint: there are no signatures).
  assert.equal(accepted({ sender: GENESIS, receiver: B, amount: MAX_AMOUNT }).amount, MAX_AMOUNT);
});

Deno.test("admitTx: refuses a t that is not a finite number", () => {
  for (const t of [NaN, Infinity, -Infinity, "1704067200", true, [NOW], { t: NOW }]) {
    refused({ sender: A, receiver: B, amount: 1, t }, /"t" must be a number of POSIX seconds/);
  }
});

Deno.test("admitTx: t at most MAX_FUTURE_SECONDS ahead and MAX_AGE_SECONDS old", () => {
  assert.equal(MAX_FUTURE_SECONDS, 10);
  assert.equal(MAX_AGE_SECONDS, 90);
  // The whole window is shorter than the default span: a made-up t cannot satisfy it alone.
  assert.ok(MAX_FUTURE_SECONDS + MAX_AGE_SECONDS < DEFAULT_SPAN_SECONDS);
  const item = (t: number) => ({ sender: A, receiver: B, amount: 1, t });
  accepted(item(NOW + MAX_FUTURE_SECONDS));
  accepted(item(NOW - MAX_AGE_SECONDS));
  refused(item(NOW + MAX_FUTURE_SECONDS + 0.001), /"t" is 10\.001 s in the future \(max 10 s\)/);
  refused(item(NOW + 86400), /in the future/);
  refused(item(NOW - MAX_AGE_SECONDS - 0.001), /"t" is 90\.001 s old \(max 90 s\)/);
  refused(item(0), /old/);
  // The window is configurable per call.
  const narrow = { ...opts, maxFutureSeconds: 1, maxAgeSeconds: 2 };
  accepted(item(NOW + 1), narrow);
  refused(item(NOW + 1.5), /in the future \(max 1 s\)/, narrow);
  refused(item(NOW - 2.5), /old \(max 2 s\)/, narrow);
});

Deno.test("admitTx: a stamped or given t must still lie within the consensus bounds", () => {
  // A node whose clock is wildly wrong cannot put a t before 2009 into the pool.
  const early = { now: 1e9, stamp: () => 1e9 };
  refused({ sender: A, receiver: B, amount: 1 }, /t must be POSIX seconds between/, early);
  refused({ sender: A, receiver: B, amount: 1, t: 1e9 }, /t must be POSIX seconds between/, early);
});

Deno.test("monotonicStamper: microsecond POSIX seconds from the clock", () => {
  let ms = T0 * 1000 + 123.456;
  const stamp = monotonicStamper({ now: () => ms });
  assert.equal(stamp(), T0 + 0.123456);
  ms += 1000;
  assert.equal(stamp(), T0 + 1.123456);
});

Deno.test("monotonicStamper: never repeats within one millisecond, stays increasing", () => {
  let ms = T0 * 1000;
  const stamp = monotonicStamper({ now: () => ms });
  const seen: number[] = [];
  for (let i = 0; i < 5000; i++) seen.push(stamp());
  assert.equal(new Set(seen).size, seen.length);
  for (let i = 1; i < seen.length; i++) assert.ok(seen[i] > seen[i - 1], `stamp ${i}`);
  // 5000 stamps in one millisecond run ahead of the clock; the next millisecond keeps order.
  ms += 1;
  const next = stamp();
  assert.ok(next > seen[seen.length - 1]);
  // A clock stepping backwards never produces an earlier or repeated stamp either.
  ms -= 10_000;
  assert.ok(stamp() > next);
  // Identical transfers stamped back to back get different ids' worth of t.
  const admit: AdmitOptions = { now: ms / 1000, stamp };
  const one = accepted({ sender: A, receiver: B, amount: 1 }, admit);
  const two = accepted({ sender: A, receiver: B, amount: 1 }, admit);
  assert.notEqual(one.t, two.t);
});

Deno.test("monotonicStamps: a reserved range is never stamped again", () => {
  const ms = T0 * 1000;
  const stamps = monotonicStamps({ now: () => ms });
  const before = stamps.next();
  const first = stamps.reserve(100);
  assert.equal(first, Math.round(before * 1e6) + 1);
  const after = stamps.next();
  assert.equal(Math.round(after * 1e6), first + 100);
  // The range's stamps are exact: (first + i) / 1e6 gives back first + i microseconds.
  for (const i of [0, 1, 99]) assert.equal(Math.round(((first + i) / 1e6) * 1e6), first + i);
});
