/**
 * Checks a pool cursor before Deno KV sees it. KV's cursor is the base64 of the last key read
 * (without the list's prefix), and KV takes almost any base64 (`""`, `"AAAA"`) as "from the
 * start": a cursor the node never gave out would silently answer with the first page.
 */
import { TX_ID } from "../core/transaction.ts";

/** A pool cursor that no pool page gave out. */
export class BadCursor extends Error {
  constructor() {
    super("not a cursor a pool page gave");
    this.name = "BadCursor";
  }
}

/**
 * True when `cursor` is one a pool page can have given: the encoded key `[t, id]` of a pool
 * entry (a number, then a transaction id), in Deno KV's key encoding (FoundationDB tuples: a
 * double is 0x21 and 8 bytes, a string 0x02, its bytes, and 0x00).
 */
export function isPoolCursor(cursor: string): boolean {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.from(
      atob(cursor.replace(/-/g, "+").replace(/_/g, "/")),
      (c) => c.charCodeAt(0),
    );
  } catch {
    return false;
  }
  if (bytes.length < 11 || bytes[0] !== 0x21 || bytes[9] !== 0x02 || bytes.at(-1) !== 0x00) {
    return false;
  }
  const id = new TextDecoder().decode(bytes.subarray(10, -1));
  return TX_ID.test(id);
}
