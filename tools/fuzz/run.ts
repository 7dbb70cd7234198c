/**
 * The protocol fuzzer: a real `serve` process gets hostile messages (tools/fuzz/messages.ts)
 * over several connections, raw frame attacks and abandoned connections (tools/fuzz/raw.ts).
 * Afterwards: the node is up and answers, every reply was a documented one without internals,
 * the node logged no error, memory stops growing (the second half of the run leaves it near
 * where the first half did), a SIGTERM stops it
 * cleanly, and the ledger it stored is valid (verify --indexes, every stored transaction valid,
 * balances equal to a recount, no key outside the schema). docs/reliability.md has the results.
 */
import { NodeClient, NodeUnreachable } from "../../lib/net/client.ts";
import { auditFuzzedNode, cleanUpFuzzedNode } from "./audit.ts";
import { freePort, MainProcess } from "../shared/main_process.ts";
import { Rng } from "../shared/rng.ts";
import { Summary } from "../shared/summary.ts";
import { type Message, nextMessage } from "./messages.ts";
import { abandon, ATTACKS, openAbandoned, runAttack } from "./raw.ts";
import { checkReply } from "./replies.ts";

/** What a fuzz run does. */
export interface FuzzOptions {
  /** Hostile messages to send (raw attacks and abandoned connections scale with it). */
  messages: number;
  /** Seed of every random choice. */
  seed: number;
  /** Connections the messages are spread over. */
  connections: number;
  /** Where progress lines go (default: nowhere). */
  progress?: (line: string) => void;
}

/**
 * How far memory may be, after the second half of a run, above its level after the first half.
 * V8 keeps the heap it grew (RSS rises to a plateau of about 220 MiB however long the run:
 * 5,000, 30,000 and 60,000 messages measured), so a leak shows as growth between two equal
 * halves, not as a gap to the level before the first message.
 */
const MEMORY_FACTOR = 1.25;
const MEMORY_SLACK = 32 << 20;
/** How long memory is given to settle before it is read (ms). */
const SETTLE_MS = 2000;

/** Runs the fuzzer and returns its summary (`ok` false on any violation). */
export async function runFuzz(opts: FuzzOptions): Promise<Summary> {
  const summary = new Summary(
    `fuzz: ${opts.messages} messages over ${opts.connections} connections, seed ${opts.seed}`,
  );
  const progress = opts.progress ?? (() => {});
  const rng = new Rng(opts.seed);
  const dir = await Deno.makeTempDir({ prefix: "foxchain-fuzz-" });
  const db = `${dir}/fuzz.kv`;
  const port = freePort();
  const url = `ws://127.0.0.1:${port}/ws`;
  const node = new MainProcess([
    "serve",
    "--port",
    String(port),
    "--hostname",
    "127.0.0.1",
    "--db",
    db,
  ]);
  const started = performance.now();
  const rows = ["seconds", "violations", "memory before (MiB)", "memory at half (MiB)"];
  for (const row of [...rows, "memory after (MiB)"]) {
    summary.set(row, 0);
  }
  try {
    await node.waitForStderr(/foxchain is listening on/, 30_000);
    // Warm up with the same traffic, so what the run adds is measured, not the first use.
    progress("warm-up");
    await sendMessages(
      url,
      Math.min(500, Math.ceil(opts.messages / 4)),
      2,
      rng.fork(),
      summary,
      false,
    );
    const before = await settledRss(node.child.pid);

    // Two equal halves: the first brings memory to its plateau, the second must not raise it.
    const rounds = Math.max(1, Math.round(opts.messages / 500));
    const left = await openAbandoned(url, 10 * rounds, rng.fork());
    summary.add("abandoned connections", left.length);
    const messageRng = rng.fork();
    const attackRng = rng.fork();
    let half: number | null = null;
    for (const part of [1, 2]) {
      const messages = part === 1 ? Math.ceil(opts.messages / 2) : Math.floor(opts.messages / 2);
      progress(`${messages} messages (half ${part})`);
      await sendMessages(url, messages, opts.connections, messageRng, summary, true);
      const attacks = part === 1 ? Math.ceil(rounds / 2) : Math.floor(rounds / 2);
      progress(`raw attacks x${attacks} (half ${part})`);
      for (let r = 0; r < attacks; r++) await attackOnce(url, attackRng, summary);
      if (part === 1) half = await settledRss(node.child.pid);
    }
    abandon(left);

    // The node is up and answers as before.
    const health = await fetch(`http://127.0.0.1:${port}/health`).then((r) => r.json()).catch((
      e,
    ) => ({ ok: false, error: String(e) }));
    if (health.ok !== true) {
      summary.violate(`node is not healthy after the run: ${JSON.stringify(health)}`);
    }
    const check = await NodeClient.connect(url).then(async (c) => {
      try {
        return await c.request("time");
      } finally {
        await c.close();
      }
    }).catch((e) => ({ status: 0, error: String(e) }));
    if (check.status !== 200) {
      summary.violate(`node does not answer "time" after the run: ${check.error}`);
    }

    const after = await settledRss(node.child.pid);
    if (before === null || half === null || after === null) {
      for (const row of ["memory before (MiB)", "memory at half (MiB)", "memory after (MiB)"]) {
        summary.set(row, "not measured");
      }
    } else {
      summary.set("memory before (MiB)", mib(before));
      summary.set("memory at half (MiB)", mib(half));
      summary.set("memory after (MiB)", mib(after));
      if (after > half * MEMORY_FACTOR + MEMORY_SLACK) {
        summary.violate(
          `memory kept growing: ${mib(before)} MiB before, ${mib(half)} MiB at half, ` +
            `${mib(after)} MiB after`,
        );
      }
    }

    progress("audit");
    await auditFuzzedNode(node, db, summary, "after fuzzing", async (store) => {
      summary.set("peers stored", (await store.peers()).length);
    });
  } finally {
    await cleanUpFuzzedNode(node, dir);
  }
  summary.set("seconds", Math.round((performance.now() - started) / 100) / 10);
  return summary;
}

