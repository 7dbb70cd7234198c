/**
 * Transactions: the lab's `{sender, receiver, amount, t, prev_hash}` with an id, and the checks
 * that decide whether one may enter the pool.
 */
import { canonicalJson, sha256Hex } from "./hash.ts";
import { checkSignatureEncoding, signText, type Wallet } from "./keys.ts";
import { MAX_AGE_SECONDS, MAX_AMOUNT, MAX_FUTURE_SECONDS, MAX_T, MIN_T } from "./params.ts";

/** A transaction as it waits in the pool (`prev_hash` is set only inside a block). */
export interface Tx {
  /** Paying address (a UUID), or GENESIS to mint. */
  sender: string;
  /** Receiving address (a UUID). */
  receiver: string;
  /** Amount moved: a positive whole number. */
  amount: number;
  /** POSIX seconds (float, microsecond precision when stamped by a node). */
  t: number;
  /**
   * The signer's raw Ed25519 public key, base64url; absent on an unsigned (lab) transaction.
   * Set only together with `sig`, and never as an own property holding undefined.
   */
  pubkey?: string;
  /** Ed25519 signature (base64url) of `txCanonical(tx)`, the bytes the id is computed from. */
  sig?: string;
}

/** A transaction inside a block: `prev_hash` is the hash of the item before it, null first. */
export interface Item extends Tx {
  /** Hash of the item before it in the block; null for the first item. */
  prev_hash: string | null;
}

/**
 * The wire shape of a pooled transaction, exactly as the lab prints it, plus `pubkey` and `sig`
 * when it is signed (lab clients ignore them).
 */
export function txToWire(tx: Tx): Item {
  return withSignature(
    { sender: tx.sender, receiver: tx.receiver, amount: tx.amount, t: tx.t, prev_hash: null },
    tx,
  );
}

/**
 * `tx` signed by `wallet`: its `pubkey` and the Ed25519 signature of `txCanonical(tx)`, the
 * bytes its id is computed from (so any change to sender, receiver, amount or `t` voids it).
 *
 * @example
 * ```ts
 * const wallet = await newWallet();
 * const signed = await signTx({ sender: wallet.address, receiver: B, amount: 5, t: Date.now() / 1000 }, wallet);
 * ```
 */
export async function signTx(tx: Tx, wallet: Pick<Wallet, "pubkey" | "privateKey">): Promise<Tx> {
  const { sender, receiver, amount, t } = tx;
  const unsigned: Tx = { sender, receiver, amount, t };
  const sig = await signText(wallet.privateKey, txCanonical(unsigned));
  return { ...unsigned, pubkey: wallet.pubkey, sig };
}

/** `target` with the signature of `from` copied onto it, when `from` has one. */
export function withSignature<T extends Tx>(target: T, from: Tx): T {
  if (from.pubkey !== undefined) target.pubkey = from.pubkey;
  if (from.sig !== undefined) target.sig = from.sig;
  return target;
}

/**
 * A transaction's id: its `t` in whole microseconds (16 digits), a dash, and its hash (SHA-256
 * of the canonical JSON of `{amount, receiver, sender, t}`), e.g. `1795509983007000-5e22...`.
 * The id leaves out `prev_hash`, so a transaction keeps its id from the pool into a block.
 *
 * The time comes first so that ids sort by time, like ULIDs: the index keyed by id is then
 * written near its end instead of at random pages, which keeps ingest flat as it grows
 * (measured: 3x the throughput at 100,000 transactions; docs/performance.md).
 */
export function txId(tx: Tx): string {
  return idOf(tx.t, txHash(tx));
}

/** A transaction's content hash: SHA-256 of the canonical JSON of `{amount, receiver, sender, t}`. */
export function txHash(tx: Tx): string {
  return sha256Hex(txCanonical(tx));
}

/** The id of a transaction stamped `t` whose content hash is `hash`. */
export function idOf(t: number, hash: string): string {
  return `${String(Math.round(t * 1e6)).padStart(16, "0")}-${hash}`;
}

/** What a transaction id looks like. */
export const TX_ID = /^\d{16}-[0-9a-f]{64}$/;

