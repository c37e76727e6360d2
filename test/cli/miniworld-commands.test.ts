// The mini-world's user-facing commands on a tiny build (full-width models, a few steps): `hdb demo` writes a
// PNG per prompt and seed, grid.png, index.html and README.md; `hdb miniworld quality` and `hdb miniworld
// dreambooth` run end to end with (untrained) metric networks and write their reports, with every number finite,
// the quality report's overall accuracy the mean of its per-style figures, and the DreamBooth table laid out
// prompt by prompt; bad flags fail with messages naming them.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { manualSeed, setNumThreads } from "../../src/engine/index.js";
import { IdentityNetwork } from "../../src/evaluation/identity-network.js";
import { PromptFidelityNetwork } from "../../src/evaluation/fidelity-network.js";
import { baseModelRecipe } from "../../src/miniworld/base-model/config.js";
import { buildMiniworld } from "../../src/miniworld/base-model/recipe.js";
import { loadImage } from "../../src/pipeline/images.js";

setNumThreads(1);
const root = fileURLToPath(new URL("../../../", import.meta.url));
const hdb = path.join(root, "dist/src/cli/hdb.js");
const work = mkdtempSync(path.join(tmpdir(), "hdb-miniworld-commands-"));
after(() => rmSync(work, { recursive: true, force: true }));
const model = path.join(work, "out", "base");
const metrics = path.join(work, "metrics");

before(async () => {
  const recipe = baseModelRecipe({
    seed: 5, datasetSize: 16, checkpointEvery: 2,
    vae: { steps: 2, batchSize: 2, warmupSteps: 1, decoderSteps: 1 }, diffusion: { steps: 2, batchSize: 2, warmupSteps: 1 }, continuation: { steps: 2, warmupSteps: 1 }, conditioning: { steps: 1, warmupSteps: 1 }, colourBalance: { steps: 1, warmupSteps: 1 },
  });
  await buildMiniworld({ recipe, outDir: path.join(work, "out"), workDir: path.join(work, "work"), withMetrics: false });
  manualSeed(0);
  new IdentityNetwork().save(path.join(metrics, "identity"));
  new PromptFidelityNetwork().save(path.join(metrics, "fidelity"));
});

