/**
 * The explorer page in a real browser: Debian's Chromium driven by playwright-core. A node runs
 * in this process; the test cuts blocks with a builder and watches the page follow without a
 * reload, looks a dropped transaction up, uses the request console and the send form, and
 * saves screenshots at 1280 and 360 px into test-output/ (not committed) for a person to see.
 *
 * Chromium is looked for in $CHROMIUM, then on the PATH. Without it the test is ignored here,
 * and fails where FOXCHAIN_REQUIRE_BROWSER is set (.ci/run sets it, after installing Chromium).
 */
import assert from "node:assert/strict";
import { type Browser, chromium, type Page } from "playwright-core";
import { Builder } from "../lib/node/builder.ts";
import { NodeClient } from "../lib/net/client.ts";
import { txId } from "../lib/core/transaction.ts";
import { A, B, C, GENESIS } from "./fixtures/helpers.ts";
import { ROOT, withNode } from "./fixtures/node.ts";

/** Where the screenshots go (gitignored). */
const OUTPUT = new URL("test-output/", ROOT);

function findChromium(): string | null {
  const given = Deno.env.get("CHROMIUM");
  if (given) return given;
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    for (const name of ["chromium", "chromium-browser"]) {
      try {
        if (Deno.statSync(`${dir}/${name}`).isFile) return `${dir}/${name}`;
      } catch { /* not here */ }
    }
  }
  return null;
}

const executablePath = findChromium();
const required = Deno.env.get("FOXCHAIN_REQUIRE_BROWSER") !== undefined;
if (!executablePath) {
  const why = "Chromium not found (apt-get install chromium, or set CHROMIUM=/path/to/it)";
  if (required) throw new Error(`${why}; FOXCHAIN_REQUIRE_BROWSER is set`);
  console.warn(`browser_test: ${why}; the browser test is ignored.`);
}

/**
 * Chromium as this machine allows it: headless, no sandbox (tests may run as root), and none
 * of its background connections, which a closed network refuses.
 */
