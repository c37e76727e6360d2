/**
 * `hdb miniworld`: look at, export, build and measure the mini-world (src/miniworld/). Subcommands: render,
 * vocab, styles, describe (their flags are the specs below), build and metrics (miniworld-build.ts), lidb-set
 * and encoder (miniworld-hypernetwork.ts), quality and
 * dreambooth (miniworld-evaluate.ts); `hdb miniworld --help` lists them, `hdb miniworld <sub> --help` shows one.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { caption, describeIdentity } from "../miniworld/captions.js";
import { renderFaces, type RenderRequest } from "../miniworld/render.js";
import { splitOf } from "../miniworld/splits.js";
import { resolveStyles, STYLES, type StyleName } from "../miniworld/styles.js";
import { writeVocabulary } from "../miniworld/vocabulary.js";
import { imageGrid, savePng } from "../pipeline/images.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { defineCommand, formatCommandList, HelpRequested, parseFlags, type CommandSpec } from "../util/flags.js";
import { MINIWORLD_BUILD_SPEC, MINIWORLD_METRICS_SPEC, runMiniworldBuild, runMiniworldMetrics } from "./miniworld-build.js";
import {
  MINIWORLD_ENCODER_SPEC, MINIWORLD_HYPERNETWORK_SPEC, MINIWORLD_LIDB_SET_SPEC, runMiniworldEncoder, runMiniworldHypernetwork, runMiniworldLidbSet,
} from "./miniworld-hypernetwork.js";
import { MINIWORLD_PERSONALIZE_SPEC, runMiniworldPersonalize } from "./miniworld-personalize.js";
import { MINIWORLD_DREAMBOOTH_SPEC, MINIWORLD_QUALITY_SPEC, runMiniworldDreamBooth, runMiniworldQuality } from "./miniworld-evaluate.js";
import { Progress } from "../util/progress.js";

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

export const MINIWORLD_RENDER_SPEC = defineCommand({
  name: "miniworld render",
  summary: "faces of the synthetic world: one PNG per (style, nuisance seed, id), captions.json, a contact sheet",
  usage: "--ids 0-15[,40,60000-60003] --out <folder> [flags]",
  details: `Files are named <id>[-<style>][-n<seed>].png; captions.json lists file, id, split, style, seed and caption.
The folder holds photos only (hdb train-lidb --instance-data-dir or --identities can take it as it is): the
contact sheet, one row per style and seed (wrapped at --columns), goes next to it. Every write is atomic.`,
  flags: {
    ids: { type: "string", value: "<list>", description: "identities, e.g. 0-15,40 (required)" },
    out: { type: "string", value: "<folder>", description: "the folder for the photos and captions.json (required)" },
    style: { type: "string", value: "<a[+b]>", description: "one style combination; photo is the plain one, hdb miniworld styles lists the rest", defaultText: "photo" },
    styles: { type: "string", value: "<a,b+c,…>", description: "several style combinations, instead of --style" },
    "nuisance-seeds": { type: "string", value: "<list>", description: "per-photo nuisance seeds, e.g. 0-3", defaultText: "none: the canonical frontal photo" },
    size: { type: "integer", min: 8, max: 2048, default: 64, value: "<px>", description: "image size" },
    columns: { type: "integer", min: 1, description: "contact sheet columns", defaultText: "the number of ids, at most 32" },
    sheet: { type: "string", value: "<file.png>", description: "the contact sheet's path, outside --out", defaultText: "<out>-contact-sheet.png" },
    "no-sheet": { type: "boolean", description: "write no contact sheet" },
  },
  examples: [
    "hdb miniworld render --ids 0-15 --style pencil-sketch --out faces/",
    "hdb miniworld render --ids 60000 --nuisance-seeds 0-3 --out me/ && hdb train-lidb --pretrained-model models/miniworld/base --instance-data-dir me/ --output-dir out/ --lidb-a 32 --lidb-b 16",
  ],
});

export const MINIWORLD_VOCAB_SPEC = defineCommand({
  name: "miniworld vocab",
  summary: "the world's tokenizer files (vocab.json, merges.txt and the configs)",
  usage: "--out <folder>",
  flags: { out: { type: "string", value: "<folder>", description: "where the files go (required)" } },
  examples: ["hdb miniworld vocab --out /tmp/tokenizer"],
});

export const MINIWORLD_STYLES_SPEC = defineCommand({
  name: "miniworld styles",
  summary: "the style names, their kinds and prompt phrases",
  usage: "",
  flags: {},
  examples: ["hdb miniworld styles"],
});

export const MINIWORLD_DESCRIBE_SPEC = defineCommand({
  name: "miniworld describe",
  summary: "each identity's split, attributes and a caption",
  usage: "--ids 0-3 [--style <a[+b]>]",
  flags: {
    ids: { type: "string", value: "<list>", description: "identities, e.g. 0-3,60000 (required)" },
    style: { type: "string", value: "<a[+b]>", description: "the caption's style combination", defaultText: "photo" },
  },
  examples: ["hdb miniworld describe --ids 0-3", "hdb miniworld describe --ids 60000 --style pencil-sketch+wearing-a-crown"],
});

/** The subcommands of `hdb miniworld`, in the order the help lists them. */
export const MINIWORLD_COMMANDS: readonly CommandSpec[] = [
  MINIWORLD_RENDER_SPEC, MINIWORLD_BUILD_SPEC, MINIWORLD_METRICS_SPEC, MINIWORLD_QUALITY_SPEC, MINIWORLD_DREAMBOOTH_SPEC, MINIWORLD_LIDB_SET_SPEC,
  MINIWORLD_ENCODER_SPEC, MINIWORLD_HYPERNETWORK_SPEC, MINIWORLD_PERSONALIZE_SPEC, MINIWORLD_VOCAB_SPEC, MINIWORLD_STYLES_SPEC, MINIWORLD_DESCRIBE_SPEC,
];

