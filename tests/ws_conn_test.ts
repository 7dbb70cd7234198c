/**
 * The WebSocket link (lib/net/ws_conn.ts): against a real node for what a node does (order,
 * large messages, close), against a scripted raw server for what a node never does (fragments,
 * pings, close frames, silence, broken frames and upgrades), and over TLS when openssl can make
 * a certificate. Deadlines run on a fake scheduler: no test waits for them in real time.
 */
import assert from "node:assert/strict";
import { GENESIS } from "../lib/core/params.ts";
import { BadReply, DeadlineExceeded, DialFailed, LinkBusy, LinkClosed } from "../lib/net/link.ts";
import { WsConn } from "../lib/net/ws_conn.ts";
import { addr } from "./fixtures/helpers.ts";
import { fakeScheduler } from "./fixtures/net.ts";
import { poll, unusedPort, withNode } from "./fixtures/node.ts";
import {
  acceptFor,
  closeBody,
  type RawPeer,
  serverFrame,
  withRawServer,
} from "./fixtures/raw_ws_server.ts";

const OK = (response: Record<string, unknown>) => ({ status: 200, error: "OK", response });

/** Connects, runs `body`, and always closes and waits for the link to be released. */
async function withLink<T>(
  url: string,
  body: (link: WsConn) => Promise<T>,
  opts: Parameters<typeof WsConn.connect>[1] = {},
): Promise<T> {
  const link = await WsConn.connect(url, opts);
  try {
    return await body(link);
  } finally {
    link.close("test over");
    await link.closed;
  }
}

/** A script that answers each request with `reply(request)` until the client goes away. */
function answering(reply: (request: { op: string }) => unknown) {
  return async (peer: RawPeer) => {
    while (true) {
      const frame = await peer.readFrame();
      if (!frame || frame.opcode === 0x8) return;
      if (frame.opcode !== 0x1) continue;
      const request = JSON.parse(new TextDecoder().decode(frame.payload));
      await peer.send(JSON.stringify(reply(request)));
    }
  };
}

/** A script that ignores requests and answers a close frame, until the client goes away. */
async function silent(peer: RawPeer): Promise<void> {
  for (let frame = await peer.readFrame(); frame; frame = await peer.readFrame()) {
    if (frame.opcode === 0x8) await peer.write(serverFrame(0x8, frame.payload));
  }
}

// ---- against a node ---------------------------------------------------------------------------

Deno.test("requests sent at once on one link are answered in order", async () => {
  await withNode(async (node) => {
    await withLink(node.url, async (link) => {
      const requests: Promise<{ status: number; response?: Record<string, unknown> | null }>[] = [];
      for (let i = 0; i < 40; i++) {
        requests.push(
          link.request("merge", { pool: [{ sender: GENESIS, receiver: addr(i), amount: 1 }] }),
        );
        requests.push(link.request("pool"));
      }
      const replies = await Promise.all(requests);
      for (let i = 0; i < 40; i++) {
        assert.equal(replies[2 * i].status, 202);
        assert.equal((replies[2 * i + 1].response!.pool as unknown[]).length, i + 1);
      }
    });
  });
});

Deno.test("a request and a reply over 1 MiB go through (64-bit frame lengths)", async () => {
  await withNode(async (node) => {
    await withLink(node.url, async (link) => {
      const pool = Array.from({ length: 10_000 }, (_, i) => ({
        sender: GENESIS,
        receiver: addr(i),
        amount: i + 1,
      }));
      assert.ok(JSON.stringify({ op: "merge", args: { pool } }).length > 1 << 20);
      assert.deepEqual(await link.request("merge", { pool }), { status: 202, error: "Accepted" });
      const reply = await link.request("pool", { limit: 10_000 });
      assert.ok(JSON.stringify(reply).length > 1 << 20);
      assert.equal((reply.response!.pool as unknown[]).length, 10_000);
    });
  }, { limits: { maxMessageBytes: 4 << 20 } });
});

Deno.test("a reply over maxMessageBytes closes the link and says why", async () => {
  await withNode(async (node) => {
    const link = await WsConn.connect(node.url, { maxMessageBytes: 4096 });
    const pool = Array.from({ length: 100 }, (_, i) => ({
      sender: GENESIS,
      receiver: addr(i),
      amount: 1,
    }));
    assert.equal((await link.request("merge", { pool })).status, 202);
    await assert.rejects(link.request("pool"), (e) => {
      assert.ok(e instanceof LinkClosed);
      assert.match(e.reason, /a message over 4096 bytes/);
      return true;
    });
    assert.match(await link.closed, /a message over 4096 bytes/);
    await poll("the node to see the link closed", () => node.server.connections() === 0);
  });
});

