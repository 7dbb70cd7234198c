/**
 * Deterministic encoding and hashing. Values are encoded with the JSON Canonicalization Scheme
 * (RFC 8785): object keys sorted, no whitespace, numbers in ECMAScript's shortest round-trip
 * form. The digest is SHA-256, lowercase hex. See docs/hashing.md.
 */
import { createHash } from "node:crypto";

/** A JSON value as the canonical encoder accepts it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Encodes a JSON value canonically (RFC 8785). Throws on non-finite numbers. */
export function canonicalJson(value: Json): string {
  if (value === null || typeof value !== "object") {
    if (typeof value === "number" && !Number.isFinite(value)) {
      throw new RangeError(`cannot encode non-finite number ${value}`);
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  // RFC 8785 sorts by UTF-16 code units, which is exactly what Array#sort does by default.
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
}

/** SHA-256 of a UTF-8 string, as 64 lowercase hex digits. node:crypto is ~10x crypto.subtle here. */
export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** SHA-256 of the canonical encoding of a value. */
export function hashJson(value: Json): string {
  return sha256Hex(canonicalJson(value));
}
