import assert from "node:assert/strict";
import { COMMANDS } from "../main.ts";

const readme = await Deno.readTextFile(new URL("../README.md", import.meta.url));

Deno.test("README documents every command and every option its --help lists", async () => {
  for (const [name, entry] of Object.entries(COMMANDS)) {
    assert.ok(readme.includes(`foxchain ${name}`), `README does not mention "foxchain ${name}"`);
    const { command } = await entry.load();
    const flags = new Set(command.help.match(/--[a-z][a-z-]*/g) ?? []);
    for (const flag of flags) {
      assert.ok(readme.includes(flag), `README does not document ${flag} of "foxchain ${name}"`);
    }
  }
});

Deno.test("README's test command is the one CI runs", async () => {
  const ci = await Deno.readTextFile(new URL("../.ci/run", import.meta.url));
  assert.match(ci, /^[^#\n]*\bdeno task test\b/m);
  assert.ok(readme.includes("deno task test"));
});
