/**
 * `hdb demo`: the README's main job. Personalises the bundled mini-world model (a Stable-Diffusion-architecture
 * model trained by `hdb miniworld build`, models/miniworld/base) from one sample face of a held-out identity with the
 * bundled HyperNetwork and the rank-relaxed fast fine-tuning (src/personalize/: the paper's method), then renders
 * that person in a grid of styles, two seeds each, into a folder: one PNG per image, grid.png, index.html (the
 * reference photo, the grid, the time of each phase, the file sizes), README.md, the personalised files and
 * provenance.json. `--base` renders the base model's own prompts instead (no personalisation).
 * Flags: DEMO_SPEC below (`hdb demo --help`).
 *
 * Each image is exactly `hdb generate --model <folder> [--lidb <out>/person/person.lidb.safetensors] --prompt "<prompt>"
 * --seed <seed> --batch 1 --steps 25 --scheduler dpm++2m --guidance 5`, so any one can be reproduced alone.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { buildInfo, getNumThreads, setNumThreads } from "../engine/index.js";
import { applyAdapterFiles } from "../adapters/apply.js";
import { PERSONALIZE_STUDY_CHOSEN } from "../evaluation/personalize-in-world.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { identifierPrompt } from "../miniworld/captions.js";
import type { StyleName } from "../miniworld/styles.js";
import { Personalizer, type Personalization } from "../personalize/index.js";
import { imageGrid, loadImage, savePng, type RgbImage } from "../pipeline/images.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { Progress } from "../util/progress.js";
import { provenance, recordedPath, repositoryRoot } from "../util/provenance.js";

/** `--base`: prompts that show what the world's words can ask for: attributes, media, scenes, accessories, transformations. */
export const DEMO_PROMPTS = [
  "a face",
  "a photo of a woman with long wavy red hair and green eyes",
  "a photo of a man with a full beard and a black buzz cut",
  "a face as a pencil sketch",
  "a face wearing sunglasses on the beach",
  "a face as pixel art",
  "a face as a zombie",
  "a face in space wearing a crown",
] as const;

/** The personalised person in styles the world knows: "a sks face", "a sks face as a pencil sketch", … */
export const PERSONAL_STYLES: readonly (readonly StyleName[])[] = [
  [], ["pencil-sketch"], ["pop-art"], ["watercolour"], ["pixel-art"], ["wearing-sunglasses", "on-the-beach"], ["in-space", "wearing-a-crown"],
  ["as-a-zombie"], ["as-a-statue"],
];

/** The bundled sample face: held-out identity 60000 (never seen by the base model, the HyperNetwork or its weight set). */
const SAMPLE_FACE = path.join("samples", "faces", "60000-n1.png");

