/**
 * Consensus parameters and fixed limits. Every node of one network must agree on the values
 * marked "consensus"; the others are local policy.
 */

/** The minting address: it may send any amount without a balance (consensus). */
export const GENESIS = "00000000-0000-0000-0000-000000000000";

/**
 * Most transactions one block may consider (included plus dropped) (consensus).
 * Derived from Deno KV's 1,000 mutations per atomic commit: a block writes up to four keys per
 * transaction (tx index, pool removal, sender and receiver balances) plus a few for its header,
 * body parts and tip, so 240 * 4 + 40 stays under the limit. See docs/storage.md.
 */
export const MAX_BLOCK_ITEMS = 240;

/** Default block size cap; `--max-block` may lower it, never raise it past MAX_BLOCK_ITEMS. */
export const DEFAULT_MAX_BLOCK = 200;

/** Items per stored body part: 100 items encode to about 30 KB, well under KV's 64 KiB. */
export const BODY_PART_ITEMS = 100;

/** Total supply cap (consensus): GENESIS may not mint past Number.MAX_SAFE_INTEGER in all. */
export const MAX_SUPPLY: number = Number.MAX_SAFE_INTEGER;

/**
 * Admission policy: a transaction's `t` may be at most this far in the future (seconds): room
 * for clocks that disagree by a few seconds, no more.
 *
 * The whole window (future plus past, 100 s) is kept shorter than the default span of 180 s:
 * a client that makes up its `t` can move the pool's span by at most the window, so it cannot
 * satisfy the span rule (or the age rule) on its own. The builder warns when a rule's duration
 * is not longer than the window.
 */
export const MAX_FUTURE_SECONDS = 10;

/**
 * Admission policy: a transaction's `t` may be at most this old when it reaches the pool
 * (seconds): enough for a relay between peers (the lab's tracker syncs every 30 s).
 */
export const MAX_AGE_SECONDS = 90;

/**
 * Admission policy for transactions a linked peer relays: at most this old (seconds). A relay
 * can be late through no fault of the peer (queued behind a partition, or found by pool
 * reconciliation after one), and the peer checked the transaction's `t` when a client sent it;
 * an hour covers a partition of that length, past it the transaction is stale.
 */
export const RELAY_MAX_AGE_SECONDS = 3600;

/**
 * Admission policy: the most one transaction may move. Without the signature rule anyone may
 * mint from GENESIS, so this keeps one request from spending the whole supply cap at once.
 */
export const MAX_AMOUNT = 1_000_000_000_000;

/** Smallest `t` any block may carry (consensus): 2009-01-03, before which no ledger of ours ran. */
export const MIN_T = 1230940800;

/** Largest `t` any block may carry (consensus): 2100-01-01. */
export const MAX_T = 4102444800;
