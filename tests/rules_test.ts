import assert from "node:assert/strict";
import {
  checkRule,
  DEFAULT_RULES,
  describeRules,
  type PoolStats,
  type Rule,
  shouldCut,
} from "../lib/core/rules.ts";
import { T0 } from "./fixtures/helpers.ts";

const EMPTY: PoolStats = { size: 0, earliest: null, latest: null };
const pool = (size: number, earliest: number, latest: number): PoolStats => ({
  size,
  earliest,
  latest,
});

Deno.test("default rules: the homework's span of 180 s, with a 10-minute age rule behind it", () => {
  assert.deepEqual(DEFAULT_RULES, [{ kind: "span", seconds: 180 }, { kind: "age", seconds: 600 }]);
  assert.equal(describeRules(DEFAULT_RULES), "span >= 180 s or age >= 600 s");
  // A lone transaction (span 0) is packed once it is 10 minutes old, and not before.
  const lone = pool(1, T0, T0);
  assert.equal(shouldCut(DEFAULT_RULES, lone, T0 + 599.999).cut, false);
  assert.equal(shouldCut(DEFAULT_RULES, lone, T0 + 600).cut, true);
});

Deno.test("no rule holds on an empty pool, whatever the time", () => {
  const rules: Rule[] = [
    { kind: "span", seconds: 0 },
    { kind: "count", size: 0 },
    { kind: "age", seconds: 0 },
  ];
  for (const rule of rules) {
    assert.deepEqual(checkRule(rule, EMPTY, T0 + 1e6), [false, "pool is empty"]);
  }
  assert.equal(shouldCut(rules, EMPTY, T0).cut, false);
});

Deno.test("span: latest - earliest >= seconds, exact at the boundary", () => {
  const span: Rule = { kind: "span", seconds: 180 };
  assert.equal(checkRule(span, pool(2, T0, T0 + 179.999), T0 + 1e4)[0], false);
  assert.equal(checkRule(span, pool(2, T0, T0 + 179.999999), T0)[0], false);
  assert.equal(checkRule(span, pool(2, T0, T0 + 180), T0)[0], true);
  assert.equal(checkRule(span, pool(2, T0 + 0.1, T0 + 180.1), T0)[0], true);
  assert.equal(checkRule(span, pool(2, T0, T0 + 3600), T0)[0], true);
  // A lone record spans 0 s: the span rule alone never fires for it (lab defect 6).
  assert.equal(checkRule(span, pool(1, T0, T0), T0 + 1e6)[0], false);
  const [, reason] = checkRule(span, pool(2, T0, T0 + 179.999), T0);
  assert.equal(reason, "pool spans 179.999 s, rule needs 180 s");
  // Float seconds such as T0 + 0.7 and T0 + 180.7 must not read as 179.99999999997 s.
  for (let f = 0; f < 1; f += 0.001) {
    assert.equal(checkRule(span, pool(2, T0 + f, T0 + f + 180), T0)[0], true, `offset ${f}`);
  }
});

Deno.test("count: pool size >= size", () => {
  const count: Rule = { kind: "count", size: 3 };
  assert.equal(checkRule(count, pool(2, T0, T0 + 1000), T0)[0], false);
  assert.deepEqual(checkRule(count, pool(3, T0, T0), T0), [
    true,
    "pool holds 3 records, rule needs 3",
  ]);
  assert.equal(checkRule(count, pool(1000, T0, T0), T0)[0], true);
});

Deno.test("age: now - earliest >= seconds, exact at the boundary, releases a lone record", () => {
  const age: Rule = { kind: "age", seconds: 180 };
  const lone = pool(1, T0, T0);
  assert.equal(checkRule(age, lone, T0)[0], false);
  assert.equal(checkRule(age, lone, T0 + 179.999)[0], false);
  assert.equal(checkRule(age, lone, T0 + 179.999999)[0], false);
  assert.equal(checkRule(age, lone, T0 + 180)[0], true);
  assert.equal(checkRule(age, lone, T0 + 1e4)[0], true);
  // Only the earliest record counts, not the latest.
  assert.equal(checkRule(age, pool(2, T0, T0 + 179), T0 + 180)[0], true);
  assert.equal(checkRule(age, pool(2, T0 + 1, T0 + 2), T0 + 180)[0], false);
  // A record from the future (allowed up to MAX_FUTURE_SECONDS) is not old.
  assert.equal(checkRule(age, pool(1, T0 + 100, T0 + 100), T0)[0], false);
  assert.equal(
    checkRule(age, lone, T0 + 179.999)[1],
    "oldest record is 179.999 s old, rule needs 180 s",
  );
});

Deno.test("shouldCut: any rule holding cuts, with the reason of the one that holds", () => {
  const rules: Rule[] = [
    { kind: "span", seconds: 180 },
    { kind: "count", size: 3 },
    { kind: "age", seconds: 60 },
  ];
  const none = shouldCut(rules, pool(2, T0, T0 + 10), T0 + 59);
  assert.equal(none.cut, false);
  assert.equal(none.rule, undefined);
  // Every rule's reason is given when none holds.
  assert.match(none.reason, /^span: .*; count: .*; age: .*$/);

  const byCount = shouldCut(rules, pool(3, T0, T0 + 10), T0 + 20);
  assert.deepEqual(byCount, {
    cut: true,
    reason: "count: pool holds 3 records, rule needs 3",
    rule: { kind: "count", size: 3 },
  });

  const bySpan = shouldCut(rules, pool(2, T0, T0 + 180), T0 + 180);
  assert.equal(bySpan.cut, true);
  assert.match(bySpan.reason, /^span: /);
  assert.deepEqual(bySpan.rule, rules[0]);

  const byAge = shouldCut(rules, pool(1, T0, T0), T0 + 60);
  assert.equal(byAge.cut, true);
  assert.match(byAge.reason, /^age: /);
  assert.deepEqual(byAge.rule, rules[2]);

  // Rule order does not change whether a cut happens.
  for (const stats of [pool(2, T0, T0 + 10), pool(3, T0, T0), pool(1, T0, T0)]) {
    for (const now of [T0, T0 + 59.999, T0 + 60]) {
      assert.equal(
        shouldCut([...rules].reverse(), stats, now).cut,
        shouldCut(rules, stats, now).cut,
      );
    }
  }
});

Deno.test("describeRules names every rule", () => {
  assert.equal(
    describeRules([{ kind: "span", seconds: 180 }, { kind: "count", size: 3 }, {
      kind: "age",
      seconds: 30,
    }]),
    "span >= 180 s or count >= 3 or age >= 30 s",
  );
});
