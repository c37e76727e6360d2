/**
 * `hdb miniworld`: look at and export the mini-world (src/miniworld/).
 *
 *   hdb miniworld render --ids 0-15[,40,60000-60003] [--style pencil-sketch[+wearing-sunglasses]]
 *       [--styles photo,pencil-sketch,...] [--nuisance-seeds 0-3] [--size 64] [--columns N] [--no-sheet]
 *       --out <folder>
 *     One PNG per (style, nuisance seed, id) named <id>[-<style>][-n<seed>].png, captions.json (file, id, style,
 *     seed, caption), and contact-sheet.png: one row per style and seed (wrapped at --columns). `photo` is the
 *     plain style; without --nuisance-seeds, the canonical frontal photo. Every write is atomic.
 *   hdb miniworld build [--out models/miniworld] ...   train the bundled base model from seeds (miniworld-build.ts)
 *   hdb miniworld quality | dreambooth ...             measure it with the metric networks (miniworld-evaluate.ts)
 *   hdb miniworld vocab --out <folder>      the tokenizer files (vocab.json, merges.txt, configs)
 *   hdb miniworld styles                    style names and their prompt phrases
 *   hdb miniworld describe --ids 0-3        each identity's attributes and a caption
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { caption, describeIdentity } from "../miniworld/captions.js";
import { renderFaces, type RenderRequest } from "../miniworld/render.js";
import { splitOf } from "../miniworld/splits.js";
import { resolveStyles, STYLES, type StyleName } from "../miniworld/styles.js";
import { writeVocabulary } from "../miniworld/vocabulary.js";
import { imageGrid, savePng } from "../pipeline/images.js";
import { writeJsonAtomic } from "../pipeline/save-pretrained.js";
import { runMiniworldBuild } from "./miniworld-build.js";
import { runMiniworldDreamBooth, runMiniworldQuality } from "./miniworld-evaluate.js";
import { Progress } from "./progress.js";

/** "0-3,7,10-11" → [0, 1, 2, 3, 7, 10, 11]. */
export function parseIdList(text: string, flag: string): number[] {
  const ids: number[] = [];
  for (const part of text.split(",")) {
    const match = /^(\d+)(?:-(\d+))?$/.exec(part.trim());
    if (!match) throw new Error(`--${flag}: expected ids like 0-15,20, got '${part}'`);
    const first = Number(match[1]);
    const last = match[2] === undefined ? first : Number(match[2]);
    if (last < first) throw new Error(`--${flag}: range '${part}' runs backwards`);
    if (last - first >= 100_000) throw new Error(`--${flag}: range '${part}' is too long (at most 100,000 ids)`);
    for (let id = first; id <= last; id++) ids.push(id);
  }
  return ids;
}

/** A style combination "a+b" (or "photo") → the style names, checked. */
function parseStyle(text: string): StyleName[] {
  if (text === "photo") return [];
  const names = text.split("+").map((s) => s.trim());
  resolveStyles(names);
  return names as StyleName[];
}

async function render(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      ids: { type: "string" }, style: { type: "string" }, styles: { type: "string" }, "nuisance-seeds": { type: "string" },
      size: { type: "string" }, columns: { type: "string" }, "no-sheet": { type: "boolean" }, out: { type: "string" },
    },
  });
  if (!values.ids) throw new Error("--ids is required (e.g. --ids 0-15)");
  if (!values.out) throw new Error("--out is required (a folder)");
  if (values.style && values.styles) throw new Error("give --style or --styles, not both");
  const ids = parseIdList(values.ids, "ids");
  const combos = (values.styles ?? values.style ?? "photo").split(",").map(parseStyle);
  const seeds: (number | undefined)[] = values["nuisance-seeds"] ? parseIdList(values["nuisance-seeds"], "nuisance-seeds") : [undefined];
  const size = values.size === undefined ? 64 : Number(values.size);
  if (!Number.isInteger(size) || size < 8 || size > 2048) throw new Error(`--size must be an integer in [8, 2048], got '${values.size}'`);
  const columns = values.columns === undefined ? Math.min(ids.length, 32) : Number(values.columns);
  if (!Number.isInteger(columns) || columns < 1) throw new Error(`--columns must be a positive integer, got '${values.columns}'`);

  const requests: (RenderRequest & { file: string; styleNames: StyleName[] })[] = [];
  for (const styleNames of combos) {
    for (const seed of seeds) {
      for (const id of ids) {
        const name = [String(id), ...(styleNames.length ? [styleNames.join("+")] : []), ...(seed === undefined ? [] : [`n${seed}`])].join("-");
        requests.push({ id, nuisanceSeed: seed, style: styleNames, size, file: `${name}.png`, styleNames });
      }
    }
  }
  mkdirSync(values.out, { recursive: true });
  const progress = new Progress({ label: "rendering", total: requests.length });
  const started = Date.now();
  const chunk = 256;
  const images = [];
  for (let i = 0; i < requests.length; i += chunk) {
    const batch = requests.slice(i, i + chunk);
    const rendered = await renderFaces(batch);
    await Promise.all(batch.map((r, k) => savePng(path.join(values.out!, r.file), rendered[k]!)));
    if (!values["no-sheet"]) images.push(...rendered);
    progress.tick(batch.length);
  }
  const seconds = (Date.now() - started) / 1000;
  writeJsonAtomic(path.join(values.out, "captions.json"), requests.map((r) => ({
    file: r.file, id: r.id, split: splitOf(r.id) ?? null, style: r.styleNames, nuisanceSeed: r.nuisanceSeed ?? null,
    caption: caption(r.id, r.styleNames, 0, { nuisanceSeed: r.nuisanceSeed }),
  })));
  if (!values["no-sheet"]) await savePng(path.join(values.out, "contact-sheet.png"), imageGrid(images, columns));
  process.stdout.write(`${requests.length} faces at ${size}x${size} in ${seconds.toFixed(1)} s (${(requests.length / seconds).toFixed(0)} images/s) → ${values.out}\n`);
}

export async function runMiniworld(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "render":
      await render(rest);
      return;
    case "build":
      await runMiniworldBuild(rest);
      return;
    case "quality":
      await runMiniworldQuality(rest);
      return;
    case "dreambooth":
      await runMiniworldDreamBooth(rest);
      return;
    case "vocab": {
      const { values } = parseArgs({ args: rest, options: { out: { type: "string" } } });
      if (!values.out) throw new Error("--out is required (a folder for vocab.json, merges.txt and the configs)");
      writeVocabulary(values.out);
      process.stdout.write(`wrote the mini-world tokenizer to ${values.out}\n`);
      return;
    }
    case "styles":
      for (const style of STYLES) process.stdout.write(`${style.name.padEnd(24)} ${style.kind.padEnd(15)} "${style.prompt}"\n`);
      return;
    case "describe": {
      const { values } = parseArgs({ args: rest, options: { ids: { type: "string" }, style: { type: "string" } } });
      if (!values.ids) throw new Error("--ids is required (e.g. --ids 0-3)");
      const styleNames = parseStyle(values.style ?? "photo");
      for (const id of parseIdList(values.ids, "ids")) {
        const d = describeIdentity(id);
        process.stdout.write(`${id} (${splitOf(id) ?? "no split"}): ${d.noun}; ${d.attributes.map((a) => a.phrase).join("; ")}\n  "${caption(id, styleNames)}"\n`);
      }
      return;
    }
    default:
      throw new Error(`miniworld: unknown command '${command ?? ""}' (build, quality, dreambooth, render, vocab, styles, describe)`);
  }
}
