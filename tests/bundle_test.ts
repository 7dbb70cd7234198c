import assert from "node:assert/strict";
import { MainProcess } from "./fixtures/node.ts";

const root = new URL("..", import.meta.url).pathname;

async function run(args: string[], cwd = root) {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd,
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: decode(out.stdout), stderr: decode(out.stderr) };
}

Deno.test("deno bundle makes one file that runs the CLI, commands and the explorer page included", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/foxchain.js`;
    const bundled = await run(["bundle", "--quiet", "--output", file, "main.ts"]);
    assert.equal(bundled.code, 0, bundled.stderr);

    const version = await run(["run", file, "--version"], dir);
    assert.equal(version.code, 0, version.stderr);
    assert.match(version.stdout, /^foxchain \d+\.\d+\.\d+\n$/);

    // A lazily loaded command that opens a KV file works from the bundle alone.
    const verify = await run([
      "run",
      "-A",
      "--unstable-kv",
      file,
      "verify",
      "--db",
      `${dir}/new.kv`,
    ], dir);
    assert.equal(verify.code, 1);
    assert.match(verify.stderr, /no database at/);
    const kv = await Deno.openKv(`${dir}/empty.kv`);
    kv.close();
    const empty = await run([
      "run",
      "-A",
      "--unstable-kv",
      file,
      "verify",
      "--db",
      `${dir}/empty.kv`,
    ], dir);
    assert.equal(empty.code, 0, empty.stderr);
    assert.equal(empty.stdout, "Ledger is empty.\n");

    // Without --unstable-kv the bundle says which flag is missing.
    const noKv = await run(["run", "-A", file, "verify", "--db", `${dir}/empty.kv`], dir);
    assert.equal(noKv.code, 1);
    assert.equal(
      noKv.stderr,
      `foxchain verify: cannot open database ${dir}/empty.kv: Deno KV is not enabled: ` +
        "run deno with --unstable-kv\n",
    );

    // The explorer page's files are inside the bundle: served with nothing else beside it.
    const node = new MainProcess(
      ["serve", "--port", "0", "--hostname", "127.0.0.1", "--db", ":memory:"],
      { command: Deno.execPath(), args: ["run", "-A", "--unstable-kv", file], cwd: dir },
    );
    try {
      const base = (await node.listening()).replace(/^ws:/, "http:").replace(/\/ws$/, "");
      const web = new URL("../lib/node/web/", import.meta.url);
      const names = [...Deno.readDirSync(web)].map((e) => e.name).filter((n) => n !== "assets.ts");
      assert.ok(names.length >= 5, names.join());
      for (const name of names) {
        const res = await fetch(`${base}/${name === "index.html" ? "" : name}`);
        assert.equal(res.status, 200, name);
        assert.equal(
          await res.text(),
          await Deno.readTextFile(new URL(name, web)),
          name,
        );
      }
    } finally {
      await node.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