Deno.test("close() ends the link cleanly: the node sees it go, later requests reject", async () => {
  await withNode(async (node) => {
    const link = await WsConn.connect(node.url);
    assert.deepEqual(await link.request("peers"), OK({ peers: [] }));
    await poll("the node to count the link", () => node.server.connections() === 1);
    link.close("done here");
    assert.equal(await link.closed, "done here");
    await poll("the node to see the link closed", () => node.server.connections() === 0);
    await assert.rejects(
      link.request("peers"),
      (e) => e instanceof LinkClosed && /done here/.test(e.message),
    );
  });
});

Deno.test("a node shutting down closes the link; later requests reject with LinkClosed", async () => {
  await withNode(async (node) => {
    const link = await WsConn.connect(node.url);
    assert.equal((await link.request("time")).status, 200);
    await node.server.shutdown();
    assert.match(await link.closed, /closed the link \(1001 /);
    await assert.rejects(link.request("time"), LinkClosed);
  });
});

// ---- deadlines and bounds ---------------------------------------------------------------------

Deno.test("a request past its deadline rejects with DeadlineExceeded and closes the link", async () => {
  const scheduler = fakeScheduler();
  await withRawServer(silent, async (server) => {
    const link = await WsConn.connect(server.url, { scheduler });
    const late = link.request("time", undefined, { deadlineMs: 500 });
    const behind = link.request("pool", undefined, { deadlineMs: 5_000 });
    const lateFailed = assert.rejects(late, (e) => {
      assert.ok(e instanceof DeadlineExceeded);
      assert.equal(e.op, "time");
      assert.equal(e.deadlineMs, 500);
      return true;
    });
    const behindFailed = assert.rejects(behind, (e) => {
      assert.ok(e instanceof LinkClosed);
      assert.match(e.reason, /no reply to "time" within 500 ms/);
      return true;
    });
    scheduler.tick(499);
    assert.equal(link.inFlight, 2);
    scheduler.tick(1);
    await lateFailed;
    await behindFailed;
    assert.match(await link.closed, /no reply to "time" within 500 ms/);
  });
});

Deno.test("a request without a deadline gets the link's default one", async () => {
  const scheduler = fakeScheduler();
  await withRawServer(silent, async (server) => {
    const link = await WsConn.connect(server.url, { scheduler, deadlineMs: 2_000 });
    const request = link.request("time");
    const failed = assert.rejects(request, DeadlineExceeded);
    scheduler.tick(1_999);
    assert.equal(link.inFlight, 1);
    scheduler.tick(1);
    await failed;
    await link.closed;
  });
});

Deno.test("past maxInFlight a request rejects with LinkBusy and the link stays up", async () => {
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  await withRawServer(async (peer) => {
    const texts = [await peer.readText(), await peer.readText()];
    await released;
    for (const text of texts) {
      await peer.send(JSON.stringify(OK({ op: JSON.parse(text).op })));
    }
    await silent(peer);
  }, async (server) => {
    await withLink(server.url, async (link) => {
      const first = link.request("a");
      const second = link.request("b");
      await assert.rejects(link.request("c"), LinkBusy);
      release();
      assert.deepEqual(await first, OK({ op: "a" }));
      assert.deepEqual(await second, OK({ op: "b" }));
    }, { maxInFlight: 2 });
  });
});

Deno.test("a reply that is not an envelope rejects with BadReply; the link goes on", async () => {
  let n = 0;
  await withRawServer(async (peer) => {
    await peer.readText();
    await peer.send("this is not JSON");
    await peer.readText();
    await peer.send("[1, 2]");
    await answering(() => OK({ n: ++n }))(peer);
  }, async (server) => {
    await withLink(server.url, async (link) => {
      await assert.rejects(link.request("time"), (e) => {
        assert.ok(e instanceof BadReply);
        assert.match(e.message, /answered "time" with this is not JSON/);
        return true;
      });
      await assert.rejects(link.request("time"), BadReply);
      assert.deepEqual(await link.request("time"), OK({ n: 1 }));
    });
  });
});

// ---- what the server sends --------------------------------------------------------------------

Deno.test("a fragmented reply with a ping inside is reassembled; the ping gets its pong", async () => {
  let pong: Uint8Array | undefined;
  await withRawServer(async (peer) => {
    await peer.readText();
    const text = JSON.stringify(OK({ text: "é".repeat(200) }));
    const bytes = new TextEncoder().encode(text);
    const cut = text.indexOf("é") + 1; // inside the two bytes of "é"
    await peer.write(serverFrame(0x1, bytes.subarray(0, cut), { fin: false }));
    await peer.write(serverFrame(0x9, "are you there?"));
    await peer.write(serverFrame(0x0, bytes.subarray(cut, 300), { fin: false }));
    await peer.write(serverFrame(0x0, bytes.subarray(300)));
    const frame = await peer.readFrame();
    assert.equal(frame?.opcode, 0xa);
    assert.ok(frame.masked);
    pong = frame.payload;
    await silent(peer);
  }, async (server) => {
    await withLink(server.url, async (link) => {
      assert.deepEqual(await link.request("status"), OK({ text: "é".repeat(200) }));
      await poll("the pong", () => pong !== undefined);
      assert.equal(new TextDecoder().decode(pong), "are you there?");
    });
  });
});

Deno.test("pings sent faster than pongs are written get one pong, for the latest", async () => {
  const pongs: string[] = [];
  await withRawServer(async (peer) => {
    const pings = Array.from({ length: 1000 }, (_, i) => serverFrame(0x9, String(i)));
    const all = new Uint8Array(pings.reduce((n, p) => n + p.length, 0));
    pings.reduce((at, p) => (all.set(p, at), at + p.length), 0);
    await peer.write(all);
    for (let frame = await peer.readFrame(); frame; frame = await peer.readFrame()) {
      if (frame.opcode === 0xa) pongs.push(new TextDecoder().decode(frame.payload));
      if (frame.opcode === 0x1) await peer.send(JSON.stringify(OK({})));
      if (frame.opcode === 0x8) await peer.write(serverFrame(0x8, frame.payload));
    }
  }, async (server) => {
    await withLink(server.url, async (link) => {
      // The reply comes after the pings on the wire: when it is here, they were handled.
      assert.deepEqual(await link.request("time"), OK({}));
    });
  });
  assert.ok(pongs.length >= 1 && pongs.length < 1000, `${pongs.length} pongs`);
  assert.equal(pongs.at(-1), "999");
});

Deno.test("a server's close frame rejects waiting requests with its code and reason and is answered", async () => {
  let answer: { code: number | null; reason: string } | undefined;
  await withRawServer(async (peer) => {
    await peer.readText();
    await peer.write(serverFrame(0x8, closeBody(1001, "maintenance")));
    answer = await peer.readClose();
  }, async (server) => {
    const link = await WsConn.connect(server.url);
    await assert.rejects(link.request("time"), (e) => {
      assert.ok(e instanceof LinkClosed);
      assert.equal(e.reason, `${server.url} closed the link (1001 maintenance)`);
      return true;
    });
    assert.equal(await link.closed, `${server.url} closed the link (1001 maintenance)`);
    await poll("the close answer", () => answer !== undefined);
    assert.equal(answer!.code, 1001);
  });
});

Deno.test("a server that drops the connection: waiting requests reject with LinkClosed", async () => {
  await withRawServer(async (peer) => {
    await peer.readText();
    peer.close();
  }, async (server) => {
    const link = await WsConn.connect(server.url);
    await assert.rejects(link.request("time"), (e) => {
      assert.ok(e instanceof LinkClosed);
      assert.match(e.reason, /dropped the connection|connection error/);
      return true;
    });
    await link.closed;
  });
});

Deno.test("close() sends the reason in a close frame and ends when the server answers", async () => {
  let got: { code: number | null; reason: string } | undefined;
  const scheduler = fakeScheduler(); // never ticked: the close must not wait for its timeout
  await withRawServer(async (peer) => {
    got = await peer.readClose();
    await peer.write(serverFrame(0x8, closeBody(1000)));
    await silent(peer);
  }, async (server) => {
    const link = await WsConn.connect(server.url, { scheduler });
    link.close("going home");
    assert.equal(await link.closed, "going home");
    assert.deepEqual(got, { code: 1000, reason: "going home" });
  });
});

Deno.test("close() drops the connection after closeTimeoutMs when the server never answers", async () => {
  const scheduler = fakeScheduler();
  let heard = false;
  await withRawServer(async (peer) => {
    await peer.readClose();
    heard = true;
    while (await peer.readFrame()); // no answer
  }, async (server) => {
    const link = await WsConn.connect(server.url, { scheduler, closeTimeoutMs: 1_000 });
    let done = false;
    link.closed.then(() => (done = true));
    link.close();
    await poll("the server to get the close frame", () => heard);
    scheduler.tick(999);
    assert.equal(done, false);
    scheduler.tick(1);
    assert.equal(await link.closed, "closed");
  });
});

Deno.test("server frames that break RFC 6455 close the link with the matching code", async () => {
  const cases: {
    name: string;
    bytes: Uint8Array[];
    code: number;
    reason: RegExp;
    maxMessageBytes?: number;
  }[] = [
    {
      name: "fragments adding up past the cap",
      bytes: [
        serverFrame(0x1, "x".repeat(400), { fin: false }),
        serverFrame(0x0, "x".repeat(400), { fin: false }),
        serverFrame(0x0, "x".repeat(400)),
      ],
      code: 1009,
      reason: /over 1000 bytes/,
      maxMessageBytes: 1000,
    },
    {
      name: "masked",
      bytes: [serverFrame(0x1, "{}", { mask: true })],
      code: 1002,
      reason: /masked/,
    },
    {
      name: "reserved bits",
      bytes: [serverFrame(0x1, "{}", { rsv: 4 })],
      code: 1002,
      reason: /reserved/,
    },
    { name: "unknown opcode", bytes: [serverFrame(0x3, "{}")], code: 1002, reason: /opcode 3/ },
    {
      name: "lone continuation",
      bytes: [serverFrame(0x0, "{}")],
      code: 1002,
      reason: /continuation/,
    },
    {
      name: "message inside a message",
      bytes: [serverFrame(0x1, "{", { fin: false }), serverFrame(0x1, "}")],
      code: 1002,
      reason: /inside a fragmented/,
    },
    {
      name: "fragmented ping",
      bytes: [serverFrame(0x9, "x", { fin: false })],
      code: 1002,
      reason: /control frame/,
    },
    {
      name: "long ping",
      bytes: [serverFrame(0x9, "x".repeat(126))],
      code: 1002,
      reason: /control frame/,
    },
    {
      name: "bad UTF-8",
      bytes: [serverFrame(0x1, new Uint8Array([0x22, 0xff, 0x22]))],
      code: 1007,
      reason: /not UTF-8/,
    },
    { name: "binary", bytes: [serverFrame(0x2, "{}")], code: 1003, reason: /binary/ },
    {
      name: "huge announced length",
      bytes: [serverFrame(0x1, "", { length: 2 ** 40 })],
      code: 1009,
      reason: /over 33554432 bytes/,
    },
    {
      name: "unasked reply",
      bytes: [serverFrame(0x1, JSON.stringify(OK({}))), serverFrame(0x1, JSON.stringify(OK({})))],
      code: 1008,
      reason: /reply to no request/,
    },
  ];
  for (const c of cases) {
    let got: { code: number | null; reason: string } | undefined;
    await withRawServer(async (peer) => {
      await peer.readText();
      for (const bytes of c.bytes) await peer.write(bytes);
      got = await peer.readClose();
    }, async (server) => {
      const link = await WsConn.connect(server.url, { maxMessageBytes: c.maxMessageBytes });
      const reply = link.request("time").catch((e) => e);
      assert.match(await link.closed, c.reason, c.name);
      await reply;
      await poll(`the close frame (${c.name})`, () => got !== undefined);
      assert.equal(got!.code, c.code, c.name);
    });
  }
});

// ---- dialling ---------------------------------------------------------------------------------

Deno.test("dialling fails with DialFailed of the right kind", async () => {
  const fails = async (url: string, kind: string, message: RegExp) => {
    await assert.rejects(WsConn.connect(url), (e) => {
      assert.ok(e instanceof DialFailed, String(e));
      assert.equal(e.kind, kind, e.message);
      assert.match(e.message, message);
      return true;
    });
  };
  await fails("not a url", "url", /bad URL not a url/);
  await fails("http://127.0.0.1:9/ws", "url", /only ws:\/\/ and wss:\/\//);
  const nobody = `ws://127.0.0.1:${unusedPort()}/ws`;
  await fails(nobody, "connect", new RegExp(`cannot reach ${nobody}: .*refused`, "i"));
  await withNode(async (node) => {
    const wrongPath = node.url.replace(/\/ws$/, "/nope");
    await fails(wrongPath, "upgrade", /refused the WebSocket upgrade: HTTP\/1\.1 404/);
  });
  await withRawServer(silent, async (server) => {
    await fails(server.url, "upgrade", /wrong Sec-WebSocket-Accept/);
  }, {
    upgrade: async (key) =>
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${await acceptFor(key + "x")}`,
  });
  await withRawServer(silent, async (server) => {
    await fails(server.url, "upgrade", /extension nobody asked for/);
  }, {
    upgrade: async (key) =>
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
      `Sec-WebSocket-Accept: ${await acceptFor(
        key,
      )}\r\nSec-WebSocket-Extensions: permessage-deflate`,
  });
});

Deno.test("a server that never answers the upgrade fails the dial at its timeout", async () => {
  const scheduler = fakeScheduler();
  await withRawServer(silent, async (server) => {
    const dial = WsConn.connect(server.url, { scheduler, timeoutMs: 3_000 });
    const failed = assert.rejects(dial, (e) => {
      assert.ok(e instanceof DialFailed);
      assert.equal(e.kind, "timeout");
      assert.match(e.message, /no link to .*: no WebSocket link within 3000 ms/);
      return true;
    });
    await poll("the server to accept", () => server.accepted() === 1);
    scheduler.tick(3_000);
    await failed;
  }, { upgrade: () => null });
});

Deno.test("an aborted dial fails at once with DialFailed of kind aborted", async () => {
  await withRawServer(silent, async (server) => {
    const abort = new AbortController();
    const dial = WsConn.connect(server.url, { scheduler: fakeScheduler(), signal: abort.signal });
    const failed = assert.rejects(dial, (e) => e instanceof DialFailed && e.kind === "aborted");
    await poll("the server to accept", () => server.accepted() === 1);
    abort.abort();
    await failed;
  }, { upgrade: () => null });
});

// ---- TLS --------------------------------------------------------------------------------------

/** A CA and a leaf certificate for localhost and 127.0.0.1, made by openssl; null without it. */
async function makeCertificates(
  dir: string,
): Promise<{ ca: string; cert: string; key: string } | null> {
  const run = async (args: string[]) => {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  };
  try {
    await run(["version"]);
  } catch {
    return null;
  }
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  await run([
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
    "-days",
    "2",
    "-subj",
    "/CN=foxchain test CA",
  ]);
  await run(["req", ...ec, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=localhost"]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
      "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
  );
  await run([
    "x509",
    "-req",
    "-in",
    "leaf.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "leaf.pem",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
  ]);
  return {
    ca: await Deno.readTextFile(`${dir}/ca.pem`),
    cert: await Deno.readTextFile(`${dir}/leaf.pem`),
    key: await Deno.readTextFile(`${dir}/leaf.key`),
  };
}

Deno.test("wss:// links verify the server's certificate and carry requests", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "foxchain-tls-" });
  try {
    const pems = await makeCertificates(dir);
    if (!pems) {
      console.warn("openssl is not installed: the wss:// test is skipped");
      return;
    }
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert: pems.cert, key: pems.key, onListen() {} },
      (req) => {
        const { socket, response } = Deno.upgradeWebSocket(req);
        socket.onmessage = (e) => socket.send(JSON.stringify(OK({ echo: JSON.parse(e.data) })));
        return response;
      },
    );
    try {
      const port = server.addr.port;
      await t.step("with the CA, by name and by address", async () => {
        for (const host of ["localhost", "127.0.0.1"]) {
          await withLink(`wss://${host}:${port}/ws`, async (link) => {
            const pad = "x".repeat(100_000);
            assert.deepEqual(
              await link.request("time", { pad }),
              OK({ echo: { op: "time", args: { pad } } }),
            );
          }, { caCerts: [pems.ca] });
        }
      });
      await t.step("without it, the dial fails", async () => {
        await assert.rejects(WsConn.connect(`wss://localhost:${port}/ws`), (e) => {
          assert.ok(e instanceof DialFailed);
          assert.equal(e.kind, "connect");
          assert.match(e.message, /certificate/);
          return true;
        });
      });
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
