/**
 * Logging through LogTape, in the lab's format: `[2021-04-27 00:06:25,074] Pool is cleared.`
 */
import { configure, getLogger, type Logger, type LogRecord } from "@logtape/logtape";

/** The logger of one part of foxchain, e.g. `logger("builder")`. */
export function logger(part: string): Logger {
  return getLogger(["foxchain", part]);
}

function stamp(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())},${p(d.getMilliseconds(), 3)}`;
}

/** A logged value as text: strings as they are, errors with their stack, the rest as JSON. */
function showPart(part: unknown): string {
  if (typeof part === "string") return part;
  // JSON.stringify gives "{}" for an Error; its stack names the cause and where it was thrown.
  if (part instanceof Error) return part.stack ?? `${part.name}: ${part.message}`;
  try {
    return JSON.stringify(part) ?? String(part);
  } catch {
    return String(part);
  }
}

/** Formats a record as the lab's Python logging did, with the level for warnings and errors. */
export function formatRecord(record: LogRecord): string {
  const text = record.message.map(showPart).join("");
  const level = record.level === "warning" || record.level === "error" || record.level === "fatal"
    ? `${record.level.toUpperCase()} `
    : "";
  return `[${stamp(record.timestamp)}] ${level}${text}`;
}

/** Sends foxchain's logs to stderr; `debug` shows the details too. Safe to call again. */
export async function setupLogging(opts: { debug?: boolean; quiet?: boolean } = {}): Promise<void> {
  await configure({
    reset: true,
    sinks: {
      // Logs go to stderr, as Python's logging did, so stdout stays for command output.
      stderr: (record: LogRecord) => console.error(formatRecord(record)),
    },
    loggers: [
      { category: ["logtape", "meta"], lowestLevel: "warning", sinks: ["stderr"] },
      {
        category: ["foxchain"],
        lowestLevel: opts.quiet ? "warning" : opts.debug ? "debug" : "info",
        sinks: ["stderr"],
      },
    ],
  });
}
