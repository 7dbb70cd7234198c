/**
 * `deno task install` puts a `foxchain` command on the PATH that works from any directory,
 * the explorer page included (its files travel as imported text, nothing is read from the
 * repository at run time by path); `deno task uninstall` removes it. The install goes to a
 * temporary DENO_INSTALL_ROOT, never the user's.
 */
import assert from "node:assert/strict";
import { MainProcess, ROOT, withTempDir } from "./fixtures/node.ts";

const decode = (b: Uint8Array) => new TextDecoder().decode(b);

/** Runs `command args` in `cwd` with `env` added; returns the exit code and output. */
async function run(command: string, args: string[], cwd: string | URL, env = {}) {
  const out = await new Deno.Command(command, {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("deno task install gives a foxchain command that runs a node from another directory", async () => {
  await withTempDir(async (root) => {
    const env = { DENO_INSTALL_ROOT: root };
    const installed = await run(Deno.execPath(), ["task", "install"], ROOT, env);
    assert.equal(installed.code, 0, installed.stderr);
    const foxchain = `${root}/bin/foxchain`;

    await withTempDir(async (elsewhere) => {
      const version = await run(foxchain, ["--version"], elsewhere);
      assert.equal(version.code, 0, version.stderr);
      assert.match(version.stdout, /^foxchain \d+\.\d+\.\d+\n$/);

      // A node from the installed command: its database lands where it runs, its page is served.
      const node = new MainProcess(["serve", "--port", "0", "--hostname", "127.0.0.1"], {
        command: foxchain,
        cwd: elsewhere,
      });
      try {
        const url = await node.listening();
        const base = url.replace(/^ws:/, "http:").replace(/\/ws$/, "");
        const page = await fetch(`${base}/`);
        assert.equal(page.status, 200);
        assert.equal(
          await page.text(),
          await Deno.readTextFile(new URL("lib/node/web/index.html", ROOT)),
        );
        const status = await run(foxchain, ["status", "-n", url], elsewhere);
        assert.equal(status.code, 0, status.stderr);
        assert.match(status.stdout, /^height {3}-1\n/);
        assert.equal((await node.stop("SIGINT")).code, 0, node.stderr);
      } finally {
        await node.stop("SIGKILL");
      }
      assert.ok((await Deno.stat(`${elsewhere}/foxchain.kv`)).isFile);
    });

    const removed = await run(Deno.execPath(), ["task", "uninstall"], ROOT, env);
    assert.equal(removed.code, 0, removed.stderr);
    await assert.rejects(Deno.stat(foxchain), Deno.errors.NotFound);
  });
});