/** Every raw attack once, each on its own connection, its replies checked. */
async function attackOnce(url: string, rng: Rng, summary: Summary): Promise<void> {
  for (const attack of ATTACKS) {
    const outcome = await runAttack(url, attack, rng);
    summary.add("raw attacks");
    for (const reply of outcome.replies) {
      const wrong = checkReply(reply);
      if (wrong) summary.violate(`${attack.name}: ${wrong}`);
    }
    if (
      attack.name === "fragmented request" &&
      !outcome.replies.some((r) => /"status":200/.test(r))
    ) {
      summary.violate(`a fragmented request was not answered: ${JSON.stringify(outcome)}`);
    }
    if (
      attack.name === "2 MiB text frame" && !outcome.replies.some((r) => /"status":413/.test(r))
    ) {
      summary.violate(`a 2 MiB message did not get 413: ${JSON.stringify(outcome).slice(0, 200)}`);
    }
    if (outcome.closed !== null) summary.add("raw attacks: connection closed by the node");
  }
}

/**
 * Sends `count` messages over `connections` connections, one at a time on each, and checks
 * every reply. A connection the node closes is reopened (and counted); `record` false only
 * warms up (nothing counted, replies still checked).
 */
async function sendMessages(
  url: string,
  count: number,
  connections: number,
  rng: Rng,
  summary: Summary,
  record: boolean,
): Promise<void> {
  let sent = 0;
  const worker = async (wrng: Rng) => {
    let client: NodeClient | null = null;
    while (sent < count) {
      sent++;
      const message: Message = nextMessage(wrng);
      try {
        client ??= await NodeClient.connect(url);
        const reply = await client.send(message.text);
        if (record) {
          summary.add(`messages: ${message.family}`);
          summary.add(`replies ${reply.status}`);
        }
        const wrong = checkReply(JSON.stringify(reply));
        if (wrong) summary.violate(`${message.family} ${excerpt(message.text)}: ${wrong}`);
      } catch (error) {
        if (!(error instanceof NodeUnreachable)) throw error;
        summary.violate(
          `${message.family} ${
            excerpt(message.text)
          }: the node closed the connection (${error.message})`,
        );
        client = null;
      }
    }
    await client?.close();
  };
  await Promise.all(Array.from({ length: connections }, () => worker(rng.fork())));
}

function excerpt(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 100)}...` : text);
}

/**
 * The node's resident memory after SETTLE_MS of quiet, or null when it cannot be read: from
 * /proc (which Deno 2 opens only with --allow-all, as `deno task fuzz` runs), else from `ps`.
 */
async function settledRss(pid: number): Promise<number | null> {
  await new Promise((resolve) => setTimeout(resolve, SETTLE_MS));
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const kib = status.match(/^VmRSS:\s+(\d+) kB$/m);
    if (kib) return Number(kib[1]) * 1024;
  } catch { /* not permitted, or no /proc */ }
  try {
    const out = await new Deno.Command("ps", { args: ["-o", "rss=", "-p", String(pid)] }).output();
    const kib = Number(new TextDecoder().decode(out.stdout).trim());
    if (out.success && Number.isFinite(kib) && kib > 0) return kib * 1024;
  } catch { /* no ps */ }
  return null;
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
