/**
 * The Tiny Face Detector's recall against SSD MobileNet V1 (the default detector) on the six group photos of
 * @vladmandic/face-api's demo/ folder → reports/faces/detector-recall.json, and its line in
 * reports/faces/report.md (replaced if there, else put after the SSD detector's recall line).
 *
 * Reference: the faces SSD MobileNet V1 finds at score 0.5 (on these photos, every face a person sees:
 * reports/faces/report.md). A reference face counts as found by the Tiny Face Detector (score threshold 0.5, input
 * sizes 320, 416 — face-api's default — and 608) when one of its boxes holds the SSD box's centre and the SSD box
 * holds its centre, each box matched at most once, nearest centres first. Not IoU: the tiny detector's boxes are
 * near-square and take in the whole head, SSD's are narrow, so the same face overlaps by IoU of only 0.4 … 0.7 (the
 * mean IoU of the matches is reported). The tiny detector's boxes left unmatched are counted as extra. Also
 * measured: each detector's time per photo (boxes only, after a warm-up; this machine may be busy, so a rough
 * ratio, not a benchmark).
 *
 *   node dist/bench/faces/detector-recall.js [--out reports/faces]
 * (after bench/faces/validate.ts, which writes report.md anew without this line).
 */
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { getNumThreads } from "../../src/engine/index.js";
import { FaceAnalyzer, readPhoto, type Photo } from "../../src/faces/index.js";
import type { FaceBox } from "../../src/models/faces/index.js";
import { writeFileAtomic, writeJsonAtomic } from "../../src/util/atomic.js";
import { defineCommand, parseFlags } from "../../src/util/flags.js";
import { provenance } from "../../src/util/provenance.js";
import { demoPhoto } from "../../test/faces/face-api-oracle.js";

const SPEC = defineCommand({
  name: "bench faces detector-recall",
  summary: "how many of the faces SSD MobileNet V1 finds the Tiny Face Detector finds, on face-api's demo photos",
  usage: "[--out reports/faces]",
  flags: {
    out: { type: "string", value: "<folder>", default: "reports/faces", description: "where detector-recall.json and report.md are" },
  },
  examples: ["node dist/bench/faces/detector-recall.js"],
});

const INPUT_SIZES = [320, 416, 608] as const;
const LINE_PREFIX = "- **Tiny Face Detector recall";

function iou(a: FaceBox, b: FaceBox): number {
  const w = Math.max(0, Math.min(a.x + a.width, b.x + b.width) - Math.max(a.x, b.x));
  const h = Math.max(0, Math.min(a.y + a.height, b.y + b.height) - Math.max(a.y, b.y));
  return (w * h) / (a.width * a.height + b.width * b.height - w * h);
}

const centre = (b: FaceBox): [number, number] => [b.x + b.width / 2, b.y + b.height / 2];
const holds = (b: FaceBox, [x, y]: [number, number]): boolean => x >= b.x && x <= b.x + b.width && y >= b.y && y <= b.y + b.height;

/** One-to-one matching of boxes that hold each other's centre, nearest centres first: the IoUs of the matches. */
function match(reference: readonly FaceBox[], found: readonly FaceBox[]): number[] {
  const pairs = reference.flatMap((r, i) => found.map((f, j) => ({ i, j, r, f })))
    .filter(({ r, f }) => holds(r, centre(f)) && holds(f, centre(r)))
    .map(({ i, j, r, f }) => ({ i, j, iou: iou(r, f), distance: Math.hypot(centre(r)[0] - centre(f)[0], centre(r)[1] - centre(f)[1]) }))
    .sort((p, q) => p.distance - q.distance);
  const usedR = new Set<number>();
  const usedF = new Set<number>();
  const matched: number[] = [];
  for (const p of pairs) {
    if (usedR.has(p.i) || usedF.has(p.j)) continue;
    usedR.add(p.i);
    usedF.add(p.j);
    matched.push(p.iou);
  }
  return matched;
}

/** The analyzer's boxes and the median time of three runs after a warm-up. */
function timedLocate(analyzer: FaceAnalyzer, photo: Photo): { boxes: FaceBox[]; ms: number } {
  let boxes = analyzer.locate(photo);
  const times: number[] = [];
  for (let k = 0; k < 3; k++) {
    const start = performance.now();
    boxes = analyzer.locate(photo);
    times.push(performance.now() - start);
  }
  return { boxes, ms: times.sort((a, b) => a - b)[1]! };
}

