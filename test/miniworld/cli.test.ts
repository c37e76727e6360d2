// `hdb miniworld`: render writes one PNG per (style, seed, id), captions.json and a contact sheet; vocab writes
// the tokenizer; bad arguments are explicit errors.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parseIdList, runMiniworld } from "../../src/cli/miniworld.js";
import { renderFace } from "../../src/miniworld/render.js";
import { loadImage } from "../../src/pipeline/images.js";
import { TOKENIZER_DIR } from "./export-fixtures.js";

test("render: files, captions and contact sheet", async () => {
  const out = mkdtempSync(path.join(tmpdir(), "hdb-miniworld-cli-"));
  const log = process.stdout.write;
  process.stdout.write = () => true;
  try {
    await runMiniworld(["render", "--ids", "0-2,5", "--styles", "photo,pencil-sketch+wearing-a-crown", "--nuisance-seeds", "1-2", "--size", "32", "--columns", "4", "--out", out]);
  } finally {
    process.stdout.write = log;
  }
  const files = readdirSync(out).sort();
  assert.equal(files.length, 16 + 2);
  assert.ok(files.includes("5-pencil-sketch+wearing-a-crown-n2.png") && files.includes("0-n1.png") && files.includes("contact-sheet.png"));
  const sheet = await loadImage(path.join(out, "contact-sheet.png"));
  assert.deepEqual([sheet.width, sheet.height], [128, 128]);
  const one = await loadImage(path.join(out, "5-pencil-sketch+wearing-a-crown-n2.png"));
  assert.deepEqual(one.data, (await renderFace(5, { nuisanceSeed: 2, style: ["pencil-sketch", "wearing-a-crown"], size: 32 })).data);
  const captions = JSON.parse(readFileSync(path.join(out, "captions.json"), "utf8")) as { file: string; caption: string; split: string }[];
  assert.equal(captions.length, 16);
  assert.match(captions.find((c) => c.file === "5-pencil-sketch+wearing-a-crown-n2.png")!.caption, /wearing a crown, as a pencil sketch$/);
  assert.equal(captions[0]!.split, "pretraining");
});

test("vocab writes the tokenizer files; bad arguments are explicit", async () => {
  const out = mkdtempSync(path.join(tmpdir(), "hdb-miniworld-vocab-"));
  const log = process.stdout.write;
  process.stdout.write = () => true;
  try {
    await runMiniworld(["vocab", "--out", out]);
  } finally {
    process.stdout.write = log;
  }
  assert.equal(readFileSync(path.join(out, "vocab.json"), "utf8"), readFileSync(path.join(TOKENIZER_DIR, "vocab.json"), "utf8"));
  assert.deepEqual(parseIdList("3,7-9", "ids"), [3, 7, 8, 9]);
  assert.throws(() => parseIdList("9-7", "ids"), /runs backwards/);
  assert.throws(() => parseIdList("a", "ids"), /expected ids like/);
  await assert.rejects(runMiniworld(["render", "--ids", "1"]), /--out is required/);
  await assert.rejects(runMiniworld(["render", "--ids", "1", "--style", "crayon", "--out", out]), /unknown style 'crayon'/);
  await assert.rejects(runMiniworld(["paint"]), /unknown command 'paint'/);
});
