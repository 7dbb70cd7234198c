/**
 * The peer-link fuzzer: a real `serve` node is dialled as a peer (a valid `hello` with the
 * network name and rules its `status` gives), and the link sends hostile peer traffic: blocks
 * with unknown parents in floods, invalid blocks and transactions, locators too long or of
 * random hashes, `pool {want}` with junk, merges over the limits, `hello`s with wrong types and
 * repeated ones, with valid transfers among them. Each link is expected to be closed by the node
 * right after the reply that takes its faults past PEER_FAULT_LIMIT, and never before; then a
 * new link starts. Afterwards: the node is up and answers clients, every reply was a documented
 * one, it logged no error, SIGTERM stops it with 0, and what it stored passes the audits.
 */
import { NodeClient, NodeUnreachable } from "../../lib/net/client.ts";
import { GENESIS } from "../../lib/core/params.ts";
import { PEER_FAULT_LIMIT } from "../../lib/node/protocol.ts";
import { auditFuzzedNode, cleanUpFuzzedNode } from "./audit.ts";
import { freePort, MainProcess } from "../shared/main_process.ts";
import { Rng } from "../shared/rng.ts";
import { Summary } from "../shared/summary.ts";
import { checkReply } from "./replies.ts";

/** What a peer fuzz run does. */
export interface PeerFuzzOptions {
  /** Hostile messages to send over the peer links. */
  messages: number;
  /** Seed of every random choice. */
  seed: number;
  /** Where progress lines go (default: nowhere). */
  progress?: (line: string) => void;
}

/** The network name the attacked node runs under (the fuzzer reads it back from `status`). */
const NETWORK = "fuzz-net";

/** One hostile message: its family (for the table), its request, and the faults it causes. */
interface PeerMessage {
  family: string;
  op: string;
  args: Record<string, unknown>;
  faults: number;
}

const hex = (rng: Rng, digits: number) =>
  Array.from(rng.bytes(digits / 2), (b) => b.toString(16).padStart(2, "0")).join("");

function item(rng: Rng, t: number, prev: string | null = null) {
  return {
    sender: GENESIS,
    receiver: rng.uuid(),
    amount: rng.between(1, 1000),
    t,
    prev_hash: prev,
  };
}

/** Draws the next hostile message (`hello` is what a valid handshake says). */
function nextPeerMessage(rng: Rng, hello: Record<string, unknown>): PeerMessage {
  const now = Date.now() / 1000;
  const family = rng.pick([
    "orphan flood",
    "orphan flood",
    "invalid block",
    "invalid transaction",
    "long locator",
    "random locator",
    "junk want",
    "oversized merge",
    "hello, wrong types",
    "hello again",
    "valid transfers",
  ]);
  switch (family) {
    case "orphan flood": {
      // Well-formed blocks whose parents nobody has: they wait (capped), not faults.
      const blocks = Array.from({ length: rng.between(1, 200) }, () => ({
        items: [item(rng, now)],
        prev_hash: hex(rng, 64),
      }));
      return { family, op: "merge", args: { blocks }, faults: 0 };
    }
    case "invalid block": {
      const bad = rng.pick<unknown>([
        { items: [{ ...item(rng, now), amount: "lots" }], prev_hash: null },
        { items: [], prev_hash: null },
        { items: [item(rng, now)], prev_hash: 7 },
        "not a block",
        { items: [{ ...item(rng, now), sender: "x".repeat(300) }], prev_hash: hex(rng, 64) },
      ]);
      return { family, op: "merge", args: { blocks: [bad] }, faults: 1 };
    }
    case "invalid transaction": {
      const bad = rng.pick<unknown>([
        { sender: GENESIS, receiver: rng.uuid(), amount: -5 },
        { sender: GENESIS, receiver: rng.uuid(), amount: 1, t: now + 3600 },
        { sender: GENESIS, receiver: "not-a-uuid", amount: 3, t: now },
      ]);
      return { family, op: "merge", args: { pool: [bad] }, faults: 1 };
    }
    case "long locator": {
      const locator = Array.from({ length: rng.between(65, 5000) }, () => hex(rng, 64));
      return { family, op: "blocks", args: { locator }, faults: 0 };
    }
    case "random locator": {
      const locator = Array.from(
        { length: rng.between(0, 64) },
        () => rng.chance(0.9) ? hex(rng, 64) : rng.pick<unknown>([42, null, "zz", {}]),
      );
      return { family, op: "blocks", args: { locator, limit: rng.between(-5, 2000) }, faults: 0 };
    }
    case "junk want": {
      const want = rng.pick<unknown>([
        Array.from({ length: 10_001 }, () => "00"),
        [{}, [], 1, null],
        "all",
        Array.from({ length: rng.between(1, 50) }, () => hex(rng, 64)),
        Array.from({ length: rng.between(1, 50) }, () => `${Date.now()}000-${hex(rng, 64)}`),
      ]);
      return { family, op: "pool", args: { want }, faults: 0 };
    }
    case "oversized merge": {
      const one = { items: [item(rng, now)], prev_hash: hex(rng, 64) };
      const args = rng.chance(0.5) ? { blocks: Array.from({ length: 1001 }, () => one) } : {
        pool: Array.from({ length: 10_001 }, () => ({ sender: "a", receiver: "b", amount: 1 })),
      };
      return { family, op: "merge", args, faults: 0 };
    }
    case "hello, wrong types": {
      const key = rng.pick(Object.keys(hello));
      const value = rng.pick<unknown>([42, null, [], {}, "x".repeat(2000), -7, true]);
      return { family, op: "hello", args: { ...hello, [key]: value }, faults: 0 };
    }
    case "hello again":
      return { family, op: "hello", args: hello, faults: 0 };
    default: {
      const pool = Array.from({ length: rng.between(1, 20) }, () => item(rng, now - rng.next()));
      return { family: "valid transfers", op: "merge", args: { pool }, faults: 0 };
    }
  }
}

