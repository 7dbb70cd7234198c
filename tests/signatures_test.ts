/**
 * Wallets and signatures (issue 10): addresses derived from keys, every refusal of the
 * signature rule at admission with its own reason and nothing stored, signed transfers
 * accepted and packed, replay and tampering, and the policy as part of the network's rules.
 */
import assert from "node:assert/strict";
import {
  addressOfKey,
  addressOfPubkey,
  checkSignatureEncoding,
  fromBase64Url,
  isBase64Url,
  newWallet,
  type Wallet,
} from "../lib/core/keys.ts";
import { GENESIS } from "../lib/core/params.ts";
import { blockHash, makeBlock } from "../lib/core/block.ts";
import { hashJson, type Json } from "../lib/core/hash.ts";
import { signTx, type Tx, txCanonical, txId } from "../lib/core/transaction.ts";
import { type ChainRules, describeChainRules } from "../lib/consensus/rules.ts";
import { checkSignature } from "../lib/consensus/signatures.ts";
import { helloMismatch } from "../lib/net/hello.ts";
import { Protocol } from "../lib/node/protocol.ts";
import { Builder } from "../lib/node/builder.ts";
import { openStore, type Store } from "../lib/store/store.ts";
import { verifyStore } from "../lib/store/audit.ts";
import { chainRules } from "../lib/cli/node_runner.ts";
import { UsageError } from "../lib/cli/cli.ts";
import { BF2 } from "./fixtures/helpers.ts";

const minter = await newWallet();
const alice = await newWallet();
const bob = await newWallet();

/** A network cutting at one transaction, requiring signatures, `minter` may mint. */
const SIGNED: ChainRules = {
  rules: [{ kind: "count", size: 1 }],
  acceptBareBlocks: false,
  signatures: { required: true, minters: [minter.address] },
};
/** The same network without the signature rule (the lab's). */
const UNSIGNED: ChainRules = { rules: [{ kind: "count", size: 1 }], acceptBareBlocks: false };

const now = () => Date.now() / 1000;

async function withProtocol(
  rules: ChainRules,
  body: (p: Protocol, store: Store) => Promise<void>,
): Promise<void> {
  const store = await openStore(":memory:", { rules });
  try {
    await body(new Protocol(store), store);
  } finally {
    await store.close();
  }
}

async function merge(p: Protocol, items: unknown[], verbose = false) {
  return await p.handle(JSON.stringify({ op: "merge", args: { pool: items, verbose } }));
}

/** Merges one item and asserts it is refused with `reason`, and nothing is stored. */
async function assertRefused(rules: ChainRules, item: Record<string, unknown>, reason: RegExp) {
  await withProtocol(rules, async (p, store) => {
    const reply = await merge(p, [item]);
    assert.equal(reply.status, 400, JSON.stringify(reply));
    assert.match(reply.error, /^Nothing accepted: item 0: /);
    assert.match(reply.error, reason);
    assert.equal((await store.poolStats()).size, 0, "nothing pooled");
    if (typeof item.t === "number") {
      assert.equal(await store.lookupTx(txId(item as unknown as Tx)), null, "no record");
    }
  });
}

const transfer = (from: Wallet, to: string, amount: number): Tx => ({
  sender: from.address,
  receiver: to,
  amount,
  t: now(),
});

// ---- addresses and encodings ----------------------------------------------------------------

Deno.test("an address is the v8 UUID of the key's SHA-256 (docs/hashing.md's vector)", () => {
  assert.equal(addressOfKey(new Uint8Array(32)), "66687aad-f862-8d77-ac8f-c18b8e9f8e20");
  assert.match(
    alice.address,
    /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
  );
  assert.equal(addressOfPubkey(alice.pubkey), alice.address);
  assert.notEqual(alice.address, bob.address);
});

Deno.test("a key or signature has one spelling: non-canonical base64url is refused", () => {
  const pubkey = alice.pubkey;
  // The last character of 32 bytes in base64url carries 4 unused bits; setting one changes
  // the text but not the bytes.
  const last = pubkey.at(-1)!;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  const twin = pubkey.slice(0, -1) + alphabet[alphabet.indexOf(last) ^ 1];
  assert.equal(fromBase64Url(twin, 32), null);
  assert.match(checkSignatureEncoding(`${pubkey}=`, "A".repeat(86))!, /malformed public key/);
  assert.match(checkSignatureEncoding(pubkey, "A".repeat(85))!, /malformed signature/);
});

