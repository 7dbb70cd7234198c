// The explorer page: the node's state kept live through `subscribe`, the latest blocks,
// look-ups, a send form and a request console. Plain DOM, no framework; every text from the
// node is set as text (never as HTML). Fields the page does not know are left alone, so
// replies may grow without breaking it.
import { NodeLink, nodeUrl } from "./link.js";

// The node checks every request; these patterns only pick which look-up to try. The rules
// themselves live in lib/core (params.ts, transaction.ts), which a browser cannot import.
const GENESIS = "00000000-0000-0000-0000-000000000000";
const TX_ID = /^\d{16}-[0-9a-f]{64}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const DIGITS = /^\d+$/;
const HASH_PREFIX = /^[0-9a-f]{6,64}$/;
/** Blocks the page lists, and those an address's transfers and a hash prefix are sought in. */
const LATEST_BLOCKS = 10;
const TRANSFER_BLOCKS = 50;
const HASH_SEARCH_BLOCKS = 1000;
const TRANSFERS_SHOWN = 25;
const POOL_SEARCHED = 1000;

const EXAMPLES = [
  ["pool", { op: "pool" }],
  ["blocks", { op: "blocks" }],
  ["merge", {
    op: "merge",
    args: {
      pool: [{ sender: GENESIS, receiver: "bc70b89d-4521-454c-bebc-6c2456074bf2", amount: 10000 }],
    },
  }],
  ["peers", { op: "peers" }],
  ["register", { op: "register", args: { addr: "ws://127.0.0.1:9001/ws" } }],
  ["time", { op: "time" }],
  ["status", { op: "status" }],
];

const $ = (id) => document.getElementById(id);

