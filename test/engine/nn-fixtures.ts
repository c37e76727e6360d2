/**
 * Reading the oracle's fixtures (test/oracle/fixtures_nn.py, fixtures_training.py) for the nn, optim and
 * training-parity tests: JSON files whose tensors are base64 bytes, so values arrive bit for bit.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fromBytes, type DType, type Tensor } from "../../src/engine/index.js";

export interface EncodedTensor {
  dtype: DType;
  shape: number[];
  data: string;
}

/** Path of a generated fixture file; the tests run from dist/test/engine, the fixtures stay in test/. */
export function fixturePath(generator: string, file: string): string {
  return fileURLToPath(new URL(`../../../test/fixtures/generated/${generator}/${file}`, import.meta.url));
}

export function readFixture<T>(generator: string, file: string): T {
  const path = fixturePath(generator, file);
  if (!existsSync(path)) throw new Error(`missing oracle fixture ${path}: run \`.venv/bin/python test/oracle/generate.py ${generator}\``);
  return JSON.parse(readFileSync(path, "utf8")) as T;
}

export function decodeTensor(encoded: EncodedTensor): Tensor {
  return fromBytes(Buffer.from(encoded.data, "base64"), encoded.dtype, encoded.shape);
}

export function decodeState(encoded: Record<string, EncodedTensor>): Map<string, Tensor> {
  return new Map(Object.entries(encoded).map(([name, value]) => [name, decodeTensor(value)]));
}

/** Largest |a - b| over all elements (shapes must match). */
export function maxAbsDiff(a: Tensor, b: Tensor): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shape [${a.shape.join(", ")}] vs [${b.shape.join(", ")}]`);
  const x = a.data() as Float32Array;
  const y = b.data() as Float32Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!));
  return worst;
}

/** Largest |a - b| / max(|b|, floor) over all elements. */
export function maxRelDiff(a: Tensor, b: Tensor, floor = 1e-12): number {
  if (a.shape.join() !== b.shape.join()) throw new Error(`shape [${a.shape.join(", ")}] vs [${b.shape.join(", ")}]`);
  const x = a.data() as Float32Array;
  const y = b.data() as Float32Array;
  let worst = 0;
  for (let i = 0; i < x.length; i++) worst = Math.max(worst, Math.abs(x[i]! - y[i]!) / Math.max(Math.abs(y[i]!), floor));
  return worst;
}

/** Whether two tensors hold the same bytes (same dtype and shape). */
export function bitIdentical(a: Tensor, b: Tensor): boolean {
  if (a.dtype !== b.dtype || a.shape.join() !== b.shape.join()) return false;
  return Buffer.from(a.bytes()).equals(Buffer.from(b.bytes()));
}

/** Largest relative difference of two series of numbers. */
export function maxRelDiffOf(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) throw new Error(`${a.length} values vs ${b.length}`);
  return a.reduce((worst, value, i) => Math.max(worst, Math.abs(value - b[i]!) / Math.max(Math.abs(b[i]!), 1e-30)), 0);
}
