/**
 * Signed transfers (issue 10): the raw Ed25519 verify rate of node:crypto over the very
 * statements a chain holds, against `verifyBlocks` of that signed chain (signature cache
 * cleared first, so every signature is verified) and against signed ingest over WebSocket
 * into a `serve --require-signatures` subprocess (unsigned ingest on the same setup, for
 * reference), all in one run. Alone: deno run -A bench/signed.ts (prints the JSON).
 */
import { Buffer } from "node:buffer";
import { createPublicKey, verify } from "node:crypto";
import { clearSignatureCache, newWallet, type Wallet } from "../lib/core/keys.ts";
import { MAX_BLOCK_ITEMS } from "../lib/core/params.ts";
import { signTx, type Tx, txCanonical } from "../lib/core/transaction.ts";
import type { ChainRules } from "../lib/consensus/rules.ts";
import { verifyBlocks } from "../lib/consensus/verify.ts";
import { BENCH_RULE, blocksOf, GENESIS, T0 } from "./fixtures.ts";
import { ingest } from "./load.ts";
import { startNode } from "./node_proc.ts";

/** What the signed benchmark measured. */
export interface SignedResults {
  /** Signed transactions in the chain (mints and transfers). */
  chainTxs: number;
  /** node:crypto Ed25519 verifies per second, keys parsed and bytes encoded beforehand. */
  rawVerifyPerSecond: number;
  /** verifyBlocks over the signed chain, every signature verified (tx/s). */
  signedVerifyTxPerSecond: number;
  /** verifyBlocks over the same chain without signatures (tx/s), for what the rest costs. */
  unsignedVerifyTxPerSecond: number;
  /** Signed ingest, 50 clients x batch 100, into a node requiring signatures (tx/s). */
  signedIngestTxPerSecond: number;
  /** Unsigned ingest, same clients, into a node of the lab's rules (tx/s). */
  unsignedIngestTxPerSecond: number;
  /** Transactions per ingest run. */
  ingestTxs: number;
}