function run(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [hdb, ...args], { encoding: "utf8", timeout: 300_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

test("hdb demo --base renders every prompt twice and writes grid.png, index.html and README.md", { timeout: 300_000 }, async () => {
  const out = path.join(work, "demo");
  const result = run(["demo", "--base", "--model", model, "--out", out, "--steps", "2", "--threads", "1"]);
  assert.equal(result.status, 0, result.stderr);
  const pngs = readdirSync(out).filter((f) => /^\d\d-seed\d\.png$/.test(f));
  assert.equal(pngs.length, 16, pngs.join(", "));
  const grid = await loadImage(path.join(out, "grid.png"));
  assert.deepEqual([grid.width, grid.height], [8 * 64, 2 * 64]);
  const html = readFileSync(path.join(out, "index.html"), "utf8");
  for (const png of pngs) assert.ok(html.includes(`src="${png}"`), `index.html shows ${png}`);
  assert.match(readFileSync(path.join(out, "README.md"), "utf8"), /\| a face as a pencil sketch \| !\[\]\(03-seed0\.png\) \| !\[\]\(03-seed1\.png\) \|/);
  assert.match(result.stdout, /16 images in [\d.]+ s/);
  // provenance.json names the command and hashes every model file; the README says where it came from.
  const record = JSON.parse(readFileSync(path.join(out, "provenance.json"), "utf8")) as { command: string; threads: number; files: Record<string, string> };
  assert.match(record.command, /^hdb demo --base --model \S+ --out \S+ --steps 2 --threads 1$/);
  assert.equal(record.threads, 1);
  assert.ok(Object.keys(record.files).some((f) => f.endsWith("unet/diffusion_pytorch_model.safetensors")), Object.keys(record.files).join(", "));
  assert.match(readFileSync(path.join(out, "README.md"), "utf8"), /Made by `hdb demo --base --model .*` at commit /);
});

test("hdb miniworld quality measures every style and hair colour and writes quality.json", { timeout: 300_000 }, () => {
  const out = path.join(work, "quality");
  const result = run(["miniworld", "quality", "--model", model, "--metrics", metrics, "--out", out, "--images-per-prompt", "1", "--steps", "1", "--threads", "1"]);
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(readFileSync(path.join(out, "quality.json"), "utf8")) as Record<string, unknown> & { perStyle: Record<string, number>; perHairColour: Record<string, number> };
  assert.equal(Object.keys(report.perStyle).length, 30);
  assert.equal(report.styleImages, 30);
  assert.ok(Object.keys(report.perHairColour).length >= 10);
  for (const key of ["styleAccuracy", "hairColourAccuracy", "plainFaceRate"]) {
    const value = report[key] as number;
    assert.ok(value >= 0 && value <= 1, `${key} = ${value}`);
  }
  // One image per style prompt: each style's accuracy is 0 or 1, and the overall figure is their mean.
  const perStyle = Object.values(report.perStyle);
  assert.ok(perStyle.every((v) => v === 0 || v === 1), JSON.stringify(report.perStyle));
  assert.equal(report["styleAccuracy"], perStyle.reduce((a: number, b) => a + b, 0) / perStyle.length);
  assert.match(result.stdout, /style fidelity [\d.]+% of 30 images \(bar 80%\)/);
});

test("hdb miniworld dreambooth trains LiDB per identity and writes the table and the contact sheet", { timeout: 300_000 }, async () => {
  const out = path.join(work, "dreambooth");
  const args = ["miniworld", "dreambooth", "--model", model, "--metrics", metrics, "--out", out, "--identities", "2", "--seeds", "2",
    "--train-steps", "2", "--identities-per-batch", "2", "--steps", "1", "--threads", "1"];
  const result = run(args);
  assert.equal(result.status, 0, result.stderr);
  const report = JSON.parse(readFileSync(path.join(out, "report.json"), "utf8")) as { rows: { prompt: string; identity: { lidb: { count: number; mean: number } } }[] };
  assert.deepEqual(report.rows.map((r) => r.prompt), ["a sks face", "a sks face as a pencil sketch", "a sks face as a pop art print",
    "a sks face wearing sunglasses", "a sks face on the beach", "a sks face as a zombie"]);
  for (const row of report.rows) {
    assert.equal(row.identity.lidb.count, 4, "2 identities × 2 seeds per prompt");
    assert.ok(Number.isFinite(row.identity.lidb.mean));
  }
  const markdown = readFileSync(path.join(out, "report.md"), "utf8");
  assert.match(markdown, /\| \*\*all\*\* \| [\d.-]+ ± [\d.]+ \|/);
  const sheet = await loadImage(path.join(out, "contact-sheet.png"));
  assert.deepEqual([sheet.width, sheet.height], [7 * 64, 2 * 64], "one row per identity: reference + 6 prompts");
  for (const id of [60000, 60001]) assert.ok(existsSync(path.join(out, "lidb", `${id}.lidb.safetensors`)), `LiDB file of ${id}`);
  // Run again: the finished identities are not trained again and the report is the same.
  const again = run(args);
  assert.equal(again.status, 0, again.stderr);
  assert.deepEqual(JSON.parse(readFileSync(path.join(out, "report.json"), "utf8")).rows, report.rows);
});

test("bad flags fail with messages naming the flag and the value", () => {
  for (const [args, message] of [
    [["demo", "--base", "--model", path.join(work, "nowhere")], /no diffusers model at .*nowhere \(model_index\.json missing\)/],
    [["demo", "--base", "--model", model, "--steps", "0"], /^hdb: --steps must be a positive integer, got '0'$/m],
    [["miniworld", "quality", "--model", model, "--metrics", path.join(work, "nowhere")], /nowhere/],
    [["miniworld", "dreambooth", "--model", model, "--metrics", metrics, "--identities", "5000"], /--identities must be an integer in \[1, 1000\], got '5000'/],
  ] as const) {
    const result = run([...args]);
    assert.equal(result.status, 1, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, message);
  }
});