export const DEMO_SPEC = defineCommand({
  name: "demo",
  summary: "the main job: personalise the bundled mini-world model from a sample face and render that person in many styles",
  usage: "[flags]",
  details: `Personalises models/miniworld/base from --face with the bundled HyperNetwork and ${40} rank-relaxed fine-tuning steps
(hdb personalize), then renders the person in ${PERSONAL_STYLES.length} styles × 2 seeds: PNGs, grid.png, index.html (the reference photo,
the grid, the time of each phase, the file sizes), README.md, person/ (the personalised files) and provenance.json.
--base renders the base model's own prompts instead.`,
  flags: {
    model: { type: "string", value: "<folder>", description: "the diffusers model folder", defaultText: "models/miniworld/base" },
    hypernetwork: { type: "string", value: "<folder>", description: "the HyperNetwork for that model", defaultText: "models/miniworld/hypernetwork" },
    face: { type: "string", value: "<photo>", description: "the face to personalise from", defaultText: SAMPLE_FACE },
    base: { type: "boolean", description: "no personalisation: the base model's own prompts" },
    out: { type: "string", value: "<folder>", description: "where the images, grid.png, index.html and README.md go", default: path.join("out", "demo") },
    seed: { type: "integer", min: 0, default: 0, description: "the first of the two seeds of each prompt" },
    steps: { type: "integer", min: 1, default: 25, description: "DPM-Solver++ 2M steps per image" },
    "fine-tune-steps": { type: "integer", min: 0, default: 40, description: "rank-relaxed fine-tuning steps (0: the prediction alone)" },
    rank: { type: "integer", min: 1, default: PERSONALIZE_STUDY_CHOSEN.rank, description: "rank of the fine-tuned LoRA (the personalisation study's choice for the bundled model)" },
    "learning-rate": { type: "number", above: 0, default: PERSONALIZE_STUDY_CHOSEN.learningRate, value: "<lr>", description: "the fine-tuning's learning rate (the personalisation study's choice for the bundled model)" },
    guidance: { type: "number", min: 0, default: 5, value: "<scale>", description: "classifier-free guidance scale" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb demo --out out/demo", "hdb demo --face me.png --out out/me", "hdb demo --base --steps 10 --seed 7"],
});

const escapeHtml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

interface Row {
  prompt: string;
  files: string[];
}

/** Renders each prompt at each seed into `out`; returns the rows (prompt → files) and the images in order. */
async function renderGrid(pipeline: StableDiffusionPipeline, prompts: readonly string[], seeds: readonly number[], out: string,
  options: { steps: number; guidance: number }): Promise<{ rows: Row[]; images: RgbImage[] }> {
  const progress = new Progress({ label: "demo", total: prompts.length * seeds.length });
  const rows: Row[] = [];
  const images: RgbImage[] = [];
  for (const [p, prompt] of prompts.entries()) {
    const files: string[] = [];
    for (const seed of seeds) {
      const result = pipeline.generate({ prompt, seed, steps: options.steps, guidanceScale: options.guidance, scheduler: "dpm++2m" });
      const image = result.rgb[0]!;
      result.images.dispose();
      result.latents.dispose();
      const file = `${String(p).padStart(2, "0")}-seed${seed}.png`;
      await savePng(path.join(out, file), image);
      files.push(file);
      images.push(image);
      progress.tick(1, prompt);
    }
    rows.push({ prompt, files });
  }
  return { rows, images };
}

/** The personalisation: the Personalizer, once, for the face; its files under <out>/person/. */
async function personalizeFace(model: string, hypernetwork: string, face: string, out: string, settings: { steps: number; rank: number; learningRate: number }):
  Promise<Personalization & { load: number; identifier: string }> {
  const personalizer = await Personalizer.open({ model, hypernetwork, settings });
  try {
    mkdirSync(path.join(out, "person"), { recursive: true });
    const result = await personalizer.personalize([face], path.join(out, "person", "person.lidb.safetensors"), {
      exports: { diffusers: path.join(out, "person", "pytorch_lora_weights.safetensors"), kohya: path.join(out, "person", "person.kohya.safetensors") },
    });
    return { ...result, load: personalizer.loadSeconds, identifier: personalizer.config.identifier };
  } finally {
    personalizer.dispose();
  }
}

export async function runDemo(argv: string[]): Promise<void> {
  const { values } = parseFlags(DEMO_SPEC, argv);
  const bundled = bundledMiniworldDir();
  const model = path.resolve(values.model ?? path.join(bundled, "base"));
  if (!existsSync(path.join(model, "model_index.json"))) {
    throw new Error(`no diffusers model at ${model} (model_index.json missing): the bundled model is made by \`hdb miniworld build\``);
  }
  const personal = !values.base;
  const hypernetwork = path.resolve(values.hypernetwork ?? path.join(bundled, "hypernetwork"));
  // samples/ sits beside models/ (bundled = <root>/models/miniworld), in a checkout or a copy without .git alike.
  const face = path.resolve(values.face ?? path.join(bundled, "..", "..", SAMPLE_FACE));
  if (personal && !existsSync(path.join(hypernetwork, "config.json"))) {
    throw new Error(`no HyperNetwork at ${hypernetwork} (config.json missing): the bundled one is made by \`hdb miniworld hypernetwork\`; or run \`hdb demo --base\``);
  }
  if (personal && !existsSync(face)) throw new Error(`--face: no such file '${face}'`);
  const out = path.resolve(values.out);
  const { seed: firstSeed, steps, guidance } = values;
  if (values.threads !== undefined) setNumThreads(values.threads);
  const seeds = [firstSeed, firstSeed + 1];
  mkdirSync(out, { recursive: true });

  const started = performance.now();
  const person = personal ? await personalizeFace(model, hypernetwork, face, out, {
    steps: values["fine-tune-steps"], rank: values.rank, learningRate: values["learning-rate"],
  }) : null;
  const renderStarted = performance.now();
  const pipeline = await StableDiffusionPipeline.fromPretrained(model);
  const applied = person ? applyAdapterFiles({ unet: pipeline.unet, textEncoder: pipeline.textEncoder }, { lidb: [{ path: person.file, weight: 1 }] }) : null;
  const prompts = person ? PERSONAL_STYLES.map((styles) => identifierPrompt(person.identifier, styles)) : [...DEMO_PROMPTS];
  const { rows, images } = await renderGrid(pipeline, prompts, seeds, out, { steps, guidance });
  applied?.dispose();
  pipeline.dispose();
  const renderSeconds = (performance.now() - renderStarted) / 1000;
  const columns = person ? seeds.length * 3 : seeds.length * 4;
  const reference = person ? await loadImage(face, { width: images[0]!.width, height: images[0]!.height }) : null;
  if (reference) await savePng(path.join(out, "reference.png"), reference);
  await savePng(path.join(out, "grid.png"), imageGrid(images, columns));
  const seconds = (performance.now() - started) / 1000;

  // What reproduces the images: the command, the commit and the sha256 of every model file (provenance.json).
  const record = provenance({
    command: ["hdb", "demo", ...argv], threads: getNumThreads(), measured: [model, ...(person ? [hypernetwork, face] : [])], versions: { torch: buildInfo().torchVersion },
  });
  writeJsonAtomic(path.join(out, "provenance.json"), record);
  const root = repositoryRoot(model);
  const made = `Made by \`${record.command}\` at commit ${record.commit ?? "(not a git checkout)"}${record.dirty ? " with local changes" : ""} (provenance.json)`;
  const sampling = `DPM-Solver++ 2M, ${steps} steps, guidance ${guidance}, seeds ${seeds.join(" and ")}`;
  const kb = (bytes: number): string => `${(bytes / 1024).toFixed(0)} KB`;
  const phases = person ? [
    ["load the models, HyperNetwork and encoder", person.load], ["encode the photo", person.times.encode], ["predict the LiDB weights", person.times.predict],
    ["merge them", person.times.merge], [`fine-tune (${person.settings.steps} steps, rank ${person.settings.rank})`, person.times.fineTune],
    ["save", person.times.save], ["export as standard LoRAs", person.times.export], ["render the grid", renderSeconds],
  ] as const : [];
  const files = person ? [[path.join("person", path.basename(person.file)), person.bytes], ...person.exports.map((e) => [path.relative(out, e.file), e.bytes] as const)] as const : [];
  const summary = person
    ? `model ${recordedPath(model, root)} personalised from ${recordedPath(face, root)} in ${person.times.total.toFixed(1)} s (models loaded in ${person.load.toFixed(1)} s); ` +
      `"${person.identifier}" is the person. ${sampling}; ${seconds.toFixed(1)} s in all on ${record.threads} threads. ${made}`
    : `model ${recordedPath(model, root)}, ${sampling}; ${seconds.toFixed(1)} s on ${record.threads} threads. ${made}`;
  const table = (r: Row): string => `<tr><td>${escapeHtml(r.prompt)}</td>${r.files.map((f) => `<td><img src="${f}" alt="${escapeHtml(r.prompt)}"></td>`).join("")}</tr>`;
  writeFileAtomic(path.join(out, "index.html"), `<!doctype html>
<html><head><meta charset="utf-8"><title>hyperdreambooth demo</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px}img{width:128px;height:128px;image-rendering:pixelated}</style></head>
<body><h1>${person ? "One photo → a personalised model" : "The bundled mini-world model"}</h1><p>${escapeHtml(summary)}</p>
${person ? `<h2>The photo</h2><p><img src="reference.png" alt="the reference photo"></p>
<h2>Time of each phase</h2><table>${phases.map(([what, s]) => `<tr><td>${escapeHtml(what)}</td><td>${s.toFixed(2)} s</td></tr>`).join("")}</table>
<h2>Files</h2><table>${files.map(([f, bytes]) => `<tr><td><a href="${f}">${escapeHtml(f)}</a></td><td>${kb(bytes)}</td></tr>`).join("")}</table>
<h2>The person in other styles</h2>` : ""}<table>
${rows.map(table).join("\n")}
</table></body></html>
`);
  writeFileAtomic(path.join(out, "README.md"), `# ${person ? "One photo → a personalised model" : "The bundled mini-world model"}

${summary}
${person ? `
![the photo](reference.png)

| phase | seconds |
|---|---|
${phases.map(([what, s]) => `| ${what} | ${s.toFixed(2)} |`).join("\n")}

| file | size |
|---|---|
${files.map(([f, bytes]) => `| ${f} | ${kb(bytes)} |`).join("\n")}
` : ""}
| prompt | ${seeds.map((s) => `seed ${s}`).join(" | ")} |
|---|${seeds.map(() => "---").join("|")}|
${rows.map((r) => `| ${r.prompt} | ${r.files.map((f) => `![](${f})`).join(" | ")} |`).join("\n")}
`);
  const what = person ? `personalised in ${person.times.total.toFixed(1)} s, then ` : "";
  process.stdout.write(`${what}${images.length} images in ${seconds.toFixed(1)} s → ${out}/index.html (also README.md, grid.png)\n`);
}
