// The evaluation harness (src/evaluation/harness/, `hdb eval`) on the bundled mini-world model at toy size: a run stopped
// part-way leaves whole entries only, and the rerun makes exactly the missing ones (the cached images untouched); one
// more method makes only its own entries; an entry whose record is damaged is made again, alone; results.json, the
// report and the blind page hold what they should. Then the command itself, killed for real mid-run and rerun, and its
// one-line errors for bad input.
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { blindPageHtml } from "../../src/evaluation/harness/blind-page.js";
import { methodRegistry, type MethodName, type MethodSettings } from "../../src/evaluation/harness/methods.js";
import { promptOfStyles } from "../../src/evaluation/harness/prompts.js";
import { runEvaluation, type EvaluationOptions } from "../../src/evaluation/harness/run.js";
import type { EvalResults } from "../../src/evaluation/harness/summary.js";
import { splitIds } from "../../src/miniworld/splits.js";
import { provenance } from "../../src/util/provenance.js";
import { temporaryDir } from "../dreambooth/helpers.js";

const repository = fileURLToPath(new URL("../../../", import.meta.url));
const bundled = path.join(repository, "models", "miniworld");
const model = path.join(bundled, "base");
const hypernetwork = path.join(bundled, "hypernetwork");
const metrics = path.join(bundled, "metrics");
const hdb = fileURLToPath(new URL("../../src/cli/hdb.js", import.meta.url));
const env = { ...process.env, OMP_NUM_THREADS: "1", HDB_AUTO_THREADS: "0" };

const SETTINGS: MethodSettings = {
  personalize: { steps: 2, rank: 2, learningRate: 1e-3, seed: 0 }, aggressiveLearningRate: 1e-2, loraSteps: 3,
  dreambooth: { steps: 2, learningRate: 1e-2, lidbA: 32, lidbB: 16, rank: 1, seed: 0 },
};
const registry = methodRegistry(SETTINGS);
const identities = splitIds("held-out", 2);
const prompts = [promptOfStyles([]), promptOfStyles(["pencil-sketch"])];

/** Every entry record (JSON) under the cache's images, with its modification time and its PNG's bytes. */
function entryFiles(out: string): Map<string, { mtime: number; png: Buffer }> {
  const dir = path.join(out, "cache", "images");
  const files = new Map<string, { mtime: number; png: Buffer }>();
  if (!existsSync(dir)) return files;
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith(".json")) continue;
    const json = path.join(entry.parentPath, entry.name);
    files.set(json, { mtime: statSync(json).mtimeMs, png: readFileSync(json.replace(/\.json$/, ".png")) });
  }
  return files;
}