/** `hdb miniworld --help`. */
export function miniworldHelp(): string {
  return formatCommandList("hdb miniworld: the synthetic face world and the bundled model trained on it", "usage: hdb miniworld <command> [flags]",
    MINIWORLD_COMMANDS, ["hdb miniworld render --ids 0-15 --style pencil-sketch --out faces/", "hdb miniworld render --help"]);
}

/** Where the contact sheet goes: --sheet, else next to the photo folder; never inside it. */
export function contactSheetPath(out: string, sheet: string | undefined): string {
  const folder = path.resolve(out);
  const file = sheet === undefined ? `${folder}-contact-sheet.png` : path.resolve(sheet);
  const inside = path.relative(folder, file);
  if (!inside.startsWith("..") && !path.isAbsolute(inside)) {
    throw new Error(`--sheet ${sheet} lies inside --out ${out}: the folder holds photos only (training would take the sheet for a photo); put it elsewhere`);
  }
  return file;
}

async function render(argv: string[]): Promise<void> {
  const { values } = parseFlags(MINIWORLD_RENDER_SPEC, argv);
  if (!values.ids) throw new Error("--ids is required (e.g. --ids 0-15)");
  if (!values.out) throw new Error("--out is required (a folder)");
  if (values.style && values.styles) throw new Error("give --style or --styles, not both");
  const sheet = values["no-sheet"] ? null : contactSheetPath(values.out, values.sheet);
  const ids = parseIdList(values.ids, "ids");
  const combos = (values.styles ?? values.style ?? "photo").split(",").map(parseStyle);
  const seeds: (number | undefined)[] = values["nuisance-seeds"] ? parseIdList(values["nuisance-seeds"], "nuisance-seeds") : [undefined];
  const size = values.size;
  const columns = values.columns ?? Math.min(ids.length, 32);

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
    if (sheet) images.push(...rendered);
    progress.tick(batch.length);
  }
  const seconds = (Date.now() - started) / 1000;
  writeJsonAtomic(path.join(values.out, "captions.json"), requests.map((r) => ({
    file: r.file, id: r.id, split: splitOf(r.id) ?? null, style: r.styleNames, nuisanceSeed: r.nuisanceSeed ?? null,
    caption: caption(r.id, r.styleNames, 0, { nuisanceSeed: r.nuisanceSeed }),
  })));
  if (sheet) {
    mkdirSync(path.dirname(sheet), { recursive: true });
    await savePng(sheet, imageGrid(images, columns));
  }
  process.stdout.write(`${requests.length} faces at ${size}x${size} in ${seconds.toFixed(1)} s (${(requests.length / seconds).toFixed(0)} images/s) → ${values.out}` +
    `${sheet ? ` (contact sheet ${sheet})` : ""}\n`);
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
    case "metrics":
      await runMiniworldMetrics(rest);
      return;
    case "lidb-set":
      await runMiniworldLidbSet(rest);
      return;
    case "hypernetwork":
      await runMiniworldHypernetwork(rest);
      return;
    case "encoder":
      await runMiniworldEncoder(rest);
      return;
    case "personalize":
      await runMiniworldPersonalize(rest);
      return;
    case "quality":
      await runMiniworldQuality(rest);
      return;
    case "dreambooth":
      await runMiniworldDreamBooth(rest);
      return;
    case "vocab": {
      const { values } = parseFlags(MINIWORLD_VOCAB_SPEC, rest);
      if (!values.out) throw new Error("--out is required (a folder for vocab.json, merges.txt and the configs)");
      writeVocabulary(values.out);
      process.stdout.write(`wrote the mini-world tokenizer to ${values.out}\n`);
      return;
    }
    case "styles":
      parseFlags(MINIWORLD_STYLES_SPEC, rest);
      for (const style of STYLES) process.stdout.write(`${style.name.padEnd(24)} ${style.kind.padEnd(15)} "${style.prompt}"\n`);
      return;
    case "describe": {
      const { values } = parseFlags(MINIWORLD_DESCRIBE_SPEC, rest);
      if (!values.ids) throw new Error("--ids is required (e.g. --ids 0-3)");
      const styleNames = parseStyle(values.style ?? "photo");
      for (const id of parseIdList(values.ids, "ids")) {
        const d = describeIdentity(id);
        process.stdout.write(`${id} (${splitOf(id) ?? "no split"}): ${d.noun}; ${d.attributes.map((a) => a.phrase).join("; ")}\n  "${caption(id, styleNames)}"\n`);
      }
      return;
    }
    case "help":
    case "--help":
    case "-h":
      throw new HelpRequested(miniworldHelp());
    default:
      throw new Error(`miniworld: unknown command '${command ?? ""}' (build, metrics, quality, dreambooth, lidb-set, encoder, hypernetwork, render, vocab, styles, describe)`);
  }
}
