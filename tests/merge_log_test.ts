/**
 * Merge logging: merges at a person's pace each get their line at once, in the lab's words;
 * under load, past MERGE_LOG_BURST lines a second, merges are summed into the next line, so
 * nothing merged goes unreported and the log does not cost a line per request.
 */
import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { formatRecord } from "../lib/node/log.ts";
import { MERGE_LOG_BURST, MERGE_LOG_MS, Protocol } from "../lib/node/protocol.ts";
import { openStore } from "../lib/store/store.ts";
import { A, B, GENESIS, LOOSE_RULES, T0 } from "./fixtures/helpers.ts";

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
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
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
    assert.deepEqual(lines.slice(1), ["Merged 1 new transaction (0 already known, 1 rejected)."]);
  });
});

Deno.test("up to MERGE_LOG_BURST merges a second get their own lines; the rest are summed", async () => {
  await withLog("info", async (p, clock, lines) => {
    // 15 merges within 0.7 s: the first MERGE_LOG_BURST are logged as they come.
    for (let i = 0; i < 15; i++) {
      await merge(p, clock, 3, i === 12);
      clock.ms += 50;
    }
    assert.equal(MERGE_LOG_BURST, 10);
    assert.deepEqual(
      lines,
      Array(10).fill("Merged 3 new transactions (0 already known, 0 rejected)."),
    );
    // The next merge in a later second first reports the five that had no line.
    clock.ms = T0 * 1000 + MERGE_LOG_MS;
    const resend = JSON.stringify({
      op: "merge",
      args: { pool: [{ sender: GENESIS, receiver: B, amount: 1, t: T0 - 1 }] },
    });
    await p.handle(resend);
    assert.deepEqual(lines.slice(10), [
      "Merged 15 new transactions in 5 more requests over 0.5 s (0 already known, 1 rejected).",
      "Merged 1 new transaction (0 already known, 0 rejected).",
    ]);
    // The same transaction again is counted as known.
    await p.handle(resend);
    assert.deepEqual(lines.slice(12), ["Merged 0 new transactions (1 already known, 0 rejected)."]);
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
      "Merged 1 new transaction (0 already known, 0 rejected).",
      "Merged 2 new transactions (0 already known, 0 rejected).",
      "Merged 3 new transactions (0 already known, 0 rejected).",
    ]);
  });
});