/** Runs the peer-link fuzzer and returns its summary (`ok` false on any violation). */
export async function runPeerFuzz(opts: PeerFuzzOptions): Promise<Summary> {
  const summary = new Summary(`fuzz --peer: ${opts.messages} messages, seed ${opts.seed}`);
  const progress = opts.progress ?? (() => {});
  const rng = new Rng(opts.seed);
  const dir = await Deno.makeTempDir({ prefix: "foxchain-fuzz-peer-" });
  const db = `${dir}/fuzz.kv`;
  const port = freePort();
  const url = `ws://127.0.0.1:${port}/ws`;
  const node = new MainProcess([
    ...["serve", "--port", String(port), "--hostname", "127.0.0.1", "--db", db],
    ...["--network", NETWORK],
  ]);
  const started = performance.now();
  for (const row of ["seconds", "peer links", "links closed past the fault limit", "violations"]) {
    summary.set(row, 0);
  }
  try {
    await node.waitForStderr(/foxchain is listening on/, 30_000);
    const status = await ask(url, "status", {});
    const network = (status.response?.network ?? {}) as Record<string, unknown>;
    const hello = {
      network: network.name,
      rules: status.response?.rules,
      node: "",
      height: -1,
      tip: null,
      listen: null,
    };
    let link: NodeClient | null = null;
    let faults = 0;
    let mine = hello;
    for (let sent = 0; sent < opts.messages;) {
      if (!link) {
        link = await NodeClient.connect(url);
        faults = 0;
        mine = { ...hello, node: hex(rng, 32) };
        const reply = await link.request("hello", mine);
        summary.add("peer links");
        if (reply.status !== 200) {
          summary.violate(`a valid hello was refused: ${reply.status} ${reply.error}`);
          break;
        }
        if (summary.get("peer links") % 10 === 1) {
          progress(`peer link ${summary.get("peer links")}`);
        }
      }
      const message = nextPeerMessage(rng, mine);
      sent++;
      summary.add(`messages: ${message.family}`);
      let text: string;
      try {
        const reply = await link.request(message.op, message.args, { deadlineMs: 30_000 });
        text = JSON.stringify(reply);
        summary.add(`replies ${reply.status}`);
      } catch (error) {
        if (!(error instanceof NodeUnreachable)) throw error;
        summary.violate(
          `${message.family}: the link was closed at ${faults} faults, ` +
            `not past ${PEER_FAULT_LIMIT} (${error.message})`,
        );
        link = null;
        continue;
      }
      const wrong = checkReply(text);
      if (wrong) summary.violate(`${message.family}: ${wrong}`);
      faults += message.faults;
      if (faults > PEER_FAULT_LIMIT) {
        // The node closes the link after this reply: the next request must fail.
        const closed = await link.request("time", {}, { deadlineMs: 5_000 }).then(
          () => false,
          (error) => error instanceof NodeUnreachable,
        );
        if (closed) summary.add("links closed past the fault limit");
        else summary.violate(`a link past ${PEER_FAULT_LIMIT} faults (${faults}) stayed open`);
        await link.close().catch(() => {});
        link = null;
      }
    }
    await link?.close().catch(() => {});

    // The node is up, answers clients, and still takes a valid peer.
    const time = await ask(url, "time", {});
    if (time.status !== 200) summary.violate(`node does not answer "time": ${time.error}`);
    const again = await ask(url, "hello", { ...hello, node: hex(rng, 32) });
    if (again.status !== 200) {
      summary.violate(`a new peer is refused after the run: ${again.error}`);
    }

    progress("audit");
    await auditFuzzedNode(node, db, summary, "after peer fuzzing", async (store) => {
      // The node has stopped: its whole log is read.
      summary.set("closes logged", node.stderr.match(/Closing the link from peer/g)?.length ?? 0);
      summary.set("height", (await store.tip()).height);
    });
  } finally {
    await cleanUpFuzzedNode(node, dir);
  }
  summary.set("seconds", Math.round((performance.now() - started) / 100) / 10);
  return summary;
}

/** One request on a fresh connection; a failure to connect is a reply with status 0. */
async function ask(url: string, op: string, args: Record<string, unknown>) {
  try {
    const client = await NodeClient.connect(url);
    try {
      return await client.request(op, args, { deadlineMs: 10_000 });
    } finally {
      await client.close();
    }
  } catch (error) {
    if (!(error instanceof NodeUnreachable)) throw error;
    return { status: 0, error: error.message, response: null };
  }
}
