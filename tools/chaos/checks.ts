/**
 * What every chaos runner does to its members and files: stop a member (a graceful stop must
 * exit 0) and audit one node's KV file (verify, transfers, balances, schema). The single-node
 * runner (run.ts) and the network runner (network.ts) add their own checks around these.
 */
import { openStore, type Store } from "../../lib/store/store.ts";
import type { Tip } from "../../lib/store/schema.ts";
import {
  auditTransfers,
  checkSchema,
  recountBalances,
  type Sent,
  verifyCli,
} from "../shared/audit.ts";
import type { Summary } from "../shared/summary.ts";
import type { Cluster, Member } from "./cluster.ts";

/** Stops a member; a graceful stop must end with exit code 0. Returns its exit status. */
export async function stopMember(
  member: Member,
  signal: Deno.Signal,
  summary: Summary,
  context: string,
): Promise<Deno.CommandStatus> {
  const status = await member.kill(signal);
  if (signal !== "SIGKILL" && status.code !== 0) {
    const tail = member.log().trim().split("\n").slice(-3).join(" | ");
    summary.violate(`${context}: ${member.name} exited ${status.code} after ${signal}: ${tail}`);
  }
  return status;
}

/**
 * Audits one node's file: `verify --indexes` under the cluster's rules, every transfer against
 * `sent` (null: only what is stored), balances against a recount, keys against the schema;
 * `more` reads what else the runner needs while the store is open. Returns the file's tip.
 */
export async function auditNodeFile(
  cluster: Cluster,
  db: string,
  sent: Sent | null,
  summary: Summary,
  context: string,
  more: (store: Store) => Promise<void> = () => Promise.resolve(),
): Promise<Tip & { db: string }> {
  await verifyCli(db, summary, context, cluster.ruleArgs);
  const store = await openStore(db);
  try {
    await auditTransfers(store, sent, summary, context);
    await more(store);
    await recountBalances(store, summary, context);
    await checkSchema(store, summary, context);
    const tip = await store.tip();
    summary.set("height", tip.height);
    return { db, ...tip };
  } finally {
    await store.close();
  }
}