async function main(): Promise<void> {
  const { values } = parseFlags(SPEC, process.argv.slice(2));
  const ssd = new FaceAnalyzer({ detector: "ssd" });
  const tiny = INPUT_SIZES.map((inputSize) => ({ inputSize, analyzer: new FaceAnalyzer({ detector: "tiny", inputSize }) }));
  const photos: { photo: string; ssd: { faces: number; ms: number }; tiny: { inputSize: number; faces: number; found: number; extra: number; meanIou: number | null; ms: number }[] }[] = [];
  for (const n of [1, 2, 3, 4, 5, 6]) {
    const photo = await readPhoto(demoPhoto(n));
    try {
      const reference = timedLocate(ssd, photo);
      photos.push({
        photo: `demo/sample${n}.jpg`,
        ssd: { faces: reference.boxes.length, ms: reference.ms },
        tiny: tiny.map(({ inputSize, analyzer }) => {
          const found = timedLocate(analyzer, photo);
          const matched = match(reference.boxes, found.boxes);
          return {
            inputSize, faces: found.boxes.length, found: matched.length, extra: found.boxes.length - matched.length,
            meanIou: matched.length === 0 ? null : matched.reduce((a, b) => a + b, 0) / matched.length, ms: found.ms,
          };
        }),
      });
    } finally {
      photo.pixels.dispose();
    }
  }
  ssd.dispose();
  for (const t of tiny) t.analyzer.dispose();
  const reference = photos.reduce((s, p) => s + p.ssd.faces, 0);
  const ssdMs = photos.reduce((s, p) => s + p.ssd.ms, 0) / photos.length;
  const summary = INPUT_SIZES.map((inputSize, k) => {
    const rows = photos.map((p) => p.tiny[k]!);
    const found = rows.reduce((s, r) => s + r.found, 0);
    return {
      inputSize, found, reference, recall: found / reference, extra: rows.reduce((s, r) => s + r.extra, 0),
      msPerPhoto: rows.reduce((s, r) => s + r.ms, 0) / rows.length,
    };
  });
  writeJsonAtomic(path.join(values.out, "detector-recall.json"), {
    what: `faces SSD MobileNet V1 finds (score 0.5) that the Tiny Face Detector (score 0.5) also finds, matched one to one when each box holds the other's centre`,
    ssdMsPerPhoto: ssdMs, summary, photos,
    provenance: provenance({ command: process.argv.slice(1), threads: getNumThreads(), measured: [1, 2, 3, 4, 5, 6].map(demoPhoto), versions: { cpu: os.cpus()[0]?.model ?? "unknown" } }),
  });
  const pct = (v: number): string => `${(100 * v).toFixed(1)} %`;
  const at416 = summary.find((s) => s.inputSize === 416)!;
  const others = summary.filter((s) => s.inputSize !== 416).map((s) => `${s.inputSize} px ${s.found}/${s.reference}, ${s.extra} extra, ${s.msPerPhoto.toFixed(0)} ms`).join("; ");
  const line = `${LINE_PREFIX} on the demo photos: ${at416.found}/${at416.reference} = ${pct(at416.recall)}** of the faces SSD MobileNet V1 finds`
    + ` (face-api's default input 416 px, boxes holding each other's centre; ${at416.extra} extra box${at416.extra === 1 ? "" : "es"}; ${at416.msPerPhoto.toFixed(0)} ms per photo vs SSD's ${ssdMs.toFixed(0)} ms at ${getNumThreads()} thread${getNumThreads() === 1 ? "" : "s"}); ${others}`
    + " (bench/faces/detector-recall.ts → detector-recall.json).";
  const reportFile = path.join(values.out, "report.md");
  if (existsSync(reportFile)) {
    const lines = readFileSync(reportFile, "utf8").split("\n");
    const at = lines.findIndex((l) => l.startsWith(LINE_PREFIX));
    if (at >= 0) lines[at] = line;
    else {
      const after = lines.findIndex((l) => l.startsWith("- **Detector recall"));
      lines.splice(after >= 0 ? after + 1 : lines.length, 0, line);
    }
    writeFileAtomic(reportFile, lines.join("\n"));
  }
  process.stdout.write(`${line}\n`);
  for (const p of photos) process.stdout.write(`${p.photo}: SSD ${p.ssd.faces}; tiny ${p.tiny.map((t) => `${t.inputSize}: ${t.found}/${p.ssd.faces} (+${t.extra}, IoU ${t.meanIou?.toFixed(2) ?? "–"})`).join(", ")}\n`);
}

await main();