// ---- refusals at admission: each with its own reason, nothing stored -----------------------

Deno.test("refused: an unsigned transfer on a network that requires signatures", async () => {
  await assertRefused(SIGNED, { ...transfer(alice, BF2, 1) }, /missing signature/);
});

Deno.test("refused: a signature that does not verify (made for another transaction)", async () => {
  const signed = await signTx(transfer(alice, BF2, 1), alice);
  const other = await signTx({ ...transfer(alice, BF2, 2) }, alice);
  await assertRefused(SIGNED, { ...signed, sig: other.sig }, /signature does not verify/);
});

Deno.test("refused: a public key that does not match the sender address", async () => {
  const signed = await signTx({ ...transfer(alice, BF2, 1), sender: bob.address }, alice);
  await assertRefused(SIGNED, { ...signed }, /public key does not match the sender address/);
});

Deno.test("refused: a mint signed by a key that is not a minter", async () => {
  const signed = await signTx({ sender: GENESIS, receiver: BF2, amount: 5, t: now() }, alice);
  await assertRefused(SIGNED, { ...signed }, /mint by a non-minter/);
});

Deno.test("refused: a malformed public key", async () => {
  const signed = await signTx(transfer(alice, BF2, 1), alice);
  await assertRefused(SIGNED, { ...signed, pubkey: "not-a-key" }, /malformed public key/);
  await assertRefused(SIGNED, { ...signed, pubkey: 42 }, /malformed public key/);
});

Deno.test("refused: a malformed signature, or one half of a signature", async () => {
  const signed = await signTx(transfer(alice, BF2, 1), alice);
  await assertRefused(SIGNED, { ...signed, sig: "!!" }, /malformed signature/);
  await assertRefused(SIGNED, { ...signed, sig: undefined }, /"pubkey" is given without "sig"/);
  // Malformed is malformed on any network, required or not.
  await assertRefused(UNSIGNED, { ...signed, sig: "!!" }, /malformed signature/);
});

Deno.test("refused: a signed transaction without its t (stamping would void the signature)", async () => {
  const signed = await signTx(transfer(alice, BF2, 1), alice);
  await assertRefused(SIGNED, { ...signed, t: undefined }, /"t" is missing: a signed transaction/);
});

Deno.test("refused: any field changed after signing (sender, receiver, amount, t)", async () => {
  const signed = await signTx(transfer(alice, BF2, 10), alice);
  await assertRefused(SIGNED, { ...signed, amount: 11 }, /signature does not verify/);
  await assertRefused(SIGNED, { ...signed, receiver: bob.address }, /signature does not verify/);
  await assertRefused(SIGNED, { ...signed, t: signed.t + 0.001 }, /signature does not verify/);
});

Deno.test("a network without the rule takes unsigned transfers but refuses a forged signature", async () => {
  await withProtocol(UNSIGNED, async (p) => {
    assert.deepEqual(await merge(p, [transfer(alice, BF2, 1)]), { status: 202, error: "Accepted" });
  });
  const signed = await signTx(transfer(alice, BF2, 1), alice);
  await assertRefused(UNSIGNED, { ...signed, amount: 2 }, /signature does not verify/);
});

// ---- accepted, packed, replayed -------------------------------------------------------------

Deno.test("a signed mint and a signed spend are accepted, packed with their signatures, and verify", async () => {
  await withProtocol(SIGNED, async (p, store) => {
    const mint = await signTx(
      { sender: GENESIS, receiver: alice.address, amount: 100, t: now() },
      minter,
    );
    assert.deepEqual(await merge(p, [mint]), { status: 202, error: "Accepted" });
    const builder = new Builder(store);
    assert.equal((await builder.pass()).added, 1);
    const spend = await signTx(transfer(alice, bob.address, 30), alice);
    assert.deepEqual(await merge(p, [spend]), { status: 202, error: "Accepted" });
    // The pool shows the signature, as the wire carries it.
    const pool = await p.handle(JSON.stringify({ op: "pool" }));
    assert.deepEqual((pool.response!.pool as Tx[])[0], { ...spend, prev_hash: null });
    const { blocks } = await builder.pass();
    assert.equal(blocks.length, 1);
    assert.equal(blocks[0].items[0].sig, spend.sig);
    assert.equal(blocks[0].items[0].pubkey, alice.pubkey);
    assert.equal(await store.balance(alice.address), 70);
    assert.equal(await store.balance(bob.address), 30);
    // What was stored re-validates, signatures included.
    assert.deepEqual(await verifyStore(store, { indexes: true }), {
      ok: true,
      height: 1,
      transactions: 2,
    });
    const record = await store.lookupTx(txId(spend));
    assert.equal(record?.state, "chain");
  });
});

