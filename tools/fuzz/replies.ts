/**
 * What a reply to a hostile message may be: a documented success or error (README, "The
 * protocol"), never an internal message or a stack trace. `checkReply` returns what is wrong
 * with a reply, or null.
 */

/** Errors whose text is fixed (or nearly) by status; a 400 or 409 carries a reason instead. */
const DOCUMENTED: Record<number, RegExp[]> = {
  200: [/^OK$/],
  202: [/^Accepted$/],
  400: [/^/], // a reason, checked for internals below
  404: [
    /^Operation "[\s\S]*" is not supported$/,
    /^Transaction "\d{16}-[0-9a-f]{64}" is not known$/,
  ],
  409: [
    /^"request_id" "[\s\S]*" was used for a different merge$/,
    /is being used by another merge$/,
  ],
  413: [/^Message is too large: \d+ bytes, at most \d+$/],
  500: [
    /^Cannot parse request message\.$/,
    /^Message body is not supported\.$/,
    /^Operation "\w+" requires the following "args": "\w+"$/,
  ],
};

/**
 * Signs of an internal message: a stack frame, a source path, an error class name, KV or Deno
 * words, JavaScript's renderings of values that were not meant to be shown.
 */
const INTERNALS =
  /\bat (?:async )?\S+ \(|file:\/\/|\.ts:\d|\b(?:Type|Range|Syntax|Reference|Eval|URI)Error\b|\bDeno\.|\bKv\w*Error|database is locked|\[object \w+\]|Maximum call stack|Internal error|failed on the node/;

/** What is wrong with a reply, or null when it is a documented one. */
export function checkReply(text: string): string | null {
  let reply: unknown;
  try {
    reply = JSON.parse(text);
  } catch {
    return `reply is not JSON: ${text.slice(0, 120)}`;
  }
  if (typeof reply !== "object" || reply === null || Array.isArray(reply)) {
    return `reply is not an object: ${text.slice(0, 120)}`;
  }
  const { status, error, response } = reply as Record<string, unknown>;
  if (typeof status !== "number" || typeof error !== "string") {
    return `reply lacks status or error: ${text.slice(0, 120)}`;
  }
  if (response !== undefined && response !== null && typeof response !== "object") {
    return `reply's response is neither an object nor null: ${text.slice(0, 120)}`;
  }
  const allowed = DOCUMENTED[status];
  if (!allowed) return `undocumented status ${status}: ${error.slice(0, 120)}`;
  if (!allowed.some((re) => re.test(error))) {
    return `undocumented ${status} error: ${error.slice(0, 160)}`;
  }
  if (INTERNALS.test(error)) return `internals in a ${status} error: ${error.slice(0, 160)}`;
  if (status >= 400 && status !== 400 && response !== null && response !== undefined) {
    return `a ${status} reply with a response: ${text.slice(0, 120)}`;
  }
  return null;
}
