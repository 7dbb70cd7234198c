// A WebSocket link to the node, as the lab's clients use it: every request gets exactly one
// reply, in order, so replies are matched to requests by position. Events the node pushes
// after a `subscribe` carry `event` and no `status`, and go to `onEvent` instead. The link
// reconnects by itself (after 0.5 s, then up to 8 s apart) and calls `onOpen` each time.

/** True for a pushed event rather than a reply. */
export function isEvent(message) {
  return typeof message === "object" && message !== null && !("status" in message) &&
    typeof message.event === "string";
}

/** The node's WebSocket URL, on the host that served this page. */
export function nodeUrl(location) {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

export class NodeLink {
  #url;
  #socket = null;
  #pending = [];
  #retry = 500;
  #timer = 0;
  #stopped = false;

  /**
   * @param {string} url the node's ws:// URL
   * @param {{onOpen?: () => void, onEvent?: (e: object) => void,
   *   onState?: (state: string) => void, onText?: (text: string, isEvent: boolean) => void}} on
   */
  constructor(url, on = {}) {
    this.#url = url;
    this.on = on;
  }

  /** Connects (and keeps reconnecting until `stop`). */
  start() {
    this.#stopped = false;
    this.#connect();
  }

  /** Closes for good. */
  stop() {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#socket?.close();
  }

  /** True while connected. */
  get open() {
    return this.#socket?.readyState === WebSocket.OPEN;
  }

  /** Sends `{"op", "args"}` and resolves with the node's reply. */
  request(op, args) {
    return this.send(JSON.stringify(args === undefined ? { op } : { op, args }));
  }

  /** Sends a raw text message and resolves with the reply, parsed when it is JSON. */
  send(text) {
    if (!this.open) return Promise.reject(new Error("not connected to the node"));
    return new Promise((resolve, reject) => {
      this.#pending.push({ resolve, reject });
      this.#socket.send(text);
    });
  }

  #connect() {
    this.on.onState?.("connecting");
    let socket;
    try {
      socket = new WebSocket(this.#url);
    } catch (error) {
      this.on.onState?.(`cannot connect: ${error.message}`);
      return;
    }
    this.#socket = socket;
    socket.onopen = () => {
      this.#retry = 500;
      this.on.onState?.("live");
      this.on.onOpen?.();
    };
    socket.onmessage = (message) => {
      const text = String(message.data);
      let parsed;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      const event = isEvent(parsed);
      this.on.onText?.(text, event);
      if (event) {
        this.on.onEvent?.(parsed);
        return;
      }
      this.#pending.shift()?.resolve(parsed);
    };
    socket.onclose = () => {
      if (this.#socket !== socket) return;
      this.#socket = null;
      for (const waiter of this.#pending.splice(0)) {
        waiter.reject(new Error("the connection to the node closed"));
      }
      if (this.#stopped) return;
      const seconds = this.#retry / 1000;
      this.on.onState?.(`offline, retrying in ${seconds} s`);
      this.#timer = setTimeout(() => this.#connect(), this.#retry);
      this.#retry = Math.min(this.#retry * 2, 8000);
    };
  }
}