test("the harness resumes a stopped run, reuses every cached entry, and extends to a new method", { timeout: 240_000 }, async () => {
  const out = temporaryDir("eval-harness");
  const record = provenance({ command: ["hdb", "eval", "--from-the-test"], threads: 1, measured: [model, hypernetwork, metrics] });
  const options = (names: MethodName[], extra: Partial<EvaluationOptions> = {}): EvaluationOptions => ({
    modelDir: model, hypernetwork, metricsDir: metrics, outDir: out, methods: names.map((n) => registry.get(n)!), identities, prompts, seeds: [0],
    generation: { steps: 2, guidance: 5 }, provenance: record, ...extra,
  });

  // 1. Stopped after 5 of 12 images (ours' 4, then 1 of DreamBooth's): both methods' files made, 5 whole entries, no results.
  const stopped = await runEvaluation(options(["ours", "dreambooth", "base"], { stopAfterImages: 5 }));
  assert.equal(stopped.completed, false);
  assert.deepEqual(stopped.counts, { filesMade: 4, filesReused: 0, imagesMade: 5, imagesReused: 0, rescored: 0 });
  assert.ok(!existsSync(path.join(out, "results.json")) && !existsSync(path.join(out, "report.html")), "a stopped run writes no results");
  const before = entryFiles(out);
  assert.equal(before.size, 5);

  // 2. The rerun makes the 7 missing images, no file, and leaves the 5 cached entries as they were.
  const resumed = await runEvaluation(options(["ours", "dreambooth", "base"]));
  assert.equal(resumed.completed, true);
  assert.deepEqual(resumed.counts, { filesMade: 0, filesReused: 4, imagesMade: 7, imagesReused: 5, rescored: 0 });
  const after = entryFiles(out);
  assert.equal(after.size, 12);
  for (const [file, { mtime, png }] of before) {
    assert.equal(after.get(file)!.mtime, mtime, `${file} was rewritten`);
    assert.ok(after.get(file)!.png.equals(png), `${file}'s image changed`);
  }
  const first = JSON.parse(readFileSync(resumed.files.results, "utf8")) as EvalResults;
  assert.deepEqual(first.methods.map((m) => m.name), ["ours", "dreambooth", "base"]);
  for (const m of first.methods) {
    assert.equal(m.identity!.count, 4, `${m.name}: 2 identities × 2 prompts × 1 seed`);
    assert.ok(Number.isFinite(m.identity!.halfWidth) && m.identity!.mean >= -1 && m.identity!.mean <= 1);
    assert.ok(m.style!.mean >= 0 && m.style!.mean <= 1 && Number.isFinite(m.imageSimilarity!.mean));
  }
  for (const name of ["ours", "dreambooth"]) {
    const m = first.methods.find((x) => x.name === name)!;
    assert.equal(m.secondsPerPerson!.count, 2);
    assert.ok(m.secondsPerPerson!.mean > 0, `${name} took time`);
  }
  assert.ok(first.methods.find((m) => m.name === "ours")!.phases["fineTune"]! > 0, "ours' phases are recorded");
  assert.equal(first.methods.find((m) => m.name === "base")!.secondsPerPerson, null);
  assert.equal(first.perPrompt.length, 2);
  assert.equal(first.entries.length, 12);
  // The paper's tables: Table 1 has ours and dreambooth (lora missing, said so), with the paired differences.
  const tables = readFileSync(resumed.files.tables, "utf8");
  assert.match(tables, /## Table 1: Ours vs DreamBooth[\s\S]*Not in this run: lora\.[\s\S]*\| dreambooth \|/);
  assert.match(tables, /- ours − dreambooth \(paired over 2 people\): Face Rec [+−][\d.]+ \[[+−][\d.]+, [+−][\d.]+\] \*\*(holds|overlaps|reversed)\*\*/);
  assert.match(tables, /Not in this run: no-hyper, only-hyper, k1\./);
  assert.ok(tables.includes(record.command), "tables.md names the command that made it");

  // 3. One more method: only its 4 images and 2 files are made; the others' numbers are the same to the bit.
  const extended = await runEvaluation(options(["ours", "dreambooth", "base", "only-hyper"]));
  assert.deepEqual(extended.counts, { filesMade: 2, filesReused: 4, imagesMade: 4, imagesReused: 12, rescored: 0 });
  const second = extended.results!;
  for (const name of ["ours", "dreambooth", "base"]) {
    assert.deepEqual(second.methods.find((m) => m.name === name)!.identity, first.methods.find((m) => m.name === name)!.identity);
  }
  // A changed setting is another key: new entries beside the old, never mixed with them.
  const otherSteps = methodRegistry({ ...SETTINGS, personalize: { ...SETTINGS.personalize, steps: 3 } }).get("ours")!;
  const changed = await runEvaluation({ ...options([]), methods: [otherSteps] });
  assert.deepEqual(changed.counts, { filesMade: 2, filesReused: 0, imagesMade: 4, imagesReused: 0, rescored: 0 });

  // 4. A damaged record counts as absent: that one image is made again, and nothing else.
  const victim = [...entryFiles(out).keys()].find((f) => f.includes(`${path.sep}base-`))!;
  writeFileSync(victim, "{ \"format\": \"hdb-eval-entry/1\", ");
  const repaired = await runEvaluation(options(["ours", "dreambooth", "base", "only-hyper"]));
  assert.deepEqual(repaired.counts, { filesMade: 0, filesReused: 6, imagesMade: 1, imagesReused: 15, rescored: 0 });

  // 5. Other metric networks (here the same ones, in a folder with one more byte): every cached image is rescored from its
  // PNG, none is made again, and the scores are the very numbers the images got when they were made.
  const otherMetrics = path.join(temporaryDir("eval-metrics"), "metrics");
  cpSync(metrics, otherMetrics, { recursive: true });
  appendFileSync(path.join(otherMetrics, "evaluation.json"), "\n");
  const rescored = await runEvaluation({ ...options(["ours", "dreambooth", "base", "only-hyper"]), metricsDir: otherMetrics });
  assert.deepEqual(rescored.counts, { filesMade: 0, filesReused: 6, imagesMade: 0, imagesReused: 16, rescored: 16 });
  assert.deepEqual(rescored.results!.entries, repaired.results!.entries);

  // 6. The report: every method, the plot, per-identity grids of the cached images, the provenance.
  const results = rescored.results!;
  const html = readFileSync(rescored.files.report, "utf8");
  for (const m of results.methods) assert.ok(html.includes(`<b>${m.name}</b>`) && html.includes(m.key), `the report's table has ${m.name}`);
  const plot = /<svg class="plot"[\s\S]*?<\/svg>/.exec(html)![0];
  assert.match(plot, /seconds per person \(log scale\)/);
  for (const name of ["ours", "dreambooth", "only-hyper"]) assert.match(plot, new RegExp(`<circle [^>]*><title>${name}: -?[\\d.]+ at [\\d.]+ s per person</title>`));
  assert.match(plot, /stroke-dasharray="5 4"\/><text [^>]*>base<\/text>/, "the base model is a dashed line");
  for (const e of results.entries) {
    assert.ok(html.includes(`src="${e.image.split(path.sep).join("/")}"`), `the report shows ${e.image}`);
    assert.ok(existsSync(path.join(out, e.image)));
  }
  for (const id of identities) assert.ok(html.includes(`<h3 id="id-${id}">`) && html.includes(`src="references/nuisance-1/${id}.png"`));
  if (record.commit !== null) assert.ok(html.includes(record.commit), "the report names the commit");
  assert.ok(html.includes(record.command));
  const [modelFile, modelHash] = Object.entries(record.files).find(([f]) => f.endsWith("unet/diffusion_pytorch_model.safetensors"))!;
  assert.ok(html.includes(modelFile) && html.includes(modelHash!), "the report lists the model files' sha256");

  // 7. The blind page: per identity and prompt, the reference and 4 unlabelled images in a seeded order.
  const blind = readFileSync(rescored.files.blind, "utf8");
  assert.equal((blind.match(/<section data-identity=/g) ?? []).length, identities.length * prompts.length);
  assert.equal((blind.match(/<figure data-k=/g) ?? []).length, identities.length * prompts.length * 4);
  assert.ok(!blind.includes("cache/") && !results.methods.some((m) => blind.includes(m.key)), "no image path or key gives the method away");
  const encoded = /<script type="application\/octet-stream" id="labels">([^<]+)<\/script>/.exec(blind)![1]!;
  const labels = JSON.parse(Buffer.from(encoded, "base64").toString("utf8")) as string[];
  const groups = Array.from({ length: labels.length / 4 }, (_, g) => labels.slice(4 * g, 4 * g + 4));
  for (const group of groups) assert.deepEqual([...group].sort(), ["base", "dreambooth", "only-hyper", "ours"]);
  assert.ok(groups.some((g) => g.join() !== "ours,dreambooth,base,only-hyper"), "the methods are shuffled");
  assert.equal(blindPageHtml(results, out, { seed: 0, exclude: ["world"] }), blind, "the same seed, the same page");
  assert.notEqual(blindPageHtml(results, out, { seed: 7, exclude: ["world"] }), blind, "another seed, another order");
  const script = [...blind.matchAll(/<script>([\s\S]*?)<\/script>/g)].at(-1)![1]!;
  assert.doesNotThrow(() => new Function(script), "the page's script parses");
});

test("hdb eval: killed mid-run, the same command resumes; bad input fails in one line", { timeout: 240_000 }, async () => {
  const out = temporaryDir("eval-cli");
  const promptFile = path.join(out, "prompts.txt");
  writeFileSync(promptFile, "# two of the world's prompts\na [V] face\n\na [V] face as a pencil sketch\n");
  const args = ["eval", "--methods", "ours,base", "--identities", identities.join(","), "--prompts", promptFile, "--seeds", "0,1,2",
    "--steps", "12", "--finetune-steps", "2", "--rank", "2", "--threads", "1", "--out", path.join(out, "eval")];
  const total = 2 * identities.length * prompts.length * 3;

  // Killed (SIGKILL: no handler runs) once the first images are cached.
  const child = spawn(process.execPath, [hdb, ...args], { env, stdio: "ignore" });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  let killedAt = -1;
  while (child.exitCode === null) {
    if (entryFiles(path.join(out, "eval")).size >= 2) {
      child.kill("SIGKILL");
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.equal(await exited, null, "the run was killed before it finished");
  killedAt = entryFiles(path.join(out, "eval")).size;
  assert.ok(killedAt >= 2 && killedAt < total, `killed with ${killedAt} of ${total} images cached`);

  const rerun = spawnSync(process.execPath, [hdb, ...args], { env, encoding: "utf8", timeout: 180_000 });
  assert.equal(rerun.status, 0, rerun.stderr);
  const made = /(\d+) images made, (\d+) reused; (\d+) person files made, (\d+) reused/.exec(rerun.stdout);
  assert.ok(made, rerun.stdout);
  assert.deepEqual(made.slice(1).map(Number).slice(0, 2), [total - killedAt, killedAt], "only the images the kill left missing are made");
  assert.equal(Number(made[3]) + Number(made[4]), identities.length, "ours' files: made or reused, one per identity");
  assert.equal(entryFiles(path.join(out, "eval")).size, total);
  for (const page of ["results.json", "report.html", "blind.html"]) assert.ok(existsSync(path.join(out, "eval", page)), page);
  const results = JSON.parse(readFileSync(path.join(out, "eval", "results.json"), "utf8")) as EvalResults;
  assert.match(results.provenance!.command, /^hdb eval --methods ours,base /);
  assert.deepEqual(results.prompts.map((p) => p.text), ["a [V] face", "a [V] face as a pencil sketch"]);

  const fails = (extra: string[], pattern: RegExp): void => {
    const child = spawnSync(process.execPath, [hdb, "eval", ...extra, "--out", path.join(out, "never")], { env, encoding: "utf8", timeout: 60_000 });
    assert.equal(child.status, 1, child.stderr);
    assert.equal(child.stderr.trim().split("\n").length, 1, child.stderr);
    assert.match(child.stderr, pattern);
    assert.ok(!existsSync(path.join(out, "never")), "nothing is written for bad input");
  };
  fails(["--methods", "ours,dreambooht"], /unknown method 'dreambooht'; valid: ours, only-hyper, no-hyper, k1, dreambooth, dreambooth-agg-400, dreambooth-agg-40, lora, base, world/);
  fails(["--identities", "12,60001"], /12 is not a held-out identity/);
  writeFileSync(promptFile, "a [V] face\na [V] face in outer space\n");
  fails(["--prompts", promptFile], /prompts\.txt:2: 'a \[V\] face in outer space' is not a prompt of the world's styles/);
});
