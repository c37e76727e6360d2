/**
 * Parity of the ported face networks (src/models/faces/) with @vladmandic/face-api on TF.js' CPU backend, on the
 * package's real demo photos: the same pixels in, the same boxes, landmarks and descriptors out within stated
 * tolerances (float32 sums in another order: TF.js' JavaScript kernels vs libtorch's).
 *
 *  - weights: the dequantised tensors equal face-api's loaded parameters bit for bit; the cache gives them back;
 *  - detector: the same faces (same count, order), box corners within 0.01 px of the photo, scores within 1e-5;
 *  - landmarks: on the oracle's face crops, every point within 0.005 px of the crop;
 *  - descriptors: on the same crops, every component within 1e-5 (values are ~0.1), cosine > 0.99999;
 *  - Tiny Face Detector: the raw grid outputs within 1e-3, and on the six demo photos at input sizes 416 (and
 *    320, 608 on two of them, and a 0.2 threshold on one) the same faces in the same order, box corners within
 *    0.01 px, scores within 1e-5.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fromBytes, tidy, zeros, type Tensor } from "../../src/engine/index.js";
import {
  decodeTfjsWeights, faceApiModelDir, FaceLandmark68Net, FaceRecognitionNet, loadFaceApiWeights, SsdMobilenetV1, TinyFaceDetector,
  toBatchTensor,
} from "../../src/models/faces/index.js";
import { demoPhoto, faceApiOracle, photoPixels, toTf, type TfTensor } from "./face-api-oracle.js";

// Measured (2026-12-05, 6 faces of sample1 and sample6): boxes 5.7e-5 px, landmarks 4.6e-5 px, descriptors 3.1e-7.
const BOX_TOLERANCE_PX = 0.01;
const SCORE_TOLERANCE = 1e-5;
const LANDMARK_TOLERANCE_PX = 0.005;
const DESCRIPTOR_TOLERANCE = 1e-5;
// Tiny Face Detector, measured (2026-12-05, 6 demo photos at 416 + 2 at 320 and 608 + 1 at threshold 0.2):
// 38 faces, raw outputs 3.05e-5, box corners 6.4e-5 px, scores 2.6e-7.
const TINY_RAW_TOLERANCE = 1e-3;
const TINY_BOX_TOLERANCE_PX = 0.01;

const cache = mkdtempSync(join(tmpdir(), "hdb-face-cache-"));
process.on("exit", () => rmSync(cache, { recursive: true, force: true }));

function pixelsTensor(image: { width: number; height: number; data: Uint8Array }): Tensor {
  return fromBytes(image.data, "uint8", [image.height, image.width, 3]);
}

test("face-api weights: dequantised bit for bit as TF.js does, cached as safetensors and read back", async () => {
  const faceapi = await faceApiOracle();
  const first = loadFaceApiWeights("face_recognition_model", { cacheDir: cache });
  assert.equal(readdirSync(cache).filter((f) => f.startsWith("face_recognition_model-") && f.endsWith(".safetensors")).length, 1);
  const params = (faceapi.nets.faceRecognitionNet as unknown as { params: { fc: TfTensor; conv32_down: { conv: { filters: TfTensor } } } }).params;
  assert.deepEqual(Array.from(first.tensors.get("fc")!.data() as Float32Array), Array.from(params.fc.dataSync()));
  assert.deepEqual(Array.from(first.tensors.get("conv32_down/conv/filters")!.data() as Float32Array), Array.from(params.conv32_down.conv.filters.dataSync()));
  const again = loadFaceApiWeights("face_recognition_model", { cacheDir: cache });
  const fresh = decodeTfjsWeights(join(faceApiModelDir(), "face_recognition_model-weights_manifest.json"));
  assert.equal(again.tensors.size, fresh.size);
  for (const [name, t] of fresh) assert.ok(tidy(() => t.eq(again.tensors.get(name)!).all().item()), `cached ${name} differs`);
});

test("SSD MobileNet V1, 68-point landmarks and the descriptor match face-api on the demo photos", async () => {
  const faceapi = await faceApiOracle();
  const ssd = new SsdMobilenetV1(loadFaceApiWeights("ssd_mobilenetv1_model", { cacheDir: cache }));
  const landmarks = new FaceLandmark68Net(loadFaceApiWeights("face_landmark_68_model", { cacheDir: cache }));
  const recognition = new FaceRecognitionNet(loadFaceApiWeights("face_recognition_model", { cacheDir: cache }));
  let faces = 0;
  let worstBox = 0;
  let worstLandmark = 0;
  let worstDescriptor = 0;
  let worstScore = 0;
  for (const n of [1, 6]) {
    const image = await photoPixels(demoPhoto(n));
    const tfImage = toTf(faceapi, image);
    const expected = await faceapi.nets.ssdMobilenetv1.locateFaces(tfImage, new faceapi.SsdMobilenetv1Options({ minConfidence: 0.5 }));
    using pixels = pixelsTensor(image);
    const found = ssd.detect(pixels, { minConfidence: 0.5 });
    assert.equal(found.length, expected.length, `sample${n}.jpg: ${found.length} faces vs face-api's ${expected.length}`);
    assert.ok(found.length >= 3, `sample${n}.jpg: a group photo, found ${found.length} faces`);
    for (const [i, want] of expected.entries()) {
      const got = found[i]!;
      worstScore = Math.max(worstScore, Math.abs(got.score - want.score));
      assert.ok(Math.abs(got.score - want.score) <= SCORE_TOLERANCE, `sample${n}.jpg face ${i}: score ${got.score} vs ${want.score}`);
      const corners = [
        [got.x, want.box.x], [got.y, want.box.y], [got.x + got.width, want.box.x + want.box.width], [got.y + got.height, want.box.y + want.box.height],
      ] as const;
      for (const [a, b] of corners) worstBox = Math.max(worstBox, Math.abs(a - b));
    }
    // Landmarks and descriptors on the oracle's integer face crops, the same pixels to both.
    for (const want of expected.slice(0, 3)) {
      const x = Math.max(0, Math.round(want.box.x));
      const y = Math.max(0, Math.round(want.box.y));
      const w = Math.min(image.width - x, Math.round(want.box.width));
      const h = Math.min(image.height - y, Math.round(want.box.height));
      const tfCrop = faceapi.tf.slice3d(tfImage, [y, x, 0], [h, w, 3]);
      const wantLandmarks = (await faceapi.nets.faceLandmark68Net.detectLandmarks(tfCrop)).positions;
      const wantDescriptor = await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(tfCrop);
      tfCrop.dispose();
      using crop = pixels.slice(0, y, y + h).slice(1, x, x + w);
      using gotLandmarks = landmarks.detect([crop]);
      const points = Array.from(gotLandmarks.data() as Float32Array);
      wantLandmarks.forEach((p, k) => {
        worstLandmark = Math.max(worstLandmark, Math.abs(points[2 * k]! - p.x), Math.abs(points[2 * k + 1]! - p.y));
      });
      using gotDescriptor = recognition.describe([crop]);
      const d = Array.from(gotDescriptor.data() as Float32Array);
      assert.equal(d.length, 128);
      let dot = 0;
      let na = 0;
      let nb = 0;
      d.forEach((v, k) => {
        const u = wantDescriptor[k]!;
        worstDescriptor = Math.max(worstDescriptor, Math.abs(v - u));
        dot += v * u;
        na += v * v;
        nb += u * u;
      });
      assert.ok(dot / Math.sqrt(na * nb) > 0.99999, `descriptor cosine ${dot / Math.sqrt(na * nb)}`);
      faces++;
    }
    tfImage.dispose();
  }
  console.log(`# parity: ${faces} faces; worst box corner ${worstBox.toExponential(2)} px, score ${worstScore.toExponential(2)}, landmark ${worstLandmark.toExponential(2)} px, descriptor ${worstDescriptor.toExponential(2)}`);
  assert.ok(worstBox <= BOX_TOLERANCE_PX, `box corners differ by up to ${worstBox} px`);
  assert.ok(worstLandmark <= LANDMARK_TOLERANCE_PX, `landmarks differ by up to ${worstLandmark} px`);
  assert.ok(worstDescriptor <= DESCRIPTOR_TOLERANCE, `descriptors differ by up to ${worstDescriptor}`);
  ssd.dispose();
  landmarks.dispose();
  recognition.dispose();
});

test("the Tiny Face Detector matches face-api on the demo photos at input sizes 320, 416 and 608", async () => {
  const faceapi = await faceApiOracle();
  const weights = loadFaceApiWeights("tiny_face_detector_model", { cacheDir: cache });
  const params = (faceapi.nets.tinyFaceDetector as unknown as { params: { conv8: { filters: TfTensor } } }).params;
  assert.deepEqual(Array.from(weights.tensors.get("conv8/filters")!.data() as Float32Array), Array.from(params.conv8.filters.dataSync()));
  const tiny = new TinyFaceDetector(weights);
  const runs: { photo: number; inputSize: number; scoreThreshold: number }[] = [
    ...[1, 2, 3, 4, 5, 6].map((photo) => ({ photo, inputSize: 416, scoreThreshold: 0.5 })),
    ...[1, 6].flatMap((photo) => [320, 608].map((inputSize) => ({ photo, inputSize, scoreThreshold: 0.5 }))),
    { photo: 2, inputSize: 416, scoreThreshold: 0.2 },
  ];
  let worstRaw = 0;
  let worstBox = 0;
  let worstScore = 0;
  let faces = 0;
  for (const { photo, inputSize, scoreThreshold } of runs) {
    const image = await photoPixels(demoPhoto(photo));
    const tfImage = toTf(faceapi, image);
    using pixels = pixelsTensor(image);
    if (faces === 0) {
      // The network itself: the raw (tx, ty, tw, th, objectness) grid, NHWC in TF.js.
      const wantRaw = await faceapi.nets.tinyFaceDetector.forward(tfImage, inputSize);
      const want = Array.from(wantRaw.dataSync());
      wantRaw.dispose();
      const got = tidy(() => Array.from(tiny.forward(toBatchTensor(pixels, inputSize, false)).permute(0, 2, 3, 1).contiguous().data() as Float32Array));
      assert.equal(got.length, want.length);
      got.forEach((v, k) => (worstRaw = Math.max(worstRaw, Math.abs(v - want[k]!))));
    }
    const expected = await faceapi.nets.tinyFaceDetector.locateFaces(tfImage, new faceapi.TinyFaceDetectorOptions({ inputSize, scoreThreshold }));
    tfImage.dispose();
    const found = tiny.detect(pixels, { inputSize, scoreThreshold });
    const what = `sample${photo}.jpg at ${inputSize} px, threshold ${scoreThreshold}`;
    assert.equal(found.length, expected.length, `${what}: ${found.length} faces vs face-api's ${expected.length}`);
    assert.ok(found.length >= 1, `${what}: a photo of people, no face found`);
    for (const [i, want] of expected.entries()) {
      const got = found[i]!;
      worstScore = Math.max(worstScore, Math.abs(got.score - want.score));
      assert.ok(Math.abs(got.score - want.score) <= SCORE_TOLERANCE, `${what} face ${i}: score ${got.score} vs ${want.score}`);
      const corners = [
        [got.x, want.box.x], [got.y, want.box.y], [got.x + got.width, want.box.x + want.box.width], [got.y + got.height, want.box.y + want.box.height],
      ] as const;
      for (const [a, b] of corners) worstBox = Math.max(worstBox, Math.abs(a - b));
      faces++;
    }
  }
  console.log(`# tiny parity: ${runs.length} runs, ${faces} faces; worst raw output ${worstRaw.toExponential(2)}, box corner ${worstBox.toExponential(2)} px, score ${worstScore.toExponential(2)}`);
  assert.ok(worstRaw <= TINY_RAW_TOLERANCE, `raw outputs differ by up to ${worstRaw}`);
  assert.ok(worstBox <= TINY_BOX_TOLERANCE_PX, `box corners differ by up to ${worstBox} px`);
  using small = zeros([40, 30, 3]);
  assert.throws(() => tiny.detect(small, { inputSize: 400 }), /inputSize must be a positive multiple of 32 \(320, 416, 608, …\), got 400/);
  assert.throws(() => tiny.detect(small, { scoreThreshold: 1 }), /scoreThreshold must be in \(0, 1\), got 1/);
  assert.throws(() => tiny.forward(zeros([1, 3, 100, 100])), /TinyFaceDetector: expected \(N, 3, S, S\) pixels with S a multiple of 32, got \[1, 3, 100, 100\]/);
  tiny.dispose();
  tiny.dispose();
});

test("face-api weights: a truncated shard, a missing weight and a wrong shape are errors naming the file, key and shape", async () => {
  const { copyFileSync, readFileSync, writeFileSync } = await import("node:fs");
  const broken = mkdtempSync(join(tmpdir(), "hdb-face-broken-"));
  try {
    const manifest = "face_landmark_68_model-weights_manifest.json";
    copyFileSync(join(faceApiModelDir(), manifest), join(broken, manifest));
    const bin = readFileSync(join(faceApiModelDir(), "face_landmark_68_model.bin"));
    writeFileSync(join(broken, "face_landmark_68_model.bin"), bin.subarray(0, bin.length - 1000));
    assert.throws(() => decodeTfjsWeights(join(broken, manifest)),
      /face_landmark_68_model-weights_manifest\.json: weight fc\/weights \[256, 136\] needs bytes \d+\.\.\d+, but the shards hold \d+/);
    writeFileSync(join(broken, "face_landmark_68_model.bin"), bin);
    const weights = loadFaceApiWeights("face_landmark_68_model", { modelDir: broken, cacheDir: join(broken, "cache") });
    weights.tensors.get("fc/bias")!.dispose();
    weights.tensors.delete("fc/bias");
    assert.throws(() => new FaceLandmark68Net(weights), /weight fc\/bias is missing \(the face_landmark_68_model network needs it, shape \[136\]\)/);
    assert.throws(() => new FaceRecognitionNet(weights), /weight conv32_down\/conv\/filters is missing/);
    assert.throws(() => new TinyFaceDetector(weights), /face_landmark_68_model-weights_manifest\.json: weight conv0\/filters is missing \(the face_landmark_68_model network needs it, shape \[3, 3, 3, 16\]\)/);
    weights.tensors.get("fc/weights")!.dispose();
    weights.tensors.set("fc/weights", zeros([136, 256]));
    weights.tensors.set("fc/bias", zeros([136]));
    assert.throws(() => new FaceLandmark68Net(weights), /weight fc\/weights has shape \[136, 256\], the face_landmark_68_model network needs \[256, 136\]/);
  } finally {
    rmSync(broken, { recursive: true, force: true });
  }
});
