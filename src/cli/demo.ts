/**
 * `hdb demo`: the README's main job. Loads the bundled mini-world model (a Stable-Diffusion-architecture model
 * trained by `hdb miniworld build`, models/miniworld/base) and renders a grid of prompts, two seeds each,
 * into a folder: one PNG per image, grid.png, index.html, README.md (the prompts next to their images) and provenance.json.
 * Flags: DEMO_SPEC below (`hdb demo --help`).
 *
 * Each image is exactly `hdb generate --model <folder> --prompt "<prompt>" --seed <seed> --batch 1 --steps 25
 * --scheduler dpm++2m --guidance 5` (one call per prompt and seed), so any one can be reproduced alone.
 */
import { existsSync, mkdirSync } from "node:fs";
import path from "node:path";
import { buildInfo, getNumThreads, setNumThreads } from "../engine/index.js";
import { bundledMiniworldDir } from "../miniworld/base-model/recipe.js";
import { imageGrid, savePng, type RgbImage } from "../pipeline/images.js";
import { writeFileAtomic, writeJsonAtomic } from "../util/atomic.js";
import { StableDiffusionPipeline } from "../pipeline/stable-diffusion.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { Progress } from "../util/progress.js";
import { provenance, recordedPath, repositoryRoot } from "../util/provenance.js";

/** Prompts that show what the world's words can ask for: attributes, media, scenes, accessories, transformations. */
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

export const DEMO_SPEC = defineCommand({
  name: "demo",
  summary: "the main job: a grid of images from the bundled mini-world model (PNGs, grid.png, index.html, README.md)",
  usage: "[flags]",
  flags: {
    model: { type: "string", value: "<folder>", description: "the diffusers model folder", defaultText: "models/miniworld/base" },
    out: { type: "string", value: "<folder>", description: "where the images, grid.png, index.html and README.md go", default: path.join("out", "demo") },
    seed: { type: "integer", min: 0, default: 0, description: "the first of the two seeds of each prompt" },
    steps: { type: "integer", min: 1, default: 25, description: "DPM-Solver++ 2M steps per image" },
    guidance: { type: "number", min: 0, default: 5, value: "<scale>", description: "classifier-free guidance scale" },
    threads: { type: "integer", min: 1, description: "CPU threads", defaultText: "libtorch's" },
  },
  examples: ["hdb demo --out out/demo", "hdb demo --steps 10 --seed 7 --threads 2"],
});

const escapeHtml = (text: string): string => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export async function runDemo(argv: string[]): Promise<void> {
  const { values } = parseFlags(DEMO_SPEC, argv);
  const model = path.resolve(values.model ?? path.join(bundledMiniworldDir(), "base"));
  if (!existsSync(path.join(model, "model_index.json"))) {
    throw new Error(`no diffusers model at ${model} (model_index.json missing): the bundled model is made by \`hdb miniworld build\``);
  }
  const out = path.resolve(values.out);
  const { seed: firstSeed, steps, guidance } = values;
  if (values.threads !== undefined) setNumThreads(values.threads);
  const seeds = [firstSeed, firstSeed + 1];

  const started = performance.now();
  const pipeline = await StableDiffusionPipeline.fromPretrained(model);
  mkdirSync(out, { recursive: true });
  const progress = new Progress({ label: "demo", total: DEMO_PROMPTS.length * seeds.length });
  const rows: { prompt: string; files: string[] }[] = [];
  const images: RgbImage[] = [];
  for (const [p, prompt] of DEMO_PROMPTS.entries()) {
    const files: string[] = [];
    for (const seed of seeds) {
      const result = pipeline.generate({ prompt, seed, steps, guidanceScale: guidance, scheduler: "dpm++2m" });
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
  await savePng(path.join(out, "grid.png"), imageGrid(images, seeds.length * 4));
  const seconds = (performance.now() - started) / 1000;
  // What reproduces the images: the command, the commit and the sha256 of every model file (provenance.json).
  const record = provenance({ command: ["hdb", "demo", ...argv], threads: getNumThreads(), measured: [model], versions: { torch: buildInfo().torchVersion } });
  writeJsonAtomic(path.join(out, "provenance.json"), record);
  const shownModel = recordedPath(model, repositoryRoot(model));
  const settings = `model ${shownModel}, DPM-Solver++ 2M, ${steps} steps, guidance ${guidance}, seeds ${seeds.join(" and ")}; ${seconds.toFixed(1)} s ` +
    `on ${record.threads} threads. Made by \`${record.command}\` at commit ${record.commit ?? "(not a git checkout)"}${record.dirty ? " with local changes" : ""} (provenance.json)`;
  writeFileAtomic(path.join(out, "index.html"), `<!doctype html>
<html><head><meta charset="utf-8"><title>hyperdreambooth demo</title>
<style>body{font-family:sans-serif;margin:2em}td{padding:4px 12px}img{width:128px;height:128px;image-rendering:pixelated}</style></head>
<body><h1>The bundled mini-world model</h1><p>${escapeHtml(settings)}</p><table>
${rows.map((r) => `<tr><td>${escapeHtml(r.prompt)}</td>${r.files.map((f) => `<td><img src="${f}" alt="${escapeHtml(r.prompt)}"></td>`).join("")}</tr>`).join("\n")}
</table></body></html>
`);
  writeFileAtomic(path.join(out, "README.md"), `# The bundled mini-world model

${settings}

| prompt | ${seeds.map((s) => `seed ${s}`).join(" | ")} |
|---|${seeds.map(() => "---").join("|")}|
${rows.map((r) => `| ${r.prompt} | ${r.files.map((f) => `![](${f})`).join(" | ")} |`).join("\n")}
`);
  pipeline.dispose?.();
  process.stdout.write(`${images.length} images in ${seconds.toFixed(1)} s → ${out}/index.html (also README.md, grid.png)\n`);
}
