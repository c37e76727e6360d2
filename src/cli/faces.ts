/**
 * `hdb faces detect|crop|compare <photos…>`: real photos in (src/faces/). detect lists each photo's faces and
 * writes a preview PNG with boxes and landmarks; crop writes aligned face crops (the CelebA-HQ framing Stable
 * Diffusion personalisation uses, or none for the mini-world); compare prints the Face Rec similarity (cosine of
 * dlib face descriptors) of the photos' faces. --detector picks the face detector (SSD MobileNet V1 by default, or
 * face-api's faster Tiny Face Detector at --input-size). Every file is written atomically.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import { cat } from "../engine/functional.js";
import { tidy } from "../engine/lifetime.js";
import type { Tensor } from "../engine/tensor.js";
import {
  cropFace, descriptorSimilarity, FACE_DETECTORS, FaceAnalyzer, facesLeftToRight, FRAMINGS, preprocessFacePhoto, readPhoto, saveFacesPreview,
  type FaceDetectorName, type Framing,
} from "../faces/index.js";
import { savePng } from "../pipeline/images.js";
import { writeJsonAtomic } from "../util/atomic.js";
import { defineCommand, formatCommandList, HelpRequested, parseFlags, type CommandSpec } from "../util/flags.js";

/** The detector flags every faces command takes. */
const detectorFlags = {
  detector: {
    type: "string", choices: FACE_DETECTORS, default: "ssd",
    description: "ssd (SSD MobileNet V1: finds more, smaller faces) or tiny (Tiny Face Detector: faster)",
  },
  "input-size": {
    type: "integer", min: 32, max: 4096, value: "<px>", defaultText: "416",
    description: "--detector tiny's input side, a multiple of 32 (320 is faster, 608 finds smaller faces)",
  },
  "min-confidence": { type: "number", above: 0, max: 0.99, default: 0.5, value: "<score>", description: "the face detector's score threshold" },
} as const;

/** The analyzer the detector flags ask for. */
function analyzerFor(values: { detector: string; "input-size"?: number | undefined; "min-confidence": number }): FaceAnalyzer {
  const inputSize = values["input-size"];
  if (inputSize !== undefined && values.detector !== "tiny") throw new Error(`--input-size is --detector tiny's setting (SSD MobileNet V1 always runs at 512 px); add --detector tiny`);
  if (inputSize !== undefined && inputSize % 32 !== 0) throw new Error(`--input-size must be a multiple of 32 (320, 416, 608, …), got ${inputSize}`);
  return new FaceAnalyzer({ detector: values.detector as FaceDetectorName, minConfidence: values["min-confidence"], ...(inputSize === undefined ? {} : { inputSize }) });
}

export const FACES_DETECT_SPEC = defineCommand({
  name: "faces detect",
  summary: "find the faces in photos (SSD MobileNet V1 or the Tiny Face Detector + 68 landmarks); a preview PNG each",
  usage: "<photo>… [--out <folder>] [--json]",
  details: `Faces are numbered from 0 left to right (the numbers hdb faces crop --face takes). With --out, each photo
gets <out>/<name>-faces.png (the photo, at most 1600 px, with boxes, numbers, scores and landmarks) and
<out>/faces.json lists every face's box, score and landmarks. --detector tiny uses face-api's Tiny Face
Detector (faster, finds fewer faces: reports/faces/report.md; --input-size 320, 416 or 608) instead of SSD.`,
  positionals: true,
  flags: {
    out: { type: "string", value: "<folder>", description: "where the previews and faces.json go" },
    json: { type: "boolean", description: "print the faces as JSON" },
    ...detectorFlags,
  },
  examples: ["hdb faces detect group.jpg --out faces/", "hdb faces detect a.jpg b.jpg --json", "hdb faces detect group.jpg --detector tiny --input-size 608"],
});

