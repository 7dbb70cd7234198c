/**
 * A builder under a steady load stops when asked, although its rule holds again after every
 * block (found by the chaos tool: a builder sent SIGINT while merges kept coming never exited).
 */
import assert from "node:assert/strict";
import { Builder } from "../lib/node/builder.ts";
import { mints, T0, withStore } from "./fixtures/helpers.ts";
import { poll } from "./fixtures/node.ts";

Deno.test("a builder whose rule holds after every block stops between blocks when asked", async () => {
  await withStore(async (store) => {
    const builder = new Builder(store, { rules: [{ kind: "count", size: 1 }], maxBlock: 2 });
    let merging = true;
    const load = (async () => {
      for (let i = 0; merging; i++) await store.addToPool(mints(4, T0 + i));
    })();
    try {
      builder.start();
      await poll("a few blocks", async () => (await store.tip()).height >= 3);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const outcome = await Promise.race([
        builder.stop().then(() => "stopped"),
        new Promise((resolve) => (timer = setTimeout(() => resolve("still building"), 10_000))),
      ]);
      clearTimeout(timer);
      assert.equal(outcome, "stopped");
    } finally {
      merging = false;
      await load;
    }
  });
});
