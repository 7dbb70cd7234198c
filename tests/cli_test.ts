/**
 * The command line as a user runs it: `deno run -A main.ts ...` in a child process, checking
 * stdout, stderr and the exit code (0 ok, 1 failure, 2 usage). Client commands talk to a real
 * node started here; `verify` reads a real KV file; `serve` and `start` are stopped with Ctrl-C.
 */
import assert from "node:assert/strict";
import denoJson from "../deno.json" with { type: "json" };
import { type Block, makeBlock } from "../lib/core/block.ts";
import { Builder } from "../lib/node/builder.ts";
import { NodeClient } from "../lib/net/client.ts";
import { Protocol, type Reply } from "../lib/node/protocol.ts";
import { startServer } from "../lib/node/server.ts";
import { openStore, type Store } from "../lib/store/store.ts";
import { GENESIS } from "../lib/core/params.ts";
import { type Item, type Tx, txId } from "../lib/core/transaction.ts";
import { COMMANDS } from "../main.ts";
import { BF0, BF1, BF2, LOOSE_RULES, T0 } from "./fixtures/helpers.ts";
import {
  poll,
  runMain,
  type RunResult,
  unusedPort,
  withNode,
  withProcesses,
  withTempDir,
} from "./fixtures/node.ts";

const lines = (text: string) => text.split("\n").filter((l) => l !== "");

/** Asserts a usage error: exit 2, nothing on stdout, the message line and the help hint. */
function assertUsage(r: RunResult, command: string | undefined, message: RegExp | string) {
  const where = `foxchain${command ? ` ${command}` : ""}`;
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  const [first, hint, ...rest] = lines(r.stderr);
  if (typeof message === "string") assert.equal(first, `${where}: ${message}`);
  else assert.match(first, message);
  assert.ok(first.startsWith(`${where}: `), first);
  assert.equal(hint, `Run "${where} --help" for usage.`);
  assert.deepEqual(rest, []);
}