/** The hash an item is chained by: SHA-256 of the canonical JSON of all five fields. */
export function itemHash(item: Item): string {
  return sha256Hex(itemCanonical(item));
}

// Encoding is most of the cost of hashing a transaction (validation hashes each one twice),
// so the two fixed shapes are written out directly. Keys are in RFC 8785 order, and numbers
// and strings go through the same JSON.stringify canonicalJson uses, so the text is the same
// byte for byte; any other field type takes the general encoder (tests compare the two).

/** The canonical JSON `txId` hashes: `{amount, receiver, sender, t}`. */
export function txCanonical(tx: Tx): string {
  const { amount, receiver, sender, t } = tx;
  if (
    typeof amount !== "number" || !Number.isFinite(amount) || typeof receiver !== "string" ||
    typeof sender !== "string" || typeof t !== "number" || !Number.isFinite(t)
  ) {
    return canonicalJson({ amount, receiver, sender, t });
  }
  return `{"amount":${JSON.stringify(amount)},"receiver":${JSON.stringify(receiver)},"sender":${
    JSON.stringify(sender)
  },"t":${JSON.stringify(t)}}`;
}

/** The canonical JSON `itemHash` hashes: `{amount, prev_hash, receiver, sender, t}`. */
export function itemCanonical(item: Item): string {
  return itemTexts(item)[0];
}

/**
 * An item's canonical JSON and its transaction's (what `itemHash` and `txId` hash), built
 * from shared parts: block validation needs both for every item. `checked` says the caller
 * has made sure both addresses are lowercase UUIDs and `prev_hash` is null or hex digits
 * (checkBlockShape has), so no string needs escaping: quoting them as they are gives what
 * JSON.stringify would, at a third of the cost.
 */
export function itemTexts(item: Item, checked = false): [item: string, tx: string] {
  const { amount, prev_hash, receiver, sender, t } = item;
  if (
    typeof amount !== "number" || !Number.isFinite(amount) || typeof receiver !== "string" ||
    typeof sender !== "string" || typeof t !== "number" || !Number.isFinite(t) ||
    (prev_hash !== null && typeof prev_hash !== "string")
  ) {
    return [canonicalJson({ amount, prev_hash, receiver, sender, t }), txCanonical(item)];
  }
  // For a finite number, a template gives exactly JSON.stringify's text.
  const head = `{"amount":${amount},`;
  const tail = checked
    ? `"receiver":"${receiver}","sender":"${sender}","t":${t}}`
    : `"receiver":${JSON.stringify(receiver)},"sender":${JSON.stringify(sender)},"t":${t}}`;
  const link = checked && prev_hash !== null ? `"${prev_hash}"` : JSON.stringify(prev_hash);
  return [`${head}"prev_hash":${link},${tail}`, head + tail];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a UUID string in canonical lowercase form (any version, GENESIS included). */
export function isAddress(value: unknown): value is string {
  return typeof value === "string" && UUID.test(value);
}

/** The result of checking untrusted input: a value or the reason it was refused. */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string };

/** Options for admitting a transaction to the pool. */
export interface AdmitOptions {
  /** Current time in POSIX seconds. */
  now: number;
  /** `t` to stamp when the input has none (the lab stamps on arrival). */
  stamp: () => number;
  /** Furthest `t` may be in the future, in seconds (default MAX_FUTURE_SECONDS). */
  maxFutureSeconds?: number;
  /** Oldest `t` may be, in seconds (default MAX_AGE_SECONDS). */
  maxAgeSeconds?: number;
}

function address(input: Record<string, unknown>, field: string): Checked<string> {
  const v = input[field];
  if (typeof v !== "string") return { ok: false, reason: `"${field}" must be a UUID string` };
  const lower = v.toLowerCase();
  if (!UUID.test(lower)) return { ok: false, reason: `"${field}" is not a UUID: ${show(v)}` };
  return { ok: true, value: lower };
}

/**
 * An untrusted value as JSON text for an error message, cut to 60 characters. Never throws:
 * `${value}` would, for an object such as {"toString": 1}.
 */
