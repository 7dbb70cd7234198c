/**
 * foxchain: a small, correct and fast distributed ledger toolkit on Deno.
 *
 * ```ts
 * import { Builder, GENESIS, openStore } from "./mod.ts";
 * // A network whose blocks are cut as soon as the pool holds one transaction.
 * const store = await openStore(":memory:", {
 *   rules: { rules: [{ kind: "count", size: 1 }], acceptBareBlocks: false },
 * });
 * const receiver = "bc70b89d-4521-454c-bebc-6c2456074bf2";
 * await store.addToPool([{ sender: GENESIS, receiver, amount: 10, t: Date.now() / 1000 }]);
 * await new Builder(store).pass();
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
} from "./lib/core/params.ts";
export { canonicalJson, hashJson, type Json, sha256Hex } from "./lib/core/hash.ts";
export {
  type AdmitOptions,
  admitTx,
  type Checked,
  checkTxFields,
  idOf,
  isAddress,
  type Item,
  itemHash,
  signTx,
  type Tx,
  TX_ID,
  txCanonical,
  txHash,
  txId,
  txToWire,
  withSignature,
} from "./lib/core/transaction.ts";
export {
  type Block,
  blockHash,
  chainItems,
  checkBlockShape,
  checkProofShape,
  itemTx,
  makeBlock,
  type Proof,
  type WireBlock,
} from "./lib/core/block.ts";
export { RunningBalances } from "./lib/core/balances.ts";
export {
  checkRule,
  DEFAULT_AGE_SECONDS,
  DEFAULT_RULES,
  DEFAULT_SPAN_SECONDS,
  describeRules,
  type PoolStats,
  type Rule,
  shouldCut,
} from "./lib/core/rules.ts";
export { type Clock, monotonicStamper, systemClock } from "./lib/core/clock.ts";
export { parseDuration } from "./lib/core/duration.ts";
export {
  type AcceptResult,
  type AddOutcome,
  type AppendBlocksResult,
  type AppendResult,
  type BuilderInfo,
  type Dropped,
  type MergeRequest,
  type MergeRequestEntry,
  openStore,
  Store,
  type StoredTip,
  StoreError,
  type StoreOptions,
  type Tip,
  type TxRecord,
} from "./lib/store/store.ts";
export { Builder, type BuilderOptions, PASS_KEEP, type PassResult } from "./lib/node/builder.ts";
export {
  LIMITS,
  type NetworkHooks,
  newSession,
  PEER_FAULT_LIMIT,
  Protocol,
  type ProtocolOptions,
  type Reply,
  REQUEST_ID,
  type Session,
  type TakenBlock,
} from "./lib/node/protocol.ts";
export {
  type LinkInfo,
  Network,
  NETWORK_DEFAULTS,
  type NetworkOptions,
  type NetworkTimings,
  normalUrl,
} from "./lib/net/network.ts";
export { DEFAULT_NETWORK, type Hello, helloMismatch, parseHello } from "./lib/net/hello.ts";
export { BoundedSet } from "./lib/net/seen.ts";
export {
  Feed,
  FEED_INTERVAL_MS,
  FEED_MAX_SUBSCRIBERS,
  type FeedEvent,
  type FeedOptions,
  type FeedSources,
  isEvent,
  type Subscriber,
} from "./lib/node/feed.ts";
export {
  DEFAULT_LIMITS,
  DEFAULT_STOP_TIMEOUT_MS,
  type RunningServer,
  type ServerLimits,
  type ServerOptions,
  type ShutdownReport,
  startServer,
} from "./lib/node/server.ts";
export {
  checkNodeUrl,
  DEFAULT_NODE,
  NodeClient,
  type NodeClientOptions,
  NodeUnreachable,
} from "./lib/net/client.ts";
export {
  BadReply,
  DeadlineExceeded,
  type Dialer,
  type DialOptions,
  type Link,
  LinkBusy,
  LinkClosed,
  type RequestOptions,
} from "./lib/net/link.ts";
export { PEER_DEFAULTS, type PeerTimings } from "./lib/net/peer_connection.ts";
export {
  realScheduler,
  type Scheduler,
  seededRandom,
  type TimerHandle,
} from "./lib/core/scheduler.ts";
export { verifyStore } from "./lib/store/audit.ts";
export { type ChainWalk, type Verdict, verifyBlocks, walkChain } from "./lib/consensus/verify.ts";
export {
  type BlockEffects,
  checkBlockHeader,
  genesisParent,
  type HeaderFault,
  type ParentState,
  validateBlock,
  type Validation,
} from "./lib/consensus/validate.ts";
export { best, better, type ChainEnd } from "./lib/consensus/fork_choice.ts";
export { checkProof, isFromTheFuture, proofFor } from "./lib/consensus/proof.ts";
export {
  type ChainRules,
  DEFAULT_CHAIN_RULES,
  describeChainRules,
  describeSignaturePolicy,
  NO_SIGNATURES,
  type SignaturePolicy,
  signaturePolicy,
} from "./lib/consensus/rules.ts";
export { admitUnder, checkBlockSignatures, checkSignature } from "./lib/consensus/signatures.ts";
export {
  addressOfKey,
  addressOfPubkey,
  checkSignatureEncoding,
  newWallet,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  signText,
  verifySignature,
  type Wallet,
  walletFromJwk,
} from "./lib/core/keys.ts";
export { commitWithRetry, isLockedError, type RetryPolicy } from "./lib/store/kv.ts";
export { setupLogging } from "./lib/node/log.ts";