const ACCOUNTS = 100;
const TRANSFERS = 10_000;
const INGEST_TXS = 20_000;
const RUNS = 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Signs `txs` in parallel batches (signing is the client's cost, kept out of every timing). */
async function signAll(txs: Tx[], walletOf: (tx: Tx) => Wallet): Promise<Tx[]> {
  const out: Tx[] = [];
  for (let i = 0; i < txs.length; i += 1000) {
    out.push(...await Promise.all(txs.slice(i, i + 1000).map((tx) => signTx(tx, walletOf(tx)))));
  }
  return out;
}

/** Runs the signed benchmark; `dir` holds the ingest KV files. */
export async function timeSigned(dir: string): Promise<SignedResults> {
  const minter = await newWallet();
  const wallets = await Promise.all(Array.from({ length: ACCOUNTS }, () => newWallet()));
  const byAddress = new Map(wallets.map((w) => [w.address, w]));
  const walletOf = (tx: Tx) => tx.sender === GENESIS ? minter : byAddress.get(tx.sender)!;
  const rules: ChainRules = {
    rules: [BENCH_RULE],
    acceptBareBlocks: false,
    signatures: { required: true, minters: [minter.address] },
  };

  // The chain: funding mints, then transfers in blocks of 200.
  const funding: Tx[] = wallets.map((w, i) => ({
    sender: GENESIS,
    receiver: w.address,
    amount: 1_000_000_000,
    t: T0 + i / 1e6,
  }));
  const transfers: Tx[] = Array.from({ length: TRANSFERS }, (_, i) => {
    const from = i % ACCOUNTS;
    const to = (from + 1 + (i * 7919) % (ACCOUNTS - 1)) % ACCOUNTS;
    return {
      sender: wallets[from].address,
      receiver: wallets[to].address,
      amount: 1,
      t: T0 + 10 + i / 1e6,
    };
  });
  const signed = await signAll([...funding, ...transfers], walletOf);
  const fundBlocks = blocksOf(signed.slice(0, ACCOUNTS), MAX_BLOCK_ITEMS);
  const top = fundBlocks.at(-1)!;
  const blocks = [...fundBlocks, ...blocksOf(signed.slice(ACCOUNTS), 200, top.height, top.hash)];
  const unsignedTxs = signed.map(({ sender, receiver, amount, t }) => ({
    sender,
    receiver,
    amount,
    t,
  }));
  const unsignedFund = blocksOf(unsignedTxs.slice(0, ACCOUNTS), MAX_BLOCK_ITEMS);
  const uTop = unsignedFund.at(-1)!;
  const unsignedBlocks = [
    ...unsignedFund,
    ...blocksOf(unsignedTxs.slice(ACCOUNTS), 200, uTop.height, uTop.hash),
  ];
  const chainTxs = signed.length;

  // Raw: the same statements, keys parsed and bytes encoded outside the timed loop.
  const spki = Buffer.from("302a300506032b6570032100", "hex");
  const keys = new Map<string, ReturnType<typeof createPublicKey>>();
  const statements = signed.map((tx) => {
    let key = keys.get(tx.pubkey!);
    if (!key) {
      key = createPublicKey({
        key: Buffer.concat([spki, Buffer.from(tx.pubkey!, "base64url")]),
        format: "der",
        type: "spki",
      });
      keys.set(tx.pubkey!, key);
    }
    return {
      key,
      message: Buffer.from(txCanonical(tx)),
      sig: Buffer.from(tx.sig!, "base64url"),
    };
  });
  const raw: number[] = [];
  const signedVerify: number[] = [];
  const unsignedVerify: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    let started = performance.now();
    for (const s of statements) {
      if (!verify(null, s.message, s.key, s.sig)) throw new Error("a signature did not verify");
    }
    raw.push(chainTxs / ((performance.now() - started) / 1000));

    clearSignatureCache();
    started = performance.now();
    const verdict = await verifyBlocks(blocks, rules, T0 + 1e6);
    if (!verdict.ok) throw new Error(verdict.reason);
    signedVerify.push(chainTxs / ((performance.now() - started) / 1000));

    started = performance.now();
    const plain = await verifyBlocks(unsignedBlocks, { ...rules, signatures: undefined }, T0 + 1e6);
    if (!plain.ok) throw new Error(plain.reason);
    unsignedVerify.push(chainTxs / ((performance.now() - started) / 1000));
  }

  // Ingest: pre-signed transfers with a fresh t, 50 clients x batch 100.
  const base = Date.now() / 1000 - 5;
  const fresh = await signAll(
    Array.from(
      { length: INGEST_TXS },
      (_, i) => ({ ...transfers[i % TRANSFERS], t: base + i / 1e6 }),
    ),
    walletOf,
  );
  const texts = fresh.map((tx) => JSON.stringify(tx));
  const plainTexts = fresh.map(({ sender, receiver, amount, t }) =>
    JSON.stringify({ sender, receiver, amount, t })
  );
  const ingestRate = async (name: string, args: string[], items: string[]) => {
    const node = await startNode(`${dir}/${name}.kv`, { quiet: true, args });
    try {
      const run = await ingest(node.url, {
        clients: 50,
        batch: 100,
        total: INGEST_TXS,
        timeLimitMs: 60_000,
        item: (i) => items[i],
      });
      if (run.timedOut) throw new Error(`${name} ingest timed out`);
      return run.rate;
    } finally {
      await node.stop();
    }
  };
  const signedIngest = await ingestRate("signed", [
    "--require-signatures",
    "--minter",
    minter.address,
  ], texts);
  const unsignedIngest = await ingestRate("unsigned", [], plainTexts);

  return {
    chainTxs,
    rawVerifyPerSecond: median(raw),
    signedVerifyTxPerSecond: median(signedVerify),
    unsignedVerifyTxPerSecond: median(unsignedVerify),
    signedIngestTxPerSecond: signedIngest,
    unsignedIngestTxPerSecond: unsignedIngest,
    ingestTxs: INGEST_TXS,
  };
}

if (import.meta.main) {
  const dir = await Deno.makeTempDir({ prefix: "foxchain-bench-signed-" });
  try {
    console.log(JSON.stringify(await timeSigned(dir), null, 2));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
