/**
 * What a chaos or fuzz run reports: counters shown as a table, and violations (each a broken
 * guarantee, with enough detail to find it). A run with any violation exits 1.
 */
import { table } from "../../lib/cli/cli.ts";

/** The outcome of a run: numbers to show and guarantees that failed. */
export class Summary {
  readonly #counts = new Map<string, number | string>();
  readonly violations: string[] = [];

  /** A tool's summary, titled `title`. */
  constructor(readonly title: string) {}

  /** Adds `n` to a counter (created at 0). */
  add(name: string, n = 1): void {
    const now = this.#counts.get(name);
    this.#counts.set(name, (typeof now === "number" ? now : 0) + n);
  }

  /** Sets a row to a value (a number or a text such as "12.3 s"). */
  set(name: string, value: number | string): void {
    this.#counts.set(name, value);
  }

  /** A counter's value (0 when never added to). */
  get(name: string): number {
    const v = this.#counts.get(name);
    return typeof v === "number" ? v : 0;
  }

  /** Records a broken guarantee. Only the first 1,000 are kept; all are counted. */
  violate(what: string): void {
    if (this.violations.length < 1000) this.violations.push(what);
    this.add("violations");
  }

  /** True when no guarantee was broken. */
  get ok(): boolean {
    return this.get("violations") === 0;
  }

  /** The rows, for a JSON report. */
  rows(): Record<string, number | string> {
    return Object.fromEntries(this.#counts);
  }

  /** Prints the summary (as JSON with `json`) and returns the tool's exit code. */
  print(json = false): number {
    console.log(
      json
        ? JSON.stringify({ ok: this.ok, ...this.rows(), violations: this.violations })
        : this.render(),
    );
    return this.ok ? 0 : 1;
  }

  /** The summary as text: a table of the counters, then the violations (first 20). */
  render(): string {
    const rows = [...this.#counts].map(([k, v]) => [k, typeof v === "number" ? fmt(v) : v]);
    const lines = [this.title, table(["measure", "value"], rows)];
    if (this.violations.length > 0) {
      lines.push(`VIOLATIONS (${this.get("violations")}):`);
      for (const v of this.violations.slice(0, 20)) lines.push(`  - ${v}`);
      if (this.violations.length > 20) lines.push(`  ... and ${this.violations.length - 20} more`);
    } else {
      lines.push("No violations.");
    }
    return lines.join("\n");
  }
}

function fmt(n: number): string {
  return Number.isInteger(n) ? n.toLocaleString("en-US") : n.toFixed(2);
}