export const FACES_CROP_SPEC = defineCommand({
  name: "faces crop",
  summary: "aligned face crops of photos: detect, pick the largest face, align by eyes and mouth, crop, resize",
  usage: "<photo>… --out <folder> [flags]",
  details: `Each photo gives <out>/<name>.png: its largest face (or --face <n>, counted from 0 left to right as
hdb faces detect numbers them) in the CelebA-HQ framing (eyes level, the face centred with hair and chin
around it), --size pixels square. --framing none is the mini-world's: its renders already are aligned crops,
so the photo is only resized. --all crops every face (<name>-<n>.png), leaving out the ones too small.
A photo without a face, or with a face too small for --size (its crop would be upscaled more than 4×, unless
--min-crop-side says otherwise), is an error naming the photo and what was found. <out>/crops.json records
every crop (photo, face, box, score). --detector tiny finds the faces with face-api's Tiny Face Detector.`,
  positionals: true,
  flags: {
    out: { type: "string", value: "<folder>", description: "where the crops go (required)" },
    size: { type: "integer", min: 16, max: 4096, default: 512, value: "<px>", description: "the crops' side" },
    framing: { type: "string", choices: FRAMINGS, default: "celeba-hq", description: "celeba-hq (Stable Diffusion) or none (the mini-world)" },
    face: { type: "integer", min: 0, value: "<n>", description: "which face, counted from 0 left to right", defaultText: "the largest" },
    all: { type: "boolean", description: "crop every face big enough, not only one" },
    "min-crop-side": { type: "number", above: 0, value: "<px>", description: "the smallest accepted crop side in the photo", defaultText: "size / 4" },
    ...detectorFlags,
  },
  examples: ["hdb faces crop me.jpg --out crops/", "hdb faces crop group.jpg --face 2 --out crops/", "hdb faces crop demo/*.jpg --all --size 256 --out crops/"],
});

export const FACES_COMPARE_SPEC = defineCommand({
  name: "faces compare",
  summary: "Face Rec similarity of photos' faces: cosine of dlib face descriptors on aligned crops",
  usage: "<photo> <photo>… [--json]",
  details: `Each photo's largest face is described (128-d dlib ResNet descriptor on its eye-levelled crop) and every
pair compared: cosine similarity, 1 = identical. reports/faces/report.md gives the similarities measured for
the same and for different people on real photos. --detector tiny finds the faces with the Tiny Face Detector.`,
  positionals: true,
  flags: {
    json: { type: "boolean", description: "print the similarity matrix as JSON" },
    ...detectorFlags,
  },
  examples: ["hdb faces compare me.jpg generated.png", "hdb faces compare a.jpg b.jpg c.jpg --json"],
});

export const FACES_COMMANDS: readonly CommandSpec[] = [FACES_DETECT_SPEC, FACES_CROP_SPEC, FACES_COMPARE_SPEC];

/** `hdb faces --help`. */
export function facesHelp(): string {
  return formatCommandList("hdb faces: real photos in (face detection, alignment, crops, Face Rec)", "usage: hdb faces <command> <photo>… [flags]",
    FACES_COMMANDS, ["hdb faces detect group.jpg --out faces/", "hdb faces crop me.jpg --out crops/", "hdb faces compare a.jpg b.jpg"]);
}

const stem = (file: string): string => path.basename(file, path.extname(file));
const round1 = (v: number): number => Math.round(v * 10) / 10;

function needPhotos(positionals: string[], least: number, usage: string): void {
  if (positionals.length < least) throw new Error(`usage: hdb ${usage} (${positionals.length} photo${positionals.length === 1 ? "" : "s"} given, at least ${least} needed)`);
}

async function detect(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(FACES_DETECT_SPEC, argv);
  needPhotos(positionals, 1, `faces detect ${FACES_DETECT_SPEC.usage}`);
  const analyzer = analyzerFor(values);
  if (values.out) mkdirSync(values.out, { recursive: true });
  const records = [];
  try {
    for (const file of positionals) {
      const photo = await readPhoto(file);
      try {
        const faces = facesLeftToRight(analyzer.detect(photo));
        const preview = values.out ? path.join(values.out, `${stem(file)}-faces.png`) : undefined;
        if (preview) await saveFacesPreview(preview, photo, faces);
        const record = {
          photo: file, width: photo.width, height: photo.height, ...(preview ? { preview } : {}),
          faces: faces.map((f, index) => ({
            index, score: Math.round(f.score * 1000) / 1000,
            box: { x: round1(f.box.x), y: round1(f.box.y), width: round1(f.box.width), height: round1(f.box.height) },
            landmarks: f.landmarks.map((p) => [round1(p.x), round1(p.y)]),
          })),
        };
        records.push(record);
        if (!values.json) {
          process.stdout.write(`${file}: ${faces.length} face${faces.length === 1 ? "" : "s"} (${photo.width}×${photo.height})${preview ? ` → ${preview}` : ""}\n`);
          for (const f of record.faces) process.stdout.write(`  #${f.index} score ${f.score.toFixed(3)} box ${f.box.x},${f.box.y} ${f.box.width}×${f.box.height}\n`);
        }
      } finally {
        photo.pixels.dispose();
      }
    }
  } finally {
    analyzer.dispose();
  }
  if (values.out) writeJsonAtomic(path.join(values.out, "faces.json"), records);
  if (values.json) process.stdout.write(`${JSON.stringify(records, null, 2)}\n`);
}

