/**
 * The paper's tables (src/evaluation/harness/paper-tables.ts) on results whose answers are known: a method below ours
 * by a fixed amount (holds), one above (reversed), one equal on average (overlaps), one the run lacks (missing).
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { pairedDifference, paperTables, paperTablesMarkdown } from "../../src/evaluation/harness/paper-tables.js";
import { summarise, type EvalResults, type ResultEntry } from "../../src/evaluation/harness/summary.js";

const PEOPLE = [60000, 60001, 60002, 60003, 60004, 60005];
const PROMPTS = ["a [V] face", "a [V] face as a pencil sketch"];

/** ours' identity score of a person on a prompt: varies by person and prompt, so only the pairing removes it. */
function oursIdentity(person: number, prompt: number): number {
  return 0.2 + 0.1 * (person % 5) + 0.05 * prompt;
}

/** Each method's identity score relative to ours (per person index): what its difference must come out as. */
const OFFSETS: Record<string, (k: number) => number> = {
  ours: () => 0,
  dreambooth: () => -0.1, // ours above by 0.1 exactly: holds
  "dreambooth-agg-400": (k) => -0.02 - 0.01 * (k % 2), // above by 0.025 on average, never below: holds
  "only-hyper": () => 0.2, // above ours: reversed
  "no-hyper": (k) => (k % 2 === 0 ? 0.1 : -0.1), // ± 0.1 around ours: overlaps
};

function results(): EvalResults {
  const entries: ResultEntry[] = [];
  for (const [method, offset] of Object.entries(OFFSETS)) {
    for (const [k, person] of PEOPLE.entries()) {
      for (const [p, prompt] of PROMPTS.entries()) {
        const identity = oursIdentity(person, p) + offset(k);
        entries.push({ method, identity: person, prompt, seed: 0, image: "x.png", scores: { identity, imageSimilarity: identity / 2, style: p === 0 ? 1 : 0, predictedStyle: "photo" } });
      }
    }
  }
  const methods = Object.keys(OFFSETS).map((name) => {
    const mine = entries.filter((e) => e.method === name);
    return {
      name, description: `the ${name} method`, key: `${name}-0`, recipe: {}, phases: {},
      identity: summarise(mine.map((e) => e.scores.identity)), style: summarise(mine.map((e) => e.scores.style)),
      imageSimilarity: summarise(mine.map((e) => e.scores.imageSimilarity)), secondsPerPerson: summarise([1, 2, 3]),
    };
  });
  return {
    format: "hdb-eval-results/1", identities: PEOPLE, prompts: [], seeds: [0], generation: { steps: 25, guidance: 5 }, references: {}, methods, perPrompt: [], entries,
    counts: { filesMade: 0, filesReused: 0, imagesMade: 0, imagesReused: 0, rescored: 0 }, provenance: null,
  };
}

test("paired differences: ours minus the other per person, with the verdict its CI gives", () => {
  const r = results();
  const db = pairedDifference(r, "dreambooth", "identity")!;
  assert.ok(Math.abs(db.mean - 0.1) < 1e-12 && db.verdict === "holds" && db.people === PEOPLE.length, JSON.stringify(db));
  assert.ok(Math.abs(db.high - db.low) < 1e-9, "a constant difference has a zero-width interval");
  const agg = pairedDifference(r, "dreambooth-agg-400", "identity")!;
  assert.ok(Math.abs(agg.mean - 0.025) < 1e-12 && agg.low > 0 && agg.verdict === "holds", JSON.stringify(agg));
  assert.equal(pairedDifference(r, "only-hyper", "identity")!.verdict, "reversed");
  assert.ok(Math.abs(pairedDifference(r, "only-hyper", "imageSimilarity")!.mean + 0.1) < 1e-12);
  const noHyper = pairedDifference(r, "no-hyper", "identity")!;
  assert.ok(Math.abs(noHyper.mean) < 1e-12 && noHyper.low < 0 && noHyper.high > 0 && noHyper.verdict === "overlaps");
  // Style is the same for every method here: the difference is 0 everywhere, which shows nothing.
  assert.equal(pairedDifference(r, "dreambooth", "style")!.verdict, "overlaps");
  assert.equal(pairedDifference(r, "lora", "identity"), null, "a method the run lacks has no difference");
});

test("the three tables: rows the run has, the rest named missing, verdicts in the Markdown", () => {
  const tables = paperTables(results());
  assert.deepEqual(tables.tables.map((t) => t.rows.map((row) => row.method)), [["ours", "dreambooth"], ["ours", "dreambooth-agg-400"], ["ours", "no-hyper", "only-hyper"]]);
  assert.deepEqual(tables.tables.map((t) => t.missing), [["lora"], ["dreambooth-agg-40"], ["k1"]]);
  assert.equal(tables.tables[0]!.rows[0]!.differences, undefined, "ours is not compared with itself");
  const md = paperTablesMarkdown(tables, "# header");
  assert.match(md, /- ours − dreambooth \(paired over 6 people\): Face Rec \+0\.100 \[\+0\.100, \+0\.100\] \*\*holds\*\*; DINO \/ CLIP-I \+0\.050 \[\+0\.050, \+0\.050\] \*\*holds\*\*; CLIP-T \+0\.000 \[\+0\.000, \+0\.000\] \*\*overlaps\*\*/);
  assert.match(md, /- ours − only-hyper \(paired over 6 people\): Face Rec −0\.200 \[−0\.200, −0\.200\] \*\*reversed\*\*/);
  assert.match(md, /- ours − no-hyper [^\n]*Face Rec [+−]0\.000 \[−0\.\d+, \+0\.\d+\] \*\*overlaps\*\*/);
  assert.match(md, /Not in this run: lora\./);
  assert.match(md, /\| dreambooth \| 0\.\d+ ± 0\.\d+ \| 0\.\d+ ± 0\.\d+ \| 0\.500 ± 0\.\d+ \| 2\.00 ± 2\.48 \|/);
});
