import assert from "node:assert/strict";

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

Deno.test("deno bundle makes one file that runs the CLI, commands included", async () => {
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
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
