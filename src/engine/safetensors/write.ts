/**
 * Writing tensors as safetensors, to a file or to memory.
 *
 * Files are written atomically (src/util/atomic.ts: a temporary file in the same folder, flushed to disk, then
 * renamed over the target), so a reader (or a crash) never sees a partial file and a failed save leaves any
 * earlier file at that path untouched. Data is streamed tensor by tensor, in 16 MiB chunks through a bounce
 * buffer, from any device and layout. Tensors are ordered and the header laid out as the reference Python
 * writer does, so the same tensors give the same bytes.
 */
import { writeAll, writeAtomicWith } from "../../util/atomic.js";
import { dtypeBytes } from "../dtype.js";
import { Tensor } from "../tensor.js";
import { drainTensor } from "./bounce.js";
import { checkWritableString, encodeHeader, planLayout, SafetensorsError, type PlannedTensor } from "./format.js";

/** Tensors to save, by name. */
export type TensorCollection = Map<string, Tensor> | Record<string, Tensor>;

/**
 * Saves tensors (and optional `__metadata__` strings) to `filePath`, atomically. Bad input (a non-tensor,
 * a disposed tensor, the reserved name "__metadata__", a non-string metadata value) is a SafetensorsError
 * raised before anything is written.
 */
export function saveSafetensors(filePath: string, tensors: TensorCollection, metadata?: Record<string, string>): void {
  const { header, planned } = prepare(tensors, metadata, filePath);
  writeAtomicWith(filePath, (fd) => {
    writeAll(fd, header);
    for (const tensor of planned) withTensorBytes(tensor, filePath, (bytes) => writeAll(fd, bytes));
  });
}

/** The whole file in memory, for small tensor sets and for tests. */
export function serializeSafetensors(tensors: TensorCollection, metadata?: Record<string, string>): Uint8Array {
  const { header, planned, dataLength } = prepare(tensors, metadata, "serializing safetensors");
  const out = new Uint8Array(header.length + dataLength);
  out.set(header);
  for (const tensor of planned) withTensorBytes(tensor, "serializing safetensors", (bytes, offset) => out.set(bytes, header.length + tensor.begin + offset));
  return out;
}

interface Prepared {
  header: Uint8Array;
  planned: PlannedTensor<Tensor>[];
  dataLength: number;
}

/** Validates the input and lays out the file: header bytes, and each tensor's place in the data area. */
function prepare(tensors: TensorCollection, metadata: Record<string, string> | undefined, source: string): Prepared {
  const pairs: [string, unknown][] = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  const items = pairs.map(([name, value]) => {
    checkWritableString(name, "tensor name", source);
    if (name === "__metadata__") throw new SafetensorsError("the name __metadata__ is reserved for the metadata", { source });
    if (!(value instanceof Tensor)) throw new SafetensorsError("value is not a Tensor", { source, tensor: name });
    if (value.disposed) throw new SafetensorsError("tensor was disposed", { source, tensor: name });
    return { name, dtype: value.dtype, shape: value.shape, value };
  });
  if (metadata !== undefined) {
    if (metadata === null || typeof metadata !== "object") throw new SafetensorsError("metadata is not an object of strings", { source });
    for (const [key, value] of Object.entries(metadata)) {
      checkWritableString(key, "metadata key", source);
      checkWritableString(value, `metadata value of key ${JSON.stringify(key)}`, source);
    }
  }
  const planned = planLayout(items, source);
  const header = encodeHeader(planned, metadata);
  return { header, planned, dataLength: planned.at(-1)?.end ?? 0 };
}

/** Checks a tensor still has the size it was planned with, then streams its bytes to `use`. */
function withTensorBytes(planned: PlannedTensor<Tensor>, source: string, use: (bytes: Uint8Array, offset: number) => void): void {
  const expected = planned.end - planned.begin;
  const tensor = planned.value;
  const actual = tensor.numel * dtypeBytes[tensor.dtype];
  if (actual !== expected) {
    throw new SafetensorsError(`has ${actual} bytes, expected ${expected} (changed while saving?)`, { source, tensor: planned.name });
  }
  drainTensor(tensor, expected, use);
}
