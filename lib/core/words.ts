/** Wording shared by logs, replies and command output. */

/**
 * A count with its noun, singular for exactly one: `plural(1, "block")` is "1 block",
 * `plural(3, "block")` is "3 blocks". Give `many` for an irregular plural.
 */
export function plural(n: number, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : many}`;
}