function launch(): Promise<Browser> {
  return chromium.launch({
    executablePath: executablePath!,
    timeout: 30_000,
    args: [
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
}

/** Everything the page reported as an error: console errors, uncaught exceptions, failed loads. */
function collectErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") errors.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => errors.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => errors.push(`request failed: ${r.url()}`));
  page.on("response", (r) => {
    if (r.status() >= 400) errors.push(`HTTP ${r.status()}: ${r.url()}`);
  });
  return errors;
}

/** Asserts that the page and each of its tables fit a viewport `width` px wide. */
async function assertFits(page: Page, width: number, showing: string): Promise<void> {
  const wide = await page.evaluate(`(() => {
    const out = [];
    if (document.documentElement.scrollWidth > ${width}) {
      out.push("page " + document.documentElement.scrollWidth);
    }
    for (const box of document.querySelectorAll(".scroll")) {
      if (box.scrollWidth > box.clientWidth + 1) {
        out.push(box.closest("section").id + " " + box.scrollWidth + " > " + box.clientWidth);
      }
    }
    return out;
  })()`);
  assert.deepEqual(wide, [], `too wide at ${width} px, showing ${showing}`);
}

Deno.test({
  name: "explorer page in Chromium: live tip, look-ups, console, send form, 1280 and 360 px",
  ignore: !executablePath,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    await Deno.mkdir(OUTPUT, { recursive: true });
    await withNode(async (node) => {
      const builder = new Builder(node.store, { rules: [{ kind: "count", size: 1 }] });
      const client = await NodeClient.connect(node.url);
      const browser = await launch();
      try {
        const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        page.setDefaultTimeout(10_000);
        const errors = collectErrors(page);
        await page.goto(node.server.pageUrl);
        await page.locator("#conn", { hasText: "live" }).waitFor();
        await page.locator("#height", { hasText: "-1" }).waitFor();
        await page.locator("#builder", { hasText: "none has run" }).waitFor();
        // The network's rules, from status.
        await page.locator("#rules", { hasText: "count >= 1 or span >= 0 s or age >= 0 s" })
          .waitFor();
        // A builder announces itself when it starts: the page shows its rules.
        await builder.announce();
        await page.locator("#builder", { hasText: "count >= 1, at most 200 per block" }).waitFor();

        // A block is cut: the page shows its tip without a reload.
        const now = Date.now() / 1000;
        const mint = { sender: GENESIS, receiver: A, amount: 100, t: now - 2 };
        const overspend = { sender: B, receiver: C, amount: 500, t: now - 1 };
        assert.equal(
          (await client.request("merge", { pool: [mint, overspend] })).status,
          202,
        );
        await page.locator("#pool", { hasText: "2 transactions" }).waitFor();
        const first = await builder.pass();
        assert.equal(first.blocks.length, 1);
        assert.equal(first.dropped.length, 1);
        await page.locator("#tip", { hasText: first.blocks[0].hash }).waitFor();
        await page.locator("#height", { hasText: /^0$/ }).waitFor();
        await page.locator("#pool", { hasText: "empty" }).waitFor();
        await page.locator("#block-rows tr", { hasText: first.blocks[0].hash.slice(0, 16) })
          .waitFor();

        // The search finds the dropped transaction and shows why. It is reached from the keyboard.
        await page.locator("body").focus();
        for (
          let i = 0;
          i < 30 && !(await page.evaluate("document.activeElement.id === 'search'"));
          i++
        ) {
          await page.keyboard.press("Tab");
        }
        assert.equal(await page.evaluate("document.activeElement.id"), "search");
        await page.keyboard.type(txId(overspend));
        await page.keyboard.press("Enter");
        await page.locator("#result", {
          hasText: `Dropped: not enough balance: ${B} has 0, needs 500`,
        }).waitFor();

        // The console sends {"op": "pool"} and shows the reply, pretty-printed.
        await page.fill("#request", `{"op": "pool"}`);
        await page.click("#console-form button[type=submit]");
        const reply = page.locator("#transcript li").first().locator(".part.reply pre");
        await reply.waitFor();
        assert.equal(
          await reply.textContent(),
          JSON.stringify(await client.request("pool"), null, 2),
        );
        // Keyboard: Ctrl+Enter in the box sends too; an example is one click away.
        await page.fill("#request", `{"op": "time"}`);
        await page.press("#request", "Control+Enter");
        await page.locator("#transcript li", { hasText: '"time_zone"' }).waitFor();
        await page.click("#examples button:text-is('status')");
        await page.locator("#transcript li", { hasText: '"builder"' }).waitFor();

        // The send form mints from GENESIS; the next block holds it, and the page follows.
        await page.fill("#receiver", C);
        await page.fill("#amount", "42");
        await page.click("#send-form button[type=submit]");
        await page.locator("#send-result", { hasText: "202 Accepted" }).waitFor();
        const sentId = (await page.locator("#send-result .hash button").textContent())!;
        const record = await node.store.lookupTx(sentId);
        assert.equal(record?.state, "pool");
        assert.deepEqual([record.tx.sender, record.tx.receiver, record.tx.amount], [
          GENESIS,
          C,
          42,
        ]);
        const second = await builder.pass();
        assert.equal(second.blocks.length, 1);
        await page.locator("#tip", { hasText: second.blocks[0].hash }).waitFor();
        // A block by the first hex digits of its hash.
        await page.fill("#search", first.blocks[0].hash.slice(0, 8));
        await page.press("#search", "Enter");
        await page.locator("#result", { hasText: first.blocks[0].hash }).waitFor();
        await page.locator("#result h3", { hasText: "Block 0" }).waitFor();
        // Its proof-of-write evidence: the rule that held on the builder's pool of two.
        await page.locator("#result .proof", {
          hasText: "count rule held on a pool of 2 transactions",
        }).waitFor();

        // Peers as the node lists them, and a look-up of an address.
        await client.request("register", { addr: ["ws://127.0.0.1:9001/ws"] });
        await page.locator("#peer-list", { hasText: "ws://127.0.0.1:9001/ws" }).waitFor();
        await page.click("#send-result .hash button");
        await page.locator("#result", { hasText: "In block 1 at index 0" }).waitFor();
        await page.fill("#search", C);
        await page.press("#search", "Enter");
        await page.locator("#result", { hasText: "Balance on the chain: 42" }).waitFor();

        // One more waits in the pool, so the screenshots show a pool too.
        await client.request("merge", { pool: [{ sender: C, receiver: A, amount: 2 }] });
        await page.locator("#pool", { hasText: "1 transaction," }).waitFor();

        await page.screenshot({
          path: new URL("explorer-1280.png", OUTPUT).pathname,
          fullPage: true,
        });
        await page.setViewportSize({ width: 360, height: 780 });
        // Readable at 360 px: nothing is wider than the screen, no table scrolls sideways.
        await assertFits(page, 360, "an address");
        await page.fill("#search", "1");
        await page.press("#search", "Enter");
        await page.locator("#result", { hasText: "Block 1" }).waitFor();
        await assertFits(page, 360, "a block");
        await page.fill("#search", C);
        await page.press("#search", "Enter");
        await page.locator("#result", { hasText: "Balance on the chain: 42" }).waitFor();
        await page.screenshot({
          path: new URL("explorer-360.png", OUTPUT).pathname,
          fullPage: true,
        });

        assert.deepEqual(errors, []);
      } finally {
        await browser.close();
        await client.close();
      }
    });
  },
});
