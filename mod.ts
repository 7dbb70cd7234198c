/**
 * foxchain: a small, correct and fast distributed ledger toolkit on Deno.
 *
 * ```ts
 * import { Builder, GENESIS, openStore } from "./mod.ts";
 * const store = await openStore(":memory:");
 * const receiver = "bc70b89d-4521-454c-bebc-6c2456074bf2";
 * await store.addToPool([{ sender: GENESIS, receiver, amount: 10, t: Date.now() / 1000 }]);
 * await new Builder(store, { rules: [{ kind: "count", size: 1 }] }).pass();
 * ```
 *
 * @module
 */
export {
  DEFAULT_MAX_BLOCK,
  GENESIS,
  MAX_AGE_SECONDS,
  MAX_AMOUNT,
  MAX_BLOCK_ITEMS,
  MAX_FUTURE_SECONDS,
  MAX_SUPPLY,
} from "./lib/params.ts";
export { canonicalJson, hashJson, type Json, sha256Hex } from "./lib/hash.ts";
export {
  type AdmitOptions,
  admitTx,
  type Checked,
  checkTxFields,
  idOf,
  isAddress,
  type Item,
  itemHash,
  type Tx,
  TX_ID,
  txHash,
  txId,
  txToWire,
} from "./lib/transaction.ts";
export {
  type Block,
  blockHash,
  chainItems,
  checkBlockShape,
  itemTx,
  makeBlock,
} from "./lib/block.ts";
export { RunningBalances } from "./lib/balances.ts";
export {
  checkRule,
  DEFAULT_AGE_SECONDS,
  DEFAULT_RULES,
  DEFAULT_SPAN_SECONDS,
  describeRules,
  type PoolStats,
  type Rule,
  shouldCut,
} from "./lib/rules.ts";
export { type Clock, monotonicStamper, systemClock } from "./lib/clock.ts";
export { parseDuration } from "./lib/duration.ts";
export {
  type AddOutcome,
  type AppendBlocksResult,
  type AppendResult,
  type BuilderInfo,
  type Dropped,
  openStore,
  Store,
  StoreError,
  type Tip,
  type TxRecord,
} from "./lib/store.ts";
export { Builder, type BuilderOptions, type PassResult } from "./lib/builder.ts";
export { LIMITS, Protocol, type ProtocolOptions, type Reply } from "./lib/protocol.ts";
export {
  DEFAULT_LIMITS,
  type RunningServer,
  type ServerLimits,
  type ServerOptions,
  startServer,
} from "./lib/server.ts";
export { DEFAULT_NODE, NodeClient, NodeUnreachable } from "./lib/client.ts";
export { type Verdict, verifyBlocks, verifyStore } from "./lib/verify.ts";
export { commitWithRetry, isLockedError, type RetryPolicy } from "./lib/kv_retry.ts";
export { setupLogging } from "./lib/log.ts";
