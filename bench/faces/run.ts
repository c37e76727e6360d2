/**
 * Time per photo of detection + landmarks + alignment + descriptors, ours (src/faces/ on the engine) vs
 * @vladmandic/face-api on TF.js' CPU backend (detectAllFaces().withFaceLandmarks().withFaceDescriptors(), the
 * package's own pipeline), on the six demo photos, interleaved photo by photo in one process so both see the
 * same machine load. Both get the same decoded pixels; decoding is not timed. Ours also cuts the 512 px
 * CelebA-HQ crop of every face. → bench/results/faces-cpu.json.
 *
 *   OMP_NUM_THREADS=2 node dist/bench/faces/run.js [--threads 2] [--repeats 3]
 */
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { fromBytes, getNumThreads, setNumThreads } from "../../src/engine/index.js";
import { cropFace, FaceAnalyzer, type Photo } from "../../src/faces/index.js";
import { writeJsonAtomic } from "../../src/util/atomic.js";
import { defineCommand, parseFlags } from "../../src/util/flags.js";
import { provenance } from "../../src/util/provenance.js";
import { demoPhoto, faceApiOracle, photoPixels, toTf } from "../../test/faces/face-api-oracle.js";

const SPEC = defineCommand({
  name: "bench faces",
  summary: "detection + alignment + descriptor time per photo, ours vs face-api on TF.js' CPU backend",
  usage: "[--threads 2] [--repeats 3] [--out bench/results/faces-cpu.json]",
  flags: {
    threads: { type: "integer", min: 1, default: 2, description: "libtorch threads for ours" },
    repeats: { type: "integer", min: 1, default: 3, description: "timed passes over the photos (after one warm-up)" },
    out: { type: "string", default: "bench/results/faces-cpu.json", description: "the result file" },
  },
  examples: ["node dist/bench/faces/run.js --threads 2"],
});

const median = (v: number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function main(): Promise<void> {
  const { values } = parseFlags(SPEC, process.argv.slice(2));
  setNumThreads(values.threads);
  const faceapi = await faceApiOracle();
  const analyzer = new FaceAnalyzer();
  const images = await Promise.all([1, 2, 3, 4, 5, 6].map(async (n) => ({ n, file: demoPhoto(n), image: await photoPixels(demoPhoto(n)) })));
  const ours: number[] = [];
  const theirs: number[] = [];
  const facesFound: Record<string, { ours: number; faceApi: number }> = {};
  const loadBefore = os.loadavg()[0]!;
  for (let pass = 0; pass <= values.repeats; pass++) {
    for (const { n, file, image } of images) {
      const pixels = fromBytes(image.data, "uint8", [image.height, image.width, 3]);
      const photo: Photo = { file, width: image.width, height: image.height, pixels };
      let t0 = performance.now();
      const faces = analyzer.detect(photo);
      const descriptors = analyzer.describe(photo, faces);
      descriptors.data();
      for (let i = 0; i < faces.length; i++) cropFace(photo, faces, analyzer, { face: i, minCropSide: 1 }).pixels.dispose();
      const oursMs = performance.now() - t0;
      descriptors.dispose();
      pixels.dispose();
      const tfImage = toTf(faceapi, image);
      t0 = performance.now();
      const results = await (faceapi as unknown as {
        detectAllFaces(i: unknown, o: unknown): { withFaceLandmarks(): { withFaceDescriptors(): Promise<unknown[]> } };
      }).detectAllFaces(tfImage, new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 })).withFaceLandmarks().withFaceDescriptors();
      const theirMs = performance.now() - t0;
      tfImage.dispose();
      facesFound[`sample${n}.jpg`] = { ours: faces.length, faceApi: results.length };
      if (pass > 0) {
        ours.push(oursMs);
        theirs.push(theirMs);
      }
      process.stdout.write(`${pass === 0 ? "warm-up" : `pass ${pass}`} sample${n}.jpg: ours ${oursMs.toFixed(0)} ms (${faces.length} faces), face-api ${theirMs.toFixed(0)} ms (${results.length} faces)\n`);
    }
  }
  analyzer.dispose();
  const result = {
    benchmark: "faces: detection (SSD MobileNet V1) + 68 landmarks + alignment + 128-d descriptors of every face, per photo (1920 px demo photos), ours (engine) vs @vladmandic/face-api on TF.js' CPU backend, interleaved",
    date: new Date().toISOString(),
    cpu: os.cpus()[0]?.model ?? "unknown",
    cores: os.cpus().length,
    threads: getNumThreads(),
    loadAverageBefore: loadBefore,
    loadAverageAfter: os.loadavg()[0]!,
    photos: images.length,
    repeats: values.repeats,
    msPerPhoto: { ours: median(ours), faceApiTfjsCpu: median(theirs) },
    speedup: median(theirs) / median(ours),
    samples: { ours, faceApiTfjsCpu: theirs },
    facesFound,
    provenance: provenance({ command: process.argv.slice(1), threads: getNumThreads(), versions: { tfjs: faceapi.tf.version_core } }),
  };
  writeJsonAtomic(path.resolve(values.out), result);
  process.stdout.write(`median per photo: ours ${result.msPerPhoto.ours.toFixed(0)} ms, face-api (TF.js CPU) ${result.msPerPhoto.faceApiTfjsCpu.toFixed(0)} ms → ${result.speedup.toFixed(1)}× (${values.out})\n`);
}

await main();
