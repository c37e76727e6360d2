/**
 * The test oracle: the npm package @vladmandic/face-api itself on TF.js' pure-JavaScript CPU backend
 * (dist/face-api.node-wasm.js with @tensorflow/tfjs, devDependencies; the wasm backend is loaded by that build
 * but not used). Tests and benchmarks only: the library never loads TF.js.
 */
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import sharp from "sharp";

/** The parts of face-api's API the oracle uses (the package's typings are for its other builds). */
export interface TfTensor {
  shape: number[];
  dataSync(): Float32Array | Int32Array;
  arraySync(): unknown;
  dispose(): void;
}
interface Tf {
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  tensor3d(values: Int32Array | Float32Array, shape: [number, number, number], dtype: string): TfTensor;
  tensor4d(values: Float32Array, shape: [number, number, number, number], dtype: string): TfTensor;
  slice3d(x: TfTensor, begin: [number, number, number], size: [number, number, number]): TfTensor;
  env(): { set(flag: string, value: unknown): void };
  version_core: string;
}
interface Net {
  loadFromDisk(dir: string): Promise<void>;
}
export interface FaceApi {
  tf: Tf;
  nets: {
    ssdMobilenetv1: Net & {
      locateFaces(input: TfTensor, options: unknown): Promise<{ score: number; box: { x: number; y: number; width: number; height: number } }[]>;
      forwardInput(input: unknown): { boxes: TfTensor[]; scores: TfTensor[] };
    };
    faceLandmark68Net: Net & { detectLandmarks(input: TfTensor): Promise<{ positions: { x: number; y: number }[] }> };
    faceRecognitionNet: Net & { computeFaceDescriptor(input: TfTensor): Promise<Float32Array> };
    tinyFaceDetector: Net & {
      locateFaces(input: TfTensor, options: unknown): Promise<{ score: number; box: { x: number; y: number; width: number; height: number } }[]>;
      forward(input: TfTensor, inputSize: number): Promise<TfTensor>;
    };
  };
  SsdMobilenetv1Options: new (options: { minConfidence?: number; maxResults?: number }) => unknown;
  TinyFaceDetectorOptions: new (options: { inputSize?: number; scoreThreshold?: number }) => unknown;
}

let loaded: Promise<FaceApi> | undefined;

/** face-api on the TF.js CPU backend with its four networks loaded from the package's model/ folder (once). */
export function faceApiOracle(): Promise<FaceApi> {
  loaded ??= (async () => {
    const require = createRequire(import.meta.url);
    const root = dirname(require.resolve("@vladmandic/face-api/package.json"));
    const faceapi = require(join(root, "dist", "face-api.node-wasm.js")) as FaceApi;
    await faceapi.tf.setBackend("cpu");
    await faceapi.tf.ready();
    if (faceapi.tf.getBackend() !== "cpu") throw new Error(`the oracle needs TF.js' cpu backend, got ${faceapi.tf.getBackend()}`);
    const models = join(root, "model");
    await faceapi.nets.ssdMobilenetv1.loadFromDisk(models);
    await faceapi.nets.faceLandmark68Net.loadFromDisk(models);
    await faceapi.nets.faceRecognitionNet.loadFromDisk(models);
    await faceapi.nets.tinyFaceDetector.loadFromDisk(models);
    return faceapi;
  })();
  return loaded;
}

/** The demo photos shipped in the package (group photos). */
export function demoPhoto(n: number): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve("@vladmandic/face-api/package.json")), "demo", `sample${n}.jpg`);
}

/** A photo's pixels as both sides read them: EXIF-rotated 8-bit RGB (H, W, 3). */
export async function photoPixels(file: string, maxSide?: number): Promise<{ width: number; height: number; data: Uint8Array }> {
  let pipeline = sharp(file).rotate().removeAlpha().toColourspace("srgb");
  if (maxSide) pipeline = pipeline.resize(maxSide, maxSide, { fit: "inside" });
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/** An RGB image as a TF.js int32 (H, W, 3) tensor. */
export function toTf(faceapi: FaceApi, image: { width: number; height: number; data: Uint8Array }): TfTensor {
  return faceapi.tf.tensor3d(Int32Array.from(image.data), [image.height, image.width, 3], "int32");
}
