/**
 * Ed25519 keys and signatures: an address derived from a public key, the encodings a signed
 * transaction carries (base64url), signing through WebCrypto and a synchronous verify. The
 * derivation and the signed bytes are documented in docs/hashing.md.
 */
import { Buffer } from "node:buffer";
import { createHash, createPublicKey, type KeyObject, verify } from "node:crypto";

/** Bytes of a raw Ed25519 public key. */
export const PUBLIC_KEY_BYTES = 32;
/** Bytes of an Ed25519 signature. */
export const SIGNATURE_BYTES = 64;

/**
 * The address of a public key: an RFC 9562 version-8 UUID made of the first 16 bytes of the
 * SHA-256 of the raw 32-byte key, with the version nibble set to 8 and the variant bits to
 * 10. It keeps the lab's UUID shape, so every address check, key and display still works, and
 * it can never be GENESIS (the nil UUID has version 0).
 *
 * @example
 * ```ts
 * addressOfKey(new Uint8Array(32)); // "66687aad-f862-8d77-ac8f-c18b8e9f8e20"
 * ```
 */
export function addressOfKey(publicKey: Uint8Array): string {
  const digest = createHash("sha256").update(publicKey).digest();
  const b = new Uint8Array(digest.subarray(0, 16));
  b[6] = (b[6] & 0x0f) | 0x80; // version 8
  b[8] = (b[8] & 0x3f) | 0x80; // variant 10
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${
    hex.slice(20)
  }`;
}

/** Bytes as unpadded base64url (RFC 4648 section 5), the encoding of `pubkey` and `sig`. */
export function toBase64Url(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64url");
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

/**
 * Decodes unpadded base64url of exactly `bytes` bytes, or returns null. Only the canonical
 * text is taken (the one `toBase64Url` writes back, so unused trailing bits must be zero): a
 * value has one spelling, and an item cannot be altered without changing its block's hash.
 */
export function fromBase64Url(text: string, bytes: number): Uint8Array | null {
  if (text.length !== Math.ceil(bytes * 4 / 3) || !BASE64URL.test(text)) return null;
  const decoded = Buffer.from(text, "base64url");
  if (decoded.length !== bytes || decoded.toString("base64url") !== text) return null;
  return new Uint8Array(decoded);
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/**
 * True when `text` is the canonical unpadded base64url of exactly `bytes` bytes: the right
 * length, the alphabet only, and the unused low bits of the last character zero. The same
 * verdict as `fromBase64Url(text, bytes) !== null` without decoding (admission and every block
 * check run it for each signed item).
 */
export function isBase64Url(text: string, bytes: number): boolean {
  const length = Math.ceil(bytes * 4 / 3);
  if (text.length !== length || !BASE64URL.test(text)) return false;
  const unused = length * 6 - bytes * 8;
  return ALPHABET.indexOf(text[length - 1]) % (1 << unused) === 0;
}

/**
 * Why a transaction's signature fields are malformed, or null when they are well formed or
 * absent. `pubkey` must be 32 bytes and `sig` 64 bytes, both in canonical unpadded base64url,
 * and they come together or not at all.
 */
export function checkSignatureEncoding(pubkey: unknown, sig: unknown): string | null {
  if (pubkey === undefined && sig === undefined) return null;
  if (pubkey === undefined) return `malformed signature: "sig" is given without "pubkey"`;
  if (sig === undefined) return `malformed signature: "pubkey" is given without "sig"`;
  if (typeof pubkey !== "string" || !isBase64Url(pubkey, PUBLIC_KEY_BYTES)) {
    return `malformed public key: "pubkey" must be ${PUBLIC_KEY_BYTES} bytes in base64url ` +
      `(${Math.ceil(PUBLIC_KEY_BYTES * 4 / 3)} characters)`;
  }
  if (typeof sig !== "string" || !isBase64Url(sig, SIGNATURE_BYTES)) {
    return `malformed signature: "sig" must be ${SIGNATURE_BYTES} bytes in base64url ` +
      `(${Math.ceil(SIGNATURE_BYTES * 4 / 3)} characters)`;
  }
  return null;
}

/** Addresses of public keys seen lately (a signer signs many transfers). */
const addresses = new Map<string, string>();
const ADDRESS_CACHE = 4096;

/** The address of a well-formed base64url public key. */
export function addressOfPubkey(pubkey: string): string {
  const known = addresses.get(pubkey);
  if (known !== undefined) return known;
  const raw = fromBase64Url(pubkey, PUBLIC_KEY_BYTES);
  if (raw === null) throw new RangeError(`not a base64url Ed25519 public key: ${pubkey}`);
  const address = addressOfKey(raw);
  if (addresses.size >= ADDRESS_CACHE) addresses.delete(addresses.keys().next().value!);
  addresses.set(pubkey, address);
  return address;
}

// ---- verifying --------------------------------------------------------------------------

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const SPKI_PREFIX = Buffer.from("302a300506032b6570032100", "hex");

/** Parsed public keys by base64url text: building a KeyObject costs a third of a verify. */
const keyObjects = new Map<string, KeyObject>();
const KEY_CACHE = 4096;

/**
 * Signatures known to verify: sig -> pubkey and message. A node checks one transaction's
 * signature at admission, again when its builder packs it and when the block is appended, and
 * a peer's block is checked by header and by validation: the cache makes the repeats a lookup.
 * Only successes are kept, keyed by the whole statement, so the answer is the same as without.
 */
const verified = new Map<string, string>();
const VERIFIED_CACHE = 32_768;

/**
 * Whether `sig` is `pubkey`'s Ed25519 signature (RFC 8032) of the UTF-8 bytes of `message`;
 * both must be well formed (`checkSignatureEncoding`). Synchronous: node:crypto's Ed25519,
 * the same algorithm WebCrypto signs with, so the block validator stays a pure synchronous
 * function (docs/decisions.md, "Signatures").
 */
export function verifySignature(pubkey: string, message: string, sig: string): boolean {
  const statement = `${pubkey}\n${message}`;
  if (verified.get(sig) === statement) return true;
  let key = keyObjects.get(pubkey);
  if (key === undefined) {
    const raw = fromBase64Url(pubkey, PUBLIC_KEY_BYTES);
    const bytes = fromBase64Url(sig, SIGNATURE_BYTES);
    if (raw === null || bytes === null) return false;
    try {
      key = createPublicKey({
        key: Buffer.concat([SPKI_PREFIX, raw]),
        format: "der",
        type: "spki",
      });
    } catch {
      return false;
    }
    if (keyObjects.size >= KEY_CACHE) keyObjects.delete(keyObjects.keys().next().value!);
    keyObjects.set(pubkey, key);
  }
  let ok: boolean;
  try {
    ok = verify(null, Buffer.from(message, "utf8"), key, Buffer.from(sig, "base64url"));
  } catch {
    return false;
  }
  if (ok) {
    if (verified.size >= VERIFIED_CACHE) verified.delete(verified.keys().next().value!);
    verified.set(sig, statement);
  }
  return ok;
}

/** Forgets every cached address, key and verified signature (benchmarks measure cold runs). */
export function clearSignatureCache(): void {
  addresses.clear();
  keyObjects.clear();
  verified.clear();
}

// ---- keys and signing (WebCrypto) ---------------------------------------------------------

/** An Ed25519 key pair with its address: what a wallet holds. */
export interface Wallet {
  /** The address the public key derives (see `addressOfKey`). */
  address: string;
  /** The raw public key in base64url, as transactions carry it. */
  pubkey: string;
  /** The private key, for signing. */
  privateKey: CryptoKey;
  /** The private key as a JWK (`kty` OKP, `crv` Ed25519, `d`, `x`), as a key file stores it. */
  jwk: JsonWebKey;
}

/** A new random Ed25519 wallet (WebCrypto). */
export async function newWallet(): Promise<Wallet> {
  const pair = await crypto.subtle.generateKey({ name: "Ed25519" }, true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
  return walletFromJwk(jwk);
}

/**
 * A wallet from a private JWK (`{"kty":"OKP","crv":"Ed25519","d":...,"x":...}`), checking that
 * `d` and `x` belong together (a test signature must verify). Throws a RangeError saying what
 * is wrong with the key.
 */
export async function walletFromJwk(input: unknown): Promise<Wallet> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new RangeError("a key must be a JSON object (a JWK)");
  }
  const j = input as Record<string, unknown>;
  if (j.kty !== "OKP" || j.crv !== "Ed25519") {
    throw new RangeError(`not an Ed25519 key: expected "kty": "OKP" and "crv": "Ed25519"`);
  }
  if (typeof j.x !== "string" || fromBase64Url(j.x, PUBLIC_KEY_BYTES) === null) {
    throw new RangeError(`"x" must be the 32-byte public key in base64url`);
  }
  if (typeof j.d !== "string" || fromBase64Url(j.d, 32) === null) {
    throw new RangeError(`"d" must be the 32-byte private key in base64url`);
  }
  const jwk: JsonWebKey = { kty: "OKP", crv: "Ed25519", d: j.d, x: j.x };
  let privateKey: CryptoKey;
  try {
    privateKey = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, true, ["sign"]);
  } catch (error) {
    throw new RangeError(`not a usable Ed25519 key: ${(error as Error).message}`);
  }
  const probe = "foxchain key check";
  const sig = await signText(privateKey, probe);
  if (!verifySignature(j.x, probe, sig)) {
    throw new RangeError(`"d" and "x" are not one key pair`);
  }
  return { address: addressOfPubkey(j.x), pubkey: j.x, privateKey, jwk };
}

/** The Ed25519 signature (base64url) of the UTF-8 bytes of `message` (WebCrypto). */
export async function signText(privateKey: CryptoKey, message: string): Promise<string> {
  const sig = await crypto.subtle.sign(
    { name: "Ed25519" },
    privateKey,
    new TextEncoder().encode(message),
  );
  return toBase64Url(new Uint8Array(sig));
}
