/**
 * The protocol fuzzer (tools/fuzz): its reply check tells documented replies from leaked
 * internals, and a short seeded run against a real node finds no violation. `deno task fuzz`
 * runs the long one; docs/reliability.md has its numbers.
 */
import assert from "node:assert/strict";
import { checkReply } from "../tools/fuzz/replies.ts";
import { runFuzz } from "../tools/fuzz/run.ts";
import { runPeerFuzz } from "../tools/fuzz/peer.ts";

const reply = (status: number, error: string, response: unknown = null) =>
  JSON.stringify({ status, error, response });

Deno.test("the fuzzer's reply check accepts documented replies", () => {
  for (
    const ok of [
      reply(200, "OK", { pool: [] }),
      JSON.stringify({ status: 202, error: "Accepted" }),
      reply(400, '"amount" must be a whole number from 1 to 1000000000000, got "5"'),
      reply(404, 'Operation "__proto__" is not supported'),
      reply(409, '"request_id" "k" was used for a different merge'),
      reply(413, "Message is too large: 2097174 bytes, at most 1048576"),
      reply(500, "Cannot parse request message."),
      reply(500, 'Operation "merge" requires the following "args": "pool"'),
    ]
  ) {
    assert.equal(checkReply(ok), null, ok);
  }
});

Deno.test("the fuzzer's reply check flags internals, undocumented errors and bad shapes", () => {
  for (
    const [bad, why] of [
      [reply(400, "TypeError: Cannot read properties of undefined"), /internals/],
      [reply(400, "boom\n    at handle (file:///x/protocol.ts:12:5)"), /internals/],
      [reply(500, "Internal error; the node logged it."), /undocumented 500/],
      [reply(500, 'Operation "merge" failed on the node; try again later'), /undocumented 500/],
      [reply(418, "teapot"), /undocumented status/],
      [reply(404, "Not here"), /undocumented 404/],
      [reply(413, "Message is too large", {}), /undocumented 413/],
      ["not json", /not JSON/],
      ["[1]", /not an object/],
      [JSON.stringify({ status: "200", error: "OK" }), /lacks status/],
    ] as const
  ) {
    assert.match(checkReply(bad) ?? "accepted", why, bad);
  }
});

Deno.test("fuzz, 300 seeded messages and every raw attack: no violation", async () => {
  const summary = await runFuzz({ messages: 300, seed: 7, connections: 3 });
  assert.ok(summary.ok, summary.render());
  assert.ok(summary.get("raw attacks") >= 12);
  assert.ok(summary.get("replies 400") > 0 && summary.get("replies 500") > 0);
});

Deno.test("fuzz --peer, 400 seeded messages on peer links: every link closed just past the fault limit, node up, nothing invalid stored", async () => {
  const summary = await runPeerFuzz({ messages: 400, seed: 11 });
  assert.ok(summary.ok, summary.render());
  assert.ok(summary.get("links closed past the fault limit") >= 2, summary.render());
  assert.ok(summary.get("messages: orphan flood") > 0 && summary.get("replies 202") > 0);
});