Deno.test("replay: a signed transaction re-sent is the same id and is never applied twice", async () => {
  await withProtocol(SIGNED, async (p, store) => {
    const mint = await signTx(
      { sender: GENESIS, receiver: alice.address, amount: 100, t: now() },
      minter,
    );
    const spend = await signTx(transfer(alice, bob.address, 60), alice);
    await merge(p, [mint]);
    const builder = new Builder(store);
    await builder.pass();
    const first = await merge(p, [spend], true);
    const again = await merge(p, [spend], true);
    assert.deepEqual(first.response, { accepted: [txId(spend)], known: [], rejected: [] });
    assert.deepEqual(again.response, {
      accepted: [txId(spend)],
      known: [txId(spend)],
      rejected: [],
    });
    await builder.pass();
    const afterBlock = await merge(p, [spend], true);
    assert.deepEqual(afterBlock.response!.known, [txId(spend)]);
    assert.equal((await builder.pass()).added, 0);
    assert.equal(await store.balance(bob.address), 60);
    assert.equal(await store.balance(alice.address), 40);
  });
});

Deno.test("the builder drops, with the reason, an unsigned transfer a library caller pooled", async () => {
  const store = await openStore(":memory:", { rules: SIGNED });
  try {
    await store.addToPool([transfer(alice, BF2, 1)]);
    const result = await new Builder(store).pass();
    assert.equal(result.added, 0);
    assert.equal(result.dropped.length, 1);
    assert.match(result.dropped[0].reason, /missing signature/);
    assert.equal((await store.poolStats()).size, 0);
  } finally {
    await store.close();
  }
});

// ---- the block hash and the canonical bytes -------------------------------------------------

Deno.test("the signature covers exactly the bytes the id hashes; the block hash covers the signature", async () => {
  const signed = await signTx(transfer(alice, BF2, 7), alice);
  assert.equal(txId(signed), txId({ ...signed, pubkey: undefined, sig: undefined }));
  assert.equal(
    txCanonical(signed),
    `{"amount":7,"receiver":"${BF2}","sender":"${alice.address}","t":${signed.t}}`,
  );
  const block = makeBlock(0, null, [signed]);
  assert.equal(block.hash, hashJson({ items: block.items, prev_hash: null } as unknown as Json));
  const forged = [{ ...block.items[0], sig: "A".repeat(86) }];
  assert.notEqual(blockHash(forged, null), block.hash);
  // Unsigned, an item is the lab's five fields and the block hashes exactly as before.
  const { sender, receiver, amount, t } = signed;
  const lab = makeBlock(0, null, [{ sender, receiver, amount, t }]);
  assert.deepEqual(Object.keys(lab.items[0]), ["sender", "receiver", "amount", "t", "prev_hash"]);
  assert.equal(lab.hash, hashJson({ items: lab.items, prev_hash: null } as unknown as Json));
});

// ---- the policy is part of the network's rules ----------------------------------------------

Deno.test("two nodes whose signature policies differ have different rules (the handshake compares them)", () => {
  // The handshake (issue 8) refuses a peer whose describeChainRules differs; this is the
  // difference it sees.
  assert.equal(describeChainRules(UNSIGNED), "count >= 1; bare blocks refused");
  assert.equal(
    describeChainRules(SIGNED),
    `count >= 1; bare blocks refused; signatures required, minters ${minter.address}`,
  );
  const other = { ...SIGNED, signatures: { required: true, minters: [alice.address] } };
  assert.notEqual(describeChainRules(other), describeChainRules(SIGNED));
  const none = { ...SIGNED, signatures: { required: true, minters: [] } };
  assert.match(describeChainRules(none), /signatures required, no minters$/);
});

