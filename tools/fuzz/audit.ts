/**
 * The end of every fuzz run: the node must stop cleanly on SIGTERM with no error in its log,
 * and its database must pass every audit. Shared by the protocol and the peer-link fuzzers.
 */
import type { Store } from "../../lib/store/store.ts";
import { openStore } from "../../lib/store/store.ts";
import { auditTransfers, checkSchema, recountBalances, verifyCli } from "../shared/audit.ts";
import type { MainProcess } from "../shared/main_process.ts";
import type { Summary } from "../shared/summary.ts";

/**
 * Stops `node` (SIGTERM, exit 0 expected), checks its log for errors, then audits `db`
 * (verify, transfers, balances, schema); `more` reads what else the run reports.
 */
export async function auditFuzzedNode(
  node: MainProcess,
  db: string,
  summary: Summary,
  label: string,
  more: (store: Store) => Promise<void> = () => Promise.resolve(),
): Promise<void> {
  const stopped = await node.stop("SIGTERM");
  if (stopped.code !== 0) summary.violate(`SIGTERM after the run: exit code ${stopped.code}`);
  for (const line of node.stderr.split("\n")) {
    if (/ERROR|Uncaught|panicked/.test(line)) {
      summary.violate(`node logged: ${line.slice(0, 200)}`);
    }
  }
  await verifyCli(db, summary, label);
  const store = await openStore(db);
  try {
    await auditTransfers(store, null, summary, label);
    await recountBalances(store, summary, label);
    await checkSchema(store, summary, label);
    await more(store);
  } finally {
    await store.close();
  }
}

/** Kills what is left of `node` and removes the run's directory. */
export async function cleanUpFuzzedNode(node: MainProcess, dir: string): Promise<void> {
  try {
    node.child.kill("SIGKILL");
  } catch { /* stopped */ }
  await node.finished();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
