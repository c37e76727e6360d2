// `hdb miniworld`: render writes one PNG per (style, seed, id) and captions.json into its folder and the contact
// sheet next to it, so training takes the folder as photos only; vocab writes the tokenizer; bad arguments are
// explicit errors.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { test } from "node:test";
import { parseIdList, runMiniworld } from "../../src/cli/miniworld.js";
import { identitiesFrom, identityFromPath } from "../../src/dreambooth/data.js";
import { renderFace } from "../../src/miniworld/render.js";
import { loadImage } from "../../src/pipeline/images.js";
import { TOKENIZER_DIR } from "./export-fixtures.js";

/**
 * Runs `hdb miniworld …` in-process without its one-line report on stdout. Only that line is dropped: the test
 * runner's own reports go through stdout too (a previous test's may arrive meanwhile) and must not be lost.
 */
async function quietly(args: string[]): Promise<void> {
  const write = process.stdout.write;
  process.stdout.write = ((chunk: unknown, ...rest: never[]) =>
    (typeof chunk === "string" && /^(\d+ faces at |wrote the mini-world tokenizer)/.test(chunk)) || write.call(process.stdout, chunk as string, ...rest)) as typeof write;
  try {
    await runMiniworld(args);
  } finally {
    process.stdout.write = write;
  }
}

test("render: files and captions in the folder, the contact sheet next to it", async () => {
  const out = path.join(mkdtempSync(path.join(tmpdir(), "hdb-miniworld-cli-")), "faces");
  await quietly(["render", "--ids", "0-2,5", "--styles", "photo,pencil-sketch+wearing-a-crown", "--nuisance-seeds", "1-2", "--size", "32", "--columns", "4", "--out", out]);
  const files = readdirSync(out).sort();
  assert.equal(files.length, 16 + 1);
  assert.ok(files.includes("5-pencil-sketch+wearing-a-crown-n2.png") && files.includes("0-n1.png") && files.includes("captions.json"));
  assert.deepEqual(readdirSync(path.dirname(out)).sort(), ["faces", "faces-contact-sheet.png"]);
  const sheet = await loadImage(`${out}-contact-sheet.png`);
  assert.deepEqual([sheet.width, sheet.height], [128, 128]);
  const one = await loadImage(path.join(out, "5-pencil-sketch+wearing-a-crown-n2.png"));
  assert.deepEqual(one.data, (await renderFace(5, { nuisanceSeed: 2, style: ["pencil-sketch", "wearing-a-crown"], size: 32 })).data);
  const captions = JSON.parse(readFileSync(path.join(out, "captions.json"), "utf8")) as { file: string; caption: string; split: string }[];
  assert.equal(captions.length, 16);
  assert.match(captions.find((c) => c.file === "5-pencil-sketch+wearing-a-crown-n2.png")!.caption, /wearing a crown, as a pencil sketch$/);
  assert.equal(captions[0]!.split, "pretraining");
  // What training sees in the folder: the 16 rendered photos, nothing else (one identity, or one per photo).
  const photos = captions.map((c) => path.join(out, c.file)).sort();
  assert.deepEqual(identityFromPath(out).images, photos);
  assert.deepEqual(identitiesFrom(out).flatMap((identity) => identity.images).sort(), photos);
});

test("render: --sheet puts the contact sheet elsewhere, never inside the photo folder; --no-sheet writes none", async () => {
  const root = mkdtempSync(path.join(tmpdir(), "hdb-miniworld-sheet-"));
  const out = path.join(root, "me");
  await quietly(["render", "--ids", "7", "--nuisance-seeds", "0-1", "--size", "16", "--out", out, "--sheet", path.join(root, "sheets", "me.png")]);
  assert.deepEqual(readdirSync(out).sort(), ["7-n0.png", "7-n1.png", "captions.json"]);
  const sheet = await loadImage(path.join(root, "sheets", "me.png"));
  assert.deepEqual([sheet.width, sheet.height], [16, 32]);
  for (const inside of [path.join(out, "sheet.png"), path.join(out, "sub", "sheet.png")]) {
    await assert.rejects(quietly(["render", "--ids", "7", "--out", out, "--sheet", inside]), /--sheet .* lies inside --out .*: the folder holds photos only/);
  }
  const bare = path.join(root, "bare");
  await quietly(["render", "--ids", "7", "--size", "16", "--out", bare, "--no-sheet"]);
  assert.deepEqual(readdirSync(root).sort(), ["bare", "me", "sheets"]);
});

test("vocab writes the tokenizer files; bad arguments are explicit", async () => {
  const out = mkdtempSync(path.join(tmpdir(), "hdb-miniworld-vocab-"));
  await quietly(["vocab", "--out", out]);
  assert.equal(readFileSync(path.join(out, "vocab.json"), "utf8"), readFileSync(path.join(TOKENIZER_DIR, "vocab.json"), "utf8"));
  assert.deepEqual(parseIdList("3,7-9", "ids"), [3, 7, 8, 9]);
  assert.throws(() => parseIdList("9-7", "ids"), /runs backwards/);
  assert.throws(() => parseIdList("a", "ids"), /expected ids like/);
  await assert.rejects(runMiniworld(["render", "--ids", "1"]), /--out is required/);
  await assert.rejects(runMiniworld(["render", "--ids", "1", "--out", out, "--size", "4"]), /^Error: --size must be an integer in \[8, 2048\], got '4'$/);
  await assert.rejects(runMiniworld(["render", "--ids", "1", "--style", "crayon", "--out", out]), /unknown style 'crayon'/);
  await assert.rejects(runMiniworld(["paint"]), /unknown command 'paint'/);
});
