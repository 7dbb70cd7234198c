/**
 * A `main.ts` process (serve, build, start, verify...) run as a user would, with its output
 * collected as it comes so a caller can wait for a log line. Shared by the tests and the chaos
 * and fuzz tools.
 */

/** The repository root (where main.ts is). */
export const ROOT = new URL("../../", import.meta.url);

/** A long-running `main.ts` process (serve, build, start) whose output is collected as it comes. */
export class MainProcess {
  stdout = "";
  stderr = "";
  readonly child: Deno.ChildProcess;
  readonly #pumps: Promise<void>;
  #waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  #status: Promise<Deno.CommandStatus>;

  /**
   * Spawns `deno run -A main.ts ...args` in the repository root, or, with `program`, another
   * command line that runs foxchain (an installed `foxchain`, a bundle) in `cwd`.
   */
  constructor(
    readonly args: string[],
    program?: { command: string; args?: string[]; cwd?: string },
  ) {
    this.child = new Deno.Command(program?.command ?? Deno.execPath(), {
      args: [...(program ? program.args ?? [] : ["run", "-A", "main.ts"]), ...args],
      cwd: program?.cwd ?? ROOT,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    this.#status = this.child.status;
    this.#pumps = Promise.all([
      this.#pump(this.child.stdout, (t) => (this.stdout += t)),
      this.#pump(this.child.stderr, (t) => {
        this.stderr += t;
        this.#waiters = this.#waiters.filter((w) => {
          const m = this.stderr.match(w.re);
          if (m) w.resolve(m);
          return !m;
        });
      }),
    ]).then(() => {});
  }

  async #pump(stream: ReadableStream<Uint8Array>, add: (text: string) => void): Promise<void> {
    for await (const text of stream.pipeThrough(new TextDecoderStream())) add(text);
  }

  /** Waits until stderr matches `re` (or the process ends, or `timeoutMs` passes). */
  waitForStderr(re: RegExp, timeoutMs = 20_000): Promise<RegExpMatchArray> {
    const now = this.stderr.match(re);
    if (now) return Promise.resolve(now);
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Promise<RegExpMatchArray>((resolve, reject) => {
      const waiter = { re, resolve };
      this.#waiters.push(waiter);
      const fail = (why: string) => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new Error(`${why} waiting for ${re} in stderr of ${this.args[0]}:\n${this.stderr}`));
      };
      timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      this.#status.then((s) => {
        if (!this.stderr.match(re)) fail(`process exited with ${s.code}`);
      });
    }).finally(() => clearTimeout(timer));
  }

  /** Waits for the "listening" log line and returns the node's URL. */
  async listening(): Promise<string> {
    const m = await this.waitForStderr(/Clients connect to (ws:\/\/[^\s;]+\/ws);/);
    return m[1];
  }

  /** Sends a signal (if still running) and waits for the exit; returns the status. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<Deno.CommandStatus> {
    try {
      this.child.kill(signal);
    } catch { /* already exited */ }
    return await this.finished();
  }

  /** Waits for the exit and for all output to be read. */
  async finished(): Promise<Deno.CommandStatus> {
    const status = await this.#status;
    await this.#pumps;
    return status;
  }
}

/** A TCP port on 127.0.0.1 that was free a moment ago (its listener is closed again). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
