/**
 * The Face Rec metric and the detector on real photos → reports/faces/ (report.json, report.md, crops.jpg).
 *
 * Photos: the six group photos of @vladmandic/face-api's demo/ folder, and the independent photos of the pip
 * package face_recognition 1.3.0's tests/test_images (White House photos: obama.jpg, obama2.jpg, obama3.jpg —
 * three sittings — and biden.jpg; obama_partial_face*.jpg are crops of obama.jpg and 32bit.png a copy of obama2,
 * so they are left out). Fetch those with
 *   pip download --no-deps --no-binary :all: face-recognition==1.3.0 && tar xzf face_recognition-1.3.0.tar.gz
 * and give the folder: node dist/bench/faces/validate.js --extra face_recognition-1.3.0/tests/test_images
 *
 * Ground truth, looked at by a person (the previews of `hdb faces detect`): the faces a person can see in each
 * photo (VISIBLE_FACES), and which pairs are certainly the same or certainly different people:
 *  - same: the three Obama photos with each other (3 pairs);
 *  - different: two faces in one photo (nobody appears twice in a photo), Obama vs Biden, and every demo face vs
 *    every face_recognition face;
 *  - left out: two demo faces from different photos (they may be the same model photographed twice: sample1 #2
 *    and sample3 #1 look alike to a person and score highest of all; reported separately, not counted).
 * Reported: ROC-AUC same vs different of the cosine similarity of descriptors, the detector's recall and false
 * detections on the visible faces, and a contact sheet of the aligned crops.
 */
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import sharp from "sharp";
import { cat, getNumThreads, tidy, type Tensor } from "../../src/engine/index.js";
import { rocAuc } from "../../src/evaluation/metrics.js";
import { cropFace, descriptorSimilarity, FaceAnalyzer, facesLeftToRight, readPhoto } from "../../src/faces/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../../src/util/atomic.js";
import { parseFlags, defineCommand } from "../../src/util/flags.js";
import { provenance } from "../../src/util/provenance.js";

const SPEC = defineCommand({
  name: "bench faces validate",
  summary: "ROC-AUC of the Face Rec metric and the detector's recall on real photos",
  usage: "[--extra <folder>] [--out reports/faces]",
  flags: {
    extra: { type: "string", value: "<folder>", description: "face_recognition 1.3.0's tests/test_images" },
    out: { type: "string", value: "<folder>", default: "reports/faces", description: "where the report goes" },
  },
  examples: ["node dist/bench/faces/validate.js --extra face_recognition-1.3.0/tests/test_images"],
});

/** Faces a person can see in each photo (counted on the detect previews). */
const VISIBLE_FACES: Record<string, number> = {
  "demo/sample1.jpg": 3, "demo/sample2.jpg": 3, "demo/sample3.jpg": 3, "demo/sample4.jpg": 4, "demo/sample5.jpg": 5, "demo/sample6.jpg": 4,
  "face_recognition/obama.jpg": 1, "face_recognition/obama2.jpg": 1, "face_recognition/obama3.jpg": 1, "face_recognition/biden.jpg": 1,
};
const EXTRA_IDENTITY: Record<string, string> = { "obama.jpg": "obama", "obama2.jpg": "obama", "obama3.jpg": "obama", "biden.jpg": "biden" };

interface Face { photo: string; index: number; group: "demo" | "face_recognition"; identity?: string; score: number; box: { x: number; y: number; width: number; height: number } }