export function show(value: unknown): string {
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  }
  let text: string;
  try {
    text = JSON.stringify(value) ?? typeof value;
  } catch {
    text = typeof value;
  }
  return text.length > 60 ? `${text.slice(0, 60)}...` : text;
}

/**
 * Checks the fields every transaction must have, wherever it comes from: UUID addresses that
 * differ, a positive safe-integer amount, a finite `t` inside the consensus bounds.
 */
export function checkTxFields(tx: Tx): string | null {
  if (!isAddress(tx.sender)) return `sender is not a lowercase UUID`;
  if (!isAddress(tx.receiver)) return `receiver is not a lowercase UUID`;
  if (tx.sender === tx.receiver) return "sender and receiver are the same address";
  if (!Number.isSafeInteger(tx.amount) || tx.amount <= 0) {
    return `amount must be a positive safe integer, got ${show(tx.amount)}`;
  }
  if (typeof tx.t !== "number" || !Number.isFinite(tx.t) || tx.t < MIN_T || tx.t > MAX_T) {
    return `t must be POSIX seconds between ${MIN_T} and ${MAX_T}, got ${show(tx.t)}`;
  }
  return null;
}

/**
 * Turns one untrusted `merge` item into a transaction, or says why not. Addresses are
 * lowercased; a missing or null `t` is stamped; a given `t` is kept (never re-stamped) but must
 * lie within the admission window (10 s ahead, 90 s old), which is shorter than the default
 * span, so nobody can force the span rule with a made-up time. `pubkey` and `sig` are kept
 * when well formed (whether they verify, and whether the network requires them, is the
 * network's signature rule: `admitUnder` in lib/consensus/signatures.ts).
 */
export function admitTx(input: unknown, opts: AdmitOptions): Checked<Tx> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return { ok: false, reason: "a transaction must be a JSON object" };
  }
  const fields = input as Record<string, unknown>;
  const sender = address(fields, "sender");
  if (!sender.ok) return sender;
  const receiver = address(fields, "receiver");
  if (!receiver.ok) return receiver;
  const amount = fields.amount;
  if (
    typeof amount !== "number" || !Number.isSafeInteger(amount) || amount <= 0 ||
    amount > MAX_AMOUNT
  ) {
    return {
      ok: false,
      reason: `"amount" must be a whole number from 1 to ${MAX_AMOUNT}, got ${show(amount)}`,
    };
  }
  let t = fields.t;
  if ((t === undefined || t === null) && (fields.sig ?? undefined) !== undefined) {
    // Stamping it here would change the bytes its signature covers.
    return {
      ok: false,
      reason: `"t" is missing: a signed transaction carries the t it was signed with`,
    };
  }
  if (t === undefined || t === null) {
    t = opts.stamp();
  } else if (typeof t !== "number" || !Number.isFinite(t)) {
    return { ok: false, reason: `"t" must be a number of POSIX seconds` };
  } else {
    const future = opts.maxFutureSeconds ?? MAX_FUTURE_SECONDS;
    const age = opts.maxAgeSeconds ?? MAX_AGE_SECONDS;
    if (t > opts.now + future) {
      return {
        ok: false,
        reason: `"t" is ${(t - opts.now).toFixed(3)} s in the future (max ${future} s)`,
      };
    }
    if (t < opts.now - age) {
      return { ok: false, reason: `"t" is ${(opts.now - t).toFixed(3)} s old (max ${age} s)` };
    }
  }
  const tx: Tx = { sender: sender.value, receiver: receiver.value, amount, t: t as number };
  const bad = checkTxFields(tx);
  if (bad) return { ok: false, reason: bad };
  // null counts as absent, as for `t`; anything else must be a well-formed key and signature.
  const pubkey = fields.pubkey ?? undefined;
  const sig = fields.sig ?? undefined;
  const malformed = checkSignatureEncoding(pubkey, sig);
  if (malformed) return { ok: false, reason: malformed };
  if (pubkey !== undefined) {
    tx.pubkey = pubkey as string;
    tx.sig = sig as string;
  }
  return { ok: true, value: tx };
}
