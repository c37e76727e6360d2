/**
 * `hdb score`: HyperDreamBooth §5's metrics of generated images against the reference photo, at Stable Diffusion
 * scale (src/evaluation/photo-metrics/): Face Rec (face descriptor cosine; no face = no score, with the detection
 * rate), DINO (facebook/dino-vits16 CLS cosine), CLIP-I (CLIP image embedding cosine) and CLIP-T (image vs the
 * prompt without the identifier). Prints a table; --out writes every score, the means and the provenance as JSON.
 */
import { existsSync, statSync } from "node:fs";
import { getNumThreads } from "../engine/index.js";
import { PhotoScorer, type PhotoScores, type PhotoScoreSummary } from "../evaluation/photo-metrics/index.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { defineCommand, parseFlags } from "../util/flags.js";
import { provenance } from "../util/provenance.js";

export const SCORE_SPEC = defineCommand({
  name: "score",
  summary: "the paper's metrics of generated images vs the reference photo: Face Rec, DINO, CLIP-I, CLIP-T",
  usage: "--reference <photo> --prompt <text> [--identifier sks] --dino <dir> --clip <dir> [--faces <dir>] <images…>",
  details: `HyperDreamBooth §5's metrics, each a cosine similarity against the reference photo:
  Face Rec  face descriptors (dlib ResNet) of the largest face in each image, on aligned crops; an image without
            a detected face has no score, and the mean is over the images with a face (the detection rate beside it)
  DINO      CLS token of a ViT (--dino: a transformers ViTModel folder, facebook/dino-vits16)
  CLIP-I    CLIP image embeddings (--clip: a transformers CLIP folder, openai/clip-vit-large-patch14, with its
            preprocessor_config.json and tokenizer files)
  CLIP-T    the image's CLIP embedding vs the prompt's with the identifier removed ("a sks face as a pencil
            sketch" → "a face as a pencil sketch")
A metric whose folder is not given is left out; Face Rec uses the face networks that ship with the package
(--faces: another face-api model folder, --no-face-rec: off). --out writes the scores, the means and the
provenance as JSON.`,
  positionals: true,
  flags: {
    reference: { type: "string", value: "<photo>", description: "the reference photo of the person (required)" },
    prompt: { type: "string", value: "<text>", description: "the prompt the images were generated from (required with --clip)" },
    identifier: { type: "string", value: "<word>", default: "sks", description: "the identifier token CLIP-T removes from the prompt" },
    dino: { type: "string", value: "<dir>", description: "DINO: a ViTModel folder (config.json + model.safetensors)" },
    clip: { type: "string", value: "<dir>", description: "CLIP-I and CLIP-T: a CLIP folder (config.json, model.safetensors, tokenizer, preprocessor)" },
    faces: { type: "string", value: "<dir>", description: "Face Rec: a face-api model folder", defaultText: "the installed @vladmandic/face-api's" },
    "no-face-rec": { type: "boolean", description: "leave Face Rec out" },
    "min-confidence": { type: "number", above: 0, max: 0.99, default: 0.5, value: "<score>", description: "the face detector's score threshold" },
    out: { type: "string", value: "<file.json>", description: "write the scores and means as JSON" },
  },
  examples: [
    "hdb score --reference me.jpg --prompt \"a sks face as a pencil sketch\" --dino models/dino-vits16 --clip models/clip-vit-large-patch14 out/*.png",
    "hdb score --reference me.jpg --dino models/dino-vits16 --no-face-rec --out scores.json generated.png",
  ],
});

const isFolder = (path: string): boolean => existsSync(path) && statSync(path).isDirectory();

/** The table: one row per image, then the means (Face Rec's over the images with a face, with the detection rate). */
export function formatScoreTable(scores: readonly PhotoScores[], summary: PhotoScoreSummary): string {
  const columns = [
    ["Face Rec", summary.faceRec, (s: PhotoScores) => (s.faceDetected === false ? "no face" : s.faceRec)],
    ["DINO", summary.dino, (s: PhotoScores) => s.dino],
    ["CLIP-I", summary.clipI, (s: PhotoScores) => s.clipI],
    ["CLIP-T", summary.clipT, (s: PhotoScores) => s.clipT],
  ] as const;
  const shown = columns.filter(([, measured]) => measured !== undefined);
  const cell = (v: number | string | null): string => (v === null ? "-" : typeof v === "string" ? v : v.toFixed(4));
  const rows = scores.map((s) => [s.image, ...shown.map(([, , get]) => cell(get(s)))]);
  rows.push(["mean", ...shown.map(([, measured]) => cell(measured!.mean))]);
  const header = ["image", ...shown.map(([name]) => name)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]): string => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ").trimEnd();
  const lines = [line(header), ...rows.map(line)];
  if (summary.faceRec) {
    const { detected, detectionRate } = summary.faceRec;
    lines.push(`faces detected in ${detected} of ${summary.images} images (${(detectionRate * 100).toFixed(1)} %); the Face Rec mean is over those`);
  }
  return `${lines.join("\n")}\n`;
}

export async function runScore(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(SCORE_SPEC, argv);
  if (positionals.length === 0) throw new Error(`usage: hdb score ${SCORE_SPEC.usage} (no images given)`);
  if (!values.reference) throw new Error("--reference is required (the reference photo the images are compared with)");
  const faceRec = !values["no-face-rec"];
  if (values.faces !== undefined && !faceRec) throw new Error("give --faces or --no-face-rec, not both");
  if (values.dino === undefined && values.clip === undefined && !faceRec) throw new Error("nothing to measure: give --dino, --clip, or leave Face Rec on");
  if (values.clip !== undefined && values.prompt === undefined) throw new Error("--prompt is required with --clip (CLIP-T compares each image with it)");
  if (values.identifier.trim() === "") throw new Error("--identifier must not be empty");
  for (const [flag, dir] of [["dino", values.dino], ["clip", values.clip], ["faces", values.faces]] as const) {
    if (dir !== undefined && !isFolder(dir)) throw new Error(`--${flag}: ${dir} is not a folder`);
  }
  for (const file of [values.reference, ...positionals]) {
    if (!existsSync(file) || !statSync(file).isFile()) throw new Error(`${file === values.reference ? "--reference: " : ""}${file}: no such image file`);
  }
  const scorer = PhotoScorer.fromFolders({
    ...(values.dino === undefined ? {} : { dino: values.dino }),
    ...(values.clip === undefined ? {} : { clip: values.clip }),
    faces: faceRec ? values.faces ?? true : false,
    faceMinConfidence: values["min-confidence"],
  });
  let result;
  try {
    result = await scorer.scoreAll(values.reference, positionals, values.prompt, values.identifier);
  } finally {
    scorer.dispose();
  }
  process.stdout.write(formatScoreTable(result.scores, result.summary));
  if (values.out) {
    const clipText = values.prompt === undefined ? null : PhotoScorer.clipTextOf(values.prompt, values.identifier);
    writeJsonAtomic(values.out, {
      reference: values.reference,
      prompt: values.prompt ?? null,
      identifier: values.identifier,
      clipText: values.clip === undefined ? null : clipText,
      models: { dino: values.dino ?? null, clip: values.clip ?? null, faces: faceRec ? values.faces ?? "@vladmandic/face-api" : null },
      summary: result.summary,
      scores: result.scores,
      provenance: provenance({ command: ["hdb", "score", ...argv], threads: getNumThreads(), measured: [values.reference, ...positionals] }),
    });
    process.stdout.write(`scores → ${values.out}\n`);
  }
}