async function main(): Promise<void> {
  const { values } = parseFlags(SPEC, process.argv.slice(2));
  const require = createRequire(import.meta.url);
  const demoDir = path.join(path.dirname(require.resolve("@vladmandic/face-api/package.json")), "demo");
  const photos: { key: string; file: string; group: Face["group"] }[] = [1, 2, 3, 4, 5, 6].map((n) => ({ key: `demo/sample${n}.jpg`, file: path.join(demoDir, `sample${n}.jpg`), group: "demo" }));
  if (values.extra) for (const name of Object.keys(EXTRA_IDENTITY)) photos.push({ key: `face_recognition/${name}`, file: path.join(values.extra, name), group: "face_recognition" });
  mkdirSync(values.out, { recursive: true });
  const analyzer = new FaceAnalyzer();
  const faces: Face[] = [];
  const descriptors: Tensor[] = [];
  const faceApiDescriptors: Tensor[] = [];
  const crops: Buffer[] = [];
  const detection: Record<string, { visible: number; detected: number }> = {};
  for (const { key, file, group } of photos) {
    const photo = await readPhoto(file);
    try {
      const found = facesLeftToRight(analyzer.detect(photo));
      detection[key] = { visible: VISIBLE_FACES[key]!, detected: found.length };
      if (found.length === 0) continue;
      descriptors.push(analyzer.describe(photo, found));
      // face-api's own framing, for comparison: the landmarks' box grown by 20 %, not rotated (FaceLandmarks.align).
      faceApiDescriptors.push(analyzer.describeCrops(found.map((face) => {
        const xs = face.landmarks.map((p) => p.x);
        const ys = face.landmarks.map((p) => p.y);
        const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
        const [padX, padY] = [(x1 - x0) * 0.1, (y1 - y0) * 0.1];
        const left = Math.max(0, Math.round(x0 - padX));
        const top = Math.max(0, Math.round(y0 - padY));
        const right = Math.min(photo.width, Math.round(x1 + padX));
        const bottom = Math.min(photo.height, Math.round(y1 + padY));
        return photo.pixels.slice(0, top, bottom).slice(1, left, right);
      })));
      for (const [index, face] of found.entries()) {
        const identity = group === "face_recognition" ? EXTRA_IDENTITY[path.basename(key)] : undefined;
        faces.push({ photo: key, index, group, ...(identity ? { identity } : {}), score: face.score, box: face.box });
        const crop = cropFace(photo, found, analyzer, { face: index, size: 192, minCropSide: 1 });
        const label = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="192" height="20"><rect width="192" height="20" fill="black"/>`
          + `<text x="4" y="15" font-size="13" fill="white" font-family="sans-serif">${path.basename(key, ".jpg")} #${index}</text></svg>`);
        crops.push(await sharp(crop.pixels.contiguous().bytes(), { raw: { width: 192, height: 192, channels: 3 } }).composite([{ input: label, top: 172, left: 0 }]).png().toBuffer());
        crop.pixels.dispose();
      }
    } finally {
      photo.pixels.dispose();
    }
  }
  analyzer.dispose();
  const similarityOf = (set: Tensor[]): number[][] => tidy(() => {
    const all = cat(set, 0);
    return descriptorSimilarity(all, all).toArray() as number[][];
  });
  const similarity = similarityOf(descriptors);
  const faceApiSimilarity = similarityOf(faceApiDescriptors);
  for (const d of [...descriptors, ...faceApiDescriptors]) d.dispose();
  const faceApiScores: number[] = [];

  const scores: number[] = [];
  const positive: boolean[] = [];
  const leftOut: { a: string; b: string; similarity: number }[] = [];
  const name = (f: Face): string => `${f.photo} #${f.index}`;
  for (let i = 0; i < faces.length; i++) {
    for (let j = i + 1; j < faces.length; j++) {
      const a = faces[i]!;
      const b = faces[j]!;
      const s = similarity[i]![j]!;
      let same: boolean | undefined;
      if (a.photo === b.photo) same = false;
      else if (a.identity && b.identity) same = a.identity === b.identity;
      else if (a.group !== b.group) same = false;
      if (same === undefined) {
        leftOut.push({ a: name(a), b: name(b), similarity: s });
        continue;
      }
      scores.push(s);
      faceApiScores.push(faceApiSimilarity[i]![j]!);
      positive.push(same);
    }
  }
  leftOut.sort((x, y) => y.similarity - x.similarity);
  const pos = scores.filter((_, k) => positive[k]);
  const neg = scores.filter((_, k) => !positive[k]);
  const auc = pos.length > 0 && neg.length > 0 ? rocAuc(scores, positive) : null;
  const faceApiAuc = pos.length > 0 && neg.length > 0 ? rocAuc(faceApiScores, positive) : null;
  const visible = Object.values(detection).reduce((s, d) => s + d.visible, 0);
  const detected = Object.values(detection).reduce((s, d) => s + Math.min(d.detected, d.visible), 0);
  const extraDetections = Object.values(detection).reduce((s, d) => s + Math.max(0, d.detected - d.visible), 0);
  const stats = (v: number[]): { n: number; min: number; mean: number; max: number } | null => (v.length === 0 ? null
    : { n: v.length, min: Math.min(...v), mean: v.reduce((x, y) => x + y, 0) / v.length, max: Math.max(...v) });
  const report = {
    metric: "Face Rec: cosine similarity of dlib ResNet face descriptors (face-api's weights on our engine) on eye-levelled crops",
    rocAuc: auc,
    rocAucFaceApiFraming: faceApiAuc,
    pairs: { same: stats(pos), different: stats(neg) },
    detector: { model: "SSD MobileNet V1 (face-api), score threshold 0.5", visibleFaces: visible, found: detected, recall: detected / visible, extraDetections, perPhoto: detection },
    notCounted: { why: "two demo faces from different photos: the same model may appear twice", highest: leftOut.slice(0, 5) },
    faces: faces.map((f) => ({ ...f, score: Math.round(f.score * 1000) / 1000, box: { x: Math.round(f.box.x), y: Math.round(f.box.y), width: Math.round(f.box.width), height: Math.round(f.box.height) } })),
    provenance: provenance({
      command: process.argv.slice(1), threads: getNumThreads(), measured: photos.map((p) => p.file), versions: { cpu: os.cpus()[0]?.model ?? "unknown" },
    }),
  };
  writeJsonAtomic(path.join(values.out, "report.json"), report);
  const columns = 8;
  const rows = Math.ceil(crops.length / columns);
  const sheet = await sharp({ create: { width: columns * 192, height: rows * 192, channels: 3, background: "#ffffff" } })
    .composite(crops.map((input, k) => ({ input, left: (k % columns) * 192, top: Math.floor(k / columns) * 192 }))).jpeg({ quality: 85 }).toBuffer();
  writeFileAtomic(path.join(values.out, "crops.jpg"), sheet);
  const f3 = (v: number | undefined): string => (v === undefined ? "–" : v.toFixed(3));
  const md = [
    "# Face Rec metric and face detector on real photos",
    "",
    `Made by \`node dist/bench/faces/validate.js${values.extra ? " --extra <face_recognition-1.3.0/tests/test_images>" : ""}\` (bench/faces/validate.ts says which photos and how the pairs are labelled).`,
    "",
    `- **ROC-AUC same vs different person: ${auc === null ? "n/a" : auc.toFixed(4)}** over ${pos.length} same-person and ${neg.length} different-person pairs.`,
    `- The same descriptors on face-api's framing (landmark box + 20 %, not rotated): ROC-AUC ${faceApiAuc === null ? "n/a" : faceApiAuc.toFixed(4)}.`,
    `- Same person: cosine ${f3(report.pairs.same?.min)} … ${f3(report.pairs.same?.max)} (mean ${f3(report.pairs.same?.mean)}); different: ${f3(report.pairs.different?.min)} … ${f3(report.pairs.different?.max)} (mean ${f3(report.pairs.different?.mean)}).`,
    `- **Detector recall: ${detected}/${visible} = ${(100 * detected / visible).toFixed(1)} %** of the faces a person sees, ${extraDetections} detections of no face.`,
    "",
    "| photo | visible faces | detected |",
    "|---|---|---|",
    ...Object.entries(detection).map(([k, d]) => `| ${k} | ${d.visible} | ${d.detected} |`),
    "",
    "Not counted (demo faces from different photos, identity unknown), highest similarities:",
    "",
    ...leftOut.slice(0, 5).map((p) => `- ${p.similarity.toFixed(3)}  ${p.a} ~ ${p.b}`),
    "",
    "The aligned crops (CelebA-HQ framing, `hdb faces crop`): crops.jpg.",
    "",
  ].join("\n");
  writeFileAtomic(path.join(values.out, "report.md"), md);
  process.stdout.write(`${md}\n`);
}

await main();
