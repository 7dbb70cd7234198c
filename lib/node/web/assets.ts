/**
 * The explorer page's files, imported as text so they travel inside `deno bundle` output and
 * work from `deno install` (no file is read at run time). Served by the node at `GET /`.
 */
import appJs from "./app.js" with { type: "text" };
import favicon from "./favicon.svg" with { type: "text" };
import indexHtml from "./index.html" with { type: "text" };
import linkJs from "./link.js" with { type: "text" };
import styleCss from "./style.css" with { type: "text" };

/** One static file: its content type and body. */
export interface Asset {
  /** The Content-Type header. */
  type: string;
  /** The file's text. */
  body: string;
}

const JS = "text/javascript; charset=utf-8";

/** URL path → file. `/` is the page; the rest are what it loads. */
export const ASSETS: ReadonlyMap<string, Asset> = new Map([
  ["/", { type: "text/html; charset=utf-8", body: indexHtml }],
  ["/app.js", { type: JS, body: appJs }],
  ["/link.js", { type: JS, body: linkJs }],
  ["/style.css", { type: "text/css; charset=utf-8", body: styleCss }],
  ["/favicon.svg", { type: "image/svg+xml", body: favicon }],
]);

/**
 * The page's Content-Security-Policy: only its own files, no inline script or style, and
 * network access to its own origin only (the WebSocket at /ws).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

/** Headers every static file is sent with. */
export function assetHeaders(asset: Asset): Headers {
  return new Headers({
    "content-type": asset.type,
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    // Small files that change with the node's version: always revalidate, never stale.
    "cache-control": "no-cache",
  });
}
