/**
 * The network simulation (tools/sim) over many seeds: after faults (lost and duplicated
 * requests, partitions, restarts) every node agrees, and nothing acknowledged is lost.
 * FOXCHAIN_SIM_SEEDS sets how many (default 200); `deno task simulate --seeds N` runs more.
 */
import assert from "node:assert/strict";
import { simulate } from "../tools/sim/run.ts";

const SEEDS = Number(Deno.env.get("FOXCHAIN_SIM_SEEDS") ?? 200);

Deno.test(`simulation: ${SEEDS} seeds of faults end on one tip with nothing acknowledged lost`, async () => {
  const failures: string[] = [];
  let acknowledged = 0;
  for (let seed = 1; seed <= SEEDS; seed++) {
    const report = await simulate(seed, { nodes: 3, transactions: 20, faultSeconds: 20 });
    acknowledged += report.acknowledged;
    if (report.violations.length > 0) {
      failures.push(
        `seed ${seed}: ${report.violations.slice(0, 3).join("; ")} ` +
          `(replay: deno task simulate --seed ${seed} --nodes 3 --transactions 20)`,
      );
    }
  }
  assert.deepEqual(failures, []);
  assert.ok(acknowledged > SEEDS * 10, `only ${acknowledged} transactions were acknowledged`);
});

Deno.test("simulation: a calm network converges within a few seconds and loses nothing", async () => {
  const report = await simulate(7, {
    faults: { minDelayMs: 1, maxDelayMs: 5, dropRate: 0, duplicateRate: 0 },
    partitions: false,
    restarts: false,
  });
  assert.deepEqual(report.violations, []);
  assert.ok(report.convergedAfter !== null && report.convergedAfter <= 5);
  assert.equal(report.inChain + report.dropped, report.acknowledged);
});

Deno.test("simulation: a seed replays exactly (same events, requests, faults and chain)", async () => {
  const options = { nodes: 3, transactions: 20, faultSeconds: 20 };
  const first = await simulate(3, options);
  const again = await simulate(3, options);
  assert.deepEqual(again, first);
});