Deno.test("the handshake refuses a peer that requires signatures when this node does not, and back", () => {
  const hello = (rules: ChainRules) => ({
    network: "foxchain",
    rules: describeChainRules(rules),
    node: "ab".repeat(8),
    height: -1,
    tip: null,
    listen: null,
  });
  assert.match(
    helloMismatch(hello(SIGNED), "foxchain", UNSIGNED, "cd".repeat(8))!,
    /^its rules are ".*signatures required, minters .*", this node's "count >= 1; bare blocks refused"$/,
  );
  assert.match(helloMismatch(hello(UNSIGNED), "foxchain", SIGNED, "cd".repeat(8))!, /its rules/);
  assert.equal(helloMismatch(hello(SIGNED), "foxchain", SIGNED, "cd".repeat(8)), null);
});

Deno.test("--require-signatures and --minter make the rules; --minter alone or a bad address is a usage error", () => {
  const rules = chainRules({
    "require-signatures": true,
    minter: [bob.address.toUpperCase(), alice.address, bob.address],
  });
  assert.deepEqual(rules.signatures, {
    required: true,
    minters: [alice.address, bob.address].sort(),
  });
  assert.equal(chainRules({}).signatures, undefined);
  assert.throws(() => chainRules({ minter: [alice.address] }), UsageError);
  assert.throws(
    () => chainRules({ "require-signatures": true, minter: ["alice"] }),
    /--minter must be a wallet address/,
  );
  assert.throws(
    () => chainRules({ "require-signatures": true, minter: [GENESIS] }),
    /not GENESIS/,
  );
});

Deno.test("checkSignature: the one check, the same verdicts as admission", async () => {
  const signed = await signTx(transfer(alice, BF2, 3), alice);
  assert.equal(checkSignature(signed, SIGNED), null);
  assert.match(checkSignature({ ...signed, amount: 4 }, SIGNED)!, /does not verify/);
  assert.match(checkSignature(transfer(alice, BF2, 3), SIGNED)!, /missing signature/);
  assert.equal(checkSignature(transfer(alice, BF2, 3), UNSIGNED), null);
});

Deno.test("merge {blocks}: a signed block keeps its signatures; a forged one is refused, nothing stored", async () => {
  await withProtocol(SIGNED, async (p, store) => {
    const mint = await signTx(
      { sender: GENESIS, receiver: alice.address, amount: 100, t: now() },
      minter,
    );
    await merge(p, [mint]);
    const [b0] = (await new Builder(store).pass()).blocks;
    const other = await openStore(":memory:", { rules: SIGNED });
    try {
      const otherP = new Protocol(other);
      const relay = (blocks: unknown[]) =>
        otherP.handle(JSON.stringify({ op: "merge", args: { blocks, verbose: true } }));
      const wire = JSON.parse(JSON.stringify(b0));
      const forged = { ...wire, items: [{ ...wire.items[0], amount: 1_000_000 }] };
      delete forged.hash; // the hash is recomputed from the forged contents
      const refused = await relay([forged]);
      assert.equal(refused.status, 400);
      assert.match(refused.error, /item 0: signature does not verify/);
      assert.equal((await other.tip()).height, -1);
      const taken = await relay([wire]);
      assert.equal(taken.status, 202, JSON.stringify(taken));
      assert.equal((await other.tip()).hash, b0.hash);
      assert.equal((await other.block(0))?.items[0].sig, mint.sig);
    } finally {
      await other.close();
    }
  });
});

Deno.test("isBase64Url gives fromBase64Url's verdict without decoding", () => {
  const samples = [
    alice.pubkey,
    bob.pubkey,
    "A".repeat(43),
    "A".repeat(42) + "B",
    "A".repeat(42) + "E",
  ];
  samples.push("A".repeat(86), "A".repeat(85) + "Q", "A".repeat(85) + "B", "+".repeat(43), "");
  for (const text of samples) {
    for (const bytes of [32, 64]) {
      assert.equal(
        isBase64Url(text, bytes),
        fromBase64Url(text, bytes) !== null,
        `${text} ${bytes}`,
      );
    }
  }
});
