/**
 * A short, seeded chaos run (tools/chaos): node processes killed with SIGKILL and stopped with
 * a signal under load, restarted, the ledger audited after each round. `deno task chaos` runs
 * the long one; docs/reliability.md has its numbers.
 */
import assert from "node:assert/strict";
import { runChaos } from "../tools/chaos/run.ts";
import { runNetworkChaos } from "../tools/chaos/network.ts";

Deno.test("chaos, 3 rounds (each node shape): every acknowledged transfer stored once, ledger valid after kills", async () => {
  const lines: string[] = [];
  const summary = await runChaos({
    rounds: 3,
    seed: 3,
    clients: 4,
    roundMs: 300,
    modes: ["serve+build", "start", "serve+2build"],
    progress: (line) => lines.push(line),
  });
  console.log(lines.join("\n"));
  assert.ok(summary.ok, summary.render());
  // The seed makes both kinds of kill: the run tested what it claims to.
  assert.ok(summary.get("SIGKILL sent") > 0, summary.render());
  assert.ok(summary.get("SIGINT sent") + summary.get("SIGTERM sent") > 0, summary.render());
  assert.ok(summary.get("transfers acknowledged") > 0);
  assert.equal(summary.get("audits"), 4);
});

Deno.test("chaos on a network of 3, 2 rounds: one tip after restarts, every acknowledged transfer chained once on every node", async () => {
  const lines: string[] = [];
  const summary = await runNetworkChaos({
    nodes: 3,
    rounds: 2,
    seed: 2,
    clients: 3,
    roundMs: 400,
    jitterSeconds: 0.1,
    progress: (line) => lines.push(line),
  });
  console.log(lines.filter((l) => !l.startsWith("calm:")).join("\n"));
  assert.ok(summary.ok, `${summary.render()}\n${lines.join("\n")}`);
  assert.ok(summary.get("restarts") >= 2, summary.render());
  assert.ok(summary.get("transfers acknowledged") > 0, summary.render());
  assert.equal(summary.get("audits"), 1);
});
