// The README's main job (`npm start` → `hdb demo`) on the bundled default, at a few steps: the bundled mini-world
// model personalised from the bundled sample face with the bundled HyperNetwork, then that person rendered in every
// style × 2 seeds; the page shows the photo, the grid, the time of each phase and the files with their sizes.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { readLidbFileInfo } from "../../src/adapters/lidb/file.js";
import { PERSONAL_STYLES } from "../../src/cli/demo.js";
import { temporaryDir } from "../dreambooth/helpers.js";

const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));

test("hdb demo personalises the bundled model from the sample face and renders the person in every style", { timeout: 300_000 }, () => {
  const out = path.join(temporaryDir("demo"), "demo");
  const child = spawnSync(process.execPath, [hdb, "demo", "--out", out, "--steps", "2", "--fine-tune-steps", "3", "--threads", "1"],
    { encoding: "utf8", timeout: 240_000, env: { ...process.env, OMP_NUM_THREADS: "1" } });
  assert.equal(child.status, 0, child.stderr);
  assert.match(child.stdout, /^personalised in [\d.]+ s, then 18 images in [\d.]+ s → .*index\.html/);
  const pngs = readdirSync(out).filter((f) => /^\d\d-seed\d\.png$/.test(f));
  assert.equal(pngs.length, 2 * PERSONAL_STYLES.length);
  for (const file of ["reference.png", "grid.png", "provenance.json", "person/person.lidb.safetensors", "person/pytorch_lora_weights.safetensors", "person/person.kohya.safetensors"]) {
    assert.ok(existsSync(path.join(out, file)), `${file} is missing`);
  }
  assert.deepEqual(readLidbFileInfo(path.join(out, "person", "person.lidb.safetensors")).relaxed, { rank: 4, alpha: 4 });
  const html = readFileSync(path.join(out, "index.html"), "utf8");
  for (const phase of ["encode the photo", "predict the LiDB weights", "merge them", "fine-tune (3 steps, rank 4)", "render the grid"]) {
    assert.match(html, new RegExp(`<td>${phase.replace(/[()]/g, "\\$&")}</td><td>[\\d.]+ s</td>`), phase);
  }
  assert.match(html, /<a href="person\/person\.lidb\.safetensors">person\/person\.lidb\.safetensors<\/a><\/td><td>\d+ KB/);
  assert.match(html, /a sks face as a pencil sketch/);
  for (const png of pngs) assert.ok(html.includes(`src="${png}"`), `index.html shows ${png}`);
});