/** Asserts a failure: exit 1 and exactly one stderr line, no stack trace. */
function assertFails(r: RunResult, command: string, message: RegExp | string) {
  assert.equal(r.code, 1, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  const err = lines(r.stderr);
  assert.equal(err.length, 1, r.stderr);
  if (typeof message === "string") assert.equal(err[0], `foxchain ${command}: ${message}`);
  else assert.match(err[0], message);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
}

/** Asserts success with nothing on stderr; returns stdout's lines. */
function assertOk(r: RunResult): string[] {
  assert.equal(r.code, 0, `stdout: ${r.stdout}\nstderr: ${r.stderr}`);
  assert.equal(r.stderr, "");
  return lines(r.stdout);
}

// ---- help, version, usage errors --------------------------------------------------------------

Deno.test("--help, -h and help list every command; each command has its own --help", async () => {
  const [long, short, word, none] = await Promise.all([
    runMain(["--help"]),
    runMain(["-h"]),
    runMain(["help"]),
    runMain([]),
  ]);
  const out = assertOk(long);
  assert.match(out[0], new RegExp(`^foxchain ${denoJson.version}: `));
  assert.ok(out.includes("Usage: foxchain <command> [options]"));
  for (const [name, { summary }] of Object.entries(COMMANDS)) {
    assert.ok(out.some((l) => l.trim() === `${name.padEnd(10)}${summary}`), `${name} not listed`);
  }
  assert.deepEqual(short, long);
  assert.deepEqual(word, long);
  // No command at all is a usage error, with the same help.
  assert.equal(none.code, 2);
  assert.equal(none.stdout, long.stdout);

  const names = Object.keys(COMMANDS);
  const results = await Promise.all(
    names.flatMap((
      name,
    ) => [runMain([name, "--help"]), runMain([name, "-h"]), runMain(["help", name])]),
  );
  names.forEach((name, i) => {
    const [help, h, helpName] = results.slice(i * 3, i * 3 + 3);
    const text = assertOk(help);
    assert.match(text[0], new RegExp(`^Usage: foxchain ${name}\\b`));
    assert.ok(text.some((l) => /-h, --help/.test(l)), `${name} --help does not list --help`);
    assert.deepEqual(h, help);
    assert.deepEqual(helpName, help);
  });
});

Deno.test("--version and -V print the version from deno.json", async () => {
  for (const r of await Promise.all([runMain(["--version"]), runMain(["-V"])])) {
    assert.deepEqual(r, { code: 0, stdout: `foxchain ${denoJson.version}\n`, stderr: "" });
  }
});

Deno.test("unknown commands and flags, and bad values, exit 2 with one line and a hint", async () => {
  const node = `ws://127.0.0.1:${unusedPort()}/ws`;
  const cases: [string[], string | undefined, RegExp | string][] = [
    [["nope"], undefined, 'unknown command "nope"'],
    [["--bogus"], undefined, 'unknown command "--bogus"'],
    [["help", "nope"], undefined, 'unknown command "nope"'],
    [["help", "toString"], undefined, 'unknown command "toString"'],
    [["status", "--bogus"], "status", "Unknown option '--bogus'"],
    [["send", "-x"], "send", "Unknown option '-x'"],
    [["serve", "--bogus=1"], "serve", "Unknown option '--bogus'"],
    [["status", "extra"], "status", /^foxchain status: Unexpected argument 'extra'/],
    [["status", "-n"], "status", /argument missing/],
    [
      ["send", "--to", BF2, "--amount", "-5", "-n", node],
      "send",
      '--amount must be a positive whole number, got "-5"',
    ],
    [
      ["send", "--to", BF2, "--amount", "abc", "-n", node],
      "send",
      '--amount must be a positive whole number, got "abc"',
    ],
    [
      ["send", "--to", BF2, "--amount", "0", "-n", node],
      "send",
      /"amount" must be a whole number from 1 to 1000000000000, got 0$/,
    ],
    [
      ["send", "--to", BF2, "--amount", "99999999999999999999", "-n", node],
      "send",
      /"amount" must be a whole number from 1 to 1000000000000, got 100000000000000000000$/,
    ],
    [["send", "--amount", "5", "-n", node], "send", "--to is required"],
    [["send", "--to", BF2, "-n", node], "send", "--amount is required"],
    [
      ["send", "--to", "nope", "--amount", "5", "-n", node],
      "send",
      '"receiver" is not a UUID: "nope"',
    ],
    [
      ["send", "--to", GENESIS, "--amount", "5", "-n", node],
      "send",
      "sender and receiver are the same address",
    ],
    [["build", "--rule", "nope"], "build", '--rule must be span, count or age, got "nope"'],
    [
      ["build", "--max-block", "999"],
      "build",
      '--max-block must be a whole number from 1 to 240, got "999"',
    ],
    [
      ["build", "--max-block", "0"],
      "build",
      '--max-block must be a whole number from 1 to 240, got "0"',
    ],
    [["build", "-k", "3"], "build", "-k/--size sets the count rule: add --rule count"],
    [
      ["build", "--rule", "count", "-k", "-3"],
      "build",
      '--size must be a whole number from 1 to 1000000, got "-3"',
    ],
    [
      ["build", "--span", "0"],
      "build",
      '--span must be a duration such as 180, 3m or 1m30s, got "0"',
    ],
    [
      ["build", "--sleep", "abc"],
      "build",
      '--sleep must be a duration such as 180, 3m or 1m30s, got "abc"',
    ],
    [
      ["build", "--rule", "span", "--age", "1m"],
      "build",
      "--age sets the age rule: add --rule age",
    ],
    [
      ["build", "--rule", "count", "--span", "1m"],
      "build",
      "--span sets the span rule: add --rule span",
    ],
    [
      ["serve", "--port", "70000"],
      "serve",
      '--port must be a whole number from 0 to 65535, got "70000"',
    ],
    [["serve", "--port", "-1"], "serve", '--port must be a whole number from 0 to 65535, got "-1"'],
    [
      ["start", "--port", "abc"],
      "start",
      '--port must be a whole number from 0 to 65535, got "abc"',
    ],
    [
      ["serve", "--max-message", "10"],
      "serve",
      /^foxchain serve: --max-message must be a whole number from 1024/,
    ],
    [
      ["blocks", "--limit", "0", "-n", node],
      "blocks",
      /^foxchain blocks: --limit must be a whole number from 1 /,
    ],
    [
      ["blocks", "--start", "x", "-n", node],
      "blocks",
      /^foxchain blocks: --start must be a whole number/,
    ],
    [["balance", "-n", node], "balance", "give exactly one ADDRESS"],
    // Malformed values are refused here, before any node is asked (none listens at `node`).
    [["balance", "nope", "-n", node], "balance", 'ADDRESS must be a UUID, got "nope"'],
    [
      ["balance", `${BF2}x`, "-n", node],
      "balance",
      `ADDRESS must be a UUID, got "${BF2}x"`,
    ],
    [
      ["balance", "a\nb", "-n", node],
      "balance",
      'ADDRESS must be a UUID, got "a\\nb"',
    ],
    [["tx", "-n", node], "tx", "give exactly one transaction ID"],
    [
      ["tx", "xyz", "-n", node],
      "tx",
      'ID must be 16 digits, a dash and 64 hex digits, got "xyz"',
    ],
    [
      // A bare SHA-256, as ids were before they started with the time.
      ["tx", "ab".repeat(32), "-n", node],
      "tx",
      `ID must be 16 digits, a dash and 64 hex digits, got "${"ab".repeat(30)}..."`,
    ],
    [["register", "-n", node], "register", "give at least one peer URL"],
    [["call", "-n", node], "call", "give an OP and at most one ARGS-JSON"],
    [["call", "pool", "{bad", "-n", node], "call", "ARGS-JSON is not JSON: {bad"],
  ];
  const results = await Promise.all(cases.map(([args]) => runMain(args)));
  cases.forEach(([args, command, message], i) => {
    try {
      assertUsage(results[i], command, message);
    } catch (error) {
      throw new Error(`foxchain ${args.join(" ")}: ${(error as Error).message}`);
    }
  });
});

Deno.test("a node that is not there: exit 1, one line on stderr, no stack trace", async () => {
  const url = `ws://127.0.0.1:${unusedPort()}/ws`;
  const cases: [string, string[]][] = [
    ["status", []],
    ["pool", []],
    ["blocks", []],
    ["peers", []],
    ["balance", [BF2]],
    ["tx", [`1700000000000000-${"ab".repeat(32)}`]],
    ["register", ["ws://peer.example/ws"]],
    ["send", ["--to", BF2, "--amount", "1"]],
    ["call", ["pool"]],
  ];
  const results = await Promise.all(
    cases.map(([command, args]) => runMain([command, ...args, "-n", url])),
  );
  cases.forEach(([command], i) => {
    assertFails(results[i], command, `cannot reach a node at ${url} (is it running?)`);
    assert.equal(results[i].stdout, "");
  });
});

Deno.test("a node URL that is not ws:// or wss:// is a usage error that says so", async () => {
  const [bad, http, https, path] = await Promise.all([
    runMain(["status", "-n", "not a url"]),
    runMain(["status", "-n", "http://127.0.0.1:9100/"]),
    runMain(["pool", "-n", "https://node.example"]),
    runMain(["status", "-n", `ws://127.0.0.1:${unusedPort()}/`]),
  ]);
  assertUsage(bad, "status", /^foxchain status: -n\/--node: bad node URL not a url: /);
  assertUsage(
    http,
    "status",
    "-n/--node: a node URL starts with ws:// or wss://, got http://127.0.0.1:9100/ " +
      "(the node's WebSocket: ws://127.0.0.1:9100/ws)",
  );
  assertUsage(
    https,
    "pool",
    /got https:\/\/node\.example \(the node's WebSocket: wss:\/\/node\.example\/ws\)$/,
  );
  // A ws:// URL with another path than /ws is tried, and the failure says where nodes listen.
  assertFails(path, "status", /\(is it running\?; a node's WebSocket is at \/ws\)$/);
});

// ---- against a live node --------------------------------------------------------------------

Deno.test("send, pool, tx, balance, blocks, status, peers, register and call against a node", async () => {
  await withNode(async (node) => {
    const n = ["-n", node.url];
    const run = (...args: string[]) => runMain([...args, ...n]);

    // An empty node.
    assert.deepEqual(assertOk(await run("pool")), ["Pool is empty."]);
    assert.deepEqual(assertOk(await run("blocks")), ["No blocks."]);
    assert.deepEqual(assertOk(await run("peers")), ["No peers."]);
    assert.deepEqual(assertOk(await run("status")), [
      "height   -1",
      "tip      -",
      "pool     0 transactions",
      "rules    count >= 1 or span >= 0 s or age >= 0 s; bare blocks accepted",
      "builder  none has run on this database",
    ]);

    // send prints the id, which is the id of what the node pooled.
    const sent = assertOk(await run("send", "--to", BF2, "--amount", "10000"));
    assert.equal(sent.length, 2);
    assert.match(sent[0], /^\d{16}-[0-9a-f]{64}$/);
    assert.equal(sent[1], "node: 202 Accepted");
    const id1 = sent[0];
    const [pooled] = (await node.store.poolPage(10)).txs;
    assert.equal(txId(pooled), id1);
    assert.deepEqual({ ...pooled, t: 0 }, { sender: GENESIS, receiver: BF2, amount: 10000, t: 0 });

    // --json shows the transaction; sending that same transaction again adds nothing.
    const json = JSON.parse(
      assertOk(await run("send", "--to", BF1, "--amount", "8000", "--json"))[0],
    );
    assert.equal(json.id, txId(json.tx));
    // send asks for the ids (verbose), so the reply names what went in.
    assert.deepEqual(json.reply, {
      status: 202,
      error: "Accepted",
      response: { accepted: [json.id], known: [], rejected: [] },
    });
    const resend = await run("call", "merge", JSON.stringify({ pool: [json.tx] }), "--compact");
    assert.deepEqual(assertOk(resend), ['{"status":202,"error":"Accepted"}']);
    assert.equal((await node.store.poolStats()).size, 2);
    const id2 = json.id as string;

    // BF0 has nothing: this one will be dropped.
    const id3 = assertOk(await run("send", "--from", BF0, "--to", BF2, "--amount", "5"))[0];

    const pool = assertOk(await run("pool"));
    assert.match(pool[0], /^hash\s+t\s+sender\s+receiver\s+amount$/);
    assert.equal(pool.length, 5);
    assert.ok(pool[1].startsWith(id1.slice(17, 33)) && pool[1].endsWith(`${BF2}  10000`), pool[1]);
    assert.ok(pool[2].startsWith(id2.slice(17, 33)) && pool[2].endsWith(`${BF1}  8000`), pool[2]);
    assert.ok(pool[3].startsWith(id3.slice(17, 33)) && pool[3].includes(`${BF0}  ${BF2}  5`));
    assert.equal(pool[4], "3 transactions.");
    const poolJson = JSON.parse(assertOk(await run("pool", "--json"))[0]);
    assert.deepEqual(poolJson.pool.map(txId), [id1, id2, id3]);
    assert.equal(assertOk(await run("pool", "--limit", "1")).at(-1), "1 transaction.");

    const inPool = assertOk(await run("tx", id1));
    assert.deepEqual(inPool.slice(0, 2), [id1, "waiting in the pool"]);
    assert.match(inPool[2], new RegExp(`^${GENESIS} -> ${BF2}  10000  at \\d{4}-`));
    const status = assertOk(await run("status"));
    assert.equal(status[0], "height   -1");
    assert.match(
      status[2],
      /^pool {5}3 transactions, \d{4}-.* \.\. \d{4}-.* \(span \d+\.\d{3} s\)$/,
    );

    // The lab's builder (k=3) packs the pool: two go in, BF0's is dropped.
    const built = await new Builder(node.store, { rules: [{ kind: "count", size: 3 }] }).pass();
    assert.equal(built.blocks.length, 1);
    const block = built.blocks[0];

    assert.deepEqual(assertOk(await run("tx", id1)).slice(0, 2), [id1, "in block 0 at index 0"]);
    assert.deepEqual(assertOk(await run("tx", id2.toUpperCase())).slice(0, 2), [
      id2,
      "in block 0 at index 1",
    ]);
    assert.deepEqual(assertOk(await run("tx", id3)).slice(0, 2), [
      id3,
      `dropped: not enough balance: ${BF0} has 0, needs 5`,
    ]);
    const txJson = JSON.parse(assertOk(await run("tx", id2, "--json"))[0]);
    assert.deepEqual(txJson, {
      id: id2,
      state: "chain",
      height: 0,
      index: 1,
      block: block.hash,
      tx: { ...json.tx, prev_hash: null },
    });
    const unknown = `1700000000000000-${"cd".repeat(32)}`;
    const missing = await run("tx", unknown);
    assertFails(missing, "tx", `node answered 404: Transaction "${unknown}" is not known`);
    assert.equal(missing.stdout, "");
    assertUsage(
      await run("tx", "xyz"),
      "tx",
      'ID must be 16 digits, a dash and 64 hex digits, got "xyz"',
    );

    assert.deepEqual(assertOk(await run("balance", BF2)), ["10000"]);
    assert.deepEqual(assertOk(await run("balance", BF1.toUpperCase())), ["8000"]);
    assert.deepEqual(assertOk(await run("balance", BF0)), ["0"]);
    assert.deepEqual(assertOk(await run("balance", GENESIS)), ["-18000"]);
    assert.deepEqual(JSON.parse(assertOk(await run("balance", BF2, "--json"))[0]), {
      address: BF2,
      balance: 10000,
    });
    assertUsage(await run("balance", "nope"), "balance", 'ADDRESS must be a UUID, got "nope"');

    const table = assertOk(await run("blocks"));
    assert.equal(table[0], `block 0  hash ${block.hash.slice(0, 16)}  prev -  2 records`);
    assert.match(table[1], /^ {2}t\s+sender\s+receiver\s+amount$/);
    assert.ok(table[2].endsWith(`${GENESIS}  ${BF2}  10000`), table[2]);
    assert.ok(table[3].endsWith(`${GENESIS}  ${BF1}  8000`), table[3]);
    assert.equal(table.length, 4);
    assert.deepEqual(JSON.parse(assertOk(await run("blocks", "--json"))[0]), { blocks: [block] });
    assert.deepEqual(assertOk(await run("blocks", "--brief")), [table[0]]);

    // A second block, then --start (negative counts from the tip) and --limit.
    await run("send", "--to", BF0, "--amount", "1");
    await run("send", "--from", BF2, "--to", BF0, "--amount", "2");
    await run("send", "--from", BF1, "--to", BF0, "--amount", "3");
    assert.equal(
      (await new Builder(node.store, { rules: [{ kind: "count", size: 3 }] }).pass()).blocks.length,
      1,
    );
    const tip = await node.store.block(1);
    const brief = (b: Block) =>
      `block ${b.height}  hash ${b.hash.slice(0, 16)}  prev ${
        b.prev_hash!.slice(0, 16)
      }  3 records`;
    assert.deepEqual(assertOk(await run("blocks", "--brief", "--start", "-1")), [brief(tip!)]);
    assert.deepEqual(assertOk(await run("blocks", "--brief", "--start=1")), [brief(tip!)]);
    assert.deepEqual(assertOk(await run("blocks", "--brief", "--limit", "1")), [table[0]]);
    assert.deepEqual(assertOk(await run("balance", BF0)), ["6"]);

    const after = assertOk(await run("status"));
    assert.deepEqual(after.slice(0, 3), [
      "height   1",
      `tip      ${tip!.hash}`,
      "pool     0 transactions",
    ]);
    const statusJson = JSON.parse(assertOk(await run("status", "--json"))[0]);
    assert.equal(statusJson.height, 1);
    assert.equal(statusJson.tip, tip!.hash);
    assert.deepEqual(statusJson.pool, { size: 0, earliest: null, latest: null, span: 0 });

    // Peers.
    assert.deepEqual(
      assertOk(await run("register", "ws://peer.example:9000/ws", "http://nope.example")),
      [
        "node: 202 Accepted",
        "ignored (not a ws:// or wss:// URL): http://nope.example",
      ],
    );
    assert.deepEqual(assertOk(await run("register", "wss://other.example/ws")), [
      "node: 202 Accepted",
    ]);
    assert.deepEqual(assertOk(await run("peers")), [
      "ws://peer.example:9000/ws",
      "wss://other.example/ws",
    ]);
    assert.deepEqual(JSON.parse(assertOk(await run("peers", "--json"))[0]), {
      peers: ["ws://peer.example:9000/ws", "wss://other.example/ws"],
    });

    // call: the raw reply; a 4xx/5xx reply exits 1.
    const raw = await run("call", "blocks", '{"start": -1}');
    assert.deepEqual(JSON.parse(raw.stdout), {
      status: 200,
      error: "OK",
      response: { blocks: [tip] },
    });
    assert.equal(raw.code, 0);
    const bad = await run("call", "x");
    assert.equal(bad.code, 1);
    assert.deepEqual(JSON.parse(bad.stdout), {
      status: 404,
      error: 'Operation "x" is not supported',
      response: null,
    });
  });
});

/** Appends 1,050 one-transaction blocks (more than one `blocks` page); returns the tip. */
async function longChain(store: Store): Promise<{ height: number; hash: string | null }> {
  let tip: { height: number; hash: string | null } = { height: -1, hash: null };
  for (let run = 0; run < 7; run++) {
    const blocks: Block[] = [];
    for (let i = 0; i < 150; i++) {
      const h = tip.height + 1;
      const block = makeBlock(h, tip.hash, [
        { sender: GENESIS, receiver: BF2, amount: 1, t: T0 + h },
      ]);
      blocks.push(block);
      tip = { height: h, hash: block.hash };
    }
    assert.ok((await store.appendBlocks(blocks)).ok);
  }
  return tip;
}

Deno.test("blocks and pool follow the node's pages past 1,000 blocks and 10,000 transactions", async () => {
  await withNode(async (node) => {
    const tip = await longChain(node.store);
    const pooled = Array.from({ length: 10_005 }, (_, i) => ({
      sender: GENESIS,
      receiver: BF1,
      amount: i + 1,
      t: T0 + 2000 + i / 1000,
    }));
    await node.store.addToPool(pooled);

    const n = ["-n", node.url];
    const [all, last, some, json, pool, poolJson] = await Promise.all([
      runMain(["blocks", "--brief", ...n]),
      runMain(["blocks", "--brief", "--start", "-2", ...n]),
      runMain(["blocks", "--brief", "--start", "999", "--limit", "2", ...n]),
      runMain(["blocks", "--json", "--start", "990", ...n]),
      runMain(["pool", ...n]),
      runMain(["pool", "--json", "--limit", "10002", ...n]),
    ]);
    const heights = (out: string[]) => out.map((l) => Number(l.split(/\s+/)[1]));
    const range = (from: number, to: number) =>
      Array.from({ length: to - from }, (_, i) => from + i);
    assert.deepEqual(heights(assertOk(all)), range(0, 1050));
    assert.deepEqual(heights(assertOk(last)), [1048, 1049]);
    assert.deepEqual(heights(assertOk(some)), [999, 1000]);
    const blocks = JSON.parse(assertOk(json)[0]).blocks as Block[];
    assert.deepEqual(blocks.map((b) => b.height), range(990, 1050));
    assert.equal(blocks.at(-1)!.hash, tip.hash);
    const poolLines = assertOk(pool);
    assert.equal(poolLines.length, 10_007); // header, rows, total
    assert.equal(poolLines.at(-1), "10005 transactions.");
    const listed = JSON.parse(assertOk(poolJson)[0]).pool as Item[];
    assert.deepEqual(listed.map((i) => i.amount), range(1, 10_003));
  });
});

/** A protocol that holds its second `blocks` request until `release()`. */
class SecondPageHeld extends Protocol {
  pages = 0;
  release!: () => void;
  readonly #held = new Promise<void>((resolve) => (this.release = resolve));

  override async handle(text: string): Promise<Reply> {
    if (JSON.parse(text).op === "blocks" && ++this.pages === 2) await this.#held;
    return await super.handle(text);
  }
}

Deno.test("blocks prints each page before it asks for the next", async () => {
  // longChain's blocks carry no proof-of-write evidence: a store that accepts bare blocks.
  const store = await openStore(":memory:", { rules: LOOSE_RULES });
  const protocol = new SecondPageHeld(store);
  const server = await startServer({ protocol, hostname: "127.0.0.1", port: 0 });
  try {
    await longChain(store);
    await withProcesses(async (spawn) => {
      const p = spawn(["blocks", "--brief", "-n", server.url]);
      // The first page (heights 0-999) is out while the second is still being asked for.
      await poll(
        "the first page on stdout while the second is held",
        () => protocol.pages === 2 && /^block 999 /m.test(p.stdout),
      );
      assert.doesNotMatch(p.stdout, /^block 1000 /m);
      protocol.release();
      const status = await p.finished();
      assert.equal(status.code, 0, p.stderr);
      assert.equal(lines(p.stdout).length, 1050);
      assert.match(lines(p.stdout).at(-1)!, /^block 1049 /);
    });
  } finally {
    protocol.release();
    await server.shutdown();
    await store.close();
  }
});

Deno.test("verify: a good ledger exits 0; a tampered KV file exits 1 naming the height", async () => {
  await withTempDir(async (dir) => {
    const db = `${dir}/ledger.kv`;
    // The network's rules: verify is given the same ones as the node.
    const rules = ["--rule", "count", "-k", "2"];
    const blocks: Block[] = [];
    await withNode(async (node) => {
      const c = await NodeClient.connect(node.url);
      try {
        const builder = new Builder(node.store, { rules: [{ kind: "count", size: 2 }] });
        for (let h = 0; h < 3; h++) {
          const pool = [
            { sender: GENESIS, receiver: BF2, amount: 10 + h },
            { sender: GENESIS, receiver: BF1, amount: 20 + h },
          ];
          assert.equal((await c.request("merge", { pool })).status, 202);
          blocks.push(...(await builder.pass()).blocks);
        }
        assert.equal(blocks.length, 3);
      } finally {
        await c.close();
      }
    }, { path: db, rules: { rules: [{ kind: "count", size: 2 }], acceptBareBlocks: false } });

    assert.deepEqual(assertOk(await runMain(["verify", "--db", db, ...rules])), [
      "Ledger is valid: 3 blocks, 6 transactions.",
    ]);
    assert.deepEqual(assertOk(await runMain(["verify", "-r", db, "--indexes", ...rules])), [
      "Ledger is valid: 3 blocks, 6 transactions, indexes agree.",
    ]);
    assert.deepEqual(
      JSON.parse(assertOk(await runMain(["verify", "--db", db, "--json", ...rules]))[0]),
      { ok: true, height: 2, transactions: 6 },
    );
    // Under other rules (here the defaults) the blocks' evidence proves nothing.
    assertFails(
      await runMain(["verify", "--db", db]),
      "verify",
      "ledger is invalid at height 0: proof names the count rule, which this network does not use",
    );

    // Change one amount inside block 1, as someone editing the file would.
    const kv = await Deno.openKv(db);
    try {
      const header = await kv.get<{ hash: string }>(["main", 1]);
      assert.ok(header.value);
      const key = ["body", header.value.hash, 0];
      const body = await kv.get<Item[]>(key);
      assert.ok(body.value);
      body.value[1].amount += 1000;
      await kv.set(key, body.value);
    } finally {
      kv.close();
    }
    const tampered = await runMain(["verify", "--db", db, ...rules]);
    assertFails(
      tampered,
      "verify",
      /^foxchain verify: ledger is invalid at height 1: block hash is [0-9a-f]{64}, contents hash to [0-9a-f]{64}$/,
    );
    assert.equal(tampered.stdout, "");
    const asJson = await runMain(["verify", "--db", db, "--json", ...rules]);
    assert.equal(asJson.code, 1);
    const verdict = JSON.parse(asJson.stdout);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.height, 1);

    assertFails(
      await runMain(["verify", "--db", `${dir}/missing.kv`]),
      "verify",
      `no database at ${dir}/missing.kv`,
    );
    await Deno.writeTextFile(`${dir}/text.kv`, "not a database\n".repeat(100));
    assertFails(
      await runMain(["verify", "--db", `${dir}/text.kv`]),
      "verify",
      new RegExp(`^foxchain verify: cannot open database ${dir}/text\\.kv: `),
    );
  });
});

// ---- node processes -------------------------------------------------------------------------

Deno.test("Ctrl-C stops serve and start cleanly (exit 0, 'Stopped cleanly.')", async () => {
  await withTempDir(async (dir) => {
    await withProcesses(async (spawn) => {
      const serve = spawn(["serve", "--port", "0", "--hostname", "127.0.0.1", "--db", ":memory:"]);
      const start = spawn([
        "start",
        "--port",
        "0",
        "--hostname",
        "127.0.0.1",
        "--db",
        `${dir}/start.kv`,
        "--rule",
        "count",
        "-k",
        "1",
        "--sleep",
        "0.1",
      ]);
      const [serveUrl, startUrl] = await Promise.all([serve.listening(), start.listening()]);
      await start.waitForStderr(/Builder started: count >= 1/);
      // The log says what the socket is bound to, the network's rules, and the URLs to use.
      const port = new URL(serveUrl).port;
      assert.match(
        serve.stderr,
        new RegExp(
          `\\] foxchain is listening on 127\\.0\\.0\\.1:${port} \\(this machine only\\), ` +
            `database :memory:; rules: span >= 180 s or age >= 600 s; bare blocks refused\\.\n` +
            `.*\\] Clients connect to ws://127\\.0\\.0\\.1:${port}/ws; ` +
            `the explorer page is http://127\\.0\\.0\\.1:${port}/\n`,
        ),
      );

      // `start` builds what `send` sends.
      const sent = await runMain(["send", "--to", BF2, "--amount", "7", "-n", startUrl]);
      const id = assertOk(sent)[0];
      await poll("start's builder to pack the transaction", async () => {
        const r = await runMain(["tx", id, "-n", startUrl, "--json"]);
        return r.code === 0 && JSON.parse(r.stdout).state === "chain";
      });
      assert.deepEqual(assertOk(await runMain(["balance", BF2, "-n", startUrl])), ["7"]);
      assert.deepEqual(assertOk(await runMain(["pool", "-n", serveUrl])), ["Pool is empty."]);

      const [s1, s2] = await Promise.all([serve.stop("SIGINT"), start.stop("SIGINT")]);
      for (const [p, s] of [[serve, s1], [start, s2]] as const) {
        assert.equal(s.code, 0, p.stderr);
        assert.match(p.stderr, /Shutting down\.\.\.[\s\S]*Stopped cleanly\.\n$/);
        assert.doesNotMatch(p.stderr, /ERROR|error:|^\s+at /m);
      }
      assert.match(start.stderr, /Block is added to the blockchain\./);
      // The port is free again.
      Deno.listen({ hostname: "127.0.0.1", port: Number(port) }).close();
    });
    // What `start` wrote survived it.
    const rules = ["--rule", "count", "-k", "1"]; // the rules `start` ran with
    assert.deepEqual(
      assertOk(await runMain(["verify", "--db", `${dir}/start.kv`, "--indexes", ...rules])),
      ["Ledger is valid: 1 block, 1 transaction, indexes agree."],
    );
  });
});

Deno.test("serve on a port in use exits 1 with one line; build --once packs and exits 0", async () => {
  await withTempDir(async (dir) => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    try {
      const r = await runMain([
        "serve",
        "--hostname",
        "127.0.0.1",
        "--port",
        String(port),
        "--db",
        `${dir}/x.kv`,
      ]);
      assertFails(
        r,
        "serve",
        new RegExp(`^foxchain serve: cannot listen on 127\\.0\\.0\\.1:${port}: `),
      );
    } finally {
      listener.close();
    }
    // Nothing ran, so the database that run would have created is not left behind.
    assert.deepEqual([...Deno.readDirSync(dir)], []);

    const db = `${dir}/once.kv`;
    const sent: Tx[] = [];
    await withNode(async (node) => {
      const pool = [1, 2, 3].map((i) => ({ sender: GENESIS, receiver: BF2, amount: i }));
      const c = await NodeClient.connect(node.url);
      try {
        assert.equal((await c.request("merge", { pool })).status, 202);
      } finally {
        await c.close();
      }
      sent.push(...(await node.store.poolPage(10)).txs);
    }, { path: db });
    // Three records do not satisfy k=4: nothing to do, still a success.
    const idle = await runMain(["build", "--once", "--db", db, "--rule", "count", "-k", "4"]);
    assert.equal(idle.code, 0, idle.stderr);
    assert.match(
      idle.stderr,
      /Done: 0 blocks added, 0 dropped\. count: pool holds 3 records, rule needs 4/,
    );
    const once = await runMain(["build", "--once", "--db", db, "--rule", "count", "-k", "3"]);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stderr, /Packing 3 transactions\.\.\./);
    assert.match(once.stderr, /Done: 1 block added, 0 dropped\./);
    assert.deepEqual(
      assertOk(await runMain(["verify", "--db", db, "--indexes", "--rule", "count", "-k", "3"])),
      ["Ledger is valid: 1 block, 3 transactions, indexes agree."],
    );
    assert.equal(sent.length, 3);
    // `status` tells that a builder ran on this database, once.
    await withNode(async (node) => {
      const status = assertOk(await runMain(["status", "-n", node.url]));
      assert.match(
        status.find((line) => line.startsWith("builder")) ?? "",
        /^builder {2}count >= 3, at most 200 per block, ran once at \d{4}-\d\d-\d\d [\d:.]+ \(pid \d+\)$/,
      );
    }, { path: db });
  });
});

Deno.test("wallet new and show; signed send, build and verify under --require-signatures", async () => {
  await withTempDir(async (dir) => {
    // A key file readable by its owner only, never overwritten.
    const minterKey = `${dir}/minter.json`;
    const made = assertOk(await runMain(["wallet", "new", "--out", minterKey]));
    assert.match(made[0], /^address {2}[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-/);
    assert.equal(made[1], `key file ${minterKey} (keep it secret: it spends)`);
    const minter = made[0].slice(9);
    assert.equal((await Deno.stat(minterKey)).mode! & 0o777, 0o600);
    const before = await Deno.readTextFile(minterKey);
    assertFails(
      await runMain(["wallet", "new", "--out", minterKey]),
      "wallet",
      `${minterKey} already exists; a key file is never overwritten`,
    );
    assert.equal(await Deno.readTextFile(minterKey), before);
    const shown = assertOk(await runMain(["wallet", "show", minterKey]));
    assert.equal(shown[0], `address  ${minter}`);
    assert.match(shown[1], /^pubkey {3}[A-Za-z0-9_-]{43}$/);
    assertFails(await runMain(["wallet", "show", `${dir}/none.json`]), "wallet", /no key file at/);
    assertUsage(await runMain(["wallet", "old"]), "wallet", /unknown subcommand "old"/);
    const aliceKey = `${dir}/alice.json`;
    const alice = JSON.parse(
      assertOk(await runMain(["wallet", "new", "--out", aliceKey, "--json"]))[0],
    ).address;

    const db = `${dir}/signed.kv`;
    const flags = ["--rule", "count", "-k", "1", "--require-signatures", "--minter", minter];
    await withNode(async (node) => {
      const run = (...args: string[]) => runMain([...args, "-n", node.url]);
      assertFails(
        await run("send", "--from", alice, "--to", BF2, "--amount", "1"),
        "send",
        /^foxchain send: node answered 400: Nothing accepted: item 0: missing signature/,
      );
      assertFails(
        await run("send", "--key", aliceKey, "--from", GENESIS, "--to", BF2, "--amount", "1"),
        "send",
        /item 0: mint by a non-minter/,
      );
      assertUsage(
        await run("send", "--key", aliceKey, "--from", BF0, "--to", BF2, "--amount", "1"),
        "send",
        /with --key the sender is the key's address/,
      );
      const mint = assertOk(
        await run("send", "--key", minterKey, "--from", GENESIS, "--to", alice, "--amount", "100"),
      );
      assert.equal(mint[1], "node: 202 Accepted");
      const spend = assertOk(await run("send", "--key", aliceKey, "--to", BF2, "--amount", "30"));
      assert.equal(spend[1], "node: 202 Accepted");
      const status = assertOk(await run("status"));
      assert.equal(
        status[3],
        `rules    count >= 1; bare blocks refused; signatures required, minters ${minter}`,
      );
    }, {
      path: db,
      rules: {
        rules: [{ kind: "count", size: 1 }],
        acceptBareBlocks: false,
        signatures: { required: true, minters: [minter] },
      },
    });
    const once = await runMain(["build", "--once", "--db", db, ...flags]);
    assert.equal(once.code, 0, once.stderr);
    assert.match(once.stderr, /Done: 1 block added, 0 dropped\./);
    assert.deepEqual(assertOk(await runMain(["verify", "--db", db, "--indexes", ...flags])), [
      "Ledger is valid: 1 block, 2 transactions, indexes agree.",
    ]);
    // Under a policy naming no minter, the same chain's mint is refused.
    assertFails(
      await runMain(["verify", "--db", db, "--rule", "count", "-k", "1", "--require-signatures"]),
      "verify",
      /^foxchain verify: ledger is invalid at height 0: item 0: mint by a non-minter/,
    );
  });
});