/** An element with attributes (and `on*` listeners) and children (strings become text). */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== undefined && value !== null && value !== false) {
      node.setAttribute(key, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

/** POSIX seconds as local time with milliseconds, as the command line shows it. */
function showTime(seconds) {
  if (typeof seconds !== "number") return "-";
  const d = new Date(seconds * 1000);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

const plural = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
const short = (hash) => typeof hash === "string" ? hash.slice(0, 16) : "-";
const pretty = (value) => typeof value === "string" ? value : JSON.stringify(value, null, 2);

/** A button that looks the value up, for ids, addresses, heights and hashes in results. */
function lookupButton(value, label = String(value)) {
  return el("button", {
    type: "button",
    class: "link",
    title: `Look up ${value}`,
    onclick: () => search(String(value)),
  }, label);
}

function rawReply(reply) {
  return el(
    "details",
    { class: "raw" },
    el("summary", {}, "raw reply"),
    el("pre", {}, pretty(reply)),
  );
}

// ---- live state ---------------------------------------------------------------------------

const live = new NodeLink(nodeUrl(location), {
  onState: (state) => {
    const conn = $("conn");
    conn.textContent = state;
    conn.dataset.state = state.split(/[ ,]/)[0];
  },
  onOpen: async () => {
    if (initialQuery) search(initialQuery);
    initialQuery = "";
    try {
      const reply = await live.request("subscribe");
      if (reply.status !== 200) $("conn").textContent = `no live updates: ${reply.error}`;
    } catch { /* the link reconnects and subscribes again */ }
  },
  onEvent: (event) => {
    if (event.event === "status") showStatus(event.data);
    else if (event.event === "peers") showPeers(event.data);
  },
});

/** What the last status said: the tip's hash and height (-1 for an empty chain). */
let tip;
let height = -1;
/** A look-up in the page's address (#...), run once connected. */
let initialQuery = location.hash.length > 1 ? decodeURIComponent(location.hash.slice(1)) : "";

function showStatus(s) {
  height = s.height;
  $("height").textContent = String(s.height);
  $("tip").textContent = s.tip ?? "- (no blocks yet)";
  const pool = s.pool ?? {};
  $("pool").textContent = pool.size > 0
    ? `${plural(pool.size, "transaction")}, span ${Number(pool.span).toFixed(3)} s ` +
      `(${showTime(pool.earliest)} .. ${showTime(pool.latest)})`
    : "empty";
  // The network's rules: every block must carry evidence that one of them held.
  $("rules").textContent = s.rules ?? "-";
  const b = s.builder;
  $("builder").textContent = b
    ? `${b.rules}, at most ${b.maxBlock} per block, ` +
      (b.once ? `ran once at ${showTime(b.updated)}` : `every ${b.sleepSeconds} s`)
    : "none has run on this database";
  $("time").textContent = showTime(s.time);
  if (s.tip !== tip) {
    tip = s.tip;
    loadBlocks();
  }
}

/** Peers as the node gives them: URLs, or objects whose fields become columns. */
function showPeers(data) {
  const peers = Array.isArray(data.peers) ? data.peers : [];
  const box = $("peer-list");
  if (peers.length === 0) {
    box.replaceChildren(el("p", { class: "hint" }, "No peers yet (register tells the node one)."));
    return;
  }
  const rows = peers.map((p) => typeof p === "object" && p !== null ? p : { url: p });
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  box.replaceChildren(
    el(
      "div",
      { class: "scroll" },
      el(
        "table",
        {},
        el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
        el(
          "tbody",
          {},
          rows.map((r) =>
            el("tr", {}, columns.map((c) => el("td", {}, r[c] === undefined ? "" : pretty(r[c]))))
          ),
        ),
      ),
    ),
  );
}

let loading = null;
/** Reloads the latest blocks; a reload asked for while one runs happens after it. */
async function loadBlocks() {
  if (loading) {
    loading.again = true;
    return;
  }
  loading = { again: false };
  try {
    const reply = await live.request("blocks", { start: -LATEST_BLOCKS });
    if (reply.status !== 200) throw new Error(reply.error);
    const blocks = [...reply.response.blocks].reverse();
    $("block-rows").replaceChildren(
      ...(blocks.length === 0 ? [el("tr", {}, el("td", { colspan: 5 }, "No blocks yet."))] : []),
      ...blocks.map((b) =>
        el(
          "tr",
          {},
          el("td", {}, lookupButton(b.height)),
          el("td", { class: "hash short", title: b.hash }, short(b.hash)),
          el("td", {}, String(b.items.length)),
          el(
            "td",
            { class: "wide-only", title: describeProof(b.proof) },
            b.proof ? b.proof.rule : "bare",
          ),
          el("td", { class: "wide-only nowrap" }, showTime(blockTime(b))),
        )
      ),
    );
  } catch (error) {
    $("block-rows").replaceChildren(
      el("tr", {}, el("td", { colspan: 5 }, `Cannot load blocks: ${error.message}`)),
    );
  } finally {
    const again = loading.again;
    loading = null;
    if (again) loadBlocks();
  }
}

// ---- look-ups -----------------------------------------------------------------------------

/** Looks `query` up and shows the result: a transaction, an address or a block. */
async function search(query) {
  const q = query.trim().toLowerCase();
  $("search").value = q;
  const out = $("result");
  if (q === "") {
    out.replaceChildren();
    return;
  }
  history.replaceState(null, "", `#${encodeURIComponent(q)}`);
  out.replaceChildren(el("p", { class: "hint" }, "Looking up..."));
  try {
    let shown;
    if (TX_ID.test(q)) shown = await findTx(q);
    else if (UUID.test(q)) shown = await findAddress(q);
    else if (DIGITS.test(q) && (Number(q) <= height || q.length < 6)) {
      shown = await findHeight(Number(q));
    } else if (HASH_PREFIX.test(q)) shown = await findHash(q);
    else {
      shown = [
        el(
          "p",
          { class: "error" },
          "Not a transaction id (16 digits, a dash, 64 hex digits), an address (a UUID), " +
            "a height or a block hash (at least 6 hex digits).",
        ),
      ];
    }
    out.replaceChildren(...shown);
  } catch (error) {
    out.replaceChildren(el("p", { class: "error" }, `Look-up failed: ${error.message}`));
  }
}

async function findTx(id) {
  const reply = await live.request("tx", { id });
  if (reply.status === 404) {
    return [
      el("p", { class: "error" }, `No transaction ${id} is known to this node.`),
      rawReply(reply),
    ];
  }
  if (reply.status !== 200) return [el("p", { class: "error" }, reply.error), rawReply(reply)];
  const r = reply.response;
  let where;
  if (r.state === "pool") where = el("p", { class: "state pool" }, "Waiting in the pool.");
  else if (r.state === "chain") {
    where = el(
      "p",
      { class: "state chain" },
      "In block ",
      lookupButton(r.height),
      ` at index ${r.index}`,
      r.hash ? el("span", { class: "hash" }, ` (block ${short(r.hash)})`) : null,
      ".",
    );
  } else if (r.state === "dropped") {
    where = el(
      "p",
      { class: "state dropped" },
      `Dropped: ${r.reason}`,
      r.at ? ` (at ${showTime(r.at)})` : "",
      ".",
    );
  } else where = el("p", { class: "state" }, `State: ${r.state}`);
  return [
    el("h3", { class: "hash" }, `Transaction ${id}`),
    where,
    txTable([r.tx]),
    rawReply(reply),
  ];
}

/** Transactions as a table whose addresses can be looked up. */
function txTable(txs, withIndex = false) {
  return el(
    "div",
    { class: "scroll" },
    el(
      "table",
      {},
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          withIndex ? el("th", { scope: "col" }, "#") : null,
          ["t", "sender → receiver", "amount"].map((c) => el("th", { scope: "col" }, c)),
        ),
      ),
      el(
        "tbody",
        {},
        txs.map((tx, i) =>
          el(
            "tr",
            {},
            withIndex ? el("td", {}, String(i)) : null,
            el("td", { class: "nowrap" }, showTime(tx.t)),
            el(
              "td",
              { class: "hash" },
              lookupButton(tx.sender),
              el("span", { class: "arrow" }, " → "),
              lookupButton(tx.receiver),
            ),
            el("td", { class: "num" }, String(tx.amount)),
          )
        ),
      ),
    ),
  );
}

async function findAddress(address) {
  const [balance, blocks, pool] = await Promise.all([
    live.request("balance", { address }),
    live.request("blocks", { start: -TRANSFER_BLOCKS }),
    live.request("pool", { limit: POOL_SEARCHED }),
  ]);
  if (balance.status !== 200) {
    return [el("p", { class: "error" }, balance.error), rawReply(balance)];
  }
  const mine = (tx) => tx.sender === address || tx.receiver === address;
  const transfers = [
    ...(pool.response?.pool ?? []).filter(mine).reverse().map((tx) => ({ tx, where: "pool" })),
    ...[...(blocks.response?.blocks ?? [])].reverse().flatMap((b) =>
      b.items.filter(mine).reverse().map((tx) => ({ tx, where: b.height }))
    ),
  ].slice(0, TRANSFERS_SHOWN);
  return [
    el("h3", { class: "hash" }, `Address ${address}`),
    el("p", {}, "Balance on the chain: ", el("strong", {}, String(balance.response.balance))),
    el(
      "p",
      { class: "hint" },
      `Recent transfers (the pool and the latest ${TRANSFER_BLOCKS} blocks, newest first, ` +
        `at most ${TRANSFERS_SHOWN}` +
        (pool.response?.next ? `; only the pool's first ${POOL_SEARCHED} were searched` : "") +
        "):",
    ),
    transfers.length === 0 ? el("p", {}, "None.") : el(
      "div",
      { class: "scroll" },
      el(
        "table",
        {},
        el(
          "thead",
          {},
          el(
            "tr",
            {},
            ["where", "t", "from / to", "amount"].map((c) => el("th", { scope: "col" }, c)),
          ),
        ),
        el(
          "tbody",
          {},
          transfers.map(({ tx, where }) => {
            const out = tx.sender === address;
            return el(
              "tr",
              {},
              el("td", {}, where === "pool" ? "pool" : lookupButton(where, `block ${where}`)),
              el("td", { class: "nowrap" }, showTime(tx.t)),
              el(
                "td",
                { class: "hash" },
                out ? "to " : "from ",
                lookupButton(out ? tx.receiver : tx.sender),
              ),
              el("td", { class: "num" }, `${out ? "-" : "+"}${tx.amount}`),
            );
          }),
        ),
      ),
    ),
  ];
}

async function findHeight(height) {
  const reply = await live.request("blocks", { start: height, limit: 1 });
  if (reply.status !== 200) return [el("p", { class: "error" }, reply.error), rawReply(reply)];
  const [block] = reply.response.blocks;
  if (!block || block.height !== height) {
    return [el("p", { class: "error" }, `No block at height ${height} (the tip is at ${height}).`)];
  }
  return showBlock(block, reply);
}

/** Finds a block whose hash starts with `prefix` among the latest HASH_SEARCH_BLOCKS. */
async function findHash(prefix) {
  let start = Math.max(0, height - HASH_SEARCH_BLOCKS + 1);
  for (let requests = 0; requests < 50 && start !== undefined; requests++) {
    const reply = await live.request("blocks", { start, limit: 100 });
    if (reply.status !== 200) return [el("p", { class: "error" }, reply.error)];
    const found = reply.response.blocks.find((b) => b.hash.startsWith(prefix));
    if (found) return showBlock(found, reply);
    start = reply.response.next;
  }
  return [
    el(
      "p",
      { class: "error" },
      `No block with a hash starting ${prefix} among the latest ${HASH_SEARCH_BLOCKS} blocks.`,
    ),
  ];
}

/** A block's time: its proof's, or for a bare lab block (no proof) its last record's `t`. */
function blockTime(block) {
  return block.proof ? block.proof.time : block.items.at(-1)?.t;
}

/** The proof-of-write evidence in words: the rule that held and the pool it held on. */
function describeProof(proof) {
  if (!proof) return "none: a bare lab block (taken only by nodes with --accept-bare-blocks)";
  const span = Number(proof.latest - proof.earliest).toFixed(3);
  return `${proof.rule} rule held on a pool of ${plural(proof.size, "transaction")}, ` +
    `t ${showTime(proof.earliest)} .. ${showTime(proof.latest)} (span ${span} s)`;
}

function showBlock(block, reply) {
  return [
    el("h3", {}, `Block ${block.height}`),
    el(
      "dl",
      { class: "facts" },
      el("dt", {}, "hash"),
      el("dd", { class: "hash" }, block.hash),
      el("dt", {}, "previous"),
      el(
        "dd",
        { class: "hash" },
        block.prev_hash === null
          ? "- (the first block)"
          : lookupButton(block.height - 1, block.prev_hash),
      ),
      el("dt", {}, "records"),
      el("dd", {}, String(block.items.length)),
      el("dt", {}, "time"),
      el("dd", {}, showTime(blockTime(block))),
      el("dt", {}, "proof"),
      el("dd", { class: "proof" }, describeProof(block.proof)),
    ),
    txTable(block.items, true),
    rawReply({ ...reply, response: { blocks: [block] } }),
  ];
}

// ---- send ---------------------------------------------------------------------------------

async function send(event) {
  event.preventDefault();
  const amountText = $("amount").value.trim();
  const request = {
    op: "merge",
    args: {
      pool: [{
        sender: $("sender").value.trim() || GENESIS,
        receiver: $("receiver").value.trim(),
        amount: DIGITS.test(amountText) ? Number(amountText) : amountText,
      }],
      verbose: true,
    },
  };
  const out = $("send-result");
  out.replaceChildren(el("p", { class: "hint" }, "Sending..."));
  try {
    const reply = await live.send(JSON.stringify(request));
    const [id] = reply.response?.accepted ?? [];
    out.replaceChildren(
      el("p", { class: reply.status < 400 ? "ok" : "error" }, `${reply.status} ${reply.error}`),
      id ? el("p", { class: "hash" }, "Transaction ", lookupButton(id)) : null,
      el(
        "details",
        { class: "raw" },
        el("summary", {}, "request and reply"),
        el("pre", {}, pretty(request)),
        el("pre", {}, pretty(reply)),
      ),
    );
  } catch (error) {
    out.replaceChildren(el("p", { class: "error" }, error.message));
  }
}

// ---- request console ----------------------------------------------------------------------

let consoleLink = null;
/** The console's own connection, so what is typed there never disturbs the live view. */
function consoleConnection() {
  if (consoleLink) return Promise.resolve(consoleLink);
  return new Promise((resolve) => {
    consoleLink = new NodeLink(nodeUrl(location), {
      onOpen: () => resolve(consoleLink),
      onEvent: (e) => addEntry("event", pretty(e)),
    });
    consoleLink.start();
  });
}

/** A transcript entry, newest first: the request, then its reply (or an event). */
function addEntry(kind, text) {
  const entry = el("li", { class: kind }, part(kind, text));
  $("transcript").prepend(entry);
  return entry;
}

function part(kind, text) {
  return el(
    "div",
    { class: `part ${kind}` },
    el("span", { class: "tag" }, kind),
    el("pre", {}, text),
  );
}

async function sendRequest(text) {
  if (text.trim() === "") return;
  const entry = addEntry("request", text);
  try {
    const link = await consoleConnection();
    entry.append(part("reply", pretty(await link.send(text))));
  } catch (error) {
    entry.append(part("error", error.message));
  }
}

// ---- wiring -------------------------------------------------------------------------------

$("ws-url").textContent = nodeUrl(location);
$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  search($("search").value);
});
$("send-form").addEventListener("submit", send);
$("console-form").addEventListener("submit", (e) => {
  e.preventDefault();
  sendRequest($("request").value);
});
$("request").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
    e.preventDefault();
    sendRequest($("request").value);
  }
});
$("clear").addEventListener("click", () => $("transcript").replaceChildren());
$("examples").append(
  ...EXAMPLES.map(([label, request]) =>
    el("button", {
      type: "button",
      class: "example",
      onclick: () => {
        $("request").value = JSON.stringify(request);
        sendRequest($("request").value);
      },
    }, label)
  ),
);
live.start();
