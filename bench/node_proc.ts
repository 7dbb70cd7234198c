/**
 * Runs `main.ts serve` as a separate process on a KV file, as a user would (the same
 * permissions as `deno task serve`), and reads its peak memory from /proc.
 */

const ROOT = new URL("../", import.meta.url);
const MAIN = new URL("../main.ts", import.meta.url).pathname;

/** A running node subprocess. */
export interface NodeProcess {
  readonly pid: number;
  readonly url: string;
  /** Milliseconds from spawn until /health first answered 200. */
  readonly startupMs: number;
  /** Lines the node wrote to stderr (its log) so far. */
  logLines(): number;
  /** Peak resident set size so far (VmHWM), in bytes. */
  peakRss(): Promise<number>;
  /** SIGTERM, then SIGKILL if it has not exited within 10 s. */
  stop(): Promise<void>;
}

/** A TCP port that was free a moment ago (loopback only). */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Reads VmHWM (peak RSS) of a process from /proc/PID/status, in bytes. */
export async function peakRssOf(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kib = status.match(/^VmHWM:\s+(\d+) kB$/m);
  if (!kib) throw new Error(`no VmHWM in /proc/${pid}/status`);
  return Number(kib[1]) * 1024;
}

/**
 * Starts `main.ts serve --db FILE` (or `command`, with more `args`) on 127.0.0.1 and resolves
 * once /health answers. With `quiet`, the node logs warnings only; otherwise it logs as by
 * default (a line per merge).
 */
export async function startNode(
  db: string,
  opts: {
    quiet?: boolean;
    timeoutMs?: number;
    command?: string;
    args?: string[];
    /** Also append the node's log to this file (for profiling a run). */
    logFile?: string;
  } = {},
): Promise<NodeProcess> {
  const port = freePort();
  const args = [
    "run",
    "--allow-net",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    MAIN,
    opts.command ?? "serve",
    ...opts.args ?? [],
    "--hostname",
    "127.0.0.1",
    "--port",
    String(port),
    "--db",
    db,
  ];
  if (opts.quiet) args.push("--quiet");
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  // The log must be read or the node would block on a full pipe; keep the tail for errors.
  let lines = 0;
  let tail = "";
  const draining = (async () => {
    const decoder = new TextDecoder();
    const file = opts.logFile
      ? await Deno.open(opts.logFile, { create: true, append: true })
      : undefined;
    for await (const chunk of child.stderr) {
      await file?.write(chunk);
      const text = decoder.decode(chunk, { stream: true });
      for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines++;
      tail = (tail + text).slice(-2000);
    }
    file?.close();
  })();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });

  const deadline = started + (opts.timeoutMs ?? 20_000);
  let startupMs = -1;
  while (performance.now() < deadline && !exited) {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`);
      await res.body?.cancel();
      if (res.ok) {
        startupMs = performance.now() - started;
        break;
      }
    } catch { /* not listening yet */ }
    await new Promise((r) => setTimeout(r, 2));
  }
  if (startupMs < 0) {
    if (!exited) child.kill("SIGKILL");
    await status;
    await draining;
    throw new Error(`node on ${db} did not answer /health; its log ends:\n${tail}`);
  }

  return {
    pid: child.pid,
    url: `ws://127.0.0.1:${port}/ws`,
    startupMs,
    logLines: () => lines,
    peakRss: () => peakRssOf(child.pid),
    async stop() {
      if (!exited) child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!exited) child.kill("SIGKILL");
      }, 10_000);
      await status;
      clearTimeout(timer);
      await draining;
    },
  };
}
