/** Runs Deno.bench files in a `deno bench --json` subprocess and reads their results. */

/** One benchmark's result: mean nanoseconds per iteration over `n` iterations. */
export interface BenchStat {
  name: string;
  group: string | null;
  n: number;
  avgNs: number;
  p75Ns: number;
  p99Ns: number;
}

interface BenchJson {
  benches: {
    name: string;
    group: string | null;
    results: ({ ok: { n: number; avg: number; p75: number; p99: number } } | { failed: unknown })[];
  }[];
}

/** Runs `deno bench -A --json` on `files` (paths relative to bench/), with extra env. */
export async function runBenchFiles(
  files: string[],
  env: Record<string, string> = {},
): Promise<Map<string, BenchStat>> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["bench", "-A", "--json", ...files.map((f) => new URL(f, import.meta.url).pathname)],
    cwd: new URL("../", import.meta.url),
    env,
    signal: AbortSignal.timeout(5 * 60_000), // killed if it ever hangs
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `deno bench ${files.join(" ")} failed:\n${new TextDecoder().decode(out.stderr).slice(-3000)}`,
    );
  }
  const json = JSON.parse(text) as BenchJson;
  const stats = new Map<string, BenchStat>();
  for (const bench of json.benches) {
    const result = bench.results[0];
    if (!result || !("ok" in result)) throw new Error(`benchmark "${bench.name}" failed`);
    stats.set(bench.name, {
      name: bench.name,
      group: bench.group,
      n: result.ok.n,
      avgNs: result.ok.avg,
      p75Ns: result.ok.p75,
      p99Ns: result.ok.p99,
    });
  }
  return stats;
}

/** The stat named `name`, or an error naming what is there. */
export function stat(stats: Map<string, BenchStat>, name: string): BenchStat {
  const s = stats.get(name);
  if (!s) throw new Error(`no benchmark "${name}" (have: ${[...stats.keys()].join("; ")})`);
  return s;
}
