/**
 * Merge logging: a merge after a quiet spell is logged at once, in the lab's words; under
 * load one line a second sums up the merges since the line before, so nothing merged goes
 * unreported and the log does not cost a line per request.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { formatRecord } from "../lib/log.ts";
import { MERGE_LOG_MS, Protocol } from "../lib/protocol.ts";
import { openStore } from "../lib/store.ts";
import { A, B, GENESIS, T0 } from "./fixtures/helpers.ts";

/** Runs `body` with a protocol on a fake clock, collecting foxchain's log lines at `level`. */
async function withLog(
  level: "info" | "debug",
  body: (p: Protocol, clock: { ms: number }, lines: string[]) => Promise<void>,
) {
  const lines: string[] = [];
  await configure({
    reset: true,
    sinks: { mem: (r: LogRecord) => lines.push(formatRecord(r).replace(/^\[[^\]]+\] /, "")) },
    loggers: [
      { category: ["logtape", "meta"], lowestLevel: "error", sinks: [] },
      { category: ["foxchain"], lowestLevel: level, sinks: ["mem"] },
    ],
  });
  const store = await openStore(":memory:");
  const clock = { ms: T0 * 1000 };
  try {
    await body(new Protocol(store, { clock: { now: () => clock.ms } }), clock, lines);
  } finally {
    await store.close();
    await reset();
  }
}

let serial = 0;
/** A merge of `n` new mints, one invalid item if `bad`. */
function merge(p: Protocol, clock: { ms: number }, n: number, bad = false) {
  const pool: unknown[] = Array.from({ length: n }, () => ({
    sender: GENESIS,
    receiver: A,
    amount: 1,
    t: clock.ms / 1000 - 1 + serial++ / 1e6,
  }));
  if (bad) pool.push({ sender: A, receiver: A, amount: 1 });
  return p.handle(JSON.stringify({ op: "merge", args: { pool } }));
}

Deno.test("a lone merge is logged at once, as before", async () => {
  await withLog("info", async (p, clock, lines) => {
    assert.equal((await merge(p, clock, 2)).status, 202);
    assert.deepEqual(lines, ["Merged 2 new transactions (0 already known, 0 rejected)."]);
    clock.ms += MERGE_LOG_MS;
    await merge(p, clock, 1, true);
    assert.deepEqual(lines.slice(1), ["Merged 1 new transactions (0 already known, 1 rejected)."]);
  });
});

Deno.test("merges within a second are summed into the next line", async () => {
  await withLog("info", async (p, clock, lines) => {
    await merge(p, clock, 1);
    for (let i = 0; i < 9; i++) {
      clock.ms += 100;
      await merge(p, clock, 3, i === 4);
    }
    assert.equal(lines.length, 1); // 900 ms after the first line: all summed, none written
    clock.ms += 100;
    const resend = JSON.stringify({
      op: "merge",
      args: { pool: [{ sender: GENESIS, receiver: B, amount: 1, t: T0 - 1 }] },
    });
    await p.handle(resend);
    assert.deepEqual(lines.slice(1), [
      "Merged 28 new transactions in 10 requests over 0.9 s (0 already known, 1 rejected).",
    ]);
    // The same transaction again is counted as known.
    clock.ms += MERGE_LOG_MS;
    await p.handle(resend);
    assert.deepEqual(lines.slice(2), ["Merged 0 new transactions (1 already known, 0 rejected)."]);
  });
});

Deno.test("with --debug every merge still has its own line", async () => {
  await withLog("debug", async (p, clock, lines) => {
    await merge(p, clock, 1);
    clock.ms += 10;
    await merge(p, clock, 2);
    clock.ms += 10;
    await merge(p, clock, 3);
    assert.deepEqual(lines, [
      "Merged 1 new transactions (0 already known, 0 rejected).",
      "Merged 2 new transactions (0 already known, 0 rejected).",
      "Merged 3 new transactions (0 already known, 0 rejected).",
    ]);
  });
});
