// Reporting statistics: exact ROC-AUC (ties as one half), Student-t confidence intervals, cosine similarities.
import assert from "node:assert/strict";
import { test } from "node:test";
import { tensor, tidy } from "../../src/engine/index.js";
import { cosineSimilarityMatrix, meanConfidenceInterval, rocAuc, studentTCdf, studentTQuantile } from "../../src/evaluation/metrics.js";
import { Random } from "../../src/miniworld/random.js";

/** The definition: P(positive score > negative score) + ½ P(equal), over every pair. */
function pairwiseAuc(scores: number[], positive: boolean[]): number {
  let total = 0;
  let pairs = 0;
  scores.forEach((p, i) => {
    if (!positive[i]) return;
    scores.forEach((n, j) => {
      if (positive[j]) return;
      total += p > n ? 1 : p === n ? 0.5 : 0;
      pairs += 1;
    });
  });
  return total / pairs;
}

test("rocAuc on hand-worked cases", () => {
  assert.equal(rocAuc([0.1, 0.2, 0.8, 0.9], [false, false, true, true]), 1);
  assert.equal(rocAuc([0.9, 0.8, 0.2, 0.1], [false, false, true, true]), 0);
  // Positive 0.35 beats 0.1 but loses to 0.4; 0.8 beats both: 3 of 4 pairs.
  assert.equal(rocAuc([0.1, 0.4, 0.35, 0.8], [false, false, true, true]), 0.75);
  // A tie counts one half: (0.5 + 1 + 1 + 1) / 4.
  assert.equal(rocAuc([0.5, 0.5, 0.2, 0.9], [true, false, false, true]), 0.875);
  assert.equal(rocAuc([1, 1, 1], [true, false, false]), 0.5);
});

test("rocAuc equals the pairwise definition on random scores with many ties", () => {
  const random = new Random(7);
  for (let trial = 0; trial < 20; trial++) {
    const n = 5 + random.int(60);
    const scores = Array.from({ length: n }, () => Math.round(random.next() * 6) / 6);
    const positive = Array.from({ length: n }, (_, i) => i === 0 || (i !== 1 && random.chance(0.4)));
    const expected = pairwiseAuc(scores, positive);
    assert.ok(Math.abs(rocAuc(scores, positive) - expected) < 1e-12, `trial ${trial}`);
  }
});

test("rocAuc rejects what has no answer", () => {
  assert.throws(() => rocAuc([1, 2], [true, true]), /positives and negatives/);
  assert.throws(() => rocAuc([1, 2, 3], [true, false]), /3 scores but 2 labels/);
  assert.throws(() => rocAuc([1, NaN], [true, false]), /score 1 is NaN/);
});

test("Student t quantiles match closed forms (1, 2 and 4 degrees of freedom) and tables", () => {
  for (const p of [0.6, 0.9, 0.95, 0.975, 0.995]) {
    assert.ok(Math.abs(studentTQuantile(p, 1) - Math.tan(Math.PI * (p - 0.5))) < 1e-9 * Math.tan(Math.PI * (p - 0.5)));
    const df2 = (2 * p - 1) / Math.sqrt(2 * p * (1 - p));
    assert.ok(Math.abs(studentTQuantile(p, 2) - df2) < 1e-10, `df 2, p ${p}`);
    const alpha = 4 * p * (1 - p);
    const q = Math.cos(Math.acos(Math.sqrt(alpha)) / 3) / Math.sqrt(alpha);
    assert.ok(Math.abs(studentTQuantile(p, 4) - 2 * Math.sqrt(q - 1)) < 1e-10, `df 4, p ${p}`);
    assert.ok(Math.abs(studentTQuantile(1 - p, 4) + 2 * Math.sqrt(q - 1)) < 1e-10);
  }
  // Printed tables: t_{0.975, 9} = 2.262157, t_{0.975, 29} = 2.045230, t_{0.995, 9} = 3.249836; large df → z = 1.959964.
  assert.ok(Math.abs(studentTQuantile(0.975, 9) - 2.262157) < 1e-6);
  assert.ok(Math.abs(studentTQuantile(0.975, 29) - 2.04523) < 1e-5);
  assert.ok(Math.abs(studentTQuantile(0.995, 9) - 3.249836) < 1e-6);
  assert.ok(Math.abs(studentTQuantile(0.975, 1e7) - 1.959964) < 1e-6);
  assert.equal(studentTCdf(0, 5), 0.5);
  assert.ok(Math.abs(studentTCdf(studentTQuantile(0.3, 7), 7) - 0.3) < 1e-12);
});

test("meanConfidenceInterval of 1 … 10 is 5.5 ± t_{0.975, 9} · s/√10", () => {
  const ci = meanConfidenceInterval([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const s = Math.sqrt(55 / 6);
  assert.equal(ci.mean, 5.5);
  assert.ok(Math.abs(ci.standardDeviation - s) < 1e-12);
  assert.ok(Math.abs(ci.halfWidth - 2.2621571627 * s / Math.sqrt(10)) < 1e-8);
  assert.ok(Math.abs(ci.low - (5.5 - ci.halfWidth)) < 1e-12 && Math.abs(ci.high - (5.5 + ci.halfWidth)) < 1e-12);
  assert.equal(ci.count, 10);
  const ninety = meanConfidenceInterval([2, 4], 0.9);
  // n = 2: t_{0.95, 1} = tan(0.45π) = 6.3138, s = √2, half width = 6.3138 · √2 / √2.
  assert.ok(Math.abs(ninety.halfWidth - Math.tan(0.45 * Math.PI)) < 1e-8);
  assert.throws(() => meanConfidenceInterval([1]), /at least 2 values/);
  assert.throws(() => meanConfidenceInterval([1, 2], 1), /level/);
});

test("cosineSimilarityMatrix normalises rows", () => {
  tidy(() => {
    const a = tensor([[3, 4], [1, 0]]);
    const b = tensor([[2, 0], [0, 5], [-1, -1]]);
    const similarity = cosineSimilarityMatrix(a, b).toArray() as number[][];
    const expected = [[0.6, 0.8, -7 / (5 * Math.SQRT2)], [1, 0, -1 / Math.SQRT2]];
    similarity.forEach((row, i) => row.forEach((value, j) => assert.ok(Math.abs(value - expected[i]![j]!) < 1e-6)));
    assert.throws(() => cosineSimilarityMatrix(a, tensor([[1, 2, 3]])), /\(N, D\) and \(M, D\)/);
  });
});
