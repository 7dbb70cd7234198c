/** How `status` and `peers` print links: columns, lag in words, failed links with the reason. */
import assert from "node:assert/strict";
import { lagText, linksTable } from "../lib/cli/links.ts";

const TIP = "ab".repeat(32);

Deno.test("links table: one row per link, tip shortened, lag and last seen in words", () => {
  const text = linksTable([
    {
      url: "ws://127.0.0.1:9101/ws",
      state: "up",
      node: "0".repeat(32),
      height: 12,
      tip: TIP,
      lag: 2,
      lastSeen: 999.5,
      error: null,
      kind: "foxchain",
    },
    {
      url: "ws://127.0.0.1:9109/ws",
      state: "refused",
      node: null,
      height: null,
      tip: null,
      lag: null,
      lastSeen: null,
      error: 'it is on network "other", this node on "foxchain"',
      kind: "foxchain",
    },
  ], 1000);
  assert.deepEqual(text.split("\n"), [
    "PEER                    STATE    HEIGHT  TIP           LAG      LAST SEEN",
    "ws://127.0.0.1:9101/ws  up       12      abababababab  2 ahead  0.5 s ago",
    "ws://127.0.0.1:9109/ws  refused  -       -             -        never",
    '  ws://127.0.0.1:9109/ws: it is on network "other", this node on "foxchain"',
  ]);
});

Deno.test("links table: no links, and lag behind / level", () => {
  assert.equal(linksTable([], 0), "No links.");
  assert.equal(lagText(-3), "3 behind");
  assert.equal(lagText(0), "0");
  assert.equal(lagText(null), "-");
});