async function crop(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(FACES_CROP_SPEC, argv);
  needPhotos(positionals, 1, `faces crop ${FACES_CROP_SPEC.usage}`);
  if (!values.out) throw new Error("--out is required (the folder for the crops)");
  if (values.all && values.face !== undefined) throw new Error("give --face or --all, not both");
  mkdirSync(values.out, { recursive: true });
  const analyzer = analyzerFor(values);
  const options = {
    framing: values.framing as Framing, size: values.size,
    ...(values.face === undefined ? {} : { face: values.face }),
    ...(values["min-crop-side"] === undefined ? {} : { minCropSide: values["min-crop-side"] }),
  };
  const records: unknown[] = [];
  try {
    for (const file of positionals) {
      if (!values.all || options.framing === "none") {
        const result = await preprocessFacePhoto(file, analyzer, options);
        const out = path.join(values.out, `${stem(file)}.png`);
        try {
          await savePng(out, { width: result.size, height: result.size, data: result.pixels.contiguous().bytes() });
        } finally {
          result.pixels.dispose();
        }
        records.push({ photo: file, crop: out, framing: result.framing, size: result.size, ...faceRecord(result.face) });
        process.stdout.write(`${file} → ${out}${result.face ? ` (face #${result.face.index} of ${result.face.found})` : ""}\n`);
        continue;
      }
      const photo = await readPhoto(file);
      try {
        const faces = facesLeftToRight(analyzer.detect(photo));
        if (faces.length === 0) throw new Error(`${file}: no face found (${analyzer.detectorLabel})`);
        for (let index = 0; index < faces.length; index++) {
          let result;
          try {
            result = cropFace(photo, faces, analyzer, { ...options, face: index });
          } catch (error) {
            process.stdout.write(`${file}: face #${index} left out: ${(error as Error).message.replace(`${file}: `, "")}\n`);
            continue;
          }
          const out = path.join(values.out, `${stem(file)}-${index}.png`);
          try {
            await savePng(out, { width: result.size, height: result.size, data: result.pixels.contiguous().bytes() });
          } finally {
            result.pixels.dispose();
          }
          records.push({ photo: file, crop: out, framing: result.framing, size: result.size, ...faceRecord(result.face) });
          process.stdout.write(`${file} face #${index} → ${out}\n`);
        }
      } finally {
        photo.pixels.dispose();
      }
    }
  } finally {
    analyzer.dispose();
    writeJsonAtomic(path.join(values.out, "crops.json"), records);
  }
}

function faceRecord(face: { index: number; found: number; score: number; box: { x: number; y: number; width: number; height: number } } | undefined): object {
  if (!face) return {};
  const { x, y, width, height } = face.box;
  return { face: face.index, faces: face.found, score: Math.round(face.score * 1000) / 1000, box: { x: round1(x), y: round1(y), width: round1(width), height: round1(height) } };
}

async function compare(argv: string[]): Promise<void> {
  const { values, positionals } = parseFlags(FACES_COMPARE_SPEC, argv);
  needPhotos(positionals, 2, `faces compare ${FACES_COMPARE_SPEC.usage}`);
  const analyzer = analyzerFor(values);
  let matrix: number[][];
  try {
    const descriptors: Tensor[] = [];
    for (const file of positionals) {
      const photo = await readPhoto(file);
      try {
        const faces = analyzer.detect(photo);
        if (faces.length === 0) throw new Error(`${file}: no face found (${analyzer.detectorLabel})`);
        const largest = faces.reduce((a, b) => (b.box.width * b.box.height > a.box.width * a.box.height ? b : a));
        descriptors.push(analyzer.describe(photo, [largest]));
      } finally {
        photo.pixels.dispose();
      }
    }
    matrix = tidy(() => {
      const joined = cat(descriptors, 0);
      return descriptorSimilarity(joined, joined).toArray() as number[][];
    });
    for (const d of descriptors) d.dispose();
  } finally {
    analyzer.dispose();
  }
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ photos: positionals, similarity: matrix.map((r) => r.map((v) => Math.round(v * 1e4) / 1e4)) }, null, 2)}\n`);
    return;
  }
  for (let i = 0; i < positionals.length; i++) {
    for (let j = i + 1; j < positionals.length; j++) process.stdout.write(`${matrix[i]![j]!.toFixed(4)}  ${positionals[i]} ~ ${positionals[j]}\n`);
  }
}

/** `hdb faces <command>`. */
export async function runFaces(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case "detect":
      await detect(rest);
      return;
    case "crop":
      await crop(rest);
      return;
    case "compare":
      await compare(rest);
      return;
    case "help":
    case "--help":
    case "-h":
      throw new HelpRequested(facesHelp());
    default:
      throw new Error(`faces: unknown command '${command ?? ""}' (detect, crop, compare)`);
  }
}
